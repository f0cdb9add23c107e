/**
 * The identifier of a tenant: every document, vector, quota and audit record belongs to one.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * A tenant id: 1 to 64 of lower-case letters, digits, `-` and `_`, starting with a letter or digit. The shape is safe
 * in a URL path, a Qdrant collection name, a Redis key and a file name alike.
 *
 * @since 0.1.0
 * @category schemas
 * @example
 * import { TenantId } from "@ouroboros/kernel"
 * import { Schema } from "effect"
 * const acme = Schema.decodeSync(TenantId.TenantId)("acme")
 */
export const TenantId = Schema.String.check(
  Schema.isPattern(/^[a-z0-9][a-z0-9_-]{0,63}$/, {
    message: "a tenant id is 1 to 64 of a-z, 0-9, '-' and '_', starting with a letter or digit"
  })
).pipe(
  Schema.brand("@ouroboros/TenantId"),
  Schema.annotate({ identifier: "TenantId", title: "TenantId" })
)

/**
 * @since 0.1.0
 * @category models
 */
export type TenantId = typeof TenantId.Type

/**
 * Brands a string known to be a valid tenant id (checked).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (id: string): TenantId => TenantId.make(id)
