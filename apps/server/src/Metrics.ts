/**
 * `GET /metrics`: every Effect metric of the process (breakers, rate-limit decisions, in-flight requests, …) in the
 * Prometheus text exposition format, rendered by Effect's `PrometheusMetrics`. Never rate limited; meant for a
 * scraper on the cluster network.
 *
 * @since 0.1.0
 */
import type { Effect, Layer } from "effect"
import type { HttpRouter } from "effect/http"
import { PrometheusMetrics } from "effect/observability"

/**
 * Every metric of the registry in the Prometheus text format (one `# TYPE` per family).
 *
 * @since 0.1.0
 * @category utils
 */
export const render: Effect.Effect<string> = PrometheusMetrics.format()

/**
 * Adds `GET /metrics` to the server's router (`text/plain; version=0.0.4`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<never, never, HttpRouter.HttpRouter> = PrometheusMetrics.layerHttp({ path: "/metrics" })
