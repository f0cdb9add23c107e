import { assert, describe, it } from "@effect/vitest"
import { CircuitBreaker, CircuitBreakerStore } from "@ouroboros/circuit-breaker"
import { ConfigProvider, Deferred, Effect, Fiber, Layer, Metric, PubSub, Result, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as Machine from "../src/internal/machine.js"

const ok = Effect.succeed("ok")
const boom = Effect.fail("boom" as const)

const outcome = <A, E>(breaker: CircuitBreaker.Breaker, effect: Effect.Effect<A, E>) =>
  Effect.result(breaker.execute(effect))

const isOpenError = (result: Result.Result<unknown, unknown>, retryAfter?: number) => {
  assert.isTrue(Result.isFailure(result))
  const error = (result as Result.Failure<unknown, unknown>).failure
  assert.instanceOf(error, CircuitBreaker.CircuitOpen)
  if (retryAfter !== undefined) assert.strictEqual((error as CircuitBreaker.CircuitOpen).retryAfter, retryAfter)
}

const consecutive = (options: Partial<CircuitBreaker.Options> = {}) =>
  CircuitBreaker.make({
    name: "dep",
    tripPolicy: CircuitBreaker.consecutive(3),
    openDuration: "10 seconds",
    ...options
  })

describe("CircuitBreaker", () => {
  it.effect("opens after consecutive failures and rejects with the remaining break", () =>
    Effect.gen(function*() {
      const breaker = yield* consecutive()
      yield* outcome(breaker, boom)
      yield* outcome(breaker, boom)
      assert.strictEqual(yield* breaker.state, "closed")
      yield* outcome(breaker, boom)
      assert.strictEqual(yield* breaker.state, "open")
      let ran = false
      const rejected = yield* outcome(breaker, Effect.sync(() => (ran = true)))
      isOpenError(rejected, 10_000)
      assert.isFalse(ran)
      yield* TestClock.adjust("4 seconds")
      isOpenError(yield* outcome(breaker, ok), 6_000)
      const snapshot = yield* breaker.snapshot
      assert.strictEqual(snapshot.state, "open")
      assert.strictEqual(snapshot.retryAfter, 6_000)
      assert.strictEqual(snapshot.openedAt, 0)
    }))

  it.effect("a success resets the consecutive count", () =>
    Effect.gen(function*() {
      const breaker = yield* consecutive()
      yield* outcome(breaker, boom)
      yield* outcome(breaker, boom)
      yield* outcome(breaker, ok)
      yield* outcome(breaker, boom)
      yield* outcome(breaker, boom)
      assert.strictEqual(yield* breaker.state, "closed")
      yield* outcome(breaker, boom)
      assert.strictEqual(yield* breaker.state, "open")
    }))

  it.effect("recovers after the break: half-open trial success closes", () =>
    Effect.gen(function*() {
      const breaker = yield* consecutive()
      for (let i = 0; i < 3; i++) yield* outcome(breaker, boom)
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(yield* breaker.state, "open")
      const trial = yield* outcome(breaker, ok)
      assert.deepStrictEqual(trial, Result.succeed("ok"))
      assert.strictEqual(yield* breaker.state, "closed")
      // Counters start afresh after closing.
      yield* outcome(breaker, boom)
      yield* outcome(breaker, boom)
      assert.strictEqual(yield* breaker.state, "closed")
    }))

  it.effect("a failed trial reopens with a growing, capped break", () =>
    Effect.gen(function*() {
      const breaker = yield* consecutive({ maxOpenDuration: "25 seconds", backoffFactor: 2 })
      for (let i = 0; i < 3; i++) yield* outcome(breaker, boom)
      yield* TestClock.adjust("10 seconds")
      yield* outcome(breaker, boom) // trial fails: 20 s
      assert.strictEqual(yield* breaker.state, "open")
      isOpenError(yield* outcome(breaker, ok), 20_000)
      yield* TestClock.adjust("20 seconds")
      yield* outcome(breaker, boom) // trial fails: 40 s capped at 25 s
      isOpenError(yield* outcome(breaker, ok), 25_000)
      assert.strictEqual((yield* breaker.snapshot).attempts, 3)
      yield* TestClock.adjust("25 seconds")
      assert.deepStrictEqual(yield* outcome(breaker, ok), Result.succeed("ok"))
      assert.strictEqual(yield* breaker.state, "closed")
      // Reopening soon after keeps the streak; the break stays long.
      for (let i = 0; i < 3; i++) yield* outcome(breaker, boom)
      isOpenError(yield* outcome(breaker, ok), 25_000)
    }))

  it.effect("the backoff streak ends once closed as long as it was last open", () =>
    Effect.gen(function*() {
      const breaker = yield* consecutive({ maxOpenDuration: "1 minute" })
      for (let i = 0; i < 3; i++) yield* outcome(breaker, boom)
      yield* TestClock.adjust("10 seconds")
      yield* outcome(breaker, boom) // 20 s
      yield* TestClock.adjust("20 seconds")
      yield* outcome(breaker, ok) // closed
      yield* TestClock.adjust("20 seconds")
      for (let i = 0; i < 3; i++) yield* outcome(breaker, boom)
      isOpenError(yield* outcome(breaker, ok), 10_000)
    }))

  it.effect("half-open admits at most halfOpenMaxCalls concurrent trials", () =>
    Effect.gen(function*() {
      const breaker = yield* consecutive({ halfOpenMaxCalls: 2, successThreshold: 2 })
      for (let i = 0; i < 3; i++) yield* outcome(breaker, boom)
      yield* TestClock.adjust("10 seconds")
      const gate = yield* Deferred.make<void>()
      let started = 0
      const held = Effect.andThen(Effect.sync(() => started++), Deferred.await(gate))
      const first = yield* Effect.forkChild(outcome(breaker, held))
      const second = yield* Effect.forkChild(outcome(breaker, held))
      yield* Effect.yieldNow
      assert.strictEqual(started, 2)
      assert.strictEqual(yield* breaker.state, "half-open")
      isOpenError(yield* outcome(breaker, ok))
      assert.strictEqual((yield* breaker.snapshot).trials, 2)
      yield* Deferred.succeed(gate, undefined)
      assert.isTrue(Result.isSuccess(yield* Fiber.join(first)))
      assert.isTrue(Result.isSuccess(yield* Fiber.join(second)))
      assert.strictEqual(yield* breaker.state, "closed")
    }))

  it.effect("an interrupted trial gives its permit back", () =>
    Effect.gen(function*() {
      const breaker = yield* consecutive()
      for (let i = 0; i < 3; i++) yield* outcome(breaker, boom)
      yield* TestClock.adjust("10 seconds")
      const fiber = yield* Effect.forkChild(outcome(breaker, Effect.never))
      yield* Effect.yieldNow
      isOpenError(yield* outcome(breaker, ok))
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(yield* breaker.state, "half-open")
      assert.deepStrictEqual(yield* outcome(breaker, ok), Result.succeed("ok"))
      assert.strictEqual(yield* breaker.state, "closed")
    }))

  it.effect("failure rate over a count window with a minimum throughput", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({
        tripPolicy: CircuitBreaker.failureRate({
          threshold: 0.5,
          minimumThroughput: 4,
          window: CircuitBreaker.countWindow(4)
        }),
        openDuration: "1 second"
      })
      yield* outcome(breaker, boom)
      yield* outcome(breaker, boom)
      yield* outcome(breaker, boom)
      assert.strictEqual(yield* breaker.state, "closed") // 3 calls < minimum throughput
      yield* outcome(breaker, ok)
      assert.strictEqual(yield* breaker.state, "open") // 3/4 failed
      assert.deepStrictEqual((yield* breaker.snapshot).window, { total: 0, failures: 0, slow: 0 })
    }))

  it.effect("a count window slides: old failures fall out", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({
        tripPolicy: CircuitBreaker.failureRate({
          threshold: 0.75,
          minimumThroughput: 4,
          window: CircuitBreaker.countWindow(4)
        }),
        openDuration: "1 second"
      })
      for (const e of [boom, boom, ok, ok, ok, boom, boom]) yield* outcome(breaker, e)
      // window: ok ok boom boom (1/2) — closed even though 4 of 7 calls failed
      assert.strictEqual(yield* breaker.state, "closed")
      yield* outcome(breaker, boom) // ok boom boom boom: 3/4
      assert.strictEqual(yield* breaker.state, "open")
    }))

  it.effect("failure rate over a time window forgets old calls", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({
        tripPolicy: CircuitBreaker.failureRate({
          threshold: 0.5,
          minimumThroughput: 3,
          window: CircuitBreaker.timeWindow("10 seconds", 10)
        }),
        openDuration: "1 second"
      })
      yield* outcome(breaker, boom)
      yield* outcome(breaker, boom)
      yield* TestClock.adjust("11 seconds")
      yield* outcome(breaker, ok)
      yield* outcome(breaker, ok)
      yield* outcome(breaker, boom)
      assert.strictEqual(yield* breaker.state, "closed") // the two old failures expired: 1/3
      assert.deepStrictEqual((yield* breaker.snapshot).window, { total: 3, failures: 1, slow: 0 })
      yield* outcome(breaker, boom)
      assert.strictEqual(yield* breaker.state, "open") // 2/4
    }))

  it.effect("slow calls open the breaker at their own ratio", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({
        tripPolicy: CircuitBreaker.failureRate({
          threshold: 0.9,
          minimumThroughput: 2,
          window: CircuitBreaker.countWindow(10)
        }),
        slowCall: { duration: "2 seconds", rateThreshold: 0.5 },
        openDuration: "1 second"
      })
      const slow = Effect.as(Effect.sleep("3 seconds"), "slow")
      const fiber = yield* Effect.forkChild(outcome(breaker, slow))
      yield* TestClock.adjust("3 seconds")
      assert.deepStrictEqual(yield* Fiber.join(fiber), Result.succeed("slow"))
      assert.strictEqual(yield* breaker.state, "closed") // 1 call < minimum throughput
      yield* outcome(breaker, ok)
      assert.strictEqual(yield* breaker.state, "open") // 1 slow of 2
    }))

  it.effect("isFailure decides which typed errors count; defects always count", () =>
    Effect.gen(function*() {
      const breaker = yield* consecutive({ isFailure: (error) => error !== "not-found" })
      for (let i = 0; i < 5; i++) yield* outcome(breaker, Effect.fail("not-found"))
      assert.strictEqual(yield* breaker.state, "closed")
      yield* Effect.exit(breaker.execute(Effect.die("bug")))
      yield* Effect.exit(breaker.execute(Effect.die("bug")))
      assert.strictEqual(yield* breaker.state, "closed")
      yield* Effect.exit(breaker.execute(Effect.die("bug")))
      assert.strictEqual(yield* breaker.state, "open")
    }))

  it.effect("interruptions do not count", () =>
    Effect.gen(function*() {
      const breaker = yield* consecutive({ tripPolicy: CircuitBreaker.consecutive(1) })
      const fiber = yield* Effect.forkChild(breaker.execute(Effect.never))
      yield* Effect.yieldNow
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(yield* breaker.state, "closed")
    }))

  it.effect("operators: force-open, force-close (disabled) and reset", () =>
    Effect.gen(function*() {
      const breaker = yield* consecutive()
      const forced = yield* breaker.forceOpen
      assert.strictEqual(forced.state, "forced-open")
      yield* TestClock.adjust("1 hour")
      isOpenError(yield* outcome(breaker, ok))
      const disabled = yield* breaker.forceClose
      assert.strictEqual(disabled.state, "disabled")
      for (let i = 0; i < 10; i++) yield* outcome(breaker, boom)
      assert.strictEqual(yield* breaker.state, "disabled")
      const reset = yield* breaker.reset
      assert.strictEqual(reset.state, "closed")
      for (let i = 0; i < 3; i++) yield* outcome(breaker, boom)
      assert.strictEqual(yield* breaker.state, "open")
      yield* breaker.reset
      assert.deepStrictEqual(yield* outcome(breaker, ok), Result.succeed("ok"))
    }))

  it.effect("publishes every transition on the registry stream", () =>
    Effect.gen(function*() {
      const registry = yield* CircuitBreaker.CircuitBreaker
      const subscription = yield* registry.subscribe
      const breaker = yield* registry.get("ollama")
      for (let i = 0; i < 3; i++) yield* outcome(breaker, boom)
      yield* TestClock.adjust("10 seconds")
      yield* outcome(breaker, boom)
      yield* TestClock.adjust("20 seconds")
      yield* outcome(breaker, ok)
      yield* registry.forceOpen("ollama")
      yield* registry.forceClose("ollama")
      yield* registry.reset("ollama")
      const changes = yield* PubSub.takeAll(subscription)
      assert.deepStrictEqual(changes.map((c) => `${c.from}>${c.to}`), [
        "closed>open",
        "open>half-open",
        "half-open>open",
        "open>half-open",
        "half-open>closed",
        "closed>forced-open",
        "forced-open>disabled",
        "disabled>closed"
      ])
      assert.isTrue(changes.every((c) => c.name === "ollama" && !c.remote))
      assert.deepStrictEqual(changes.map((c) => c.at).slice(0, 2), [0, 10_000])
    }).pipe(Effect.provide(CircuitBreaker.layer({
      defaults: { tripPolicy: CircuitBreaker.consecutive(3), openDuration: "10 seconds", maxOpenDuration: "1 minute" }
    }))))

  it.effect("registry: per-name policies, snapshot, unknown names, metrics", () =>
    Effect.gen(function*() {
      const registry = yield* CircuitBreaker.CircuitBreaker
      const before = yield* registry.snapshot
      assert.deepStrictEqual(before.map((s) => s.name), ["qdrant"]) // configured breakers exist from the start
      yield* Effect.result(registry.execute("ollama", boom))
      assert.strictEqual((yield* registry.snapshotOf("ollama")).state, "open")
      yield* Effect.result(registry.execute("qdrant", boom))
      assert.strictEqual((yield* registry.snapshotOf("qdrant")).state, "closed")
      const all = yield* registry.snapshot
      assert.deepStrictEqual(all.map((s) => [s.name, s.state]), [["ollama", "open"], ["qdrant", "closed"]])
      assert.strictEqual(all[1]!.consecutiveFailures, 1)
      const missing = yield* Effect.result(registry.forceOpen("nope"))
      assert.isTrue(Result.isFailure(missing) && missing.failure._tag === "BreakerNotFound")
      const state = yield* Metric.value(Metric.withAttributes(CircuitBreaker.metrics.state, { breaker: "ollama" }))
      assert.strictEqual(state.value, 1)
      const rejections = Metric.withAttributes(CircuitBreaker.metrics.rejections, { breaker: "ollama" })
      const r0 = (yield* Metric.value(rejections)).count
      yield* Effect.result(registry.execute("ollama", ok))
      assert.strictEqual((yield* Metric.value(rejections)).count, r0 + 1)
    }).pipe(Effect.provide(CircuitBreaker.layer({
      defaults: { tripPolicy: CircuitBreaker.consecutive(1), openDuration: "10 seconds" },
      breakers: { qdrant: { tripPolicy: CircuitBreaker.consecutive(2), openDuration: "10 seconds" } }
    }))))

  it.effect("the changes stream of one breaker", () =>
    Effect.gen(function*() {
      const breaker = yield* consecutive({ tripPolicy: CircuitBreaker.consecutive(1) })
      const collected = yield* Effect.forkChild(Stream.runCollect(Stream.take(breaker.changes, 2)))
      yield* Effect.yieldNow
      yield* Effect.yieldNow
      yield* outcome(breaker, boom)
      yield* breaker.reset
      const changes = yield* Fiber.join(collected)
      assert.deepStrictEqual(changes.map((c) => c.to), ["open", "closed"])
    }))

  it.effect("outcomes of calls admitted before a trip change nothing", () =>
    Effect.gen(function*() {
      const breaker = yield* consecutive({ tripPolicy: CircuitBreaker.consecutive(1), openDuration: "1 second" })
      const gate = yield* Deferred.make<void>()
      const late = yield* Effect.forkChild(outcome(breaker, Effect.andThen(Deferred.await(gate), boom)))
      yield* Effect.yieldNow
      yield* outcome(breaker, boom) // opens
      const opened = yield* breaker.snapshot
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(late)
      const after = yield* breaker.snapshot
      assert.strictEqual(after.state, "open")
      assert.strictEqual(after.version, opened.version)
      assert.strictEqual(after.attempts, 1)
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* outcome(breaker, ok), Result.succeed("ok"))
      assert.strictEqual(yield* breaker.state, "closed")
    }))

  it.effect("config: a failure-rate policy from the environment; bad values are config errors", () =>
    Effect.gen(function*() {
      const fromEnv = (env: Record<string, string>) => CircuitBreaker.config.parse(ConfigProvider.fromEnv({ env }))
      const rate = yield* fromEnv({ FAILURE_RATE: "0.5", WINDOW_SIZE: "4", OPEN_DURATION: "2 seconds" })
      assert.deepStrictEqual(rate.tripPolicy, {
        _tag: "FailureRate",
        threshold: 0.5,
        minimumThroughput: 10,
        window: { _tag: "Count", size: 4 }
      })
      assert.isUndefined(rate.slowCall)
      const defaults = yield* fromEnv({})
      assert.deepStrictEqual(defaults.tripPolicy, { _tag: "Consecutive", threshold: 5 })
      const bad = yield* Effect.result(fromEnv({ FAILURE_THRESHOLD: "many" }))
      assert.isTrue(Result.isFailure(bad))
      const breakers = yield* Effect.result(
        Layer.build(CircuitBreaker.layerConfig()).pipe(
          Effect.provideService(
            ConfigProvider.ConfigProvider,
            ConfigProvider.fromEnv({ env: { OPEN_DURATION: "soon" } })
          ),
          Effect.scoped
        )
      )
      assert.isTrue(Result.isFailure(breakers))
    }))

  it.effect("a replica that went its own way while the store was unreachable follows the store again", () => {
    // A shared store whose backend can go away: while down it computes transitions locally, marked `local`.
    let down = false
    let shared = Machine.initial
    const write = (next: Machine.Shared) => (shared = next)
    const mark = (record: Machine.Shared): Machine.Shared => ({ ...record, local: true })
    const store: CircuitBreakerStore.Store = {
      load: () => Effect.sync(() => shared),
      cas: (_name, current, expected, next) =>
        Effect.sync(() =>
          down ? mark(Machine.cas(current, expected, next)) : write(Machine.cas(shared, expected, next))
        ),
      set: (_name, current, next) =>
        Effect.sync(() => down ? mark(Machine.cas(current, -1, next)) : write(Machine.cas(shared, -1, next))),
      acquireTrial: (_name, current, now, max, lease) =>
        Effect.sync(() => {
          if (down) {
            const [granted, record] = Machine.acquireTrial(current, now, max, lease)
            return [granted, mark(record)] as const
          }
          const [granted, record] = Machine.acquireTrial(shared, now, max, lease)
          write(record)
          return [granted, record] as const
        }),
      trialSuccess: (_name, current, version, now, threshold) =>
        Effect.sync(() =>
          down
            ? mark(Machine.trialSuccess(current, version, now, threshold))
            : write(Machine.trialSuccess(shared, version, now, threshold))
        ),
      release: (_name, current, version) =>
        Effect.sync(() => down ? mark(Machine.release(current, version)) : write(Machine.release(shared, version))),
      changes: Stream.empty
    }
    return Effect.gen(function*() {
      const registry = yield* CircuitBreaker.CircuitBreaker
      const dep = yield* registry.get("dep")
      down = true
      yield* outcome(dep, boom)
      assert.strictEqual(yield* dep.state, "open") // locally
      assert.strictEqual(shared.status, "closed") // the store never heard of it
      yield* TestClock.adjust("10 seconds")
      down = false
      assert.deepStrictEqual(yield* outcome(dep, ok), Result.succeed("ok"))
      assert.strictEqual(yield* dep.state, "closed")
      yield* outcome(dep, boom)
      assert.strictEqual(yield* dep.state, "open")
      assert.strictEqual(shared.status, "open")
    }).pipe(
      Effect.provide(Layer.provide(
        CircuitBreaker.layerStore({
          defaults: { tripPolicy: CircuitBreaker.consecutive(1), openDuration: "10 seconds" }
        }),
        Layer.succeed(CircuitBreakerStore.CircuitBreakerStore, store)
      ))
    )
  })
})
