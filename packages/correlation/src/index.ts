/**
 * @since 0.1.0
 */
export * as Correlation from "./Correlation.js"
/**
 * @since 0.1.0
 */
export * as CorrelationHttp from "./CorrelationHttp.js"
/**
 * @since 0.1.0
 */
export * as Logging from "./Logging.js"
/**
 * @since 0.1.0
 */
export * as Tracing from "./Tracing.js"
