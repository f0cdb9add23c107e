/**
 * The tenant model: a tenant record (tier, quota overrides, rate-limit tier, model choice, dedicated vector
 * collection), the metadata of its API keys, the inputs of the admin operations, and the domain errors of the tenancy
 * services.
 *
 * @since 0.1.0
 */
import { Principal, TenantId, Text } from "@ouroboros/kernel"
import { Schema } from "effect"

/**
 * A tenant's tier: it selects the default quotas and, unless `rateLimitTier` says otherwise, the rate-limit policies.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Tier = Schema.Literals(["free", "standard", "enterprise"]).annotate({ identifier: "Tier" })

/**
 * @since 0.1.0
 * @category models
 */
export type Tier = typeof Tier.Type

/**
 * A quota limit: a non-negative integer, or `null` for unlimited.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Limit = Schema.NullOr(
  Schema.Int.check(Schema.isGreaterThanOrEqualTo(0, { message: "a quota is a non-negative integer or null" }))
)

/**
 * Per-tenant quota overrides; a quota left out takes the tier's default, `null` makes it unlimited.
 *
 * - `documents`: documents stored (hard: 403 when full);
 * - `storedBytes`: bytes of document text stored (hard: 403);
 * - `requestsPerDay`: authenticated requests per UTC day (rate-like: 429 with `Retry-After` and RateLimit fields);
 * - `llmTokensPerMonth`: LLM tokens (prompt + completion) per UTC month (hard: 403).
 *
 * @since 0.1.0
 * @category schemas
 */
export const QuotaOverrides = Schema.Struct({
  documents: Schema.optionalKey(Limit),
  storedBytes: Schema.optionalKey(Limit),
  requestsPerDay: Schema.optionalKey(Limit),
  llmTokensPerMonth: Schema.optionalKey(Limit)
}).annotate({ identifier: "QuotaOverrides" })

/**
 * @since 0.1.0
 * @category models
 */
export type QuotaOverrides = typeof QuotaOverrides.Type

/**
 * A model name as Ollama spells it (`llama3.2:3b`, `library/mistral:latest`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ModelName = Schema.String.check(
  Schema.isPattern(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/, {
    message: "a model name is 1 to 128 of A-Z a-z 0-9 . _ : / -"
  })
)

/**
 * A display name: 1 to 200 characters, without a NUL character (U+0000).
 *
 * @since 0.1.0
 * @category schemas
 */
export const DisplayName = Schema.String.check(
  Schema.isMinLength(1, { message: "a name is not empty" }),
  Schema.isMaxLength(200, { message: "a name is at most 200 characters" }),
  Text.isStorable
)

/**
 * A rate-limit tier name, as the rate limiter's policies name tiers.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RateLimitTier = Schema.String.check(
  Schema.isPattern(/^[A-Za-z0-9_.:-]{1,64}$/, { message: "a rate-limit tier is 1 to 64 of A-Z a-z 0-9 _ . : -" })
)

/**
 * A tenant.
 *
 * @since 0.1.0
 * @category models
 */
export class Tenant extends Schema.Class<Tenant>("@ouroboros/tenancy/Tenant")({
  id: TenantId.TenantId,
  name: Schema.String,
  tier: Tier,
  quotas: QuotaOverrides,
  /** The tier the rate limiter's policies match; the tenant's `tier` when absent. */
  rateLimitTier: Schema.optionalKey(Schema.String),
  /** The LLM model this tenant's answers use; the server's default when absent. */
  model: Schema.optionalKey(Schema.String),
  /**
   * Whether the tenant's vectors live in a collection of their own rather than the shared, partitioned one (default:
   * for the `enterprise` tier).
   */
  dedicatedCollection: Schema.Boolean,
  createdAt: Schema.DateTimeUtc,
  updatedAt: Schema.DateTimeUtc
}) {
  /**
   * The tier the rate limiter should apply.
   *
   * @since 0.1.0
   */
  get limiterTier(): string {
    return this.rateLimitTier ?? this.tier
  }
}

/**
 * What creating a tenant takes: only the id is required (name defaults to the id, tier to `standard`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const TenantInput = Schema.Struct({
  id: TenantId.TenantId,
  name: Schema.optionalKey(DisplayName),
  tier: Schema.optionalKey(Tier),
  quotas: Schema.optionalKey(QuotaOverrides),
  rateLimitTier: Schema.optionalKey(RateLimitTier),
  model: Schema.optionalKey(ModelName),
  dedicatedCollection: Schema.optionalKey(Schema.Boolean)
}).annotate({ identifier: "TenantInput" })

/**
 * @since 0.1.0
 * @category models
 */
export type TenantInput = typeof TenantInput.Type

/**
 * A change to a tenant: the fields given replace the current ones; `quotas` replaces the overrides as a whole;
 * `null` clears `rateLimitTier` or `model`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TenantPatch = Schema.Struct({
  name: Schema.optionalKey(DisplayName),
  tier: Schema.optionalKey(Tier),
  quotas: Schema.optionalKey(QuotaOverrides),
  rateLimitTier: Schema.optionalKey(Schema.NullOr(RateLimitTier)),
  model: Schema.optionalKey(Schema.NullOr(ModelName)),
  dedicatedCollection: Schema.optionalKey(Schema.Boolean)
}).annotate({ identifier: "TenantPatch" })

/**
 * @since 0.1.0
 * @category models
 */
export type TenantPatch = typeof TenantPatch.Type

/**
 * The roles an API key can carry. `admin` is never a key's role: it belongs to the admin key and to tokens of the
 * identity provider.
 *
 * @since 0.1.0
 * @category schemas
 */
export const KeyRole = Schema.Literals(["tenant-admin", "writer", "reader"]).annotate({ identifier: "KeyRole" })

/**
 * @since 0.1.0
 * @category models
 */
export type KeyRole = typeof KeyRole.Type

/**
 * The roles of a key created without any: it may read and write the tenant's data.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultKeyRoles: ReadonlyArray<KeyRole> = ["writer", "reader"]

/**
 * Where a key comes from: created through the API (`stored`), or configured (`environment`: `OUROBOROS_API_KEYS` or
 * the config file), which the API cannot rotate or revoke.
 *
 * @since 0.1.0
 * @category schemas
 */
export const KeySource = Schema.Literals(["stored", "environment"])

/**
 * The state of a key at a given time.
 *
 * @since 0.1.0
 * @category schemas
 */
export const KeyStatus = Schema.Literals(["active", "expiring", "expired", "revoked"])

/**
 * @since 0.1.0
 * @category models
 */
export type KeyStatus = typeof KeyStatus.Type

/**
 * What may be shown of an API key: its public id (the prefix of the key), never the key or its digest.
 *
 * @since 0.1.0
 * @category models
 */
export class ApiKeyInfo extends Schema.Class<ApiKeyInfo>("@ouroboros/tenancy/ApiKeyInfo")({
  /** The public id: the `<prefix>` of `ouro_<prefix>_<secret>`. */
  id: Schema.String,
  tenantId: TenantId.TenantId,
  name: Schema.optionalKey(Schema.String),
  roles: Schema.Array(KeyRole),
  source: KeySource,
  status: KeyStatus,
  createdAt: Schema.DateTimeUtc,
  /** When the key stops working (a rotated key's grace period, or an expiry given at creation). */
  expiresAt: Schema.optionalKey(Schema.DateTimeUtc),
  revokedAt: Schema.optionalKey(Schema.DateTimeUtc),
  /** The id of the key that replaced this one by rotation. */
  replacedBy: Schema.optionalKey(Schema.String),
  /**
   * When a request last authenticated with the key (stored keys; written in batches every
   * `API_KEY_LAST_USED_INTERVAL`, this replica's latest use included).
   */
  lastUsedAt: Schema.optionalKey(Schema.DateTimeUtc)
}) {}

/**
 * What creating a key takes.
 *
 * @since 0.1.0
 * @category schemas
 */
export const KeyInput = Schema.Struct({
  name: Schema.optionalKey(DisplayName),
  roles: Schema.optionalKey(Schema.Array(KeyRole).check(Schema.isMinLength(1, { message: "give at least one role" }))),
  /** Seconds until the key expires; none: it does not expire. */
  expiresInSeconds: Schema.optionalKey(
    Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 10 * 365 * 86_400 }, { message: "1 s to 10 years" }))
  )
}).annotate({ identifier: "KeyInput" })

/**
 * @since 0.1.0
 * @category models
 */
export type KeyInput = typeof KeyInput.Type

/**
 * What rotating a key takes: how long the old key keeps working (default `API_KEY_ROTATION_GRACE`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const RotateInput = Schema.Struct({
  gracePeriodSeconds: Schema.optionalKey(
    Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 30 * 86_400 }, { message: "0 s to 30 days" }))
  )
}).annotate({ identifier: "RotateInput" })

/**
 * @since 0.1.0
 * @category models
 */
export type RotateInput = typeof RotateInput.Type

/**
 * A key as its creation or rotation returns it: the only time the secret is shown.
 *
 * @since 0.1.0
 * @category models
 */
export class IssuedKey extends Schema.Class<IssuedKey>("@ouroboros/tenancy/IssuedKey")({
  /** The key itself (`ouro_<prefix>_<secret>`); it cannot be shown again. */
  key: Schema.String,
  info: ApiKeyInfo,
  /** On rotation: the key it replaces, with the end of its grace period. */
  previous: Schema.optionalKey(ApiKeyInfo)
}) {}

/**
 * What deleting a tenant did.
 *
 * @since 0.1.0
 * @category models
 */
export class DeletedTenant extends Schema.Class<DeletedTenant>("@ouroboros/tenancy/DeletedTenant")({
  tenant: Tenant,
  /** How many stored keys stopped working with it. */
  keysDeleted: Schema.Int
}) {}

/**
 * A change to the tenants, published on `Tenants.events` (audit, caches of other features). `actor` is who made it:
 * the `Principal.CurrentPrincipal` of the call that made it (an admin API handler has one), absent for the command
 * line and startup.
 *
 * @since 0.1.0
 * @category models
 */
export type TenantEvent =
  & (
    | { readonly _tag: "TenantCreated"; readonly tenant: Tenant }
    | { readonly _tag: "TenantUpdated"; readonly tenant: Tenant }
    | { readonly _tag: "TenantDeleted"; readonly tenant: Tenant; readonly keysDeleted: number }
    | { readonly _tag: "KeyCreated"; readonly key: ApiKeyInfo }
    | { readonly _tag: "KeyRotated"; readonly key: ApiKeyInfo; readonly previous: ApiKeyInfo }
    | { readonly _tag: "KeyRevoked"; readonly key: ApiKeyInfo }
  )
  & { readonly actor?: Principal.Principal | undefined }

/**
 * No tenant with this id.
 *
 * @since 0.1.0
 * @category errors
 */
export class TenantNotFound extends Schema.TaggedError<TenantNotFound>()("TenantNotFound", {
  tenantId: Schema.String
}) {
  override get message(): string {
    return `no tenant ${this.tenantId}`
  }
}

/**
 * A tenant with this id exists already.
 *
 * @since 0.1.0
 * @category errors
 */
export class TenantAlreadyExists extends Schema.TaggedError<TenantAlreadyExists>()("TenantAlreadyExists", {
  tenantId: Schema.String
}) {
  override get message(): string {
    return `a tenant ${this.tenantId} exists already`
  }
}

/**
 * No key with this id for this tenant.
 *
 * @since 0.1.0
 * @category errors
 */
export class ApiKeyNotFound extends Schema.TaggedError<ApiKeyNotFound>()("ApiKeyNotFound", {
  tenantId: Schema.String,
  keyId: Schema.String
}) {
  override get message(): string {
    return `tenant ${this.tenantId} has no usable key ${this.keyId}`
  }
}

/**
 * The key exists but is revoked or expired: it cannot be rotated (create a new key instead).
 *
 * @since 0.1.0
 * @category errors
 */
export class ApiKeyNotUsable extends Schema.TaggedError<ApiKeyNotUsable>()("ApiKeyNotUsable", {
  tenantId: Schema.String,
  keyId: Schema.String
}) {
  override get message(): string {
    return `key ${this.keyId} of tenant ${this.tenantId} is revoked or expired: create a new key instead`
  }
}

/**
 * The key is configured (`OUROBOROS_API_KEYS`, the config file) and cannot be rotated or revoked through the API.
 *
 * @since 0.1.0
 * @category errors
 */
export class ApiKeyReadOnly extends Schema.TaggedError<ApiKeyReadOnly>()("ApiKeyReadOnly", {
  tenantId: Schema.String,
  keyId: Schema.String
}) {
  override get message(): string {
    return `key ${this.keyId} of tenant ${this.tenantId} is configured in the environment or the config file: ` +
      "change it there"
  }
}

/**
 * The principal of the admin key: the `admin` role, acting in the `system` pseudo-tenant.
 *
 * @since 0.1.0
 * @category constants
 */
export const adminPrincipal: Principal.Principal = new Principal.Principal({
  tenantId: TenantId.make("system"),
  subject: "admin",
  roles: ["admin"],
  method: "admin-key"
})
