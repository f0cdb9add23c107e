/**
 * @since 0.1.0
 */
export * as Database from "./Database.js"
/**
 * @since 0.1.0
 */
export * as Early from "./Early.js"
/**
 * @since 0.1.0
 */
export * as Migrations from "./Migrations.js"
