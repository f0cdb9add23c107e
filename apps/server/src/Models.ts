/**
 * The models of the server: Ollama when `OLLAMA_URL` is set, else the local embedder and extractive answerer.
 *
 * @since 0.1.0
 */
import { Embedder, Llm } from "@ouroboros/llm"
import { Layer } from "effect"

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = Layer.mergeAll(Embedder.layerLocal(), Llm.layerLocal)
