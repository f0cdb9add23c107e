/**
 * The HTTP side of the load shedder: ordinary requests get 503 problem+json with `Retry-After` while the process is
 * saturated; critical paths (`/health/*`, `/admin/*`, `/metrics`) keep the reserved capacity.
 *
 * @since 0.1.0
 */
import { Context, Effect, Fiber, type Layer } from "effect"
import { HttpRouter, HttpServerRequest, type HttpServerResponse } from "effect/http"
import * as Http from "./internal/http.js"
import { LoadShedder } from "./LoadShedder.js"
import type { Middleware } from "./RateLimiterHttp.js"

/**
 * The problem type of a shed request, from draft-ietf-httpapi-ratelimit-headers ("Temporary Reduced Capacity").
 *
 * @since 0.1.0
 * @category constants
 */
export const temporaryReducedCapacityType = "https://iana.org/assignments/http-problem-types#temporary-reduced-capacity"

/**
 * The default critical paths: health probes, metrics and admin.
 *
 * @since 0.1.0
 * @category utils
 */
export const isCritical = (path: string): boolean =>
  Http.isHealthOrMetrics(path) || path === "/admin" || path.startsWith("/admin/")

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Requests that may use the reserved capacity (default: `isCritical` on the path). */
  readonly critical?: ((request: HttpServerRequest.HttpServerRequest) => boolean) | undefined
}

/**
 * Builds the middleware on the `LoadShedder` in context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Middleware, never, LoadShedder> =>
  LoadShedder.useSync((shedder): Middleware => {
    const critical = options.critical ??
      ((request: HttpServerRequest.HttpServerRequest) => isCritical(Http.pathOf(request.url)))
    const shed = Http.problem(503, {
      type: temporaryReducedCapacityType,
      title: "Service Unavailable",
      status: 503,
      detail: "The service is saturated; retry shortly",
      retryAfter: shedder.retryAfter
    }, { "retry-after": String(shedder.retryAfter) })
    // Built once per app: admission and the finalizer that ends the request are installed in one uninterruptible step
    // (no permit can leak), and the app itself runs interruptibly. Per request this allocates nothing, and the
    // uninterruptible region and the admission are one step of the fiber (`uninterruptibleMask` runs its function in
    // the fiber's own step, where `Fiber.getCurrent` is the request's fiber).
    return <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) => {
      const admitted = Effect.ensuring(Effect.interruptible(app), shedder.release)
      return Effect.uninterruptibleMask<
        HttpServerResponse.HttpServerResponse,
        E,
        R | HttpServerRequest.HttpServerRequest
      >(
        () => {
          const request = Context.getUnsafe(Fiber.getCurrent()!.context, HttpServerRequest.HttpServerRequest)
          return shedder.tryAdmitUnsafe(critical(request) ? "critical" : "normal") ? admitted : shed
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
): Layer.Layer<never, never, HttpRouter.HttpRouter | LoadShedder> =>
  HttpRouter.middleware(
    Effect.map(make(options), (shed) =>
    // The router's types ask a middleware to pass on the errors it does not know: this one passes on every error.
    (effect: Effect.Effect<HttpServerResponse.HttpServerResponse, any>) =>
      shed(effect) as Effect.Effect<HttpServerResponse.HttpServerResponse, any>),
    { global: true }
  ) as Layer.Layer<never, never, HttpRouter.HttpRouter | LoadShedder>
