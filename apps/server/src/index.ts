/**
 * @since 0.1.0
 */
export * as Api from "./Api.js"
/**
 * @since 0.1.0
 */
export * as Server from "./Server.js"
/**
 * @since 0.1.0
 */
export * as Testing from "./Testing.js"
