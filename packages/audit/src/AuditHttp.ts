/**
 * The admin endpoints of the audit log, as an `HttpApiGroup` named `audit`:
 *
 * - `GET /admin/audit` queries entries, newest first (`tenant`, `actor`, `type`, `resourceType`, `resourceId`,
 *   `correlationId`, `from`, `to`, `cursor`, `limit`) → `{ entries, nextCursor? }`
 * - `GET /admin/audit/verify` recomputes the log and names the first bad entry → the verification report
 * - `GET /admin/audit/checkpoint` → the signed checkpoint as `text/plain` (a C2SP signed note)
 * - `GET /admin/audit/proof?id=…` (or `index=…`, optionally `size=…`) → an inclusion proof;
 *   `GET /admin/audit/proof?from=…&to=…` → a consistency proof
 *
 * The group does not authenticate: the server adds its own middleware to it. What the group asks of the server is
 * the {@link Scope} middleware, which provides the caller's {@link TenantScope}: a tenant admin's scope limits queries
 * and proofs to its tenant; an admin's is unrestricted. {@link layerScopeUnrestricted} serves a server where only
 * admins reach the group. Domain errors become the kernel's problems here: 400 bad cursor or proof request, 404 unknown
 * entry, 503 when the stored log does not match its last checkpoint.
 *
 * @since 0.1.0
 */
import { HttpGroup, Problem } from "@ouroboros/kernel"
import { Context, Effect, Layer, Schema } from "effect"
import type { HttpRouter } from "effect/http"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, HttpApiSchema, OpenApi } from "effect/http-api"
import * as AuditEvent from "./AuditEvent.js"
import * as AuditLog from "./AuditLog.js"
import * as Verifier from "./Verifier.js"

/**
 * The tenant the caller may see: `undefined` for all of them.
 *
 * @since 0.1.0
 * @category services
 */
export class TenantScope extends Context.Service<TenantScope, {
  readonly tenantId: string | undefined
}>()("@ouroboros/audit/AuditHttp/TenantScope") {}

/**
 * The middleware the group asks the server for: it provides the caller's {@link TenantScope} (e.g. from the
 * principal: `tenant-admin` → its tenant, `admin` → none) and may refuse with a 403.
 *
 * @since 0.1.0
 * @category middleware
 */
export class Scope extends HttpApiMiddleware.Service<Scope, { provides: TenantScope }>()(
  "@ouroboros/audit/AuditHttp/Scope",
  { error: Problem.Forbidden }
) {}

/**
 * The {@link Scope} middleware from an effect run in the request (it may read the request; a `Forbidden` refuses it).
 * A server whose principal comes from its own middleware implements {@link Scope} directly instead, reading the
 * principal where that middleware provides it (see the README).
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { AuditHttp } from "@ouroboros/audit"
 * import { Effect } from "effect"
 * import { HttpServerRequest } from "effect/http"
 * const ScopeLive = AuditHttp.layerScope(
 *   Effect.map(Effect.service(HttpServerRequest.HttpServerRequest), (request) => request.headers["x-tenant"])
 * )
 */
export const layerScope = (
  tenantOf: Effect.Effect<string | undefined, Problem.Forbidden, HttpRouter.Provided>
): Layer.Layer<Scope> =>
  Layer.succeed(
    Scope,
    (httpEffect) => Effect.flatMap(tenantOf, (tenantId) => Effect.provideService(httpEffect, TenantScope, { tenantId }))
  )

/**
 * The {@link Scope} middleware for a server where only admins reach the group: every caller sees every tenant.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerScopeUnrestricted: Layer.Layer<Scope> = Layer.succeed(
  Scope,
  (httpEffect) => Effect.provideService(httpEffect, TenantScope, { tenantId: undefined })
)

const Count = Schema.FiniteFromString.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0))

/**
 * The query parameters of `GET /admin/audit`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const QueryParams = Schema.Struct({
  tenant: Schema.optionalKey(Schema.String),
  actor: Schema.optionalKey(Schema.String),
  type: Schema.optionalKey(AuditEvent.EventType),
  resourceType: Schema.optionalKey(Schema.String),
  resourceId: Schema.optionalKey(Schema.String),
  correlationId: Schema.optionalKey(Schema.String),
  from: Schema.optionalKey(Schema.DateFromString),
  to: Schema.optionalKey(Schema.DateFromString),
  cursor: Schema.optionalKey(Schema.String),
  limit: Schema.optionalKey(Count.check(Schema.isBetween({ minimum: 1, maximum: 1000 })))
})

/**
 * The query parameters of `GET /admin/audit/proof`: `id` or `index` (and `size`) for inclusion, `from` and `to` for
 * consistency.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ProofParams = Schema.Struct({
  id: Schema.optionalKey(Schema.String),
  index: Schema.optionalKey(Count),
  size: Schema.optionalKey(Count),
  from: Schema.optionalKey(Count),
  to: Schema.optionalKey(Count)
})

/**
 * The endpoints of the `audit` group.
 *
 * @since 0.1.0
 * @category groups
 */
export class Group extends HttpApiGroup.make("audit")
  .add(
    HttpApiEndpoint.get("query", "/admin/audit", {
      query: QueryParams,
      success: AuditLog.Page,
      error: [Problem.BadRequest, Problem.ServiceUnavailable]
    }).annotate(
      OpenApi.Summary,
      "Audit entries, newest first, by tenant, actor, type, resource, time and correlation id"
    )
  )
  .add(
    HttpApiEndpoint.get("verify", "/admin/audit/verify", {
      success: Verifier.VerifyResult,
      error: Problem.ServiceUnavailable
    }).annotate(OpenApi.Summary, "Recompute the log and its checkpoints; names the first entry that is not as signed")
  )
  .add(
    HttpApiEndpoint.get("checkpoint", "/admin/audit/checkpoint", {
      success: Schema.String.pipe(HttpApiSchema.asText({ contentType: "text/plain; charset=utf-8" })),
      error: Problem.ServiceUnavailable
    }).annotate(OpenApi.Summary, "The signed checkpoint of the log (C2SP tlog-checkpoint, signed note)")
  )
  .add(
    HttpApiEndpoint.get("proof", "/admin/audit/proof", {
      query: ProofParams,
      success: Schema.Union([AuditLog.InclusionProof, AuditLog.ConsistencyProof]),
      error: [Problem.BadRequest, Problem.NotFound, Problem.ServiceUnavailable]
    }).annotate(OpenApi.Summary, "An inclusion proof (id or index) or a consistency proof (from, to), RFC 9162")
  )
  .middleware(Scope)
  .annotate(OpenApi.Title, "Admin: audit log")
{}

type ProblemOf<E> = E extends AuditLog.EntryNotFound ? Problem.NotFound
  : E extends AuditLog.InvalidCursor | AuditLog.InvalidProofRequest | AuditLog.InvalidEvent ? Problem.BadRequest
  : Problem.ServiceUnavailable

const toProblem = <E extends AuditLog.AuditLogError>(error: E): ProblemOf<E> => toProblemUntyped(error) as ProblemOf<E>

const toProblemUntyped = (error: AuditLog.AuditLogError) => {
  switch (error._tag) {
    case "EntryNotFound":
      return new Problem.NotFound({ detail: error.detail })
    case "InvalidCursor":
    case "InvalidProofRequest":
    case "InvalidEvent":
      return new Problem.BadRequest({ detail: error.detail })
    case "LogInconsistent":
    case "AuditUnavailable":
      return new Problem.ServiceUnavailable({ detail: error.detail })
  }
}

const invalidDate = (date: Date | undefined) => date !== undefined && Number.isNaN(date.getTime())

/**
 * The handlers, to plug into `HttpApiBuilder.group(api, "audit", …)` by hand.
 *
 * @since 0.1.0
 * @category handlers
 */
export const handle = {
  query: ({ query }: { readonly query: typeof QueryParams.Type }) =>
    Effect.gen(function*() {
      if (invalidDate(query.from) || invalidDate(query.to)) {
        return yield* new Problem.BadRequest({ detail: "from and to are ISO 8601 instants" })
      }
      const scope = yield* TenantScope
      const audit = yield* AuditLog.AuditLog
      return yield* audit.query({
        tenantId: query.tenant,
        actor: query.actor,
        type: query.type,
        resourceType: query.resourceType,
        resourceId: query.resourceId,
        correlationId: query.correlationId,
        from: query.from,
        to: query.to,
        cursor: query.cursor,
        limit: query.limit
      }, { tenantId: scope.tenantId }).pipe(Effect.mapError(toProblem))
    }),
  verify: () => AuditLog.AuditLog.use((audit) => audit.verify()).pipe(Effect.mapError(toProblem)),
  checkpoint: () =>
    AuditLog.AuditLog.use((audit) => audit.checkpoint).pipe(
      Effect.map((checkpoint) => checkpoint.note),
      Effect.mapError(toProblem)
    ),
  proof: ({ query }: { readonly query: typeof ProofParams.Type }) =>
    Effect.gen(function*() {
      const scope = yield* TenantScope
      const audit = yield* AuditLog.AuditLog
      if (query.from !== undefined || query.to !== undefined) {
        if (query.id !== undefined || query.index !== undefined) {
          return yield* new Problem.BadRequest({ detail: "ask for inclusion (id or index) or consistency (from, to)" })
        }
        // Consistency proofs say nothing about any tenant's entries: sizes and hashes only.
        return yield* audit.proveConsistency(query.from ?? 0, query.to).pipe(Effect.mapError(toProblem))
      }
      return yield* audit.proveInclusion(
        { id: query.id, index: query.index, size: query.size },
        { tenantId: scope.tenantId }
      ).pipe(Effect.mapError(toProblem))
    })
} as const

/**
 * The handlers of the `audit` group for any api that contains it (with whatever middleware the api adds).
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { AuditHttp } from "@ouroboros/audit"
 * import { HttpApi } from "effect/http-api"
 * class MyApi extends HttpApi.make("my").add(AuditHttp.Group) {}
 * const AuditLive = AuditHttp.layer(MyApi)
 */
export const layer = HttpGroup.implement(Group, (handlers) =>
  handlers
    .handle("query", handle.query)
    .handle("verify", handle.verify)
    .handle("checkpoint", handle.checkpoint)
    .handle("proof", handle.proof))

/**
 * A standalone api with only the audit group.
 *
 * @since 0.1.0
 * @category apis
 */
export class Api extends HttpApi.make("audit").add(Group) {}

/**
 * The group of the standalone `Api`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerApi = layer(Api)
