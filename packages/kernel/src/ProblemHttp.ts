/**
 * The HTTP side of problem details: a middleware that makes every error response RFC 9457 problem+json.
 *
 * @since 0.1.0
 */
import { Cause, Effect, Fiber, Layer, Option, Schema, SchemaAST, SchemaIssue } from "effect"
import { HttpIncomingMessage, HttpRouter, HttpServerError, HttpServerResponse } from "effect/http"
import { HttpApiError } from "effect/http-api"
import * as Problem from "./Problem.js"
import { currentCorrelationId } from "./RequestContext.js"

const decoder = new TextDecoder()

// The headers of a response whose body is about to be replaced.
const headersWithoutBody = (response: HttpServerResponse.HttpServerResponse): Record<string, string> => {
  const headers: Record<string, string> = {}
  for (const [key, value] of Object.entries(response.headers)) {
    if (key !== "content-type" && key !== "content-length") headers[key] = value
  }
  return headers
}

const readBody = (response: HttpServerResponse.HttpServerResponse): unknown => {
  if (response.body._tag !== "Uint8Array") return undefined
  try {
    return JSON.parse(decoder.decode(response.body.body))
  } catch {
    return undefined
  }
}

/**
 * Rewrites one response: a success passes untouched; an error becomes problem+json with the correlation id, and a
 * numeric `retryAfter` member becomes a `Retry-After` header when none is set.
 *
 * @since 0.1.0
 * @category utils
 */
export const toProblem = (
  response: HttpServerResponse.HttpServerResponse,
  correlationId: string | undefined
): HttpServerResponse.HttpServerResponse => {
  if (response.status < 400) return response
  if (response.body._tag === "Stream" || response.body._tag === "Raw") return response
  const contentType = (response.body._tag === "Uint8Array" ? response.body.contentType : undefined) ??
    response.headers["content-type"] ?? ""
  if (contentType.startsWith(Problem.contentType)) return withCorrelationId(response, correlationId)
  // Only JSON error bodies and empty ones are rewritten: other media types (health+json) are final.
  if (contentType !== "" && !contentType.startsWith("application/json")) return response
  const problem = Problem.normalize(response.status, readBody(response), correlationId)
  const headers = headersWithoutBody(response)
  if (headers["retry-after"] === undefined && typeof problem.retryAfter === "number") {
    headers["retry-after"] = String(Math.max(0, Math.ceil(problem.retryAfter)))
  }
  return HttpServerResponse.jsonUnsafe(problem, {
    status: response.status,
    headers,
    contentType: Problem.contentType,
    cookies: response.cookies
  })
}

// A problem made elsewhere (a rate limiter, a load shedder) gets the correlation id it lacks.
const withCorrelationId = (
  response: HttpServerResponse.HttpServerResponse,
  correlationId: string | undefined
): HttpServerResponse.HttpServerResponse => {
  const body = readBody(response)
  if (correlationId === undefined || typeof body !== "object" || body === null || "correlationId" in body) {
    return response
  }
  const headers = headersWithoutBody(response)
  return HttpServerResponse.jsonUnsafe({ ...body, correlationId }, {
    status: response.status,
    headers,
    contentType: Problem.contentType,
    cookies: response.cookies
  })
}

/**
 * The answer to a request body over `maxBytes`: a 413 `PayloadTooLarge` (a problem once through {@link middleware})
 * that closes the connection, since the rest of the body is left unread.
 *
 * @since 0.1.0
 * @category constructors
 */
export const payloadTooLarge = (maxBytes: number | undefined): HttpServerResponse.HttpServerResponse => {
  const body: typeof Problem.PayloadTooLarge.Encoded = maxBytes === undefined
    ? { _tag: "PayloadTooLarge", detail: "the body is larger than the server accepts" }
    : { _tag: "PayloadTooLarge", detail: `the body is larger than ${maxBytes} bytes`, maxBytes }
  return HttpServerResponse.jsonUnsafe(body, { status: 413, headers: { connection: "close" } })
}

// The platform's body reader fails with a `RequestParseError` whose reason is `BodyTooLarge` when a body goes over
// `HttpIncomingMessage.MaxBodySize`; HttpApi's own payload limits fail with `HttpApiPayloadTooLarge`.
const isBodyOverLimit = (u: unknown): boolean =>
  (HttpServerError.isHttpServerError(u) && u.reason._tag === "RequestParseError" &&
    u.reason.reason === "BodyTooLarge") || HttpApiError.HttpApiPayloadTooLarge.is(u)

// An error of the request's own params, headers, query or payload (a failure to encode a response is ours: a 500).
const isRequestSchemaError = (u: unknown): u is HttpApiError.HttpApiSchemaError =>
  HttpApiError.HttpApiSchemaError.is(u) && u.kind !== "Body" && u.kind !== "ResponseHeaders"

// HttpApi turns payload-reading and decoding failures into defects, so both failures and defects are inspected.
const findIn = <A>(cause: Cause.Cause<unknown>, f: (u: unknown) => A | undefined): A | undefined => {
  for (const reason of cause.reasons) {
    const found = reason._tag === "Fail" ? f(reason.error) : reason._tag === "Die" ? f(reason.defect) : undefined
    if (found !== undefined) return found
  }
  return undefined
}

// The limit the reader applied: the same `MaxBodySize` of the request's fiber.
const bodyTooLarge = Effect.map(
  Effect.service(HttpIncomingMessage.MaxBodySize),
  (maxBodySize) => payloadTooLarge(maxBodySize === undefined ? undefined : Number(maxBodySize))
)

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

const segment = (key: PropertyKey | { readonly key: PropertyKey }): string | number => {
  const k = typeof key === "object" ? key.key : key
  return typeof k === "number" ? k : String(k)
}

/**
 * The 400 answer to a request whose params, headers, query or payload do not decode: the issues name the path and
 * say what was expected, and `detail` sums them up.
 *
 * @since 0.1.0
 * @category constructors
 */
export const decodeFailure = (error: HttpApiError.HttpApiSchemaError): HttpServerResponse.HttpServerResponse => {
  const issues = formatIssues(error.cause.issue).issues.map((issue) => ({
    path: (issue.path ?? []).map(segment),
    message: issue.message
  }))
  return HttpServerResponse.jsonUnsafe(
    { _tag: "HttpApiDecodeError", detail: error.cause.message, issues },
    { status: 400 }
  )
}

/**
 * Makes every error response of the wrapped app a problem+json document, including router 404s, decode errors, a body
 * over `HttpIncomingMessage.MaxBodySize` (413, see {@link payloadTooLarge}) and defects (a 500 that names nothing of
 * its cause).
 *
 * @since 0.1.0
 * @category middleware
 */
export const middleware = <E, R>(
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, R> =>
  Effect.map(
    Effect.catchCause(app, (cause) => {
      if (findIn(cause, (u) => isBodyOverLimit(u) || undefined)) return bodyTooLarge
      const decode = findIn(cause, (u) => isRequestSchemaError(u) ? u : undefined)
      if (decode !== undefined) return Effect.succeed(decodeFailure(decode))
      return Option.match(Cause.findErrorOption(cause), {
        onSome: (error) => Effect.catch(encodeError(error), () => fromCause(cause)),
        onNone: () => fromCause(cause)
      })
    }),
    rewrite
  )

// A success passes as it is (no effect per request); an error response reads the correlation id of the fiber it
// runs in, the request's.
const rewrite = (response: HttpServerResponse.HttpServerResponse): HttpServerResponse.HttpServerResponse =>
  response.status < 400
    ? response
    : toProblem(response, Option.getOrUndefined(Fiber.getCurrent()!.getRef(currentCorrelationId)))

/**
 * {@link middleware} for every route of the server's router, its 404 for an unknown route included.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<never, never, HttpRouter.HttpRouter> = HttpRouter.middleware(
  // The router's types ask a middleware to pass on the errors it does not know; this one answers every cause.
  (effect: Effect.Effect<HttpServerResponse.HttpServerResponse, any>) =>
    middleware(effect) as Effect.Effect<HttpServerResponse.HttpServerResponse, any>,
  { global: true }
) as Layer.Layer<never, never, HttpRouter.HttpRouter>

// A typed error (a Schema class with an HTTP status) that reached the middleware before an api encoded it: encode it
// the same way.
const encodeError = (error: unknown): Effect.Effect<HttpServerResponse.HttpServerResponse, void> => {
  const schema = typeof error === "object" && error !== null ? error.constructor : undefined
  if (schema === undefined || !Schema.isSchema(schema)) return Effect.fail(undefined)
  const status = SchemaAST.resolveAt<number>("httpApiStatus")(schema.ast) ?? 500
  return Schema.encodeUnknownEffect(schema as Schema.Codec<unknown, unknown>)(error).pipe(
    Effect.map((body) => HttpServerResponse.jsonUnsafe(body, { status })),
    Effect.mapError(() => undefined)
  )
}

const fromCause = <E>(cause: Cause.Cause<E>) =>
  Effect.tap(
    Effect.map(HttpServerError.causeResponse(cause), ([response]) => response),
    (response) =>
      response.status >= 500 && !Cause.hasInterruptsOnly(cause)
        ? Effect.logError("Unhandled failure while serving a request", cause)
        : Effect.void
  )
