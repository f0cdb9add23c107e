/**
 * Who is calling: the authenticated identity that request handlers act for.
 *
 * @since 0.1.0
 */
import { Context, Schema } from "effect"
import { TenantId } from "./TenantId.js"

/**
 * The roles a principal can hold. `admin` opens every `/admin/...` route; `tenant-admin` manages its own tenant only
 * (its keys, usage, audit events and flag overrides); `writer` and `reader` act on the tenant's data.
 *
 * @since 0.1.0
 * @category models
 */
export const Role = Schema.Literals(["admin", "tenant-admin", "writer", "reader"])

/**
 * @since 0.1.0
 * @category models
 */
export type Role = typeof Role.Type

/**
 * An authenticated caller: the tenant it acts in, a subject (key id, JWT `sub`), its roles, how it proved itself, and
 * the tier of its tenant when the tenancy layer knows it (rate-limit and quota policies are chosen by tier).
 *
 * @since 0.1.0
 * @category models
 * @example
 * import { Principal, TenantId } from "@ouroboros/kernel"
 * const p = new Principal.Principal({
 *   tenantId: TenantId.make("acme"), subject: "key:1", roles: ["writer"], method: "api-key"
 * })
 */
export class Principal extends Schema.Class<Principal>("@ouroboros/Principal")({
  tenantId: TenantId,
  subject: Schema.String,
  roles: Schema.Array(Role),
  method: Schema.Literals(["api-key", "jwt", "admin-key"]),
  tier: Schema.optional(Schema.String)
}) {
  /**
   * @since 0.1.0
   */
  hasRole(role: Role): boolean {
    return this.roles.includes(role)
  }
}

/**
 * The principal of the current request, provided by the authentication middleware.
 *
 * @since 0.1.0
 * @category services
 */
export class CurrentPrincipal
  extends Context.Service<CurrentPrincipal, Principal>()("@ouroboros/kernel/CurrentPrincipal")
{}
