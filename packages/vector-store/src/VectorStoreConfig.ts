/**
 * Configuration of the vector store: Qdrant when `QDRANT_URL` is set, else the embedded store under
 * `DATA_DIR/vectors`.
 *
 * @since 0.1.0
 */
import { Config, Effect, Layer, Option, type Redacted, Schema } from "effect"
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
): Layer.Layer<VectorStore, VectorStoreError | Config.ConfigError> =>
  Layer.unwrap(Effect.map(config, (decoded) => layerFrom({ ...decoded, headers: options.headers })))
