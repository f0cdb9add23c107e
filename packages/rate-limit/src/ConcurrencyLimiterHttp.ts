/**
 * The HTTP side of the concurrency limiter: at most N requests in flight per API key (or client address); one more
 * gets 429 problem+json with `Retry-After`.
 *
 * @since 0.1.0
 */
import { type HttpMiddleware, HttpServerRequest } from "@effect/platform"
import { Context, Effect } from "effect"
import { ConcurrencyLimiter } from "./ConcurrencyLimiter.js"
import * as Http from "./internal/http.js"
import { quotaExceededType } from "./RateLimiterHttp.js"

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
export const make = (
  options: Options = {}
): Effect.Effect<HttpMiddleware.HttpMiddleware, never, ConcurrencyLimiter> =>
  Effect.map(ConcurrencyLimiter, (limiter) => {
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
    // app itself runs interruptibly.
    const middleware: HttpMiddleware.HttpMiddleware = (app) => {
      const interruptible = Effect.interruptible(app)
      return Effect.uninterruptible(Effect.withFiberRuntime((fiber) => {
        const request = Context.unsafeGet(fiber.currentContext, HttpServerRequest.HttpServerRequest)
        if (exempt(Http.pathOf(request.url))) return interruptible
        const key = keyOf(request)
        return limiter.unsafeTryAcquire(key) ? Effect.ensuring(interruptible, limiter.release(key)) : limited
      }))
    }
    return middleware
  })
