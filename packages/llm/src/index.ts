/**
 * @since 0.1.0
 */
export * as Chunker from "./Chunker.js"
/**
 * @since 0.1.0
 */
export * as Embedder from "./Embedder.js"
/**
 * @since 0.1.0
 */
export * as Llm from "./Llm.js"
/**
 * @since 0.1.0
 */
export * as LlmConfig from "./LlmConfig.js"
/**
 * @since 0.1.0
 */
export * as LlmError from "./LlmError.js"
/**
 * @since 0.1.0
 */
export * as Ollama from "./Ollama.js"
/**
 * @since 0.1.0
 */
export * as Prompts from "./Prompts.js"
