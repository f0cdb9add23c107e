/**
 * The HTTP side of problem details: a middleware that makes every error response RFC 9457 problem+json.
 *
 * @since 0.1.0
 */
import type { HttpApp } from "@effect/platform"
import { HttpApiSchema, HttpIncomingMessage, HttpServerError, HttpServerResponse } from "@effect/platform"
import { Cause, Effect, Option, Schema } from "effect"
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
  const contentType = response.body.contentType ?? response.headers["content-type"] ?? ""
  if (contentType.startsWith(Problem.contentType)) return withCorrelationId(response, correlationId)
  // Only JSON error bodies and empty ones are rewritten: other media types (health+json) are final.
  if (contentType !== "" && !contentType.startsWith("application/json")) return response
  const problem = Problem.normalize(response.status, readBody(response), correlationId)
  const headers = headersWithoutBody(response)
  if (headers["retry-after"] === undefined && typeof problem.retryAfter === "number") {
    headers["retry-after"] = String(Math.max(0, Math.ceil(problem.retryAfter)))
  }
  return HttpServerResponse.unsafeJson(problem, {
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
  return HttpServerResponse.unsafeJson({ ...body, correlationId }, {
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
  return HttpServerResponse.unsafeJson(body, { status: 413, headers: { connection: "close" } })
}

// The platform's body reader fails with this when a body goes over `HttpIncomingMessage.MaxBodySize` (a chunked body:
// a declared length over the limit is refused before reading). It is a `RequestError` like any unreadable body, whose
// answer is a 400; the message (@effect/platform-node-shared's stream reader) is what tells the two apart.
const isBodyOverLimit = (u: unknown): boolean =>
  HttpServerError.isServerError(u) && u._tag === "RequestError" && u.reason === "Decode" &&
  u.cause instanceof Error && u.cause.message === "maxBytes exceeded"

// HttpApi reads payloads with `orDie`, so the reader's failure arrives as a defect there, as a failure elsewhere.
const bodyOverLimit = (cause: Cause.Cause<unknown>): boolean =>
  Option.isSome(Cause.find(cause, (reason) =>
    (reason._tag === "Fail" && isBodyOverLimit(reason.error)) ||
      (reason._tag === "Die" && isBodyOverLimit(reason.defect))
      ? Option.some(reason)
      : Option.none()))

// The limit the reader applied: the same `MaxBodySize` of the request's fiber.
const bodyTooLarge = Effect.map(
  HttpIncomingMessage.MaxBodySize,
  (maxBodySize) => payloadTooLarge(Option.getOrUndefined(Option.map(maxBodySize, Number)))
)

/**
 * Makes every error response of the wrapped app a problem+json document, including router 404s, decode errors, a body
 * over `HttpIncomingMessage.MaxBodySize` (413, see {@link payloadTooLarge}) and defects (a 500 that names nothing of
 * its cause).
 *
 * @since 0.1.0
 * @category middleware
 */
export const middleware = <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<never, R> =>
  Effect.flatMap(
    Effect.catchAllCause(app, (cause) =>
      bodyOverLimit(cause) ? bodyTooLarge : Option.match(Cause.failureOption(cause), {
        onSome: (error) => Effect.orElse(encodeError(error), () => fromCause(cause)),
        onNone: () => fromCause(cause)
      })),
    (response) =>
      response.status < 400
        ? Effect.succeed(response)
        : Effect.map(currentCorrelationId, (id) => toProblem(response, Option.getOrUndefined(id)))
  )

// A typed error of the api (a Schema class with an HTTP status, such as HttpApiDecodeError) that reached the
// middleware before the api encoded it: encode it the same way.
const encodeError = (error: unknown): Effect.Effect<HttpServerResponse.HttpServerResponse, void> => {
  const schema = typeof error === "object" && error !== null ? error.constructor : undefined
  if (schema === undefined || !Schema.isSchema(schema)) return Effect.fail(undefined)
  const status = HttpApiSchema.getStatusError(schema)
  return Schema.encodeUnknown(schema as unknown as Schema.Schema<unknown, unknown>)(error).pipe(
    Effect.map((body) => HttpServerResponse.unsafeJson(body, { status })),
    Effect.mapError(() => undefined)
  )
}

const fromCause = <E>(cause: Cause.Cause<E>) =>
  Effect.tap(
    Effect.map(HttpServerError.causeResponse(cause), ([response]) => response),
    (response) =>
      response.status >= 500 && !Cause.isInterruptedOnly(cause)
        ? Effect.logError("Unhandled failure while serving a request", cause)
        : Effect.void
  )
