/**
 * The vector store of the server: the embedded store under DATA_DIR, or Qdrant when `QDRANT_URL` is set, its calls
 * guarded by the `qdrant` breaker pipeline. Outgoing Qdrant calls carry the request's `X-Correlation-ID` and W3C
 * trace context.
 *
 * @since 0.1.0
 */
import { Correlation } from "@ouroboros/correlation"
import { Resilient } from "@ouroboros/retrieval"
import { Embedded, Qdrant } from "@ouroboros/vector-store"
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
 * The store, and retrieval's vector store guard when it is Qdrant. Retrieval guards its own calls; the store's other
 * users take {@link layerGuarded}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (directory: string) =>
  Layer.unwrap(Effect.map(config, ({ apiKey, url }) =>
    Option.match(url, {
      onNone: () => Embedded.layer({ directory }),
      onSome: (url) =>
        Layer.merge(
          Qdrant.layer({
            url: url.toString().replace(/\/$/, ""),
            apiKey: Option.getOrUndefined(apiKey),
            headers: Correlation.outgoingHeaders
          }),
          Breakers.layerQdrantGuard
        )
    })))

/**
 * The store as its users other than retrieval (backups, the command line) see it: every call through the same guard
 * as retrieval's (the embedded store is not guarded).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerGuarded = Resilient.layerGuardedVectorStore
