/**
 * RED metrics of the HTTP server (rate, errors, duration), by method, route template and status, in seconds:
 *
 * - `http_server_request_duration_seconds`: a histogram of the time from the request reaching the server's
 *   middleware to its response being written (buckets {@link boundaries});
 * - `http_server_requests_total`: a counter of the same requests (the histogram's count, as a counter for `rate()`).
 *
 * Requests in flight are `http_server_active_requests`, the gauge of `@ouroboros/shutdown`'s `InFlight` (which tracks
 * them for draining), and not counted twice here.
 *
 * Errors are derived from the status, not counted apart: `http_server_requests_total{status=~"5.."}` are the server's
 * errors, `{status=~"4.."}` the clients'. The route is the template (`/api/v1/documents/:id`), `unmatched` for requests
 * no route serves, so the label sets stay few; a method outside the standard ones is `_OTHER`, a status outside
 * 100–599 is `0`. No label holds a tenant, a principal or a raw path.
 *
 * Recording is the hot path: each label set's series are made once, registered with `Metric.registerUnsafe` (the
 * registry reads them when it is read), and a request adds to a few numbers (no attribute merging, no registry lookup).
 *
 * @since 0.1.0
 */
import { Context, Effect, Metric } from "effect"
import type * as RouteTable from "./RouteTable.js"

/**
 * The bucket boundaries of the duration histogram, in seconds: 0.5 ms to 60 s (a health probe takes well under a
 * millisecond, an answer from a language model many seconds).
 *
 * @since 0.1.0
 * @category constants
 */
export const boundaries: ReadonlyArray<number> = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60
]

/**
 * The duration histogram (seconds). Its series are read from the recorder's cells: updating it yourself does nothing.
 *
 * @since 0.1.0
 * @category metrics
 */
export const duration = Metric.histogram("http_server_request_duration_seconds", {
  description: "Duration of HTTP server requests in seconds, from the request to its response written",
  boundaries
})

/**
 * The request counter. Its series are read from the recorder's cells: updating it yourself does nothing.
 *
 * @since 0.1.0
 * @category metrics
 */
export const requests = Metric.counter("http_server_requests_total", {
  description: "HTTP server requests by method, route and status (5xx: server errors)",
  incremental: true
})

const methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "QUERY", "CONNECT", "TRACE", "_OTHER"]
const methodIndex = new Map(methods.map((method, i) => [method, i]))
const other = methods.length - 1

/**
 * Records requests.
 *
 * @since 0.1.0
 * @category models
 */
export interface HttpMetrics {
  /** Adds one request: its method, route, status and duration in seconds. */
  readonly record: (method: string, route: RouteTable.Route, status: number, seconds: number) => void
}

interface Cell {
  readonly counts: Float64Array
  count: number
  sum: number
  min: number
  max: number
}

const noop = () => {}

/**
 * A recorder counting into the metric registry (and with the metric attributes) of `context`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeUnsafe = (context: Context.Context<never>): HttpMetrics => {
  const size = boundaries.length
  // By route template (so that two route objects of one template share their series), then method and status.
  const cells = new Map<string, Map<number, Cell>>()

  const register = (method: string, route: string, status: number): Cell => {
    const cell: Cell = {
      counts: new Float64Array(size),
      count: 0,
      sum: 0,
      min: Number.MAX_VALUE,
      max: -Number.MAX_VALUE
    }
    const attributes = { method, route, status: String(status) }
    Metric.registerUnsafe(Metric.withAttributes(duration, attributes), context, {
      get: () => {
        const buckets: Array<[number, number]> = new Array(size)
        let cumulated = 0
        for (let i = 0; i < size; i++) {
          cumulated += cell.counts[i]!
          buckets[i] = [boundaries[i]!, cumulated]
        }
        return { buckets, count: cell.count, sum: cell.sum, min: cell.min, max: cell.max }
      },
      update: noop,
      modify: noop
    })
    Metric.registerUnsafe(Metric.withAttributes(requests, attributes), context, {
      get: () => ({ count: cell.count, incremental: true }),
      update: noop,
      modify: noop
    })
    return cell
  }

  return {
    record: (method, route, status, seconds) => {
      const m = methodIndex.get(method) ?? other
      if (!(status >= 100 && status <= 599)) status = 0
      const key = m * 1000 + status
      let byKey = cells.get(route.path)
      if (byKey === undefined) cells.set(route.path, byKey = new Map())
      let cell = byKey.get(key)
      if (cell === undefined) byKey.set(key, cell = register(methods[m]!, route.path, status))
      // Most requests are fast: the first buckets are checked first.
      let i = 0
      while (i < size && seconds > boundaries[i]!) i++
      if (i < size) cell.counts[i] = cell.counts[i]! + 1
      cell.count++
      cell.sum += seconds
      if (seconds < cell.min) cell.min = seconds
      if (seconds > cell.max) cell.max = seconds
    }
  }
}

/**
 * A recorder counting into the metric registry of the current context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<HttpMetrics> = Effect.map(Effect.context<never>(), makeUnsafe)
