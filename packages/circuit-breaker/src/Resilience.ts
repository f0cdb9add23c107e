/**
 * Resilience pipelines per dependency, composed outermost first:
 * `fallback ← retry ← circuit breaker ← timeout ← bulkhead`.
 *
 * - bulkhead: at most `concurrency` calls run and `queue` wait; others fail with `BulkheadFull` at once.
 * - timeout: each attempt fails with `Timeout` after `timeout` (queueing in the bulkhead counts).
 * - circuit breaker: sees one outcome per attempt (timeouts included) and rejects with `CircuitOpen` while open.
 * - retry: jittered exponential backoff, only for errors `isRetryable` accepts; never for `CircuitOpen` or
 *   `BulkheadFull`.
 * - fallback: `withFallback`, applied by the caller, which knows what a degraded answer is.
 *
 * @since 0.1.0
 */
import {
  Config,
  Duration,
  Effect,
  Option,
  Predicate,
  Schedule,
  Schema,
  SchemaIssue,
  SchemaTransformation,
  Semaphore
} from "effect"
import * as CircuitBreaker from "./CircuitBreaker.js"

/**
 * An attempt took longer than the dependency's timeout.
 *
 * @since 0.1.0
 * @category errors
 */
export class Timeout extends Schema.TaggedError<Timeout>()(
  "Timeout",
  { name: Schema.String, timeout: Schema.Finite },
  { httpApiStatus: 504, description: "A dependency did not answer in time" }
) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.name} did not answer within ${this.timeout} ms`
  }
}

/**
 * The dependency's bulkhead is full (running and queued calls at their limits).
 *
 * @since 0.1.0
 * @category errors
 */
export class BulkheadFull extends Schema.TaggedError<BulkheadFull>()(
  "BulkheadFull",
  { name: Schema.String, concurrency: Schema.Finite, queue: Schema.Finite },
  { httpApiStatus: 503, description: "Too many concurrent calls to a dependency" }
) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.name}: ${this.concurrency} calls running and ${this.queue} queued`
  }
}

/**
 * The errors a pipeline adds to the wrapped effect's.
 *
 * @since 0.1.0
 * @category errors
 */
export type ResilienceError = CircuitBreaker.CircuitOpen | Timeout | BulkheadFull

/**
 * The policy of one dependency. Every part is optional; a missing part is not applied.
 *
 * @since 0.1.0
 * @category models
 */
export interface Policy {
  readonly breaker?: CircuitBreaker.Options | undefined
  /** Per attempt. */
  readonly timeout?: Duration.Input | undefined
  readonly retry?: {
    /** Retries after the first attempt. */
    readonly times: number
    /** First delay; grows by `factor` (default 2) with full jitter, capped by `maxDelay`. */
    readonly delay: Duration.Input
    readonly factor?: number | undefined
    readonly maxDelay?: Duration.Input | undefined
  } | undefined
  /** Which errors are worth another attempt (default: `Timeout` only). */
  readonly isRetryable?: ((error: unknown) => boolean) | undefined
  readonly bulkhead?: { readonly concurrency: number; readonly queue: number } | undefined
}

/**
 * A pipeline: call it with an effect to run that effect through the policy.
 *
 * @since 0.1.0
 * @category models
 */
export interface Pipeline {
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | ResilienceError, R>
  readonly name: string
  /** The breaker of the dependency (for snapshots and operator actions). */
  readonly breaker: CircuitBreaker.Breaker
  /** Calls running or queued in the bulkhead. */
  readonly inFlight: Effect.Effect<number>
}

const isTimeout = (error: unknown): boolean => Predicate.isTagged(error, "Timeout")

const neverRetried = (error: unknown): boolean =>
  Predicate.isTagged(error, "CircuitOpen") || Predicate.isTagged(error, "BulkheadFull")

/**
 * The jittered exponential schedule of a retry policy.
 *
 * @since 0.1.0
 * @category constructors
 */
export const retrySchedule = (retry: NonNullable<Policy["retry"]>): Schedule.Schedule<unknown> => {
  const base = Schedule.exponential(retry.delay, retry.factor ?? 2).pipe(Schedule.jittered)
  const maxDelay = retry.maxDelay === undefined ? undefined : Duration.fromInputUnsafe(retry.maxDelay)
  const capped = maxDelay === undefined
    ? base
    : Schedule.modifyDelay(base, ({ duration }) => Effect.succeed(Duration.min(duration, maxDelay)))
  // Recurs while both do, waiting the longer delay: the capped backoff, at most `times` times.
  return Schedule.max([capped, Schedule.recurs(Math.max(0, retry.times))])
}

/**
 * Builds the pipeline of dependency `name`, with its breaker taken from the registry.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * import { CircuitBreaker, Resilience } from "@ouroboros/circuit-breaker"
 * import { Effect } from "effect"
 * const program = Effect.gen(function*() {
 *   const ollama = yield* Resilience.make("ollama", {
 *     breaker: { tripPolicy: CircuitBreaker.consecutive(5), openDuration: "10 seconds" },
 *     timeout: "30 seconds",
 *     retry: { times: 2, delay: "100 millis" },
 *     bulkhead: { concurrency: 8, queue: 32 }
 *   })
 *   return yield* ollama(Effect.succeed("answer")).pipe(Resilience.withFallback(() => Effect.succeed("local")))
 * })
 */
export const make = (
  name: string,
  policy: Policy = {}
): Effect.Effect<Pipeline, never, CircuitBreaker.CircuitBreaker> =>
  Effect.gen(function*() {
    const registry = yield* CircuitBreaker.CircuitBreaker
    const breaker = yield* registry.get(name, policy.breaker)
    const bulkhead = policy.bulkhead
    const semaphore = bulkhead === undefined ? undefined : yield* Semaphore.make(Math.max(1, bulkhead.concurrency))
    const limit = bulkhead === undefined ? Infinity : Math.max(1, bulkhead.concurrency) + Math.max(0, bulkhead.queue)
    const timeoutMs = policy.timeout === undefined ? undefined : Duration.toMillis(policy.timeout)
    const retryable = policy.isRetryable ?? isTimeout
    const schedule = policy.retry === undefined || policy.retry.times <= 0 ? undefined : retrySchedule(policy.retry)
    let inFlight = 0

    const withBulkhead = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | BulkheadFull, R> =>
      semaphore === undefined ?
        effect :
        Effect.uninterruptibleMask((restore) =>
          Effect.suspend((): Effect.Effect<A, E | BulkheadFull, R> => {
            if (inFlight >= limit) {
              return Effect.fail(
                new BulkheadFull({ name, concurrency: bulkhead!.concurrency, queue: bulkhead!.queue })
              )
            }
            inFlight++
            return Effect.ensuring(
              restore(semaphore.withPermits(1)(effect)),
              Effect.sync(() => {
                inFlight--
              })
            )
          })
        )

    const withTimeout = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | Timeout, R> =>
      timeoutMs === undefined
        ? effect
        : Effect.timeoutOrElse(effect, {
          duration: timeoutMs,
          orElse: () => Effect.fail(new Timeout({ name, timeout: timeoutMs }))
        })

    const pipeline = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | ResilienceError, R> => {
      const attempt = breaker.execute<A, E | Timeout | BulkheadFull, R>(withTimeout(withBulkhead(effect)))
      return schedule === undefined
        ? attempt
        : Effect.retry(attempt, { schedule, while: (error) => !neverRetried(error) && retryable(error) })
    }

    Object.defineProperty(pipeline, "name", { value: name })
    return Object.assign(pipeline, { breaker, inFlight: Effect.sync(() => inFlight) }) as Pipeline
  })

/**
 * Answers with `fallback` when the pipeline (or any effect) fails; the outermost stage.
 *
 * @since 0.1.0
 * @category combinators
 * @example
 * import { Resilience } from "@ouroboros/circuit-breaker"
 * import { Effect } from "effect"
 * const answer = Effect.fail("down").pipe(Resilience.withFallback(() => Effect.succeed({ degraded: true })))
 */
export const withFallback =
  <E, A2, E2, R2>(fallback: (error: E) => Effect.Effect<A2, E2, R2>) =>
  <A, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A | A2, E2, R | R2> => Effect.catch(self, fallback)

/**
 * Like `withFallback`, but only for the errors `when` accepts; others pass through.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withFallbackWhen = <E, A2, E2, R2>(
  when: (error: E) => boolean,
  fallback: (error: E) => Effect.Effect<A2, E2, R2>
) =>
<A, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A | A2, E | E2, R | R2> => Effect.catchIf(self, when, fallback)

// ---------------------------------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------------------------------

/**
 * A duration in a config file: milliseconds, or a string such as `"10 seconds"`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const DurationInput = Schema.Union([
  Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0)),
  Schema.String.pipe(Schema.decodeTo(
    Schema.Finite,
    SchemaTransformation.transformEffect({
      decode: (input: string, options) =>
        Option.match(Duration.fromInput(input as Duration.Input), {
          onNone: () =>
            Effect.fail(new SchemaIssue.InvalidValue({ message: `not a duration: ${input}` }, input, options)),
          onSome: (duration) => Effect.succeed(Duration.toMillis(duration))
        }),
      encode: (millis: number) => Effect.succeed(`${millis} millis`)
    })
  ))
]).annotate({ identifier: "DurationInput", description: "milliseconds, or a string such as \"10 seconds\"" })

const Ratio = Schema.Finite.check(Schema.isGreaterThan(0), Schema.isLessThanOrEqualTo(1))
const Positive = Schema.Int.check(Schema.isGreaterThan(0))
const NonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
const Factor = Schema.Finite.check(Schema.isGreaterThanOrEqualTo(1))

/**
 * The policy of one dependency as written in a config file (every field optional; durations in ms or as strings).
 *
 * @since 0.1.0
 * @category schemas
 */
export const PolicyConfig = Schema.Struct({
  breaker: Schema.optional(Schema.Struct({
    failureThreshold: Schema.optional(Positive),
    failureRate: Schema.optional(Ratio),
    windowSize: Schema.optional(Positive),
    windowDuration: Schema.optional(DurationInput),
    minimumThroughput: Schema.optional(Positive),
    openDuration: Schema.optional(DurationInput),
    maxOpenDuration: Schema.optional(DurationInput),
    backoffFactor: Schema.optional(Factor),
    halfOpenMaxCalls: Schema.optional(Positive),
    successThreshold: Schema.optional(Positive),
    slowCallDuration: Schema.optional(DurationInput),
    slowCallRate: Schema.optional(Ratio)
  })),
  timeout: Schema.optional(DurationInput),
  retry: Schema.optional(Schema.Struct({
    times: NonNegativeInt,
    delay: DurationInput,
    factor: Schema.optional(Factor),
    maxDelay: Schema.optional(DurationInput)
  })),
  bulkhead: Schema.optional(Schema.Struct({
    concurrency: Positive,
    queue: NonNegativeInt
  }))
}).annotate({ identifier: "ResiliencePolicy" })

/**
 * @since 0.1.0
 * @category models
 */
export type PolicyConfig = typeof PolicyConfig.Type

/**
 * Turns a decoded `PolicyConfig` into a `Policy`; missing breaker fields take `CircuitBreaker.defaultOptions`.
 * Predicates (`isRetryable`, `isFailure`) are code, so pass them here.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromConfig = (
  config: PolicyConfig,
  predicates: {
    readonly isRetryable?: ((error: unknown) => boolean) | undefined
    readonly isFailure?: ((error: unknown) => boolean) | undefined
  } = {}
): Policy => {
  const b = config.breaker ?? {}
  const defaults = CircuitBreaker.defaultOptions
  const tripPolicy: CircuitBreaker.TripPolicy = b.failureRate !== undefined
    ? CircuitBreaker.failureRate({
      threshold: b.failureRate,
      minimumThroughput: b.minimumThroughput,
      window: b.windowDuration !== undefined
        ? CircuitBreaker.timeWindow(b.windowDuration)
        : CircuitBreaker.countWindow(b.windowSize ?? 20)
    })
    : b.failureThreshold !== undefined
    ? CircuitBreaker.consecutive(b.failureThreshold)
    : defaults.tripPolicy
  return {
    breaker: {
      tripPolicy,
      openDuration: b.openDuration ?? defaults.openDuration,
      maxOpenDuration: b.maxOpenDuration ?? defaults.maxOpenDuration,
      backoffFactor: b.backoffFactor ?? defaults.backoffFactor,
      halfOpenMaxCalls: b.halfOpenMaxCalls,
      successThreshold: b.successThreshold,
      slowCall: b.slowCallDuration === undefined
        ? undefined
        : { duration: b.slowCallDuration, rateThreshold: b.slowCallRate },
      isFailure: predicates.isFailure
    },
    timeout: config.timeout,
    retry: config.retry,
    isRetryable: predicates.isRetryable,
    bulkhead: config.bulkhead
  }
}

/**
 * Decodes a policy from unknown input (a config file section); errors name the field.
 *
 * @since 0.1.0
 * @category constructors
 */
export const decodePolicy: (input: unknown) => Effect.Effect<PolicyConfig, Schema.SchemaError> = Schema
  .decodeUnknownEffect(PolicyConfig, { errors: "all" })

/**
 * A default dependency policy from configuration (nest it per dependency, e.g. `Config.nested(config, "OLLAMA")`):
 * the breaker keys of `CircuitBreaker.config`, plus
 *
 * - `TIMEOUT` (30 seconds): time limit of one attempt;
 * - `RETRY_TIMES` (2): retries after a retryable failure (0 = none);
 * - `RETRY_DELAY` (100 millis): first retry delay (exponential, jittered);
 * - `RETRY_MAX_DELAY` (2 seconds): longest retry delay;
 * - `BULKHEAD_CONCURRENCY` (16): concurrent calls to the dependency;
 * - `BULKHEAD_QUEUE` (64): calls waiting for the bulkhead before rejections.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Policy> = Config.map(
  Config.all({
    breaker: CircuitBreaker.config,
    timeout: Config.Duration("TIMEOUT").pipe(Config.withDefault(Duration.seconds(30))),
    retryTimes: Config.Int("RETRY_TIMES").pipe(Config.withDefault(2)),
    retryDelay: Config.Duration("RETRY_DELAY").pipe(Config.withDefault(Duration.millis(100))),
    retryMaxDelay: Config.Duration("RETRY_MAX_DELAY").pipe(Config.withDefault(Duration.seconds(2))),
    concurrency: Config.Int("BULKHEAD_CONCURRENCY").pipe(Config.withDefault(16)),
    queue: Config.Int("BULKHEAD_QUEUE").pipe(Config.withDefault(64))
  }),
  (c): Policy => ({
    breaker: c.breaker,
    timeout: c.timeout,
    retry: { times: c.retryTimes, delay: c.retryDelay, maxDelay: c.retryMaxDelay },
    bulkhead: { concurrency: c.concurrency, queue: c.queue }
  })
)

/**
 * Reads the policy of dependency `name` from configuration under its constant-case prefix
 * (`OLLAMA_TIMEOUT`, `OLLAMA_FAILURE_THRESHOLD`, …) and builds its pipeline.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeConfig = (
  name: string,
  predicates: {
    readonly isRetryable?: ((error: unknown) => boolean) | undefined
    readonly isFailure?: ((error: unknown) => boolean) | undefined
  } = {}
): Effect.Effect<Pipeline, Config.ConfigError, CircuitBreaker.CircuitBreaker> =>
  Effect.flatMap(
    Config.nested(config, name.toUpperCase().replace(/[^A-Z0-9]+/g, "_")),
    (policy) =>
      make(name, {
        ...policy,
        breaker: policy.breaker === undefined ? undefined : { ...policy.breaker, isFailure: predicates.isFailure },
        isRetryable: predicates.isRetryable
      })
  )
