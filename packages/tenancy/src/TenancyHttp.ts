/**
 * Request authentication, resolved once per request.
 *
 * {@link middleware} (or {@link layer}, the same as a global router middleware) reads `X-API-Key` or
 * `Authorization: Bearer`, resolves it with `Tenants.authenticate`, and records the outcome — anonymous, authenticated
 * (a `Principal`) or rejected — in {@link CurrentAuthentication} for everything that runs inside it: the rate limiter,
 * the concurrency limiter, quotas, audit and flags read the principal there (or, from a plain request function such as
 * the rate limiter's key resolver, with {@link authenticationOf}) and none of them parses credentials again. The
 * middleware itself refuses nothing: a public route (health, metrics) stays public whatever the headers say.
 *
 * The HttpApi security middlewares ({@link Authentication} for tenant endpoints, {@link AdminAuthentication} for
 * operator endpoints, {@link TenantAdminAuthentication} for endpoints a tenant administrator may use on its own tenant)
 * read that outcome, answer 401 (missing or refused credentials, one body for every reason) or 403 (the wrong role),
 * and provide kernel's `Principal.CurrentPrincipal`. They declare the `X-API-Key` and bearer schemes for OpenAPI.
 *
 * @since 0.1.0
 */
import { Principal, Problem, ResponseHeaders, type TenantId } from "@ouroboros/kernel"
import type { RateLimiter, RateLimiterHttp } from "@ouroboros/rate-limit"
import { Context, Effect, Layer, Option, Redacted } from "effect"
import { HttpRouter, HttpServerRequest, type HttpServerResponse } from "effect/http"
import { HttpApiMiddleware, HttpApiSecurity } from "effect/http-api"
import * as Tenants from "./Tenants.js"

/**
 * What the request's credentials came to.
 *
 * - `Unresolved`: the middleware did not run (the default of {@link CurrentAuthentication});
 * - `Anonymous`: no credential was presented;
 * - `Authenticated`: a principal, with the tier the rate limiter applies;
 * - `Rejected`: a credential was presented and refused (`reason` is for logs only);
 * - `Unavailable`: the credential could not be checked (the tenant store failed): a 503 on protected routes, while
 *   public routes (health) keep working.
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome =
  | { readonly _tag: "Unresolved" }
  | { readonly _tag: "Anonymous" }
  | {
    readonly _tag: "Authenticated"
    readonly principal: Principal.Principal
    readonly limiterTier: string | undefined
  }
  | { readonly _tag: "Rejected"; readonly reason: string }
  | { readonly _tag: "Unavailable" }

const unavailable: Outcome = { _tag: "Unavailable" }
const unresolved: Outcome = { _tag: "Unresolved" }
const anonymous: Outcome = { _tag: "Anonymous" }

/**
 * The authentication outcome of the current request.
 *
 * @since 0.1.0
 * @category references
 */
export const CurrentAuthentication: Context.Reference<Outcome> = Context.Reference<Outcome>(
  "@ouroboros/tenancy/CurrentAuthentication",
  { defaultValue: () => unresolved }
)

/**
 * The principal of the current request, if it authenticated.
 *
 * @since 0.1.0
 * @category accessors
 */
export const currentPrincipal: Effect.Effect<Option.Option<Principal.Principal>> = Effect.map(
  Effect.service(CurrentAuthentication),
  (outcome) => outcome._tag === "Authenticated" ? Option.some(outcome.principal) : Option.none()
)

/**
 * The credential of a request: `X-API-Key`, or `Authorization: Bearer`. An `Authorization` header of another scheme
 * is not ours and is ignored; an API key and a bearer token together are refused (which one would be meant?).
 *
 * @since 0.1.0
 * @category utils
 */
export const credentialOf = (
  headers: { readonly [name: string]: string | undefined }
): Tenants.Credential | { readonly _tag: "Refused"; readonly reason: string } | undefined => {
  const found = presented(headers)
  return found === undefined || found._tag === "Refused"
    ? found
    : found._tag === "ApiKey"
    ? { _tag: "ApiKey", key: Redacted.make(found.value) }
    : { _tag: "Bearer", token: Redacted.make(found.value) }
}

// The credential as the header holds it; the request path keeps it as a plain string (a `Redacted` per request costs
// a registry entry) and never logs it.
const presented = (
  headers: { readonly [name: string]: string | undefined }
):
  | { readonly _tag: "ApiKey" | "Bearer"; readonly value: string }
  | { readonly _tag: "Refused"; readonly reason: string }
  | undefined =>
{
  const key = headers["x-api-key"]
  const authorization = headers["authorization"]
  const token = authorization !== undefined && /^bearer(?:\s|$)/i.test(authorization)
    ? authorization.slice(6).trim()
    : undefined
  if (key !== undefined && token !== undefined) return { _tag: "Refused", reason: "two-credentials" }
  if (key !== undefined) return { _tag: "ApiKey", value: key }
  if (token !== undefined) return { _tag: "Bearer", value: token }
  return undefined
}

const refusedLog = (reason: string, method: string) =>
  Effect.logDebug("credentials refused").pipe(Effect.annotateLogs({ service: "tenancy", reason, method }))

/**
 * Resolves a request's credentials (no caching of its own: `Tenants` caches key resolutions by digest).
 *
 * @since 0.1.0
 * @category utils
 */
export const resolve = (
  tenants: Tenants.Tenants["Service"],
  request: HttpServerRequest.HttpServerRequest
): Effect.Effect<Outcome> => {
  const credential = presented(request.headers)
  if (credential === undefined) return Effect.succeed(anonymous)
  if (credential._tag === "Refused") {
    return Effect.as(refusedLog(credential.reason, "both"), { _tag: "Rejected", reason: credential.reason })
  }
  return Effect.matchEffect(tenants.authenticateValue(credential._tag, credential.value), {
    onFailure: (error) =>
      Effect.as(refusedLog(error.reason, credential._tag === "ApiKey" ? "api-key" : "jwt"), {
        _tag: "Rejected",
        reason: error.reason
      } as Outcome),
    onSuccess: (authenticated) =>
      Effect.succeed<Outcome>({
        _tag: "Authenticated",
        principal: authenticated.principal,
        limiterTier: authenticated.limiterTier
      })
  }).pipe(
    // A store that fails is no reason to fail public routes: protected ones answer 503.
    Effect.catchDefect((defect) =>
      Effect.as(
        Effect.logWarning("credentials could not be checked", defect).pipe(Effect.annotateLogs({ service: "tenancy" })),
        unavailable
      )
    )
  )
}

// Outcomes by underlying request object, for plain functions of the request (the rate limiter's key resolver). The
// entry goes with the request.
const outcomes = new WeakMap<object, Outcome>()

const record = (request: HttpServerRequest.HttpServerRequest, outcome: Outcome): void => {
  // An anonymous request needs no entry: `Unresolved` and `Anonymous` mean the same to a limiter (the address).
  if (outcome._tag === "Anonymous") return
  const source = request.source
  if (typeof source === "object" && source !== null) outcomes.set(source, outcome)
}

/**
 * The outcome recorded for a request by {@link middleware}, for code that has the request but not the fiber (a rate
 * limiter's synchronous key resolver). `Unresolved` when the middleware did not see the request or found no credential
 * on it (anonymous requests are not recorded).
 *
 * @since 0.1.0
 * @category accessors
 */
export const authenticationOf = (request: HttpServerRequest.HttpServerRequest): Outcome => {
  const source = request.source
  return (typeof source === "object" && source !== null ? outcomes.get(source) : undefined) ?? unresolved
}

/**
 * A middleware of this module: keeps the app's errors and requirements (plus the request).
 *
 * @since 0.1.0
 * @category models
 */
export interface Middleware {
  <E, R>(
    app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
  ): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest>
}

/**
 * Builds the middleware on the `Tenants` in context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<Middleware, never, Tenants.Tenants> = Effect.map(
  Effect.service(Tenants.Tenants),
  (tenants): Middleware => (app) =>
    Effect.withFiber((fiber) => {
      const request = Context.getUnsafe(fiber.context, HttpServerRequest.HttpServerRequest)
      return Effect.flatMap(resolve(tenants, request), (outcome) => {
        record(request, outcome)
        return Effect.provideService(app, CurrentAuthentication, outcome)
      })
    })
)

/**
 * The middleware as a global `HttpRouter` middleware. Global middlewares wrap each other in the order their layers
 * are built, the first outermost: provide this layer to the ones that read the principal (the rate limiter's) so it
 * is built, and runs, first: `RateLimiterHttp.layer(…).pipe(Layer.provide(TenancyHttp.layer))`. Or give
 * {@link middleware} to `HttpRouter.serve` right inside the correlation middleware, which runs it before every router
 * middleware.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<never, never, HttpRouter.HttpRouter | Tenants.Tenants> = HttpRouter.middleware(
  Effect.map(make, (authenticate) => (effect: Effect.Effect<HttpServerResponse.HttpServerResponse, any>) =>
    // The router's types ask a middleware to pass on the errors it does not know: this one passes on every error.
    authenticate(effect) as Effect.Effect<HttpServerResponse.HttpServerResponse, any>),
  { global: true }
) as Layer.Layer<never, never, HttpRouter.HttpRouter | Tenants.Tenants>

/**
 * The subject for the rate limiter: an authenticated request is limited by its principal (`key:<id>` or the token's
 * `sub`), tenant and tier; anything else by client address only — a refused or unknown key never gets a bucket of its
 * own, so random keys cannot multiply an attacker's budget or grow the limiter's store. Wraps the limiter's resolver
 * (client address, endpoint).
 *
 * @since 0.1.0
 * @category rate limiting
 * @example
 * import { RateLimiterHttp } from "@ouroboros/rate-limit"
 * import { TenancyHttp } from "@ouroboros/tenancy"
 * const resolve = TenancyHttp.limiterResolver(RateLimiterHttp.defaultResolver({ trustedProxies: ["private"] }))
 * const Limits = RateLimiterHttp.layer({ resolve })
 */
export const limiterResolver = (base: RateLimiterHttp.KeyResolver): RateLimiterHttp.KeyResolver => (request) =>
  subjectOf(authenticationOf(request), base(request))

/**
 * The rate-limit subject of an outcome, over the limiter's own subject (which gives the client address and endpoint).
 *
 * @since 0.1.0
 * @category rate limiting
 */
export const subjectOf = (outcome: Outcome, base: RateLimiter.Subject): RateLimiter.Subject =>
  outcome._tag === "Authenticated"
    ? {
      apiKey: outcome.principal.subject,
      tenant: outcome.principal.tenantId,
      tier: outcome.limiterTier,
      client: base.client,
      endpoint: base.endpoint
    }
    : { client: base.client, endpoint: base.endpoint }

// ---------------------------------------------------------------------------------------------------------------------
// HttpApi security
// ---------------------------------------------------------------------------------------------------------------------

/**
 * The security schemes every middleware of this module declares (alternatives): the `X-API-Key` header and a bearer
 * token.
 *
 * @since 0.1.0
 * @category security
 */
export const security = {
  apiKey: HttpApiSecurity.apiKey({ key: "X-API-Key", in: "header" }),
  bearer: HttpApiSecurity.bearer
} as const

/**
 * The one 401 answer, whatever went wrong: no credential, a malformed, unknown, expired or revoked key, a token that
 * failed any check, an unknown tenant.
 *
 * @since 0.1.0
 * @category errors
 */
export const unauthorized = new Problem.Unauthorized({
  detail: "valid credentials are required: an X-API-Key header or an Authorization: Bearer token"
})

/**
 * The answer when credentials could not be checked (the tenant store failed).
 *
 * @since 0.1.0
 * @category errors
 */
export const unavailableProblem = new Problem.ServiceUnavailable({
  detail: "credentials cannot be checked right now",
  retryAfter: 1
})

/**
 * Tenant endpoints: any authenticated principal of a tenant. The admin key (which belongs to no tenant) is a 403.
 *
 * @since 0.1.0
 * @category security
 */
export class Authentication extends HttpApiMiddleware.Service<Authentication, {
  provides: Principal.CurrentPrincipal
}>()("@ouroboros/tenancy/Authentication", {
  error: [Problem.Unauthorized, Problem.Forbidden, Problem.ServiceUnavailable],
  security
}) {}

/**
 * Operator endpoints: the `admin` role.
 *
 * @since 0.1.0
 * @category security
 */
export class AdminAuthentication extends HttpApiMiddleware.Service<AdminAuthentication, {
  provides: Principal.CurrentPrincipal
}>()("@ouroboros/tenancy/AdminAuthentication", {
  error: [Problem.Unauthorized, Problem.Forbidden, Problem.ServiceUnavailable],
  security
}) {}

/**
 * Endpoints a tenant administrator may use for its own tenant: the `admin` or `tenant-admin` role. The handler scopes
 * the route with {@link scopeToTenant} (or {@link requireAdmin} for what only an operator may do).
 *
 * @since 0.1.0
 * @category security
 */
export class TenantAdminAuthentication extends HttpApiMiddleware.Service<TenantAdminAuthentication, {
  provides: Principal.CurrentPrincipal
}>()("@ouroboros/tenancy/TenantAdminAuthentication", {
  error: [Problem.Unauthorized, Problem.Forbidden, Problem.ServiceUnavailable],
  security
}) {}

const setChallenge = ResponseHeaders.set("www-authenticate", "Bearer, ApiKey header=\"X-API-Key\"")

const refuse = Effect.andThen(setChallenge, Effect.fail(unauthorized))

type SecurityHandler = (
  httpEffect: Effect.Effect<HttpServerResponse.HttpServerResponse, any, any>,
  options: any
) => Effect.Effect<HttpServerResponse.HttpServerResponse, any, any>

// One handler for both schemes: the credential the scheme decoded is not read again; the request's outcome is.
const guard = (
  tenants: Tenants.Tenants["Service"],
  check: (principal: Principal.Principal) => Problem.Forbidden | undefined
): SecurityHandler =>
(httpEffect) =>
  Effect.withFiber((fiber) => {
    const decide = (outcome: Outcome) => {
      if (outcome._tag === "Unavailable") return Effect.fail(unavailableProblem)
      if (outcome._tag !== "Authenticated") return refuse
      const forbidden = check(outcome.principal)
      return forbidden !== undefined
        ? Effect.fail(forbidden)
        : Effect.provideService(httpEffect, Principal.CurrentPrincipal, outcome.principal)
    }
    const outcome = fiber.getRef(CurrentAuthentication)
    if (outcome._tag !== "Unresolved") return decide(outcome)
    // Without the global middleware (an app that installs only these), the request is resolved here, once: the
    // outcome is recorded for the second scheme, which HttpApi tries after a refusal by the first.
    const request = Context.getUnsafe(fiber.context, HttpServerRequest.HttpServerRequest)
    const recorded = authenticationOf(request)
    if (recorded._tag !== "Unresolved") return decide(recorded)
    return Effect.flatMap(resolve(tenants, request), (resolved) => {
      record(request, resolved)
      return decide(resolved)
    })
  })

const adminAsTenant = new Problem.Forbidden({ detail: "the admin key cannot act as a tenant" })
const noRole = new Problem.Forbidden({ detail: "the credentials carry no role" })
const needsAdmin = new Problem.Forbidden({ detail: "this endpoint needs the admin role" })
const needsTenantAdmin = new Problem.Forbidden({ detail: "this endpoint needs the admin or tenant-admin role" })

const securityLayer = <Self, Id extends string, S extends Record<string, unknown>>(
  service: Context.Service<Self, S> & { readonly of: (s: S) => S; readonly key: Id },
  check: (principal: Principal.Principal) => Problem.Forbidden | undefined
): Layer.Layer<Self, never, Tenants.Tenants> =>
  Layer.effect(
    service,
    Effect.map(Effect.service(Tenants.Tenants), (tenants) => {
      const handler = guard(tenants, check)
      return { apiKey: handler, bearer: handler } as unknown as S
    })
  )

/**
 * {@link Authentication}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerAuthentication: Layer.Layer<Authentication, never, Tenants.Tenants> = securityLayer(
  Authentication,
  (principal) => principal.method === "admin-key" ? adminAsTenant : principal.roles.length === 0 ? noRole : undefined
)

/**
 * {@link AdminAuthentication}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerAdminAuthentication: Layer.Layer<AdminAuthentication, never, Tenants.Tenants> = securityLayer(
  AdminAuthentication,
  (principal) => principal.hasRole("admin") ? undefined : needsAdmin
)

/**
 * {@link TenantAdminAuthentication}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerTenantAdminAuthentication: Layer.Layer<TenantAdminAuthentication, never, Tenants.Tenants> =
  securityLayer(
    TenantAdminAuthentication,
    (principal) => principal.hasRole("admin") || principal.hasRole("tenant-admin") ? undefined : needsTenantAdmin
  )

/**
 * The three security middlewares.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSecurity: Layer.Layer<
  Authentication | AdminAuthentication | TenantAdminAuthentication,
  never,
  Tenants.Tenants
> = Layer.mergeAll(layerAuthentication, layerAdminAuthentication, layerTenantAdminAuthentication)

// ---------------------------------------------------------------------------------------------------------------------
// Role checks in handlers
// ---------------------------------------------------------------------------------------------------------------------

/**
 * Scopes a route to one tenant: an `admin` passes; anyone else only for its own tenant — another tenant's resource is a
 * 404, as if it did not exist (never a 403 that would confirm it does).
 *
 * @since 0.1.0
 * @category authorization
 * @example
 * import { TenantId } from "@ouroboros/kernel"
 * import { TenancyHttp } from "@ouroboros/tenancy"
 * import { Effect } from "effect"
 *
 * // a handler of GET /tenants/:id: an admin sees any tenant, anyone else only its own (another one is a 404)
 * const getTenant = (id: TenantId.TenantId) =>
 *   TenancyHttp.scopeToTenant(id).pipe(Effect.map((principal) => ({ id, viewer: principal.subject })))
 */
export const scopeToTenant = (
  tenantId: TenantId.TenantId
): Effect.Effect<Principal.Principal, Problem.NotFound, Principal.CurrentPrincipal> =>
  Effect.flatMap(
    Effect.service(Principal.CurrentPrincipal),
    (principal) =>
      principal.hasRole("admin") || principal.tenantId === tenantId
        ? Effect.succeed(principal)
        : Effect.fail(new Problem.NotFound({ detail: `no tenant ${tenantId}` }))
  )

/**
 * Only an `admin` passes; anyone else gets a 403.
 *
 * @since 0.1.0
 * @category authorization
 */
export const requireAdmin: Effect.Effect<Principal.Principal, Problem.Forbidden, Principal.CurrentPrincipal> = Effect
  .flatMap(
    Effect.service(Principal.CurrentPrincipal),
    (principal) => principal.hasRole("admin") ? Effect.succeed(principal) : Effect.fail(needsAdmin)
  )

/**
 * The principal must hold one of `roles` (an `admin` holds them all); a 403 otherwise. For tenant endpoints that only
 * some roles may use (`requireRole("writer")` on ingest and delete).
 *
 * @since 0.1.0
 * @category authorization
 */
export const requireRole = (
  ...roles: ReadonlyArray<Principal.Role>
): Effect.Effect<Principal.Principal, Problem.Forbidden, Principal.CurrentPrincipal> =>
  Effect.flatMap(
    Effect.service(Principal.CurrentPrincipal),
    (principal) =>
      principal.hasRole("admin") || roles.some((role) => principal.hasRole(role))
        ? Effect.succeed(principal)
        : Effect.fail(new Problem.Forbidden({ detail: `this needs the ${roles.join(" or ")} role` }))
  )
