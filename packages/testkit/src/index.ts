/**
 * @since 0.1.0
 */
export * as Faults from "./Faults.js"
/**
 * @since 0.1.0
 */
export * as Json from "./Json.js"
/**
 * @since 0.1.0
 */
export * as ModuleLoads from "./ModuleLoads.js"
/**
 * @since 0.1.0
 */
export * as OllamaStandIn from "./OllamaStandIn.js"
/**
 * @since 0.1.0
 */
export * as PgSchema from "./PgSchema.js"
/**
 * @since 0.1.0
 */
export * as Ports from "./Ports.js"
/**
 * @since 0.1.0
 */
export * as QdrantStandIn from "./QdrantStandIn.js"
/**
 * @since 0.1.0
 */
export * as RawHttp from "./RawHttp.js"
/**
 * @since 0.1.0
 */
export * as ServerProcess from "./ServerProcess.js"
/**
 * @since 0.1.0
 */
export * as Services from "./Services.js"
/**
 * @since 0.1.0
 */
export * as StandIn from "./StandIn.js"
