/**
 * Our breaker registry served as the `CircuitBreaker` service of Effect 4's `effect/persistence`, so that code written
 * against Effect 4's interface (`breaker.execute({ key })`, `state(key)`, `transitions`, typed `CircuitBreakerError`
 * with `CircuitOpen` / `CircuitHalfOpen` reasons, an `ExecutionPlan` step guarded per key, a library that asks for
 * `CircuitBreaker.CircuitBreaker`) runs through our breakers: their policies, operator states, metrics, admin
 * endpoints and the fleet-wide state of the Redis store.
 *
 * A key is a breaker of the registry (created on first use with the registry's policy for that name). How Effect 4's
 * interface maps onto ours:
 *
 * - `execute`: without `classify`, the breaker's own classification decides (`isFailure`; defects count;
 *   interruptions never do); with it, its `Outcome` decides and a `Failure`'s `retryAfter` can lengthen the break it
 *   opens, up to the breaker's `maxOpenDuration`. Slow calls are added on top, as for every call. A classifier that
 *   dies makes the outcome `Ignored` and the call dies. `onRejection: "allow"` runs a refused call unrecorded.
 * - Rejections: `open` and `forced-open` fail with `CircuitOpen` (for `forced-open`, `retryAfter` is the first break
 *   duration, as our own `CircuitOpen` says); a half-open breaker whose `halfOpenMaxCalls` trials are all taken fails
 *   with `CircuitHalfOpen`.
 * - `state(key)`: `closed` and `disabled` read as `Closed`; `open` as `Open` with the remaining break; `forced-open`
 *   as `Open` with an infinite `retryAfter` (it ends when an operator acts); `half-open` as `HalfOpen`, `probing`
 *   while this replica sees a trial permit in use. A key with no breaker reads `Closed`.
 * - `transitions`: the transitions this replica made on Effect 4's edges (`Closed → Open`, `Open → HalfOpen`,
 *   `HalfOpen → Open`, `HalfOpen → Closed`); operator transitions and those adopted from other replicas are left out.
 *   The registry's `changes` has them all.
 *
 * @since 0.1.0
 */
import { Cause, Duration, Effect, Exit, Layer, Stream } from "effect"
import { dual } from "effect/Function"
import { CircuitBreaker as Effect4 } from "effect/persistence"
import * as CircuitBreaker from "../CircuitBreaker.js"

const rejection = (key: string) => (status: CircuitBreaker.State, retryAfter: number): Effect4.CircuitBreakerError =>
  new Effect4.CircuitBreakerError({
    reason: status === "half-open"
      ? new Effect4.CircuitHalfOpen({ key })
      : new Effect4.CircuitOpen({ key, retryAfter: Duration.millis(retryAfter) })
  })

const toVerdict = (outcome: Effect4.Outcome): CircuitBreaker.Verdict =>
  outcome._tag === "Failure"
    ? { outcome: "Failure", hintMs: outcome.retryAfter === undefined ? 0 : Duration.toMillis(outcome.retryAfter) }
    : { outcome: outcome._tag }

const toState = (key: string, snapshot: CircuitBreaker.Snapshot): Effect4.State => {
  switch (snapshot.state) {
    case "closed":
    case "disabled":
      return { _tag: "Closed", key }
    case "open":
      return {
        _tag: "Open",
        key,
        retryAfter: Duration.millis(snapshot.retryAfter ?? 0),
        consecutiveOpenings: snapshot.attempts
      }
    case "forced-open":
      return { _tag: "Open", key, retryAfter: Duration.infinity, consecutiveOpenings: snapshot.attempts }
    case "half-open":
      return { _tag: "HalfOpen", key, probing: snapshot.trials > 0, consecutiveOpenings: snapshot.attempts }
  }
}

const toTransition = (change: CircuitBreaker.StateChange): Effect4.Transition | undefined => {
  const key = change.name
  switch (`${change.from}>${change.to}`) {
    case "closed>open":
    case "half-open>open":
      return {
        key,
        from: change.from === "closed" ? "Closed" : "HalfOpen",
        to: "Open",
        retryAfter: Duration.millis(Math.max(0, change.openUntil - change.at)),
        consecutiveOpenings: change.attempts
      }
    case "open>half-open":
      return { key, from: "Open", to: "HalfOpen" }
    case "half-open>closed":
      return { key, from: "HalfOpen", to: "Closed" }
    default:
      return undefined
  }
}

/**
 * Effect 4's `CircuitBreaker` over the registry in context.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * import { CircuitBreaker, CircuitBreakerPersistence } from "@ouroboros/circuit-breaker"
 * import { Effect } from "effect"
 * import { CircuitBreaker as Effect4 } from "effect/persistence"
 *
 * const program = Effect.gen(function*() {
 *   const breaker = yield* Effect4.CircuitBreaker
 *   return yield* Effect.succeed("answer").pipe(breaker.execute({ key: "ollama" }))
 * }).pipe(
 *   Effect.provide(CircuitBreakerPersistence.layer),
 *   Effect.provide(CircuitBreaker.layer({ defaults: CircuitBreaker.defaultOptions }))
 * )
 */
export const make: Effect.Effect<Effect4.CircuitBreaker, never, CircuitBreaker.CircuitBreaker> = Effect.gen(
  function*() {
    const registry = yield* CircuitBreaker.CircuitBreaker

    const execute = <A, E, R, R2 = never>(
      self: Effect.Effect<A, E, R>,
      { classify, key, onRejection }: {
        readonly key: string
        readonly classify?: Effect4.Classifier<A, E, R2> | undefined
        readonly onRejection?: "fail" | "allow" | undefined
      }
    ): Effect.Effect<A, E | Effect4.CircuitBreakerError, R | R2> =>
      Effect.flatMap(registry.get(key), (breaker) => {
        const { classifyExit, run } = CircuitBreaker.internals(breaker)
        return run(self, {
          allow: onRejection === "allow",
          reject: rejection(key),
          classify: (exit, probe) =>
            classify === undefined || (Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause))
              ? Effect.succeed(classifyExit(exit))
              : Effect.map(
                Effect.suspend(() => {
                  const outcome = classify(exit, { probe })
                  return Effect.isEffect(outcome) ? outcome : Effect.succeed(outcome)
                }),
                toVerdict
              )
        })
      })

    return Effect4.CircuitBreaker.of({
      [Effect4.TypeId]: Effect4.TypeId,
      execute: dual(2, execute),
      state: (key) =>
        registry.snapshotOf(key).pipe(
          Effect.map((snapshot) => toState(key, snapshot)),
          Effect.catchTag("BreakerNotFound", () => Effect.succeed<Effect4.State>({ _tag: "Closed", key }))
        ),
      transitions: registry.changes.pipe(
        Stream.filter((change) => !change.remote),
        Stream.map(toTransition),
        Stream.filter((transition): transition is Effect4.Transition => transition !== undefined)
      )
    })
  }
)

/**
 * Provides Effect 4's `CircuitBreaker` service (`effect/persistence`) from our registry.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Effect4.CircuitBreaker, never, CircuitBreaker.CircuitBreaker> = Layer.effect(
  Effect4.CircuitBreaker,
  make
)
