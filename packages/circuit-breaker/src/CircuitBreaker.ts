/**
 * Circuit breakers: a registry of named breakers that stop calling a failing dependency and recover by themselves.
 *
 * The API of one breaker follows the `CircuitBreaker` of Effect 4's `effect/persistence` (`make({ tripPolicy,
 * openDuration })`, `execute`, a typed `CircuitOpen` with `retryAfter`), and `CircuitBreaker/Persistence` serves the
 * registry as that module's `CircuitBreaker` service, so code written against Effect 4's breaker runs through ours.
 *
 * - States: `closed`, `open`, `half-open`, and for operators `forced-open` and `disabled`.
 * - Opening: consecutive failures, or a failure ratio over a count or time window with a minimum throughput; slow
 *   calls (over a duration) count at their own ratio; `isFailure` decides which typed errors count.
 * - Half-open admits at most `halfOpenMaxCalls` concurrent trials (across the fleet with the Redis store); the break
 *   grows exponentially (capped) while trials keep failing.
 * - Monitoring: `changes` (a stream of transitions), Effect metrics, a log line per transition, `snapshot`.
 *
 * The hot path of a closed breaker reads the local copy of the state only: no store round trip, no `Effect.gen`.
 *
 * @since 0.1.0
 */
import {
  Cause,
  Clock,
  Config,
  Context,
  Data,
  Duration,
  Effect,
  Exit,
  Layer,
  Metric,
  PubSub,
  Schema,
  type Scope,
  Stream
} from "effect"
import { CircuitBreakerStore, layerMemory, makeMemory, type Store } from "./CircuitBreakerStore.js"
import * as Machine from "./internal/machine.js"

// ---------------------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------------------

/**
 * The breaker rejected the call without running it. `retryAfter` is the remaining break time in milliseconds (for
 * the `Retry-After` header, in seconds: `Math.ceil(retryAfter / 1000)`).
 *
 * @since 0.1.0
 * @category errors
 */
export class CircuitOpen extends Schema.TaggedError<CircuitOpen>()(
  "CircuitOpen",
  { name: Schema.String, retryAfter: Schema.Finite },
  { httpApiStatus: 503, description: "A circuit breaker is open" }
) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `circuit breaker ${this.name} is open; retry after ${this.retryAfter} ms`
  }
}

/**
 * An operator action named a breaker that does not exist.
 *
 * @since 0.1.0
 * @category errors
 */
export class BreakerNotFound extends Data.TaggedError("BreakerNotFound")<{ readonly name: string }> {}

/**
 * Every error of this module.
 *
 * @since 0.1.0
 * @category errors
 */
export type CircuitBreakerError = CircuitOpen | BreakerNotFound

// ---------------------------------------------------------------------------------------------------------------------
// Policies
// ---------------------------------------------------------------------------------------------------------------------

/**
 * The state of a breaker.
 *
 * @since 0.1.0
 * @category models
 */
export const State = Schema.Literals(["closed", "open", "half-open", "forced-open", "disabled"])

/**
 * @since 0.1.0
 * @category models
 */
export type State = typeof State.Type

/**
 * A sliding window of outcomes: the last `size` calls, or the calls of the last `duration`.
 *
 * @since 0.1.0
 * @category models
 */
export type SlidingWindow =
  | { readonly _tag: "Count"; readonly size: number }
  | { readonly _tag: "Time"; readonly duration: Duration.Input; readonly buckets?: number | undefined }

/**
 * The last `size` calls.
 *
 * @since 0.1.0
 * @category policies
 */
export const countWindow = (size: number): SlidingWindow => ({ _tag: "Count", size })

/**
 * The calls of the last `duration`, counted in `buckets` buckets (default 10).
 *
 * @since 0.1.0
 * @category policies
 */
export const timeWindow = (duration: Duration.Input, buckets?: number): SlidingWindow => ({
  _tag: "Time",
  duration,
  buckets
})

/**
 * When a closed breaker opens.
 *
 * @since 0.1.0
 * @category models
 */
export type TripPolicy =
  | { readonly _tag: "Consecutive"; readonly threshold: number }
  | {
    readonly _tag: "FailureRate"
    /** Ratio of failures (0 < threshold ≤ 1) at which the breaker opens. */
    readonly threshold: number
    /** Calls the window must hold before the ratio is considered (default 10). */
    readonly minimumThroughput?: number | undefined
    readonly window: SlidingWindow
  }

/**
 * Open after `threshold` consecutive failures.
 *
 * @since 0.1.0
 * @category policies
 * @example
 * import { CircuitBreaker } from "@ouroboros/circuit-breaker"
 * const policy = CircuitBreaker.consecutive(5)
 */
export const consecutive = (threshold: number): TripPolicy => ({ _tag: "Consecutive", threshold })

/**
 * Open when failures reach `threshold` (a ratio) of the window, once it holds `minimumThroughput` calls.
 *
 * @since 0.1.0
 * @category policies
 * @example
 * import { CircuitBreaker } from "@ouroboros/circuit-breaker"
 * const policy = CircuitBreaker.failureRate({
 *   threshold: 0.5, minimumThroughput: 20, window: CircuitBreaker.timeWindow("30 seconds")
 * })
 */
export const failureRate = (options: {
  readonly threshold: number
  readonly minimumThroughput?: number | undefined
  readonly window: SlidingWindow
}): TripPolicy => ({ _tag: "FailureRate", ...options })

/**
 * The options of one breaker.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly tripPolicy: TripPolicy
  /** The first break duration. */
  readonly openDuration: Duration.Input
  /** The longest break: each failed trial multiplies the break by `backoffFactor` up to this (default: no growth). */
  readonly maxOpenDuration?: Duration.Input | undefined
  /** Default 2. */
  readonly backoffFactor?: number | undefined
  /** Concurrent trial calls admitted while half-open (default 1). */
  readonly halfOpenMaxCalls?: number | undefined
  /** Successful trials that close the breaker (default 1). */
  readonly successThreshold?: number | undefined
  /**
   * Calls that take at least `duration` are slow. With a failure-rate policy the breaker also opens when slow calls
   * reach `rateThreshold` of the window (default 1); with a consecutive policy a slow call counts as a failure. A
   * slow trial is a failed trial.
   */
  readonly slowCall?: {
    readonly duration: Duration.Input
    readonly rateThreshold?: number | undefined
  } | undefined
  /** Which typed errors count as failures (default: all). Defects always do; interruptions never do. */
  readonly isFailure?: ((error: unknown) => boolean) | undefined
  /** Trial permits a replica does not settle within this are reclaimed (default 60 seconds). */
  readonly trialLease?: Duration.Input | undefined
}

/**
 * The policy used when none is configured: 5 consecutive failures, a 10 s break growing to 5 min.
 *
 * @since 0.1.0
 * @category policies
 */
export const defaultOptions: Options = {
  tripPolicy: consecutive(5),
  openDuration: "10 seconds",
  maxOpenDuration: "5 minutes",
  backoffFactor: 2
}

interface Resolved {
  readonly trip: Machine.Trip
  readonly backoff: Machine.Backoff
  readonly halfOpenMaxCalls: number
  readonly successThreshold: number
  readonly slowMs: number | undefined
  readonly isFailure: (error: unknown) => boolean
  readonly leaseMs: number
}

const millis = (input: Duration.Input): number => Duration.toMillis(input)

const always = () => true

const resolve = (options: Options): Resolved => {
  const initialMs = millis(options.openDuration)
  const trip: Machine.Trip = options.tripPolicy._tag === "Consecutive"
    ? { _tag: "Consecutive", threshold: Math.max(1, options.tripPolicy.threshold) }
    : {
      _tag: "FailureRate",
      threshold: options.tripPolicy.threshold,
      minimumThroughput: Math.max(1, options.tripPolicy.minimumThroughput ?? 10),
      window: options.tripPolicy.window._tag === "Count"
        ? { _tag: "Count", size: Math.max(1, options.tripPolicy.window.size) }
        : {
          _tag: "Time",
          durationMs: millis(options.tripPolicy.window.duration),
          buckets: Math.max(1, options.tripPolicy.window.buckets ?? 10)
        },
      slowRateThreshold: options.slowCall === undefined ? undefined : options.slowCall.rateThreshold ?? 1
    }
  return {
    trip,
    backoff: {
      initialMs,
      maxMs: Math.max(initialMs, options.maxOpenDuration === undefined ? initialMs : millis(options.maxOpenDuration)),
      factor: Math.max(1, options.backoffFactor ?? 2)
    },
    halfOpenMaxCalls: Math.max(1, options.halfOpenMaxCalls ?? 1),
    successThreshold: Math.max(1, options.successThreshold ?? 1),
    slowMs: options.slowCall === undefined ? undefined : millis(options.slowCall.duration),
    isFailure: options.isFailure ?? always,
    leaseMs: options.trialLease === undefined ? 60_000 : millis(options.trialLease)
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Monitoring
// ---------------------------------------------------------------------------------------------------------------------

/**
 * A state transition of a breaker.
 *
 * @since 0.1.0
 * @category models
 */
export class StateChange extends Schema.Class<StateChange>("@ouroboros/circuit-breaker/StateChange")({
  name: Schema.String,
  from: State,
  to: State,
  /** When the new state was entered (epoch ms). */
  at: Schema.Finite,
  version: Schema.Finite,
  /** Whether another replica made the transition (Redis store). */
  remote: Schema.Boolean,
  /** Opens in the current backoff streak, this one included when the new state is `open`. */
  attempts: Schema.Finite,
  /** When the new state is `open`: when trial calls may start (epoch ms); otherwise 0. */
  openUntil: Schema.Finite
}) {}

/**
 * What a breaker looks like now.
 *
 * @since 0.1.0
 * @category models
 */
export const Snapshot = Schema.Struct({
  name: Schema.String,
  state: State,
  version: Schema.Finite,
  /** Consecutive failures counted while closed. */
  consecutiveFailures: Schema.Finite,
  /** The sliding window of a failure-rate policy. */
  window: Schema.NullOr(Schema.Struct({ total: Schema.Finite, failures: Schema.Finite, slow: Schema.Finite })),
  /** When the breaker left `closed` (epoch ms), while it is not closed. */
  openedAt: Schema.NullOr(Schema.Finite),
  /** Remaining break (ms) while open. */
  retryAfter: Schema.NullOr(Schema.Finite),
  /** Opens in the current backoff streak. */
  attempts: Schema.Finite,
  /** Trial permits in use while half-open (as last seen by this replica). */
  trials: Schema.Finite
}).annotate({ identifier: "CircuitBreakerSnapshot" })

/**
 * @since 0.1.0
 * @category models
 */
export type Snapshot = typeof Snapshot.Type

const stateCode: Record<State, number> = { closed: 0, open: 1, "half-open": 2, "forced-open": 3, disabled: 4 }

const metricOptions = {
  state: {
    description: "State of a circuit breaker: 0 closed, 1 open, 2 half-open, 3 forced-open, 4 disabled"
  },
  calls: { description: "Calls a circuit breaker let through", incremental: true },
  failures: {
    description: "Calls a circuit breaker let through that failed (outcome failure) or were interrupted (ignored)",
    incremental: true
  },
  rejections: { description: "Calls a circuit breaker rejected without running them", incremental: true },
  transitions: { description: "State transitions of a circuit breaker, by new state", incremental: true }
} as const

/**
 * The Effect metrics of breakers, with the attribute `breaker` (and `outcome`, `state`):
 * `circuit_breaker_state` (0 closed, 1 open, 2 half-open, 3 forced-open, 4 disabled),
 * `circuit_breaker_calls_total` (calls let through), `circuit_breaker_failures_total` (outcome failure | ignored;
 * successes are calls minus failures), `circuit_breaker_rejections_total` and
 * `circuit_breaker_transitions_total` (with the new `state`). Read one breaker's series with
 * `Metric.withAttributes(metrics.state, { breaker: "ollama" })`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const metrics = {
  state: Metric.gauge("circuit_breaker_state", metricOptions.state),
  calls: Metric.counter("circuit_breaker_calls_total", metricOptions.calls),
  failures: Metric.counter("circuit_breaker_failures_total", metricOptions.failures),
  rejections: Metric.counter("circuit_breaker_rejections_total", metricOptions.rejections),
  transitions: Metric.counter("circuit_breaker_transitions_total", metricOptions.transitions)
} as const

/**
 * The series of one breaker, built once with their attributes: an update on the hot path is one registry lookup,
 * with no attribute merging.
 */
const seriesOf = (breaker: string) => {
  const counter = (id: string, options: { readonly description: string }, attributes: Metric.Metric.Attributes) =>
    Metric.counter(id, { ...options, incremental: true, attributes })
  const transition = (state: State) =>
    counter("circuit_breaker_transitions_total", metricOptions.transitions, { breaker, state })
  return {
    state: Metric.gauge("circuit_breaker_state", { ...metricOptions.state, attributes: { breaker } }),
    calls: counter("circuit_breaker_calls_total", metricOptions.calls, { breaker }),
    failure: counter("circuit_breaker_failures_total", metricOptions.failures, { breaker, outcome: "failure" }),
    ignored: counter("circuit_breaker_failures_total", metricOptions.failures, { breaker, outcome: "ignored" }),
    rejections: counter("circuit_breaker_rejections_total", metricOptions.rejections, { breaker }),
    transitions: {
      closed: transition("closed"),
      open: transition("open"),
      "half-open": transition("half-open"),
      "forced-open": transition("forced-open"),
      disabled: transition("disabled")
    } satisfies Record<State, Metric.Metric<number, unknown>>
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// One breaker
// ---------------------------------------------------------------------------------------------------------------------

/**
 * One circuit breaker.
 *
 * @since 0.1.0
 * @category models
 */
export interface Breaker {
  readonly name: string
  /** Runs `effect` through the breaker, or fails with `CircuitOpen` without running it. */
  readonly execute: <A, E, R>(effect: Effect.Effect<A, E | CircuitOpen, R>) => Effect.Effect<A, E | CircuitOpen, R>
  readonly state: Effect.Effect<State>
  readonly snapshot: Effect.Effect<Snapshot>
  /** Rejects every call until `reset` or `forceClose`. */
  readonly forceOpen: Effect.Effect<Snapshot>
  /** Lets every call through and records nothing (`disabled`) until `reset` or `forceOpen`. */
  readonly forceClose: Effect.Effect<Snapshot>
  /** Back to `closed` with empty counters and no backoff. */
  readonly reset: Effect.Effect<Snapshot>
  /** The transitions of this breaker. */
  readonly changes: Stream.Stream<StateChange>
}

const SUCCESS = 0
const FAILURE = 1
const IGNORED = 2
type Outcome = typeof SUCCESS | typeof FAILURE | typeof IGNORED

/**
 * How a call of `run` ended, as its classifier says: the outcome, and a hint that can lengthen the break it opens (ms).
 *
 * @internal
 */
export interface Verdict {
  readonly outcome: "Success" | "Failure" | "Ignored"
  readonly hintMs?: number | undefined
}

/**
 * The options of `run`: a classifier of each admitted call's exit (`probe`: it is a half-open trial), and what a
 * rejected call does: `reject` builds the error it fails with, or `allow` runs it unrecorded. A classifier that dies
 * (or is interrupted) makes the outcome `Ignored`, and the call fails with its cause too.
 *
 * @internal
 */
export interface RunOptions<A, E, R2, E2> {
  readonly classify: (exit: Exit.Exit<A, E>, probe: boolean) => Effect.Effect<Verdict, never, R2>
  readonly allow: boolean
  readonly reject: (status: State, retryAfter: number) => E2
}

interface Internal extends Breaker {
  /** Takes a record from the store; returns the transition when the state changed. */
  readonly adopt: (record: Machine.Shared, remote: boolean) => StateChange | undefined
  /** The default classification (interruptions, `isFailure`); slow calls are added by the breaker. */
  readonly classifyExit: (exit: Exit.Exit<unknown, unknown>) => Verdict
  readonly run: <A, E, R, R2, E2>(
    effect: Effect.Effect<A, E, R>,
    options: RunOptions<A, E, R2, E2>
  ) => Effect.Effect<A, E | E2, R | R2>
}

type Emit = (change: StateChange) => Effect.Effect<void>

const verdicts: Record<Outcome, Verdict> = {
  [SUCCESS]: { outcome: "Success" },
  [FAILURE]: { outcome: "Failure" },
  [IGNORED]: { outcome: "Ignored" }
}
const outcomes: Record<Verdict["outcome"], Outcome> = { Success: SUCCESS, Failure: FAILURE, Ignored: IGNORED }

const makeBreaker = (
  name: string,
  options: Options,
  store: Store,
  clock: Clock.Clock,
  context: Context.Context<never>,
  initial: Machine.Shared,
  emit: Emit,
  changes: Stream.Stream<StateChange>
): Internal => {
  const policy = resolve(options)
  const counters = new Machine.Counters(policy.trip)
  const { backoff, halfOpenMaxCalls, isFailure, leaseMs, slowMs, successThreshold } = policy
  const timed = slowMs !== undefined || counters.window instanceof Machine.TimeWindow
  let record = initial
  // The newest version the store itself reported: records computed locally while the store was unreachable
  // (`local`) never outrank it, so a replica that diverged during an outage follows the store again afterwards.
  let confirmed = initial.local ? -1 : initial.version
  let tripping = false

  const series = seriesOf(name)
  series.state.updateUnsafe(stateCode[record.status], context)

  const countOutcome = (outcome: Outcome) => {
    if (outcome !== SUCCESS) (outcome === FAILURE ? series.failure : series.ignored).updateUnsafe(1, context)
  }
  const count = (outcome: Outcome) => {
    series.calls.updateUnsafe(1, context)
    countOutcome(outcome)
  }

  const adopt = (incoming: Machine.Shared, remote: boolean): StateChange | undefined => {
    if (incoming.local) {
      if (incoming.version < record.version) return undefined
    } else {
      if (incoming.version < confirmed) return undefined
      confirmed = incoming.version
    }
    const previous = record
    record = incoming
    if (incoming.version === previous.version && incoming.status === previous.status) return undefined
    counters.clear()
    if (incoming.status === previous.status) return undefined
    series.state.updateUnsafe(stateCode[incoming.status], context)
    series.transitions[incoming.status].updateUnsafe(1, context)
    return new StateChange({
      name,
      from: previous.status,
      to: incoming.status,
      at: incoming.since,
      version: incoming.version,
      remote,
      attempts: incoming.attempts,
      openUntil: incoming.status === "open" ? incoming.openUntil : 0
    })
  }

  const settle = (result: Machine.Shared): Effect.Effect<void> => {
    const change = adopt(result, false)
    return change === undefined ? Effect.void : emit(change)
  }

  const classify = (cause: Cause.Cause<unknown>): Outcome => {
    if (Cause.hasInterruptsOnly(cause)) return IGNORED
    const failure = Cause.findErrorOption(cause)
    if (failure._tag === "None") return FAILURE
    return isFailure(failure.value) ? FAILURE : SUCCESS
  }

  const reject = (retryAfter: number) => {
    series.rejections.updateUnsafe(1, context)
    return Effect.fail(new CircuitOpen({ name, retryAfter: Math.max(0, Math.ceil(retryAfter)) }))
  }

  /**
   * Records an outcome of a call admitted while closed; true when the breaker must open. Outcomes that arrive after
   * the breaker left `closed` change nothing.
   */
  const onClosed = (start: number, outcome: Outcome): boolean => {
    countOutcome(outcome)
    if (outcome === IGNORED || record.status !== "closed") return false
    if (!timed) return counters.record(0, outcome === FAILURE, false)
    const now = clock.currentTimeMillisUnsafe()
    return counters.record(now, outcome === FAILURE, slowMs !== undefined && now - start >= slowMs)
  }

  const trip = (version: number, hintMs = 0): Effect.Effect<void> =>
    Effect.uninterruptible(Effect.suspend(() => {
      if (tripping || record.version !== version || record.status !== "closed") return Effect.void
      tripping = true
      const next = Machine.opened(record, clock.currentTimeMillisUnsafe(), backoff, hintMs)
      return Effect.ensuring(
        Effect.flatMap(store.cas(name, record, version, next), settle),
        Effect.sync(() => {
          tripping = false
        })
      )
    }))

  // The closed hot path allocates no named closure (tsx and some bundlers wrap each in `__name`, ~100 ns): the
  // handlers are made once, or per call through `handlers(start)` only when the policy needs the call's start time.
  function onFailureAt(start: number, cause: Cause.Cause<unknown>): Effect.Effect<never, unknown> {
    const version = record.version
    return onClosed(start, classify(cause))
      ? Effect.andThen(trip(version), Effect.failCause(cause))
      : Effect.failCause(cause)
  }
  function onSuccessAt<A>(start: number, a: A): Effect.Effect<A> {
    const version = record.version
    return onClosed(start, SUCCESS) ? Effect.as(trip(version), a) : Effect.succeed(a)
  }
  const untimed = {
    onFailure: onFailureAt.bind(undefined, 0),
    onSuccess: onSuccessAt.bind(undefined, 0)
  }
  const timedHandlers = (start: number) => {
    const [onFailure, onSuccess] = [
      (cause: Cause.Cause<unknown>) => onFailureAt(start, cause),
      (a: unknown) => onSuccessAt(start, a)
    ]
    return { onFailure, onSuccess }
  }

  /** Settles a half-open trial: gives its permit back, reopens, or counts a success towards closing. */
  const settleTrial = (acquired: Machine.Shared, outcome: Outcome, now: number, hintMs = 0) => {
    count(outcome)
    const settled = outcome === IGNORED
      ? store.release(name, record, acquired.version)
      : outcome === FAILURE
      ? store.cas(name, record, acquired.version, Machine.opened(acquired, now, backoff, hintMs))
      : store.trialSuccess(name, record, acquired.version, now, successThreshold)
    return Effect.flatMap(settled, settle)
  }

  const isSlow = (start: number, now: number) => slowMs !== undefined && now - start >= slowMs

  const trial = <A, E, R>(effect: Effect.Effect<A, E, R>, acquired: Machine.Shared): Effect.Effect<A, E, R> => {
    const start = clock.currentTimeMillisUnsafe()
    return Effect.onExit(effect, (exit) =>
      Effect.suspend(() => {
        const now = clock.currentTimeMillisUnsafe()
        const outcome: Outcome = Exit.isSuccess(exit) ? SUCCESS : classify(exit.cause)
        return settleTrial(acquired, outcome === SUCCESS && isSlow(start, now) ? FAILURE : outcome, now)
      }))
  }

  const retryAfterOf = (current: Machine.Shared, now: number): number =>
    current.status === "open"
      ? current.openUntil - now
      : current.status === "half-open"
      ? Math.min(1000, backoff.initialMs)
      : backoff.initialMs

  /**
   * Asks the store for a trial permit: runs the trial when granted, runs through the breaker again when the record
   * turned out closed (or disabled), and rejects otherwise.
   */
  const acquire = <A, E, R>(
    now: number,
    granted: (acquired: Machine.Shared) => Effect.Effect<A, E, R>,
    again: () => Effect.Effect<A, E, R>,
    rejected: (status: State, retryAfter: number) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E, R> =>
    Effect.flatMap(
      store.acquireTrial(name, record, now, halfOpenMaxCalls, leaseMs),
      ([ok, current]) => {
        const change = adopt(current, false)
        const next = ok
          ? granted(current)
          : record === current && (current.status === "closed" || current.status === "disabled")
          ? again()
          : rejected(current.status, retryAfterOf(current, now))
        return change === undefined ? next : Effect.andThen(emit(change), next)
      }
    )

  const execute = <A, E, R>(effect: Effect.Effect<A, E | CircuitOpen, R>): Effect.Effect<A, E | CircuitOpen, R> =>
    Effect.suspend(() => {
      const current = record
      if (current.status === "closed") {
        series.calls.updateUnsafe(1, context)
        // A healthy consecutive breaker only needs to see failures: one continuation instead of two.
        if (!timed && counters.consecutive === 0 && counters.window === undefined) {
          return Effect.catchCause(effect, untimed.onFailure) as Effect.Effect<A, E | CircuitOpen, R>
        }
        return Effect.matchCauseEffect(
          effect,
          (timed ? timedHandlers(clock.currentTimeMillisUnsafe()) : untimed) as {
            onFailure: (cause: Cause.Cause<E | CircuitOpen>) => Effect.Effect<never, E | CircuitOpen>
            onSuccess: (a: A) => Effect.Effect<A>
          }
        )
      }
      switch (current.status) {
        case "disabled":
          return effect
        case "forced-open":
          return reject(backoff.initialMs)
        case "open": {
          const now = clock.currentTimeMillisUnsafe()
          return now < current.openUntil
            ? reject(current.openUntil - now)
            : acquire(now, (acquired) => trial(effect, acquired), () => execute(effect), (_, ms) => reject(ms))
        }
        case "half-open":
          return acquire(
            clock.currentTimeMillisUnsafe(),
            (acquired) => trial(effect, acquired),
            () => execute(effect),
            (_, ms) => reject(ms)
          )
      }
    })

  const classifyExit = (exit: Exit.Exit<unknown, unknown>): Verdict =>
    verdicts[Exit.isSuccess(exit) ? SUCCESS : classify(exit.cause)]

  // `execute` with a classifier per call and a choice for rejected calls: what `CircuitBreaker/Persistence` needs to
  // serve Effect 4's interface. Off the hot path, so written for clarity.
  const run = <A, E, R, R2, E2>(
    effect: Effect.Effect<A, E, R>,
    { allow, classify: classifyCall, reject: rejection }: RunOptions<A, E, R2, E2>
  ): Effect.Effect<A, E | E2, R | R2> => {
    const measured = (
      probe: boolean,
      done: (start: number, outcome: Outcome, hintMs: number) => Effect.Effect<void>
    ): Effect.Effect<A, E, R | R2> =>
      Effect.uninterruptibleMask((restore) => {
        const start = clock.currentTimeMillisUnsafe()
        return Effect.flatMap(Effect.exit(restore(effect)), (exit) =>
          Effect.flatMap(Effect.exit(restore(classifyCall(exit, probe))), (classified) => {
            if (Exit.isSuccess(classified)) {
              const verdict = classified.value
              return Effect.andThen(done(start, outcomes[verdict.outcome], verdict.hintMs ?? 0), exit)
            }
            const cause = Exit.isFailure(exit) ? Cause.combine(exit.cause, classified.cause) : classified.cause
            return Effect.andThen(done(start, IGNORED, 0), Effect.failCause(cause))
          }))
      })
    const rejected = (status: State, retryAfter: number): Effect.Effect<A, E | E2, R> => {
      if (allow) return effect
      series.rejections.updateUnsafe(1, context)
      return Effect.fail(rejection(status, Math.max(0, Math.ceil(retryAfter))))
    }
    const go = (): Effect.Effect<A, E | E2, R | R2> =>
      Effect.suspend(() => {
        const current = record
        switch (current.status) {
          case "closed":
            series.calls.updateUnsafe(1, context)
            return measured(false, (start, outcome, hintMs) =>
              Effect.suspend(() => {
                const version = record.version
                return onClosed(start, outcome) ? trip(version, hintMs) : Effect.void
              }))
          case "disabled":
            return effect
          case "forced-open":
            return rejected("forced-open", backoff.initialMs)
          case "open":
          case "half-open": {
            const now = clock.currentTimeMillisUnsafe()
            if (current.status === "open" && now < current.openUntil) return rejected("open", current.openUntil - now)
            return acquire(
              now,
              (acquired) =>
                measured(true, (start, outcome, hintMs) =>
                  Effect.suspend(() => {
                    const at = clock.currentTimeMillisUnsafe()
                    const judged = outcome === SUCCESS && isSlow(start, at) ? FAILURE : outcome
                    return settleTrial(acquired, judged, at, hintMs)
                  })),
              go,
              rejected
            )
          }
        }
      })
    return go()
  }

  const snapshot = Effect.sync((): Snapshot => {
    const now = clock.currentTimeMillisUnsafe()
    counters.window?.advance(now)
    const window = counters.window
    return {
      name,
      state: record.status,
      version: record.version,
      consecutiveFailures: counters.consecutive,
      window: window === undefined ? null : { total: window.total, failures: window.failures, slow: window.slow },
      openedAt: record.status === "closed" || record.status === "disabled" ? null : record.since,
      retryAfter: record.status === "open" ? Math.max(0, record.openUntil - now) : null,
      attempts: record.attempts,
      trials: record.trials
    }
  })

  const operator = (status: "closed" | "forced-open" | "disabled") =>
    Effect.andThen(
      Effect.suspend(() =>
        Effect.flatMap(
          store.set(name, record, Machine.operator(record, clock.currentTimeMillisUnsafe(), status)),
          settle
        )
      ),
      snapshot
    )

  return {
    name,
    execute,
    state: Effect.sync(() => record.status),
    snapshot,
    forceOpen: operator("forced-open"),
    forceClose: operator("disabled"),
    reset: operator("closed"),
    changes,
    adopt,
    classifyExit,
    run
  }
}

const logChange = (change: StateChange): Effect.Effect<void> =>
  (change.to === "open" || change.to === "forced-open"
    ? Effect.logWarning(`circuit breaker ${change.name}: ${change.from} -> ${change.to}`)
    : Effect.logInfo(`circuit breaker ${change.name}: ${change.from} -> ${change.to}`)).pipe(
      Effect.annotateLogs({
        service: "circuit-breaker",
        breaker: change.name,
        from: change.from,
        to: change.to,
        version: change.version,
        remote: change.remote
      })
    )

/**
 * One breaker in memory, as in Effect 4: `make({ tripPolicy, openDuration })`, then `breaker.execute(effect)`.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * import { CircuitBreaker } from "@ouroboros/circuit-breaker"
 * import { Effect } from "effect"
 * const program = Effect.gen(function*() {
 *   const breaker = yield* CircuitBreaker.make({ tripPolicy: CircuitBreaker.consecutive(3), openDuration: "5 seconds" })
 *   return yield* breaker.execute(Effect.succeed(1))
 * })
 */
export const make = (options: Options & { readonly name?: string | undefined }): Effect.Effect<Breaker> =>
  Effect.gen(function*() {
    const clock = yield* Clock.Clock
    const context = yield* Effect.context<never>()
    const pubsub = yield* PubSub.sliding<StateChange>(1024)
    const emit: Emit = (change) => Effect.andThen(PubSub.publish(pubsub, change), logChange(change))
    return makeBreaker(
      options.name ?? "default",
      options,
      makeMemory,
      clock,
      context,
      Machine.initial,
      emit,
      Stream.fromPubSub(pubsub)
    )
  })

/**
 * The parts of a breaker that `CircuitBreaker/Persistence` builds on: `run` (a classifier per call, a choice for
 * rejected calls) and the breaker's default classification.
 *
 * @internal
 */
export const internals = (breaker: Breaker): Pick<Internal, "run" | "classifyExit"> => breaker as Internal

// ---------------------------------------------------------------------------------------------------------------------
// The registry service
// ---------------------------------------------------------------------------------------------------------------------

/**
 * The options of the registry: a default policy and policies by breaker name.
 *
 * @since 0.1.0
 * @category models
 */
export interface RegistryOptions {
  readonly defaults?: Options | undefined
  readonly breakers?: Readonly<Record<string, Options>> | undefined
}

/**
 * The registry of named breakers.
 *
 * @since 0.1.0
 * @category tags
 * @example
 * import { CircuitBreaker } from "@ouroboros/circuit-breaker"
 * import { Effect } from "effect"
 * const program = Effect.gen(function*() {
 *   const breakers = yield* CircuitBreaker.CircuitBreaker
 *   const ollama = yield* breakers.get("ollama")
 *   return yield* ollama.execute(Effect.succeed("answer"))
 * }).pipe(Effect.provide(CircuitBreaker.layer({ defaults: CircuitBreaker.defaultOptions })))
 */
export class CircuitBreaker extends Context.Service<
  CircuitBreaker,
  {
    /** The breaker of that name, created with `options` (or the configured policy) on first use. */
    readonly get: (name: string, options?: Options) => Effect.Effect<Breaker>
    /** `get(name)` then `execute`. */
    readonly execute: <A, E, R>(
      name: string,
      effect: Effect.Effect<A, E | CircuitOpen, R>
    ) => Effect.Effect<A, E | CircuitOpen, R>
    readonly forceOpen: (name: string) => Effect.Effect<Snapshot, BreakerNotFound>
    readonly forceClose: (name: string) => Effect.Effect<Snapshot, BreakerNotFound>
    readonly reset: (name: string) => Effect.Effect<Snapshot, BreakerNotFound>
    /** Every breaker, sorted by name. */
    readonly snapshot: Effect.Effect<ReadonlyArray<Snapshot>>
    /** One breaker. */
    readonly snapshotOf: (name: string) => Effect.Effect<Snapshot, BreakerNotFound>
    /** Transitions of every breaker (subscribers see those published after they subscribe). */
    readonly changes: Stream.Stream<StateChange>
    /** A subscription to transitions that is live as soon as this effect returns (read it with `PubSub.take`). */
    readonly subscribe: Effect.Effect<PubSub.Subscription<StateChange>, never, Scope.Scope>
  }
>()("@ouroboros/circuit-breaker/CircuitBreaker") {}

/**
 * Builds the registry over the `CircuitBreakerStore` in context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeRegistry = (
  options: RegistryOptions = {}
): Effect.Effect<CircuitBreaker["Service"], never, CircuitBreakerStore | Scope.Scope> =>
  Effect.gen(function*() {
    const store = yield* CircuitBreakerStore
    const clock = yield* Clock.Clock
    const context = yield* Effect.context<never>()
    const pubsub = yield* Effect.acquireRelease(PubSub.sliding<StateChange>(4096), PubSub.shutdown)
    const breakers = new Map<string, Internal>()
    const emit: Emit = (change) => Effect.andThen(PubSub.publish(pubsub, change), logChange(change))
    const changes = Stream.fromPubSub(pubsub)

    const create = (name: string, policy: Options | undefined) =>
      Effect.map(store.load(name), (initial) => {
        const existing = breakers.get(name)
        if (existing !== undefined) return existing
        const breaker = makeBreaker(
          name,
          policy ?? options.breakers?.[name] ?? options.defaults ?? defaultOptions,
          store,
          clock,
          context,
          initial,
          emit,
          Stream.filter(changes, (change) => change.name === name)
        )
        breakers.set(name, breaker)
        return breaker
      })

    const get = (name: string, policy?: Options): Effect.Effect<Breaker> =>
      Effect.suspend(() => {
        const existing = breakers.get(name)
        return existing !== undefined ? Effect.succeed(existing) : create(name, policy)
      })

    const find = (name: string): Effect.Effect<Internal, BreakerNotFound> =>
      Effect.suspend(() => {
        const existing = breakers.get(name)
        return existing !== undefined ? Effect.succeed(existing) : Effect.fail(new BreakerNotFound({ name }))
      })

    // Transitions other replicas wrote: every replica follows the shared state.
    yield* Effect.forkScoped(Stream.runForEach(store.changes, ({ name, record }) =>
      Effect.suspend(() => {
        const breaker = breakers.get(name)
        const change = breaker?.adopt(record, true)
        return change === undefined ? Effect.void : emit(change)
      })))

    for (const name of Object.keys(options.breakers ?? {})) yield* get(name)

    return CircuitBreaker.of({
      get,
      execute: (name, effect) =>
        Effect.suspend(() => {
          const existing = breakers.get(name)
          return existing !== undefined
            ? existing.execute(effect)
            : Effect.flatMap(create(name, undefined), (breaker) => breaker.execute(effect))
        }),
      forceOpen: (name) => Effect.flatMap(find(name), (breaker) => breaker.forceOpen),
      forceClose: (name) => Effect.flatMap(find(name), (breaker) => breaker.forceClose),
      reset: (name) => Effect.flatMap(find(name), (breaker) => breaker.reset),
      snapshot: Effect.suspend(() =>
        Effect.forEach(
          [...breakers.values()].sort((a, b) => a.name.localeCompare(b.name)),
          (breaker) => breaker.snapshot
        )
      ),
      snapshotOf: (name) => Effect.flatMap(find(name), (breaker) => breaker.snapshot),
      changes,
      subscribe: PubSub.subscribe(pubsub)
    })
  })

/**
 * The registry with state in the store provided separately (e.g. `CircuitBreaker/Redis.layerStore`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStore = (options: RegistryOptions = {}): Layer.Layer<CircuitBreaker, never, CircuitBreakerStore> =>
  Layer.effect(CircuitBreaker, makeRegistry(options))

/**
 * The registry with state in the process.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: RegistryOptions = {}): Layer.Layer<CircuitBreaker> =>
  Layer.provide(layerStore(options), layerMemory)

// ---------------------------------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------------------------------

/**
 * The default policy from configuration (nest it, e.g. `Config.nested(config, "CIRCUIT_BREAKER")`):
 *
 * - `FAILURE_THRESHOLD` (5): consecutive failures that open a breaker;
 * - `FAILURE_RATE` (0): failure ratio (0..1] over the window that opens a breaker; 0 uses consecutive failures;
 * - `WINDOW_SIZE` (20): calls in the sliding window of the failure-rate policy;
 * - `MINIMUM_THROUGHPUT` (10): calls the window must hold before the failure rate counts;
 * - `OPEN_DURATION` (10 seconds): first break duration;
 * - `MAX_OPEN_DURATION` (5 minutes): longest break duration (the break doubles while trials fail);
 * - `BACKOFF_FACTOR` (2): growth of the break duration per failed trial;
 * - `HALF_OPEN_MAX_CALLS` (1): concurrent trial calls while half-open (fleet-wide with Redis);
 * - `SLOW_CALL_DURATION` (0 = off): calls at least this long are slow;
 * - `SLOW_CALL_RATE` (1): ratio of slow calls in the window that opens a breaker.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.map(
  Config.all({
    failureThreshold: Config.Int("FAILURE_THRESHOLD").pipe(Config.withDefault(5)),
    failureRate: Config.Finite("FAILURE_RATE").pipe(Config.withDefault(0)),
    windowSize: Config.Int("WINDOW_SIZE").pipe(Config.withDefault(20)),
    minimumThroughput: Config.Int("MINIMUM_THROUGHPUT").pipe(Config.withDefault(10)),
    openDuration: Config.Duration("OPEN_DURATION").pipe(Config.withDefault(Duration.seconds(10))),
    maxOpenDuration: Config.Duration("MAX_OPEN_DURATION").pipe(Config.withDefault(Duration.minutes(5))),
    backoffFactor: Config.Finite("BACKOFF_FACTOR").pipe(Config.withDefault(2)),
    halfOpenMaxCalls: Config.Int("HALF_OPEN_MAX_CALLS").pipe(Config.withDefault(1)),
    slowCallDuration: Config.Duration("SLOW_CALL_DURATION").pipe(Config.withDefault(Duration.zero)),
    slowCallRate: Config.Finite("SLOW_CALL_RATE").pipe(Config.withDefault(1))
  }),
  (c): Options => ({
    tripPolicy: c.failureRate > 0
      ? failureRate({
        threshold: c.failureRate,
        minimumThroughput: c.minimumThroughput,
        window: countWindow(c.windowSize)
      })
      : consecutive(c.failureThreshold),
    openDuration: c.openDuration,
    maxOpenDuration: c.maxOpenDuration,
    backoffFactor: c.backoffFactor,
    halfOpenMaxCalls: c.halfOpenMaxCalls,
    slowCall: Duration.toMillis(c.slowCallDuration) > 0
      ? { duration: c.slowCallDuration, rateThreshold: c.slowCallRate }
      : undefined
  })
)

/**
 * The registry with its default policy read from `config`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  defaults: Config.Config<Options> = config,
  options: Omit<RegistryOptions, "defaults"> = {}
): Layer.Layer<CircuitBreaker, Config.ConfigError> =>
  Layer.unwrap(Effect.map(defaults, (d) => layer({ ...options, defaults: d })))
