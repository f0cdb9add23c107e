/**
 * @since 0.1.0
 */
export * as ConsoleHttp from "./ConsoleHttp.js"
