/**
 * The HTTP side of problem details: a middleware that makes every error response RFC 9457 problem+json.
 *
 * {@link middleware} and {@link layer} answer as the HTTP contract records today. {@link make} and {@link layerWith}
 * take {@link Options}: the style of the bodies (no `_tag`, documented type URIs: {@link rfc9457}), details for router
 * 404s and malformed JSON, 405 with `Allow` for a wrong method on a served path ({@link routes}), the JSON depth limit
 * and the bounds of listed issues.
 *
 * @since 0.1.0
 */
import { Cause, Context, Data, Effect, Fiber, Layer, Option, Schema, SchemaAST } from "effect"
import {
  FindMyWay,
  HttpIncomingMessage,
  HttpMethod,
  HttpRouter,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "effect/http"
import { HttpApi, HttpApiError } from "effect/http-api"
import { SqlError } from "effect/sql"
import * as Issues from "./Issues.js"
import * as JsonDepth from "./JsonDepth.js"
import * as Problem from "./Problem.js"
import { currentCorrelationId } from "./RequestContext.js"

// -----------------------------------------------------------------------------
// options
// -----------------------------------------------------------------------------

/**
 * How {@link make} answers. Every option defaults to today's behaviour (the bodies the HTTP contract records), except
 * the JSON depth limit, which only turns what was a 500 into a 400.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `"keep"` (default): bodies carry the error's `_tag`; `"omit"`: they do not (see `Problem.Style`). */
  readonly tags?: "keep" | "omit" | undefined
  /** `"blank"` (default): `about:blank` unless a body names its type; `"documented"`: the documented type URIs. */
  readonly types?: "blank" | "documented" | undefined
  /** The base of documented type URIs (default `Problem.typeBase`). */
  readonly typeBase?: string | undefined
  /**
   * `true`: a router 404 says which route was not found, a body that is not JSON is a `malformed-json` problem with a
   * `detail` (rather than a decode failure whose one issue says so), and a plain-text error body (HttpApi's 415)
   * becomes the `detail` of a problem. Default `false`.
   */
  readonly details?: boolean | undefined
  /**
   * The routes the server serves ({@link routes}): a request whose path is served for other methods is answered 405
   * with `Allow` rather than 404. Default: none (every unknown route is a 404).
   */
  readonly routes?: Routes | undefined
  /**
   * JSON bodies nesting deeper than this are refused with a 400 `json-too-deep` problem before anything parses them
   * (see {@link limitJsonDepth}). Default {@link defaultMaxJsonDepth}; `Infinity` turns the check off.
   */
  readonly maxJsonDepth?: number | undefined
  /** The bounds of the issues that decode failures list (default `Issues.defaultLimits`). */
  readonly issues?: Partial<Issues.Limits> | undefined
}

/**
 * The options of the deliberate contract change (issue 21): no `_tag`, documented type URIs, details for router 404s,
 * malformed JSON and plain-text errors. Add `routes` for 405s.
 *
 * @since 0.1.0
 * @category constants
 */
export const rfc9457: Options = { tags: "omit", types: "documented", details: true }

/**
 * The default JSON depth limit: far above any body of the API (a search filter nests a few levels), far below what
 * overflows a decoder (a filter a thousand levels deep did).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMaxJsonDepth = 64

interface Resolved {
  readonly style: Problem.Style
  readonly legacy: boolean
  readonly details: boolean
  readonly routes: Routes | undefined
  readonly maxJsonDepth: number
  readonly limits: Issues.Limits
}

const resolve = (options: Options | undefined): Resolved => {
  const style: Problem.Style = {
    tags: options?.tags ?? "keep",
    types: options?.types ?? "blank",
    typeBase: options?.typeBase ?? Problem.typeBase
  }
  return {
    style,
    legacy: style.tags === "keep" && style.types === "blank",
    details: options?.details ?? false,
    routes: options?.routes,
    maxJsonDepth: options?.maxJsonDepth ?? defaultMaxJsonDepth,
    limits: { ...Issues.defaultLimits, ...options?.issues }
  }
}

const defaults = resolve(undefined)

// -----------------------------------------------------------------------------
// rewriting responses
// -----------------------------------------------------------------------------

const decoder = new TextDecoder()

const cut = (text: string, max: number): string => text.length <= max ? text : text.slice(0, max) + "…"

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
 * numeric `retryAfter` member becomes a `Retry-After` header when none is set. With `options` (their `tags`, `types`,
 * `typeBase` and `details`), bodies are written in that style, problem+json bodies made elsewhere included.
 *
 * @since 0.1.0
 * @category utils
 */
export const toProblem = (
  response: HttpServerResponse.HttpServerResponse,
  correlationId: string | undefined,
  options?: Options
): HttpServerResponse.HttpServerResponse =>
  rewriteWith(response, correlationId, options === undefined ? defaults : resolve(options))

const rewriteWith = (
  response: HttpServerResponse.HttpServerResponse,
  correlationId: string | undefined,
  config: Resolved
): HttpServerResponse.HttpServerResponse => {
  if (response.status < 400) return response
  if (response.body._tag === "Stream" || response.body._tag === "Raw") return response
  const contentType = (response.body._tag === "Uint8Array" ? response.body.contentType : undefined) ??
    response.headers["content-type"] ?? ""
  if (contentType.startsWith(Problem.contentType)) {
    // A problem made elsewhere (a rate limiter, a load shedder): in today's style it only gets the correlation id it
    // lacks; in another style it is rewritten like any other body.
    if (config.legacy) return withCorrelationId(response, correlationId)
  } else if (config.details && contentType.startsWith("text/plain") && response.body._tag === "Uint8Array") {
    // A plain-text error (HttpApi's 415 "Unsupported content-type: …"): its text is the detail.
    const max = config.limits.maxMessageLength
    const text = decoder.decode(response.body.body.subarray(0, 4 * max))
    return answer(
      response,
      Problem.normalizeWith(response.status, { detail: cut(text, max) }, correlationId, config.style)
    )
  } else if (contentType !== "" && !contentType.startsWith("application/json")) {
    // Only JSON error bodies and empty ones are rewritten: other media types (health+json) are final.
    return response
  }
  return answer(response, Problem.normalizeWith(response.status, readBody(response), correlationId, config.style))
}

const answer = (
  response: HttpServerResponse.HttpServerResponse,
  problem: Problem.ProblemDetails
): HttpServerResponse.HttpServerResponse => {
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

// -----------------------------------------------------------------------------
// bodies over the limit
// -----------------------------------------------------------------------------

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

// The limit the reader applied: the same `MaxBodySize` of the request's fiber.
const bodyTooLarge = Effect.map(
  Effect.service(HttpIncomingMessage.MaxBodySize),
  (maxBodySize) => payloadTooLarge(maxBodySize === undefined ? undefined : Number(maxBodySize))
)

// HttpApi turns payload-reading and decoding failures into defects, so both failures and defects are inspected.
const findIn = <A>(cause: Cause.Cause<unknown>, f: (u: unknown) => A | undefined): A | undefined => {
  for (const reason of cause.reasons) {
    const found = reason._tag === "Fail" ? f(reason.error) : reason._tag === "Die" ? f(reason.defect) : undefined
    if (found !== undefined) return found
  }
  return undefined
}

// -----------------------------------------------------------------------------
// decode failures
// -----------------------------------------------------------------------------

// An error of the request's own params, headers, query or payload (a failure to encode a response is ours: a 500).
const isRequestSchemaError = (u: unknown): u is HttpApiError.HttpApiSchemaError =>
  HttpApiError.HttpApiSchemaError.is(u) && u.kind !== "Body" && u.kind !== "ResponseHeaders"

/**
 * The 400 answer to a request whose params, headers, query or payload do not decode: the issues name the path and
 * say what was expected, and `detail` sums them up. Bounded whatever the request (`Issues.format`): at most
 * `maxIssues` issues (an `issuesOmitted` member counts the rest), quoted values cut at `maxValueLength` characters,
 * the issue tree walked without recursion. (The `SchemaError`'s own `message` is never built: it quotes values in
 * full.)
 *
 * @since 0.1.0
 * @category constructors
 */
export const decodeFailure = (
  error: HttpApiError.HttpApiSchemaError,
  limits?: Partial<Issues.Limits>
): HttpServerResponse.HttpServerResponse => {
  const formatted = Issues.format(error.cause.issue, limits)
  return HttpServerResponse.jsonUnsafe(
    {
      _tag: "HttpApiDecodeError",
      detail: Issues.summary(formatted),
      issues: formatted.issues,
      ...(formatted.omitted > 0 ? { issuesOmitted: formatted.omitted } : {})
    },
    { status: 400 }
  )
}

// HttpApi's own issue for a JSON body that does not parse.
const isMalformedJson = (error: HttpApiError.HttpApiSchemaError): boolean => {
  const issue = error.cause.issue
  return error.kind === "Payload" && issue._tag === "InvalidValue" &&
    issue.annotations?.message === "Expected a valid JSON body"
}

/**
 * The 400 answer to a body that is declared as JSON and does not parse (with the `details` option; without it, such a
 * body is a decode failure whose one issue says so).
 *
 * @since 0.1.0
 * @category constructors
 */
export const malformedJson: HttpServerResponse.HttpServerResponse = HttpServerResponse.jsonUnsafe(
  { _tag: "MalformedJson", detail: "the body is not valid JSON" },
  { status: 400 }
)

// -----------------------------------------------------------------------------
// JSON depth
// -----------------------------------------------------------------------------

/**
 * What a JSON body nested deeper than the limit fails the body reader with (as the `cause` of a `RequestParseError`):
 * {@link make} answers it with {@link jsonTooDeep}.
 *
 * @since 0.1.0
 * @category errors
 */
export class JsonTooDeep extends Data.TaggedError("JsonTooDeep")<{ readonly maxDepth: number }> {
  override get message() {
    return `the JSON body nests arrays and objects deeper than ${this.maxDepth} levels`
  }
}

/**
 * The 400 answer to a JSON body nested deeper than `maxDepth` levels.
 *
 * @since 0.1.0
 * @category constructors
 */
export const jsonTooDeep = (maxDepth: number): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.jsonUnsafe(
    { _tag: "JsonTooDeep", detail: new JsonTooDeep({ maxDepth }).message, maxDepth },
    { status: 400 }
  )

const tooDeepOf = (u: unknown): number | undefined =>
  HttpServerError.isHttpServerError(u) && u.reason._tag === "RequestParseError" &&
    u.reason.cause instanceof JsonTooDeep
    ? u.reason.cause.maxDepth
    : undefined

const isJsonMediaType = (contentType: string | undefined): boolean => {
  // HttpApi reads a body without a content type as JSON.
  if (contentType === undefined || contentType === "") return true
  const type = contentType.split(";", 1)[0]!.trim().toLowerCase()
  return type === "application/json" || type.endsWith("+json")
}

const guardKey = Symbol.for("@ouroboros/kernel/ProblemHttp/maxJsonDepth")

type Guarded = HttpServerRequest.HttpServerRequest & { [guardKey]?: number }

// What the request's class answers for `key` (a getter runs with the request as `this`).
const inherited = <A>(request: HttpServerRequest.HttpServerRequest, key: PropertyKey): A =>
  Reflect.get(Object.getPrototypeOf(request), key, request)

// The body readers of a guarded request: its class's (whose bytes are read once and cached), checked. The check is one
// scan of the bytes when something reads the body, so nothing is read ahead of the handler.
const guardedProperties: PropertyDescriptorMap = {
  arrayBuffer: {
    configurable: true,
    get(this: Guarded) {
      const maxDepth = this[guardKey]!
      return Effect.flatMap(
        inherited<HttpServerRequest.HttpServerRequest["arrayBuffer"]>(this, "arrayBuffer"),
        (buffer) =>
          JsonDepth.exceeds(new Uint8Array(buffer), maxDepth)
            ? Effect.fail(
              new HttpServerError.HttpServerError({
                reason: new HttpServerError.RequestParseError({
                  request: this,
                  reason: "Parse",
                  description: `the JSON body nests deeper than ${maxDepth} levels`,
                  cause: new JsonTooDeep({ maxDepth })
                })
              })
            )
            : Effect.succeed(buffer)
      )
    }
  },
  text: {
    configurable: true,
    get(this: Guarded) {
      return Effect.map(this.arrayBuffer, (buffer) => decoder.decode(buffer))
    }
  },
  modify: {
    configurable: true,
    value(this: Guarded, options: Parameters<HttpServerRequest.HttpServerRequest["modify"]>[0]) {
      // A request rewritten further in (API version negotiation, a router prefix) is a new object: it keeps the guard.
      const modified = inherited<HttpServerRequest.HttpServerRequest["modify"]>(this, "modify").call(this, options)
      return guard(modified, this[guardKey]!)
    }
  }
}

// The request itself gets the checked body readers (own properties over its class's). A view with the request as its
// prototype would leave the request untouched, but every later read of it through the view is slow (13 µs a request
// in the benchmark; the properties cost 1). `json` and `urlParamsBody` read through `text` and `arrayBuffer`, so they
// are checked too.
const guard = (request: HttpServerRequest.HttpServerRequest, maxDepth: number): HttpServerRequest.HttpServerRequest => {
  const guarded = request as Guarded
  if (guarded[guardKey] !== undefined) return request
  Object.defineProperties(request, guardedProperties)
  guarded[guardKey] = maxDepth
  return request
}

/**
 * Refuses JSON bodies (`application/json`, `*+json`, or no content type, on a method with a body) nested deeper than
 * `maxDepth` levels: the request reads its body through a check, one scan over the bytes (`JsonDepth.depth`) before
 * anything parses them, that fails with a `RequestParseError` caused by {@link JsonTooDeep}; so do the requests made
 * from it with `modify`. {@link make} applies it (with {@link defaultMaxJsonDepth}) and answers that failure 400. The
 * first limit applied to a request stays.
 *
 * Nothing is read ahead: the check runs when the handler reads the body, on the bytes it reads. Other requests pass
 * untouched.
 *
 * @since 0.1.0
 * @category middleware
 */
export const limitJsonDepth = (maxDepth: number) => <A, E, R>(app: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) => {
    const request = Context.getOrUndefined(fiber.context, HttpServerRequest.HttpServerRequest)
    if (
      request !== undefined && HttpMethod.hasBody(request.method) && isJsonMediaType(request.headers["content-type"])
    ) {
      guard(request, maxDepth)
    }
    return app
  })

// -----------------------------------------------------------------------------
// 404 and 405
// -----------------------------------------------------------------------------

/**
 * The routes a server serves, for answering a wrong method with 405 and `Allow` ({@link Options}).
 *
 * @since 0.1.0
 * @category models
 */
export interface Routes {
  /** The methods `path` is served for (with `HEAD` where `GET` is) other than `method`; empty when none is. */
  readonly allowed: (method: string, path: string) => ReadonlyArray<string>
}

/**
 * One route: a method and a path as `HttpRouter` writes them (`/documents/:id`, `/files/*`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Route {
  readonly method: string
  readonly path: string
}

/**
 * The routes of HttpApi apis, reflected from their endpoints, for {@link routes}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const routesOf = (...apis: ReadonlyArray<HttpApi.Constraint>): Array<Route> => {
  const out: Array<Route> = []
  for (const api of apis) {
    HttpApi.reflect(api as HttpApi.Top, {
      onGroup: () => {},
      onEndpoint: ({ endpoint }) => {
        out.push({ method: endpoint.method, path: endpoint.path })
      }
    })
  }
  return out
}

/**
 * A table of routes, matched as the router matches them: the same `FindMyWay` router, with the router's defaults or
 * the `routerConfig` the server gives `HttpRouter.serve`. List every route of the server (the apis' through
 * {@link routesOf}, and the routes added to the router directly, `GET /metrics` say).
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * import { ProblemHttp } from "@ouroboros/kernel"
 *
 * const table = ProblemHttp.routes([{ method: "POST", path: "/search" }, { method: "GET", path: "/documents/:id" }])
 * table.allowed("GET", "/search") // ["POST"]
 */
export const routes = (entries: Iterable<Route>, config?: Partial<FindMyWay.RouterConfig>): Routes => {
  const router = FindMyWay.make<true>(config)
  const seen = new Set<string>()
  const methods = new Set<string>()
  for (const { method, path } of entries) {
    const upper = method.toUpperCase()
    const key = `${upper} ${path}`
    if (seen.has(key)) continue
    seen.add(key)
    methods.add(upper)
    router.on(upper, path as FindMyWay.PathInput, true)
  }
  const known = [...methods]
  return {
    allowed: (method, path) => {
      const out: Array<string> = []
      for (const candidate of known) {
        if (candidate !== method && router.find(candidate, path) !== undefined) out.push(candidate)
      }
      if (out.includes("GET") && !out.includes("HEAD") && method !== "HEAD") out.push("HEAD")
      return out
    }
  }
}

/**
 * The 405 answer: an `Allow` field and a problem naming the methods the path accepts.
 *
 * @since 0.1.0
 * @category constructors
 */
export const methodNotAllowed = (
  method: string,
  path: string,
  allowed: ReadonlyArray<string>
): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.jsonUnsafe(
    { detail: `${method} is not allowed on ${cut(path, 100)}; it accepts ${allowed.join(", ")}`, allow: allowed },
    { status: 405, headers: { allow: allowed.join(", ") } }
  )

const routeNotFoundOf = (u: unknown): HttpServerError.RouteNotFound | undefined =>
  HttpServerError.isHttpServerError(u) && u.reason._tag === "RouteNotFound" ? u.reason : undefined

const pathOf = (url: string): string => {
  const end = url.search(/[?#]/)
  return end === -1 ? url : url.slice(0, end)
}

// The router's request (the one it failed to route, after any rewriting) says which route was missing.
const routeNotFound = (
  notFound: HttpServerError.RouteNotFound,
  config: Resolved
): HttpServerResponse.HttpServerResponse | undefined => {
  const { method, url } = notFound.request
  if (config.routes !== undefined) {
    const allowed = config.routes.allowed(method, url)
    if (allowed.length > 0) return methodNotAllowed(method, pathOf(url), allowed)
  }
  if (!config.details) return undefined
  return HttpServerResponse.jsonUnsafe({ detail: `no route matches ${method} ${cut(pathOf(url), 100)}` }, {
    status: 404
  })
}

// -----------------------------------------------------------------------------
// middleware
// -----------------------------------------------------------------------------

/**
 * The problem middleware with `options`: every error response of the wrapped app becomes a problem+json document,
 * including router 404s (405 with `Allow` when `routes` says the path is served for other methods), decode failures
 * (with bounded issues), JSON bodies nested too deeply, a body over `HttpIncomingMessage.MaxBodySize` (413, see
 * {@link payloadTooLarge}) and defects (a 500 that names nothing of its cause).
 *
 * @since 0.1.0
 * @category middleware
 * @example
 * import { ProblemHttp } from "@ouroboros/kernel"
 *
 * // The contract change of issue 21, with 405s for the server's routes.
 * const problems = ProblemHttp.make({
 *   ...ProblemHttp.rfc9457,
 *   routes: ProblemHttp.routes([{ method: "POST", path: "/api/v1/search" }])
 * })
 */
export const make = (options?: Options) => {
  const config = options === undefined ? defaults : resolve(options)
  const depthLimit = Number.isFinite(config.maxJsonDepth) ? limitJsonDepth(config.maxJsonDepth) : undefined
  // A success passes as it is (no effect per request); an error response reads the correlation id of the fiber it
  // runs in, the request's.
  const rewrite = (response: HttpServerResponse.HttpServerResponse): HttpServerResponse.HttpServerResponse =>
    response.status < 400
      ? response
      : rewriteWith(response, Option.getOrUndefined(Fiber.getCurrent()!.getRef(currentCorrelationId)), config)
  const recover = (cause: Cause.Cause<unknown>): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
    if (findIn(cause, (u) => isBodyOverLimit(u) || undefined)) return bodyTooLarge
    const deep = findIn(cause, tooDeepOf)
    if (deep !== undefined) return Effect.succeed(jsonTooDeep(deep))
    const decode = findIn(cause, (u) => isRequestSchemaError(u) ? u : undefined)
    if (decode !== undefined) {
      return Effect.succeed(
        config.details && isMalformedJson(decode) ? malformedJson : decodeFailure(decode, config.limits)
      )
    }
    const notFound = findIn(cause, routeNotFoundOf)
    if (notFound !== undefined) {
      const response = routeNotFound(notFound, config)
      if (response !== undefined) return Effect.succeed(response)
    }
    return Option.match(Cause.findErrorOption(cause), {
      onSome: (error) => Effect.catch(encodeError(error), () => fromCause(cause)),
      onNone: () => fromCause(cause)
    })
  }
  return <E, R>(
    app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
  ): Effect.Effect<HttpServerResponse.HttpServerResponse, never, R> =>
    Effect.map(Effect.catchCause(depthLimit === undefined ? app : depthLimit(app), recover), rewrite)
}

/**
 * Makes every error response of the wrapped app a problem+json document, including router 404s, decode errors (with
 * bounded issues), a body over `HttpIncomingMessage.MaxBodySize` (413, see {@link payloadTooLarge}), a JSON body
 * nested deeper than {@link defaultMaxJsonDepth} (400) and defects (a 500 that names nothing of its cause): {@link make}
 * with no options.
 *
 * @since 0.1.0
 * @category middleware
 */
export const middleware: <E, R>(
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
) => Effect.Effect<HttpServerResponse.HttpServerResponse, never, R> = make()

/**
 * {@link make} with `options` for every route of the server's router, its 404 for an unknown route included.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (options?: Options): Layer.Layer<never, never, HttpRouter.HttpRouter> => {
  const problems = make(options)
  return HttpRouter.middleware(
    // The router's types ask a middleware to pass on the errors it does not know; this one answers every cause.
    (effect: Effect.Effect<HttpServerResponse.HttpServerResponse, any>) =>
      problems(effect) as Effect.Effect<HttpServerResponse.HttpServerResponse, any>,
    { global: true }
  ) as Layer.Layer<never, never, HttpRouter.HttpRouter>
}

/**
 * {@link middleware} for every route of the server's router, its 404 for an unknown route included.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<never, never, HttpRouter.HttpRouter> = layerWith()

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

/**
 * A database failure that a retry may get past (a lost connection, a timeout, a deadlock) that reached the server as a
 * defect: a service that has no typed error for its store (`Effect.orDie` on a query) answers 503, not 500.
 */
const isDatabaseUnavailable = (cause: Cause.Cause<unknown>): boolean =>
  findIn(cause, (u) => SqlError.isSqlError(u) && u.isRetryable || undefined) !== undefined

// What a service would have failed with had it a typed error for its store. `retryAfter`: a reconnect or a failover
// takes seconds.
const databaseUnavailable = new Problem.ServiceUnavailable({
  detail: "The database did not answer; try again",
  retryAfter: 5
})

const fromCause = <E>(cause: Cause.Cause<E>) =>
  isDatabaseUnavailable(cause)
    ? Effect.logError("The database failed while serving a request; answered 503", cause).pipe(
      Effect.andThen(encodeError(databaseUnavailable)),
      Effect.catch(() => fromDefect(cause))
    )
    : fromDefect(cause)

const fromDefect = <E>(cause: Cause.Cause<E>) =>
  Effect.tap(
    Effect.map(HttpServerError.causeResponse(cause), ([response]) => response),
    (response) =>
      response.status >= 500 && !Cause.hasInterruptsOnly(cause)
        ? Effect.logError("Unhandled failure while serving a request", cause)
        : Effect.void
  )
