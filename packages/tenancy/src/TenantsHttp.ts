/**
 * The admin endpoints of tenants, their keys and their usage:
 *
 * - `GET /admin/tenants`, `POST /admin/tenants`, `GET` / `PATCH` / `DELETE /admin/tenants/:id`;
 * - `GET /admin/tenants/:id/keys` (ids and metadata only), `POST /admin/tenants/:id/keys` (the new key is in the
 *   response, once), `POST /admin/tenants/:id/keys/:keyId/rotate`, `DELETE /admin/tenants/:id/keys/:keyId`;
 * - `GET /admin/tenants/:id/usage?from=YYYY-MM-DD&to=YYYY-MM-DD` — JSON, or CSV with `Accept: text/csv` or
 *   `?format=csv`.
 *
 * The group carries its own security middleware, `TenancyHttp.TenantAdminAuthentication`: an `admin` may do
 * everything; a `tenant-admin` may read its own tenant, manage its keys and read its usage (another tenant is a 404),
 * and nothing else (403). Domain errors become problems here, and only here.
 *
 * @since 0.1.0
 */
import { HttpGroup, Problem, ResponseHeaders, TenantId, Text } from "@ouroboros/kernel"
import { Clock, Effect, type Layer, Schema } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { requireAdmin, scopeToTenant, TenantAdminAuthentication } from "./TenancyHttp.js"
import {
  ApiKeyInfo,
  DeletedTenant,
  IssuedKey,
  KeyInput,
  RotateInput,
  Tenant,
  TenantInput,
  TenantPatch
} from "./Tenant.js"
import * as Tenants from "./Tenants.js"
import * as Usage from "./Usage.js"

const tenantParams = { id: TenantId.TenantId }
const keyParams = { id: TenantId.TenantId, keyId: Text.Storable }

/**
 * A tenant's usage over a range of days.
 *
 * @since 0.1.0
 * @category schemas
 */
export const UsageReport = Schema.Struct({
  tenantId: TenantId.TenantId,
  from: Schema.String,
  to: Schema.String,
  days: Schema.Array(Usage.DailyUsage),
  totals: Schema.Struct({
    requests: Schema.Finite,
    embeddedCharacters: Schema.Finite,
    llmTokens: Schema.Finite,
    storedBytes: Schema.Finite
  })
}).annotate({ identifier: "UsageReport" })

/**
 * @since 0.1.0
 * @category models
 */
export type UsageReport = typeof UsageReport.Type

const Csv = Schema.String.pipe(HttpApiSchema.asText({ contentType: "text/csv" }))

/**
 * The endpoints of the `tenants` group.
 *
 * @since 0.1.0
 * @category groups
 */
export class Group extends HttpApiGroup.make("tenants")
  .add(
    HttpApiEndpoint.get("list", "/admin/tenants", {
      success: Schema.Array(Tenant),
      error: Problem.Forbidden
    }).annotate(OpenApi.Summary, "Every tenant (admin)")
  )
  .add(
    HttpApiEndpoint.post("create", "/admin/tenants", {
      payload: TenantInput,
      success: Tenant.pipe(HttpApiSchema.status(201)),
      error: [Problem.Conflict, Problem.Forbidden]
    }).annotate(OpenApi.Summary, "Create a tenant (admin); its first key is created with POST /admin/tenants/:id/keys")
  )
  .add(
    HttpApiEndpoint.get("get", "/admin/tenants/:id", {
      params: tenantParams,
      success: Tenant,
      error: Problem.NotFound
    }).annotate(OpenApi.Summary, "A tenant (admin, or its tenant-admin)")
  )
  .add(
    HttpApiEndpoint.patch("update", "/admin/tenants/:id", {
      params: tenantParams,
      payload: TenantPatch,
      success: Tenant,
      error: [Problem.NotFound, Problem.Forbidden]
    }).annotate(OpenApi.Summary, "Change a tenant's name, tier, quotas, rate-limit tier, model or collection (admin)")
  )
  .add(
    HttpApiEndpoint.delete("delete", "/admin/tenants/:id", {
      params: tenantParams,
      success: DeletedTenant,
      error: [Problem.NotFound, Problem.Forbidden]
    }).annotate(OpenApi.Summary, "Delete a tenant, its keys and its data (admin)")
  )
  .add(
    HttpApiEndpoint.get("listKeys", "/admin/tenants/:id/keys", {
      params: tenantParams,
      success: Schema.Array(ApiKeyInfo),
      error: Problem.NotFound
    }).annotate(OpenApi.Summary, "A tenant's keys: ids and metadata, never the keys")
  )
  .add(
    HttpApiEndpoint.post("createKey", "/admin/tenants/:id/keys", {
      params: tenantParams,
      payload: KeyInput,
      success: IssuedKey.pipe(HttpApiSchema.status(201)),
      error: Problem.NotFound
    }).annotate(OpenApi.Summary, "Create a key; the response shows it once")
  )
  .add(
    HttpApiEndpoint.post("rotateKey", "/admin/tenants/:id/keys/:keyId/rotate", {
      params: keyParams,
      payload: RotateInput,
      success: IssuedKey.pipe(HttpApiSchema.status(201)),
      error: [Problem.NotFound, Problem.Conflict, Problem.UnprocessableEntity]
    }).annotate(OpenApi.Summary, "Replace a key; the old one works until its grace period ends")
  )
  .add(
    HttpApiEndpoint.delete("revokeKey", "/admin/tenants/:id/keys/:keyId", {
      params: keyParams,
      success: ApiKeyInfo,
      error: [Problem.NotFound, Problem.Conflict]
    }).annotate(OpenApi.Summary, "Revoke a key at once")
  )
  .add(
    HttpApiEndpoint.get("usage", "/admin/tenants/:id/usage", {
      params: tenantParams,
      query: {
        from: Schema.optionalKey(Schema.String),
        to: Schema.optionalKey(Schema.String),
        format: Schema.optionalKey(Schema.Literals(["json", "csv"]))
      },
      success: [UsageReport, Csv],
      error: [Problem.NotFound, Problem.BadRequest]
    }).annotate(
      OpenApi.Summary,
      "Usage per day (default: the last 30 days); CSV with Accept: text/csv or ?format=csv"
    )
  )
  .middleware(TenantAdminAuthentication)
  .annotate(OpenApi.Title, "Admin: tenants")
{}

const notFound = (error: { readonly message: string }) => new Problem.NotFound({ detail: error.message })

const dayOf = (millis: number) => new Date(millis).toISOString().slice(0, 10)

const wantsCsv = (format: string | undefined, accept: string | undefined) =>
  format === "csv" || (format === undefined && accept !== undefined && /\btext\/csv\b/i.test(accept))

// A response that carries a key must not be kept by caches on the way.
const noStore = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.tap(effect, () => ResponseHeaders.set("cache-control", "no-store"))

/**
 * Implements the group for any api that contains it, on the `Tenants` and `Usage` services.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { TenantsHttp } from "@ouroboros/tenancy"
 * import { HttpApi } from "effect/http-api"
 * class Api extends HttpApi.make("api").add(TenantsHttp.Group) {}
 * const TenantsLive = TenantsHttp.layer(Api) // needs Tenants, Usage and TenantAdminAuthentication
 */
export const layer = HttpGroup.implement(Group, (handlers) =>
  Effect.gen(function*() {
    const tenants = yield* Tenants.Tenants
    const usage = yield* Usage.Usage
    return handlers
      .handle("list", () => Effect.andThen(requireAdmin, tenants.list))
      .handle("create", ({ payload }) =>
        Effect.andThen(
          requireAdmin,
          tenants.create(payload).pipe(Effect.mapError((error) => new Problem.Conflict({ detail: error.message })))
        ))
      .handle("get", ({ params }) =>
        Effect.andThen(scopeToTenant(params.id), tenants.get(params.id).pipe(Effect.mapError(notFound))))
      .handle("update", ({ params, payload }) =>
        Effect.andThen(requireAdmin, tenants.update(params.id, payload).pipe(Effect.mapError(notFound))))
      .handle("delete", ({ params }) =>
        Effect.andThen(requireAdmin, tenants.delete(params.id).pipe(Effect.mapError(notFound))))
      .handle("listKeys", ({ params }) =>
        Effect.andThen(scopeToTenant(params.id), tenants.keys.list(params.id).pipe(Effect.mapError(notFound))))
      .handle("createKey", ({ params, payload }) =>
        Effect.andThen(
          scopeToTenant(params.id),
          tenants.keys.create(params.id, payload).pipe(Effect.mapError(notFound), noStore)
        ))
      .handle("rotateKey", ({ params, payload }) =>
        Effect.andThen(
          scopeToTenant(params.id),
          tenants.keys.rotate(params.id, params.keyId, payload).pipe(
            Effect.mapError((error) =>
              error._tag === "ApiKeyReadOnly"
                ? new Problem.Conflict({ detail: error.message })
                : error._tag === "ApiKeyNotUsable"
                ? new Problem.UnprocessableEntity({ detail: error.message })
                : notFound(error)
            ),
            noStore
          )
        ))
      .handle("revokeKey", ({ params }) =>
        Effect.andThen(
          scopeToTenant(params.id),
          tenants.keys.revoke(params.id, params.keyId).pipe(
            Effect.mapError((error) =>
              error._tag === "ApiKeyReadOnly" ? new Problem.Conflict({ detail: error.message }) : notFound(error)
            )
          )
        ))
      .handle("usage", ({ params, query }) =>
        Effect.gen(function*() {
          yield* scopeToTenant(params.id)
          yield* tenants.get(params.id).pipe(Effect.mapError(notFound))
          const now = yield* Clock.currentTimeMillis
          const to = query.to ?? dayOf(now)
          const from = query.from ?? dayOf(Date.parse(`${to}T00:00:00Z`) - 29 * 86_400_000)
          if (Usage.daysBetween(from, to) === undefined) {
            return yield* new Problem.BadRequest({
              detail: "from and to are days (YYYY-MM-DD), from not after to, at most 366 days apart"
            })
          }
          const days = yield* usage.daily(params.id, from, to).pipe(Effect.orDie)
          const request = yield* HttpServerRequest.HttpServerRequest
          if (wantsCsv(query.format, request.headers["accept"])) {
            return HttpServerResponse.text(Usage.toCsv(days), {
              contentType: "text/csv; charset=utf-8",
              headers: { "content-disposition": `attachment; filename="usage-${params.id}-${from}-${to}.csv"` }
            })
          }
          const totals = { requests: 0, embeddedCharacters: 0, llmTokens: 0, storedBytes: 0 }
          for (const day of days) {
            totals.requests += day.requests
            totals.embeddedCharacters += day.embeddedCharacters
            totals.llmTokens += day.llmTokens
            totals.storedBytes += day.storedBytes
          }
          return { tenantId: params.id, from, to, days, totals }
        }))
  }))

/**
 * A standalone api with only this group.
 *
 * @since 0.1.0
 * @category apis
 */
export class Api extends HttpApi.make("tenancy").add(Group) {}

/**
 * The group of the standalone {@link Api}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerApi: Layer.Layer<
  HttpApiGroup.Service<"tenancy", "tenants">,
  never,
  Tenants.Tenants | Usage.Usage | TenantAdminAuthentication
> = layer(Api)
