/**
 * Configuration of the llm package and the layer that picks the implementation: Ollama when `OLLAMA_URL` is set,
 * the local feature-hashing embedder and extractive answerer otherwise.
 *
 * @since 0.1.0
 */
import { Config, Duration, Effect, Layer, Option, Redacted } from "effect"
import type { ConfigError } from "effect/ConfigError"
import * as Embedder from "./Embedder.js"
import * as Llm from "./Llm.js"
import type { LlmError } from "./LlmError.js"
import * as Ollama from "./Ollama.js"

const positiveInt = (name: string) =>
  Config.integer(name).pipe(
    Config.validate({ message: `${name} must be a positive integer`, validation: (n) => n > 0 })
  )

const httpUrl = (name: string) =>
  Config.string(name).pipe(
    Config.validate({
      message: `${name} must be an http(s) URL`,
      validation: (s) => {
        try {
          const url = new URL(s)
          return url.protocol === "http:" || url.protocol === "https:"
        } catch {
          return false
        }
      }
    })
  )

// "60 seconds", "1 minute" or a number of milliseconds.
const duration = (name: string) =>
  Config.duration(name).pipe(Config.orElse(() => Config.map(positiveInt(name), Duration.millis)))

/**
 * The keys (environment names; the server may nest them):
 *
 * - `OLLAMA_URL`: the Ollama server; unset means the local implementations.
 * - `OLLAMA_MODEL` (`llama3.2`), `OLLAMA_EMBED_MODEL` (`nomic-embed-text`).
 * - `OLLAMA_EMBED_DIMENSIONS`: the embedding size; unset means probe it at startup.
 * - `OLLAMA_TIMEOUT` (60 seconds): per response and per streamed chunk; `"30 seconds"` or milliseconds.
 * - `OLLAMA_API_KEY`: sent as `Authorization: Bearer …` (for an Ollama behind an authenticating proxy).
 * - `LOCAL_EMBED_DIMENSIONS` (384): the size of local feature-hashing vectors.
 *
 * @since 0.1.0
 * @category config
 */
export const config = Config.all({
  url: Config.option(httpUrl("OLLAMA_URL")).pipe(
    Config.withDescription("Base URL of the Ollama server; unset to use the local embedder and extractive answerer")
  ),
  model: Config.string("OLLAMA_MODEL").pipe(
    Config.withDefault("llama3.2"),
    Config.withDescription("The Ollama chat model")
  ),
  embedModel: Config.string("OLLAMA_EMBED_MODEL").pipe(
    Config.withDefault("nomic-embed-text"),
    Config.withDescription("The Ollama embedding model")
  ),
  embedDimensions: Config.option(positiveInt("OLLAMA_EMBED_DIMENSIONS")).pipe(
    Config.withDescription("Size of the Ollama embeddings; probed at startup when unset")
  ),
  timeout: duration("OLLAMA_TIMEOUT").pipe(
    Config.withDefault(Duration.seconds(60)),
    Config.withDescription("Longest wait for an Ollama response and for each streamed chunk")
  ),
  apiKey: Config.option(Config.redacted("OLLAMA_API_KEY")).pipe(
    Config.withDescription("Bearer token for an Ollama behind an authenticating proxy")
  ),
  localDimensions: positiveInt("LOCAL_EMBED_DIMENSIONS").pipe(
    Config.withDefault(Embedder.defaultLocalDimensions),
    Config.withDescription("Size of the local feature-hashing embeddings")
  )
})

/**
 * @since 0.1.0
 * @category config
 */
export type LlmConfig = Config.Config.Success<typeof config>

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
export const layerConfig = (extra?: Extra): Layer.Layer<Llm.Llm | Embedder.Embedder, LlmError | ConfigError> =>
  Layer.unwrapEffect(Effect.map(config, (settings) => layerFrom(settings, extra)))
