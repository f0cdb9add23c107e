/**
 * @since 0.1.0
 */
export * as RateLimiter from "./RateLimiter.js"
/**
 * @since 0.1.0
 */
export * as RateLimiterStore from "./RateLimiterStore.js"
/**
 * @since 0.1.0
 */
export * as RateLimiterMemory from "./RateLimiter/Memory.js"
/**
 * @since 0.1.0
 */
export * as RateLimiterHttp from "./RateLimiterHttp.js"
/**
 * @since 0.1.0
 */
export * as ConcurrencyLimiter from "./ConcurrencyLimiter.js"
/**
 * @since 0.1.0
 */
export * as ConcurrencyLimiterHttp from "./ConcurrencyLimiterHttp.js"
/**
 * @since 0.1.0
 */
export * as LoadShedder from "./LoadShedder.js"
/**
 * @since 0.1.0
 */
export * as LoadShedderHttp from "./LoadShedderHttp.js"
/**
 * @since 0.1.0
 */
export * as CompressionHttp from "./CompressionHttp.js"
