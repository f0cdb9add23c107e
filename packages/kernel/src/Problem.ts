/**
 * RFC 9457 problem details: the one shape of every HTTP error Ouroboros returns.
 *
 * Errors are `Schema.TaggedError`s with a `detail` and an HTTP status annotation. The `ProblemHttp` middleware turns
 * whatever error body a handler, a decoder or the router produces into `application/problem+json` with `type`,
 * `title`, `status`, `detail` and the request's `correlationId`, keeping the error's own fields as extension members.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * The media type of problem details.
 *
 * @since 0.1.0
 * @category constants
 */
export const contentType = "application/problem+json"

/**
 * The members RFC 9457 defines, plus `correlationId`. Extension members are allowed.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ProblemDetails = Schema.StructWithRest(
  Schema.Struct({
    type: Schema.String,
    title: Schema.String,
    status: Schema.Int,
    detail: Schema.optionalKey(Schema.String),
    instance: Schema.optionalKey(Schema.String),
    correlationId: Schema.optionalKey(Schema.String)
  }),
  [Schema.Record(Schema.String, Schema.Unknown)]
).annotate({ identifier: "ProblemDetails" })

/**
 * @since 0.1.0
 * @category models
 */
export type ProblemDetails = typeof ProblemDetails.Type

/**
 * 400: the request is malformed (body, header, query or path).
 *
 * @since 0.1.0
 * @category errors
 */
export class BadRequest extends Schema.TaggedError<BadRequest>()(
  "BadRequest",
  { detail: Schema.String },
  { httpApiStatus: 400, description: "The request is malformed" }
) {}

/**
 * 401: credentials are missing or invalid.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()(
  "Unauthorized",
  { detail: Schema.String },
  { httpApiStatus: 401, description: "Credentials are missing or invalid" }
) {}

/**
 * 403: the caller is known but may not do this.
 *
 * @since 0.1.0
 * @category errors
 */
export class Forbidden extends Schema.TaggedError<Forbidden>()(
  "Forbidden",
  { detail: Schema.String },
  { httpApiStatus: 403, description: "The caller may not do this" }
) {}

/**
 * 404: no such resource for this caller (another tenant's resource is a 404 too, never a 403).
 *
 * @since 0.1.0
 * @category errors
 */
export class NotFound extends Schema.TaggedError<NotFound>()(
  "NotFound",
  { detail: Schema.String },
  { httpApiStatus: 404, description: "No such resource" }
) {}

/**
 * 409: the request conflicts with the current state (a stale expected version, say).
 *
 * @since 0.1.0
 * @category errors
 */
export class Conflict extends Schema.TaggedError<Conflict>()(
  "Conflict",
  { detail: Schema.String },
  { httpApiStatus: 409, description: "The request conflicts with the current state" }
) {}

/**
 * 413: the body is larger than the configured maximum.
 *
 * @since 0.1.0
 * @category errors
 */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()(
  "PayloadTooLarge",
  { detail: Schema.String, maxBytes: Schema.optional(Schema.Number) },
  { httpApiStatus: 413, description: "The body is too large" }
) {}

/**
 * 422: the request is well-formed but cannot be processed as asked.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnprocessableEntity extends Schema.TaggedError<UnprocessableEntity>()(
  "UnprocessableEntity",
  { detail: Schema.String },
  { httpApiStatus: 422, description: "The request cannot be processed as asked" }
) {}

/**
 * 429: a rate limit is exhausted. `retryAfter` (seconds) becomes the `Retry-After` header.
 *
 * @since 0.1.0
 * @category errors
 */
export class TooManyRequests extends Schema.TaggedError<TooManyRequests>()(
  "TooManyRequests",
  { detail: Schema.String, retryAfter: Schema.Number },
  { httpApiStatus: 429, description: "A rate limit is exhausted" }
) {}

/**
 * 503: a dependency is unavailable or the service is draining. `retryAfter` (seconds), when known, becomes the
 * `Retry-After` header.
 *
 * @since 0.1.0
 * @category errors
 */
export class ServiceUnavailable extends Schema.TaggedError<ServiceUnavailable>()(
  "ServiceUnavailable",
  { detail: Schema.String, retryAfter: Schema.optional(Schema.Number) },
  { httpApiStatus: 503, description: "A dependency is unavailable" }
) {}

/**
 * Every HTTP error of the kernel.
 *
 * @since 0.1.0
 * @category errors
 */
export type HttpError =
  | BadRequest
  | Unauthorized
  | Forbidden
  | NotFound
  | Conflict
  | PayloadTooLarge
  | UnprocessableEntity
  | TooManyRequests
  | ServiceUnavailable

const reasons: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  408: "Request Timeout",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout"
}

/**
 * The reason phrase of an HTTP status, the `title` of an `about:blank` problem.
 *
 * @since 0.1.0
 * @category utils
 */
export const title = (status: number): string => reasons[status] ?? (status >= 500 ? "Server Error" : "Client Error")

/**
 * Builds problem details from an error body of any shape: standard members are kept when present and filled in
 * when not, `message` becomes `detail` when there is none, other members stay as extensions.
 *
 * @since 0.1.0
 * @category constructors
 */
export const normalize = (
  status: number,
  body: unknown,
  correlationId: string | undefined
): ProblemDetails => {
  const record: Record<string, unknown> = typeof body === "object" && body !== null && !Array.isArray(body)
    ? { ...(body as Record<string, unknown>) }
    : {}
  const detail = typeof record.detail === "string"
    ? record.detail
    : typeof record.message === "string" && record.message.length > 0
    ? record.message
    : undefined
  if (status >= 500 && record._tag === undefined) {
    // A defect or an unknown failure: say nothing about its insides.
    return {
      type: "about:blank",
      title: title(status),
      status,
      detail: "The server could not complete the request",
      ...(correlationId !== undefined ? { correlationId } : {})
    }
  }
  const { message: _message, ...rest } = record
  return {
    ...rest,
    type: typeof record.type === "string" ? record.type : "about:blank",
    title: typeof record.title === "string" ? record.title : title(status),
    status,
    ...(detail !== undefined ? { detail } : {}),
    ...(correlationId !== undefined ? { correlationId } : {})
  }
}
