/**
 * Configuration of the vector store: Qdrant when `QDRANT_URL` is set, else the embedded store under
 * `DATA_DIR/vectors`.
 *
 * @since 0.1.0
 */
import { Config, Duration, Effect, Layer, Option, type Redacted, Schema } from "effect"
import * as path from "node:path"
import type { VectorStore, VectorStoreError } from "./VectorStore.js"
import * as Embedded from "./VectorStore/Embedded.js"
import * as Qdrant from "./VectorStore/Qdrant.js"

/**
 * The decoded configuration.
 *
 * @since 0.1.0
 * @category models
 */
export interface VectorStoreConfig {
  readonly dataDir: string
  readonly qdrantUrl: Option.Option<string>
  readonly qdrantApiKey: Option.Option<Redacted.Redacted<string>>
  readonly qdrantTimeoutMs: number
  readonly fsync: boolean
}

/**
 * The configuration read from the environment:
 *
 * - `DATA_DIR` (default `./data`): directory of local state; the embedded vector store lives in its `vectors` folder.
 * - `QDRANT_URL` (unset: the embedded store): Qdrant's REST URL; when set, Qdrant is used.
 * - `QDRANT_API_KEY` (secret, optional): sent as the `api-key` header.
 * - `QDRANT_TIMEOUT_MS` (default 30000, positive integer): deadline of each Qdrant HTTP call, after which the request
 *   is aborted.
 * - `VECTOR_STORE_FSYNC` (default true): fsync the embedded store's log after every batch (durable against power loss).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<VectorStoreConfig> = Config.all({
  dataDir: Config.String("DATA_DIR").pipe(Config.withDefault("./data")),
  qdrantUrl: Config.option(Config.URL("QDRANT_URL").pipe(Config.map((url) => url.toString()))),
  qdrantApiKey: Config.option(Config.Redacted("QDRANT_API_KEY")),
  qdrantTimeoutMs: Config.schema(
    Schema.Int.check(Schema.isGreaterThan(0, { message: "QDRANT_TIMEOUT_MS must be positive" })),
    "QDRANT_TIMEOUT_MS"
  ).pipe(Config.withDefault(30_000)),
  fsync: Config.Boolean("VECTOR_STORE_FSYNC").pipe(Config.withDefault(true))
})

/**
 * How {@link layerFrom} and {@link layerConfig} build the store, besides the configuration.
 *
 * @since 0.1.0
 * @category models
 */
export interface LayerOptions {
  /** Extra headers read before every Qdrant call (`traceparent`, `X-Correlation-ID` of the current fiber). */
  readonly headers?: Effect.Effect<Record<string, string>> | undefined
  /** The embedded store's directory; default `DATA_DIR/vectors`. */
  readonly directory?: string | undefined
  /**
   * Applied to the Qdrant layer only (the embedded store is in-process and needs none of it): a circuit breaker,
   * retries, metrics around every remote call.
   */
  readonly qdrant?:
    | ((layer: Layer.Layer<VectorStore, VectorStoreError>) => Layer.Layer<VectorStore, VectorStoreError>)
    | undefined
}

/**
 * The layer a configuration selects: the embedded store (with `VECTOR_STORE_FSYNC`) under `directory` or
 * `DATA_DIR/vectors`, or Qdrant (with `QDRANT_API_KEY` and `QDRANT_TIMEOUT_MS`) when `QDRANT_URL` is set.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFrom = (
  options: VectorStoreConfig & LayerOptions
): Layer.Layer<VectorStore, VectorStoreError> =>
  Option.match(options.qdrantUrl, {
    onNone: () =>
      Embedded.layer({ directory: options.directory ?? path.join(options.dataDir, "vectors"), fsync: options.fsync }),
    onSome: (url) => {
      const qdrant = Qdrant.layer({
        url: url.replace(/\/+$/, ""),
        apiKey: Option.getOrUndefined(options.qdrantApiKey),
        timeout: Duration.millis(options.qdrantTimeoutMs),
        headers: options.headers
      })
      return options.qdrant === undefined ? qdrant : options.qdrant(qdrant)
    }
  })

/**
 * The vector store chosen by the environment (see {@link config}): what an application (the server included) should
 * use, so that every documented variable takes effect.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { VectorStoreConfig } from "@ouroboros/vector-store"
 * const VectorStoreLive = VectorStoreConfig.layerConfig({ directory: "/var/lib/ouroboros/vectors" })
 */
export const layerConfig = (
  options: LayerOptions = {}
): Layer.Layer<VectorStore, VectorStoreError | Config.ConfigError> =>
  Layer.unwrap(Effect.map(config, (decoded) => layerFrom({ ...decoded, ...options })))
