/**
 * The vector store of the server: the embedded store under DATA_DIR, or Qdrant when `QDRANT_URL` is set. Outgoing
 * Qdrant calls carry the request's `X-Correlation-ID` and W3C trace context.
 *
 * @since 0.1.0
 */
import { Correlation } from "@ouroboros/correlation"
import { Embedded, Qdrant } from "@ouroboros/vector-store"
import { Config, Effect, Layer, Option } from "effect"
import * as Resilient from "./Resilient.js"

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
 * @since 0.1.0
 * @category layers
 */
export const layer = (directory: string) =>
  Layer.unwrap(Effect.map(config, ({ apiKey, url }) =>
    Option.match(url, {
      onNone: () => Embedded.layer({ directory }),
      onSome: (url) =>
        Resilient.vectors(
          Qdrant.layer({
            url: url.toString().replace(/\/$/, ""),
            apiKey: Option.getOrUndefined(apiKey),
            headers: Correlation.outgoingHeaders
          }),
          true
        )
    })))
