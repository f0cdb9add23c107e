import { assert, describe, it } from "@effect/vitest"
import { CircuitBreaker, Resilience } from "@ouroboros/circuit-breaker"
import { ConfigProvider, Deferred, Effect, Fiber, Layer, Result } from "effect"
import { TestClock } from "effect/testing"

const Breakers = CircuitBreaker.layer({
  defaults: { tripPolicy: CircuitBreaker.consecutive(2), openDuration: "10 seconds" }
})

const tagOf = (result: Result.Result<unknown, unknown>): unknown =>
  Result.isFailure(result) ? (result.failure as { _tag?: string })._tag ?? result.failure : "right"

describe("Resilience", () => {
  it.effect("bulkhead: runs `concurrency`, queues `queue`, rejects the rest", () =>
    Effect.gen(function*() {
      const pipeline = yield* Resilience.make("bulk", { bulkhead: { concurrency: 1, queue: 1 } })
      const gate = yield* Deferred.make<void>()
      let running = 0
      let maxRunning = 0
      const work = Effect.gen(function*() {
        running++
        maxRunning = Math.max(maxRunning, running)
        yield* Deferred.await(gate)
        running--
        return "done"
      })
      const first = yield* Effect.forkChild(pipeline(work))
      const second = yield* Effect.forkChild(pipeline(work))
      yield* Effect.yieldNow
      assert.strictEqual(yield* pipeline.inFlight, 2)
      const third = yield* Effect.result(pipeline(work))
      assert.isTrue(Result.isFailure(third) && third.failure instanceof Resilience.BulkheadFull)
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Fiber.join(first), "done")
      assert.strictEqual(yield* Fiber.join(second), "done")
      assert.strictEqual(maxRunning, 1)
      assert.strictEqual(yield* pipeline.inFlight, 0)
      // A rejection by the bulkhead is a failure the breaker sees, like a timeout.
    }).pipe(Effect.provide(Breakers)))

  it.effect("timeout: a typed Timeout that the breaker counts", () =>
    Effect.gen(function*() {
      const pipeline = yield* Resilience.make("slow", { timeout: "1 second" })
      for (let i = 0; i < 2; i++) {
        const fiber = yield* Effect.forkChild(Effect.result(pipeline(Effect.never)))
        yield* TestClock.adjust("1 second")
        const result = yield* Fiber.join(fiber)
        assert.isTrue(Result.isFailure(result) && result.failure instanceof Resilience.Timeout)
        assert.strictEqual(Result.isFailure(result) && (result.failure as Resilience.Timeout).timeout, 1000)
      }
      assert.strictEqual(yield* pipeline.breaker.state, "open")
      const rejected = yield* Effect.result(pipeline(Effect.succeed(1)))
      assert.strictEqual(tagOf(rejected), "CircuitOpen")
    }).pipe(Effect.provide(Breakers)))

  it.effect("retry: only retryable errors, with a bounded number of attempts", () =>
    Effect.gen(function*() {
      const pipeline = yield* Resilience.make("flaky", {
        breaker: { tripPolicy: CircuitBreaker.consecutive(100), openDuration: "1 second" },
        retry: { times: 3, delay: "100 millis", maxDelay: "1 second" },
        isRetryable: (error) => error === "transient"
      })
      let attempts = 0
      const transient = Effect.suspend(() => {
        attempts++
        return attempts < 3 ? Effect.fail("transient" as const) : Effect.succeed("ok")
      })
      const fiber = yield* Effect.forkChild(pipeline(transient))
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(yield* Fiber.join(fiber), "ok")
      assert.strictEqual(attempts, 3)

      attempts = 0
      const fatal = Effect.suspend(() => {
        attempts++
        return Effect.fail("fatal" as const)
      })
      assert.deepStrictEqual(yield* Effect.result(pipeline(fatal)), Result.fail("fatal" as const))
      assert.strictEqual(attempts, 1)

      attempts = 0
      const always = Effect.suspend(() => {
        attempts++
        return Effect.fail("transient" as const)
      })
      const exhausted = yield* Effect.forkChild(Effect.result(pipeline(always)))
      yield* TestClock.adjust("10 seconds")
      assert.deepStrictEqual(yield* Fiber.join(exhausted), Result.fail("transient" as const))
      assert.strictEqual(attempts, 4)
    }).pipe(Effect.provide(Breakers)))

  it.effect("retry never retries a rejection of the open breaker", () =>
    Effect.gen(function*() {
      const pipeline = yield* Resilience.make("tripping", {
        breaker: { tripPolicy: CircuitBreaker.consecutive(1), openDuration: "1 minute" },
        retry: { times: 5, delay: "10 millis" },
        isRetryable: () => true
      })
      let attempts = 0
      const fiber = yield* Effect.forkChild(Effect.result(pipeline(Effect.suspend(() => {
        attempts++
        return Effect.fail("down")
      }))))
      yield* TestClock.adjust("1 second")
      const result = yield* Fiber.join(fiber)
      assert.strictEqual(tagOf(result), "CircuitOpen")
      assert.strictEqual(attempts, 1)
    }).pipe(Effect.provide(Breakers)))

  it.effect("fallback answers when the pipeline fails", () =>
    Effect.gen(function*() {
      const pipeline = yield* Resilience.make("ollama", {
        breaker: { tripPolicy: CircuitBreaker.consecutive(1), openDuration: "1 minute" }
      })
      const ask = (effect: Effect.Effect<string, string>) =>
        pipeline(effect).pipe(
          Effect.map((answer) => ({ answer, degraded: false })),
          Resilience.withFallbackWhen(
            (error) => error instanceof CircuitBreaker.CircuitOpen,
            () => Effect.succeed({ answer: "local", degraded: true })
          )
        )
      assert.deepStrictEqual(yield* Effect.result(ask(Effect.fail("down"))), Result.fail("down"))
      assert.deepStrictEqual(yield* ask(Effect.succeed("remote")), { answer: "local", degraded: true })
      const all = yield* Effect.fail("x").pipe(Resilience.withFallback(() => Effect.succeed("fallback")))
      assert.strictEqual(all, "fallback")
    }).pipe(Effect.provide(Breakers)))

  it.effect("decodes a policy from a config file; bad input names the field", () =>
    Effect.gen(function*() {
      const decoded = yield* Resilience.decodePolicy({
        breaker: { failureRate: 0.5, windowDuration: "30 seconds", openDuration: 5000, halfOpenMaxCalls: 2 },
        timeout: "2 seconds",
        retry: { times: 2, delay: "50 millis" },
        bulkhead: { concurrency: 4, queue: 8 }
      })
      assert.strictEqual(decoded.timeout, 2000)
      const policy = Resilience.fromConfig(decoded)
      assert.deepStrictEqual(policy.breaker?.tripPolicy, {
        _tag: "FailureRate",
        threshold: 0.5,
        minimumThroughput: undefined,
        window: { _tag: "Time", duration: 30000, buckets: undefined }
      })
      assert.strictEqual(policy.breaker?.openDuration, 5000)
      const bad = yield* Effect.result(Resilience.decodePolicy({ breaker: { failureRate: 2 }, timeout: "soon" }))
      assert.isTrue(Result.isFailure(bad))
      const message = Result.isFailure(bad) ? bad.failure.message : ""
      assert.include(message, "failureRate")
      assert.include(message, "timeout")
    }))

  it.effect("makeConfig reads the dependency's prefixed keys", () =>
    Effect.gen(function*() {
      const pipeline = yield* Resilience.makeConfig("ollama")
      const fiber = yield* Effect.forkChild(Effect.result(pipeline(Effect.never)))
      yield* TestClock.adjust("250 millis")
      const result = yield* Fiber.join(fiber)
      assert.strictEqual(tagOf(result), "Timeout")
    }).pipe(
      Effect.provide(Layer.mergeAll(
        Breakers,
        ConfigProvider.layer(ConfigProvider.fromEnv({ env: { OLLAMA_TIMEOUT: "250 millis", OLLAMA_RETRY_TIMES: "0" } }))
      ))
    ))
})
