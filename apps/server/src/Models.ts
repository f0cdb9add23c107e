/**
 * The models of the server: Ollama when `OLLAMA_URL` is set, its calls guarded by the `ollama` breaker pipeline;
 * else the local embedder and extractive answerer, called directly. Outgoing calls carry the request's
 * `X-Correlation-ID` and W3C trace context.
 *
 * @since 0.1.0
 */
import { Correlation } from "@ouroboros/correlation"
import { LlmConfig } from "@ouroboros/llm"
import { Effect, Layer, Option } from "effect"
import * as Breakers from "./Breakers.js"

/**
 * `Llm` and `Embedder`, and retrieval's model guard when the models are remote (the configured URL decides, not the
 * models' ids).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = Layer.unwrap(
  Effect.map(LlmConfig.config, (settings) => {
    const models = LlmConfig.layerFrom(settings, { headers: Correlation.outgoingHeaders })
    return Option.isSome(settings.url) ? Layer.merge(models, Breakers.layerOllamaGuard) : models
  })
)
