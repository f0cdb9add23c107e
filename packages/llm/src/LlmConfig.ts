/**
 * Configuration of the llm package and the layer that picks the implementation: Ollama when `OLLAMA_URL` is set,
 * the local feature-hashing embedder and extractive answerer otherwise.
 *
 * @since 0.1.0
 */
import { Config, Duration, Effect, Layer, Option, Redacted, Schema } from "effect"
import * as Embedder from "./Embedder.js"
import * as Llm from "./Llm.js"
import type { LlmError } from "./LlmError.js"
import * as Ollama from "./Ollama.js"

const positiveInt = (name: string) =>
  Config.schema(Schema.Int.check(Schema.isGreaterThan(0, { message: `${name} must be a positive integer` })), name)

const isHttpUrl = (s: string): boolean => {
  try {
    const url = new URL(s)
    return url.protocol === "http:" || url.protocol === "https:"
  } catch {
    return false
  }
}

const httpUrl = (name: string) =>
  Config.schema(Schema.String.check(Schema.makeFilter(isHttpUrl, { message: `${name} must be an http(s) URL` })), name)

// "60 seconds", "1 minute" or a number of milliseconds.
const duration = (name: string) =>
  Config.Duration(name).pipe(Config.orElse(() => Config.map(positiveInt(name), Duration.millis)))

/**
 * The keys (environment names; the server may nest them):
 *
 * - `OLLAMA_URL`: base URL of the Ollama server; unset means the local embedder and extractive answerer.
 * - `OLLAMA_MODEL` (`llama3.2`): the Ollama chat model.
 * - `OLLAMA_EMBED_MODEL` (`nomic-embed-text`): the Ollama embedding model.
 * - `OLLAMA_EMBED_DIMENSIONS`: size of the Ollama embeddings; unset means probe it at startup.
 * - `OLLAMA_TIMEOUT` (60 seconds): longest wait for an Ollama response and for each streamed chunk; `"30 seconds"`
 *   or milliseconds.
 * - `OLLAMA_API_KEY`: bearer token for an Ollama behind an authenticating proxy, sent as `Authorization: Bearer …`
 *   (redacted).
 * - `LOCAL_EMBED_DIMENSIONS` (384): size of the local feature-hashing embeddings.
 *
 * @since 0.1.0
 * @category config
 */
export const config = Config.all({
  url: Config.option(httpUrl("OLLAMA_URL")),
  model: Config.String("OLLAMA_MODEL").pipe(Config.withDefault("llama3.2")),
  embedModel: Config.String("OLLAMA_EMBED_MODEL").pipe(Config.withDefault("nomic-embed-text")),
  embedDimensions: Config.option(positiveInt("OLLAMA_EMBED_DIMENSIONS")),
  timeout: duration("OLLAMA_TIMEOUT").pipe(Config.withDefault(Duration.seconds(60))),
  apiKey: Config.option(Config.Redacted("OLLAMA_API_KEY")),
  localDimensions: positiveInt("LOCAL_EMBED_DIMENSIONS").pipe(Config.withDefault(Embedder.defaultLocalDimensions))
})

/**
 * @since 0.1.0
 * @category config
 */
export type LlmConfig = Config.Success<typeof config>

/**
 * @since 0.1.0
 * @category models
 */
export interface Extra {
  /** Per-call headers for Ollama (correlation id propagation), merged over the `Authorization` header. */
  readonly headers?: Effect.Effect<Record<string, string>> | undefined
}

/**
 * The local `Llm` and `Embedder` (also the fallbacks when Ollama is down).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLocal = (options?: Embedder.LocalOptions): Layer.Layer<Llm.Llm | Embedder.Embedder> =>
  Layer.merge(Llm.layerLocal, Embedder.layerLocal(options))

/**
 * The Ollama options a configuration describes, or none when `OLLAMA_URL` is unset.
 *
 * @since 0.1.0
 * @category utils
 */
export const ollamaOptions = (settings: LlmConfig, extra?: Extra): Option.Option<Ollama.Options> =>
  Option.map(settings.url, (url) => {
    const auth: Record<string, string> = Option.match(settings.apiKey, {
      onNone: () => ({}),
      onSome: (key) => ({ authorization: `Bearer ${Redacted.value(key)}` })
    })
    const headers = extra?.headers === undefined
      ? Effect.succeed(auth)
      : Effect.map(extra.headers, (h) => ({ ...auth, ...h }))
    return {
      url,
      model: settings.model,
      embedModel: settings.embedModel,
      embedDimensions: Option.getOrUndefined(settings.embedDimensions),
      timeout: settings.timeout,
      headers
    }
  })

/**
 * The implementation a configuration asks for: Ollama when it has a URL, else the local one.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFrom = (settings: LlmConfig, extra?: Extra): Layer.Layer<Llm.Llm | Embedder.Embedder, LlmError> =>
  Option.match(ollamaOptions(settings, extra), {
    onNone: () => layerLocal({ dimensions: settings.localDimensions }),
    onSome: Ollama.layer
  })

/**
 * Reads {@link config} and builds {@link layerFrom}.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { LlmConfig } from "@ouroboros/llm"
 * // OLLAMA_URL unset: local embedder + extractive answerer; set: Ollama
 * const LlmLive = LlmConfig.layerConfig()
 */
export const layerConfig = (
  extra?: Extra
): Layer.Layer<Llm.Llm | Embedder.Embedder, LlmError | Config.ConfigError> =>
  Layer.unwrap(Effect.map(config, (settings) => layerFrom(settings, extra)))
