/**
 * The Ollama health check: `GET /api/version`; the observed value is the version Ollama reports.
 *
 * @since 0.1.0
 */
import type { Duration } from "effect"
import { Effect, Layer, Schema } from "effect"
import type { HttpClient } from "effect/http"
import { HttpClientResponse } from "effect/http"
import * as HealthCheck from "../HealthCheck.js"
import * as Http from "./Http.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The Ollama URL, e.g. `http://ollama:11434`. */
  readonly url: string | URL
  /** Default `ollama:version`. */
  readonly name?: string | undefined
  /** Default false: without Ollama the service answers degraded (local embedder and extractive answers). */
  readonly critical?: boolean | undefined
  readonly timeout?: Duration.Input | undefined
  readonly cacheTtl?: Duration.Input | undefined
  readonly probes?: ReadonlyArray<HealthCheck.Probe> | undefined
}

const Version = Schema.Struct({ version: Schema.String })

/**
 * The check.
 *
 * @since 0.1.0
 * @category constructors
 */
export const check = (options: Options): HealthCheck.Check<HttpClient.HttpClient> => ({
  name: options.name ?? "ollama:version",
  componentType: "component",
  componentId: "ollama",
  critical: options.critical ?? false,
  ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
  ...(options.cacheTtl !== undefined ? { cacheTtl: options.cacheTtl } : {}),
  ...(options.probes !== undefined ? { probes: options.probes } : {}),
  run: Effect.flatMap(
    Http.timedGet(Http.join(options.url, "/api/version")),
    ([, response]) =>
      response.status < 200 || response.status >= 300
        ? Effect.succeed(HealthCheck.fail(`HTTP ${response.status}`))
        : Effect.map(
          HttpClientResponse.schemaBodyJson(Version)(response),
          ({ version }) => HealthCheck.pass({ observedValue: version })
        )
  )
})

/**
 * Registers the check for the lifetime of the Layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<never, never, HealthCheck.HealthCheck | HttpClient.HttpClient> =>
  HealthCheck.layerCheck(check(options))
