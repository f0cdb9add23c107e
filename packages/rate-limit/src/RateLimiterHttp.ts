/**
 * The HTTP side of the rate limiter: a plain `HttpMiddleware` that limits requests by API key, tenant, client address
 * and endpoint, answers limited requests with 429 problem+json, and puts the IETF RateLimit header fields
 * (draft-ietf-httpapi-ratelimit-headers, as Structured Fields) on every response a policy applies to.
 *
 * @since 0.1.0
 */
import { ResponseHeaders } from "@ouroboros/kernel"
import { Clock, Context, Effect, type Layer } from "effect"
import { type FindMyWay, HttpRouter, HttpServerRequest, type HttpServerResponse } from "effect/http"
import * as Http from "./internal/http.js"
import * as RateLimiter from "./RateLimiter.js"

/**
 * The problem type of a 429, from draft-ietf-httpapi-ratelimit-headers ("Quota Exceeded", with the
 * `violated-policies` member).
 *
 * @since 0.1.0
 * @category constants
 */
export const quotaExceededType = "https://iana.org/assignments/http-problem-types#quota-exceeded"

/**
 * A middleware of this package: an `HttpMiddleware` that keeps the app's errors and requirements (plus the request).
 * Give it to the server (`HttpRouter.serve(app, { middleware })`, `HttpServer.serveEffect(app, middleware)`), wrap an
 * app with it, or install it as a global router middleware with the module's `layer`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Middleware {
  <E, R>(
    app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
  ): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest>
}

/**
 * Finds the subject of a request. It runs on every request before anything else, so it is a plain function: look up
 * what it needs beforehand (tenants, tiers) and keep it in memory.
 *
 * @since 0.1.0
 * @category models
 */
export type KeyResolver = (request: HttpServerRequest.HttpServerRequest) => RateLimiter.Subject

/**
 * The path of a request target as `HttpRouter` matches it, for a router with this configuration (`HttpRouter.serve`'s
 * `routerConfig`; default: Effect's defaults). It repeats the router's own normalization (`FindMyWay`'s `find`): the
 * path ends at `?`, `#` and (unless `useSemicolonDelimiter: false`) `;`; escapes are decoded except those of
 * `# $ & + , / : ; = ? @` and `%` (unless `decodeStaticPath: false`); `//` becomes `/` and a trailing `/` goes (unless
 * turned off); letters are lower-cased (unless `caseSensitive`). An absolute-form target loses its scheme and host.
 * Dot segments are kept, as the router keeps them: `/api/./v1/x` matches no route.
 *
 * Any two spellings that the router matches to the same route with the same parameters give the same path, so that a
 * policy or an exemption by path cannot be escaped by spelling it differently (`/API/v1/x`, `//api/v1/x`,
 * `/%61pi/v1/x`, `/api/v1/x/`, `/api/v1/x;a=b`). Parameter values are lower-cased too (the router matches them in any
 * case): a policy keyed by endpoint counts `/documents/ABC` and `/documents/abc` together.
 *
 * @since 0.1.0
 * @category utils
 * @example
 * import { RateLimiterHttp } from "@ouroboros/rate-limit"
 * const path = RateLimiterHttp.routerPath()
 * path("//API/v1/%77hoami/;jsessionid=1") // "/api/v1/whoami"
 */
export const routerPath: (config?: Partial<FindMyWay.RouterConfig>) => (url: string) => string = Http.routerPath

/**
 * The default resolver: the SHA-256 of `X-API-Key` (raw keys never reach the store), the client address (through
 * `X-Forwarded-For` only from trusted proxies, IPv4 or IPv6; behind `HttpMiddleware.xForwardedHeaders` the request's
 * address is the client's already) and `METHOD /path` as the endpoint, the path as the router matches it
 * ({@link routerPath}; `routerConfig` must be the router's) and `HEAD` as `GET` (the router answers a `HEAD` with the
 * `GET` route).
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaultResolver = (
  options: {
    readonly trustedProxies?: ReadonlyArray<string> | undefined
    readonly apiKeyHeader?: string
    readonly routerConfig?: Partial<FindMyWay.RouterConfig> | undefined
  } = {}
): KeyResolver => {
  const trusted = Http.trustMatcher(options.trustedProxies ?? [])
  const header = (options.apiKeyHeader ?? "x-api-key").toLowerCase()
  const pathOf = options.routerConfig === undefined ? Http.pathOf : Http.routerPath(options.routerConfig)
  return (request) => {
    const key = request.headers[header]
    return {
      apiKey: key === undefined || key === "" ? undefined : Http.hashKey(key),
      client: Http.clientAddress(request, trusted),
      endpoint: `${request.method === "HEAD" ? "GET" : request.method} ${pathOf(request.url)}`
    }
  }
}

/**
 * Options of the middleware.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Finds the subject (default: `defaultResolver`). */
  readonly resolve?: KeyResolver | undefined
  /** Used by the default resolver. */
  readonly trustedProxies?: ReadonlyArray<string> | undefined
  /** Paths never limited (default: `/health`, `/health/*`, `/metrics`), given as the router matches them. */
  readonly exempt?: ((path: string) => boolean) | undefined
  /**
   * The router's configuration (`HttpRouter.serve`'s `routerConfig`), for the path that exemptions and the default
   * resolver see ({@link routerPath}). Default: Effect's defaults.
   */
  readonly routerConfig?: Partial<FindMyWay.RouterConfig> | undefined
}

/**
 * The paths that are never limited by default: health probes and metrics (as {@link routerPath} gives them).
 *
 * @since 0.1.0
 * @category utils
 */
export const isExempt: (path: string) => boolean = Http.isHealthOrMetrics

const seconds = (millis: number): number => Math.ceil(millis / 1000)

// A policy's item of `RateLimit-Policy` never changes: made once per policy.
const policyItems = new WeakMap<RateLimiter.Policy, string>()

const policyItem = (policy: RateLimiter.Policy): string => {
  let item = policyItems.get(policy)
  if (item === undefined) {
    item = `"${policy.name}";q=${policy.limit};w=${seconds(policy.window)}`
    policyItems.set(policy, item)
  }
  return item
}

/**
 * The `RateLimit-Policy` field of a decision: its policies as a Structured Fields list.
 *
 * @since 0.1.0
 * @category utils
 * @example
 * import { RateLimiter, RateLimiterHttp } from "@ouroboros/rate-limit"
 *
 * declare const decision: RateLimiter.Decision // over "burst" (100 a minute) and "daily" (5000 a day)
 * RateLimiterHttp.policyField(decision) // "burst";q=100;w=60, "daily";q=5000;w=86400
 */
export const policyField = (decision: RateLimiter.Decision): string => {
  const policies = decision.policies
  let field = policies.length === 0 ? "" : policyItem(policies[0]!.policy)
  for (let i = 1; i < policies.length; i++) field += `, ${policyItem(policies[i]!.policy)}`
  return field
}

/**
 * The `RateLimit` field of a decision. For a violated policy `t` is the wait until the request would be admitted;
 * otherwise the time until the quota is fully restored.
 *
 * @since 0.1.0
 * @category utils
 * @example
 * import { RateLimiter, RateLimiterHttp } from "@ouroboros/rate-limit"
 *
 * declare const decision: RateLimiter.Decision // "burst" exhausted, admitting again in 30 seconds
 * RateLimiterHttp.limitField(decision) // "burst";r=0;t=30
 */
export const limitField = (decision: RateLimiter.Decision): string => {
  let field = ""
  for (const d of decision.policies) {
    field += `${field === "" ? "" : ", "}"${d.policy.name}";r=${d.remaining};t=${
      seconds(d.allowed ? d.resetAfterMillis : d.retryAfterMillis)
    }`
  }
  return field
}

/**
 * The `RateLimit-Policy` and `RateLimit` fields of a decision (see {@link policyField} and {@link limitField}).
 *
 * @since 0.1.0
 * @category utils
 * @example
 * import { RateLimiter, RateLimiterHttp } from "@ouroboros/rate-limit"
 *
 * declare const decision: RateLimiter.Decision // "burst" (100 a minute) exhausted, admitting again in 30 seconds
 * RateLimiterHttp.headers(decision) // { "ratelimit-policy": '"burst";q=100;w=60', "ratelimit": '"burst";r=0;t=30' }
 */
export const headers = (decision: RateLimiter.Decision): Record<string, string> => ({
  "ratelimit-policy": policyField(decision),
  "ratelimit": limitField(decision)
})

/**
 * The 429 response for a rejected decision.
 *
 * @since 0.1.0
 * @category utils
 */
export const limitedResponse = (
  decision: RateLimiter.Decision
): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
  const error = RateLimiter.exceeded(decision)
  return Http.problem(429, {
    type: quotaExceededType,
    title: "Request cannot be satisfied as assigned quota has been exceeded",
    status: 429,
    detail: error.detail,
    "violated-policies": decision.violated,
    retryAfter: error.retryAfter
  }, { ...headers(decision), "retry-after": String(error.retryAfter) })
}

const identity: Middleware = (app) => app

const storeUnavailable = Http.problem(503, {
  type: "about:blank",
  title: "Service Unavailable",
  status: 503,
  detail: "Rate limits cannot be checked right now",
  retryAfter: 1
}, { "retry-after": "1" })

/**
 * Builds the middleware on the `RateLimiter` in context.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * import { RateLimiter, RateLimiterHttp } from "@ouroboros/rate-limit"
 * import { Effect, Layer } from "effect"
 * import { HttpRouter, HttpServerResponse } from "effect/http"
 *
 * const routes = HttpRouter.add("GET", "/api/v1/ping", HttpServerResponse.text("pong"))
 * const app = Layer.unwrap(Effect.gen(function*() {
 *   const limit = yield* RateLimiterHttp.make({ trustedProxies: ["loopback"] })
 *   return HttpRouter.serve(routes, { middleware: limit })
 * })).pipe(Layer.provide(RateLimiter.layerConfig()))
 */
export const make = (options: Options = {}): Effect.Effect<Middleware, never, RateLimiter.RateLimiter> =>
  RateLimiter.RateLimiter.useSync((limiter): Middleware => {
    // Without a policy no request is ever limited or gets a field: the middleware steps aside, so that a server with
    // limits turned off (`RATE_LIMIT_DEFAULT=off` and nothing else) does not resolve a subject per request.
    if (limiter.policies.length === 0) return identity
    const resolve = options.resolve ??
      defaultResolver({ trustedProxies: options.trustedProxies, routerConfig: options.routerConfig })
    const decideUnsafe = limiter.decideUnsafe
    const exempt = options.exempt ?? isExempt
    const pathOf = options.routerConfig === undefined ? Http.pathOf : Http.routerPath(options.routerConfig)
    return <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) => {
      // Per request this middleware is one step of the fiber and allocates no Effect or closure of its own when the
      // store decides synchronously (memory): each costs several times more in a busy server than in a loop.
      // The fields go on the response through `ResponseHeaders`: when this middleware is given to the server the
      // response is sent before the wrapped effect returns, and error responses are made later by the server.
      const onDecision = (context: Context.Context<never>, decision: RateLimiter.Decision) => {
        if (decision.policies.length === 0) return app
        if (!decision.allowed) return limitedResponse(decision)
        ResponseHeaders.setUnsafe(context, "ratelimit-policy", policyField(decision))
        ResponseHeaders.setUnsafe(context, "ratelimit", limitField(decision))
        return app
      }
      return Effect.withFiber<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest>(
        (fiber) => {
          const context = fiber.context
          const request = Context.getUnsafe(context, HttpServerRequest.HttpServerRequest)
          if (exempt(pathOf(request.url))) return app
          const subject = resolve(request)
          if (decideUnsafe !== undefined) {
            const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
            return onDecision(context, decideUnsafe(subject, now))
          }
          return Effect.matchEffect(limiter.decide(subject), {
            onFailure: () => storeUnavailable,
            onSuccess: (decision) => onDecision(context, decision)
          })
        }
      )
    }
  })

/**
 * The middleware as a global `HttpRouter` middleware: every route of the router, and its 404, is limited.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { RateLimiter, RateLimiterHttp } from "@ouroboros/rate-limit"
 * import { Layer } from "effect"
 * import { HttpRouter, HttpServerResponse } from "effect/http"
 * const routes = HttpRouter.add("GET", "/api/v1/ping", HttpServerResponse.text("pong"))
 * const app = HttpRouter.serve(Layer.mergeAll(routes, RateLimiterHttp.layer({ trustedProxies: ["loopback"] }))).pipe(
 *   Layer.provide(RateLimiter.layerConfig())
 * )
 */
export const layer = (
  options: Options = {}
): Layer.Layer<never, never, HttpRouter.HttpRouter | RateLimiter.RateLimiter> =>
  HttpRouter.middleware(
    Effect.map(make(options), (limit) =>
    // The router's types ask a middleware to pass on the errors it does not know: this one passes on every error.
    (effect: Effect.Effect<HttpServerResponse.HttpServerResponse, any>) =>
      limit(effect) as Effect.Effect<HttpServerResponse.HttpServerResponse, any>),
    { global: true }
  ) as Layer.Layer<never, never, HttpRouter.HttpRouter | RateLimiter.RateLimiter>
