/**
 * The operator endpoints of circuit breakers: `GET /admin/circuit-breakers` and
 * `POST /admin/circuit-breakers/:name/{force-open|force-close|reset}`.
 *
 * The group carries no authentication: the server adds its admin middleware with `.middleware(...)`.
 *
 * @since 0.1.0
 */
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Problem } from "@ouroboros/kernel"
import { Effect, type Layer, Schema } from "effect"
import * as CircuitBreaker from "./CircuitBreaker.js"

const NamePath = Schema.Struct({ name: Schema.String })

/**
 * The endpoints of the `circuitBreakers` group.
 *
 * @since 0.1.0
 * @category groups
 */
export class Group extends HttpApiGroup.make("circuitBreakers")
  .add(
    HttpApiEndpoint.get("list", "/admin/circuit-breakers")
      .addSuccess(Schema.Array(CircuitBreaker.Snapshot))
      .annotate(OpenApi.Summary, "Every circuit breaker: state, counts, when it opened, remaining break")
  )
  .add(
    HttpApiEndpoint.post("forceOpen", "/admin/circuit-breakers/:name/force-open")
      .setPath(NamePath)
      .addSuccess(CircuitBreaker.Snapshot)
      .addError(Problem.NotFound)
      .annotate(OpenApi.Summary, "Open a breaker until it is reset or force-closed")
  )
  .add(
    HttpApiEndpoint.post("forceClose", "/admin/circuit-breakers/:name/force-close")
      .setPath(NamePath)
      .addSuccess(CircuitBreaker.Snapshot)
      .addError(Problem.NotFound)
      .annotate(OpenApi.Summary, "Disable a breaker: every call passes, nothing is counted")
  )
  .add(
    HttpApiEndpoint.post("reset", "/admin/circuit-breakers/:name/reset")
      .setPath(NamePath)
      .addSuccess(CircuitBreaker.Snapshot)
      .addError(Problem.NotFound)
      .annotate(OpenApi.Summary, "Close a breaker with empty counters and no backoff")
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

/**
 * The handlers as effects, to plug into `HttpApiBuilder.group(api, "circuitBreakers", …)` by hand when `layer` does
 * not fit (e.g. to audit operator actions).
 *
 * @since 0.1.0
 * @category handlers
 */
export const handle = {
  list: () => Effect.flatMap(CircuitBreaker.CircuitBreaker, (breakers) => breakers.snapshot),
  forceOpen: ({ path }: { readonly path: { readonly name: string } }) =>
    Effect.flatMap(CircuitBreaker.CircuitBreaker, (breakers) => breakers.forceOpen(path.name)).pipe(
      Effect.mapError(notFound)
    ),
  forceClose: ({ path }: { readonly path: { readonly name: string } }) =>
    Effect.flatMap(CircuitBreaker.CircuitBreaker, (breakers) => breakers.forceClose(path.name)).pipe(
      Effect.mapError(notFound)
    ),
  reset: ({ path }: { readonly path: { readonly name: string } }) =>
    Effect.flatMap(CircuitBreaker.CircuitBreaker, (breakers) => breakers.reset(path.name)).pipe(
      Effect.mapError(notFound)
    )
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
 * the server).
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { HttpApi } from "@effect/platform"
 * import { CircuitBreakerHttp } from "@ouroboros/circuit-breaker"
 * class MyApi extends HttpApi.make("my-api").add(CircuitBreakerHttp.Group) {}
 * const CircuitBreakersLive = CircuitBreakerHttp.layer(MyApi)
 */
export const layer = <ApiId extends string, Groups extends HttpApiGroup.HttpApiGroup.Any, E, R>(
  api: HttpApi.HttpApi<ApiId, Groups, E, R> & ("circuitBreakers" extends HttpApiGroup.HttpApiGroup.Name<Groups> ? unknown
    : { readonly "the api must contain CircuitBreakerHttp.Group": never })
): Layer.Layer<
  HttpApiGroup.ApiGroup<ApiId, "circuitBreakers">,
  never,
  CircuitBreaker.CircuitBreaker | HttpApiGroup.HttpApiGroup.MiddlewareWithName<Groups, "circuitBreakers">
> =>
  // The handlers' success and error types are those of `Group`; middleware added by the server does not change them.
  HttpApiBuilder.group(
    api as unknown as HttpApi.HttpApi<ApiId, typeof Group>,
    "circuitBreakers",
    (handlers) =>
      handlers
        .handle("list", handle.list)
        .handle("forceOpen", handle.forceOpen)
        .handle("forceClose", handle.forceClose)
        .handle("reset", handle.reset)
  )

/**
 * The group of the standalone `Api`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerApi: Layer.Layer<
  HttpApiGroup.ApiGroup<"circuitBreakers", "circuitBreakers">,
  never,
  CircuitBreaker.CircuitBreaker
> = layer(Api)
