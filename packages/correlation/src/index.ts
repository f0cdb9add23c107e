/**
 * @since 0.1.0
 */
export * as AccessLog from "./AccessLog.js"
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
export * as HttpMetrics from "./HttpMetrics.js"
/**
 * @since 0.1.0
 */
export * as Logging from "./Logging.js"
/**
 * @since 0.1.0
 */
export * as Prometheus from "./Prometheus.js"
/**
 * @since 0.1.0
 */
export * as RouteTable from "./RouteTable.js"
/**
 * @since 0.1.0
 */
export * as Tracing from "./Tracing.js"
