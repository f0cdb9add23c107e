/**
 * The JSON the admin API answers, as the console reads it (the encoded side of the server's schemas:
 * `@ouroboros/circuit-breaker` `Snapshot`, `@ouroboros/backup` `BackupInfo`, `@ouroboros/feature-flags` `FlagView`,
 * `@ouroboros/tenancy` `Tenant` / `ApiKeyInfo` / `IssuedKey` / `UsageReport`, `@ouroboros/audit` `AuditRecord` /
 * `AuditPage` / `AuditInclusionProof` / `AuditVerifyResult`). Plain types: the console renders what it gets as text
 * and never evaluates it, and keeping a schema library out of the bundle keeps it small.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export type BreakerState = "closed" | "open" | "half-open" | "forced-open" | "disabled"

/** @since 0.1.0 */
export interface BreakerSnapshot {
  readonly name: string
  readonly state: BreakerState
  readonly version: number
  readonly consecutiveFailures: number
  readonly window: { readonly total: number; readonly failures: number; readonly slow: number } | null
  readonly openedAt: number | null
  readonly retryAfter: number | null
  readonly attempts: number
  readonly trials: number
}

/** @since 0.1.0 */
export interface Verification {
  readonly tier: "checksums" | "restore"
  readonly verifiedAt: string
  readonly ok: boolean
  readonly problems: ReadonlyArray<string>
}

/** @since 0.1.0 */
export interface Manifest {
  readonly id: string
  readonly kind: "full" | "incremental"
  readonly schemaVersion: number
  readonly parent?: string
  readonly createdAt: string
  readonly completedAt: string
  readonly events: {
    readonly from: number
    readonly to: number
    readonly count: number
    readonly lastRecordedAt?: string
  }
  readonly projectionCheckpoint: number
  readonly files: ReadonlyArray<
    { readonly name: string; readonly source: string; readonly bytes: number; readonly count: number }
  >
  readonly sources: ReadonlyArray<{ readonly name: string; readonly count: number; readonly hash: string }>
}

/** @since 0.1.0 */
export interface BackupInfo {
  readonly manifest: Manifest
  readonly verification?: Verification
  readonly bytes: number
}

/** @since 0.1.0 */
export interface RestoreResult {
  readonly id: string
  readonly chain: ReadonlyArray<string>
  readonly restoredEvents: number
  readonly replayedEvents: number
  readonly lastSequence: number
  readonly vectors: "snapshot" | "rebuild"
  readonly sources: ReadonlyArray<string>
}

/** @since 0.1.0 */
export interface FlagDefinition {
  readonly state: "ENABLED" | "DISABLED"
  readonly variants: Readonly<Record<string, unknown>>
  readonly defaultVariant?: string | null
  readonly targeting?: Readonly<Record<string, unknown>>
  readonly metadata?: Readonly<Record<string, unknown>>
}

/** @since 0.1.0 */
export interface FlagOverride {
  readonly variant: string
  readonly actor: string
  readonly at: string
  readonly reason?: string
}

/** @since 0.1.0 */
export interface FlagView {
  readonly key: string
  readonly source: string
  readonly definition: FlagDefinition | Readonly<Record<string, unknown>>
  readonly kill?: { readonly reason: string; readonly actor: string; readonly at: string; readonly variant?: string }
  readonly overrides: Readonly<Record<string, FlagOverride>>
}

/** @since 0.1.0 */
export interface QuotaOverrides {
  readonly documents?: number | null
  readonly storedBytes?: number | null
  readonly requestsPerDay?: number | null
  readonly llmTokensPerMonth?: number | null
}

/** @since 0.1.0 */
export interface Tenant {
  readonly id: string
  readonly name: string
  readonly tier: "free" | "standard" | "enterprise"
  readonly quotas: QuotaOverrides
  readonly rateLimitTier?: string
  readonly model?: string
  readonly dedicatedCollection: boolean
  readonly createdAt: string
  readonly updatedAt: string
}

/** @since 0.1.0 */
export type KeyRole = "tenant-admin" | "writer" | "reader"

/** @since 0.1.0 */
export interface ApiKeyInfo {
  readonly id: string
  readonly tenantId: string
  readonly name?: string
  readonly roles: ReadonlyArray<KeyRole>
  readonly source: "stored" | "environment"
  readonly status: "active" | "expiring" | "expired" | "revoked"
  readonly createdAt: string
  readonly expiresAt?: string
  readonly revokedAt?: string
  readonly replacedBy?: string
  /** When a request last authenticated with it (stored keys; written by the server about once a minute). */
  readonly lastUsedAt?: string
}

/** @since 0.1.0 */
export interface IssuedKey {
  readonly key: string
  readonly info: ApiKeyInfo
  readonly previous?: ApiKeyInfo
}

/** @since 0.1.0 */
export interface DailyUsage {
  readonly day: string
  readonly requests: number
  readonly embeddedCharacters: number
  readonly llmTokens: number
  readonly storedBytes: number
}

/** @since 0.1.0 */
export interface UsageReport {
  readonly tenantId: string
  readonly from: string
  readonly to: string
  readonly days: ReadonlyArray<DailyUsage>
  readonly totals: {
    readonly requests: number
    readonly embeddedCharacters: number
    readonly llmTokens: number
    readonly storedBytes: number
  }
}

/** @since 0.1.0 */
export const auditEventTypes = [
  "authentication.success",
  "authentication.failure",
  "authorization.denied",
  "data.read",
  "data.create",
  "data.update",
  "data.delete",
  "admin.action",
  "config.change",
  "backup",
  "restore",
  "flag.change",
  "key.created",
  "key.rotated",
  "key.revoked",
  "retention.prune",
  "retention.erasure"
] as const

/** @since 0.1.0 */
export interface AuditRecord {
  readonly index: number
  readonly id: string
  readonly time: string
  readonly type: string
  readonly tenantId?: string
  readonly actor: {
    readonly subject?: string
    readonly tenantId?: string
    readonly roles: ReadonlyArray<string>
    readonly clientAddress?: string
    readonly userAgent?: string
  }
  readonly action: string
  readonly resource: { readonly type: string; readonly id?: string; readonly [key: string]: unknown }
  readonly outcome: string
  readonly reason?: string
  readonly correlationId?: string
  readonly traceId?: string
  readonly details?: Readonly<Record<string, unknown>>
  readonly erased: boolean
  readonly leafHash: string
}

/** @since 0.1.0 */
export interface AuditPage {
  readonly entries: ReadonlyArray<AuditRecord>
  readonly nextCursor?: string
}

/** @since 0.1.0 */
export interface InclusionProof {
  readonly kind: "inclusion"
  readonly index: number
  readonly id?: string
  readonly treeSize: number
  readonly leafHash: string
  readonly proof: ReadonlyArray<string>
  readonly rootHash: string
  readonly checkpoint: string
}

/** @since 0.1.0 */
export interface AuditVerifyResult {
  readonly ok: boolean
  readonly origin: string
  readonly verifierKey: string
  readonly size: number
  readonly rootHash: string
  readonly entries: number
  readonly pruned: number
  readonly checkpoints: number
  readonly latestCheckpoint?: { readonly size: number; readonly rootHash: string }
  readonly unsignedEntries: number
  readonly firstBadIndex: number | null
  readonly problemCount: number
  readonly problems: ReadonlyArray<{ readonly kind: string; readonly index?: number; readonly detail: string }>
}

/** @since 0.1.0 */
export interface WhoAmI {
  readonly tenantId: string
  readonly subject: string
  readonly roles: ReadonlyArray<string>
}
