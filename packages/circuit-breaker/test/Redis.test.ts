import { assert, describe, it } from "@effect/vitest"
import { CircuitBreaker, CircuitBreakerRedis, CircuitBreakerStore } from "@ouroboros/circuit-breaker"
import { Services } from "@ouroboros/testkit"
import { Context, Deferred, Effect, Layer, PubSub, References, Result } from "effect"
import { TestClock } from "effect/testing"
import { Redis } from "ioredis"
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import * as Machine from "../src/internal/machine.js"

const prefix = () => `test:cb:${randomUUID()}`

const quiet = Effect.provideService(References.MinimumLogLevel, "None")

/**
 * Polls `condition` until it holds, pausing on the real clock (the breakers run on the `TestClock`, which only the
 * test moves); the deadline only bounds the test.
 */
const eventually = <E, R>(condition: Effect.Effect<boolean, E, R>, what: string) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 20_000
    while (!(yield* condition)) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`never: ${what}`))
      yield* TestClock.withLive(Effect.sleep("5 millis"))
    }
  })

const cleanup = (p: string) =>
  Effect.acquireRelease(Effect.void, () =>
    Effect.promise(async () => {
      const redis = new Redis(Services.redisUrl)
      const keys = await redis.keys(`${p}:*`)
      if (keys.length > 0) await redis.del(...keys)
      await redis.quit()
    }))

/** The same operations against a store and against the pure machine give the same records. */
const contract = (store: CircuitBreakerStore.Store, persistent: boolean) =>
  Effect.gen(function*() {
    const backoff = { initialMs: 1000, maxMs: 8000, factor: 2 }
    let local = yield* store.load("dep")
    assert.deepStrictEqual(local, Machine.initial)
    let expected = Machine.initial

    const opened = Machine.opened(local, 5_000, backoff)
    local = yield* store.cas("dep", local, 0, opened)
    expected = Machine.cas(expected, 0, opened)
    assert.deepStrictEqual(local, expected)
    // A stale compare-and-set changes nothing.
    const stale = yield* store.cas("dep", local, 0, Machine.operator(local, 5_001, "disabled"))
    assert.deepStrictEqual(stale, expected)

    const tooEarly = yield* store.acquireTrial("dep", local, 5_500, 2, 60_000)
    assert.deepStrictEqual(tooEarly, [false, expected])
    const grants: Array<boolean> = []
    for (let i = 0; i < 3; i++) {
      const [granted, record] = yield* store.acquireTrial("dep", local, 6_000 + i, 2, 60_000)
      const [expectedGranted, next] = Machine.acquireTrial(expected, 6_000 + i, 2, 60_000)
      expected = next
      local = record
      grants.push(granted)
      assert.strictEqual(granted, expectedGranted)
      assert.deepStrictEqual(record, expected)
    }
    assert.deepStrictEqual(grants, [true, true, false])
    const halfOpen = expected.version

    local = yield* store.release("dep", local, halfOpen)
    expected = Machine.release(expected, halfOpen)
    assert.deepStrictEqual(local, expected)
    assert.strictEqual(local.trials, 1)

    local = yield* store.trialSuccess("dep", local, halfOpen, 6_100, 1)
    expected = Machine.trialSuccess(expected, halfOpen, 6_100, 1)
    assert.deepStrictEqual(local, expected)
    assert.strictEqual(local.status, "closed")

    const forced = Machine.operator(local, 7_000, "forced-open")
    local = yield* store.set("dep", local, forced)
    expected = Machine.cas(expected, -1, forced)
    assert.deepStrictEqual(local, expected)
    // The memory store keeps no record of its own: the breaker's local copy is the record.
    assert.deepStrictEqual(yield* store.load("dep"), persistent ? expected : Machine.initial)
  })

describe("CircuitBreakerStore.memory", () => {
  it.effect("follows the machine", () => contract(CircuitBreakerStore.makeMemory, false))
})

describe.runIf(await Services.redis())("CircuitBreaker with Redis", () => {
  it.effect("the Redis store follows the machine (Lua mirrors the TypeScript transitions)", () =>
    Effect.gen(function*() {
      const p = prefix()
      yield* cleanup(p)
      const store = yield* CircuitBreakerRedis.make({ url: Services.redisUrl, prefix: p })
      yield* contract(store, true)
    }))

  // The breakers run on the TestClock: the break ends when the test moves the clock, not because the machine was slow
  // between the trip and the rejection it checks. Redis and its pub/sub run in real time; the test polls for them.
  it.effect("two registries sharing Redis open together and share trial permits", () =>
    Effect.gen(function*() {
      const p = prefix()
      yield* cleanup(p)
      const options: CircuitBreaker.RegistryOptions = {
        defaults: {
          tripPolicy: CircuitBreaker.consecutive(2),
          openDuration: "300 millis",
          halfOpenMaxCalls: 1
        }
      }
      const build = Layer.build(CircuitBreakerRedis.layerRedis({ url: Services.redisUrl, prefix: p }, options))
      const a = Context.get(yield* build, CircuitBreaker.CircuitBreaker)
      const b = Context.get(yield* build, CircuitBreaker.CircuitBreaker)
      const subscription = yield* b.subscribe
      const onA = yield* a.get("dep")
      const onB = yield* b.get("dep")
      yield* Effect.result(onA.execute(Effect.fail("down")))
      yield* Effect.result(onA.execute(Effect.fail("down")))
      assert.strictEqual(yield* onA.state, "open")
      // The deadline only bounds the test.
      const change = yield* PubSub.take(subscription).pipe(Effect.timeout("20 seconds"), TestClock.withLive)
      assert.strictEqual(change.to, "open")
      assert.isTrue(change.remote)
      assert.strictEqual(yield* onB.state, "open")
      const rejected = yield* Effect.result(onB.execute(Effect.succeed(1)))
      assert.isTrue(Result.isFailure(rejected) && rejected.failure instanceof CircuitBreaker.CircuitOpen)

      yield* TestClock.adjust("300 millis")
      assert.strictEqual((yield* onA.snapshot).retryAfter, 0, "the break ends")
      assert.strictEqual((yield* onB.snapshot).retryAfter, 0, "the break ends on both")
      // Four concurrent calls from both replicas: the granted trial holds its permit until every call has either
      // started or been rejected.
      const gate = yield* Deferred.make<void>()
      let ran = 0
      let refused = 0
      const settled = Effect.suspend(() => ran + refused === 4 ? Deferred.succeed(gate, undefined) : Effect.void)
      const held = Effect.sync(() => ran++).pipe(Effect.andThen(settled), Effect.andThen(Deferred.await(gate)))
      const call = (breaker: CircuitBreaker.Breaker) =>
        Effect.result(breaker.execute(held)).pipe(
          Effect.tap((result) =>
            Result.isFailure(result) ? Effect.andThen(Effect.sync(() => refused++), settled) : Effect.void
          )
        )
      yield* Effect.all([call(onA), call(onB), call(onA), call(onB)], { concurrency: "unbounded" })
      assert.strictEqual(ran, 1)
      assert.strictEqual(refused, 3)
      yield* eventually(Effect.map(onA.state, (state) => state === "closed"), "A closes")
      assert.strictEqual(yield* onA.state, "closed")
      yield* eventually(Effect.map(onB.state, (state) => state === "closed"), "B closes")
      assert.strictEqual(yield* onB.state, "closed")
      // Operator actions reach every replica.
      yield* a.forceOpen("dep")
      yield* eventually(Effect.map(onB.state, (state) => state === "forced-open"), "B follows the operator")
      assert.strictEqual(yield* onB.state, "forced-open")
    }).pipe(quiet))

  // On the TestClock: the breaker stays open for the 100 rejections however slow the machine is.
  it.effect("a closed breaker never reaches Redis; only transitions do", () =>
    Effect.gen(function*() {
      const p = prefix()
      yield* cleanup(p)
      const counter = { calls: 0 }
      const store = Layer.effect(
        CircuitBreakerStore.CircuitBreakerStore,
        Effect.map(CircuitBreakerRedis.make({ url: Services.redisUrl, prefix: p }), (s) =>
          CircuitBreakerStore.counting(s, counter))
      )
      const registry = Context.get(
        yield* Layer.build(Layer.provide(
          CircuitBreaker.layerStore({
            defaults: { tripPolicy: CircuitBreaker.consecutive(3), openDuration: "1 minute" }
          }),
          store
        )),
        CircuitBreaker.CircuitBreaker
      )
      const dep = yield* registry.get("dep")
      for (let i = 0; i < 1000; i++) {
        yield* dep.execute(Effect.void)
      }
      for (let i = 0; i < 2; i++) {
        yield* Effect.result(dep.execute(Effect.fail("down")))
      }
      for (let i = 0; i < 1000; i++) {
        yield* dep.execute(Effect.void)
      }
      assert.strictEqual(counter.calls, 0)
      for (let i = 0; i < 3; i++) {
        yield* Effect.result(dep.execute(Effect.fail("down")))
      }
      assert.strictEqual(counter.calls, 1) // the trip
      for (let i = 0; i < 100; i++) {
        yield* Effect.result(dep.execute(Effect.void))
      }
      assert.strictEqual(counter.calls, 1) // rejections while open are local too
    }).pipe(quiet))

  it.live("degrades to local state when Redis is unreachable", () =>
    Effect.gen(function*() {
      const layer = CircuitBreakerRedis.layerRedis(
        {
          url: "redis://127.0.0.1:1",
          timeout: "50 millis",
          redisOptions: { maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false }
        },
        { defaults: { tripPolicy: CircuitBreaker.consecutive(1), openDuration: "1 minute" } }
      )
      const registry = Context.get(yield* Layer.build(layer), CircuitBreaker.CircuitBreaker)
      const dep = yield* registry.get("dep")
      yield* Effect.result(dep.execute(Effect.fail("down")))
      assert.strictEqual(yield* dep.state, "open")
    }).pipe(quiet))

  describe("two OS processes", () => {
    const fixture = fileURLToPath(new URL("./fixtures/replica.ts", import.meta.url))
    const root = fileURLToPath(new URL("../../..", import.meta.url))

    const replica = (p: string) => {
      const child: ChildProcessWithoutNullStreams = spawn(
        process.execPath,
        ["--import", "tsx", fixture, Services.redisUrl, p],
        { cwd: root, stdio: ["pipe", "pipe", "pipe"] }
      )
      const pending: Array<(value: unknown) => void> = []
      const buffered: Array<unknown> = []
      let stderr = ""
      child.stderr.on("data", (chunk) => (stderr += String(chunk)))
      createInterface({ input: child.stdout }).on("line", (line) => {
        let value: unknown
        try {
          value = JSON.parse(line)
        } catch {
          return
        }
        const resolve = pending.shift()
        if (resolve) resolve(value)
        else buffered.push(value)
      })
      const next = () =>
        new Promise<unknown>((resolve, reject) => {
          if (buffered.length > 0) return resolve(buffered.shift())
          const timer = setTimeout(() => reject(new Error(`replica did not answer; stderr: ${stderr}`)), 20_000)
          pending.push((value) => {
            clearTimeout(timer)
            resolve(value)
          })
        })
      const send = (line: string) => {
        child.stdin.write(line + "\n")
        return next() as Promise<any>
      }
      return { child, next, send, close: () => child.stdin.write("exit\n") }
    }

    it("open together, agree on one version, and admit only the permitted trials in total", async () => {
      const p = prefix()
      const a = replica(p)
      const b = replica(p)
      try {
        await Promise.all([a.next(), b.next()])
        // Both trip at the same time: one transition wins, the other adopts it.
        const [sa, sb] = await Promise.all([a.send("fail 3"), b.send("fail 3")])
        assert.strictEqual(sa.state, "open")
        assert.strictEqual(sb.state, "open")
        const [wa, wb] = await Promise.all([a.send("wait open 15000"), b.send("wait open 15000")])
        assert.strictEqual(wa.version, 1)
        assert.strictEqual(wb.version, 1)
        assert.strictEqual(wa.attempts, 1)

        // The replicas' clocks only move when told: the shared break (1 second) is over for both.
        const [ea, eb] = await Promise.all([a.send("advance 1000"), b.send("advance 1000")])
        assert.strictEqual(ea.retryAfter, 0)
        assert.strictEqual(eb.retryAfter, 0)
        // Five calls on each replica at once; the admitted ones are held until every call has started or been
        // refused, so the permits are in use while the other replica asks (no pause that assumes it).
        const [ta, tb] = await Promise.all([a.send("trials 5"), b.send("trials 5")])
        assert.strictEqual(ta.started + tb.started, 2)
        assert.strictEqual(ta.refused + tb.refused, 8)
        const [ra, rb] = await Promise.all([a.send("release"), b.send("release")])
        assert.strictEqual(ra.ran + rb.ran, 2)
        const [ca, cb] = await Promise.all([a.send("wait closed 15000"), b.send("wait closed 15000")])
        assert.strictEqual(ca.state, "closed")
        assert.strictEqual(cb.state, "closed")
        assert.strictEqual(ca.version, cb.version)

        // One replica trips alone; the other follows without a single failure of its own.
        await a.send("fail 3")
        const followed = await b.send("wait open 15000")
        assert.strictEqual(followed.state, "open")
        assert.strictEqual(followed.consecutiveFailures, 0)
      } finally {
        a.close()
        b.close()
        const redis = new Redis(Services.redisUrl)
        const keys = await redis.keys(`${p}:*`)
        if (keys.length > 0) await redis.del(...keys)
        await redis.quit()
      }
    }, 60_000)
  })
})
