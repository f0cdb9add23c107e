/**
 * What the Qdrant and Ollama stand-ins have in common: a running server that records every request and injects
 * faults on demand.
 *
 * @since 0.1.0
 */
import type * as Faults from "./Faults.js"

/**
 * One request a stand-in received (recorded before any fault is applied).
 *
 * @since 0.1.0
 * @category models
 */
export interface RecordedRequest {
  readonly method: string
  readonly path: string
  readonly url: string
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly body: unknown
  readonly at: number
}

/**
 * A running stand-in.
 *
 * @since 0.1.0
 * @category models
 */
export interface StandIn {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  readonly port: number
  readonly faults: Faults.Faults
  /** Every request seen, including the ones answered with faults. */
  readonly requests: ReadonlyArray<RecordedRequest>
  /**
   * Requests held by the `hang` fault whose client is still connected. Tests wait for it instead of sleeping: it
   * reaches 1 once a request has arrived and hangs, and drops once the server has seen that client go away (so
   * lifting the fault then drops that request for sure).
   */
  readonly hanging: number
  clearRequests(): void
  /** Stops the server, ending hung requests and open connections. */
  close(): Promise<void>
}
