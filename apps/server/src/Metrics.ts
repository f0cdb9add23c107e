/**
 * `GET /metrics`: every Effect metric of the process (breakers, rate-limit decisions, RED metrics, in-flight requests,
 * …) in the Prometheus text exposition format, corrected to Prometheus' conventions by `@ouroboros/correlation`'s
 * `Prometheus` (counters end in `_total`, every family has HELP, timers in seconds, Effect's fiber counters renamed)
 * and rendered by Effect's `PrometheusMetrics`. Never rate limited; meant for a scraper on the cluster network.
 *
 * @since 0.1.0
 */
import { Prometheus } from "@ouroboros/correlation"
import type { Effect, Layer } from "effect"
import type { HttpRouter } from "effect/http"

/**
 * Every metric of the registry in the Prometheus text format (one `# TYPE` and `# HELP` per family).
 *
 * @since 0.1.0
 * @category utils
 */
export const render: Effect.Effect<string> = Prometheus.format()

/**
 * Adds `GET /metrics` to the server's router (`text/plain; version=0.0.4`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<never, never, HttpRouter.HttpRouter> = Prometheus.layerHttp({ path: "/metrics" })
