/**
 * Circuit breakers: a registry of named breakers that stop calling a failing dependency and recover by themselves.
 *
 * The API of one breaker mirrors the `CircuitBreaker` Effect 4 ships in `effect/persistence` (`make({ tripPolicy,
 * openDuration })`, `execute`, a typed `CircuitOpen` with `retryAfter`), so moving to Effect 4 is mechanical.
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
  type Clock,
  Config,
  type ConfigError,
  Context,
  Data,
  Duration,
  Effect,
  Exit,
  Layer,
  Metric,
  MetricLabel,
  PubSub,
  type Queue,
  Schema,
  type Scope,
  Stream
} from "effect"
import { HttpApiSchema } from "@effect/platform"
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
  { name: Schema.String, retryAfter: Schema.Number },
  HttpApiSchema.annotations({ status: 503, description: "A circuit breaker is open" })
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
export const State = Schema.Literal("closed", "open", "half-open", "forced-open", "disabled")

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
  | { readonly _tag: "Time"; readonly duration: Duration.DurationInput; readonly buckets?: number | undefined }

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
export const timeWindow = (duration: Duration.DurationInput, buckets?: number): SlidingWindow => ({
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
  readonly openDuration: Duration.DurationInput
  /** The longest break: each failed trial multiplies the break by `backoffFactor` up to this (default: no growth). */
  readonly maxOpenDuration?: Duration.DurationInput | undefined
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
    readonly duration: Duration.DurationInput
    readonly rateThreshold?: number | undefined
  } | undefined
  /** Which typed errors count as failures (default: all). Defects always do; interruptions never do. */
  readonly isFailure?: ((error: unknown) => boolean) | undefined
  /** Trial permits a replica does not settle within this are reclaimed (default 60 seconds). */
  readonly trialLease?: Duration.DurationInput | undefined
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

const millis = (input: Duration.DurationInput): number => Duration.toMillis(Duration.decode(input))

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
  at: Schema.Number,
  version: Schema.Number,
  /** Whether another replica made the transition (Redis store). */
  remote: Schema.Boolean
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
  version: Schema.Number,
  /** Consecutive failures counted while closed. */
  consecutiveFailures: Schema.Number,
  /** The sliding window of a failure-rate policy. */
  window: Schema.NullOr(Schema.Struct({ total: Schema.Number, failures: Schema.Number, slow: Schema.Number })),
  /** When the breaker left `closed` (epoch ms), while it is not closed. */
  openedAt: Schema.NullOr(Schema.Number),
  /** Remaining break (ms) while open. */
  retryAfter: Schema.NullOr(Schema.Number),
  /** Opens in the current backoff streak. */
  attempts: Schema.Number,
  /** Trial permits in use while half-open (as last seen by this replica). */
  trials: Schema.Number
}).annotations({ identifier: "CircuitBreakerSnapshot" })

/**
 * @since 0.1.0
 * @category models
 */
export type Snapshot = typeof Snapshot.Type

const stateCode: Record<State, number> = { closed: 0, open: 1, "half-open": 2, "forced-open": 3, disabled: 4 }

/**
 * The Effect metrics of breakers, tagged with `breaker` (and `outcome`, `state`):
 * `circuit_breaker_state` (0 closed, 1 open, 2 half-open, 3 forced-open, 4 disabled),
 * `circuit_breaker_calls_total` (calls let through), `circuit_breaker_failures_total` (outcome failure | ignored;
 * successes are calls minus failures), `circuit_breaker_rejections_total` and
 * `circuit_breaker_transitions_total` (tagged with the new `state`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const metrics = {
  state: Metric.gauge("circuit_breaker_state", {
    description: "State of a circuit breaker: 0 closed, 1 open, 2 half-open, 3 forced-open, 4 disabled"
  }),
  calls: Metric.counter("circuit_breaker_calls_total", {
    description: "Calls a circuit breaker let through",
    incremental: true
  }),
  failures: Metric.counter("circuit_breaker_failures_total", {
    description: "Calls a circuit breaker let through that failed (outcome failure) or were interrupted (ignored)",
    incremental: true
  }),
  rejections: Metric.counter("circuit_breaker_rejections_total", {
    description: "Calls a circuit breaker rejected without running them",
    incremental: true
  }),
  transitions: Metric.counter("circuit_breaker_transitions_total", {
    description: "State transitions of a circuit breaker, by new state",
    incremental: true
  })
} as const

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

interface Internal extends Breaker {
  /** Takes a record from the store; returns the transition when the state changed. */
  readonly adopt: (record: Machine.Shared, remote: boolean) => StateChange | undefined
}

type Emit = (change: StateChange) => Effect.Effect<void>

const makeBreaker = (
  name: string,
  options: Options,
  store: Store,
  clock: Clock.Clock,
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

  const breakerTag = MetricLabel.make("breaker", name)
  const failureTags = [breakerTag, MetricLabel.make("outcome", "failure")]
  const ignoredTags = [breakerTag, MetricLabel.make("outcome", "ignored")]
  const breakerTags = [breakerTag]
  const transitionTags: Record<State, ReadonlyArray<MetricLabel.MetricLabel>> = {
    closed: [breakerTag, MetricLabel.make("state", "closed")],
    open: [breakerTag, MetricLabel.make("state", "open")],
    "half-open": [breakerTag, MetricLabel.make("state", "half-open")],
    "forced-open": [breakerTag, MetricLabel.make("state", "forced-open")],
    disabled: [breakerTag, MetricLabel.make("state", "disabled")]
  }
  metrics.state.unsafeUpdate(stateCode[record.status], breakerTags)

  const count = (outcome: Outcome) => {
    metrics.calls.unsafeUpdate(1, breakerTags)
    if (outcome !== SUCCESS) metrics.failures.unsafeUpdate(1, outcome === FAILURE ? failureTags : ignoredTags)
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
    metrics.state.unsafeUpdate(stateCode[incoming.status], breakerTags)
    metrics.transitions.unsafeUpdate(1, transitionTags[incoming.status])
    return new StateChange({
      name,
      from: previous.status,
      to: incoming.status,
      at: incoming.since,
      version: incoming.version,
      remote
    }, { disableValidation: true })
  }

  const settle = (result: Machine.Shared): Effect.Effect<void> => {
    const change = adopt(result, false)
    return change === undefined ? Effect.void : emit(change)
  }

  const classify = (cause: Cause.Cause<unknown>): Outcome => {
    if (Cause.isInterruptedOnly(cause)) return IGNORED
    const failure = Cause.failureOption(cause)
    if (failure._tag === "None") return FAILURE
    return isFailure(failure.value) ? FAILURE : SUCCESS
  }

  const reject = (retryAfter: number) => {
    metrics.rejections.unsafeUpdate(1, breakerTags)
    return Effect.fail(new CircuitOpen({ name, retryAfter: Math.max(0, Math.ceil(retryAfter)) }))
  }

  /**
   * Records an outcome of a call admitted while closed; true when the breaker must open. Outcomes that arrive after
   * the breaker left `closed` change nothing.
   */
  const onClosed = (start: number, outcome: Outcome): boolean => {
    if (outcome !== SUCCESS) metrics.failures.unsafeUpdate(1, outcome === FAILURE ? failureTags : ignoredTags)
    if (outcome === IGNORED || record.status !== "closed") return false
    if (!timed) return counters.record(0, outcome === FAILURE, false)
    const now = clock.unsafeCurrentTimeMillis()
    return counters.record(now, outcome === FAILURE, slowMs !== undefined && now - start >= slowMs)
  }

  const trip = (version: number): Effect.Effect<void> =>
    Effect.uninterruptible(Effect.suspend(() => {
      if (tripping || record.version !== version || record.status !== "closed") return Effect.void
      tripping = true
      const next = Machine.opened(record, clock.unsafeCurrentTimeMillis(), backoff)
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
      ? Effect.zipRight(trip(version), Effect.failCause(cause))
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

  const trial = <A, E, R>(effect: Effect.Effect<A, E, R>, acquired: Machine.Shared): Effect.Effect<A, E, R> => {
    const start = clock.unsafeCurrentTimeMillis()
    return Effect.onExit(effect, (exit) =>
      Effect.suspend(() => {
        const now = clock.unsafeCurrentTimeMillis()
        let outcome: Outcome = Exit.isSuccess(exit) ? SUCCESS : classify(exit.cause)
        if (outcome === SUCCESS && slowMs !== undefined && now - start >= slowMs) outcome = FAILURE
        count(outcome)
        const settled = outcome === IGNORED
          ? store.release(name, record, acquired.version)
          : outcome === FAILURE
          ? store.cas(name, record, acquired.version, Machine.opened(acquired, now, backoff))
          : store.trialSuccess(name, record, acquired.version, now, successThreshold)
        return Effect.flatMap(settled, settle)
      }))
  }

  const retryAfterOf = (current: Machine.Shared, now: number): number =>
    current.status === "open"
      ? current.openUntil - now
      : current.status === "half-open"
      ? Math.min(1000, backoff.initialMs)
      : backoff.initialMs

  const acquire = <A, E, R>(effect: Effect.Effect<A, E | CircuitOpen, R>, now: number) =>
    Effect.flatMap(
      store.acquireTrial(name, record, now, halfOpenMaxCalls, leaseMs),
      ([granted, current]): Effect.Effect<A, E | CircuitOpen, R> => {
        const change = adopt(current, false)
        const next: Effect.Effect<A, E | CircuitOpen, R> = granted
          ? trial(effect, current)
          : record === current && (current.status === "closed" || current.status === "disabled")
          ? execute(effect)
          : reject(retryAfterOf(current, now))
        return change === undefined ? next : Effect.zipRight(emit(change), next)
      }
    )

  const execute = <A, E, R>(effect: Effect.Effect<A, E | CircuitOpen, R>): Effect.Effect<A, E | CircuitOpen, R> =>
    Effect.suspend(() => {
      const current = record
      if (current.status === "closed") {
        metrics.calls.unsafeUpdate(1, breakerTags)
        // A healthy consecutive breaker only needs to see failures: one continuation instead of two.
        if (!timed && counters.consecutive === 0 && counters.window === undefined) {
          return Effect.catchAllCause(effect, untimed.onFailure) as Effect.Effect<A, E | CircuitOpen, R>
        }
        return Effect.matchCauseEffect(
          effect,
          (timed ? timedHandlers(clock.unsafeCurrentTimeMillis()) : untimed) as {
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
          const now = clock.unsafeCurrentTimeMillis()
          return now < current.openUntil ? reject(current.openUntil - now) : acquire(effect, now)
        }
        case "half-open":
          return acquire(effect, clock.unsafeCurrentTimeMillis())
      }
    })

  const snapshot = Effect.sync((): Snapshot => {
    const now = clock.unsafeCurrentTimeMillis()
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
    Effect.zipRight(
      Effect.suspend(() =>
        Effect.flatMap(
          store.set(name, record, Machine.operator(record, clock.unsafeCurrentTimeMillis(), status)),
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
    adopt
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
    const clock = yield* Effect.clock
    const pubsub = yield* PubSub.sliding<StateChange>(1024)
    const emit: Emit = (change) => Effect.zipRight(PubSub.publish(pubsub, change), logChange(change))
    return makeBreaker(
      options.name ?? "default",
      options,
      makeMemory,
      clock,
      Machine.initial,
      emit,
      Stream.fromPubSub(pubsub)
    )
  })

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
export class CircuitBreaker extends Context.Tag("@ouroboros/circuit-breaker/CircuitBreaker")<
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
    /** A subscription to transitions that is live as soon as this effect returns. */
    readonly subscribe: Effect.Effect<Queue.Dequeue<StateChange>, never, Scope.Scope>
  }
>() {}

/**
 * Builds the registry over the `CircuitBreakerStore` in context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeRegistry = (
  options: RegistryOptions = {}
): Effect.Effect<CircuitBreaker["Type"], never, CircuitBreakerStore | Scope.Scope> =>
  Effect.gen(function*() {
    const store = yield* CircuitBreakerStore
    const clock = yield* Effect.clock
    const pubsub = yield* Effect.acquireRelease(PubSub.sliding<StateChange>(4096), PubSub.shutdown)
    const breakers = new Map<string, Internal>()
    const emit: Emit = (change) => Effect.zipRight(PubSub.publish(pubsub, change), logChange(change))
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
  Layer.scoped(CircuitBreaker, makeRegistry(options))

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
 * `FAILURE_THRESHOLD` (consecutive failures, 5), `FAILURE_RATE` (0 = use consecutive; else a ratio over the window),
 * `WINDOW_SIZE` (calls, 20), `MINIMUM_THROUGHPUT` (10), `OPEN_DURATION` (10 seconds), `MAX_OPEN_DURATION`
 * (5 minutes), `BACKOFF_FACTOR` (2), `HALF_OPEN_MAX_CALLS` (1), `SLOW_CALL_DURATION` (0 = off),
 * `SLOW_CALL_RATE` (1).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.map(
  Config.all({
    failureThreshold: Config.integer("FAILURE_THRESHOLD").pipe(
      Config.withDefault(5),
      Config.withDescription("Consecutive failures that open a breaker")
    ),
    failureRate: Config.number("FAILURE_RATE").pipe(
      Config.withDefault(0),
      Config.withDescription("Failure ratio (0..1] over the window that opens a breaker; 0 uses consecutive failures")
    ),
    windowSize: Config.integer("WINDOW_SIZE").pipe(
      Config.withDefault(20),
      Config.withDescription("Calls in the sliding window of the failure-rate policy")
    ),
    minimumThroughput: Config.integer("MINIMUM_THROUGHPUT").pipe(
      Config.withDefault(10),
      Config.withDescription("Calls the window must hold before the failure rate counts")
    ),
    openDuration: Config.duration("OPEN_DURATION").pipe(
      Config.withDefault(Duration.seconds(10)),
      Config.withDescription("First break duration")
    ),
    maxOpenDuration: Config.duration("MAX_OPEN_DURATION").pipe(
      Config.withDefault(Duration.minutes(5)),
      Config.withDescription("Longest break duration (the break doubles while trials fail)")
    ),
    backoffFactor: Config.number("BACKOFF_FACTOR").pipe(
      Config.withDefault(2),
      Config.withDescription("Growth of the break duration per failed trial")
    ),
    halfOpenMaxCalls: Config.integer("HALF_OPEN_MAX_CALLS").pipe(
      Config.withDefault(1),
      Config.withDescription("Concurrent trial calls while half-open (fleet-wide with Redis)")
    ),
    slowCallDuration: Config.duration("SLOW_CALL_DURATION").pipe(
      Config.withDefault(Duration.zero),
      Config.withDescription("Calls at least this long are slow (0 = off)")
    ),
    slowCallRate: Config.number("SLOW_CALL_RATE").pipe(
      Config.withDefault(1),
      Config.withDescription("Ratio of slow calls in the window that opens a breaker")
    )
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
): Layer.Layer<CircuitBreaker, ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(defaults, (d) => layer({ ...options, defaults: d })))
