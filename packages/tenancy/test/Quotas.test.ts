import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { TenantId } from "@ouroboros/kernel"
import { PgSchema, Services } from "@ouroboros/testkit"
import { Effect, Exit, Layer, Option, Redacted } from "effect"
import type { SqlClient } from "effect/sql"
import * as Jwt from "../src/Jwt.js"
import * as Quotas from "../src/Quotas.js"
import * as QuotasSql from "../src/Quotas/Sql.js"
import type { TenantInput } from "../src/Tenant.js"
import * as Tenants from "../src/Tenants.js"
import * as Memory from "../src/TenantStore/Memory.js"
import * as TenantStoreSql from "../src/TenantStore/Sql.js"
import * as SetClock from "./clock.js"
import { layerEmbedded, layerPgSchema } from "./layers.js"

const acme = TenantId.make("acme")
const free = TenantId.make("free-one")
const seed: ReadonlyArray<TenantInput> = [
  { id: acme, quotas: { documents: 5, storedBytes: 100, requestsPerDay: 3, llmTokensPerMonth: 1000 } },
  { id: free, tier: "free", quotas: { storedBytes: null } }
]

const services = (
  store: Layer.Layer<Quotas.QuotaStore, unknown, any>,
  tenantStore: Layer.Layer<any, unknown, any> = Memory.layer
) =>
  Quotas.layer({ defaults: { free: { requestsPerDay: 2 } } }).pipe(
    Layer.provideMerge(Tenants.layer({ bootstrap: { adminKey: Option.none(), keys: [], tenants: seed } })),
    Layer.provideMerge(Layer.mergeAll(store, tenantStore, Jwt.layerDisabled))
  )

const exceeded = <A>(exit: Exit.Exit<A, Quotas.QuotaExceeded | unknown>) =>
  Exit.isFailure(exit)
    ? Option.getOrUndefined(Exit.findErrorOption(exit)) as Quotas.QuotaExceeded | undefined
    : undefined

const contract = (
  name: string,
  store: () => Layer.Layer<Quotas.QuotaStore, unknown>,
  options: { readonly concurrency: number }
) =>
  describe(name, () => {
    it.effect("limits: tier defaults, configured tier defaults, per-tenant overrides, null for unlimited", () =>
      Effect.gen(function*() {
        const quotas = yield* Quotas.Quotas
        assert.deepStrictEqual(yield* quotas.limits(acme), {
          documents: 5,
          storedBytes: 100,
          requestsPerDay: 3,
          llmTokensPerMonth: 1000
        })
        assert.deepStrictEqual(yield* quotas.limits(free), {
          documents: 1_000,
          storedBytes: null,
          requestsPerDay: 2,
          llmTokensPerMonth: 1_000_000
        })
        assert.include(String(yield* Effect.exit(quotas.limits(TenantId.make("nobody")))), "TenantNotFound")
      }).pipe(Effect.provide(services(store()))))

    it.effect("consume is all or nothing; release gives gauges back; the problem data names quota, limit, usage", () =>
      Effect.gen(function*() {
        const quotas = yield* Quotas.Quotas
        yield* quotas.consume(acme, { documents: 1, storedBytes: 60 })
        const refused = exceeded(yield* Effect.exit(quotas.consume(acme, { documents: 1, storedBytes: 50 })))
        assert.strictEqual(refused?.quota, "storedBytes")
        assert.strictEqual(refused?.limit, 100)
        assert.strictEqual(refused?.usage, 60)
        assert.strictEqual(refused?.requested, 50)
        assert.strictEqual(refused?.retryAfter, undefined)
        // The documents counter did not move with the refused consumption.
        const status = yield* quotas.status(acme)
        assert.strictEqual(status.usage.documents, 1)
        assert.strictEqual(status.usage.storedBytes, 60)
        yield* quotas.release(acme, { documents: 1, storedBytes: 60 })
        yield* quotas.release(acme, { documents: 4 }) // never below zero
        assert.deepStrictEqual((yield* quotas.status(acme)).usage, {
          documents: 0,
          storedBytes: 0,
          requestsPerDay: 0,
          llmTokensPerMonth: 0
        })
        for (let i = 0; i < 5; i++) yield* quotas.consume(acme, { documents: 1 })
        assert.strictEqual(exceeded(yield* Effect.exit(quotas.consume(acme, { documents: 1 })))?.quota, "documents")
        yield* quotas.check(free, { storedBytes: 10 ** 12 }) // unlimited
      }).pipe(Effect.provide(services(store()))))

    it.live("requests per day: refused with the time to the next UTC day, admitted again then", () => {
      const clock = SetClock.make(Date.UTC(2025, 0, 31, 23, 0, 0))
      return Effect.gen(function*() {
        const quotas = yield* Quotas.Quotas
        for (let i = 0; i < 3; i++) yield* quotas.consume(acme, { requestsPerDay: 1 })
        const refused = exceeded(yield* Effect.exit(quotas.consume(acme, { requestsPerDay: 1 })))
        assert.strictEqual(refused?.quota, "requestsPerDay")
        assert.strictEqual(refused?.retryAfter, 3600)
        assert.strictEqual(refused?.usage, 3)
        clock.adjust(3_600_000)
        yield* quotas.consume(acme, { requestsPerDay: 1 })
        // Spent requests are not given back.
        yield* quotas.release(acme, { requestsPerDay: 1 })
        assert.strictEqual((yield* quotas.status(acme)).usage.requestsPerDay, 1)
      }).pipe(clock.use, Effect.provide(services(store())))
    })

    it.live("LLM tokens: recorded after the fact, checked before the next call, reset with the month", () => {
      const clock = SetClock.make(Date.UTC(2025, 0, 20))
      return Effect.gen(function*() {
        const quotas = yield* Quotas.Quotas
        yield* quotas.check(acme, { llmTokensPerMonth: 1 })
        yield* quotas.record(acme, { llmTokensPerMonth: 1_200 })
        const refused = exceeded(yield* Effect.exit(quotas.check(acme, { llmTokensPerMonth: 1 })))
        assert.strictEqual(refused?.quota, "llmTokensPerMonth")
        assert.strictEqual(refused?.usage, 1_200)
        clock.set(Date.UTC(2025, 1, 1))
        yield* quotas.check(acme, { llmTokensPerMonth: 1 })
      }).pipe(clock.use, Effect.provide(services(store())))
    })

    it.effect("deleting a tenant purges its counters", () =>
      Effect.gen(function*() {
        const quotas = yield* Quotas.Quotas
        const tenants = yield* Tenants.Tenants
        const store = yield* Quotas.QuotaStore
        yield* quotas.consume(free, { documents: 3 })
        yield* tenants.delete(free)
        assert.deepStrictEqual(yield* store.read(free, [{ quota: "documents", period: "total" }]), [0])
      }).pipe(Effect.provide(services(store()))))

    it.effect("prunes counters of periods that ended, every tenant's; gauges and current periods stay", () =>
      Effect.gen(function*() {
        const store = yield* Quotas.QuotaStore
        const counters = [
          { quota: "requestsPerDay" as const, period: "d:2025-01-29" },
          { quota: "requestsPerDay" as const, period: "d:2025-01-30" },
          { quota: "requestsPerDay" as const, period: "d:2025-01-31" },
          { quota: "llmTokensPerMonth" as const, period: "m:2024-12" },
          { quota: "llmTokensPerMonth" as const, period: "m:2025-01" },
          { quota: "documents" as const, period: "total" }
        ]
        for (const tenant of [acme, free]) yield* store.add(tenant, counters.map((c) => ({ ...c, amount: 1 })))
        // On 2025-01-31: yesterday is 2025-01-30, last month 2024-12.
        assert.deepStrictEqual(Quotas.prunedBefore(Date.UTC(2025, 0, 31, 12)), { day: "2025-01-30", month: "2024-12" })
        assert.deepStrictEqual(Quotas.prunedBefore(Date.UTC(2025, 0, 1, 0, 30)), {
          day: "2024-12-31",
          month: "2024-12"
        })
        assert.strictEqual(yield* store.prune(Quotas.prunedBefore(Date.UTC(2025, 0, 31, 12))), 2)
        for (const tenant of [acme, free]) {
          assert.deepStrictEqual(yield* store.read(tenant, counters), [0, 1, 1, 1, 1, 1])
        }
        // On 2025-02-02: the January days and December go.
        assert.strictEqual(yield* store.prune(Quotas.prunedBefore(Date.UTC(2025, 1, 2))), 6)
        for (const tenant of [acme, free]) {
          assert.deepStrictEqual(yield* store.read(tenant, counters), [0, 0, 0, 0, 1, 1])
        }
      }).pipe(Effect.provide(services(store()))))

    it.effect("never exceeds a limit under concurrent consumption", () =>
      Effect.gen(function*() {
        const quotas = yield* Quotas.Quotas
        const results = yield* Effect.forEach(
          Array.from({ length: 40 }, (_, i) => i),
          () => Effect.exit(quotas.consume(acme, { documents: 1, storedBytes: 10 })),
          { concurrency: options.concurrency }
        )
        assert.strictEqual(results.filter(Exit.isSuccess).length, 5)
        const usage = (yield* quotas.status(acme)).usage
        assert.strictEqual(usage.documents, 5)
        assert.strictEqual(usage.storedBytes, 50)
      }).pipe(Effect.provide(services(store()))), { timeout: 60_000 })
  })

contract("Quotas in memory", () => Quotas.layerMemoryStore, { concurrency: 40 })
contract("Quotas on the embedded database (PGlite)", () => QuotasSql.layer.pipe(Layer.provide(layerEmbedded)), {
  concurrency: 8
})

describe.runIf(await Services.postgres())("Quotas on PostgreSQL", () => {
  contract("one replica", () => QuotasSql.layer.pipe(Layer.provide(layerPgSchema())), { concurrency: 16 })

  it.live("two replicas on one database never exceed a limit together", () =>
    Effect.gen(function*() {
      const schema = `tenancy_replicas_${Math.random().toString(36).slice(2, 10)}`
      const replica = (sql: Layer.Layer<SqlClient.SqlClient | PgClient.PgClient, unknown>) =>
        Layer.fresh(services(QuotasSql.layer, TenantStoreSql.layer).pipe(Layer.provide(sql)))
      // The first replica creates the schema (dropped at the end); the second connects to it with a pool of its own.
      const first = yield* Layer.build(replica(PgSchema.layer({ schema, maxConnections: 8 })))
      const second = yield* Layer.build(replica(PgClient.layer({
        url: Redacted.make(PgSchema.withSearchPath(Services.postgresUrl, schema)),
        maxConnections: 8
      })))
      const consume = (context: typeof first) =>
        Effect.exit(
          Effect.flatMap(Effect.service(Quotas.Quotas), (q) => q.consume(acme, { documents: 1, storedBytes: 7 })).pipe(
            Effect.provideContext(context)
          )
        )
      const attempts = Array.from({ length: 60 }, (_, i) => consume(i % 2 === 0 ? first : second))
      const results = yield* Effect.all(attempts, { concurrency: "unbounded" })
      // documents: 5 is the tighter limit (storedBytes 100 / 7 = 14).
      assert.strictEqual(results.filter(Exit.isSuccess).length, 5)
      const status = yield* Effect.flatMap(Effect.service(Quotas.Quotas), (q) => q.status(acme)).pipe(
        Effect.provideContext(second)
      )
      assert.strictEqual(status.usage.documents, 5)
      assert.strictEqual(status.usage.storedBytes, 35)
      // And requests per day, a counter per day, under the same race.
      const requests = yield* Effect.all(
        Array.from({ length: 40 }, (_, i) =>
          Effect.exit(
            Effect.flatMap(Effect.service(Quotas.Quotas), (q) => q.consume(acme, { requestsPerDay: 1 })).pipe(
              Effect.provideContext(i % 2 === 0 ? first : second)
            )
          )),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(requests.filter(Exit.isSuccess).length, 3)
    }), { timeout: 60_000 })
})
