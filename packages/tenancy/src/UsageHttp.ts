/**
 * The HTTP side of usage metering: a middleware that records one `requests` unit per request of an authenticated
 * tenant principal (buffered in memory by `Usage`; no I/O on the request path).
 *
 * @since 0.1.0
 */
import { RateLimiterHttp } from "@ouroboros/rate-limit"
import { Context, Effect, Layer } from "effect"
import { HttpRouter, HttpServerRequest, type HttpServerResponse } from "effect/http"
import { CurrentAuthentication } from "./TenancyHttp.js"
import * as Usage from "./Usage.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Paths not metered (default: `/health`, `/health/*`, `/metrics`). */
  readonly exempt?: ((path: string) => boolean) | undefined
}

const pathOf = (url: string) => {
  const q = url.indexOf("?")
  return q === -1 ? url : url.slice(0, q)
}

/**
 * Records a request for the tenant of the request's principal (`TenancyHttp.middleware` must run outside it). The
 * admin key and anonymous or refused requests are not metered.
 *
 * @since 0.1.0
 * @category middleware
 */
export const make = (options: Options = {}): Effect.Effect<
  <E, R>(
    app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
  ) => Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest>,
  never,
  Usage.Usage
> =>
  Effect.map(Effect.service(Usage.Usage), (usage) => {
    const exempt = options.exempt ?? RateLimiterHttp.isExempt
    return <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
      Effect.withFiber<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest>((fiber) => {
        const outcome = fiber.getRef(CurrentAuthentication)
        if (outcome._tag !== "Authenticated" || outcome.principal.method === "admin-key") return app
        const request = Context.getUnsafe(fiber.context, HttpServerRequest.HttpServerRequest)
        if (exempt(pathOf(request.url))) return app
        return Effect.andThen(usage.record(outcome.principal.tenantId, { requests: 1 }), app)
      })
  })

/**
 * {@link make} as a global router middleware (build it after `TenancyHttp.layer`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<never, never, HttpRouter.HttpRouter | Usage.Usage> =>
  HttpRouter.middleware(
    Effect.map(
      make(options),
      (meter) => (effect: Effect.Effect<HttpServerResponse.HttpServerResponse, any>) =>
        meter(effect) as Effect.Effect<HttpServerResponse.HttpServerResponse, any>
    ),
    { global: true }
  ) as Layer.Layer<never, never, HttpRouter.HttpRouter | Usage.Usage>
