/**
 * Our registry served as Effect 4's `effect/persistence` `CircuitBreaker`: code written against that interface runs
 * through our breakers.
 */
import { assert, describe, it } from "@effect/vitest"
import { CircuitBreaker, CircuitBreakerPersistence } from "@ouroboros/circuit-breaker"
import { Deferred, Duration, Effect, Exit, Fiber, Layer, Result, Stream } from "effect"
import { CircuitBreaker as Effect4 } from "effect/persistence"
import { TestClock } from "effect/testing"

const Breakers = CircuitBreaker.layer({
  defaults: {
    tripPolicy: CircuitBreaker.consecutive(2),
    openDuration: "10 seconds",
    maxOpenDuration: "1 minute",
    isFailure: (error) => error !== "not-found"
  }
})
const Live = Layer.provideMerge(CircuitBreakerPersistence.layer, Breakers)

const reasonOf = (result: Result.Result<unknown, unknown>) => {
  assert.isTrue(Result.isFailure(result))
  const error = (result as Result.Failure<unknown, unknown>).failure
  assert.instanceOf(error, Effect4.CircuitBreakerError)
  return (error as Effect4.CircuitBreakerError).reason
}

describe("CircuitBreakerPersistence", () => {
  it.effect("execute and state follow our breaker; rejections are Effect 4's CircuitOpen", () =>
    Effect.gen(function*() {
      const breaker = yield* Effect4.CircuitBreaker
      assert.deepStrictEqual(yield* breaker.state("dep"), { _tag: "Closed", key: "dep" })
      // The registry's `isFailure` decides when no classifier is given.
      for (let i = 0; i < 3; i++) yield* Effect.result(Effect.fail("not-found").pipe(breaker.execute({ key: "dep" })))
      assert.strictEqual((yield* breaker.state("dep"))._tag, "Closed")
      for (let i = 0; i < 2; i++) yield* Effect.result(Effect.fail("down").pipe(breaker.execute({ key: "dep" })))
      let ran = false
      const call = Effect.sync(() => (ran = true)).pipe(breaker.execute({ key: "dep" }))
      const reason = reasonOf(yield* Effect.result(call))
      assert.isFalse(ran)
      assert.instanceOf(reason, Effect4.CircuitOpen)
      assert.strictEqual(reason.key, "dep")
      assert.strictEqual(Duration.toMillis((reason as Effect4.CircuitOpen).retryAfter), 10_000)
      yield* TestClock.adjust("4 seconds")
      const state = yield* breaker.state("dep")
      assert.strictEqual(state._tag, "Open")
      assert.strictEqual(state._tag === "Open" && Duration.toMillis(state.retryAfter), 6_000)
      assert.strictEqual(state._tag === "Open" && state.consecutiveOpenings, 1)
      // The same breaker, seen through our registry.
      const registry = yield* CircuitBreaker.CircuitBreaker
      assert.strictEqual((yield* registry.snapshotOf("dep")).state, "open")
      yield* TestClock.adjust("6 seconds")
      assert.strictEqual(yield* Effect.succeed("ok").pipe(breaker.execute({ key: "dep" })), "ok")
      assert.deepStrictEqual(yield* breaker.state("dep"), { _tag: "Closed", key: "dep" })
    }).pipe(Effect.provide(Live)))

  it.effect("operator states: forced-open rejects and reads Open until an operator acts; disabled reads Closed", () =>
    Effect.gen(function*() {
      const breaker = yield* Effect4.CircuitBreaker
      const registry = yield* CircuitBreaker.CircuitBreaker
      yield* registry.get("dep")
      yield* registry.forceOpen("dep")
      const reason = reasonOf(yield* Effect.result(Effect.succeed(1).pipe(breaker.execute({ key: "dep" }))))
      assert.instanceOf(reason, Effect4.CircuitOpen)
      const forced = yield* breaker.state("dep")
      assert.isTrue(forced._tag === "Open" && !Duration.isFinite(forced.retryAfter))
      yield* registry.forceClose("dep")
      for (let i = 0; i < 5; i++) yield* Effect.result(Effect.fail("down").pipe(breaker.execute({ key: "dep" })))
      assert.deepStrictEqual(yield* breaker.state("dep"), { _tag: "Closed", key: "dep" })
      assert.strictEqual((yield* registry.snapshotOf("dep")).state, "disabled")
    }).pipe(Effect.provide(Live)))

  it.effect("half-open: a call while the trial runs is CircuitHalfOpen; onRejection allow runs it unrecorded", () =>
    Effect.gen(function*() {
      const breaker = yield* Effect4.CircuitBreaker
      for (let i = 0; i < 2; i++) yield* Effect.result(Effect.fail("down").pipe(breaker.execute({ key: "dep" })))
      yield* TestClock.adjust("10 seconds")
      const gate = yield* Deferred.make<void>()
      const probe = yield* Effect.forkChild(Deferred.await(gate).pipe(breaker.execute({ key: "dep" })), {
        startImmediately: true
      })
      const state = yield* breaker.state("dep")
      assert.deepStrictEqual(state, { _tag: "HalfOpen", key: "dep", probing: true, consecutiveOpenings: 1 })
      const reason = reasonOf(yield* Effect.result(Effect.succeed(1).pipe(breaker.execute({ key: "dep" }))))
      assert.instanceOf(reason, Effect4.CircuitHalfOpen)
      // Refused, but run, and its failure is not recorded: the trial still decides.
      const allowed = yield* Effect.result(
        Effect.fail("down").pipe(breaker.execute({ key: "dep", onRejection: "allow" }))
      )
      assert.deepStrictEqual(allowed, Result.fail("down"))
      assert.strictEqual((yield* breaker.state("dep"))._tag, "HalfOpen")
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(probe)
      assert.deepStrictEqual(yield* breaker.state("dep"), { _tag: "Closed", key: "dep" })
    }).pipe(Effect.provide(Live)))

  it.effect("classify: Ignored counts nothing, a Failure's retryAfter lengthens the break up to maxOpenDuration", () =>
    Effect.gen(function*() {
      const breaker = yield* Effect4.CircuitBreaker
      const rateLimited = (retryAfter: Duration.Input) =>
        Effect.fail({ status: 429 }).pipe(breaker.execute({
          key: "dep",
          classify: (exit) => Exit.isFailure(exit) ? Effect4.failure({ retryAfter }) : Effect4.success
        }))
      const ignored = Effect.fail("meh").pipe(breaker.execute({ key: "dep", classify: () => Effect4.ignored }))
      for (let i = 0; i < 5; i++) yield* Effect.result(ignored)
      assert.strictEqual((yield* breaker.state("dep"))._tag, "Closed")
      yield* Effect.result(rateLimited("30 seconds"))
      yield* Effect.result(rateLimited("30 seconds"))
      const open = yield* breaker.state("dep")
      assert.strictEqual(open._tag === "Open" && Duration.toMillis(open.retryAfter), 30_000)
      yield* TestClock.adjust("30 seconds")
      // A failed trial with a hint over the cap: the break is the cap.
      yield* Effect.result(rateLimited("1 hour"))
      const reopened = yield* breaker.state("dep")
      assert.strictEqual(reopened._tag === "Open" && Duration.toMillis(reopened.retryAfter), 60_000)
    }).pipe(Effect.provide(Live)))

  it.effect("a classifier that dies: the outcome is Ignored and the call dies", () =>
    Effect.gen(function*() {
      const breaker = yield* Effect4.CircuitBreaker
      const exit = yield* Effect.exit(
        Effect.fail("down").pipe(breaker.execute({
          key: "dep",
          classify: () => Effect.die("classifier bug")
        }))
      )
      assert.isTrue(Exit.isFailure(exit) && exit.cause.reasons.some((reason) => reason._tag === "Die"))
      yield* Effect.result(Effect.fail("down").pipe(breaker.execute({ key: "dep" })))
      // One recorded failure of two: still closed.
      assert.strictEqual((yield* breaker.state("dep"))._tag, "Closed")
    }).pipe(Effect.provide(Live)))

  it.effect("transitions: Effect 4's edges, without operator transitions", () =>
    Effect.gen(function*() {
      const breaker = yield* Effect4.CircuitBreaker
      const registry = yield* CircuitBreaker.CircuitBreaker
      const collected = yield* Effect.forkChild(Stream.runCollect(Stream.take(breaker.transitions, 5)), {
        startImmediately: true
      })
      yield* Effect.yieldNow
      for (let i = 0; i < 2; i++) yield* Effect.result(Effect.fail("down").pipe(breaker.execute({ key: "dep" })))
      yield* TestClock.adjust("10 seconds")
      yield* Effect.result(Effect.fail("down").pipe(breaker.execute({ key: "dep" }))) // trial fails: 20 s
      yield* registry.forceOpen("dep")
      yield* registry.reset("dep")
      for (let i = 0; i < 2; i++) yield* Effect.result(Effect.fail("down").pipe(breaker.execute({ key: "dep" })))
      yield* TestClock.adjust("1 minute")
      yield* Effect.succeed(1).pipe(breaker.execute({ key: "dep" }))
      const transitions = yield* Fiber.join(collected)
      assert.deepStrictEqual(transitions.map((t) => `${t.from}>${t.to}`), [
        "Closed>Open",
        "Open>HalfOpen",
        "HalfOpen>Open",
        "Closed>Open",
        "Open>HalfOpen"
      ])
      const opens = transitions.filter((t) => t.to === "Open")
      assert.deepStrictEqual(
        opens.map((t) => t.to === "Open" ? [Duration.toMillis(t.retryAfter), t.consecutiveOpenings] : []),
        [[10_000, 1], [20_000, 2], [10_000, 1]]
      )
    }).pipe(Effect.provide(Live)))
})
