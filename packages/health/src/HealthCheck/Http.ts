/**
 * A health check over HTTP: GET a health endpoint through the `HttpClient` of `effect/http`; a 2xx answer passes
 * (or warns when slower than `warnAfter`), anything else fails. The observed value is the response time in ms.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Layer } from "effect"
import { HttpClient } from "effect/http"
import type { HttpClientError, HttpClientResponse } from "effect/http"
import * as HealthCheck from "../HealthCheck.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The key of the result: `component:measurement`, e.g. `search:responseTime`. */
  readonly name: string
  /** The base URL of the component; `path` is appended to it. */
  readonly url: string | URL
  /** Default `/`. */
  readonly path?: string | undefined
  /** Default true. */
  readonly critical?: boolean | undefined
  /** Default `component`. */
  readonly componentType?: string | undefined
  readonly componentId?: string | undefined
  readonly timeout?: Duration.Input | undefined
  readonly cacheTtl?: Duration.Input | undefined
  readonly probes?: ReadonlyArray<HealthCheck.Probe> | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
  /** A 2xx answer slower than this is `warn`. */
  readonly warnAfter?: Duration.Input | undefined
}

/**
 * Joins a base URL and a path, keeping any path prefix of the base (`http://proxy/qdrant` + `/readyz`).
 *
 * @since 0.1.0
 * @category utils
 */
export const join = (url: string | URL, path: string): string => {
  const base = String(url).replace(/\/+$/, "")
  return path === "" ? base : `${base}${path.startsWith("/") ? path : `/${path}`}`
}

/**
 * GETs a URL and measures how long the answer took (ms). Health traffic is not traced: probes every few seconds
 * would drown the real traces.
 *
 * @since 0.1.0
 * @category utils
 */
export const timedGet = (
  url: string,
  headers?: Readonly<Record<string, string>>
): Effect.Effect<
  readonly [milliseconds: number, response: HttpClientResponse.HttpClientResponse],
  HttpClientError.HttpClientError,
  HttpClient.HttpClient
> =>
  Effect.flatMap(HttpClient.HttpClient, (client) =>
    Effect.map(
      Effect.timed(
        client.get(url, headers === undefined ? {} : { headers }).pipe(
          Effect.provideService(HttpClient.TracerDisabledWhen, tracerDisabled)
        )
      ),
      ([elapsed, response]) => [Math.round(Duration.toMillis(elapsed)), response] as const
    ))

const tracerDisabled = () => true

/**
 * The observation of an answer: 2xx is `pass` (`warn` when slower than `warnAfter`), anything else `fail`.
 *
 * @since 0.1.0
 * @category utils
 */
export const observe = (
  milliseconds: number,
  response: HttpClientResponse.HttpClientResponse,
  warnAfter?: Duration.Input
): HealthCheck.Observation => {
  const measured = { observedValue: milliseconds, observedUnit: "ms" }
  if (response.status < 200 || response.status >= 300) return HealthCheck.fail(`HTTP ${response.status}`, measured)
  if (warnAfter !== undefined && milliseconds > Duration.toMillis(warnAfter)) {
    return HealthCheck.warn(`slower than ${Duration.format(Duration.fromInputUnsafe(warnAfter))}`, measured)
  }
  return HealthCheck.pass(measured)
}

/**
 * The check.
 *
 * @since 0.1.0
 * @category constructors
 */
export const check = (options: Options): HealthCheck.Check<HttpClient.HttpClient> => {
  const target = join(options.url, options.path ?? "/")
  return {
    name: options.name,
    critical: options.critical ?? true,
    componentType: options.componentType ?? "component",
    ...(options.componentId !== undefined ? { componentId: options.componentId } : {}),
    ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
    ...(options.cacheTtl !== undefined ? { cacheTtl: options.cacheTtl } : {}),
    ...(options.probes !== undefined ? { probes: options.probes } : {}),
    run: Effect.map(timedGet(target, options.headers), ([ms, response]) => observe(ms, response, options.warnAfter))
  }
}

/**
 * Registers the check for the lifetime of the Layer.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { HealthCheckHttp } from "@ouroboros/health"
 * const SearchCheck = HealthCheckHttp.layer({
 *   name: "search:responseTime", url: "http://search:9200", path: "/_cluster/health"
 * })
 */
export const layer = (options: Options): Layer.Layer<never, never, HealthCheck.HealthCheck | HttpClient.HttpClient> =>
  HealthCheck.layerCheck(check(options))
