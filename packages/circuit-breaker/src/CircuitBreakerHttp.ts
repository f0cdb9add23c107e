/**
 * The operator endpoints of circuit breakers: `GET /admin/circuit-breakers` and
 * `POST /admin/circuit-breakers/:name/{force-open|force-close|reset}` with an optional body `{ "reason": "…" }`.
 *
 * The group carries no authentication: the server adds its admin middleware with `.middleware(...)`. Every operator
 * action, with its reason and outcome, is handed to the {@link BreakerAudit} hook (by default nothing is recorded; a
 * server with an audit log provides it).
 *
 * @since 0.1.0
 */
import { HttpGroup, Problem } from "@ouroboros/kernel"
import { Context, Effect, Layer, Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import * as CircuitBreaker from "./CircuitBreaker.js"

const params = { name: Schema.String }

/**
 * The optional body of an operator action: why it was taken (recorded by the {@link BreakerAudit} hook). An empty body
 * is the same as `{}`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const OperatorRequest = Schema.Struct({
  reason: Schema.optionalKey(
    Schema.String.check(Schema.isMaxLength(2048, { message: "the reason must be at most 2048 characters" }))
  )
}).annotate({ identifier: "CircuitBreakerOperatorRequest" })

/**
 * @since 0.1.0
 * @category models
 */
export type OperatorRequest = typeof OperatorRequest.Type

// Two schemas rather than one union: with `Schema.Null` among them, an empty body decodes as `null`.
const payload = [OperatorRequest, Schema.Null] as const

/**
 * An operator action as the {@link BreakerAudit} hook receives it: which, on which breaker, why, and how it ended
 * (`failure` when no breaker has the name; the state after it otherwise).
 *
 * @since 0.1.0
 * @category models
 */
export interface OperatorAction {
  readonly action: "force-open" | "force-close" | "reset"
  readonly name: string
  readonly reason: string | undefined
  readonly outcome: "success" | "failure"
  readonly state: CircuitBreaker.Snapshot["state"] | undefined
}

/**
 * The shape of the {@link BreakerAudit} hook.
 *
 * @since 0.1.0
 * @category models
 */
export interface BreakerAuditService {
  /**
   * Records an operator action before its answer is sent; it runs in the request's fiber (the caller's principal is in
   * its context). Cannot fail: an implementation handles its own failures (or dies, which answers 500).
   */
  readonly record: (action: OperatorAction) => Effect.Effect<void>
}

/**
 * The hook that records operator actions on breakers. {@link layer} reads it when it is built; the default records
 * nothing.
 *
 * @since 0.1.0
 * @category references
 * @example
 * import { CircuitBreakerHttp } from "@ouroboros/circuit-breaker"
 * import { Effect } from "effect"
 * const Audit = CircuitBreakerHttp.layerAudit({ record: (action) => Effect.logInfo("breaker operator action", action) })
 */
export const BreakerAudit = Context.Reference<BreakerAuditService>("@ouroboros/circuit-breaker/BreakerAudit", {
  defaultValue: () => ({ record: () => Effect.void })
})

/**
 * Provides an implementation of the {@link BreakerAudit} hook.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerAudit = (service: BreakerAuditService): Layer.Layer<never> => Layer.succeed(BreakerAudit, service)

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
      payload,
      success: CircuitBreaker.Snapshot,
      error: Problem.NotFound
    }).annotate(OpenApi.Summary, "Open a breaker until it is reset or force-closed")
  )
  .add(
    HttpApiEndpoint.post("forceClose", "/admin/circuit-breakers/:name/force-close", {
      params,
      payload,
      success: CircuitBreaker.Snapshot,
      error: Problem.NotFound
    }).annotate(OpenApi.Summary, "Disable a breaker: every call passes, nothing is counted")
  )
  .add(
    HttpApiEndpoint.post("reset", "/admin/circuit-breakers/:name/reset", {
      params,
      payload,
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
 * import { CircuitBreakerHttp, Resilience } from "@ouroboros/circuit-breaker"
 * import { Effect } from "effect"
 *
 * declare const embed: (text: string) => Effect.Effect<Float32Array, Resilience.ResilienceError>
 * // in a handler: an open breaker, a timeout or a full bulkhead is a 503 problem
 * const handled = embed("hello").pipe(Effect.catchTags({
 *   CircuitOpen: CircuitBreakerHttp.toProblem,
 *   Timeout: CircuitBreakerHttp.toProblem,
 *   BulkheadFull: CircuitBreakerHttp.toProblem
 * }))
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

type OperatorInput = {
  readonly params: { readonly name: string }
  readonly payload?: OperatorRequest | null | undefined
}

const handlersOf = (breakers: CircuitBreaker.CircuitBreaker["Service"], audit: BreakerAuditService) => {
  const operator = (
    action: OperatorAction["action"],
    run: (name: string) => Effect.Effect<CircuitBreaker.Snapshot, CircuitBreaker.BreakerNotFound>
  ) =>
  ({ params, payload }: OperatorInput) =>
    run(params.name).pipe(
      Effect.onExit((exit) =>
        audit.record({
          action,
          name: params.name,
          reason: payload?.reason,
          outcome: exit._tag === "Success" ? "success" : "failure",
          state: exit._tag === "Success" ? exit.value.state : undefined
        })
      ),
      Effect.mapError(notFound)
    )
  return {
    list: () => breakers.snapshot,
    forceOpen: operator("force-open", breakers.forceOpen),
    forceClose: operator("force-close", breakers.forceClose),
    reset: operator("reset", breakers.reset)
  }
}

const noAudit: BreakerAuditService = { record: () => Effect.void }

const withHandlers = <A, E>(
  f: (handler: ReturnType<typeof handlersOf>) => Effect.Effect<A, E>
): Effect.Effect<A, E, CircuitBreaker.CircuitBreaker> =>
  Effect.gen(function*() {
    return yield* f(handlersOf(yield* CircuitBreaker.CircuitBreaker, yield* BreakerAudit))
  })

/**
 * The handlers as effects, to plug into `HttpApiBuilder.group(api, "circuitBreakers", …)` by hand when `layer` does
 * not fit (e.g. to audit operator actions).
 *
 * @since 0.1.0
 * @category handlers
 */
export const handle = {
  list: () => CircuitBreaker.CircuitBreaker.use((breakers) => handlersOf(breakers, noAudit).list()),
  forceOpen: (request: OperatorInput) => withHandlers((handler) => handler.forceOpen(request)),
  forceClose: (request: OperatorInput) => withHandlers((handler) => handler.forceClose(request)),
  reset: (request: OperatorInput) => withHandlers((handler) => handler.reset(request))
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
  // The registry and the audit hook are taken once, when the layer is built: the handlers need nothing per request.
  Effect.gen(function*() {
    const handler = handlersOf(yield* CircuitBreaker.CircuitBreaker, yield* BreakerAudit)
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
