/**
 * @since 0.1.0
 */
export * as InFlight from "./InFlight.js"
/**
 * @since 0.1.0
 */
export * as Jobs from "./Jobs.js"
/**
 * @since 0.1.0
 */
export * as Shutdown from "./Shutdown.js"
/**
 * @since 0.1.0
 */
export * as ShutdownHttp from "./ShutdownHttp.js"
