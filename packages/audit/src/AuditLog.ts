/**
 * The audit log: a record of who did what, to what, when, from where and with what outcome, that nobody can quietly
 * change.
 *
 * - Every entry is hashed over its canonical JSON (RFC 8785) into a Merkle tree (RFC 9162); the log signs
 *   checkpoints of the tree (C2SP signed notes), proves that an entry is in it (inclusion) and that a later tree
 *   extends an earlier one (consistency), and verifies itself from the database or from an export.
 * - {@link AuditLog.append} is durable: it returns once the entry is committed. {@link AuditLog.record} is for reads:
 *   it queues the event and returns at once; the queue is bounded, and what overflows is counted
 *   (`audit_events_dropped_total`) and logged. Events that must be durable before their operation is answered
 *   (denials, changes) are always appended, even through `record`.
 * - Appends are group-committed: the events waiting are written in one statement and one commit, and the next group
 *   is sent while one commits (`commitsInFlight`); the store orders the commits, and positions follow commit order.
 * - Personal fields are sealed with a key per data subject; {@link AuditLog.erase} destroys the key (GDPR art. 17)
 *   and every proof still verifies. {@link AuditLog.prune} removes expired content per the retention rules, leaving
 *   the leaf hashes, so the tree and its checkpoints stay verifiable. Both are audited in the log itself.
 *
 * @since 0.1.0
 */
import { RequestContext } from "@ouroboros/kernel"
import canonicalize from "canonicalize"
import {
  Cause,
  Clock,
  Config,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  type Fiber,
  Layer,
  Metric,
  Option,
  Queue,
  Redacted,
  Result,
  Schedule,
  Schema,
  Semaphore,
  Stream,
  Tracer
} from "effect"
import type { Migrator, SqlClient, SqlError } from "effect/sql"
import { randomUUID } from "node:crypto"
import * as AuditEvent from "./AuditEvent.js"
import * as AuditKeys from "./AuditKeys.js"
import * as AuditStore from "./AuditStore.js"
import * as Checkpoint from "./Checkpoint.js"
import * as Canonical from "./internal/canonical.js"
import * as Sealing from "./internal/sealing.js"
import { Tree } from "./internal/tree.js"
import * as Merkle from "./Merkle.js"
import * as Retention from "./Retention.js"
import * as Verifier from "./Verifier.js"

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/**
 * The event could not be made durable (the store failed, or the log is closing). Nothing was recorded.
 *
 * @since 0.1.0
 * @category errors
 */
export class AuditUnavailable extends Schema.TaggedError<AuditUnavailable>()(
  "AuditUnavailable",
  { detail: Schema.String },
  { httpApiStatus: 503, description: "The audit log cannot record the event" }
) {}

/**
 * The event does not match the event schema (an empty action, a NUL character, a field too long…).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidEvent extends Schema.TaggedError<InvalidEvent>()(
  "InvalidEvent",
  { detail: Schema.String },
  { httpApiStatus: 422, description: "The audit event is invalid" }
) {}

/**
 * No entry has this id or position (for this caller), or its content was pruned.
 *
 * @since 0.1.0
 * @category errors
 */
export class EntryNotFound extends Schema.TaggedError<EntryNotFound>()(
  "EntryNotFound",
  { detail: Schema.String },
  { httpApiStatus: 404, description: "No such audit entry" }
) {}

/**
 * A proof was asked for sizes or positions the log does not have.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidProofRequest extends Schema.TaggedError<InvalidProofRequest>()(
  "InvalidProofRequest",
  { detail: Schema.String },
  { httpApiStatus: 400, description: "The proof request names sizes or positions the log does not have" }
) {}

/**
 * A query cursor that this log did not issue.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidCursor extends Schema.TaggedError<InvalidCursor>()(
  "InvalidCursor",
  { detail: Schema.String },
  { httpApiStatus: 400, description: "The cursor is not valid" }
) {}

/**
 * The stored log does not match the last checkpoint it signed (found at start): it refuses to sign more until an
 * operator has looked (`verify` names what differs).
 *
 * @since 0.1.0
 * @category errors
 */
export class LogInconsistent extends Schema.TaggedError<LogInconsistent>()(
  "LogInconsistent",
  { detail: Schema.String },
  { httpApiStatus: 503, description: "The stored audit log does not match its last signed checkpoint" }
) {}

/**
 * Every error of the audit log.
 *
 * @since 0.1.0
 * @category errors
 */
export type AuditLogError =
  | AuditUnavailable
  | InvalidEvent
  | EntryNotFound
  | InvalidProofRequest
  | InvalidCursor
  | LogInconsistent

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * A durable append: where the entry is and what it is called.
 *
 * @since 0.1.0
 * @category models
 */
export interface Appended {
  readonly index: number
  readonly id: string
  /** ISO 8601. */
  readonly time: string
}

/**
 * A query, newest entries first. Every given filter must match.
 *
 * @since 0.1.0
 * @category models
 */
export interface Query {
  readonly tenantId?: string | undefined
  /** The actor's subject (found through its subject keys: an erased subject matches nothing). */
  readonly actor?: string | undefined
  readonly type?: AuditEvent.EventType | undefined
  readonly resourceType?: string | undefined
  readonly resourceId?: string | undefined
  readonly correlationId?: string | undefined
  /** From this instant, inclusive. */
  readonly from?: Date | undefined
  /** Until this instant, exclusive. */
  readonly to?: Date | undefined
  /** The `nextCursor` of the previous page. */
  readonly cursor?: string | undefined
  /** 1 to 1000, default 100. */
  readonly limit?: number | undefined
}

/**
 * Who is asking: a tenant scope limits queries and proofs to the entries of that tenant (a tenant admin); none sees
 * everything (an admin).
 *
 * @since 0.1.0
 * @category models
 */
export interface Scope {
  readonly tenantId?: string | undefined
}

/**
 * One page of a query.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Page = Schema.Struct({
  entries: Schema.Array(AuditEvent.AuditRecord),
  /** Pass it as `cursor` for the next page; absent on the last page. */
  nextCursor: Schema.optionalKey(Schema.String)
}).annotate({ identifier: "AuditPage" })

/**
 * @since 0.1.0
 * @category models
 */
export type Page = typeof Page.Type

/**
 * A signed checkpoint of the log: the C2SP note and what it says.
 *
 * @since 0.1.0
 * @category schemas
 */
export const SignedCheckpoint = Schema.Struct({
  origin: Schema.String,
  size: Schema.Int,
  /** base64 */
  rootHash: Schema.String,
  note: Schema.String
}).annotate({ identifier: "AuditCheckpoint" })

/**
 * @since 0.1.0
 * @category models
 */
export type SignedCheckpoint = typeof SignedCheckpoint.Type

/**
 * An inclusion proof (RFC 9162 §2.1.3): the entry's leaf is at `index` in the tree of `treeSize` whose root is
 * `rootHash`, signed in `checkpoint`. Hashes are base64.
 *
 * @since 0.1.0
 * @category schemas
 */
export const InclusionProof = Schema.Struct({
  kind: Schema.Literal("inclusion"),
  index: Schema.Int,
  id: Schema.optionalKey(Schema.String),
  treeSize: Schema.Int,
  leafHash: Schema.String,
  proof: Schema.Array(Schema.String),
  rootHash: Schema.String,
  checkpoint: Schema.String
}).annotate({ identifier: "AuditInclusionProof" })

/**
 * @since 0.1.0
 * @category models
 */
export type InclusionProof = typeof InclusionProof.Type

/**
 * A consistency proof (RFC 9162 §2.1.4): the tree of `first` entries is a prefix of the tree of `second`, signed in
 * `checkpoint`. Hashes are base64.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ConsistencyProof = Schema.Struct({
  kind: Schema.Literal("consistency"),
  first: Schema.Int,
  second: Schema.Int,
  firstRootHash: Schema.String,
  secondRootHash: Schema.String,
  proof: Schema.Array(Schema.String),
  checkpoint: Schema.String
}).annotate({ identifier: "AuditConsistencyProof" })

/**
 * @since 0.1.0
 * @category models
 */
export type ConsistencyProof = typeof ConsistencyProof.Type

/**
 * Which entry an inclusion proof is for: by `id`, or by position (`index`); in the current tree or the one of `size`.
 *
 * @since 0.1.0
 * @category models
 */
export interface InclusionRequest {
  readonly id?: string | undefined
  readonly index?: number | undefined
  readonly size?: number | undefined
}

/**
 * What an erasure did: the subject keys destroyed and the entry that records it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Erasure {
  readonly keyIds: ReadonlyArray<string>
  readonly index: number
}

/**
 * What a pruning did: how many entries lost their content, under which `retention.prune` entries.
 *
 * @since 0.1.0
 * @category models
 */
export interface Pruning {
  readonly pruned: number
  readonly entries: ReadonlyArray<number>
}

/**
 * The audit log.
 *
 * @since 0.1.0
 * @category services
 * @example
 * import { AuditEvent, AuditLog } from "@ouroboros/audit"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const audit = yield* AuditLog.AuditLog
 *   const actor = AuditEvent.actorOf({ tenantId: "acme", subject: "key:1", roles: ["writer"] })
 *   yield* audit.append({
 *     type: "data.delete",
 *     actor,
 *     action: "documents.delete",
 *     resource: { type: "document", id: "42" },
 *     outcome: "success"
 *   })
 *   const page = yield* audit.query({ tenantId: "acme", type: "data.delete" })
 *   const proof = yield* audit.proveInclusion({ id: page.entries[0]!.id })
 * })
 */
export class AuditLog extends Context.Service<AuditLog, {
  /** Records an event durably: succeeds once it is committed. */
  readonly append: (event: AuditEvent.AuditEvent) => Effect.Effect<Appended, AuditUnavailable | InvalidEvent>
  /**
   * Records an event without waiting (reads). Never fails: an invalid event, a full queue or a store failure is
   * counted and logged. Types that must be durable are appended and waited for.
   */
  readonly record: (event: AuditEvent.AuditEvent) => Effect.Effect<void>
  readonly query: (query: Query, scope?: Scope) => Effect.Effect<Page, InvalidCursor | AuditUnavailable>
  readonly get: (id: string, scope?: Scope) => Effect.Effect<AuditEvent.AuditRecord, EntryNotFound | AuditUnavailable>
  /** A checkpoint of the current tree, signed now. */
  readonly checkpoint: Effect.Effect<SignedCheckpoint, LogInconsistent | AuditUnavailable>
  /** The inclusion proof of an entry (by id, or by position for an admin), in the current tree or one of `size`. */
  readonly proveInclusion: (
    request: InclusionRequest,
    scope?: Scope
  ) => Effect.Effect<InclusionProof, EntryNotFound | InvalidProofRequest | LogInconsistent | AuditUnavailable>
  /** The consistency proof from the tree of `first` entries to the tree of `second` (default: the current size). */
  readonly proveConsistency: (
    first: number,
    second?: number
  ) => Effect.Effect<ConsistencyProof, InvalidProofRequest | LogInconsistent | AuditUnavailable>
  /** Recomputes everything from the store; see `Verifier`. */
  readonly verify: (
    options?: { readonly onProgress?: ((progress: Verifier.Progress) => Effect.Effect<void>) | undefined }
  ) => Effect.Effect<Verifier.VerifyResult, AuditUnavailable>
  /** The log as NDJSON lines (see `Verifier.exportLines`), verifiable offline with `Verifier.verifyExport`. */
  readonly export: Stream.Stream<string>
  /** Erases a data subject (of one tenant, or of every tenant): destroys its keys, recorded as `retention.erasure`. */
  readonly erase: (
    subject: { readonly subject: string; readonly tenantId?: string | undefined },
    options: { readonly actor: AuditEvent.Actor; readonly reason?: string | undefined }
  ) => Effect.Effect<Erasure, AuditUnavailable | InvalidEvent>
  /** Removes the content of expired entries per the retention rules, each batch announced by `retention.prune`. */
  readonly prune: (
    options?: { readonly actor?: AuditEvent.Actor | undefined }
  ) => Effect.Effect<Pruning, AuditUnavailable>
  /** The number of entries. */
  readonly size: Effect.Effect<number>
  readonly origin: string
  /** The verifier key of the checkpoints (`<name>+<hash>+<key>`), for witnesses and offline verification. */
  readonly verifierKey: string
}>()("@ouroboros/audit/AuditLog") {}

// -----------------------------------------------------------------------------
// configuration
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly keys: AuditKeys.Keys
  /** The checkpoint origin (default `ouroboros.local/audit`). */
  readonly origin?: string | undefined
  /** Events `record` may hold before it drops them (default 10,000). */
  readonly queueCapacity?: number | undefined
  /** At most this many events per commit (default 512). */
  readonly maxGroupSize?: number | undefined
  /**
   * At most this many commits on their way to the store at once (default 2; 1: each waits for the one before). The
   * next group is sent while the one before commits; the store orders them.
   */
  readonly commitsInFlight?: number | undefined
  /** A signed checkpoint is stored with a commit once this long has passed since the last (default 10 s; 0: each). */
  readonly checkpointInterval?: Duration.Input | undefined
  readonly retention?: ReadonlyArray<Retention.Rule> | undefined
  /** How often to prune on its own (default: never; call `prune`). */
  readonly pruneInterval?: Duration.Input | undefined
  /** How long another replica's erasure may take to reach this one's key cache (default 1 minute). */
  readonly keyCacheTtl?: Duration.Input | undefined
}

/**
 * The default checkpoint origin.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultOrigin = "ouroboros.local/audit"

const between = (name: string, min: number, max: number) =>
  Config.schema(
    Schema.Int.check(
      Schema.isBetween({ minimum: min, maximum: max }, { message: `must be between ${min} and ${max}` })
    ),
    name
  )

/**
 * The configuration of {@link layerConfig} (the server nests it under `AUDIT_`, so `SIGNING_KEY` is read as
 * `AUDIT_SIGNING_KEY`):
 *
 * - `SIGNING_KEY` (secret): the Ed25519 checkpoint key (`PRIVATE+KEY+…`, PKCS#8 PEM or base64, or a 32-byte seed in
 *   base64 or hex); unset: generated into `<DATA_DIR>/audit/signing-key` on first start.
 * - `ENCRYPTION_KEY` (secret): 32 bytes, base64 or hex, protecting the subject keys; unset: generated into
 *   `<DATA_DIR>/audit/encryption-key`.
 * - `ORIGIN` (default `ouroboros.local/audit`): the checkpoint origin line.
 * - `QUEUE_CAPACITY` (default 10000), `MAX_GROUP_SIZE` (default 512), `CHECKPOINT_INTERVAL` (default 10 seconds).
 * - `RETENTION` (default none): `[<tenant>/]<type or *>=<age>, …`; `PRUNE_INTERVAL` (default unset: prune on demand).
 *
 * @since 0.1.0
 * @category config
 */
export const config = Config.all({
  signingKey: Config.option(Config.Redacted("SIGNING_KEY")),
  encryptionKey: Config.option(Config.Redacted("ENCRYPTION_KEY")),
  origin: Config.String("ORIGIN").pipe(Config.withDefault(defaultOrigin)),
  queueCapacity: between("QUEUE_CAPACITY", 1, 1_000_000).pipe(Config.withDefault(10_000)),
  maxGroupSize: between("MAX_GROUP_SIZE", 1, 10_000).pipe(Config.withDefault(512)),
  checkpointInterval: Config.Duration("CHECKPOINT_INTERVAL").pipe(Config.withDefault(Duration.seconds(10))),
  retention: Config.schema(Retention.RulesFromString, "RETENTION").pipe(
    Config.withDefault<ReadonlyArray<Retention.Rule>>([])
  ),
  pruneInterval: Config.option(Config.Duration("PRUNE_INTERVAL"))
})

/**
 * @since 0.1.0
 * @category models
 */
export type AuditConfig = Config.Success<typeof config>

// -----------------------------------------------------------------------------
// metrics
// -----------------------------------------------------------------------------

/**
 * The log's metrics: events appended, dropped by `record` on a full queue, refused as invalid, and lost to a store
 * failure; and the size of the log.
 *
 * @since 0.1.0
 * @category metrics
 */
export const metrics = {
  appended: Metric.counter("audit_events_appended_total", {
    description: "Audit events committed to the log",
    incremental: true
  }),
  dropped: Metric.counter("audit_events_dropped_total", {
    description: "Audit events that record() dropped because its queue was full",
    incremental: true
  }),
  rejected: Metric.counter("audit_events_rejected_total", {
    description: "Audit events refused because they do not match the event schema",
    incremental: true
  }),
  failed: Metric.counter("audit_events_failed_total", {
    description: "Audit events lost because the store failed",
    incremental: true
  }),
  size: Metric.gauge("audit_log_entries", { description: "Entries in the audit log (the tree size)" })
}

// -----------------------------------------------------------------------------
// implementation
// -----------------------------------------------------------------------------

interface Pending {
  readonly _tag: "Event"
  readonly event: AuditEvent.AuditEvent
  /** The canonical JSON of `details` and `personalDetails`, made in the caller's fiber (and checked there). */
  readonly detailsJson: string | undefined
  readonly personalDetailsJson: string | undefined
  readonly id: string
  readonly time: number
  /** `time` in ISO 8601, made once: it is in the entry and in the answer. */
  readonly isoTime: string
  readonly correlationId: string | undefined
  readonly traceId: string | undefined
  /** Answers the caller of an append (a record has none). */
  readonly resume: ((result: Effect.Effect<Appended, AuditUnavailable>) => void) | undefined
}

interface Flush {
  readonly _tag: "Flush"
  readonly done: Deferred.Deferred<void>
}

/** A group of events made into entries, on its way to the store. */
interface Batch {
  readonly _tag: "Batch"
  readonly items: ReadonlyArray<Pending>
  readonly sealed: ReadonlyArray<AuditEvent.Sealed>
  readonly base: number
  readonly entries: ReadonlyArray<AuditStore.NewEntry>
}

const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64")
const decodeEvent = Schema.decodeUnknownResult(AuditEvent.AuditEvent)

const encodeCursor = (index: number) => Buffer.from(JSON.stringify({ b: index })).toString("base64url")
const decodeCursor = (cursor: string): number | undefined => {
  try {
    const value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"))
    return Number.isSafeInteger(value?.b) && value.b >= 0 ? value.b : undefined
  } catch {
    return undefined
  }
}

/** Consecutive indices as `[from, to]` ranges (inclusive). */
const toRanges = (indices: ReadonlyArray<number>): Array<[number, number]> => {
  const out: Array<[number, number]> = []
  for (const index of indices) {
    const last = out[out.length - 1]
    if (last !== undefined && last[1] === index - 1) last[1] = index
    else out.push([index, index])
  }
  return out
}

/**
 * Builds the log on the `AuditStore` in context: loads the tree, checks it against the last signed checkpoint, and
 * starts the writer. Closing the scope writes what is queued and a final checkpoint.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(options: Options) {
  const store = yield* AuditStore.AuditStore
  const origin = options.origin ?? defaultOrigin
  const signer = options.keys.signer
  const verifier = Checkpoint.verifierOf(signer)
  const ring = Sealing.keyRing(Redacted.value(options.keys.encryptionKey))
  const queueCapacity = Math.max(1, Math.trunc(options.queueCapacity ?? 10_000))
  const maxGroup = Math.max(1, Math.trunc(options.maxGroupSize ?? 512))
  const commitsInFlight = Math.max(1, Math.trunc(options.commitsInFlight ?? 2))
  const checkpointEvery = Duration.toMillis(
    Duration.fromInputUnsafe(options.checkpointInterval ?? Duration.seconds(10))
  )
  const keyCacheTtl = Duration.toMillis(Duration.fromInputUnsafe(options.keyCacheTtl ?? Duration.minutes(1)))
  const rules = options.retention ?? []

  // --- the tree, loaded from the store -------------------------------------------------------------------------
  const tree = new Tree()
  const treeLock = yield* Semaphore.make(1)
  const unavailable = (error: AuditStore.AuditStoreError) =>
    new AuditUnavailable({ detail: `the audit store failed (${error.operation}): ${error.message}` })

  // A read the store cannot answer is the log's unavailability (503), not a defect.
  const orUnavailable = <A, R>(effect: Effect.Effect<A, AuditStore.AuditStoreError, R>) =>
    Effect.mapError(effect, unavailable)

  const catchUp = (to: number) =>
    Effect.gen(function*() {
      while (tree.size < to) {
        const hashes = yield* store.leafHashes(tree.size, Math.min(to, tree.size + 50_000))
        if (hashes.length === 0) break
        tree.append(hashes)
      }
    })

  const leavesOfTiles = (tiles: ReadonlyArray<number>, size: number) =>
    Effect.forEach(tiles, (tile) =>
      Effect.map(
        store.leafHashes(tile * tree.tileSize, Math.min(size, (tile + 1) * tree.tileSize)),
        (hashes) => [tile, hashes] as const
      )).pipe(Effect.map((pairs) => new Map(pairs)))

  /** The subtree hashes of `ranges` of the tree of `size` (at most the current size). */
  const hashRanges = (ranges: ReadonlyArray<Merkle.Range>, size: number) =>
    Effect.map(
      leavesOfTiles(tree.tilesFor(ranges), size),
      (tiles) => ranges.map(([a, b]) => tree.hashRange(a, b, (tile) => tiles.get(tile) ?? []))
    )

  const rootAt = (size: number) =>
    size === 0
      ? Effect.succeed(Merkle.emptyRoot)
      : size === tree.size
      ? Effect.succeed(tree.root())
      : Effect.map(hashRanges([[0, size]], size), ([root]) => root!)

  yield* catchUp(yield* store.size)
  let inconsistency: string | undefined
  const latest = yield* store.latestCheckpoint
  if (latest !== undefined) {
    // The root is what must match; a signature by another key (after a key rotation) is only worth a warning.
    const parsed = Result.flatMap(Checkpoint.parseNote(latest.note), ({ text }) => Checkpoint.parseCheckpoint(text))
    if (latest.size > tree.size) {
      inconsistency = `the last checkpoint signs ${latest.size} entries but the store has ${tree.size}`
    } else if (Result.isFailure(parsed) || parsed.success.size !== latest.size) {
      inconsistency = `the last checkpoint (size ${latest.size}) is malformed`
    } else if (base64(yield* rootAt(latest.size)) !== base64(parsed.success.rootHash)) {
      inconsistency = `the stored entries do not have the root of the last checkpoint (size ${latest.size})`
    } else if (Result.isFailure(Checkpoint.openCheckpoint(latest.note, verifier, origin))) {
      yield* Effect.logWarning(
        "the last audit checkpoint was signed by another key or for another origin (a rotation?); " +
          "verify checks checkpoints against the current key"
      )
    }
  }
  if (inconsistency !== undefined) {
    yield* Effect.logError(`the audit log is inconsistent: ${inconsistency}; it will not sign checkpoints. Run verify.`)
  }
  const inconsistent = () =>
    inconsistency === undefined ? Effect.void : Effect.fail(new LogInconsistent({ detail: inconsistency }))
  let persistedSize = latest?.size ?? -1
  let persistedAt = Number.NEGATIVE_INFINITY
  yield* Metric.update(metrics.size, tree.size)

  const sign = (size: number, rootHash: Uint8Array) => Checkpoint.signCheckpoint({ origin, size, rootHash }, signer)

  const sync = treeLock.withPermit(Effect.flatMap(store.size, catchUp))

  // --- subject keys ---------------------------------------------------------------------------------------------
  interface CachedKey {
    readonly keyId: string
    readonly key: Uint8Array | undefined
    readonly at: number
  }
  const bySubject = new Map<string, CachedKey>()
  const byKeyId = new Map<string, CachedKey>()
  const maxCached = 10_000
  const remember = (map: Map<string, CachedKey>, name: string, value: CachedKey) => {
    map.delete(name)
    map.set(name, value)
    if (map.size > maxCached) map.delete(map.keys().next().value!)
  }
  const fresh = (cached: CachedKey | undefined, now: number) =>
    cached !== undefined && now - cached.at < keyCacheTtl ? cached : undefined
  const subjectName = (tenantId: string, subject: string) => `${tenantId}\u0000${subject}`

  /** The data key of each (tenant, subject), created when it has none. */
  const resolveKeys = (items: ReadonlyArray<Pending>) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const missing = new Map<string, AuditStore.SubjectKey>()
      for (const item of items) {
        const tenantId = item.event.actor.tenantId ?? ""
        const name = subjectName(tenantId, item.event.actor.subject)
        if (fresh(bySubject.get(name), now)?.key !== undefined || missing.has(name)) continue
        const created = Sealing.newSubjectKey(ring)
        missing.set(name, {
          keyId: created.keyId,
          tenantId,
          subjectRef: Sealing.subjectRef(ring, item.event.actor.subject),
          wrappedKey: created.wrapped
        })
      }
      if (missing.size === 0) return
      const stored = yield* store.ensureKeys(Array.from(missing.values()))
      const refOf = (key: AuditStore.SubjectKey) => `${Buffer.from(key.subjectRef).toString("hex")}|${key.tenantId}`
      const byRef = new Map(stored.map((key) => [refOf(key), key]))
      for (const [name, candidate] of missing) {
        const key = byRef.get(refOf(candidate))
        const unwrapped = key === undefined ? undefined : Sealing.unwrapSubjectKey(ring, key.keyId, key.wrappedKey)
        if (key === undefined || unwrapped === undefined) {
          return yield* new AuditStore.AuditStoreError({
            operation: "ensureKeys",
            message: key === undefined
              ? "the store did not keep a subject key"
              : "a subject key cannot be unwrapped: is the encryption key the one the keys were made with?"
          })
        }
        const cached = { keyId: key.keyId, key: unwrapped, at: now }
        remember(bySubject, name, cached)
        remember(byKeyId, key.keyId, cached)
      }
    })

  /** The data keys of these key ids (undefined for a destroyed one). */
  const keysFor = (keyIds: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const out = new Map<string, Uint8Array | undefined>()
      const unknown: Array<string> = []
      for (const id of new Set(keyIds)) {
        const cached = fresh(byKeyId.get(id), now)
        if (cached === undefined) unknown.push(id)
        else out.set(id, cached.key)
      }
      if (unknown.length > 0) {
        const found = new Map((yield* store.keysById(unknown)).map((k) => [k.keyId, k]))
        for (const id of unknown) {
          const key = found.get(id)
          const cached = {
            keyId: id,
            key: key === undefined ? undefined : Sealing.unwrapSubjectKey(ring, id, key.wrappedKey),
            at: now
          }
          remember(byKeyId, id, cached)
          out.set(id, cached.key)
        }
      }
      return out
    })

  // --- the writer -----------------------------------------------------------------------------------------------
  // Two fibers: the encoder takes waiting events, seals and serializes them into entries at the positions they will
  // have, and sends the batch at once (see "committing, pipelined" below); the completer handles the outcomes in order.
  // A batch whose positions went stale (the one before it failed, another replica appended) is serialized again at the
  // right ones before it is appended.
  const queue = yield* Queue.unbounded<Pending | Flush>()
  let queuedRecords = 0
  let droppedSinceReport = 0
  let inFlight = 0
  let closing = false

  const sealedCache = new Map<string, AuditEvent.Sealed>()

  /** The sealed personal part of an event: independent of its position, so made once per event. */
  const sealOf = (item: Pending): AuditEvent.Sealed => {
    const name = subjectName(item.event.actor.tenantId ?? "", item.event.actor.subject)
    const cached = bySubject.get(name)
    if (cached?.key === undefined) throw new Error("audit: no subject key after resolving keys")
    const plaintext = Canonical.personal({
      subject: item.event.actor.subject,
      clientAddress: item.event.actor.clientAddress,
      userAgent: item.event.actor.userAgent,
      personalDetailsJson: item.personalDetailsJson
    })
    // The same subject acting from the same client again seals the same plaintext: its sealed form is reused (an
    // AES-GCM seal costs more than the rest of an entry). It reveals no more than the key id already does: these
    // entries are the same subject's.
    const sealedName = `${cached.keyId}\u0000${plaintext}`
    const known = sealedCache.get(sealedName)
    if (known !== undefined) return known
    const sealed = { keyId: cached.keyId, ...Sealing.sealPersonal(cached.key, cached.keyId, plaintext) }
    sealedCache.set(sealedName, sealed)
    if (sealedCache.size > maxCached) sealedCache.delete(sealedCache.keys().next().value!)
    return sealed
  }

  const toEntry = (item: Pending, sealed: AuditEvent.Sealed, index: number): AuditStore.NewEntry => {
    const event = item.event
    const tenantId = event.tenantId ?? event.actor.tenantId
    const time = item.isoTime
    const content = Canonical.entry({
      v: 1,
      index,
      id: item.id,
      time,
      type: event.type,
      tenantId,
      actor: { tenantId: event.actor.tenantId, roles: event.actor.roles },
      action: event.action,
      resource: event.resource,
      outcome: event.outcome,
      reason: event.reason,
      correlationId: item.correlationId,
      traceId: item.traceId,
      sealed
    } as Omit<AuditEvent.Entry, "details">, item.detailsJson)
    return {
      index,
      id: item.id,
      time: item.time,
      type: event.type,
      tenantId: tenantId ?? null,
      keyId: sealed.keyId,
      action: event.action,
      resourceType: event.resource.type,
      resourceId: event.resource.id ?? null,
      outcome: event.outcome,
      correlationId: item.correlationId ?? null,
      content,
      leafHash: Merkle.leafHashOfText(content)
    }
  }

  const entriesAt = (items: ReadonlyArray<Pending>, sealed: ReadonlyArray<AuditEvent.Sealed>, base: number) =>
    items.map((item, i) => toEntry(item, sealed[i]!, base + i))

  // Counted and logged before the callers are answered: an answered caller may run at once.
  const fail = (items: ReadonlyArray<Pending>, cause: Cause.Cause<AuditStore.AuditStoreError>) => {
    const error = Cause.findErrorOption(cause)
    const failure = Option.isSome(error) ? Exit.fail(unavailable(error.value)) : Exit.die(Cause.squash(cause))
    return Effect.logError("audit entries could not be written", cause).pipe(
      Effect.annotateLogs({ events: items.length, records: items.filter((i) => i.resume === undefined).length }),
      Effect.andThen(Metric.update(metrics.failed, items.length)),
      Effect.andThen(Effect.sync(() => {
        for (const item of items) item.resume?.(failure)
      }))
    )
  }

  /** Encodes a group and sends it; false when it could not be encoded (its callers are answered). */
  const encode = (items: ReadonlyArray<Pending>) =>
    Effect.gen(function*() {
      yield* resolveKeys(items)
      const sealed = items.map(sealOf)
      const base = tree.size + inFlight
      inFlight += items.length
      return { _tag: "Batch", items, sealed, base, entries: entriesAt(items, sealed, base) } satisfies Batch
    }).pipe(
      Effect.flatMap((batch) => Effect.as(send(batch), true)),
      Effect.catchCause((cause) => Effect.as(fail(items, cause), false)),
      Effect.withSpan("AuditLog.encode", { attributes: { "audit.events": items.length } })
    )

  const reportDrops = Effect.suspend(() => {
    if (droppedSinceReport === 0 || queuedRecords >= queueCapacity) return Effect.void
    const dropped = droppedSinceReport
    droppedSinceReport = 0
    return Effect.logWarning(`the audit queue had room again; ${dropped} read event(s) were dropped while it was full`)
  })

  // How many of the waiting events the next group takes. With more than one commit free to send, what waits is split
  // among them: each commit then answers a share of the callers, who make the next group while the other share
  // commits, and the database always has the next group at hand. Below 2 × 16 events, or with one commit free, one
  // group takes them all (up to `maxGroupSize`).
  const groupSize = (waiting: number) => {
    const free = commitsInFlight - unsettled
    return Math.min(maxGroup, free > 1 && waiting >= 32 ? Math.ceil(waiting / free) : waiting)
  }

  // Room for a group: at most `commitsInFlight` groups between encoding and settling. The encoder takes events only
  // with room for them, so that a group is formed when it can be sent. Without it, a group formed while every commit
  // was in flight waited for one with only the callers that had come back by then, and the groups stayed small from
  // there on (a third of the callers each with two commits, where two halves would do: more statements for as many
  // events). The completer gives the room back when the group is settled.
  const room = yield* Semaphore.make(commitsInFlight)

  const encoder = Effect.gen(function*() {
    yield* room.take(1)
    const taken = [yield* Queue.take(queue)]
    const wanted = groupSize(1 + Queue.sizeUnsafe(queue))
    while (taken.length < wanted) {
      const next = Queue.takeUnsafe(queue)
      if (next === undefined || Exit.isFailure(next)) break
      taken.push(next.value)
    }
    // The room taken goes with the first group; a flush between events makes a second one, which waits for its own.
    let roomHeld = true
    const encodeRun = (run: ReadonlyArray<Pending>) =>
      Effect.gen(function*() {
        if (!roomHeld) yield* room.take(1)
        roomHeld = false
        if (!(yield* encode(run))) yield* room.release(1)
      })
    let run: Array<Pending> = []
    for (const item of taken) {
      if (item._tag === "Flush") {
        if (run.length > 0) yield* encodeRun(run)
        run = []
        yield* Queue.offer(sent, item)
      } else {
        if (item.resume === undefined) queuedRecords--
        run.push(item)
      }
    }
    if (run.length > 0) yield* encodeRun(run)
    if (roomHeld) yield* room.release(1)
    yield* reportDrops
  }).pipe(Effect.forever)

  // --- committing, pipelined ------------------------------------------------------------------------------------
  // The encoder appends a batch as soon as it is encoded, without waiting for the commit before it: up to
  // `commitsInFlight` statements are on their way at once (each on a connection of its own), and the database orders
  // them with the advisory lock `audit_append` takes, each one checking that the log ends where the writer expects.
  // The completer handles their outcomes in the order they were sent: it grows the tree, answers the callers, and
  // appends again, at the right positions, a batch that found the log elsewhere (the batch before it failed, another
  // replica appended, or it reached the lock before the batch before it). So while one group commits the callers
  // answered by the commit before it are already making the next group, and the database is never idle waiting for
  // them. A checkpoint goes only with a batch that has nothing in flight before it (its root is then the tree's own):
  // when one is due, the encoder waits for the pipeline to drain, once per checkpoint interval.
  // The statement is written in the encoder's own turn (its fiber forked with `startImmediately`): handed to another
  // fiber, or forked to start later, it waited behind whatever the scheduler had queued first, typically the callers
  // a commit had just answered making their next events, while the database had nothing to do. Groups then went out
  // in pairs rather than one while the other committed (in the bench, nothing in flight 20% of the time; now 2–12%).
  interface Sent {
    readonly _tag: "Sent"
    readonly batch: Batch
    readonly entries: ReadonlyArray<AuditStore.NewEntry>
    readonly checkpointAt: number | undefined
    readonly outcome: Deferred.Deferred<AuditStore.AppendOutcome, AuditStore.AuditStoreError>
  }
  const slots = yield* Semaphore.make(commitsInFlight)
  const sent = yield* Queue.unbounded<Sent | Flush>()
  // Batches sent whose outcome the completer has not handled yet, and where the last of them ends.
  let unsettled = 0
  let sentEnd = 0

  const checkpointDue = (now: number) => inconsistency === undefined && now - persistedAt >= checkpointEvery

  const appendAt = (entries: ReadonlyArray<AuditStore.NewEntry>, withCheckpoint: boolean) => {
    const hashes = entries.map((e) => e.leafHash)
    const size = entries[0]!.index + entries.length
    const rootHash = withCheckpoint ? tree.rootWith(hashes) : undefined
    return store.append({
      expectedSize: entries[0]!.index,
      entries,
      checkpoint: rootHash === undefined ? undefined : { size, rootHash, note: sign(size, rootHash) }
    })
  }

  // Set as soon as a statement comes back without appending (the log ended elsewhere, or it failed): every batch sent
  // after it was placed behind it and must be placed again. Until the completer has done that, a batch sent now would
  // be placed behind them too, and come back the same way: the encoder lets the pipeline drain first. (Without it, one
  // statement that reached the lock before the one sent ahead of it made every later batch go twice while the load
  // lasted, each sent ahead of the completer's second attempt of the one before.)
  let stale = false

  const send = (batch: Batch) =>
    Effect.gen(function*() {
      yield* slots.take(1)
      let now = yield* Clock.currentTimeMillis
      if (unsettled > 0 && (stale || checkpointDue(now))) {
        // Drain: every other slot back means nothing is in flight (with one slot, nothing is in flight here).
        yield* slots.take(commitsInFlight - 1)
        yield* slots.release(commitsInFlight - 1)
        now = yield* Clock.currentTimeMillis
      }
      if (unsettled === 0) stale = false
      const base = unsettled > 0 ? sentEnd : tree.size
      const entries = batch.entries[0]!.index === base ? batch.entries : entriesAt(batch.items, batch.sealed, base)
      const checkpointAt = unsettled === 0 && checkpointDue(now) ? now : undefined
      const outcome = yield* Deferred.make<AuditStore.AppendOutcome, AuditStore.AuditStoreError>()
      // Started in this turn: the statement goes out before anything the scheduler has queued runs.
      yield* Effect.forkChild(
        Effect.uninterruptible(Effect.flatMap(Effect.exit(appendAt(entries, checkpointAt !== undefined)), (exit) => {
          if (Exit.isFailure(exit) || exit.value._tag === "Behind") stale = true
          return Deferred.done(outcome, exit)
        })),
        { startImmediately: true }
      )
      unsettled++
      sentEnd = base + entries.length
      yield* Queue.offer(sent, { _tag: "Sent", batch, entries, checkpointAt, outcome })
    })

  /** Grows the tree by an appended batch (unless a catch-up already read its leaves from the store). */
  const grow = (entries: ReadonlyArray<AuditStore.NewEntry>) =>
    Effect.gen(function*() {
      const base = entries[0]!.index
      if (tree.size < base) yield* catchUp(base)
      if (tree.size >= base && tree.size < base + entries.length) {
        tree.append(entries.slice(tree.size - base).map((e) => e.leafHash))
      }
    })

  const settle = (item: Sent) =>
    Effect.gen(function*() {
      let entries = item.entries
      let checkpointAt = item.checkpointAt
      let outcome = yield* Deferred.await(item.outcome)
      for (let attempt = 0;; attempt++) {
        if (outcome._tag === "Appended") {
          yield* grow(entries)
          if (checkpointAt !== undefined) {
            persistedAt = checkpointAt
            persistedSize = entries[0]!.index + entries.length
          }
          return entries
        }
        // The log ends elsewhere: take what others appended, then append again after it. Nothing is in flight
        // before this batch any more, so it may carry a due checkpoint.
        if (attempt >= 100) {
          return yield* new AuditStore.AuditStoreError({ operation: "append", message: "the log keeps moving" })
        }
        if (outcome.size > tree.size) yield* catchUp(outcome.size)
        const base = tree.size
        if (entries[0]!.index !== base) entries = entriesAt(item.batch.items, item.batch.sealed, base)
        const now = yield* Clock.currentTimeMillis
        checkpointAt = checkpointDue(now) ? now : undefined
        outcome = yield* appendAt(entries, checkpointAt !== undefined)
      }
    }).pipe(
      treeLock.withPermit,
      Effect.flatMap((entries) =>
        Metric.update(metrics.appended, entries.length).pipe(
          Effect.andThen(Metric.update(metrics.size, tree.size)),
          Effect.andThen(Effect.sync(() => {
            entries.forEach((entry, i) => {
              const pending = item.batch.items[i]!
              pending.resume?.(Exit.succeed({ index: entry.index, id: entry.id, time: pending.isoTime }))
            })
          }))
        )
      ),
      Effect.catchCause((cause) => fail(item.batch.items, cause)),
      Effect.ensuring(Effect.suspend(() => {
        inFlight -= item.batch.items.length
        unsettled--
        return Effect.andThen(slots.release(1), room.release(1))
      })),
      Effect.withSpan("AuditLog.commit", { attributes: { "audit.events": item.batch.items.length } }),
      // A batch in flight when the log closes still completes: nobody waits on an unanswered append.
      Effect.uninterruptible
    )

  const completer = Effect.gen(function*() {
    const next = yield* Queue.take(sent)
    if (next._tag === "Flush") yield* Deferred.succeed(next.done, undefined)
    else yield* settle(next)
  }).pipe(Effect.forever)

  yield* Effect.forkScoped(encoder)
  yield* Effect.forkScoped(completer)

  const persistCheckpoint = treeLock.withPermit(Effect.gen(function*() {
    if (inconsistency !== undefined || tree.size <= persistedSize) return
    const size = tree.size
    const rootHash = tree.root()
    const outcome = yield* store.append({
      expectedSize: size,
      entries: [],
      checkpoint: { size, rootHash, note: sign(size, rootHash) }
    })
    if (outcome._tag === "Appended") persistedSize = size
  }))

  // Runs before the writer fibers are interrupted (finalizers run in reverse order): what is queued is written first.
  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      closing = true
      const done = yield* Deferred.make<void>()
      yield* Queue.offer(queue, { _tag: "Flush", done })
      yield* Deferred.await(done)
      // Whatever slipped in behind the flush is answered, not left waiting; later offers are refused.
      const closed = Exit.fail(new AuditUnavailable({ detail: "the audit log closed" }))
      for (const q of [queue, sent] as ReadonlyArray<Queue.Queue<Pending | Sent | Flush>>) {
        let taken = Queue.takeUnsafe(q)
        while (taken !== undefined && Exit.isSuccess(taken)) {
          const item = taken.value
          if (item._tag === "Flush") Deferred.doneUnsafe(item.done, Effect.void)
          else {
            const items = item._tag === "Sent" ? item.batch.items : [item]
            for (const i of items) i.resume?.(closed)
          }
          taken = Queue.takeUnsafe(q)
        }
        Queue.shutdownUnsafe(q)
      }
      yield* persistCheckpoint.pipe(
        Effect.catchCause((cause) => Effect.logError("the final audit checkpoint could not be stored", cause))
      )
      if (droppedSinceReport > 0) {
        yield* Effect.logWarning(`${droppedSinceReport} read event(s) were dropped while the audit queue was full`)
      }
    })
  )

  // --- recording ------------------------------------------------------------------------------------------------
  // Read in the caller's fiber, before the log's own span: the caller's correlation id and trace.
  // Read synchronously from the calling fiber (a generator with three steps cost more, per append).
  const contextOf = (fiber: Fiber.Fiber<unknown, unknown>) => {
    const correlationId = Option.getOrUndefined(fiber.getRef(RequestContext.currentCorrelationId))
    // The span new spans would be children of: the caller's (or the incoming request's) trace. Not
    // `Effect.currentSpan`, which fails (and builds an error) when there is none.
    const span = Context.getOption(fiber.context, Tracer.ParentSpan)
    const time = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
    return { correlationId, traceId: Option.isSome(span) ? span.value.traceId : undefined, time }
  }
  const context = Effect.withFiberSucceed(contextOf)
  type CallContext = ReturnType<typeof contextOf>

  interface Valid {
    readonly event: AuditEvent.AuditEvent
    readonly detailsJson: string | undefined
    readonly personalDetailsJson: string | undefined
  }

  const pendingOf = (
    valid: Valid,
    ctx: CallContext,
    resume: Pending["resume"]
  ): Pending => ({
    _tag: "Event",
    event: valid.event,
    detailsJson: valid.detailsJson,
    personalDetailsJson: valid.personalDetailsJson,
    id: randomUUID(),
    time: ctx.time,
    isoTime: new Date(ctx.time).toISOString(),
    correlationId: valid.event.correlationId ?? ctx.correlationId,
    traceId: valid.event.traceId ?? ctx.traceId,
    resume
  })

  /** The event as the schema decodes it, with its free-form parts in canonical JSON; or why it is not one. */
  const check = (event: AuditEvent.AuditEvent): Result.Result<Valid, string> => {
    const decoded = decodeEvent(event)
    if (Result.isFailure(decoded)) return Result.fail(decoded.failure.message)
    try {
      // canonicalize refuses what RFC 8785 cannot encode (a lone surrogate, a non-finite number).
      const details = decoded.success.details
      const personalDetails = decoded.success.personalDetails
      return Result.succeed({
        event: decoded.success,
        detailsJson: details === undefined ? undefined : canonicalize(details),
        personalDetailsJson: personalDetails === undefined ? undefined : canonicalize(personalDetails)
      })
    } catch (error) {
      return Result.fail(`details: ${error instanceof Error ? error.message : String(error)}`)
    }
  }

  const rejected = (detail: string) =>
    Effect.andThen(Metric.update(metrics.rejected, 1), Effect.fail(new InvalidEvent({ detail })))

  // One step per append in the caller's fiber: the event is checked and queued, and the fiber waits for the commit
  // that answers it (the completer calls `resume`). The caller's context is read before the log's own span, so the
  // entry carries the caller's correlation id and trace. The span covers the wait, as `Effect.fn`'s would, without
  // the call site's stack trace that `Effect.fn` captures (an Error) at every call (in the memory bench about 4 µs of
  // an append's 22–29 µs of CPU), and without being made the parent span of the wait (`Effect.useSpan`, not
  // `withSpan`): nothing in it makes spans, and providing it cost a context of its own per append.
  const append = (event: AuditEvent.AuditEvent) =>
    Effect.withFiber((fiber) => {
      const ctx = contextOf(fiber)
      const checked = check(event)
      const waited: Effect.Effect<Appended, AuditUnavailable | InvalidEvent> = Result.isFailure(checked)
        ? rejected(checked.failure)
        : closing
        ? Effect.fail(new AuditUnavailable({ detail: "the audit log is closing" }))
        : Effect.callback<Appended, AuditUnavailable>((resume) => {
          if (!Queue.offerUnsafe(queue, pendingOf(checked.success, ctx, resume))) {
            resume(Effect.fail(new AuditUnavailable({ detail: "the audit log is closed" })))
          }
        })
      return Effect.useSpan("AuditLog.append", {
        attributes: { "audit.type": Result.isSuccess(checked) ? checked.success.event.type : String(event.type) }
      }, () => waited)
    })

  const record = (event: AuditEvent.AuditEvent): Effect.Effect<void> =>
    (AuditEvent.durableTypes.has(event.type)
      ? append(event).pipe(
        Effect.catch((error) =>
          Effect.logError(`an audit event that must be durable was not recorded: ${error.detail}`).pipe(
            Effect.annotateLogs({ type: event.type, action: event.action })
          )
        )
      )
      : Effect.gen(function*() {
        const checked = check(event)
        if (Result.isFailure(checked)) {
          yield* Metric.update(metrics.rejected, 1)
          return yield* Effect.logWarning(`an invalid audit event was not recorded: ${checked.failure}`)
        }
        if (closing || queuedRecords >= queueCapacity) {
          yield* Metric.update(metrics.dropped, 1)
          if (droppedSinceReport++ === 0) {
            yield* Effect.logWarning(
              closing
                ? "the audit log is closing: read events are dropped"
                : `the audit queue is full (${queueCapacity} events): read events are dropped until it drains`
            )
          }
          return
        }
        queuedRecords++
        if (!Queue.offerUnsafe(queue, pendingOf(checked.success, yield* context, undefined))) queuedRecords--
      })).pipe(Effect.annotateLogs({ service: "audit" }))

  // --- reading --------------------------------------------------------------------------------------------------
  const open = (entry: AuditStore.StoredEntry, keys: ReadonlyMap<string, Uint8Array | undefined>) => {
    const content = JSON.parse(entry.content) as AuditEvent.Entry
    const key = keys.get(content.sealed.keyId)
    const opened = key === undefined
      ? undefined
      : Sealing.openPersonal(key, content.sealed.keyId, content.sealed.iv, content.sealed.data)
    const personal = opened === undefined ? undefined : JSON.parse(opened) as AuditEvent.Personal
    const record: AuditEvent.AuditRecord = {
      index: entry.index,
      id: content.id,
      time: content.time,
      type: content.type,
      ...(content.tenantId === undefined ? {} : { tenantId: content.tenantId }),
      actor: {
        ...(personal === undefined ? {} : { subject: personal.subject }),
        ...(content.actor.tenantId === undefined ? {} : { tenantId: content.actor.tenantId }),
        roles: content.actor.roles,
        ...(personal?.clientAddress === undefined ? {} : { clientAddress: personal.clientAddress }),
        ...(personal?.userAgent === undefined ? {} : { userAgent: personal.userAgent })
      },
      action: content.action,
      resource: content.resource,
      outcome: content.outcome,
      ...(content.reason === undefined ? {} : { reason: content.reason }),
      ...(content.correlationId === undefined ? {} : { correlationId: content.correlationId }),
      ...(content.traceId === undefined ? {} : { traceId: content.traceId }),
      ...(content.details === undefined ? {} : { details: content.details }),
      ...(personal?.personalDetails === undefined ? {} : { personalDetails: personal.personalDetails }),
      erased: personal === undefined,
      leafHash: base64(Merkle.leafHashOfText(entry.content))
    }
    return record
  }

  const openAll = (entries: ReadonlyArray<AuditStore.StoredEntry>) =>
    Effect.map(
      keysFor(entries.flatMap((e) => e.keyId === null ? [] : [e.keyId])),
      (keys) => entries.map((e) => open(e, keys))
    )

  const query = Effect.fn("AuditLog.query")(function*(q: Query, scope?: Scope) {
    const before = q.cursor === undefined ? undefined : decodeCursor(q.cursor)
    if (q.cursor !== undefined && before === undefined) {
      return yield* new InvalidCursor({ detail: "the cursor was not issued by this log" })
    }
    const limit = Math.min(1000, Math.max(1, Math.trunc(q.limit ?? 100)))
    const scoped = scope?.tenantId
    if (scoped !== undefined && q.tenantId !== undefined && q.tenantId !== scoped) return { entries: [] }
    const tenantId = scoped ?? q.tenantId
    let keyIds: ReadonlyArray<string> | undefined
    if (q.actor !== undefined) {
      const keys = yield* orUnavailable(store.findKeys(Sealing.subjectRef(ring, q.actor)))
      keyIds = keys.map((k) => k.keyId)
      if (keyIds.length === 0) return { entries: [] }
    }
    const rows = yield* orUnavailable(store.query({
      tenantId,
      keyIds,
      type: q.type,
      resourceType: q.resourceType,
      resourceId: q.resourceId,
      correlationId: q.correlationId,
      from: q.from?.getTime(),
      to: q.to?.getTime(),
      before,
      limit: limit + 1
    }))
    const page = rows.slice(0, limit)
    const entries = yield* orUnavailable(openAll(page))
    return rows.length > limit ? { entries, nextCursor: encodeCursor(page[page.length - 1]!.index) } : { entries }
  })

  const visible = (entry: AuditStore.StoredEntry | undefined, scope: Scope | undefined) =>
    entry !== undefined && (scope?.tenantId === undefined || entry.tenantId === scope.tenantId) ? entry : undefined

  const get = Effect.fn("AuditLog.get")(function*(id: string, scope?: Scope) {
    const entry = visible(yield* orUnavailable(store.entryById(id)), scope)
    if (entry === undefined) return yield* new EntryNotFound({ detail: `no audit entry ${id}` })
    const [record] = yield* orUnavailable(openAll([entry]))
    return record!
  })

  // --- checkpoints and proofs -----------------------------------------------------------------------------------
  // A checkpoint handed out is also stored (when the tree grew since the last one), so that every checkpoint a
  // witness or client holds can be found again in the log's own history.
  const checkpoint = Effect.gen(function*() {
    yield* inconsistent()
    yield* orUnavailable(sync)
    yield* orUnavailable(persistCheckpoint)
    const size = tree.size
    const rootHash = tree.root()
    return { origin, size, rootHash: base64(rootHash), note: sign(size, rootHash) }
  }).pipe(Effect.withSpan("AuditLog.checkpoint"))

  const proveInclusion = Effect.fn("AuditLog.proveInclusion")(function*(
    request: InclusionRequest,
    scope?: Scope
  ) {
    yield* inconsistent()
    yield* orUnavailable(sync)
    let index: number
    let id: string | undefined
    if (request.id !== undefined) {
      const entry = visible(yield* orUnavailable(store.entryById(request.id)), scope)
      if (entry === undefined) return yield* new EntryNotFound({ detail: `no audit entry ${request.id}` })
      index = entry.index
      id = entry.id
    } else if (request.index !== undefined) {
      index = request.index
      // A scoped caller proves only its own entries, and a pruned entry belongs to nobody.
      if (scope?.tenantId !== undefined) {
        const entry = visible(yield* orUnavailable(store.entryAt(index)), scope)
        if (entry === undefined) return yield* new EntryNotFound({ detail: `no audit entry at ${index}` })
        id = entry.id
      }
    } else {
      return yield* new InvalidProofRequest({ detail: "name the entry: id or index" })
    }
    const size = request.size ?? tree.size
    if (!Number.isSafeInteger(index) || index < 0 || !Number.isSafeInteger(size) || index >= size || size > tree.size) {
      return yield* new InvalidProofRequest({
        detail: `no entry ${index} in a tree of ${size} (the log has ${tree.size} entries)`
      })
    }
    const ranges = Merkle.inclusionRanges(index, size)
    const [leaf] = yield* orUnavailable(store.leafHashes(index, index + 1))
    const hashes = yield* orUnavailable(hashRanges([...ranges, [0, size]], size))
    const rootHash = hashes[hashes.length - 1]!
    return {
      kind: "inclusion" as const,
      index,
      ...(id === undefined ? {} : { id }),
      treeSize: size,
      leafHash: base64(leaf!),
      proof: hashes.slice(0, -1).map(base64),
      rootHash: base64(rootHash),
      checkpoint: sign(size, rootHash)
    }
  })

  const proveConsistency = Effect.fn("AuditLog.proveConsistency")(function*(first: number, second?: number) {
    yield* inconsistent()
    yield* orUnavailable(sync)
    const to = second ?? tree.size
    if (!Number.isSafeInteger(first) || !Number.isSafeInteger(to) || first < 0 || first > to || to > tree.size) {
      return yield* new InvalidProofRequest({
        detail: `no consistency proof from ${first} to ${to} (the log has ${tree.size} entries)`
      })
    }
    const ranges = Merkle.consistencyRanges(first, to)
    const hashes = yield* orUnavailable(hashRanges(ranges, to))
    const firstRoot = yield* orUnavailable(rootAt(first))
    const secondRoot = yield* orUnavailable(rootAt(to))
    return {
      kind: "consistency" as const,
      first,
      second: to,
      firstRootHash: base64(firstRoot),
      secondRootHash: base64(secondRoot),
      proof: hashes.map(base64),
      checkpoint: sign(to, secondRoot)
    }
  })

  // --- verification and export ----------------------------------------------------------------------------------
  const verify = (
    verifyOptions?: { readonly onProgress?: ((progress: Verifier.Progress) => Effect.Effect<void>) | undefined }
  ) =>
    Effect.gen(function*() {
      yield* sync
      const trusted = { size: tree.size, rootHash: tree.root() }
      return yield* Verifier.verifyStore(store, {
        verifier,
        verifierKey: signer.verifierKey,
        origin,
        trustedRoots: [trusted],
        onProgress: verifyOptions?.onProgress
      })
    }).pipe(Effect.mapError(unavailable), Effect.withSpan("AuditLog.verify"))

  const exportLines = Verifier.exportLines(store, { origin, verifierKey: signer.verifierKey }).pipe(Stream.orDie)

  // --- erasure and retention ------------------------------------------------------------------------------------
  const erase = Effect.fn("AuditLog.erase")(function*(
    subject: { readonly subject: string; readonly tenantId?: string | undefined },
    eraseOptions: { readonly actor: AuditEvent.Actor; readonly reason?: string | undefined }
  ) {
    const keys = yield* Effect.mapError(
      store.findKeys(Sealing.subjectRef(ring, subject.subject), subject.tenantId),
      unavailable
    )
    const keyIds = keys.map((k) => k.keyId)
    // The erasure is recorded, durably, before any key is destroyed: the store refuses to destroy an unrecorded one.
    const recorded = yield* append({
      type: "retention.erasure",
      actor: eraseOptions.actor,
      action: "subject.erase",
      resource: { type: "data-subject" },
      outcome: "success",
      ...(subject.tenantId === undefined ? {} : { tenantId: subject.tenantId }),
      ...(eraseOptions.reason === undefined ? {} : { reason: eraseOptions.reason }),
      details: { keyIds }
    })
    const now = yield* Clock.currentTimeMillis
    for (const keyId of keyIds) {
      yield* Effect.mapError(store.destroyKey(keyId, recorded.index), unavailable)
      remember(byKeyId, keyId, { keyId, key: undefined, at: now })
    }
    for (const key of keys) bySubject.delete(subjectName(key.tenantId, subject.subject))
    return { keyIds, index: recorded.index }
  })

  const prune = Effect.fn("AuditLog.prune")(function*(
    pruneOptions?: { readonly actor?: AuditEvent.Actor | undefined }
  ) {
    const now = yield* Clock.currentTimeMillis
    const batch = 5000
    let pruned = 0
    const announced: Array<number> = []
    for (const { rule, selector } of Retention.selectors(rules, now, batch)) {
      for (;;) {
        const candidates = yield* Effect.mapError(store.pruneCandidates(selector), unavailable)
        if (candidates.length === 0) break
        const ranges = toRanges(candidates)
        const recorded = yield* append({
          type: "retention.prune",
          actor: pruneOptions?.actor ?? AuditEvent.systemActor("audit"),
          action: "retention.prune",
          resource: { type: "audit-log" },
          outcome: "success",
          ...(rule.tenantId === undefined ? {} : { tenantId: rule.tenantId }),
          details: {
            rule: {
              ...(rule.tenantId === undefined ? {} : { tenantId: rule.tenantId }),
              type: rule.type ?? "*",
              maxAgeMillis: Duration.toMillis(rule.maxAge)
            },
            before: new Date(selector.before).toISOString(),
            count: candidates.length,
            ranges
          }
        }).pipe(Effect.catchTag("InvalidEvent", (error) => Effect.die(error)))
        announced.push(recorded.index)
        const removed = yield* Effect.mapError(store.prune(recorded.index, ranges), unavailable)
        pruned += removed
        if (candidates.length < batch || removed === 0) break
      }
    }
    if (pruned > 0) yield* Effect.logInfo(`pruned ${pruned} expired audit entries`)
    return { pruned, entries: announced }
  }, Effect.annotateLogs({ service: "audit" }))

  if (options.pruneInterval !== undefined && rules.length > 0) {
    yield* prune().pipe(
      Effect.catchCause((cause) => Effect.logError("audit pruning failed", cause)),
      Effect.repeat(Schedule.spaced(options.pruneInterval)),
      Effect.forkScoped
    )
  }

  const size = Effect.map(Effect.orDie(sync), () => tree.size)

  return AuditLog.of({
    append,
    record,
    query,
    get,
    checkpoint,
    proveInclusion,
    proveConsistency,
    verify,
    export: exportLines,
    erase,
    prune,
    size,
    origin,
    verifierKey: signer.verifierKey
  })
}, (effect) => Effect.annotateLogs(effect, { service: "audit" }))

// -----------------------------------------------------------------------------
// layers
// -----------------------------------------------------------------------------

/**
 * The log on the `AuditStore` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<AuditLog, AuditStore.AuditStoreError, AuditStore.AuditStore> =>
  Layer.effect(AuditLog, make(options))

/**
 * The log in memory, for tests and single-process tools.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options: Options): Layer.Layer<AuditLog | AuditStore.AuditStore> =>
  layer(options).pipe(Layer.provideMerge(AuditStore.layerMemory), Layer.orDie)

/**
 * The log on SQL (the `SqlClient` in context: PostgreSQL, or PGlite from `@ouroboros/sql`), migrations included.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSql = (
  options: Options
): Layer.Layer<
  AuditLog | AuditStore.AuditStore,
  AuditStore.AuditStoreError | SqlError.SqlError | Migrator.MigrationError,
  SqlClient.SqlClient
> => layer(options).pipe(Layer.provideMerge(AuditStore.layerSql))

/**
 * The options of a configuration, with the keys loaded (or generated under `dataDir`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const optionsFromConfig = (
  settings: AuditConfig,
  dataDir: string
): Effect.Effect<Options, AuditKeys.AuditKeyError> =>
  Effect.map(
    AuditKeys.load({
      origin: settings.origin,
      dataDir,
      signingKey: settings.signingKey,
      encryptionKey: settings.encryptionKey
    }),
    (keys) => ({
      keys,
      origin: settings.origin,
      queueCapacity: settings.queueCapacity,
      maxGroupSize: settings.maxGroupSize,
      checkpointInterval: settings.checkpointInterval,
      retention: settings.retention,
      pruneInterval: Option.getOrUndefined(settings.pruneInterval)
    })
  )

/**
 * The SQL log from configuration ({@link config} nested under `AUDIT`, or the given one); generated keys are kept
 * under `dataDir`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (options: {
  readonly dataDir: string
  readonly config?: Config.Config<AuditConfig> | undefined
}): Layer.Layer<
  AuditLog | AuditStore.AuditStore,
  | Config.ConfigError
  | AuditKeys.AuditKeyError
  | AuditStore.AuditStoreError
  | SqlError.SqlError
  | Migrator.MigrationError,
  SqlClient.SqlClient
> =>
  Layer.unwrap(
    Effect.gen(function*() {
      const settings = yield* (options.config ?? Config.nested(config, "AUDIT"))
      return layerSql(yield* optionsFromConfig(settings, options.dataDir))
    })
  )

// -----------------------------------------------------------------------------
// helpers for other features
// -----------------------------------------------------------------------------

/**
 * The audit event of a backup operation, as `@ouroboros/backup` reports them to its `Auditor` (the shape is
 * repeated here so that the audit log does not depend on the backup package): `backup.restore` is a `restore`
 * event, the others (`backup.create`, `backup.verify`, `backup.prune`) are `backup` events.
 *
 * @since 0.1.0
 * @category helpers
 */
export const backupEvent = (
  operation: {
    readonly action: string
    readonly backupId: string | undefined
    readonly outcome: "success" | "failure"
    readonly detail: string
  },
  actor: AuditEvent.Actor = AuditEvent.systemActor("backup")
): AuditEvent.AuditEvent => ({
  type: operation.action === "backup.restore" ? "restore" : "backup",
  actor,
  action: operation.action,
  resource: operation.backupId === undefined ? { type: "backup" } : { type: "backup", id: operation.backupId },
  outcome: operation.outcome,
  reason: operation.detail.slice(0, 2048)
})
