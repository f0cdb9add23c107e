/**
 * Where tenants and their API keys are kept. The `Tenants` service holds the rules (digests, rotation, grace periods,
 * caches); a store only keeps records, with the few conditional writes that must be atomic (a rotation is one).
 *
 * Backends: `TenantStore/Memory` (tests, a config-file-only setup) and `TenantStore/Sql` (PostgreSQL or the embedded
 * PGlite, through `@ouroboros/sql`). Both pass the same contract suite.
 *
 * @since 0.1.0
 */
import type { TenantId } from "@ouroboros/kernel"
import { Context, Data, type Effect, type Option } from "effect"
import type { ApiKeyNotFound, KeyRole, Tenant, TenantAlreadyExists, TenantNotFound } from "./Tenant.js"

/**
 * A stored API key: its digest (hex), never the key. Times are epoch milliseconds.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoredKey {
  /** The key's public prefix. */
  readonly id: string
  readonly tenantId: TenantId.TenantId
  /** SHA-256 or HMAC-SHA-256 of the whole key, lower-case hex. */
  readonly digest: string
  readonly name: string | undefined
  readonly roles: ReadonlyArray<KeyRole>
  readonly createdAt: number
  readonly expiresAt: number | undefined
  readonly revokedAt: number | undefined
  readonly replacedBy: string | undefined
  /** When a request last authenticated with the key, as last written (see `touchKeys`). */
  readonly lastUsedAt?: number | undefined
}

/**
 * A key id is taken already (two generated prefixes met: one chance in 2^48 per pair). The caller draws another.
 *
 * @since 0.1.0
 * @category errors
 */
export class KeyIdTaken extends Data.TaggedError("KeyIdTaken")<{ readonly id: string }> {}

/**
 * Whether a stored key admits requests at `now`.
 *
 * @since 0.1.0
 * @category utils
 */
export const isUsable = (key: StoredKey, now: number): boolean =>
  key.revokedAt === undefined && (key.expiresAt === undefined || now < key.expiresAt)

/**
 * The store. Infrastructure failures are defects (a caller cannot handle them); the typed errors are the ones the
 * `Tenants` service answers with.
 *
 * @since 0.1.0
 * @category services
 */
export class TenantStore extends Context.Service<TenantStore, {
  readonly list: Effect.Effect<ReadonlyArray<Tenant>>
  readonly get: (id: TenantId.TenantId) => Effect.Effect<Option.Option<Tenant>>
  readonly insert: (tenant: Tenant) => Effect.Effect<void, TenantAlreadyExists>
  /** Replaces the tenant with the same id. */
  readonly update: (tenant: Tenant) => Effect.Effect<void, TenantNotFound>
  /** Deletes the tenant and its keys; yields how many keys went with it. */
  readonly delete: (id: TenantId.TenantId) => Effect.Effect<number, TenantNotFound>
  readonly listKeys: (tenantId: TenantId.TenantId) => Effect.Effect<ReadonlyArray<StoredKey>>
  readonly findKey: (id: string) => Effect.Effect<Option.Option<StoredKey>>
  readonly insertKey: (key: StoredKey) => Effect.Effect<void, TenantNotFound | KeyIdTaken>
  /**
   * One atomic step: the key `id` of `tenantId`, usable at `now`, gets `expiresAt` (or keeps an earlier one) and
   * `replacedBy`, and `replacement` is inserted. Yields the old key as it now is.
   */
  readonly rotateKey: (options: {
    readonly tenantId: TenantId.TenantId
    readonly id: string
    readonly replacement: StoredKey
    readonly expiresAt: number
    readonly now: number
  }) => Effect.Effect<StoredKey, ApiKeyNotFound | KeyIdTaken>
  /** Marks the key revoked at `at` (a revoked key stays revoked: the first time is kept). */
  readonly revokeKey: (tenantId: TenantId.TenantId, id: string, at: number) => Effect.Effect<StoredKey, ApiKeyNotFound>
  /**
   * Records when keys were last used, many in one write: each key's `lastUsedAt` becomes the given time unless it is
   * later already (replicas write in any order). Unknown ids are ignored.
   */
  readonly touchKeys: (uses: ReadonlyArray<{ readonly id: string; readonly at: number }>) => Effect.Effect<void>
}>()("@ouroboros/tenancy/TenantStore") {}
