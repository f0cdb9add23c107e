/**
 * The operator endpoints of circuit breakers: `GET /admin/circuit-breakers` and
 * `POST /admin/circuit-breakers/:name/{force-open|force-close|reset}`.
 *
 * The group carries no authentication: the server adds its admin middleware with `.middleware(...)`.
 *
 * @since 0.1.0
 */
import { HttpGroup, Problem } from "@ouroboros/kernel"
import { Effect, type Layer, Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import * as CircuitBreaker from "./CircuitBreaker.js"

const params = { name: Schema.String }

/**
 * The endpoints of the `circuitBreakers` group.
 *
 * @since 0.1.0
 * @category groups
 */
export class Group extends HttpApiGroup.make("circuitBreakers")
  .add(
    HttpApiEndpoint.get("list", "/admin/circuit-breakers", {
      success: Schema.Array(CircuitBreaker.Snapshot)
    }).annotate(OpenApi.Summary, "Every circuit breaker: state, counts, when it opened, remaining break")
  )
  .add(
    HttpApiEndpoint.post("forceOpen", "/admin/circuit-breakers/:name/force-open", {
      params,
      success: CircuitBreaker.Snapshot,
      error: Problem.NotFound
    }).annotate(OpenApi.Summary, "Open a breaker until it is reset or force-closed")
  )
  .add(
    HttpApiEndpoint.post("forceClose", "/admin/circuit-breakers/:name/force-close", {
      params,
      success: CircuitBreaker.Snapshot,
      error: Problem.NotFound
    }).annotate(OpenApi.Summary, "Disable a breaker: every call passes, nothing is counted")
  )
  .add(
    HttpApiEndpoint.post("reset", "/admin/circuit-breakers/:name/reset", {
      params,
      success: CircuitBreaker.Snapshot,
      error: Problem.NotFound
    }).annotate(OpenApi.Summary, "Close a breaker with empty counters and no backoff")
  )
  .annotate(OpenApi.Title, "Admin: circuit breakers")
{}

/**
 * The problem a handler answers when a dependency's pipeline gave up: a 503 whose `retryAfter` (seconds, the
 * `Retry-After` header) is the remaining break of an open breaker.
 *
 * @since 0.1.0
 * @category errors
 * @example
 * import { CircuitBreakerHttp } from "@ouroboros/circuit-breaker"
 * import { Effect } from "effect"
 * // embed(text).pipe(Effect.catchTags({ CircuitOpen: CircuitBreakerHttp.toProblem, Timeout: …, BulkheadFull: … }))
 */
export const toProblem = (
  error: CircuitBreaker.CircuitOpen | { readonly _tag: "Timeout" | "BulkheadFull"; readonly name: string }
): Effect.Effect<never, Problem.ServiceUnavailable> =>
  Effect.fail(
    error._tag === "CircuitOpen"
      ? new Problem.ServiceUnavailable({
        detail: `${error.name} is unavailable (circuit breaker open)`,
        retryAfter: Math.max(1, Math.ceil(error.retryAfter / 1000))
      })
      : error._tag === "Timeout"
      ? new Problem.ServiceUnavailable({ detail: `${error.name} did not answer in time` })
      : new Problem.ServiceUnavailable({ detail: `${error.name} is overloaded`, retryAfter: 1 })
  )

const notFound = (error: CircuitBreaker.BreakerNotFound) =>
  new Problem.NotFound({ detail: `no circuit breaker named ${error.name}` })

const handlersOf = (breakers: CircuitBreaker.CircuitBreaker["Service"]) => ({
  list: () => breakers.snapshot,
  forceOpen: ({ params }: { readonly params: { readonly name: string } }) =>
    breakers.forceOpen(params.name).pipe(Effect.mapError(notFound)),
  forceClose: ({ params }: { readonly params: { readonly name: string } }) =>
    breakers.forceClose(params.name).pipe(Effect.mapError(notFound)),
  reset: ({ params }: { readonly params: { readonly name: string } }) =>
    breakers.reset(params.name).pipe(Effect.mapError(notFound))
})

/**
 * The handlers as effects, to plug into `HttpApiBuilder.group(api, "circuitBreakers", …)` by hand when `layer` does
 * not fit (e.g. to audit operator actions).
 *
 * @since 0.1.0
 * @category handlers
 */
export const handle = {
  list: () => CircuitBreaker.CircuitBreaker.use((breakers) => handlersOf(breakers).list()),
  forceOpen: (request: { readonly params: { readonly name: string } }) =>
    CircuitBreaker.CircuitBreaker.use((breakers) => handlersOf(breakers).forceOpen(request)),
  forceClose: (request: { readonly params: { readonly name: string } }) =>
    CircuitBreaker.CircuitBreaker.use((breakers) => handlersOf(breakers).forceClose(request)),
  reset: (request: { readonly params: { readonly name: string } }) =>
    CircuitBreaker.CircuitBreaker.use((breakers) => handlersOf(breakers).reset(request))
} as const

/**
 * A standalone api with only the circuit breaker group.
 *
 * @since 0.1.0
 * @category apis
 */
export class Api extends HttpApi.make("circuitBreakers").add(Group) {}

/**
 * Implements the `circuitBreakers` group of any api that contains `Group` (with or without middleware added by
 * the server; that middleware is then a requirement of the layer).
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { CircuitBreakerHttp } from "@ouroboros/circuit-breaker"
 * import { HttpApi } from "effect/http-api"
 * class MyApi extends HttpApi.make("my-api").add(CircuitBreakerHttp.Group) {}
 * const CircuitBreakersLive = CircuitBreakerHttp.layer(MyApi)
 */
export const layer = HttpGroup.implement(Group, (handlers) =>
  // The registry is taken once, when the layer is built: the handlers themselves need nothing per request.
  CircuitBreaker.CircuitBreaker.useSync((breakers) => {
    const handler = handlersOf(breakers)
    return handlers
      .handle("list", handler.list)
      .handle("forceOpen", handler.forceOpen)
      .handle("forceClose", handler.forceClose)
      .handle("reset", handler.reset)
  }))

/**
 * The group of the standalone `Api`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerApi: Layer.Layer<
  HttpApiGroup.Service<"circuitBreakers", "circuitBreakers">,
  never,
  CircuitBreaker.CircuitBreaker
> = layer(Api)
