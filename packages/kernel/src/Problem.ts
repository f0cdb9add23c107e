/**
 * RFC 9457 problem details: the one shape of every HTTP error Ouroboros returns.
 *
 * Errors are `Schema.TaggedError`s with a `detail` and an HTTP status annotation. The `ProblemHttp` middleware turns
 * whatever error body a handler, a decoder or the router produces into `application/problem+json` with `type`,
 * `title`, `status`, `detail` and the request's `correlationId`, keeping the error's own fields as extension members.
 *
 * Each problem has a type ({@link types}): in the {@link documentedStyle} its `type` is a documented URI under
 * {@link typeBase} and the internal `_tag` is left out; the {@link legacyStyle} (`about:blank`, `_tag` kept) is what
 * the HTTP contract records today.
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

// -----------------------------------------------------------------------------
// problem types
// -----------------------------------------------------------------------------

/**
 * Where the documented problem types live: the `type` of a problem is this base followed by the type's name
 * (`https://ouroboros.dev/problems/not-found`).
 *
 * Absolute URIs, as RFC 9457 §3.1.1 advises (relative ones are resolved against the request's URL, which differs per
 * deployment and version, and some clients do not resolve them at all): a type is an identifier that stays the same
 * on every server, so clients can switch on it. Clients must not fetch it to handle a problem; a person who opens it
 * finds the type's documentation (the README of `@ouroboros/kernel` lists them). A deployment that serves the
 * documentation itself passes its own base (`ProblemHttp.make({ typeBase })`).
 *
 * @since 0.1.0
 * @category problem types
 */
export const typeBase = "https://ouroboros.dev/problems/"

/**
 * IANA's registered problem type for an exhausted rate limit or quota (HTTP Problem Types registry,
 * `quota-exceeded`): the `type` of the rate limiter's and the tenant quotas' 429s, which name it themselves.
 *
 * @since 0.1.0
 * @category problem types
 */
export const quotaExceededType = "https://iana.org/assignments/http-problem-types#quota-exceeded"

/**
 * A documented problem type: its name (the last segment of its URI), status, title and meaning, the extension
 * members its problems carry, and the `_tag`s of the errors that are problems of this type.
 *
 * @since 0.1.0
 * @category problem types
 */
export interface ProblemType {
  readonly name: string
  readonly status: number
  readonly title: string
  readonly description: string
  /** Extension members beyond `type`, `title`, `status`, `detail`, `instance` and `correlationId`. */
  readonly extensions?: Readonly<Record<string, string>> | undefined
  /** Response header fields that problems of this type carry. */
  readonly headers?: Readonly<Record<string, string>> | undefined
  readonly tags?: ReadonlyArray<string> | undefined
}

/**
 * The problem types of the kernel: one per HTTP status the kernel's errors and `ProblemHttp` produce, plus the
 * request failures `ProblemHttp` answers itself (`request-validation`, `malformed-json`, `json-too-deep`). The error
 * of another package whose `_tag` is not listed here is a problem of the type named by its tag in kebab case
 * (`PipelineSyntaxError` → `pipeline-syntax-error`): see {@link typeName}.
 *
 * @since 0.1.0
 * @category problem types
 */
export const types: ReadonlyArray<ProblemType> = [
  {
    name: "bad-request",
    status: 400,
    title: "Bad Request",
    description: "The request is malformed in a way that no more specific problem type describes; `detail` says how.",
    tags: ["BadRequest"]
  },
  {
    name: "request-validation",
    status: 400,
    title: "Bad Request",
    description: "The request's path parameters, query, headers or body do not match the operation's schema.",
    extensions: {
      issues: "Up to 20 issues, each `{ path, message }`: the keys and indexes from the root of the invalid part " +
        "and what was expected there (a quoted value is cut at 100 characters and followed by its length).",
      issuesOmitted: "How many further issues were found and not listed."
    },
    tags: ["HttpApiDecodeError"]
  },
  {
    name: "malformed-json",
    status: 400,
    title: "Bad Request",
    description: "The body is declared as JSON and is not valid JSON.",
    tags: ["MalformedJson"]
  },
  {
    name: "json-too-deep",
    status: 400,
    title: "Bad Request",
    description: "The JSON body nests arrays and objects deeper than the server accepts.",
    extensions: { maxDepth: "The deepest nesting accepted." },
    tags: ["JsonTooDeep"]
  },
  {
    name: "unauthorized",
    status: 401,
    title: "Unauthorized",
    description: "Credentials are missing or invalid.",
    headers: { "WWW-Authenticate": "The schemes the server accepts." },
    tags: ["Unauthorized"]
  },
  {
    name: "forbidden",
    status: 403,
    title: "Forbidden",
    description: "The caller is known and may not do this.",
    tags: ["Forbidden"]
  },
  {
    name: "not-found",
    status: 404,
    title: "Not Found",
    description: "No such resource for this caller, or no route for the path (another tenant's resource is a 404 " +
      "too, never a 403).",
    tags: ["NotFound"]
  },
  {
    name: "method-not-allowed",
    status: 405,
    title: "Method Not Allowed",
    description: "The path exists and does not accept this method.",
    extensions: { allow: "The methods the path accepts." },
    headers: { Allow: "The methods the path accepts." },
    tags: ["MethodNotAllowed"]
  },
  {
    name: "conflict",
    status: 409,
    title: "Conflict",
    description: "The request conflicts with the current state of the resource (a stale expected version, say).",
    tags: ["Conflict"]
  },
  {
    name: "payload-too-large",
    status: 413,
    title: "Content Too Large",
    description: "The body is larger than the server accepts; the connection is closed.",
    extensions: { maxBytes: "The largest body accepted, in bytes." },
    tags: ["PayloadTooLarge"]
  },
  {
    name: "unsupported-media-type",
    status: 415,
    title: "Unsupported Media Type",
    description: "The body's media type is not one the operation accepts.",
    tags: ["UnsupportedMediaType"]
  },
  {
    name: "unprocessable-entity",
    status: 422,
    title: "Unprocessable Content",
    description: "The request is well-formed and cannot be processed as asked.",
    tags: ["UnprocessableEntity"]
  },
  {
    name: "too-many-requests",
    status: 429,
    title: "Too Many Requests",
    description: "A rate limit or quota is exhausted.",
    extensions: { retryAfter: "Seconds until a retry can succeed (also the `Retry-After` header)." },
    headers: { "Retry-After": "Seconds until a retry can succeed." },
    tags: ["TooManyRequests"]
  },
  {
    name: "internal-error",
    status: 500,
    title: "Internal Server Error",
    description: "The server could not complete the request; the problem says nothing of the cause (the " +
      "`correlationId` finds it in the server's logs)."
  },
  {
    name: "service-unavailable",
    status: 503,
    title: "Service Unavailable",
    description: "A dependency is unavailable, the server is overloaded, or it is shutting down.",
    extensions: { retryAfter: "Seconds until a retry can succeed, when known (also the `Retry-After` header)." },
    headers: { "Retry-After": "Seconds until a retry can succeed, when known." },
    tags: ["ServiceUnavailable"]
  },
  {
    name: "gateway-timeout",
    status: 504,
    title: "Gateway Timeout",
    description: "A dependency did not answer in time.",
    tags: ["Timeout"]
  }
]

const byTag = new Map(types.flatMap((type) => (type.tags ?? []).map((tag) => [tag, type.name] as const)))
// The type of a problem with no tag: the kernel's type of its status (a router 404 is a not-found).
const byStatus = new Map<number, string>(
  [[400, "bad-request"], ...types.filter((t) => t.status !== 400).map((t) => [t.status, t.name] as const)]
)

const kebab = (tag: string): string =>
  tag.replace(/([a-z0-9])([A-Z])/g, "$1-$2").replace(/([A-Z]+)([A-Z][a-z])/g, "$1-$2").toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "")

/**
 * The name of the problem type of an error body: the kernel's type for its `_tag` ({@link types}), else its `_tag` in
 * kebab case, else the kernel's type of its status; `undefined` when none applies (the problem is `about:blank`).
 *
 * @since 0.1.0
 * @category problem types
 */
export const typeName = (tag: string | undefined, status: number): string | undefined => {
  if (tag !== undefined && tag.length > 0) {
    const known = byTag.get(tag)
    if (known !== undefined) return known
    const derived = kebab(tag)
    if (derived.length > 0) return derived
  }
  return byStatus.get(status)
}

/**
 * How problem bodies are written.
 *
 * - `tags`: `"keep"` leaves the error's `_tag` in the body as an extension member (what the HTTP contract records
 *   today); `"omit"` removes it (an internal name that clients should not depend on).
 * - `types`: `"blank"` writes `about:blank` unless the body names a type itself (today); `"documented"` writes the
 *   documented type URI ({@link typeName}, under `typeBase`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Style {
  readonly tags: "keep" | "omit"
  readonly types: "blank" | "documented"
  readonly typeBase: string
}

/**
 * Today's bodies: `_tag` kept, `about:blank` types.
 *
 * @since 0.1.0
 * @category constants
 */
export const legacyStyle: Style = { tags: "keep", types: "blank", typeBase }

/**
 * RFC 9457 as clients expect it: no `_tag`, a documented type URI on every problem.
 *
 * @since 0.1.0
 * @category constants
 */
export const documentedStyle: Style = { tags: "omit", types: "documented", typeBase }

/**
 * The `type` of a problem: the body's own when it names one, else the documented URI (in the `"documented"` style)
 * or `about:blank`.
 *
 * @since 0.1.0
 * @category problem types
 */
export const typeOf = (record: Readonly<Record<string, unknown>>, status: number, style: Style): string => {
  if (typeof record.type === "string" && record.type !== "about:blank") return record.type
  if (style.types === "blank") return "about:blank"
  const name = typeName(typeof record._tag === "string" ? record._tag : undefined, status)
  return name === undefined ? "about:blank" : style.typeBase + name
}

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
): ProblemDetails => normalizeWith(status, body, correlationId, legacyStyle)

/**
 * {@link normalize} in a {@link Style}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const normalizeWith = (
  status: number,
  body: unknown,
  correlationId: string | undefined,
  style: Style
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
      type: typeOf({}, status, style),
      title: title(status),
      status,
      detail: "The server could not complete the request",
      ...(correlationId !== undefined ? { correlationId } : {})
    }
  }
  const { message: _message, ...rest } = record
  if (style.tags === "omit") delete rest._tag
  return {
    ...rest,
    type: typeOf(record, status, style),
    title: typeof record.title === "string" ? record.title : title(status),
    status,
    ...(detail !== undefined ? { detail } : {}),
    ...(correlationId !== undefined ? { correlationId } : {})
  }
}

const tagByName = new Map(
  types.flatMap((
    type
  ) => (type.tags !== undefined && type.tags.length > 0 ? [[type.name, type.tags[0]!] as const] : []))
)

const pascal = (name: string): string =>
  name.split("-").filter((part) => part.length > 0).map((part) => part[0]!.toUpperCase() + part.slice(1)).join("")

/**
 * The `_tag` of the error a problem body stands for, from its `type` — the inverse of {@link typeName}, for clients
 * of a server that writes bodies in the {@link documentedStyle} (no `_tag`): a documented type's first tag, else the
 * type's name in Pascal case (`pipeline-syntax-error` → `PipelineSyntaxError`), else the kernel's type of its status
 * (`about:blank`, IANA's `quota-exceeded`). `undefined` when none applies.
 *
 * @since 0.1.0
 * @category problem types
 */
export const tagOfType = (type: unknown, status: number, base: string = typeBase): string | undefined => {
  if (typeof type === "string" && type.startsWith(base)) {
    const name = type.slice(base.length)
    return tagByName.get(name) ?? (pascal(name) || undefined)
  }
  const name = byStatus.get(status)
  return name === undefined ? undefined : tagByName.get(name)
}
