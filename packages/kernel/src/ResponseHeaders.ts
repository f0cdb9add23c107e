/**
 * Header fields that middlewares put on the response of a request, whatever makes that response: a handler, an error
 * turned into a problem, the router's 404, or the server's own error handling. A field the response carries itself
 * is kept.
 *
 * A middleware given to `HttpRouter.serve` runs outside the platform's response handling: the response is sent
 * before the middleware's effect returns, so it cannot map the response. The platform's hook before sending is a
 * pre-response handler (`HttpEffect.appendPreResponseHandler`), which Effect 4 keeps in the request's own state: adding
 * one costs a closure, not a copy of the fiber's context. A request's fields are kept in one array on the request and
 * applied by one pre-response handler, appended by the request's first field, so each further field costs a push.
 *
 * @since 0.1.0
 */
import { Context, Effect } from "effect"
import { HttpEffect, HttpServerRequest, HttpServerResponse } from "effect/http"

/**
 * Where a request's fields are kept: on its underlying request object (`request.source`, which `request.modify`
 * keeps), as name, value, name, value.
 */
const fieldsKey = Symbol.for("@ouroboros/kernel/ResponseHeaders/fields")

type Carrier = { [fieldsKey]?: Array<string> }

/**
 * The pre-response handler of a request with fields: sets the request's fields that the response does not carry
 * itself, later ones over earlier ones of the same name.
 *
 * @since 0.1.0
 * @category handlers
 */
export const handler: HttpEffect.PreResponseHandler = (request, response) => {
  const fields = (request.source as Carrier)[fieldsKey]
  if (fields === undefined) return Effect.succeed(response)
  // One copy of the response for all the fields: the first field is set with `setHeader`, whose result owns a header
  // object made for it alone (`Headers.set` copies), and the others are written into that object before anyone else
  // sees it, as `HttpServerResponse` itself completes the headers it owns. (`setHeaders` re-normalizes the whole header
  // object and costs about twice as much as a `setHeader` per field; one `setHeader` costs half of three.)
  let out: HttpServerResponse.HttpServerResponse | undefined
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!
    if (response.headers[name] !== undefined) continue
    if (out === undefined) out = HttpServerResponse.setHeader(response, name, fields[i + 1]!)
    else (out.headers as Record<string, string>)[name] = fields[i + 1]!
  }
  return Effect.succeed(out ?? response)
}

/**
 * Puts a field on the response of the request that `context` (a request fiber's context) serves: the form for a
 * middleware's hot path, where the middleware already holds the fiber (`Effect.withFiber`). The value must be a valid
 * field value (no control characters). Outside a request it does nothing.
 *
 * @since 0.1.0
 * @category unsafe
 */
export const setUnsafe = (context: Context.Context<never>, name: string, value: string): void => {
  const request = Context.getOrUndefined(context, HttpServerRequest.HttpServerRequest)
  if (request === undefined) return
  const carrier = request.source as Carrier
  const fields = carrier[fieldsKey]
  // Lower case, as the platform's headers are.
  if (fields !== undefined) {
    fields.push(name.toLowerCase(), value)
    return
  }
  carrier[fieldsKey] = [name.toLowerCase(), value]
  HttpEffect.appendPreResponseHandlerUnsafe(context, handler)
}

/**
 * Puts a field on the response of the current request, whatever makes that response (errors included).
 *
 * @since 0.1.0
 * @category combinators
 */
export const set = (name: string, value: string): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    setUnsafe(fiber.context, name, value)
    return Effect.void
  })
