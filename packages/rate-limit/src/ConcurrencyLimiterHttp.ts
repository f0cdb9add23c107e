/**
 * The HTTP side of the concurrency limiter: at most N requests in flight per API key (or client address); one more
 * gets 429 problem+json with `Retry-After`.
 *
 * @since 0.1.0
 */
import { Context, Effect, Fiber, type Layer } from "effect"
import { HttpRouter, HttpServerRequest, type HttpServerResponse } from "effect/http"
import { ConcurrencyLimiter } from "./ConcurrencyLimiter.js"
import * as Http from "./internal/http.js"
import { type Middleware, quotaExceededType } from "./RateLimiterHttp.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The key of a request (default: hashed `X-API-Key`, else the client address). */
  readonly key?: ((request: HttpServerRequest.HttpServerRequest) => string) | undefined
  /** Used by the default key. */
  readonly trustedProxies?: ReadonlyArray<string> | undefined
  /** Paths never limited (default: `/health`, `/health/*`, `/metrics`). */
  readonly exempt?: ((path: string) => boolean) | undefined
}

/**
 * Builds the middleware on the `ConcurrencyLimiter` in context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Middleware, never, ConcurrencyLimiter> =>
  ConcurrencyLimiter.useSync((limiter): Middleware => {
    const trusted = Http.trustMatcher(options.trustedProxies ?? [])
    const keyOf = options.key ?? ((request: HttpServerRequest.HttpServerRequest) => {
      const apiKey = request.headers["x-api-key"]
      return apiKey === undefined || apiKey === ""
        ? `ip=${Http.clientAddress(request, trusted)}`
        : `k=${Http.hashKey(apiKey)}`
    })
    const exempt = options.exempt ?? Http.isHealthOrMetrics
    const limited = Http.problem(429, {
      type: quotaExceededType,
      title: "Too many requests in flight",
      status: 429,
      detail: `At most ${limiter.limit} requests may be in flight at once`,
      "violated-policies": ["concurrency"],
      retryAfter: 1
    }, { "retry-after": "1" })
    // The permit and the finalizer that gives it back are taken in one uninterruptible step (no permit can leak); the
    // app itself runs interruptibly. The uninterruptible region and the permit are one step of the fiber
    // (`uninterruptibleMask` runs its function in the fiber's own step, where `Fiber.getCurrent` is the request's
    // fiber); per request, the finalizer is one closure.
    return <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) => {
      const interruptible = Effect.interruptible(app)
      return Effect.uninterruptibleMask<
        HttpServerResponse.HttpServerResponse,
        E,
        R | HttpServerRequest.HttpServerRequest
      >(
        () => {
          const request = Context.getUnsafe(Fiber.getCurrent()!.context, HttpServerRequest.HttpServerRequest)
          if (exempt(Http.pathOf(request.url))) return interruptible
          const key = keyOf(request)
          if (!limiter.tryAcquireUnsafe(key)) return limited
          return Effect.onExit(interruptible, () => {
            limiter.releaseUnsafe(key)
            return Effect.void
          })
        }
      )
    }
  })

/**
 * The middleware as a global `HttpRouter` middleware.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<never, never, HttpRouter.HttpRouter | ConcurrencyLimiter> =>
  HttpRouter.middleware(
    Effect.map(make(options), (limit) =>
    // The router's types ask a middleware to pass on the errors it does not know: this one passes on every error.
    (effect: Effect.Effect<HttpServerResponse.HttpServerResponse, any>) =>
      limit(effect) as Effect.Effect<HttpServerResponse.HttpServerResponse, any>),
    { global: true }
  ) as Layer.Layer<never, never, HttpRouter.HttpRouter | ConcurrencyLimiter>
