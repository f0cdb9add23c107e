/**
 * @since 0.1.0
 */
export * as Pipeline from "./Pipeline.js"
/**
 * @since 0.1.0
 */
export * as PipelinesHttp from "./PipelinesHttp.js"
/**
 * @since 0.1.0
 */
export * as PipelineSyntax from "./PipelineSyntax.js"
/**
 * @since 0.1.0
 */
export * as ProjectorLease from "./ProjectorLease.js"
/**
 * @since 0.1.0
 */
export * as Resilient from "./Resilient.js"
/**
 * @since 0.1.0
 */
export * as Retrieval from "./Retrieval.js"
/**
 * @since 0.1.0
 */
export * as RetrievalError from "./RetrievalError.js"
/**
 * @since 0.1.0
 */
export * as RetrievalHttp from "./RetrievalHttp.js"
