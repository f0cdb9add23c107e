/**
 * @since 0.1.0
 */
export * as ApiVersion from "./ApiVersion.js"
/**
 * @since 0.1.0
 */
export * as VersionPolicy from "./VersionPolicy.js"
/**
 * @since 0.1.0
 */
export * as VersionAccess from "./VersionAccess.js"
/**
 * @since 0.1.0
 */
export * as VersionChange from "./VersionChange.js"
/**
 * @since 0.1.0
 */
export * as VersionedApi from "./VersionedApi.js"
/**
 * @since 0.1.0
 */
export * as VersionMetrics from "./VersionMetrics.js"
/**
 * @since 0.1.0
 */
export * as VersioningHttp from "./VersioningHttp.js"
