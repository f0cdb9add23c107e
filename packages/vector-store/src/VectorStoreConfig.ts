/**
 * Configuration of the vector store: Qdrant when `QDRANT_URL` is set, else the embedded store under
 * `DATA_DIR/vectors`.
 *
 * @since 0.1.0
 */
import { Config, type ConfigError, Effect, Layer, Option, type Redacted } from "effect"
import * as path from "node:path"
import * as Embedded from "./VectorStore/Embedded.js"
import * as Qdrant from "./VectorStore/Qdrant.js"
import type { VectorStore, VectorStoreError } from "./VectorStore.js"

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
 * `DATA_DIR` (default `./data`), `QDRANT_URL` (unset: embedded store), `QDRANT_API_KEY` (secret),
 * `QDRANT_TIMEOUT_MS` (default 30000), `VECTOR_STORE_FSYNC` (default true).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<VectorStoreConfig> = Config.all({
  dataDir: Config.string("DATA_DIR").pipe(
    Config.withDefault("./data"),
    Config.withDescription("Directory of local state; the embedded vector store lives in its `vectors` folder")
  ),
  qdrantUrl: Config.option(Config.url("QDRANT_URL").pipe(Config.map((url) => url.toString()))).pipe(
    Config.withDescription("Qdrant REST URL; when unset the embedded store is used")
  ),
  qdrantApiKey: Config.option(Config.redacted("QDRANT_API_KEY")).pipe(
    Config.withDescription("Qdrant API key, sent as the `api-key` header")
  ),
  qdrantTimeoutMs: Config.integer("QDRANT_TIMEOUT_MS").pipe(
    Config.validate({ message: "QDRANT_TIMEOUT_MS must be positive", validation: (n) => n > 0 }),
    Config.withDefault(30_000),
    Config.withDescription("Deadline of each Qdrant HTTP call, after which the request is aborted")
  ),
  fsync: Config.boolean("VECTOR_STORE_FSYNC").pipe(
    Config.withDefault(true),
    Config.withDescription("fsync the embedded store's log after every batch (durable against power loss)")
  )
})

/**
 * The layer a configuration selects.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFrom = (
  options: VectorStoreConfig & { readonly headers?: Effect.Effect<Record<string, string>> | undefined }
): Layer.Layer<VectorStore, VectorStoreError> =>
  Option.match(options.qdrantUrl, {
    onNone: () => Embedded.layer({ directory: path.join(options.dataDir, "vectors"), fsync: options.fsync }),
    onSome: (url) =>
      Qdrant.layer({
        url,
        apiKey: Option.getOrUndefined(options.qdrantApiKey),
        timeout: options.qdrantTimeoutMs,
        headers: options.headers
      })
  })

/**
 * The vector store chosen by the environment (see {@link config}).
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { VectorStoreConfig } from "@ouroboros/vector-store"
 * const VectorStoreLive = VectorStoreConfig.layerConfig()
 */
export const layerConfig = (
  options: { readonly headers?: Effect.Effect<Record<string, string>> | undefined } = {}
): Layer.Layer<VectorStore, VectorStoreError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(config, (decoded) => layerFrom({ ...decoded, headers: options.headers })))
