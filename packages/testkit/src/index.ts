/**
 * @since 0.1.0
 */
export * as Services from "./Services.js"
