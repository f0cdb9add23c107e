/**
 * Fault injection for the stand-in servers: added latency, a rate of error answers, requests that hang and
 * connections that are refused. Each stand-in owns one `Faults` and reads `current` for every request, so a test
 * can change the behaviour of a running stand-in between two calls.
 *
 * @since 0.1.0
 */
import * as internal from "./internal/faults.js"

/**
 * What a stand-in does to the requests it receives.
 *
 * - `latencyMs`: delay added before answering.
 * - `errorRate`: share (0..1) of requests answered `errorStatus` in the service's error shape. It is deterministic:
 *   every request adds `errorRate` to a budget and each whole unit is one error, so 1 fails every request, 0.5 every
 *   second one (the 2nd, 4th, …) and 0.25 every fourth; changing the rate restarts the count.
 * - `errorStatus`: the status of injected errors (500 by default).
 * - `hang`: accept requests and never answer them, until the fault is lifted (they then proceed, unless their
 *   client has gone away: those are dropped unprocessed; the stand-in's `hanging` tells when it has seen a client go
 *   away) or the stand-in closes (their sockets are destroyed).
 *   Requests delayed by `latencyMs` are processed even if their client gave up, like a slow server would.
 * - `refuse`: destroy every incoming socket at once; open keep-alive sockets are destroyed when it is turned on.
 *
 * @since 0.1.0
 * @category models
 */
export interface FaultConfig {
  readonly latencyMs: number
  readonly errorRate: number
  readonly errorStatus: number
  readonly hang: boolean
  readonly refuse: boolean
}

/**
 * The mutable fault settings of one stand-in.
 *
 * @since 0.1.0
 * @category models
 */
export interface Faults {
  readonly current: FaultConfig
  set(patch: Partial<FaultConfig>): void
  reset(): void
}

/**
 * No fault: answer at once, never fail.
 *
 * @since 0.1.0
 * @category constants
 */
export const none: FaultConfig = internal.none

/**
 * Creates fault settings with no fault active.
 *
 * @example
 * ```ts
 * import * as Faults from "@ouroboros/testkit/Faults"
 *
 * const faults = Faults.make()
 * faults.set({ errorRate: 1, errorStatus: 503 })
 * faults.reset()
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (): Faults => internal.make(() => {})
