/**
 * @since 0.1.0
 */
export * as CircuitBreaker from "./CircuitBreaker.js"
/**
 * @since 0.1.0
 */
export * as CircuitBreakerHttp from "./CircuitBreakerHttp.js"
/**
 * @since 0.1.0
 */
export * as CircuitBreakerPersistence from "./CircuitBreaker/Persistence.js"
/**
 * @since 0.1.0
 */
export * as CircuitBreakerRedis from "./CircuitBreaker/RedisLazy.js"
/**
 * @since 0.1.0
 */
export * as CircuitBreakerStore from "./CircuitBreakerStore.js"
/**
 * @since 0.1.0
 */
export * as Resilience from "./Resilience.js"
