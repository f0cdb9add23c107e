/**
 * @since 0.1.0
 */
export * as EvaluationContext from "./EvaluationContext.js"
/**
 * @since 0.1.0
 */
export * as FeatureFlags from "./FeatureFlags.js"
/**
 * @since 0.1.0
 */
export * as FlagAudit from "./FlagAudit.js"
/**
 * @since 0.1.0
 */
export * as FlagDefinition from "./FlagDefinition.js"
/**
 * @since 0.1.0
 */
export * as FlagProvider from "./FlagProvider.js"
/**
 * @since 0.1.0
 */
export * as FlagProviderFile from "./FlagProvider/File.js"
/**
 * @since 0.1.0
 */
export * as FlagProviderSql from "./FlagProvider/Sql.js"
/**
 * @since 0.1.0
 */
export * as FeatureFlagsHttp from "./FeatureFlagsHttp.js"
