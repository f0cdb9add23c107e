/**
 * Who is calling: API keys resolve to a tenant principal, the admin key to the admin principal.
 *
 * Keys are held only as SHA-256 digests; a presented key is hashed and looked up, so no stored key is ever compared
 * character by character. Full identity management (JWT, stored hashed keys, quotas) belongs to the tenancy package
 * of a later issue; this module is the bootstrap that every request already goes through.
 *
 * @since 0.1.0
 */
import { HttpApiMiddleware, HttpApiSecurity } from "@effect/platform"
import { Principal, Problem, TenantId } from "@ouroboros/kernel"
import { Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import { createHash } from "node:crypto"

const digest = (key: string): string => createHash("sha256").update(key).digest("hex")

/**
 * The key ring: digests of tenant keys and of the admin key.
 *
 * @since 0.1.0
 * @category services
 */
export class KeyRing extends Context.Tag("@ouroboros/server/KeyRing")<KeyRing, {
  readonly resolve: (key: string) => Option.Option<Principal.Principal>
  readonly tenants: ReadonlyArray<TenantId.TenantId>
}>() {}

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
export const makeKeyRing = (options: KeyRingOptions): Context.Tag.Service<KeyRing> => {
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
        : Option.fromNullable(byDigest.get(hash))
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
export class Authentication extends HttpApiMiddleware.Tag<Authentication>()("Authentication", {
  failure: Schema.Union(Problem.Unauthorized, Problem.Forbidden),
  provides: Principal.CurrentPrincipal,
  security: { apiKey }
}) {}

/**
 * Admin endpoints: only the admin key; a tenant key is a 403.
 *
 * @since 0.1.0
 * @category middleware
 */
export class AdminAuthentication extends HttpApiMiddleware.Tag<AdminAuthentication>()("AdminAuthentication", {
  failure: Schema.Union(Problem.Unauthorized, Problem.Forbidden),
  provides: Principal.CurrentPrincipal,
  security: { apiKey }
}) {}

const missing = new Problem.Unauthorized({ detail: "an X-API-Key header with a valid key is required" })

const authenticate = (ring: Context.Tag.Service<KeyRing>, key: Redacted.Redacted<string>) => {
  const value = Redacted.value(key)
  if (value === "") return Effect.fail(missing)
  return Option.match(ring.resolve(value), {
    onNone: () => Effect.fail(new Problem.Unauthorized({ detail: "the API key is not valid" })),
    onSome: Effect.succeed
  })
}

/**
 * @since 0.1.0
 * @category layers
 */
export const layerAuthentication = Layer.effect(
  Authentication,
  Effect.map(KeyRing, (ring) =>
    Authentication.of({
      apiKey: (key) =>
        Effect.flatMap(authenticate(ring, key), (principal) =>
          principal.hasRole("admin")
            ? Effect.fail(new Problem.Forbidden({ detail: "the admin key cannot act as a tenant" }))
            : Effect.succeed(principal))
    }))
)

/**
 * @since 0.1.0
 * @category layers
 */
export const layerAdminAuthentication = Layer.effect(
  AdminAuthentication,
  Effect.map(KeyRing, (ring) =>
    AdminAuthentication.of({
      apiKey: (key) =>
        Effect.flatMap(authenticate(ring, key), (principal) =>
          principal.hasRole("admin")
            ? Effect.succeed(principal)
            : Effect.fail(new Problem.Forbidden({ detail: "this endpoint needs the admin role" })))
    }))
)
