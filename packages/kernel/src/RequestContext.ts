/**
 * Request-scoped facts that every layer may read: the correlation id, the trace it belongs to, the API version.
 *
 * @since 0.1.0
 */
import { Context, Effect, Option } from "effect"
import { dual } from "effect/Function"

/**
 * The correlation id of the request the current fiber serves. Provided by the correlation middleware with
 * {@link withCorrelationId}; read by loggers, problem responses, audit records and outgoing HTTP clients.
 *
 * @since 0.1.0
 * @category references
 */
export const currentCorrelationId: Context.Reference<Option.Option<string>> = Context.Reference(
  "@ouroboros/kernel/RequestContext/currentCorrelationId",
  { defaultValue: () => Option.none<string>() }
)

/**
 * The correlation id of the current request, if any.
 *
 * @since 0.1.0
 * @category accessors
 */
export const correlationId: Effect.Effect<Option.Option<string>> = Effect.service(currentCorrelationId)

/**
 * Runs `effect` as part of the request with the given correlation id.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withCorrelationId: {
  (id: string): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(effect: Effect.Effect<A, E, R>, id: string): Effect.Effect<A, E, R>
} = dual(
  2,
  <A, E, R>(effect: Effect.Effect<A, E, R>, id: string): Effect.Effect<A, E, R> =>
    Effect.provideService(effect, currentCorrelationId, Option.some(id))
)

/**
 * What the edge of the service knows about a request before the handler runs.
 *
 * @since 0.1.0
 * @category models
 */
export interface RequestInfo {
  readonly correlationId: string
  readonly traceId: string | undefined
  readonly apiVersion: string | undefined
  readonly receivedAt: number
}

/**
 * The request context, provided per request by the HTTP middlewares.
 *
 * @since 0.1.0
 * @category services
 */
export class RequestContext extends Context.Service<RequestContext, RequestInfo>()(
  "@ouroboros/kernel/RequestContext"
) {}
