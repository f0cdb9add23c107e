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
 * For Effect clients of a server that writes problems in RFC 9457's style (`ProblemHttp.rfc9457`: no `_tag` in the
 * body, a documented `type` URI instead). `HttpApiClient` decodes an error response with the endpoint's error schemas,
 * which are tagged classes: `restoreTags` puts back the `_tag` that the problem's `type` stands for.
 *
 * @since 0.1.0
 */
export * as ProblemClient from "./ProblemClient.js"
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
/**
 * @since 0.1.0
 */
export * as Text from "./Text.js"
