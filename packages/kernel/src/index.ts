/**
 * @since 0.1.0
 */
export * as Connection from "./Connection.js"
/**
 * @since 0.1.0
 */
export * as HttpGroup from "./HttpGroup.js"
/**
 * @since 0.1.0
 */
export * as Issues from "./Issues.js"
/**
 * @since 0.1.0
 */
export * as JsonDepth from "./JsonDepth.js"
/**
 * @since 0.1.0
 */
export * as Principal from "./Principal.js"
/**
 * @since 0.1.0
 */
export * as Problem from "./Problem.js"
/**
 * @since 0.1.0
 */
export * as ProblemHttp from "./ProblemHttp.js"
/**
 * @since 0.1.0
 */
export * as ProblemOpenApi from "./ProblemOpenApi.js"
/**
 * @since 0.1.0
 */
export * as RequestContext from "./RequestContext.js"
/**
 * @since 0.1.0
 */
export * as ResponseHeaders from "./ResponseHeaders.js"
/**
 * @since 0.1.0
 */
export * as TenantId from "./TenantId.js"
