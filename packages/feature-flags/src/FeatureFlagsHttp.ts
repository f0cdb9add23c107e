/**
 * The operator endpoints of feature flags:
 *
 * - `GET /admin/flags`, `GET /admin/flags/:key`: flags with their source, kill switch and tenant overrides;
 * - `PUT /admin/flags/:key` (a flag in flagd's format, validated like a file), `DELETE /admin/flags/:key`;
 * - `POST /admin/flags/:key/kill` (`{ reason, variant? }`), `DELETE /admin/flags/:key/kill` (release);
 * - `GET /admin/flags/:key/tenants`, `PUT` / `DELETE /admin/flags/:key/tenants/:tenantId` (`{ variant, reason? }`).
 *
 * The group carries no authentication: the server adds its admin middleware with `.middleware(...)`. Handlers act
 * in the request's {@link AdminScope} ({@link CurrentAdminScope}): an actor (for kill switches, overrides and the
 * audit hook) and, for a tenant administrator, a tenant. The server fills it from the principal by adding
 * {@link ScopeFromPrincipal} under its authentication middleware. A scoped caller sees only its tenant's overrides,
 * sets only those (another tenant's are a 404) and cannot change definitions or kill switches (403).
 *
 * Domain errors become kernel problems here: unknown flag 404, invalid definition or variant 422, read-only source
 * or a variant still in use 409, decode failures 400 (kernel's `ProblemHttp`).
 *
 * @since 0.1.0
 */
import { HttpGroup, Principal, Problem, TenantId, Text } from "@ouroboros/kernel"
import { Context, Effect, Layer, Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, HttpApiSchema, OpenApi } from "effect/http-api"
import * as FeatureFlags from "./FeatureFlags.js"
import * as FlagDefinition from "./FlagDefinition.js"
import * as FlagProvider from "./FlagProvider.js"

// -----------------------------------------------------------------------------
// scope
// -----------------------------------------------------------------------------

/**
 * Who calls the admin endpoints: the actor recorded with changes, and the tenant a tenant administrator is confined
 * to (none for a full administrator).
 *
 * @since 0.1.0
 * @category models
 */
export interface AdminScope {
  readonly actor: string
  readonly tenantId?: TenantId.TenantId | undefined
}

/**
 * The scope of the current request. The default is an unconfined administrator named `admin`: the group
 * authenticates nothing, so a server guards it and provides the caller's scope (see {@link ScopeFromPrincipal}).
 *
 * @since 0.1.0
 * @category references
 */
export const CurrentAdminScope = Context.Reference<AdminScope>("@ouroboros/feature-flags/FeatureFlagsHttp/AdminScope", {
  defaultValue: () => ({ actor: "admin" })
})

/**
 * The scope of an authenticated principal: an `admin` acts everywhere, anyone else only in its tenant.
 *
 * @since 0.1.0
 * @category scope
 */
export const scopeOf = (principal: Principal.Principal): AdminScope =>
  principal.hasRole("admin") ? { actor: principal.subject } : { actor: principal.subject, tenantId: principal.tenantId }

/**
 * A middleware that sets {@link CurrentAdminScope} from kernel's `CurrentPrincipal`: add it to the group before the
 * authentication middleware that provides the principal (middleware added later runs first), and provide
 * {@link layerScopeFromPrincipal}.
 *
 * @since 0.1.0
 * @category middleware
 * @example
 * import { FeatureFlagsHttp } from "@ouroboros/feature-flags"
 * import { Principal } from "@ouroboros/kernel"
 * import { Layer } from "effect"
 * import { HttpApi, HttpApiBuilder, HttpApiMiddleware } from "effect/http-api"
 *
 * // the server's authentication of administrators: a middleware that provides the caller
 * class AdminAuthentication extends HttpApiMiddleware.Service<AdminAuthentication, {
 *   provides: Principal.CurrentPrincipal
 * }>()("app/AdminAuthentication") {}
 * class AdminApi extends HttpApi.make("admin").add(
 *   FeatureFlagsHttp.Group.middleware(FeatureFlagsHttp.ScopeFromPrincipal).middleware(AdminAuthentication)
 * ) {}
 * const AdminLive = HttpApiBuilder.layer(AdminApi).pipe(
 *   Layer.provide(FeatureFlagsHttp.layer(AdminApi)),
 *   Layer.provide(FeatureFlagsHttp.layerScopeFromPrincipal)
 * ) // needs FeatureFlags and the layer of AdminAuthentication
 */
export class ScopeFromPrincipal extends HttpApiMiddleware.Service<ScopeFromPrincipal, {
  requires: Principal.CurrentPrincipal
}>()("@ouroboros/feature-flags/ScopeFromPrincipal") {}

/**
 * The implementation of {@link ScopeFromPrincipal}.
 *
 * @since 0.1.0
 * @category middleware
 */
export const layerScopeFromPrincipal: Layer.Layer<ScopeFromPrincipal> = Layer.succeed(
  ScopeFromPrincipal,
  (effect) =>
    Effect.flatMap(
      Effect.service(Principal.CurrentPrincipal),
      (principal) => Effect.provideService(effect, CurrentAdminScope, scopeOf(principal))
    )
)

// -----------------------------------------------------------------------------
// group
// -----------------------------------------------------------------------------

const key = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(256), Text.isStorable)
const keyParams = { key }
const overrideParams = { key, tenantId: TenantId.TenantId }
const reasonQuery = { reason: Schema.optionalKey(Text.Storable) }

/**
 * The body of `POST /admin/flags/:key/kill`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const KillRequest = Schema.Struct({
  reason: Schema.String.check(Schema.isMinLength(1), Text.isStorable).annotate({
    description: "Why the flag is killed (audited)"
  }),
  variant: Schema.optionalKey(
    Text.Storable.annotate({
      description: "The variant to serve; default: the false variant of a boolean flag, else the default variant"
    })
  )
}).annotate({ identifier: "FlagKillRequest" })

/**
 * The body of `PUT /admin/flags/:key/tenants/:tenantId`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const OverrideRequest = Schema.Struct({
  variant: Text.Storable,
  reason: Schema.optionalKey(Text.Storable)
}).annotate({ identifier: "FlagOverrideRequest" })

/**
 * The endpoints of the `featureFlags` group.
 *
 * @since 0.1.0
 * @category groups
 */
export class Group extends HttpApiGroup.make("featureFlags")
  .add(
    HttpApiEndpoint.get("list", "/admin/flags", {
      success: Schema.Array(FeatureFlags.FlagView)
    }).annotate(OpenApi.Summary, "Every flag: definition, source, kill switch, tenant overrides")
  )
  .add(
    HttpApiEndpoint.get("get", "/admin/flags/:key", {
      params: keyParams,
      success: FeatureFlags.FlagView,
      error: Problem.NotFound
    }).annotate(OpenApi.Summary, "One flag")
  )
  .add(
    HttpApiEndpoint.put("put", "/admin/flags/:key", {
      params: keyParams,
      query: reasonQuery,
      payload: FlagDefinition.Flag,
      success: FeatureFlags.FlagView,
      error: [Problem.Forbidden, Problem.Conflict, Problem.UnprocessableEntity]
    }).annotate(OpenApi.Summary, "Create or replace a flag (flagd's flag definition format)")
  )
  .add(
    HttpApiEndpoint.delete("remove", "/admin/flags/:key", {
      params: keyParams,
      query: reasonQuery,
      success: HttpApiSchema.NoContent,
      error: [Problem.Forbidden, Problem.NotFound, Problem.Conflict]
    }).annotate(OpenApi.Summary, "Remove a flag from the writable source")
  )
  .add(
    HttpApiEndpoint.post("kill", "/admin/flags/:key/kill", {
      params: keyParams,
      payload: KillRequest,
      success: FeatureFlags.FlagView,
      error: [Problem.Forbidden, Problem.NotFound, Problem.Conflict, Problem.UnprocessableEntity]
    }).annotate(OpenApi.Summary, "Kill switch: serve one variant everywhere, whatever the rules and overrides")
  )
  .add(
    HttpApiEndpoint.delete("revive", "/admin/flags/:key/kill", {
      params: keyParams,
      query: reasonQuery,
      success: FeatureFlags.FlagView,
      error: [Problem.Forbidden, Problem.NotFound, Problem.Conflict]
    }).annotate(OpenApi.Summary, "Release the kill switch")
  )
  .add(
    HttpApiEndpoint.get("listOverrides", "/admin/flags/:key/tenants", {
      params: keyParams,
      success: Schema.Record(Schema.String, FlagProvider.Override),
      error: Problem.NotFound
    }).annotate(OpenApi.Summary, "The tenant overrides of a flag")
  )
  .add(
    HttpApiEndpoint.put("setOverride", "/admin/flags/:key/tenants/:tenantId", {
      params: overrideParams,
      payload: OverrideRequest,
      success: FeatureFlags.FlagView,
      error: [Problem.NotFound, Problem.Conflict, Problem.UnprocessableEntity]
    }).annotate(OpenApi.Summary, "Set the variant a tenant gets")
  )
  .add(
    HttpApiEndpoint.delete("removeOverride", "/admin/flags/:key/tenants/:tenantId", {
      params: overrideParams,
      query: reasonQuery,
      success: FeatureFlags.FlagView,
      error: [Problem.NotFound, Problem.Conflict]
    }).annotate(OpenApi.Summary, "Remove a tenant's override")
  )
  .annotate(OpenApi.Title, "Admin: feature flags")
{}

// -----------------------------------------------------------------------------
// handlers
// -----------------------------------------------------------------------------

/** The kernel problem of each domain error. */
type ProblemOf<E> = E extends FeatureFlags.FlagNotFound ? Problem.NotFound
  : E extends FeatureFlags.InvalidFlag ? Problem.UnprocessableEntity
  : E extends FeatureFlags.FlagConflict ? Problem.Conflict
  : never

const problemOf = (error: FeatureFlags.FeatureFlagsError): Problem.HttpError => {
  switch (error._tag) {
    case "FlagNotFound":
      return new Problem.NotFound({ detail: error.detail })
    case "InvalidFlag":
      return new Problem.UnprocessableEntity({ detail: error.detail })
    case "FlagConflict":
      return new Problem.Conflict({ detail: error.detail })
  }
}

/** Maps the domain errors an effect can fail with (and only those) to kernel problems. */
const toProblems = <A, E extends FeatureFlags.FeatureFlagsError, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, ProblemOf<E>, R> => Effect.mapError(effect, (error) => problemOf(error) as ProblemOf<E>)

const forbidden = (scope: AdminScope, what: string) =>
  new Problem.Forbidden({ detail: `a tenant administrator (${scope.tenantId}) cannot ${what}` })

/** A tenant administrator sees only its own tenant's override. */
const visible = (scope: AdminScope, view: FeatureFlags.FlagView): FeatureFlags.FlagView => {
  if (scope.tenantId === undefined) return view
  const own = view.overrides[scope.tenantId]
  return { ...view, overrides: own === undefined ? {} : { [scope.tenantId]: own } }
}

const reasonOf = (query: { readonly reason?: string }) => query.reason === undefined ? {} : { reason: query.reason }

type KeyRequest = { readonly params: { readonly key: string } }
type KeyQueryRequest = KeyRequest & { readonly query: { readonly reason?: string } }
type OverrideParams = { readonly params: { readonly key: string; readonly tenantId: TenantId.TenantId } }

const scope: Effect.Effect<AdminScope> = Effect.gen(function*() {
  return yield* CurrentAdminScope
})

/**
 * The handlers of the group, each acting in the request's admin scope.
 */
const handlersOf = (flags: FeatureFlags.FeatureFlags["Service"]) => ({
  list: () => Effect.zipWith(scope, flags.list, (scope, views) => views.map((view) => visible(scope, view))),
  get: ({ params }: KeyRequest) =>
    Effect.gen(function*() {
      const admin = yield* scope
      return visible(admin, yield* toProblems(flags.get(params.key)))
    }),
  put: ({ params, payload, query }: KeyQueryRequest & { readonly payload: FlagDefinition.Flag }) =>
    Effect.gen(function*() {
      const admin = yield* scope
      if (admin.tenantId !== undefined) return yield* forbidden(admin, "change flag definitions")
      return yield* toProblems(flags.put(params.key, payload, { actor: admin.actor, ...reasonOf(query) }))
    }),
  remove: ({ params, query }: KeyQueryRequest) =>
    Effect.gen(function*() {
      const admin = yield* scope
      if (admin.tenantId !== undefined) return yield* forbidden(admin, "remove flags")
      yield* toProblems(flags.remove(params.key, { actor: admin.actor, ...reasonOf(query) }))
    }),
  kill: ({ params, payload }: KeyRequest & { readonly payload: typeof KillRequest.Type }) =>
    Effect.gen(function*() {
      const admin = yield* scope
      if (admin.tenantId !== undefined) return yield* forbidden(admin, "pull a kill switch")
      return yield* toProblems(flags.kill(params.key, payload, { actor: admin.actor }))
    }),
  revive: ({ params, query }: KeyQueryRequest) =>
    Effect.gen(function*() {
      const admin = yield* scope
      if (admin.tenantId !== undefined) return yield* forbidden(admin, "release a kill switch")
      return yield* toProblems(flags.revive(params.key, { actor: admin.actor, ...reasonOf(query) }))
    }),
  listOverrides: ({ params }: KeyRequest) =>
    Effect.gen(function*() {
      const admin = yield* scope
      return visible(admin, yield* toProblems(flags.get(params.key))).overrides
    }),
  setOverride: ({ params, payload }: OverrideParams & { readonly payload: typeof OverrideRequest.Type }) =>
    Effect.gen(function*() {
      const admin = yield* scope
      if (admin.tenantId !== undefined && admin.tenantId !== params.tenantId) {
        return yield* new Problem.NotFound({ detail: `no tenant ${params.tenantId}` })
      }
      const view = yield* toProblems(
        flags.setOverride(params.key, params.tenantId, { variant: payload.variant }, {
          actor: admin.actor,
          ...reasonOf(payload)
        })
      )
      return visible(admin, view)
    }),
  removeOverride: ({ params, query }: OverrideParams & { readonly query: { readonly reason?: string } }) =>
    Effect.gen(function*() {
      const admin = yield* scope
      if (admin.tenantId !== undefined && admin.tenantId !== params.tenantId) {
        return yield* new Problem.NotFound({ detail: `no tenant ${params.tenantId}` })
      }
      const view = yield* toProblems(
        flags.removeOverride(params.key, params.tenantId, { actor: admin.actor, ...reasonOf(query) })
      )
      return visible(admin, view)
    })
})

/**
 * Implements the `featureFlags` group of any api that contains `Group` (with or without middleware added by the
 * server; that middleware is then a requirement of the layer). Handlers act in {@link CurrentAdminScope}.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { FeatureFlagsHttp } from "@ouroboros/feature-flags"
 * import { HttpApi } from "effect/http-api"
 * class MyApi extends HttpApi.make("my-api").add(FeatureFlagsHttp.Group) {}
 * const FlagsHttpLive = FeatureFlagsHttp.layer(MyApi)
 */
export const layer = HttpGroup.implement(Group, (handlers) =>
  // The service is taken once, when the layer is built.
  FeatureFlags.FeatureFlags.useSync((flags) => {
    const handler = handlersOf(flags)
    return handlers
      .handle("list", handler.list)
      .handle("get", handler.get)
      .handle("put", handler.put)
      .handle("remove", handler.remove)
      .handle("kill", handler.kill)
      .handle("revive", handler.revive)
      .handle("listOverrides", handler.listOverrides)
      .handle("setOverride", handler.setOverride)
      .handle("removeOverride", handler.removeOverride)
  }))

/**
 * A standalone api with only the feature flags group.
 *
 * @since 0.1.0
 * @category apis
 */
export class Api extends HttpApi.make("featureFlags").add(Group) {}

/**
 * The group of the standalone `Api`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerApi: Layer.Layer<
  HttpApiGroup.Service<"featureFlags", "featureFlags">,
  never,
  FeatureFlags.FeatureFlags
> = layer(Api)
