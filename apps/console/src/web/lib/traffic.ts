/**
 * What the Overview reads from one `/metrics` scrape: request and error counts, the latency histogram and the
 * requests in flight, under the names the usual instrumentations give them (OpenTelemetry's semantic conventions
 * first). A name the server does not expose is `undefined`, and the Overview says which one it looked for.
 *
 * @since 0.1.0
 */
import * as Prometheus from "./prometheus.js"

/**
 * Histograms of request durations in seconds, in the order they are looked for.
 *
 * @since 0.1.0
 * @category constants
 */
export const durationHistograms = [
  "http_server_request_duration_seconds",
  "http_server_duration_seconds",
  "http_request_duration_seconds"
] as const

/**
 * Counters of requests, in the order they are looked for when no duration histogram is exposed.
 *
 * @since 0.1.0
 * @category constants
 */
export const requestCounters = ["http_server_requests_total", "http_requests_total"] as const

/**
 * Gauges of requests being served.
 *
 * @since 0.1.0
 * @category constants
 */
export const inFlightGauges = ["http_server_active_requests", "http_server_requests_in_flight"] as const

const statusLabels = ["http_response_status_code", "status_code", "status", "code"] as const

const isServerError = (labels: Readonly<Record<string, string>>): boolean => {
  for (const name of statusLabels) {
    const value = labels[name]
    if (value !== undefined) return /^5\d\d$/.test(value) || value === "5xx"
  }
  return false
}

/**
 * One scrape, reduced to what the Overview charts.
 *
 * @since 0.1.0
 * @category models
 */
export interface Scrape {
  /** Epoch milliseconds of the scrape. */
  readonly at: number
  readonly requests: number | undefined
  /** Requests answered with a 5xx status. */
  readonly errors: number | undefined
  readonly buckets: ReadonlyArray<Prometheus.Bucket> | undefined
  readonly inFlight: number | undefined
  /** The series the numbers came from (to say what is missing). */
  readonly requestSeries: string | undefined
  readonly latencySeries: string | undefined
}

/**
 * Reads a scrape.
 *
 * @since 0.1.0
 * @category reading
 */
export const read = (metrics: Prometheus.Metrics, at: number): Scrape => {
  const histogram = durationHistograms.find((name) => Prometheus.samples(metrics, `${name}_count`).length > 0)
  const counter = histogram === undefined
    ? requestCounters.find((name) => Prometheus.samples(metrics, name).length > 0)
    : undefined
  const countSeries = histogram !== undefined ? `${histogram}_count` : counter
  const gauge = inFlightGauges.find((name) => Prometheus.samples(metrics, name).length > 0)
  return {
    at,
    requests: countSeries === undefined ? undefined : Prometheus.sum(metrics, countSeries),
    errors: countSeries === undefined ? undefined : Prometheus.sum(metrics, countSeries, isServerError) ?? 0,
    buckets: histogram === undefined ? undefined : Prometheus.buckets(metrics, histogram),
    inFlight: gauge === undefined ? undefined : Prometheus.sum(metrics, gauge),
    requestSeries: countSeries,
    latencySeries: histogram
  }
}

/**
 * The charted values between two consecutive scrapes (`undefined` where the server exposes nothing to compute them).
 *
 * @since 0.1.0
 * @category models
 */
export interface Point {
  readonly at: number
  /** Requests per second. */
  readonly rate: number | undefined
  /** Share of requests answered with a 5xx, 0 to 1 (`undefined` when there were no requests). */
  readonly errorRatio: number | undefined
  /** Seconds. */
  readonly p50: number | undefined
  readonly p99: number | undefined
  readonly inFlight: number | undefined
}

/**
 * The point of the interval between `before` and `after`.
 *
 * @since 0.1.0
 * @category arithmetic
 */
export const between = (before: Scrape, after: Scrape): Point => {
  const seconds = (after.at - before.at) / 1000
  const requests = Prometheus.increase(before.requests, after.requests)
  const errors = Prometheus.increase(before.errors, after.errors)
  const window = before.buckets !== undefined && after.buckets !== undefined
    ? Prometheus.bucketIncrease(before.buckets, after.buckets)
    : undefined
  return {
    at: after.at,
    rate: requests === undefined || seconds <= 0 ? undefined : requests / seconds,
    errorRatio: requests === undefined || errors === undefined || requests === 0 ? undefined : errors / requests,
    p50: window === undefined ? undefined : Prometheus.quantile(0.5, window),
    p99: window === undefined ? undefined : Prometheus.quantile(0.99, window),
    inFlight: after.inFlight
  }
}
