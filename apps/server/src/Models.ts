/**
 * The models of the server: Ollama when `OLLAMA_URL` is set, else the local embedder and extractive answerer.
 * Outgoing calls carry the request's `X-Correlation-ID` and W3C trace context.
 *
 * @since 0.1.0
 */
import { Correlation } from "@ouroboros/correlation"
import { LlmConfig } from "@ouroboros/llm"
import * as Resilient from "./Resilient.js"

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = Resilient.models(LlmConfig.layerConfig({ headers: Correlation.outgoingHeaders }))
