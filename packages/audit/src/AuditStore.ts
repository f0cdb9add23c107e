/**
 * Where the audit log keeps its entries: the storage half of `AuditLog`, one interface and one layer per backend
 * (memory; SQL on PostgreSQL or the embedded PGlite of `@ouroboros/sql`).
 *
 * A store holds five things, each append-only except where noted:
 *
 * - leaves: the leaf hash of every position of the tree, never changed or removed;
 * - entries: the content of each position (its canonical JSON) and the columns queries use; an entry's content is
 *   removed only by pruning, and only within index ranges that a `retention.prune` entry of the log announced first;
 * - checkpoints: signed tree heads;
 * - subject keys: the wrapped data key of each data subject; removed only by erasure, and only once a
 *   `retention.erasure` entry of the log names the key;
 * - the prune and erasure authorizations themselves.
 *
 * The SQL store enforces this with triggers (see the package README for what that protects against, and what not).
 *
 * @since 0.1.0
 */
import { Context, type Effect, Layer } from "effect"
import type { Migrator, SqlClient, SqlError } from "effect/sql"
import * as Errors from "./internal/errors.js"
import * as Memory from "./internal/memoryStore.js"
import * as Sql from "./internal/sqlStore.js"
import type * as Merkle from "./Merkle.js"

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * An entry as stored: its content (the canonical JSON the leaf hashes) and the columns that queries filter on, all
 * taken from the content.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoredEntry {
  readonly index: number
  readonly id: string
  /** Milliseconds since the epoch. */
  readonly time: number
  readonly type: string
  readonly tenantId: string | null
  readonly keyId: string | null
  readonly action: string
  readonly resourceType: string
  readonly resourceId: string | null
  readonly outcome: string
  readonly correlationId: string | null
  /** The canonical JSON of the entry: the data of its leaf, UTF-8. */
  readonly content: string
}

/**
 * An entry to append, with its leaf hash.
 *
 * @since 0.1.0
 * @category models
 */
export interface NewEntry extends StoredEntry {
  readonly leafHash: Uint8Array
}

/**
 * A signed checkpoint as stored.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoredCheckpoint {
  readonly size: number
  readonly rootHash: Uint8Array
  /** The signed note. */
  readonly note: string
}

/**
 * A data subject's key: `wrappedKey` is the data key sealed with the log's key-encryption key; `subjectRef` a keyed
 * hash of the subject, so the store never holds the subject in clear.
 *
 * @since 0.1.0
 * @category models
 */
export interface SubjectKey {
  readonly keyId: string
  /** The tenant of the subject, `""` for none. */
  readonly tenantId: string
  readonly subjectRef: Uint8Array
  readonly wrappedKey: Uint8Array
}

/**
 * A batch to append at position `expectedSize`, with the checkpoint of the tree that ends with it when one is due.
 *
 * @since 0.1.0
 * @category models
 */
export interface AppendBatch {
  readonly expectedSize: number
  readonly entries: ReadonlyArray<NewEntry>
  readonly checkpoint?: StoredCheckpoint | undefined
}

/**
 * What an append did: `Appended`, or `Behind` when the log had grown past `expectedSize` (another writer appended):
 * nothing was written, and `size` is the log's size.
 *
 * @since 0.1.0
 * @category models
 */
export type AppendOutcome =
  | { readonly _tag: "Appended" }
  | { readonly _tag: "Behind"; readonly size: number }

/**
 * A query, newest first: every given filter must match.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoreQuery {
  readonly tenantId?: string | undefined
  /** Only entries sealed with one of these subject keys (an actor query). */
  readonly keyIds?: ReadonlyArray<string> | undefined
  readonly type?: string | undefined
  readonly resourceType?: string | undefined
  readonly resourceId?: string | undefined
  readonly correlationId?: string | undefined
  /** From this instant, inclusive (ms). */
  readonly from?: number | undefined
  /** Until this instant, exclusive (ms). */
  readonly to?: number | undefined
  /** Only entries below this index (the cursor). */
  readonly before?: number | undefined
  readonly limit: number
}

/**
 * The entries a retention rule may prune: older than `before`, optionally of one tenant and one type, and not of the
 * types or tenants that a more specific rule governs. Entries of the log's own `retention.*` types are never
 * candidates.
 *
 * @since 0.1.0
 * @category models
 */
export interface PruneSelector {
  readonly tenantId?: string | undefined
  readonly type?: string | undefined
  readonly before: number
  readonly excludeTypes: ReadonlyArray<string>
  readonly excludeTenants: ReadonlyArray<string>
  /** (tenant, type) pairs that a more specific rule governs. */
  readonly excludePairs: ReadonlyArray<readonly [tenantId: string, type: string]>
  readonly limit: number
}

/**
 * The leaves and entries of an index window, as the verifier reads them.
 *
 * @since 0.1.0
 * @category models
 */
export interface Window {
  readonly leaves: ReadonlyArray<{ readonly index: number; readonly hash: Uint8Array }>
  readonly entries: ReadonlyArray<StoredEntry>
  /** Checkpoints whose size is in the window (`from < size <= to`), by size. */
  readonly checkpoints: ReadonlyArray<StoredCheckpoint>
}

/**
 * The log's own entry types, never pruned: the verifier needs them to account for pruned content and destroyed
 * keys.
 *
 * @since 0.1.0
 * @category constants
 */
export const protectedTypes: ReadonlyArray<string> = ["retention.prune", "retention.erasure"]

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/**
 * The store failed (the database is unreachable, a statement was refused). `operation` names what was tried.
 *
 * @since 0.1.0
 * @category errors
 */
export const AuditStoreError = Errors.AuditStoreError

/**
 * @since 0.1.0
 * @category errors
 */
export type AuditStoreError = Errors.AuditStoreError

// -----------------------------------------------------------------------------
// service
// -----------------------------------------------------------------------------

/**
 * The store of the audit log.
 *
 * @since 0.1.0
 * @category services
 */
export class AuditStore extends Context.Service<AuditStore, {
  /** Appends at `expectedSize`, atomically and durably (leaves, entries, the checkpoint if any), or says `Behind`. */
  readonly append: (batch: AppendBatch) => Effect.Effect<AppendOutcome, AuditStoreError>
  /** The number of leaves (the highest index plus one). */
  readonly size: Effect.Effect<number, AuditStoreError>
  /** The leaf hashes of `[from, to)`, in order. */
  readonly leafHashes: (from: number, to: number) => Effect.Effect<ReadonlyArray<Uint8Array>, AuditStoreError>
  /** Everything stored in the index window `[from, to)`, including what does not belong there. */
  readonly window: (from: number, to: number) => Effect.Effect<Window, AuditStoreError>
  /** The lowest and the highest index plus one over leaves and entries (`{ from: 0, to: 0 }` when empty). */
  readonly extent: Effect.Effect<{ readonly from: number; readonly to: number }, AuditStoreError>
  readonly entryById: (id: string) => Effect.Effect<StoredEntry | undefined, AuditStoreError>
  readonly entryAt: (index: number) => Effect.Effect<StoredEntry | undefined, AuditStoreError>
  readonly query: (query: StoreQuery) => Effect.Effect<ReadonlyArray<StoredEntry>, AuditStoreError>
  /** Checkpoints whose size is in `[from, to]`, by size (all by default). */
  readonly checkpoints: (
    from?: number,
    to?: number
  ) => Effect.Effect<ReadonlyArray<StoredCheckpoint>, AuditStoreError>
  readonly latestCheckpoint: Effect.Effect<StoredCheckpoint | undefined, AuditStoreError>
  /** Stores the keys whose (subject, tenant) has none yet; returns the stored key of each, existing or new. */
  readonly ensureKeys: (keys: ReadonlyArray<SubjectKey>) => Effect.Effect<ReadonlyArray<SubjectKey>, AuditStoreError>
  /** The keys of a subject: of one tenant, or of every tenant. */
  readonly findKeys: (
    subjectRef: Uint8Array,
    tenantId?: string
  ) => Effect.Effect<ReadonlyArray<SubjectKey>, AuditStoreError>
  readonly keysById: (keyIds: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<SubjectKey>, AuditStoreError>
  /** Destroys a key under the erasure entry at `erasureIndex` (which must name it); false when it was gone already. */
  readonly destroyKey: (keyId: string, erasureIndex: number) => Effect.Effect<boolean, AuditStoreError>
  /** Indices of entries (with content) a retention rule may prune, ascending. */
  readonly pruneCandidates: (selector: PruneSelector) => Effect.Effect<ReadonlyArray<number>, AuditStoreError>
  /** Removes the content of the entries in `ranges` under the prune entry at `pruneIndex`; returns how many. */
  readonly prune: (
    pruneIndex: number,
    ranges: ReadonlyArray<Merkle.Range>
  ) => Effect.Effect<number, AuditStoreError>
}>()("@ouroboros/audit/AuditStore") {}

// -----------------------------------------------------------------------------
// layers
// -----------------------------------------------------------------------------

/**
 * A store in memory, with the same rules as the SQL one. Nothing survives the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<AuditStore> = Layer.sync(AuditStore, () => AuditStore.of(Memory.make()))

/**
 * The SQL store on the `SqlClient` in context (PostgreSQL 15 or later, or PGlite), migrations included: tables
 * `audit_leaves`, `audit_entries`, `audit_checkpoints`, `audit_subject_keys`, `audit_prunes`, `audit_erasures`, their
 * triggers, and the `audit_append` function, recorded in `audit_migrations`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSql: Layer.Layer<AuditStore, SqlError.SqlError | Migrator.MigrationError, SqlClient.SqlClient> = Layer
  .effect(AuditStore, Sql.make).pipe(Layer.provide(Layer.effectDiscard(Sql.migrate)))
