/**
 * Who is calling: the authenticated identity that request handlers act for.
 *
 * @since 0.1.0
 */
import { Context, Schema } from "effect"
import { TenantId } from "./TenantId.js"

/**
 * The roles a principal can hold. `admin` opens `/admin/...`.
 *
 * @since 0.1.0
 * @category models
 */
export const Role = Schema.Literal("admin", "writer", "reader")

/**
 * @since 0.1.0
 * @category models
 */
export type Role = typeof Role.Type

/**
 * An authenticated caller: the tenant it acts in, a subject (key id, JWT `sub`), its roles and how it proved itself.
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
  method: Schema.Literal("api-key", "jwt", "admin-key")
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
 * @category tags
 */
export class CurrentPrincipal extends Context.Tag("@ouroboros/kernel/CurrentPrincipal")<CurrentPrincipal, Principal>() {}
