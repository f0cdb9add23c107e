/**
 * The pure state machine of a circuit breaker: the shared record and its transitions (what a store applies
 * atomically), and the local outcome counters (consecutive failures, count and time windows).
 *
 * Nothing here reads a clock or performs an effect: callers pass `now`, so the property test and the Redis Lua script
 * (which mirrors `cas`, `acquireTrial`, `trialSuccess` and `release`) can be checked against the same definitions.
 *
 * @internal
 */

/** @internal */
export type Status = "closed" | "open" | "half-open" | "forced-open" | "disabled"

/**
 * The record a store keeps per breaker, shared by every replica. Every status change bumps `version`; trial counting
 * (`trials`, `successes`, `leaseUntil`) changes the record without a new version.
 *
 * @internal
 */
export interface Shared {
  readonly status: Status
  readonly version: number
  /** When the current status was entered (ms). */
  readonly since: number
  /** While open: when trial calls may start (ms). */
  readonly openUntil: number
  /** Opens in the current backoff streak (1 on the first open). */
  readonly attempts: number
  /** The break duration of the last open (ms), used to end a backoff streak. */
  readonly lastOpenMs: number
  /** While half-open: trial permits in use across the fleet. */
  readonly trials: number
  /** While half-open: trials that succeeded. */
  readonly successes: number
  /** While half-open: permits not settled by this time are reclaimed (a replica died holding one). */
  readonly leaseUntil: number
  /**
   * Set on a record a shared store could not write (its backend was unreachable) and computed locally instead: such a
   * record never outranks what the store says once it answers again.
   */
  readonly local?: true | undefined
}

/** @internal */
export type Fields = Omit<Shared, "version" | "local">

/** @internal */
export const initial: Shared = {
  status: "closed",
  version: 0,
  since: 0,
  openUntil: 0,
  attempts: 0,
  lastOpenMs: 0,
  trials: 0,
  successes: 0,
  leaseUntil: 0
}

/**
 * Exponential break duration: `initial * factor^(attempt - 1)`, capped at `max`.
 *
 * @internal
 */
export interface Backoff {
  readonly initialMs: number
  readonly maxMs: number
  readonly factor: number
}

const breakDuration = (backoff: Backoff, attempt: number): number =>
  Math.round(Math.min(backoff.maxMs, backoff.initialMs * Math.pow(backoff.factor, Math.max(0, attempt - 1))))

// ---------------------------------------------------------------------------------------------------------------------
// Store operations (applied atomically by a store; mirrored in Lua by the Redis store)
// ---------------------------------------------------------------------------------------------------------------------

/**
 * Compare-and-set: writes `next` with a new version when the record is still at `expectedVersion` (`-1`: always).
 *
 * @internal
 */
export const cas = (record: Shared, expectedVersion: number, next: Fields): Shared =>
  expectedVersion === -1 || record.version === expectedVersion
    ? {
      status: next.status,
      version: record.version + 1,
      since: next.since,
      openUntil: next.openUntil,
      attempts: next.attempts,
      lastOpenMs: next.lastOpenMs,
      trials: next.trials,
      successes: next.successes,
      leaseUntil: next.leaseUntil
    }
    : record

/**
 * Asks for a trial permit. An open breaker whose break is over becomes half-open (new version) and grants the first
 * permit; a half-open one grants while fewer than `max` permits are in use. Permits older than the lease are
 * reclaimed first.
 *
 * @internal
 */
export const acquireTrial = (
  record: Shared,
  now: number,
  max: number,
  leaseMs: number
): readonly [granted: boolean, record: Shared] => {
  if (record.status === "open") {
    if (now < record.openUntil) return [false, record]
    return [true, {
      ...record,
      status: "half-open",
      version: record.version + 1,
      since: now,
      trials: 1,
      successes: 0,
      leaseUntil: now + leaseMs
    }]
  }
  if (record.status === "half-open") {
    const trials = now >= record.leaseUntil ? 0 : record.trials
    if (trials >= max) return [false, record]
    return [true, { ...record, trials: trials + 1, leaseUntil: now + leaseMs }]
  }
  return [false, record]
}

/**
 * Settles a successful trial: the breaker closes (new version) once `threshold` trials have succeeded.
 *
 * @internal
 */
export const trialSuccess = (record: Shared, version: number, now: number, threshold: number): Shared => {
  if (record.version !== version || record.status !== "half-open") return record
  const successes = record.successes + 1
  if (successes >= threshold) {
    return {
      ...record,
      status: "closed",
      version: record.version + 1,
      since: now,
      openUntil: 0,
      trials: 0,
      successes: 0,
      leaseUntil: 0
    }
  }
  return { ...record, successes, trials: Math.max(0, record.trials - 1) }
}

/**
 * Gives back a trial permit whose call ended without an outcome (interrupted).
 *
 * @internal
 */
export const release = (record: Shared, version: number): Shared =>
  record.version !== version || record.status !== "half-open" || record.trials === 0
    ? record
    : { ...record, trials: record.trials - 1 }

// ---------------------------------------------------------------------------------------------------------------------
// Transitions computed by the caller and written with `cas`
// ---------------------------------------------------------------------------------------------------------------------

/**
 * The open record that follows `record` at `now`. From closed, a backoff streak ends when the breaker stayed closed at
 * least as long as it was last open; from half-open (a failed trial) the streak grows. `hintMs` (a failure's own
 * `Retry-After`, say) can lengthen the break up to `backoff.maxMs`, never shorten it.
 *
 * @internal
 */
export const opened = (record: Shared, now: number, backoff: Backoff, hintMs = 0): Fields => {
  const streak = record.status === "closed" && now - record.since >= record.lastOpenMs ? 0 : record.attempts
  const attempts = streak + 1
  const duration = Math.max(breakDuration(backoff, attempts), Math.round(Math.min(hintMs, backoff.maxMs)))
  return {
    status: "open",
    since: now,
    openUntil: now + duration,
    attempts,
    lastOpenMs: duration,
    trials: 0,
    successes: 0,
    leaseUntil: 0
  }
}

/** @internal */
export const operator = (record: Shared, now: number, status: "closed" | "forced-open" | "disabled"): Fields => ({
  status,
  since: now,
  openUntil: 0,
  attempts: status === "closed" ? 0 : record.attempts,
  lastOpenMs: status === "closed" ? 0 : record.lastOpenMs,
  trials: 0,
  successes: 0,
  leaseUntil: 0
})

// ---------------------------------------------------------------------------------------------------------------------
// Local counters (per process): what decides to trip a closed breaker
// ---------------------------------------------------------------------------------------------------------------------

/**
 * How a closed breaker decides to open.
 *
 * @internal
 */
export type Trip =
  | { readonly _tag: "Consecutive"; readonly threshold: number }
  | {
    readonly _tag: "FailureRate"
    readonly threshold: number
    readonly minimumThroughput: number
    readonly window:
      | { readonly _tag: "Count"; readonly size: number }
      | { readonly _tag: "Time"; readonly durationMs: number; readonly buckets: number }
    /** Slow calls at or over this ratio of the window open the breaker too. */
    readonly slowRateThreshold: number | undefined
  }

/**
 * Outcome counts over a sliding window.
 *
 * @internal
 */
export interface Window {
  add(now: number, failure: boolean, slow: boolean): void
  readonly total: number
  readonly failures: number
  readonly slow: number
  /** Drops expired samples (time windows); a no-op for count windows. */
  advance(now: number): void
  clear(): void
}

/**
 * The last `size` outcomes.
 *
 * @internal
 */
class CountWindow implements Window {
  private readonly ring: Uint8Array
  private index = 0
  total = 0
  failures = 0
  slow = 0
  constructor(readonly size: number) {
    this.ring = new Uint8Array(size)
  }
  add(_now: number, failure: boolean, slow: boolean): void {
    const flags = (failure ? 1 : 0) | (slow ? 2 : 0)
    if (this.total === this.size) {
      const old = this.ring[this.index]!
      if (old & 1) this.failures--
      if (old & 2) this.slow--
    } else {
      this.total++
    }
    this.ring[this.index] = flags
    if (failure) this.failures++
    if (slow) this.slow++
    this.index = this.index + 1 === this.size ? 0 : this.index + 1
  }
  advance(_now: number): void {}
  clear(): void {
    this.index = 0
    this.total = 0
    this.failures = 0
    this.slow = 0
  }
}

/**
 * Outcomes of the last `durationMs`, in `buckets` buckets: a sample recorded at `t` counts while
 * `floor(t / bucketMs) > floor(now / bucketMs) - buckets`.
 *
 * @internal
 */
export class TimeWindow implements Window {
  readonly bucketMs: number
  private readonly epochs: Float64Array
  private readonly totals: Int32Array
  private readonly fails: Int32Array
  private readonly slows: Int32Array
  private lastEpoch = -Infinity
  total = 0
  failures = 0
  slow = 0
  constructor(readonly durationMs: number, readonly buckets: number) {
    this.bucketMs = Math.max(1, Math.ceil(durationMs / buckets))
    this.epochs = new Float64Array(buckets).fill(-Infinity)
    this.totals = new Int32Array(buckets)
    this.fails = new Int32Array(buckets)
    this.slows = new Int32Array(buckets)
  }
  advance(now: number): void {
    const epoch = Math.floor(now / this.bucketMs)
    if (epoch === this.lastEpoch) return
    this.lastEpoch = epoch
    const oldest = epoch - this.buckets + 1
    for (let i = 0; i < this.buckets; i++) {
      if (this.epochs[i]! < oldest && this.totals[i]! > 0) this.evict(i)
    }
  }
  private evict(i: number): void {
    this.total -= this.totals[i]!
    this.failures -= this.fails[i]!
    this.slow -= this.slows[i]!
    this.totals[i] = 0
    this.fails[i] = 0
    this.slows[i] = 0
  }
  add(now: number, failure: boolean, slow: boolean): void {
    this.advance(now)
    const epoch = Math.floor(now / this.bucketMs)
    const i = epoch % this.buckets
    if (this.epochs[i] !== epoch) {
      this.evict(i)
      this.epochs[i] = epoch
    }
    this.totals[i]!++
    this.total++
    if (failure) {
      this.fails[i]!++
      this.failures++
    }
    if (slow) {
      this.slows[i]!++
      this.slow++
    }
  }
  clear(): void {
    this.lastEpoch = -Infinity
    this.epochs.fill(-Infinity)
    this.totals.fill(0)
    this.fails.fill(0)
    this.slows.fill(0)
    this.total = 0
    this.failures = 0
    this.slow = 0
  }
}

/**
 * The local counters of one breaker in one process.
 *
 * @internal
 */
export class Counters {
  consecutive = 0
  readonly window: Window | undefined
  constructor(readonly trip: Trip) {
    this.window = trip._tag === "Consecutive"
      ? undefined
      : trip.window._tag === "Count"
      ? new CountWindow(trip.window.size)
      : new TimeWindow(trip.window.durationMs, trip.window.buckets)
  }
  /**
   * Records one outcome of a closed breaker and says whether it must open. With a consecutive policy a slow call
   * counts as a failure.
   */
  record(now: number, failure: boolean, slow: boolean): boolean {
    const trip = this.trip
    if (trip._tag === "Consecutive") {
      if (failure || slow) {
        this.consecutive++
        return this.consecutive >= trip.threshold
      }
      this.consecutive = 0
      return false
    }
    this.consecutive = failure ? this.consecutive + 1 : 0
    const window = this.window!
    window.add(now, failure, slow)
    if (window.total < trip.minimumThroughput || window.total === 0) return false
    if (window.failures / window.total >= trip.threshold) return true
    return trip.slowRateThreshold !== undefined && window.slow / window.total >= trip.slowRateThreshold
  }
  clear(): void {
    this.consecutive = 0
    this.window?.clear()
  }
}
