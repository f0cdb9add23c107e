/**
 * Header fields that middlewares put on the response of a request, whatever makes that response: a handler, an error
 * turned into a problem, the router's 404, or the server's own error handling. A field the response carries itself
 * is kept.
 *
 * A middleware given to `HttpServer.serve` (or `HttpApiBuilder.serve`) runs outside the platform's response handling:
 * the response is sent before the middleware's effect returns, so it cannot map the response. The platform's hook
 * before sending is a pre-response handler, kept in a FiberRef, and that costs more than it seems. Appending one is a
 * FiberRef write, which copies the fiber's map of FiberRefs. Worse, a request fiber of a minimal HttpApi server holds
 * four FiberRefs, the size at which V8's Map is full: a fifth makes every later FiberRef write of the request (the
 * platform makes several) copy into a table twice as large. Measured in the rate-limit benchmark (a sampling heap
 * profile): the limiter added 8 KB of allocation per request this way, 2.5 KB with the fields below; its requests per
 * second did not measurably change.
 *
 * So on Node (`@effect/platform-node`), a field goes straight onto Node's `ServerResponse` with `setHeader`, and
 * Node's `writeHead` merges it with the fields of the platform's response (those win: a field the response carries
 * itself is kept). Elsewhere (a web handler, a test request) the fields ride on the request and one pre-response
 * handler, appended by the request's first field, adds them.
 *
 * @since 0.1.0
 */
import { HttpApp, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { Context, Effect, FiberRef, Option } from "effect"
import type * as Http from "node:http"

/**
 * Where a request's fields are kept when they cannot go to a Node response: on its underlying request object
 * (`request.source`, which `request.modify` keeps), as name, value, name, value.
 */
const fieldsKey = Symbol.for("@ouroboros/kernel/ResponseHeaders/fields")

type Carrier = { [fieldsKey]?: Array<string> }

/**
 * The pre-response handler of the requests that are not served by Node: sets the request's fields that the response
 * does not carry itself, later ones over earlier ones of the same name.
 *
 * @since 0.1.0
 * @category handlers
 */
export const handler: HttpApp.PreResponseHandler = (request, response) => {
  const fields = (request.source as Carrier)[fieldsKey]
  if (fields === undefined) return Effect.succeed(response)
  // `setHeader` per field, not one `setHeaders`: `Headers.setAll` re-normalizes the whole header object and costs
  // several times as much for the one or two fields a middleware adds.
  let out = response
  for (let i = 0; i < fields.length; i += 2) {
    if (response.headers[fields[i]!] === undefined) out = HttpServerResponse.setHeader(out, fields[i]!, fields[i + 1]!)
  }
  return Effect.succeed(out)
}

const append = Option.match({
  onNone: () => Option.some(handler),
  onSome: (previous: HttpApp.PreResponseHandler) =>
    Option.some<HttpApp.PreResponseHandler>((request, response) =>
      Effect.flatMap(previous(request, response), (response) => handler(request, response))
    )
})

/**
 * Appends {@link handler} to the running request's fiber: what the fiber runs when {@link unsafeSet} returns `true`.
 *
 * @since 0.1.0
 * @category unsafe
 */
export const ensureHandler: Effect.Effect<void> = FiberRef.update(HttpApp.currentPreResponseHandlers, append)

/** Node's response of a request served by `@effect/platform-node`, if it is one. */
const nodeResponse = (request: HttpServerRequest.HttpServerRequest): Http.ServerResponse | undefined => {
  const response: Partial<Http.ServerResponse> | undefined = NodeHttpServerRequest.toServerResponse(request)
  return response !== undefined && typeof response.setHeader === "function"
    ? response as Http.ServerResponse
    : undefined
}

/**
 * Puts a field on the response of `request`, before its response is sent: the form for a middleware's hot path, where
 * the middleware already holds the request. The value must be a valid field value (no control characters).
 *
 * Returns `true` when the request's fiber must still run {@link ensureHandler} before the response is made: the request
 * is not served by Node, and this is its first field. Use {@link set} where a request's allocations do not matter.
 *
 * @since 0.1.0
 * @category unsafe
 */
export const unsafeSet = (
  request: HttpServerRequest.HttpServerRequest,
  name: string,
  value: string
): boolean => {
  const response = nodeResponse(request)
  if (response !== undefined) {
    // Once the headers are out, a field can no longer be added (Node would throw).
    if (!response.headersSent) response.setHeader(name, value)
    return false
  }
  const carrier = request.source as Carrier
  const fields = carrier[fieldsKey]
  // Lower case, as the platform's headers are.
  if (fields !== undefined) {
    fields.push(name.toLowerCase(), value)
    return false
  }
  carrier[fieldsKey] = [name.toLowerCase(), value]
  return true
}

/**
 * Puts a field on the response of the current request, whatever makes that response (errors included).
 *
 * @since 0.1.0
 * @category combinators
 */
export const set = (name: string, value: string): Effect.Effect<void, never, HttpServerRequest.HttpServerRequest> =>
  Effect.withFiberRuntime((fiber) => {
    const request = Context.unsafeGet(fiber.currentContext, HttpServerRequest.HttpServerRequest)
    return unsafeSet(request, name, value) ? ensureHandler : Effect.void
  })
