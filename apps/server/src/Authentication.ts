/**
 * Who is calling: API keys resolve to a tenant principal, the admin key to the admin principal.
 *
 * Keys are held only as SHA-256 digests; a presented key is hashed and looked up, so no stored key is ever compared
 * character by character. Full identity management (JWT, stored hashed keys, quotas) belongs to the tenancy package
 * of a later issue; this module is the bootstrap that every request already goes through.
 *
 * @since 0.1.0
 */
import { Principal, Problem, TenantId } from "@ouroboros/kernel"
import { Context, Effect, Layer, Option, Redacted } from "effect"
import { HttpApiMiddleware, HttpApiSecurity } from "effect/http-api"
import { createHash } from "node:crypto"

const digest = (key: string): string => createHash("sha256").update(key).digest("hex")

/**
 * The key ring: digests of tenant keys and of the admin key.
 *
 * @since 0.1.0
 * @category services
 */
export class KeyRing extends Context.Service<KeyRing, {
  readonly resolve: (key: string) => Option.Option<Principal.Principal>
  readonly tenants: ReadonlyArray<TenantId.TenantId>
}>()("@ouroboros/server/KeyRing") {}

/**
 * @since 0.1.0
 * @category models
 */
export interface KeyRingOptions {
  readonly adminKey: Option.Option<Redacted.Redacted<string>>
  readonly tenantKeys: ReadonlyArray<{ readonly tenant: string; readonly key: Redacted.Redacted<string> }>
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const makeKeyRing = (options: KeyRingOptions): KeyRing["Service"] => {
  const byDigest = new Map<string, Principal.Principal>()
  for (const { key, tenant } of options.tenantKeys) {
    const tenantId = TenantId.make(tenant)
    const hash = digest(Redacted.value(key))
    byDigest.set(
      hash,
      new Principal.Principal({ tenantId, subject: `key:${hash.slice(0, 12)}`, roles: ["writer", "reader"], method: "api-key" })
    )
  }
  const adminDigest = Option.map(options.adminKey, (key) => digest(Redacted.value(key)))
  const admin = new Principal.Principal({
    tenantId: TenantId.make("system"),
    subject: "admin",
    roles: ["admin"],
    method: "admin-key"
  })
  const tenants = [...new Set(options.tenantKeys.map((k) => TenantId.make(k.tenant)))]
  // Hashing costs more than the rest of authentication: recent keys are remembered (bounded; the rate limiter and the
  // authentication middleware both resolve the key of every request).
  const recent = new Map<string, Option.Option<Principal.Principal>>()
  return {
    tenants,
    resolve: (key) => {
      const known = recent.get(key)
      if (known !== undefined) return known
      const hash = digest(key)
      const principal = Option.isSome(adminDigest) && adminDigest.value === hash
        ? Option.some(admin)
        : Option.fromUndefinedOr(byDigest.get(hash))
      if (recent.size >= 10_000) recent.clear()
      recent.set(key, principal)
      return principal
    }
  }
}

/**
 * @since 0.1.0
 * @category layers
 */
export const layerKeyRing = (options: KeyRingOptions): Layer.Layer<KeyRing> =>
  Layer.succeed(KeyRing, makeKeyRing(options))

const apiKey = HttpApiSecurity.apiKey({ key: "X-API-Key", in: "header" })

/**
 * Tenant endpoints: a tenant API key is required. The admin key is not a tenant and gets a 403.
 *
 * @since 0.1.0
 * @category middleware
 */
export class Authentication extends HttpApiMiddleware.Service<Authentication, {
  provides: Principal.CurrentPrincipal
}>()("Authentication", {
  error: [Problem.Unauthorized, Problem.Forbidden],
  security: { apiKey }
}) {}

/**
 * Admin endpoints: only the admin key; a tenant key is a 403.
 *
 * @since 0.1.0
 * @category middleware
 */
export class AdminAuthentication extends HttpApiMiddleware.Service<AdminAuthentication, {
  provides: Principal.CurrentPrincipal
}>()("AdminAuthentication", {
  error: [Problem.Unauthorized, Problem.Forbidden],
  security: { apiKey }
}) {}

// The principal of a key, or the 401 (no key, an unknown key) or 403 (the wrong kind of key) to answer with.
const authenticate = (
  ring: KeyRing["Service"],
  key: Redacted.Redacted<string>,
  admin: boolean
): Effect.Effect<Principal.Principal, Problem.Unauthorized | Problem.Forbidden> => {
  const value = Redacted.value(key)
  if (value === "") {
    return Effect.fail(new Problem.Unauthorized({ detail: "an X-API-Key header with a valid key is required" }))
  }
  const principal = ring.resolve(value)
  if (Option.isNone(principal)) return Effect.fail(new Problem.Unauthorized({ detail: "the API key is not valid" }))
  if (principal.value.hasRole("admin") !== admin) {
    return Effect.fail(
      new Problem.Forbidden({
        detail: admin ? "this endpoint needs the admin role" : "the admin key cannot act as a tenant"
      })
    )
  }
  return Effect.succeed(principal.value)
}

/**
 * @since 0.1.0
 * @category layers
 */
export const layerAuthentication: Layer.Layer<Authentication, never, KeyRing> = Layer.effect(
  Authentication,
  Effect.map(Effect.service(KeyRing), (ring) =>
    Authentication.of({
      apiKey: (httpEffect, { credential }) =>
        Effect.flatMap(
          authenticate(ring, credential, false),
          (principal) => Effect.provideService(httpEffect, Principal.CurrentPrincipal, principal)
        )
    }))
)

/**
 * @since 0.1.0
 * @category layers
 */
export const layerAdminAuthentication: Layer.Layer<AdminAuthentication, never, KeyRing> = Layer.effect(
  AdminAuthentication,
  Effect.map(Effect.service(KeyRing), (ring) =>
    AdminAuthentication.of({
      apiKey: (httpEffect, { credential }) =>
        Effect.flatMap(
          authenticate(ring, credential, true),
          (principal) => Effect.provideService(httpEffect, Principal.CurrentPrincipal, principal)
        )
    }))
)
