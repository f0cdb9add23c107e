/**
 * The vector store of the server: the embedded store under DATA_DIR, or Qdrant when `QDRANT_URL` is set, its calls
 * guarded by the `qdrant` breaker pipeline. Built by `@ouroboros/vector-store`'s `VectorStoreConfig`, so every
 * variable its README documents takes effect (`QDRANT_API_KEY`, `QDRANT_TIMEOUT_MS`, `VECTOR_STORE_FSYNC`). Outgoing Qdrant calls carry the request's `X-Correlation-ID` and W3C
 * trace context.
 *
 * @since 0.1.0
 */
import { Correlation } from "@ouroboros/correlation"
import { Resilient } from "@ouroboros/retrieval"
import { VectorStoreConfig } from "@ouroboros/vector-store"
import { Config, Effect, Layer, Option } from "effect"
import * as Breakers from "./Breakers.js"

/**
 * `QDRANT_URL` and `QDRANT_API_KEY`.
 *
 * @since 0.1.0
 * @category config
 */
export const config = Config.all({
  /** Qdrant's REST URL; unset for the embedded store. */
  url: Config.option(Config.URL("QDRANT_URL")),
  /** Qdrant's API key. */
  apiKey: Config.option(Config.Redacted("QDRANT_API_KEY"))
})

/**
 * The store (`VectorStoreConfig.config`: `QDRANT_URL`, `QDRANT_API_KEY`, `QDRANT_TIMEOUT_MS`, `VECTOR_STORE_FSYNC`,
 * under `directory`), and retrieval's vector store guard when it is Qdrant. Retrieval guards its own calls; the store's other
 * users take {@link layerGuarded}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (directory: string) =>
  Layer.unwrap(Effect.map(VectorStoreConfig.config, (settings) => {
    const store = VectorStoreConfig.layerFrom({ ...settings, directory, headers: Correlation.outgoingHeaders })
    return Option.isSome(settings.qdrantUrl) ? Layer.merge(store, Breakers.layerQdrantGuard) : store
  }))

/**
 * The store as its users other than retrieval (backups, the command line) see it: every call through the same guard
 * as retrieval's (the embedded store is not guarded).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerGuarded = Resilient.layerGuardedVectorStore
