/**
 * The Qdrant health check: `GET /readyz` (all shards ready), falling back to `/healthz` on servers without it.
 *
 * @since 0.1.0
 */
import type { Duration } from "effect"
import { Effect, Layer, Redacted } from "effect"
import type { HttpClient } from "effect/http"
import * as HealthCheck from "../HealthCheck.js"
import * as Http from "./Http.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The Qdrant REST URL, e.g. `http://qdrant:6333`. */
  readonly url: string | URL
  /** Sent as `api-key` (the probe endpoints of Qdrant do not need it, a proxy in front may). */
  readonly apiKey?: Redacted.Redacted | undefined
  /** Default `qdrant:responseTime`. */
  readonly name?: string | undefined
  /** Default true: with Qdrant configured there is no other vector store to fall back to. */
  readonly critical?: boolean | undefined
  readonly timeout?: Duration.Input | undefined
  readonly cacheTtl?: Duration.Input | undefined
  readonly probes?: ReadonlyArray<HealthCheck.Probe> | undefined
  readonly warnAfter?: Duration.Input | undefined
}

/**
 * The check.
 *
 * @since 0.1.0
 * @category constructors
 */
export const check = (options: Options): HealthCheck.Check<HttpClient.HttpClient> => {
  const headers = options.apiKey === undefined ? undefined : { "api-key": Redacted.value(options.apiKey) }
  const get = (path: string) => Http.timedGet(Http.join(options.url, path), headers)
  return {
    name: options.name ?? "qdrant:responseTime",
    componentType: "datastore",
    componentId: "qdrant",
    critical: options.critical ?? true,
    ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
    ...(options.cacheTtl !== undefined ? { cacheTtl: options.cacheTtl } : {}),
    ...(options.probes !== undefined ? { probes: options.probes } : {}),
    run: Effect.flatMap(get("/readyz"), ([ms, response]) =>
      response.status === 404
        ? Effect.map(get("/healthz"), ([ms, response]) => Http.observe(ms, response, options.warnAfter))
        : Effect.succeed(Http.observe(ms, response, options.warnAfter)))
  }
}

/**
 * Registers the check for the lifetime of the Layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<never, never, HealthCheck.HealthCheck | HttpClient.HttpClient> =>
  HealthCheck.layerCheck(check(options))
