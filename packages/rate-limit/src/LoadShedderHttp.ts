/**
 * The HTTP side of the load shedder: ordinary requests get 503 problem+json with `Retry-After` while the process is
 * saturated; critical paths (`/health/*`, `/admin/*`, `/metrics`) keep the reserved capacity.
 *
 * @since 0.1.0
 */
import { type HttpMiddleware, HttpServerRequest } from "@effect/platform"
import { Context, Effect } from "effect"
import * as Http from "./internal/http.js"
import { LoadShedder } from "./LoadShedder.js"

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
export const make = (options: Options = {}): Effect.Effect<HttpMiddleware.HttpMiddleware, never, LoadShedder> =>
  Effect.map(LoadShedder, (shedder) => {
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
    // (no permit can leak), and the app itself runs interruptibly. Per request this allocates nothing.
    const middleware: HttpMiddleware.HttpMiddleware = (app) => {
      const admitted = Effect.ensuring(Effect.interruptible(app), shedder.release)
      return Effect.uninterruptible(Effect.withFiberRuntime((fiber) => {
        const request = Context.unsafeGet(fiber.currentContext, HttpServerRequest.HttpServerRequest)
        return shedder.unsafeTryAdmit(critical(request) ? "critical" : "normal") ? admitted : shed
      }))
    }
    return middleware
  })
