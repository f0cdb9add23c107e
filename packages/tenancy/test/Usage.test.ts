import { assert, describe, it } from "@effect/vitest"
import { TenantId } from "@ouroboros/kernel"
import { Services } from "@ouroboros/testkit"
import { Effect, Exit, Layer, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as Usage from "../src/Usage.js"
import * as UsageSql from "../src/Usage/Sql.js"
import { layerEmbedded, layerPgSchema } from "./layers.js"

const acme = TenantId.make("acme")
const globex = TenantId.make("globex")
const day = Date.UTC(2025, 2, 10, 12)

// Polls a condition while the test clock stands still (the flush runs on its own fiber); bounded, so a broken flush
// fails the test instead of hanging it.
const eventually = (condition: Effect.Effect<boolean>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1000; i++) {
      if (yield* condition) return
      yield* Effect.yieldNow
    }
    assert.fail("the condition did not hold")
  })

describe("Usage", () => {
  it.effect("buffers records in memory and writes them as one batch of CloudEvents per flush interval", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(day)
      const store = Usage.makeMemoryStore()
      const usage = yield* Usage.make({ flushIntervalMillis: 10_000, source: "/test" }).pipe(
        Effect.provideService(Usage.UsageStore, store)
      )
      for (let i = 0; i < 100; i++) yield* usage.record(acme, { requests: 1, embeddedCharacters: 10 })
      yield* usage.record(globex, { llmTokens: 42, storedBytes: -5 })
      // Aggregated per tenant, kind and day: 4 pending, nothing written yet.
      assert.strictEqual(yield* usage.pending, 4)
      assert.strictEqual((yield* store.events(acme, "2025-03-10", "2025-03-10")).length, 0)
      yield* TestClock.adjust("10 seconds")
      yield* eventually(Effect.map(usage.pending, (n) => n === 0))
      const events = yield* store.events(acme, "2025-03-10", "2025-03-10")
      assert.strictEqual(events.length, 2)
      const requests = events.find((e) => e.data.kind === "requests")!
      assert.strictEqual(requests.specversion, "1.0")
      assert.strictEqual(requests.source, "/test")
      assert.strictEqual(requests.type, "dev.ouroboros.usage.requests")
      assert.strictEqual(requests.subject, "acme")
      assert.strictEqual(requests.datacontenttype, "application/json")
      assert.strictEqual(requests.time, new Date(day).toISOString())
      assert.deepStrictEqual(requests.data, { tenantId: "acme", kind: "requests", value: 100, day: "2025-03-10" })
      // Both events of the batch share its id as a prefix.
      assert.strictEqual(events[0]!.id.split(":")[0], events[1]!.id.split(":")[0])
      const rows = yield* usage.daily(acme, "2025-03-09", "2025-03-11")
      assert.deepStrictEqual(rows, [
        { day: "2025-03-09", requests: 0, embeddedCharacters: 0, llmTokens: 0, storedBytes: 0 },
        { day: "2025-03-10", requests: 100, embeddedCharacters: 1000, llmTokens: 0, storedBytes: 0 },
        { day: "2025-03-11", requests: 0, embeddedCharacters: 0, llmTokens: 0, storedBytes: 0 }
      ])
      assert.deepStrictEqual((yield* usage.daily(globex, "2025-03-10", "2025-03-10"))[0], {
        day: "2025-03-10",
        requests: 0,
        embeddedCharacters: 0,
        llmTokens: 42,
        storedBytes: -5
      })
    }))

  it.effect("writes what is buffered when its scope closes", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(day)
      const store = Usage.makeMemoryStore()
      const scope = yield* Scope.make()
      const usage = yield* Usage.make({ flushIntervalMillis: 3_600_000 }).pipe(
        Effect.provideService(Usage.UsageStore, store),
        Scope.provide(scope)
      )
      yield* usage.record(acme, { requests: 3 })
      assert.strictEqual((yield* store.daily(acme, "2025-03-10", "2025-03-10")).length, 0)
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(yield* store.daily(acme, "2025-03-10", "2025-03-10"), [
        { day: "2025-03-10", kind: "requests", amount: 3 }
      ])
    }))

  it.effect("a batch whose outcome was lost is retried with its id and counted once", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(day)
      const inner = Usage.makeMemoryStore()
      let failures = 1
      // Applies the batch, then reports a failure: the commit happened but the answer was lost.
      const flaky = Usage.UsageStore.of({
        ...inner,
        apply: (batch) =>
          Effect.flatMap(inner.apply(batch), (applied) =>
            failures-- > 0
              ? Effect.fail(new Usage.UsageStoreError({ cause: "connection reset" }))
              : Effect.succeed(applied))
      })
      const usage = yield* Usage.make({ flushIntervalMillis: 3_600_000 }).pipe(
        Effect.provideService(Usage.UsageStore, flaky)
      )
      yield* usage.record(acme, { llmTokens: 7 })
      assert.isTrue(Exit.isFailure(yield* Effect.exit(usage.flush)))
      assert.strictEqual(yield* usage.pending, 1)
      // New usage goes to a new batch; the failed one is retried first, under its own id.
      yield* usage.record(acme, { llmTokens: 1 })
      yield* usage.flush
      assert.strictEqual(yield* usage.pending, 0)
      assert.deepStrictEqual(yield* inner.daily(acme, "2025-03-10", "2025-03-10"), [
        { day: "2025-03-10", kind: "llmTokens", amount: 8 }
      ])
      assert.strictEqual((yield* inner.events(acme, "2025-03-10", "2025-03-10")).length, 2)
    }))

  it.effect("deletes usage past its retention on its own schedule, keeping the days within it", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(day)
      const store = Usage.makeMemoryStore()
      const usage = yield* Usage.make({
        flushIntervalMillis: 60_000,
        retentionMillis: 3 * 86_400_000,
        pruneIntervalMillis: 3_600_000
      }).pipe(Effect.provideService(Usage.UsageStore, store))
      // Usage on 2025-03-10, then on each of the next three days.
      for (let d = 0; d < 4; d++) {
        yield* usage.record(acme, { requests: d + 1 })
        yield* usage.flush
        yield* TestClock.adjust("1 day")
      }
      // 2025-03-14 12:00: the retention reaches back to 2025-03-11; the hourly prune has run since.
      yield* TestClock.adjust("1 hour")
      assert.deepStrictEqual(
        (yield* store.daily(acme, "2025-03-01", "2025-03-31")).map((r) => r.day),
        ["2025-03-11", "2025-03-12", "2025-03-13"]
      )
      assert.deepStrictEqual(
        (yield* store.events(acme, "2025-03-01", "2025-03-31")).map((e) => e.data.day),
        ["2025-03-11", "2025-03-12", "2025-03-13"]
      )
      // Nothing more is past it: a prune now deletes nothing.
      assert.deepStrictEqual(yield* usage.prune, { events: 0, days: 0, batches: 0 })
    }))

  it("refuses a retention under a day and a prune interval under a second", async () => {
    const { ConfigProvider } = await import("effect")
    const read = (env: Record<string, string>) =>
      Effect.runPromiseExit(
        Effect.gen(function*() {
          return yield* Usage.config
        }).pipe(Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env })))
      )
    const defaults = await read({})
    assert.isTrue(Exit.isSuccess(defaults))
    if (Exit.isSuccess(defaults)) {
      assert.strictEqual(defaults.value.retentionMillis, 400 * 86_400_000)
      assert.strictEqual(defaults.value.pruneIntervalMillis, 3_600_000)
    }
    const set = await read({ USAGE_RETENTION: "90d", USAGE_PRUNE_INTERVAL: "15m" })
    assert.isTrue(
      Exit.isSuccess(set) && set.value.retentionMillis === 90 * 86_400_000 && set.value.pruneIntervalMillis === 900_000
    )
    assert.include(String(await read({ USAGE_RETENTION: "12h" })), "at least 1d")
    assert.include(String(await read({ USAGE_PRUNE_INTERVAL: "0" })), "at least 1s")
    assert.include(String(await read({ USAGE_RETENTION: "forever" })), "is not a duration")
  })

  it("renders CSV and checks ranges", () => {
    assert.strictEqual(
      Usage.toCsv([{ day: "2025-03-10", requests: 1, embeddedCharacters: 2, llmTokens: 3, storedBytes: 4 }]),
      "day,requests,embedded_characters,llm_tokens,stored_bytes\r\n2025-03-10,1,2,3,4\r\n"
    )
    assert.deepStrictEqual(Usage.daysBetween("2024-02-28", "2024-03-01"), ["2024-02-28", "2024-02-29", "2024-03-01"])
    assert.isUndefined(Usage.daysBetween("2025-03-02", "2025-03-01"))
    assert.isUndefined(Usage.daysBetween("2025-02-30", "2025-03-01"))
    assert.isUndefined(Usage.daysBetween("yesterday", "2025-03-01"))
    assert.isUndefined(Usage.daysBetween("2020-01-01", "2025-01-01"))
  })
})

const batch = (id: string, tenantId: string, value: number, dayOf = "2025-03-10"): Usage.Batch => ({
  id,
  events: [{
    specversion: "1.0",
    id: `${id}:0`,
    source: "/test",
    type: "dev.ouroboros.usage.requests",
    subject: tenantId,
    time: `${dayOf}T12:00:00.000Z`,
    datacontenttype: "application/json",
    data: { tenantId, kind: "requests", value, day: dayOf }
  }]
})

const sqlContract = (name: string, sql: () => Layer.Layer<any, unknown>) =>
  describe(name, () => {
    it.live("applies a batch once, however often and however concurrently it is retried", () =>
      Effect.gen(function*() {
        const store = yield* Usage.UsageStore
        assert.isTrue(yield* store.apply(batch("b1", acme, 5)))
        assert.isFalse(yield* store.apply(batch("b1", acme, 5)))
        const again = yield* Effect.all([0, 1, 2, 3].map(() => store.apply(batch("b2", acme, 2))), { concurrency: 4 })
        assert.strictEqual(again.filter((applied) => applied).length, 1)
        yield* store.apply(batch("b3", globex, 9))
        yield* store.apply(batch("b4", acme, 1, "2025-03-11"))
        assert.deepStrictEqual(yield* store.daily(acme, "2025-03-01", "2025-03-31"), [
          { day: "2025-03-10", kind: "requests", amount: 7 },
          { day: "2025-03-11", kind: "requests", amount: 1 }
        ])
        const events = yield* store.events(acme, "2025-03-10", "2025-03-10")
        assert.deepStrictEqual(events.map((e) => e.id), ["b1:0", "b2:0"])
        assert.deepStrictEqual(events[0], batch("b1", acme, 5).events[0])
      }).pipe(Effect.provide(UsageSql.layer.pipe(Layer.provide(sql())))))

    it.live("prunes days before a given day and batch ids applied before a given time, and counts them", () =>
      Effect.gen(function*() {
        const store = yield* Usage.UsageStore
        const tenant = `prune-${Math.random().toString(36).slice(2, 8)}`
        const id = (n: string) => `${tenant}-${n}`
        yield* store.apply(batch(id("old"), tenant, 1, "2025-01-01"))
        yield* store.apply(batch(id("edge"), tenant, 2, "2025-01-02"))
        yield* store.apply(batch(id("new"), tenant, 3, "2025-01-03"))
        // Only days before 2025-01-02 go; batch ids stay (applied now, not before the given time).
        const first = yield* store.prune({ day: "2025-01-02", batchesBefore: Date.now() - 60_000 })
        assert.isAtLeast(first.events, 1)
        assert.isAtLeast(first.days, 1)
        assert.deepStrictEqual(
          (yield* store.daily(TenantId.make(tenant), "2025-01-01", "2025-01-31")).map((r) => r.day),
          ["2025-01-02", "2025-01-03"]
        )
        assert.deepStrictEqual(
          (yield* store.events(TenantId.make(tenant), "2025-01-01", "2025-01-31")).map((e) => e.data.day),
          ["2025-01-02", "2025-01-03"]
        )
        assert.isFalse(yield* store.apply(batch(id("new"), tenant, 3, "2025-01-03")), "the batch id is still known")
        // Batch ids applied before now go: the same id would then be applied again (which is why they are kept 7 days).
        const second = yield* store.prune({ day: "2025-01-02", batchesBefore: Date.now() + 60_000 })
        assert.isAtLeast(second.batches, 3)
        assert.strictEqual(second.days, 0)
        assert.isTrue(yield* store.apply(batch(id("new"), tenant, 3, "2025-01-03")))
      }).pipe(Effect.provide(UsageSql.layer.pipe(Layer.provide(sql())))))

    it.live("the service over SQL: flushed at scope close, reported per day", () =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const usage = yield* Usage.make({ flushIntervalMillis: 3_600_000 }).pipe(Scope.provide(scope))
        const today = new Date().toISOString().slice(0, 10)
        yield* usage.record(acme, { requests: 2, storedBytes: 100 })
        yield* usage.record(acme, { storedBytes: -40 })
        yield* Scope.close(scope, Exit.void)
        const store = yield* Usage.UsageStore
        assert.deepStrictEqual(yield* store.daily(acme, today, today), [
          { day: today, kind: "requests", amount: 2 },
          { day: today, kind: "storedBytes", amount: 60 }
        ])
      }).pipe(Effect.provide(UsageSql.layer.pipe(Layer.provide(sql())))))
  })

sqlContract("Usage on the embedded database (PGlite)", () => layerEmbedded)

describe.runIf(await Services.postgres())("Usage on PostgreSQL", () => {
  sqlContract("PostgreSQL", () => layerPgSchema())
})
