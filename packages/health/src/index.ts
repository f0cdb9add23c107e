/**
 * @since 0.1.0
 */
export * as HealthCheck from "./HealthCheck.js"

/**
 * @since 0.1.0
 */
export * as HealthCheckHttp from "./HealthCheck/Http.js"

/**
 * @since 0.1.0
 */
export * as HealthCheckOllama from "./HealthCheck/Ollama.js"

/**
 * @since 0.1.0
 */
export * as HealthCheckPostgres from "./HealthCheck/Postgres.js"

/**
 * @since 0.1.0
 */
export * as HealthCheckQdrant from "./HealthCheck/Qdrant.js"

/**
 * @since 0.1.0
 */
export * as HealthHttp from "./HealthHttp.js"
