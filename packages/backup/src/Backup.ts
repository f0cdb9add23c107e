/**
 * The Backup service: takes backups of the event store (incremental from the last backed-up sequence, or full), the
 * vector store (a snapshot of every collection) and every registered `BackupSource` (audit log, tenants, flags…)
 * under one manifest; verifies them in two tiers (checksums; an actual restore into a scratch store compared by
 * counts and hashes); restores them, to the backup's own point or to any later (or earlier) instant or sequence by
 * replaying events; and prunes them by a retention policy.
 *
 * Consistency: the projection checkpoint is read first, then the vector snapshots are taken, then the last event
 * sequence `to` is read and the events up to `to` are exported. Since the vector projection only applies committed
 * events, the snapshots hold the effect of every event up to the checkpoint and of none after `to`: restoring them
 * and letting the projection catch up from the checkpoint gives exactly the vectors of the events up to `to`.
 *
 * A restore changes nothing until everything it reads is checked: the manifests (plain file names inside the
 * backup's directory, counts and ranges that add up, a chain in which each backup continues its parent), every
 * file's presence, size and SHA-256, every event, and for a point past the backup, that the live store continues it.
 * Then the events, the registered sources and the projection checkpoint (0) are replaced all or nothing: in one
 * transaction when a SQL client is in context (the SQL event store's), otherwise by putting the previous content
 * back on failure. Only then are the vectors rebuilt (`Projections.rebuild`) or restored from the snapshots (and the
 * checkpoint set to theirs, never past the last event). Backup files are `0600` in `0700` directories, and so are
 * the restore's working files.
 *
 * @since 0.1.0
 */
import { Checkpoints, EventStore } from "@ouroboros/event-store"
import { Embedded, VectorStore } from "@ouroboros/vector-store"
import {
  Cause,
  Clock,
  Config,
  Context,
  Data,
  Effect,
  Exit,
  Layer,
  Option,
  Result,
  Schema,
  Semaphore,
  Stream
} from "effect"
import { SqlClient, SqlError } from "effect/sql"
import { createHash } from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as BackupSource from "./BackupSource.js"
import * as BackupTarget from "./BackupTarget.js"
import * as Manifest from "./Manifest.js"
import * as Retention from "./Retention.js"

const NonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/**
 * No backup has this id.
 *
 * @since 0.1.0
 * @category errors
 */
export class BackupNotFound extends Schema.TaggedError<BackupNotFound>()(
  "BackupNotFound",
  { id: Schema.String, detail: Schema.String },
  { httpApiStatus: 404, description: "No backup has this id" }
) {}

/**
 * The backup has not passed a verification: a restore needs `force`.
 *
 * @since 0.1.0
 * @category errors
 */
export class BackupNotVerified extends Schema.TaggedError<BackupNotVerified>()(
  "BackupNotVerified",
  { id: Schema.String, detail: Schema.String },
  { httpApiStatus: 409, description: "The backup is not verified; restore it with force" }
) {}

/**
 * A backup (or one it builds on) is damaged: `files` names what failed.
 *
 * @since 0.1.0
 * @category errors
 */
export class BackupCorrupt extends Schema.TaggedError<BackupCorrupt>()(
  "BackupCorrupt",
  { id: Schema.String, files: Schema.Array(Schema.String), detail: Schema.String },
  { httpApiStatus: 422, description: "The backup failed verification" }
) {}

/**
 * Another backup or restore is running in this process.
 *
 * @since 0.1.0
 * @category errors
 */
export class BackupInProgress extends Schema.TaggedError<BackupInProgress>()(
  "BackupInProgress",
  { detail: Schema.String },
  { httpApiStatus: 409, description: "A backup or restore is already running" }
) {}

/**
 * The requested restore point cannot be reached from this backup (e.g. the events after it are not available).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidRestorePoint extends Schema.TaggedError<InvalidRestorePoint>()(
  "InvalidRestorePoint",
  { id: Schema.String, detail: Schema.String },
  { httpApiStatus: 422, description: "The restore point cannot be reached from this backup" }
) {}

/**
 * Taking a backup failed (storage or store error). Nothing complete-looking was left behind.
 *
 * @since 0.1.0
 * @category errors
 */
export class BackupFailed extends Schema.TaggedError<BackupFailed>()(
  "BackupFailed",
  { detail: Schema.String },
  { httpApiStatus: 500, description: "The backup could not be taken" }
) {}

/**
 * A restore failed. When it failed while the events were replaced, nothing changed: the events, the registered
 * sources and the projection checkpoint are as they were (one transaction of the SQL event store; the memory store's
 * previous content is put back). When it failed afterwards, while the vectors were rebuilt or restored, the events
 * are restored and the projection checkpoint is 0: `detail` says so, and the vectors come back by a rebuild.
 *
 * @since 0.1.0
 * @category errors
 */
export class RestoreFailed extends Schema.TaggedError<RestoreFailed>()(
  "RestoreFailed",
  { id: Schema.String, detail: Schema.String },
  { httpApiStatus: 500, description: "The restore failed" }
) {}

/**
 * Every error of the Backup service.
 *
 * @since 0.1.0
 * @category errors
 */
export type BackupError =
  | BackupNotFound
  | BackupNotVerified
  | BackupCorrupt
  | BackupInProgress
  | InvalidRestorePoint
  | BackupFailed
  | RestoreFailed

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * Verification tiers: `checksums` re-hashes every file; `restore` also restores the backup (and the ones it builds
 * on) into scratch stores and compares them with the manifest by counts and hashes.
 *
 * @since 0.1.0
 * @category models
 */
export type Tier = "checksums" | "restore"

/**
 * Progress of a long operation, for a progress bar.
 *
 * @since 0.1.0
 * @category models
 */
export interface Progress {
  readonly phase: string
  readonly done: number
  /** Unknown totals are undefined. */
  readonly total: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface CreateOptions {
  /** Default: incremental when a previous backup exists, full otherwise. */
  readonly kind?: Manifest.Kind | undefined
  readonly onProgress?: ((progress: Progress) => Effect.Effect<void>) | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface VerifyOptions {
  readonly tier?: Tier | undefined
  readonly onProgress?: ((progress: Progress) => Effect.Effect<void>) | undefined
}

/**
 * How the vectors come back after a restore: `snapshot` restores the backup's collection snapshots and sets the
 * projection checkpoint so the projection catches up; `rebuild` calls `Projections.rebuild` (vectors recomputed from
 * the restored events).
 *
 * @since 0.1.0
 * @category models
 */
export type VectorMode = "snapshot" | "rebuild"

/**
 * @since 0.1.0
 * @category models
 */
export interface RestoreOptions {
  /** Point-in-time recovery: an instant, or a sequence number. Default: the backup's own point. */
  readonly at?: Date | number | undefined
  /**
   * Restore a backup that has no successful verification recorded. Its files are checked all the same (manifest,
   * presence, size, SHA-256, every event) before anything is changed.
   */
  readonly force?: boolean | undefined
  /** Default: `rebuild` when a `Projections` service is present, `snapshot` otherwise. */
  readonly vectors?: VectorMode | undefined
  readonly onProgress?: ((progress: Progress) => Effect.Effect<void>) | undefined
}

/**
 * What a restore did.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RestoreResult = Schema.Struct({
  id: Schema.String,
  /** The backups read, oldest first (a full one and the incrementals on it). */
  chain: Schema.Array(Schema.String),
  /** Events imported from the backups. */
  restoredEvents: NonNegativeInt,
  /** Events replayed from the live store after the backups (point-in-time recovery). */
  replayedEvents: NonNegativeInt,
  /** The last sequence in the store afterwards. */
  lastSequence: NonNegativeInt,
  vectors: Schema.Literals(["snapshot", "rebuild"]),
  sources: Schema.Array(Schema.String)
}).annotate({ identifier: "RestoreResult" })

/**
 * @since 0.1.0
 * @category models
 */
export type RestoreResult = typeof RestoreResult.Type

/**
 * What pruning did.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PruneResult = Schema.Struct({
  kept: Schema.Array(Schema.String),
  removed: Schema.Array(Schema.String)
}).annotate({ identifier: "PruneResult" })

/**
 * @since 0.1.0
 * @category models
 */
export type PruneResult = typeof PruneResult.Type

// -----------------------------------------------------------------------------
// services
// -----------------------------------------------------------------------------

/**
 * An operation on backups, as reported to the {@link Auditor}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Operation {
  readonly action: "backup.create" | "backup.verify" | "backup.restore" | "backup.prune"
  /** The backup concerned (for `create`, the new one when it succeeded). */
  readonly backupId: string | undefined
  readonly outcome: "success" | "failure"
  /** What failed, or a summary of what was done. */
  readonly detail: string
}

/**
 * Where backups and restores are recorded besides the logs: the audit log provides it once it exists. Optional.
 *
 * @since 0.1.0
 * @category services
 */
export class Auditor extends Context.Service<Auditor, {
  readonly record: (operation: Operation) => Effect.Effect<void>
}>()("@ouroboros/backup/Auditor") {}

/**
 * The projections of the event store, as the application provides them. Optional: without it vectors come back from
 * the snapshots, and the projection (if any) reads its checkpoint when it next starts.
 *
 * A restore replaces the events and sets the projection checkpoint to 0 in one step; then it calls `rebuild` (mode
 * `rebuild`), or restores the snapshots, sets the checkpoint to theirs and calls `resume` (mode `snapshot`). The
 * application's projector must take the new state from these calls: drop what it holds in memory (its last applied
 * sequence, say), and not run concurrently with them.
 *
 * @since 0.1.0
 * @category services
 */
export class Projections extends Context.Service<Projections, {
  /**
   * Drops the vectors and recomputes them from the events now in the store (the checkpoint is 0), returning once
   * they are caught up.
   */
  readonly rebuild: Effect.Effect<void, unknown>
  /**
   * The vectors were replaced by snapshots holding the effect of every event up to `checkpoint` (already recorded as
   * the checkpoint): continue from there. Without it, a `snapshot` restore is refused while this service is present.
   */
  readonly resume?: ((checkpoint: number) => Effect.Effect<void, unknown>) | undefined
}>()("@ouroboros/backup/Projections") {}

/**
 * The Backup service.
 *
 * @since 0.1.0
 * @category services
 * @example
 * import { Backup } from "@ouroboros/backup"
 * import { Effect } from "effect"
 *
 * const nightly = Effect.gen(function*() {
 *   const backup = yield* Backup.Backup
 *   const manifest = yield* backup.create()
 *   yield* backup.verify(manifest.id, { tier: "restore" })
 *   yield* backup.prune
 * })
 */
export class Backup extends Context.Service<Backup, {
  /** Takes a backup; returns its manifest. */
  readonly create: (options?: CreateOptions) => Effect.Effect<Manifest.Manifest, BackupInProgress | BackupFailed>
  /** Every complete backup, newest first. */
  readonly list: Effect.Effect<ReadonlyArray<Manifest.BackupInfo>, BackupFailed>
  /** One backup. */
  readonly get: (id: string) => Effect.Effect<Manifest.BackupInfo, BackupNotFound | BackupFailed>
  /** Verifies a backup and records the outcome; fails with `BackupCorrupt` naming the damaged files. */
  readonly verify: (
    id: string,
    options?: VerifyOptions
  ) => Effect.Effect<Manifest.Verification, BackupNotFound | BackupCorrupt | BackupFailed>
  /**
   * Restores a backup, optionally to a point in time. The id {@link latest} picks the newest verified backup before
   * the point (point-in-time recovery with no id).
   */
  readonly restore: (
    id: string,
    options?: RestoreOptions
  ) => Effect.Effect<
    RestoreResult,
    BackupNotFound | BackupNotVerified | BackupCorrupt | BackupInProgress | InvalidRestorePoint | RestoreFailed
  >
  /** Deletes the backups the retention policy does not keep. */
  readonly prune: Effect.Effect<PruneResult, BackupFailed>
}>()("@ouroboros/backup/Backup") {}

// -----------------------------------------------------------------------------
// config
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The retention policy used by `prune`. */
  readonly retention?: Retention.Policy | undefined
  /** The checkpoint name of the vector projection (default `vector-projection`). */
  readonly projectionCheckpoint?: string | undefined
}

const atLeast = (name: string, minimum: number) =>
  Config.schema(
    Schema.Int.check(Schema.isGreaterThanOrEqualTo(minimum, { message: `must be at least ${minimum}` })),
    name
  )

/**
 * The settings of backups (the server nests them under `BACKUP_`):
 *
 * - `ENABLED` (`true`): whether scheduled backups run.
 * - `SCHEDULE` (`0 3 * * *`): when scheduled backups run, a cron expression (UTC).
 * - `DIR` (default `<DATA_DIR>/backups`): where backups are written.
 * - `KEEP_LAST` (7): retention, keep the last N backups.
 * - `KEEP_DAILY` (7): retention, keep the newest backup of each of the last D days.
 * - `KEEP_WEEKLY` (4): retention, keep the newest backup of each of the last W weeks.
 * - `FULL_EVERY` (7): every Nth scheduled backup is full, the others incremental.
 * - `VERIFY` (`restore`): verification after each scheduled backup, `restore`, `checksums` or `none`.
 *
 * @since 0.1.0
 * @category config
 */
export const config = Config.all({
  enabled: Config.Boolean("ENABLED").pipe(Config.withDefault(true)),
  schedule: Config.String("SCHEDULE").pipe(Config.withDefault("0 3 * * *")),
  directory: Config.option(Config.String("DIR")),
  keepLast: atLeast("KEEP_LAST", 0).pipe(Config.withDefault(7)),
  keepDaily: atLeast("KEEP_DAILY", 0).pipe(Config.withDefault(7)),
  keepWeekly: atLeast("KEEP_WEEKLY", 0).pipe(Config.withDefault(4)),
  fullEvery: atLeast("FULL_EVERY", 1).pipe(Config.withDefault(7)),
  verify: Config.Literals(["restore", "checksums", "none"], "VERIFY").pipe(Config.withDefault("restore" as const))
})

/**
 * @since 0.1.0
 * @category models
 */
export type BackupConfig = Config.Success<typeof config>

// -----------------------------------------------------------------------------
// implementation
// -----------------------------------------------------------------------------

const encodeEvent = Schema.encodeSync(Schema.toCodecJson(EventStore.RecordedEvent))
const decodeEventLine = Schema.decodeEffect(EventStore.RecordedEventFromJson)
const encodeManifest = Schema.encodeSync(Manifest.ManifestFromJson)
const decodeManifest = Schema.decodeUnknownResult(Manifest.ManifestFromJson)
const encodeVerification = Schema.encodeSync(Manifest.VerificationFromJson)
const decodeVerification = Schema.decodeUnknownOption(Manifest.VerificationFromJson)
const text = new TextDecoder()
const utf8 = new TextEncoder()

const describe = (cause: unknown): string =>
  cause instanceof Error ? cause.message : typeof cause === "object" && cause !== null && "message" in cause
    ? String((cause as { message: unknown }).message)
    : String(cause)

/**
 * The NDJSON line of an event in a backup file.
 *
 * @since 0.1.0
 * @category utils
 */
export const eventLine = (event: EventStore.RecordedEvent): string =>
  // By hand for speed; the same JSON as `Schema.encode(RecordedEvent)` (fields in declaration order; a test checks).
  JSON.stringify({
    sequence: event.sequence,
    streamId: event.streamId,
    version: event.version,
    type: event.type,
    data: event.data,
    metadata: event.metadata,
    ...(event.tenantId === undefined ? {} : { tenantId: event.tenantId }),
    recordedAt: event.recordedAt.toISOString()
  })

/**
 * The same line through the schema (slower): {@link eventLine} must agree with it.
 *
 * @since 0.1.0
 * @category utils
 */
export const eventLineBySchema = (event: EventStore.RecordedEvent): string => JSON.stringify(encodeEvent(event))

class FileError extends Data.TaggedError("FileError")<{ readonly file: string; readonly message: string }> {}

/**
 * The id `restore` takes for "the newest (verified) backup before the point".
 *
 * @since 0.1.0
 * @category constants
 */
export const latest = "latest"

const vectorsPrefix = "vectors:"
const eventsSource = "events"
const verificationFile = "verification.json"
const reservedNames: ReadonlySet<string> = new Set([BackupTarget.manifestFile, verificationFile])
const isCollectionName = Schema.is(VectorStore.CollectionName)

const collectionFileName = (collection: string) => `vectors-${collection}.snapshot`

const noProgress = (_: Progress) => Effect.void

interface Problem {
  readonly file: string
  readonly problem: string
}

const problemAt = (file: string, problem: string): Problem => ({ file, problem: `${file}: ${problem}` })

/**
 * Builds the Backup service from the stores, the target and (optional) checkpoints, projections and sources in
 * context. Removes what interrupted backups left in the target.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}) =>
  Effect.gen(function*() {
    const events = yield* EventStore.EventStore
    const vectors = yield* VectorStore.VectorStore
    const target = yield* BackupTarget.BackupTarget
    const checkpoints = yield* Effect.serviceOption(Checkpoints.Checkpoints)
    const projections = yield* Effect.serviceOption(Projections)
    const registry = yield* Effect.serviceOption(BackupSource.BackupSources)
    // The event store's SQL client, when it has one: a restore replaces the events in one of its transactions.
    const sql = yield* Effect.serviceOption(SqlClient.SqlClient)
    const checkpointName = options.projectionCheckpoint ?? "vector-projection"
    const retention = options.retention ?? { keepLast: 7, keepDaily: 7, keepWeekly: 4 }
    const busy = yield* Semaphore.make(1)
    const sources = Option.match(registry, {
      onNone: () => Effect.succeed<ReadonlyArray<BackupSource.BackupSource>>([]),
      onSome: (r) => r.all
    })

    const cleaned = yield* target.cleanPartials.pipe(Effect.orElseSucceed(() => 0))
    if (cleaned > 0) yield* Effect.logWarning(`removed ${cleaned} incomplete backup(s) left by an interrupted run`)

    const exclusive = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      busy.withPermitsIfAvailable(1)(effect).pipe(
        Effect.flatMap(Option.match({
          onNone: () => Effect.fail(new BackupInProgress({ detail: "a backup or restore is already running" })),
          onSome: Effect.succeed
        }))
      )

    const failed = (what: string) => (cause: unknown) => new BackupFailed({ detail: `${what}: ${describe(cause)}` })

    // -- reading ----------------------------------------------------------------

    const readInfo = (id: string): Effect.Effect<Option.Option<Manifest.BackupInfo>, BackupFailed> =>
      Effect.gen(function*() {
        const bytes = yield* target.readSmall(id, BackupTarget.manifestFile)
        if (Option.isNone(bytes)) return Option.none()
        const manifest = decodeManifest(text.decode(bytes.value))
        if (Result.isFailure(manifest)) {
          yield* Effect.logWarning(`backup ${id}: unreadable manifest, ignored`)
          return Option.none()
        }
        const verification = Option.flatMap(
          yield* target.readSmall(id, verificationFile),
          (b) => decodeVerification(text.decode(b))
        )
        return Option.some<Manifest.BackupInfo>({
          manifest: manifest.success,
          ...(Option.isSome(verification) ? { verification: verification.value } : {}),
          bytes: manifest.success.files.reduce((n, f) => n + f.bytes, 0)
        })
      }).pipe(Effect.mapError(failed(`reading backup ${id}`)))

    const list = Effect.gen(function*() {
      const ids = yield* Effect.mapError(target.list, failed("listing backups"))
      const infos = yield* Effect.forEach(ids, readInfo, { concurrency: 8 })
      return infos.flatMap((o) => Option.isSome(o) ? [o.value] : []).reverse()
    }).pipe(Effect.withSpan("Backup.list"))

    const get = (id: string) =>
      Effect.gen(function*() {
        if (!Schema.is(Manifest.BackupId)(id)) {
          return yield* new BackupNotFound({ id, detail: `no backup has the id ${JSON.stringify(id)}` })
        }
        const info = yield* readInfo(id)
        if (Option.isNone(info)) return yield* new BackupNotFound({ id, detail: `no backup has the id ${id}` })
        return info.value
      })

    const corrupt = (id: string, problems: ReadonlyArray<Problem>) =>
      new BackupCorrupt({
        id,
        files: [...new Set(problems.map((p) => p.file))],
        detail: problems.map((p) => p.problem).join("; ")
      })

    // The backup and those it builds on, oldest (the full one) first. Each must continue its parent's events, and a
    // chain that comes back to a backup already in it (a forged parent) is corrupt, not an endless loop.
    const chainOf = (info: Manifest.BackupInfo) =>
      Effect.gen(function*() {
        const id = info.manifest.id
        const chain: Array<Manifest.BackupInfo> = [info]
        let current = info.manifest
        while (current.kind === "incremental") {
          const at = `${current.id}/${BackupTarget.manifestFile}`
          const parent = current.parent
          if (parent === undefined) return yield* corrupt(id, [problemAt(at, "an incremental backup without a parent")])
          if (chain.some((link) => link.manifest.id === parent)) {
            return yield* corrupt(id, [problemAt(at, `builds on ${parent}, which builds on it: the chain loops`)])
          }
          const found = yield* readInfo(parent)
          if (Option.isNone(found)) {
            return yield* corrupt(id, [{
              file: `${parent}/${BackupTarget.manifestFile}`,
              problem: `backup ${current.id} builds on ${parent}, which is missing`
            }])
          }
          const previous = found.value.manifest
          if (previous.events.to + 1 !== current.events.from) {
            return yield* corrupt(id, [
              problemAt(at, `its events start at ${current.events.from}, but ${parent} ends at ${previous.events.to}`)
            ])
          }
          chain.unshift(found.value)
          current = previous
        }
        return chain
      })

    // What a manifest says that cannot be right, found before any of its files is read: names that would leave the
    // backup's directory, duplicates, counts and ranges that do not add up, sources without their file.
    const manifestProblems = (id: string, manifest: Manifest.Manifest): Array<Problem> => {
      const problems: Array<Problem> = []
      const say = (problem: string) => problems.push(problemAt(`${id}/${BackupTarget.manifestFile}`, problem))
      if (manifest.id !== id) say(`it names the backup ${manifest.id}`)
      if (manifest.schemaVersion > Manifest.schemaVersion) {
        say(`schema version ${manifest.schemaVersion} is newer than this build reads (${Manifest.schemaVersion})`)
      }
      const { count, from, to } = manifest.events
      if (from < 1 || to < from - 1 || count > to - from + 1) {
        say(`the event range ${from}-${to} cannot hold ${count} events`)
      }
      if (manifest.kind === "full" && from !== 1) say(`a full backup starts at sequence 1, not ${from}`)
      const names = new Set<string>()
      const collections = new Set<string>()
      let eventFiles = 0
      for (const file of manifest.files) {
        if (!BackupTarget.isSafeName(file.name) || reservedNames.has(file.name)) {
          say(`the file name ${JSON.stringify(file.name)} is not a plain name inside the backup's directory`)
        } else if (names.has(file.name)) {
          say(`the file ${file.name} is listed twice`)
        }
        names.add(file.name)
        if (file.source === eventsSource) {
          eventFiles++
          if (file.count !== count) say(`${file.name} holds ${file.count} events, but the range holds ${count}`)
        } else if (file.source.startsWith(vectorsPrefix)) {
          const collection = file.source.slice(vectorsPrefix.length)
          if (!isCollectionName(collection)) say(`the collection name ${JSON.stringify(collection)} is not valid`)
          else if (collections.has(collection)) say(`the collection ${collection} is listed twice`)
          collections.add(collection)
        } else {
          const entry = manifest.sources.find((source) => source.name === file.source)
          if (entry === undefined) say(`${JSON.stringify(file.name)} belongs to no source of the backup`)
          else if (entry.hash !== file.sha256 || entry.count !== file.count) {
            say(`${file.name} does not match the entry of the source ${entry.name}`)
          }
        }
      }
      if (eventFiles !== 1) say(`${eventFiles} event files instead of one`)
      for (const entry of manifest.sources) {
        if (manifest.files.filter((file) => file.source === entry.name).length !== 1) {
          say(`the source ${JSON.stringify(entry.name)} has no file of its own`)
        }
      }
      return problems
    }

    // -- create -----------------------------------------------------------------

    const create = (createOptions?: CreateOptions) =>
      exclusive(Effect.scoped(Effect.gen(function*() {
        const progress = createOptions?.onProgress ?? noProgress
        const previous = (yield* list)[0]
        const lastSequence = yield* events.lastSequence
        let kind = createOptions?.kind ?? (previous === undefined ? "full" : "incremental")
        // Incremental needs a parent whose events the store still extends (not after a restore to an earlier point).
        if (kind === "incremental" && (previous === undefined || previous.manifest.events.to > lastSequence)) {
          kind = "full"
        }
        const createdAt = new Date(yield* Clock.currentTimeMillis)
        const id = Manifest.makeId(kind, createdAt)
        yield* Effect.annotateCurrentSpan({ "backup.id": id, "backup.kind": kind })
        const writer = yield* Effect.mapError(target.begin(id), failed("starting the backup"))
        const files: Array<Manifest.FileEntry> = []

        // 1. projection checkpoint, 2. vector snapshots, 3. the event range (see the module comment).
        const projectionCheckpoint = Option.isSome(checkpoints) ? yield* checkpoints.value.get(checkpointName) : 0
        const collections = yield* Effect.mapError(vectors.listCollections, failed("listing vector collections"))
        let snapshotted = 0
        for (const collection of collections) {
          const snapshot = yield* Effect.mapError(
            vectors.snapshot(collection.name),
            failed(`snapshot of collection ${collection.name}`)
          )
          const name = collectionFileName(collection.name)
          const written = yield* Effect.mapError(writer.write(name, Stream.make(snapshot.bytes)), failed(name))
          if (written.sha256 !== snapshot.sha256) {
            return yield* new BackupFailed({ detail: `snapshot of ${collection.name} changed while it was written` })
          }
          files.push({
            name,
            source: vectorsPrefix + collection.name,
            sha256: written.sha256,
            bytes: written.bytes,
            count: snapshot.count,
            format: snapshot.format
          })
          snapshotted += snapshot.count
          yield* progress({ phase: "vectors", done: snapshotted, total: undefined })
        }

        const to = yield* events.lastSequence
        const from = kind === "full" || previous === undefined ? 1 : previous.manifest.events.to + 1
        let count = 0
        let lastRecordedAt: Date | undefined
        const eventsName = `events-${from}-${to}.ndjson`
        const written = yield* writer.write(
          eventsName,
          BackupSource.ndjson(
            events.readAll({ fromSequence: from, toSequence: to, batchSize: 2000 }).pipe(
              Stream.mapArrayEffect((chunk) => {
                count += chunk.length
                lastRecordedAt = chunk[chunk.length - 1]!.recordedAt
                return Effect.as(progress({ phase: "events", done: count, total: to - from + 1 }), chunk)
              }),
              Stream.map(eventLine)
            )
          )
        ).pipe(Effect.mapError(failed(eventsName)))
        files.push({ name: eventsName, source: eventsSource, ...written, count, format: "ndjson" })

        const sourceEntries: Array<Manifest.SourceEntry> = []
        for (const source of yield* sources) {
          const name = `${source.name}.ndjson`
          const written = yield* Effect.mapError(writer.write(name, source.export), failed(`source ${source.name}`))
          const rows = yield* Effect.mapError(source.count, failed(`source ${source.name}`))
          files.push({ name, source: source.name, ...written, count: rows, format: "ndjson" })
          sourceEntries.push({ name: source.name, count: rows, hash: written.sha256 })
          yield* progress({ phase: source.name, done: rows, total: rows })
        }

        const manifest = new Manifest.Manifest({
          id,
          kind,
          schemaVersion: Manifest.schemaVersion,
          ...(kind === "incremental" && previous !== undefined ? { parent: previous.manifest.id } : {}),
          createdAt,
          completedAt: new Date(yield* Clock.currentTimeMillis),
          events: { from, to, count, ...(lastRecordedAt === undefined ? {} : { lastRecordedAt }) },
          projectionCheckpoint,
          files,
          sources: sourceEntries
        })
        yield* Effect.mapError(writer.commit(utf8.encode(encodeManifest(manifest))), failed("committing the backup"))
        yield* Effect.logInfo("backup created").pipe(
          Effect.annotateLogs({ backupId: id, kind, events: count, from, to, files: files.length })
        )
        return manifest
      }))).pipe(Effect.withSpan("Backup.create"), Effect.annotateLogs({ service: "backup" }))

    // -- verify -----------------------------------------------------------------

    const checksumProblems = (info: Manifest.BackupInfo, progress: (p: Progress) => Effect.Effect<void>) =>
      Effect.gen(function*() {
        const problems: Array<Problem> = []
        const id = info.manifest.id
        const total = info.bytes
        let done = 0
        for (const file of info.manifest.files) {
          const result = yield* Effect.result(Effect.suspend(() => {
            let bytes = 0
            return BackupSource.sha256(
              target.read(id, file.name).pipe(Stream.tap((chunk) => {
                bytes += chunk.byteLength
                done += chunk.byteLength
                return progress({ phase: "checksums", done, total })
              }))
            ).pipe(Effect.map((sha256) => ({ sha256, bytes })))
          }))
          const where = `${id}/${file.name}`
          if (Result.isFailure(result)) {
            problems.push(problemAt(where, result.failure.reason === "NotFound" ? "missing" : result.failure.message))
          } else if (result.success.sha256 !== file.sha256) {
            problems.push(
              problemAt(where, `SHA-256 mismatch (expected ${file.sha256}, found ${result.success.sha256})`)
            )
          } else if (result.success.bytes !== file.bytes) {
            problems.push(problemAt(where, `${result.success.bytes} bytes, expected ${file.bytes}`))
          }
        }
        return problems
      })

    const eventFiles = (info: Manifest.BackupInfo) => info.manifest.files.filter((f) => f.source === eventsSource)

    // Decoded events of one backup file; a line that does not decode is corruption of that file.
    const readEvents = (info: Manifest.BackupInfo, file: Manifest.FileEntry) =>
      BackupSource.lines(target.read(info.manifest.id, file.name)).pipe(
        Stream.mapError((e) => new FileError({ file: `${info.manifest.id}/${file.name}`, message: e.message })),
        Stream.mapEffect((line) =>
          Effect.mapError(
            decodeEventLine(line),
            (e) =>
              new FileError({
                file: `${info.manifest.id}/${file.name}`,
                message: `an event does not decode: ${e.message}`
              })
          )
        )
      )

    const restoreProblems = (info: Manifest.BackupInfo, progress: (p: Progress) => Effect.Effect<void>) =>
      Effect.gen(function*() {
        const problems: Array<Problem> = []
        const chain = yield* chainOf(info)
        // Events: import the chain into a scratch store, then export each file's range again and compare.
        const scratch = yield* Layer.build(EventStore.layerMemory())
        const store = Context.get(scratch, EventStore.EventStore)
        let imported = 0
        for (const link of chain) {
          for (const file of eventFiles(link)) {
            // Large batches: the memory store's import costs O(stored events) per batch.
            const result = yield* Effect.result(store.importEvents(
              readEvents(link, file).pipe(Stream.mapArrayEffect((chunk) => {
                imported += chunk.length
                const total = info.manifest.events.to
                return Effect.as(progress({ phase: "restore events", done: imported, total }), chunk)
              })),
              { batchSize: 50_000 }
            ))
            if (Result.isFailure(result)) {
              const error = result.failure
              const where = error._tag === "FileError" ? error.file : `${link.manifest.id}/${file.name}`
              problems.push(problemAt(where, `${error._tag === "FileError" ? error.message : error.detail}`))
            }
          }
        }
        for (const link of chain) {
          for (const file of eventFiles(link)) {
            let count = 0
            const [, range] = /^events-(\d+)-(\d+)\.ndjson$/.exec(file.name) ?? []
            const { from, to } = link.manifest.events
            if (range === undefined && file.name !== `events-${from}-${to}.ndjson`) continue
            const sha = yield* BackupSource.sha256(BackupSource.ndjson(
              store.readAll({ fromSequence: from, toSequence: to, batchSize: 5000 }).pipe(
                Stream.tap(() => Effect.sync(() => count++)),
                Stream.map(eventLine)
              )
            ))
            const where = `${link.manifest.id}/${file.name}`
            if (count !== file.count) {
              problems.push(problemAt(where, `restored ${count} events, the manifest says ${file.count}`))
            } else if (sha !== file.sha256) {
              problems.push(problemAt(where, `the restored events hash to ${sha}, not ${file.sha256}`))
            }
          }
        }
        // Vectors: restore each snapshot into a scratch store (embedded format) or a scratch collection, count.
        const directory = yield* Effect.acquireRelease(
          Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-backup-verify-"))),
          (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
        )
        let embedded: VectorStore.VectorStore["Service"] | undefined
        for (const file of info.manifest.files.filter((f) => f.source.startsWith(vectorsPrefix))) {
          const where = `${info.manifest.id}/${file.name}`
          const collection = file.source.slice(vectorsPrefix.length)
          const outcome = yield* Effect.result(Effect.gen(function*() {
            const bytes = yield* Stream.runCollect(target.read(info.manifest.id, file.name))
            const joined = Buffer.concat(bytes)
            if (file.format === Embedded.format) {
              if (embedded === undefined) {
                const built = yield* Layer.build(Embedded.layer({ directory, fsync: false }))
                embedded = Context.get(built, VectorStore.VectorStore)
              }
              const restored = yield* embedded.restore(collection, joined)
              return restored.count
            }
            const scratchName = `backup-verify-${Math.random().toString(36).slice(2, 10)}`
            return yield* Effect.acquireUseRelease(
              Effect.succeed(scratchName),
              (name) => Effect.map(vectors.restore(name, joined), (restored) => restored.count),
              (name) => Effect.ignore(vectors.drop(name))
            )
          }))
          if (Result.isFailure(outcome)) {
            problems.push(problemAt(where, `the snapshot does not restore: ${describe(outcome.failure)}`))
          } else if (outcome.success !== file.count) {
            problems.push(problemAt(where, `restored ${outcome.success} vectors, the manifest says ${file.count}`))
          }
          yield* progress({ phase: "restore vectors", done: file.count, total: file.count })
        }
        // Other sources: every line must be JSON and the count must match.
        const others = info.manifest.files.filter((f) =>
          f.source !== eventsSource && !f.source.startsWith(vectorsPrefix)
        )
        for (const entry of others) {
          const where = `${info.manifest.id}/${entry.name}`
          const rows = yield* Effect.result(
            BackupSource.lines(target.read(info.manifest.id, entry.name)).pipe(
              Stream.mapEffect((line) =>
                Effect.try({ try: () => JSON.parse(line) as unknown, catch: () => `${where}: a row is not JSON` })
              ),
              Stream.runCount
            )
          )
          if (Result.isFailure(rows)) {
            problems.push({
              file: where,
              problem: typeof rows.failure === "string" ? rows.failure : `${where}: ${rows.failure.message}`
            })
          } else if (rows.success !== entry.count) {
            problems.push(problemAt(where, `${rows.success} rows, the manifest says ${entry.count}`))
          }
        }
        return problems
      }).pipe(Effect.scoped)

    const verify = (id: string, verifyOptions?: VerifyOptions) =>
      Effect.gen(function*() {
        const tier = verifyOptions?.tier ?? "checksums"
        const progress = verifyOptions?.onProgress ?? noProgress
        const info = yield* get(id)
        const chain = yield* chainOf(info)
        const problems: Array<Problem> = []
        // The checksum tier covers every backup of the chain: a restore reads them all. A manifest that names files
        // outside its directory is not followed.
        for (const link of chain) {
          const wrong = manifestProblems(link.manifest.id, link.manifest)
          problems.push(...(wrong.length > 0 ? wrong : yield* checksumProblems(link, progress)))
        }
        if (tier === "restore" && problems.length === 0) {
          problems.push(
            ...(yield* Effect.catchDefect(
              restoreProblems(info, progress),
              (defect) =>
                Effect.succeed([problemAt(id, `restore test failed: ${describe(Cause.squash(Cause.die(defect)))}`)])
            ))
          )
        }
        const verification: Manifest.Verification = {
          tier,
          verifiedAt: new Date(yield* Clock.currentTimeMillis),
          ok: problems.length === 0,
          problems: problems.map((p) => p.problem)
        }
        yield* target.writeSmall(id, verificationFile, utf8.encode(encodeVerification(verification))).pipe(
          Effect.mapError(failed(`recording the verification of ${id}`))
        )
        yield* Effect.logInfo(verification.ok ? "backup verified" : "backup verification failed").pipe(
          Effect.annotateLogs({ backupId: id, tier, problems: verification.problems })
        )
        if (!verification.ok) {
          return yield* new BackupCorrupt({
            id,
            files: [...new Set(problems.map((p) => p.file))],
            detail: verification.problems.join("; ")
          })
        }
        return verification
      }).pipe(
        Effect.withSpan("Backup.verify", { attributes: { "backup.id": id } }),
        Effect.annotateLogs({ service: "backup" })
      )

    // -- restore ----------------------------------------------------------------

    // "latest": the newest backup before the point (verified, unless forced), as point-in-time recovery starts.
    const resolve = (id: string, restoreOptions?: RestoreOptions) =>
      Effect.gen(function*() {
        if (id !== latest) return yield* get(id)
        const at = restoreOptions?.at
        const before = (info: Manifest.BackupInfo) =>
          at === undefined ||
          (typeof at === "number"
            ? info.manifest.events.to <= at
            : (info.manifest.events.lastRecordedAt ?? info.manifest.createdAt).getTime() <= at.getTime() &&
              info.manifest.createdAt.getTime() <= at.getTime())
        const found = (yield* list).find((info) =>
          before(info) && (restoreOptions?.force === true || Manifest.isVerified(info))
        )
        if (found === undefined) {
          return yield* new BackupNotFound({
            id,
            detail: `no ${restoreOptions?.force === true ? "" : "verified "}backup before ${
              at === undefined ? "now" : at instanceof Date ? at.toISOString() : `sequence ${at}`
            }`
          })
        }
        return found
      })

    // Everything a restore reads, checked before anything is changed: the manifests, then every file's presence, size
    // and SHA-256, and every event (each decodes, in sequence order, inside its backup's range, as many as the
    // manifest says). Yields the problems and the last event of the chain.
    const restoreChecks = (chain: ReadonlyArray<Manifest.BackupInfo>, progress: (p: Progress) => Effect.Effect<void>) =>
      Effect.gen(function*() {
        const problems: Array<Problem> = chain.flatMap((link) => manifestProblems(link.manifest.id, link.manifest))
        let last: EventStore.RecordedEvent | undefined
        if (problems.length > 0) return { problems, last }
        const total = chain.reduce((n, link) => n + link.bytes, 0)
        let done = 0
        for (const link of chain) {
          const { from, to } = link.manifest.events
          for (const file of link.manifest.files) {
            const where = `${link.manifest.id}/${file.name}`
            const hash = createHash("sha256")
            let bytes = 0
            let count = 0
            let previous = from - 1
            const content = target.read(link.manifest.id, file.name).pipe(
              Stream.tap((chunk) => {
                hash.update(chunk)
                bytes += chunk.byteLength
                done += chunk.byteLength
                return progress({ phase: "checking", done, total })
              }),
              Stream.mapError((e) => e.reason === "NotFound" ? "missing" : e.message)
            )
            const read = file.source !== eventsSource ? Stream.runDrain(content) : BackupSource.lines(content).pipe(
              Stream.mapEffect((line) => Effect.mapError(decodeEventLine(line), () => "an event does not decode")),
              Stream.runForEach((event) => {
                if (event.sequence <= previous || event.sequence > to) {
                  return Effect.fail(`event ${event.sequence} is out of order or outside the range ${from}-${to}`)
                }
                previous = event.sequence
                count++
                last = event
                return Effect.void
              })
            )
            const outcome = yield* Effect.result(read)
            if (Result.isFailure(outcome)) problems.push(problemAt(where, outcome.failure))
            else if (bytes !== file.bytes) problems.push(problemAt(where, `${bytes} bytes, expected ${file.bytes}`))
            else if (hash.digest("hex") !== file.sha256) problems.push(problemAt(where, "SHA-256 mismatch"))
            else if (file.source === eventsSource && count !== file.count) {
              problems.push(problemAt(where, `${count} events, the manifest says ${file.count}`))
            }
          }
        }
        return { problems, last }
      })

    // A directory only this process' user can read, removed with the scope unless `keep` is set (to leave what could
    // not be put back for an operator).
    const privateScratch = (prefix: string) =>
      Effect.acquireRelease(
        Effect.sync(() => ({ path: Fs.mkdtempSync(Path.join(Os.tmpdir(), prefix)), keep: false })),
        (scratch) =>
          scratch.keep ? Effect.void : Effect.sync(() => Fs.rmSync(scratch.path, { recursive: true, force: true }))
      )

    // Writes a byte stream to a new file of mode 0600.
    const writePrivate = <E>(path: string, bytes: Stream.Stream<Uint8Array, E>): Effect.Effect<void, unknown> =>
      Effect.scoped(Effect.gen(function*() {
        const handle = yield* Effect.acquireRelease(
          Effect.tryPromise({ try: () => Fs.promises.open(path, "wx", BackupTarget.fileMode), catch: (e) => e }),
          (handle) => Effect.promise(() => handle.close())
        )
        yield* Stream.runForEach(bytes, (chunk) =>
          Effect.tryPromise({
            try: async () => {
              for (let offset = 0; offset < chunk.byteLength;) {
                offset += (await handle.write(chunk, offset)).bytesWritten
              }
            },
            catch: (e) => e
          }))
      }))

    // Reads back a file of the scratch directory (one this restore wrote: failing to read it is a defect).
    const readPrivate = (path: string): Stream.Stream<Uint8Array> =>
      Stream.orDie(Stream.fromAsyncIterable(Fs.createReadStream(path) as AsyncIterable<Buffer>, (cause) => cause))

    const restore = (requested: string, restoreOptions?: RestoreOptions) =>
      Effect.gen(function*() {
        const progress = restoreOptions?.onProgress ?? noProgress
        const at = restoreOptions?.at
        const info = yield* resolve(requested, restoreOptions)
        const id = info.manifest.id
        const restoreFailed = (what: string) => (cause: unknown) =>
          new RestoreFailed({ id, detail: `${what}: ${describe(cause)}` })
        if (restoreOptions?.force !== true && !Manifest.isVerified(info)) {
          return yield* new BackupNotVerified({
            id,
            detail: info.verification === undefined
              ? `backup ${id} was never verified: verify it first or restore with force`
              : `backup ${id} failed its last verification: ${info.verification.problems.join("; ")}`
          })
        }
        const chain = yield* chainOf(info)
        const backupTo = info.manifest.events.to
        const untilSequence = typeof at === "number" ? at : undefined
        const untilDate = at instanceof Date ? at : undefined
        const inRange = (event: EventStore.RecordedEvent) =>
          (untilSequence === undefined || event.sequence <= untilSequence) &&
          (untilDate === undefined || event.recordedAt.getTime() <= untilDate.getTime())
        const vectorMode: VectorMode = restoreOptions?.vectors ?? (Option.isSome(projections) ? "rebuild" : "snapshot")
        if (vectorMode === "rebuild" && Option.isNone(projections)) {
          return yield* new InvalidRestorePoint({ id, detail: "vectors: rebuild needs a Projections service" })
        }
        if (vectorMode === "snapshot" && Option.isSome(projections) && projections.value.resume === undefined) {
          return yield* new InvalidRestorePoint({
            id,
            detail: "vectors: snapshot would leave this application's projection out of step (its Projections " +
              "service cannot resume from a checkpoint): restore with vectors rebuild"
          })
        }
        // A snapshot holds the vectors of events up to the backup; an earlier point needs a rebuild.
        const earlier = (untilSequence !== undefined && untilSequence < backupTo) ||
          (untilDate !== undefined && info.manifest.events.lastRecordedAt !== undefined &&
            untilDate.getTime() < info.manifest.events.lastRecordedAt.getTime())
        if (earlier && vectorMode === "snapshot") {
          return yield* new InvalidRestorePoint({
            id,
            detail: "the point is before the backup: its vector snapshots are too new; restore with vectors rebuild " +
              "(needs Projections) or pick an older backup"
          })
        }

        return yield* exclusive(Effect.scoped(Effect.gen(function*() {
          // 1. Nothing is changed before the whole chain is checked: a forced restore skips the need for a recorded
          //    verification, not these checks.
          const checked = yield* restoreChecks(chain, progress)
          if (checked.problems.length > 0) return yield* corrupt(id, checked.problems)

          // 2. Point in time past the backup: the live store's later events are replayed onto it, so the store must
          //    continue this backup (after a restore to another point, the same sequence numbers hold other events).
          const replay = at !== undefined && (untilSequence === undefined || untilSequence > backupTo)
          if (replay) {
            const liveLast = yield* events.lastSequence
            if (untilSequence !== undefined && liveLast < untilSequence) {
              return yield* new InvalidRestorePoint({
                id,
                detail: `sequence ${untilSequence} is past the last event of the store (${liveLast})`
              })
            }
            const last = checked.last
            if (liveLast > backupTo && last !== undefined) {
              const [same] = yield* Stream.runCollect(
                events.readAll({ fromSequence: last.sequence, toSequence: last.sequence })
              )
              if (same === undefined || eventLine(same) !== eventLine(last)) {
                return yield* new InvalidRestorePoint({
                  id,
                  detail: `the store does not continue backup ${id}: its event ${last.sequence} is not the backup's ` +
                    "last one (was the store restored to another point since?), so its later events cannot be " +
                    "replayed onto it; restore without a point past the backup"
                })
              }
            }
          }
          yield* Effect.logInfo("restore started").pipe(
            Effect.annotateLogs({ backupId: id, at: at instanceof Date ? at.toISOString() : at ?? "backup" })
          )

          // Working files (the events to replay; without a transaction, the data to put back): mode 0600 in a
          // directory of mode 0700, removed at the end.
          const scratch = yield* privateScratch("ouroboros-restore-")
          const replayFile = Path.join(scratch.path, "replay.ndjson")
          let replayCount = 0
          if (replay) {
            yield* writePrivate(
              replayFile,
              BackupSource.ndjson(
                events.readAll({
                  fromSequence: backupTo + 1,
                  ...(untilSequence === undefined ? {} : { toSequence: untilSequence }),
                  ...(untilDate === undefined ? {} : { until: untilDate }),
                  batchSize: 2000
                }).pipe(Stream.tap(() => Effect.sync(() => replayCount++)), Stream.map(eventLine))
              )
            ).pipe(Effect.mapError(restoreFailed("saving the events to replay")))
          }

          const known = yield* sources
          const toRestore = info.manifest.sources.flatMap((entry) => {
            const source = known.find((s) => s.name === entry.name)
            const file = info.manifest.files.find((f) => f.source === entry.name)
            return source === undefined || file === undefined ? [] : [{ source, file }]
          })
          for (const entry of info.manifest.sources) {
            if (!toRestore.some((r) => r.source.name === entry.name)) {
              yield* Effect.logWarning(`backup source ${entry.name} is not registered here: not restored`)
            }
          }

          // 3. The events, the sources and the projection checkpoint, replaced all together or not at all.
          let restoredEvents = 0
          let lastImported = 0
          const replace = Effect.gen(function*() {
            yield* events.truncate
            for (const link of chain) {
              for (const file of eventFiles(link)) {
                yield* events.importEvents(
                  readEvents(link, file).pipe(
                    Stream.filter(inRange),
                    Stream.mapArrayEffect((chunk) => {
                      restoredEvents += chunk.length
                      for (const event of chunk) lastImported = Math.max(lastImported, event.sequence)
                      return Effect.as(progress({ phase: "events", done: restoredEvents, total: backupTo }), chunk)
                    })
                  ),
                  { batchSize: 2000 }
                ).pipe(
                  Effect.mapError((e) =>
                    e._tag === "FileError"
                      ? new BackupCorrupt({ id, files: [e.file], detail: `${e.file}: ${e.message}` })
                      : new RestoreFailed({ id, detail: e.detail })
                  )
                )
              }
            }
            if (replayCount > 0) {
              yield* events.importEvents(
                BackupSource.lines(readPrivate(replayFile)).pipe(
                  Stream.mapEffect((line) => Effect.orDie(decodeEventLine(line))),
                  Stream.tap((event) => Effect.sync(() => (lastImported = Math.max(lastImported, event.sequence))))
                ),
                { batchSize: 2000 }
              ).pipe(Effect.mapError((e) => new RestoreFailed({ id, detail: e.detail })))
              yield* progress({ phase: "replay", done: replayCount, total: replayCount })
            }
            for (const { file, source } of toRestore) {
              yield* Effect.mapError(source.import(target.read(id, file.name)), restoreFailed(`source ${source.name}`))
            }
            // The vectors still show the old events: the projection starts over (it is rebuilt, or set to the
            // snapshots' checkpoint once they are restored).
            if (Option.isSome(checkpoints)) yield* checkpoints.value.set(checkpointName, 0)
            const lastSequence = yield* events.lastSequence
            if (lastSequence !== lastImported) {
              return yield* new RestoreFailed({
                id,
                detail: `after the import the store ends at sequence ${lastSequence}, not ${lastImported}`
              })
            }
            return lastSequence
          })
          const lastSequence = yield* replaceAll(id, replace, scratch, toRestore.map((r) => r.source))

          // 4. The vectors, after the events are committed: rebuilt from them, or restored from the snapshots.
          if (vectorMode === "rebuild" && Option.isSome(projections)) {
            yield* progress({ phase: "rebuild vectors", done: 0, total: undefined })
            yield* projections.value.rebuild.pipe(
              Effect.mapError((cause) =>
                new RestoreFailed({
                  id,
                  detail: `the events were restored (last sequence ${lastSequence}) and the projection checkpoint ` +
                    `reset, but rebuilding the vectors failed: ${describe(cause)}; rebuild them again`
                })
              )
            )
          } else if (vectorMode === "snapshot") {
            const restored = yield* Effect.exit(restoreSnapshots(info, progress))
            if (Exit.isFailure(restored)) {
              // The collections hold part of the snapshots, or the vectors of the events before the restore: none
              // of it may stay searchable. Dropped, with the checkpoint at 0, the projection recomputes them.
              for (const collection of yield* Effect.orElseSucceed(vectors.listCollections, () => [])) {
                yield* Effect.ignore(vectors.drop(collection.name))
              }
              if (Option.isSome(projections)) yield* Effect.ignore(projections.value.rebuild)
              return yield* new RestoreFailed({
                id,
                detail: `the events were restored (last sequence ${lastSequence}), but the vector snapshots could ` +
                  `not be (${describe(Cause.squash(restored.cause))}): the collections were dropped and the ` +
                  "projection checkpoint reset, so the vectors are recomputed from the events"
              })
            }
            const checkpoint = Math.min(info.manifest.projectionCheckpoint, backupTo, lastSequence)
            if (Option.isSome(checkpoints)) yield* checkpoints.value.set(checkpointName, checkpoint)
            const resume = Option.isSome(projections) ? projections.value.resume : undefined
            if (resume !== undefined) {
              yield* Effect.mapError(resume(checkpoint), restoreFailed("resuming the projections"))
            }
          }

          const result: RestoreResult = {
            id,
            chain: chain.map((c) => c.manifest.id),
            restoredEvents,
            replayedEvents: replayCount,
            lastSequence,
            vectors: vectorMode,
            sources: toRestore.map((r) => r.source.name)
          }
          yield* Effect.logInfo("restore finished").pipe(
            Effect.annotateLogs({ ...result, chain: result.chain.join(",") })
          )
          return result
        })))
      }).pipe(
        Effect.catchTag("BackupFailed", (e) => new RestoreFailed({ id: requested, detail: e.detail })),
        Effect.withSpan("Backup.restore", { attributes: { "backup.id": requested } }),
        Effect.annotateLogs({ service: "backup" })
      )

    // Every collection of the backup's snapshots, and no other.
    const restoreSnapshots = (info: Manifest.BackupInfo, progress: (p: Progress) => Effect.Effect<void>) =>
      Effect.gen(function*() {
        const id = info.manifest.id
        const snapshotFiles = info.manifest.files.filter((f) => f.source.startsWith(vectorsPrefix))
        const keep = new Set(snapshotFiles.map((f) => f.source.slice(vectorsPrefix.length)))
        for (const existing of yield* vectors.listCollections) {
          if (!keep.has(existing.name)) yield* vectors.drop(existing.name)
        }
        let restoredVectors = 0
        for (const file of snapshotFiles) {
          const bytes = Buffer.concat(yield* Stream.runCollect(target.read(id, file.name)))
          yield* vectors.restore(file.source.slice(vectorsPrefix.length), bytes)
          restoredVectors += file.count
          yield* progress({ phase: "vectors", done: restoredVectors, total: undefined })
        }
      })

    // Replaces the events (with the sources and the checkpoint written alongside) all or nothing. With a SQL client
    // in context (the event store's), in one transaction: a failure or a crash rolls everything back. Without one
    // (the memory store of tests and tools), the previous events, checkpoint and sources are saved first and put
    // back if the replacement fails; what cannot be put back is left in the scratch directory, and the error says so.
    const replaceAll = <A, E, R>(
      id: string,
      replace: Effect.Effect<A, E, R>,
      scratch: { readonly path: string; keep: boolean },
      restoredSources: ReadonlyArray<BackupSource.BackupSource>
    ): Effect.Effect<A, E | RestoreFailed, R> =>
      Option.match(sql, {
        onSome: (client) =>
          client.withTransaction(replace).pipe(
            Effect.catchIf(
              (e): e is SqlError.SqlError => SqlError.isSqlError(e),
              (e: SqlError.SqlError) =>
                Effect.fail(new RestoreFailed({ id, detail: `the restore transaction failed: ${e.message}` }))
            )
          ),
        onNone: () =>
          Effect.gen(function*() {
            const savedEvents = Path.join(scratch.path, "previous-events.ndjson")
            const savedSource = (name: string) => Path.join(scratch.path, `previous-source-${name}.ndjson`)
            const saving = (cause: unknown) =>
              new RestoreFailed({ id, detail: `saving the data to put back on failure: ${describe(cause)}` })
            yield* Effect.mapError(
              writePrivate(
                savedEvents,
                BackupSource.ndjson(Stream.map(events.readAll({ batchSize: 2000 }), eventLine))
              ),
              saving
            )
            for (const source of restoredSources) {
              yield* Effect.mapError(writePrivate(savedSource(source.name), source.export), saving)
            }
            const savedCheckpoint = Option.isSome(checkpoints) ? yield* checkpoints.value.get(checkpointName) : 0
            let putBackFailed: string | undefined
            const putBack = Effect.gen(function*() {
              yield* events.truncate
              yield* events.importEvents(
                BackupSource.lines(readPrivate(savedEvents)).pipe(
                  Stream.mapEffect((line) => Effect.orDie(decodeEventLine(line)))
                ),
                { batchSize: 5000 }
              )
              if (Option.isSome(checkpoints)) yield* checkpoints.value.set(checkpointName, savedCheckpoint)
              for (const source of restoredSources) yield* source.import(readPrivate(savedSource(source.name)))
            }).pipe(
              Effect.catchCause((cause) =>
                Effect.sync(() => {
                  putBackFailed = describe(Cause.squash(cause))
                  scratch.keep = true
                }).pipe(Effect.andThen(Effect.logError("restore: putting the previous data back failed", cause)))
              )
            )
            const outcome = yield* Effect.exit(Effect.onError(replace, () => putBack))
            if (Exit.isSuccess(outcome)) return outcome.value
            if (putBackFailed !== undefined) {
              return yield* new RestoreFailed({
                id,
                detail: `${describe(Cause.squash(outcome.cause))}; putting the previous data back failed too ` +
                  `(${putBackFailed}): it is kept in ${scratch.path}`
              })
            }
            return yield* Effect.failCause(outcome.cause)
          })
      })

    // -- prune ------------------------------------------------------------------

    const prune = Effect.gen(function*() {
      const infos = yield* list
      const decision = Retention.decide(
        infos.map((i) => ({
          id: i.manifest.id,
          createdAt: i.manifest.createdAt,
          verified: Manifest.isVerified(i),
          parent: i.manifest.parent
        })),
        retention,
        new Date(yield* Clock.currentTimeMillis)
      )
      for (const id of decision.remove) {
        yield* Effect.mapError(target.remove(id), failed(`removing ${id}`))
      }
      if (decision.remove.length > 0) {
        yield* Effect.logInfo("backups pruned").pipe(Effect.annotateLogs({ removed: decision.remove }))
      }
      return { kept: decision.keep, removed: decision.remove }
    }).pipe(Effect.withSpan("Backup.prune"), Effect.annotateLogs({ service: "backup" }))

    const auditor = yield* Effect.serviceOption(Auditor)
    const audited = <A, E extends { readonly detail: string }, R>(
      action: Operation["action"],
      backupId: string | undefined,
      summary: (a: A) => { readonly id?: string | undefined; readonly detail: string }
    ) =>
    (effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
      Option.match(auditor, {
        onNone: () => effect,
        onSome: (auditor) =>
          Effect.onExit(effect, (exit) =>
            exit._tag === "Success"
              ? Effect.suspend(() => {
                const done = summary(exit.value)
                return auditor.record({
                  action,
                  backupId: done.id ?? backupId,
                  outcome: "success",
                  detail: done.detail
                })
              })
              : auditor.record({
                action,
                backupId,
                outcome: "failure",
                detail: Option.match(Cause.findErrorOption(exit.cause), {
                  onNone: () => Cause.hasInterruptsOnly(exit.cause) ? "interrupted" : "unexpected error",
                  onSome: (error) => error.detail
                })
              }))
      })

    return Backup.of({
      create: (o) =>
        create(o).pipe(audited("backup.create", undefined, (m) => ({
          id: m.id,
          detail: `${m.kind}: events ${m.events.from}-${m.events.to}, ${m.files.length} files`
        }))),
      list,
      get,
      verify: (id, o) => verify(id, o).pipe(audited("backup.verify", id, (v) => ({ detail: `verified (${v.tier})` }))),
      restore: (id, o) =>
        restore(id, o).pipe(audited("backup.restore", id, (r) => ({
          id: r.id,
          detail: `${r.restoredEvents} events restored, ${r.replayedEvents} replayed, last sequence ${r.lastSequence}` +
            (o?.at === undefined ? "" : ` (point in time ${o.at instanceof Date ? o.at.toISOString() : o.at})`)
        }))),
      prune: prune.pipe(
        audited("backup.prune", undefined, (p) => ({ detail: `removed ${p.removed.join(", ") || "none"}` }))
      )
    })
  })

/**
 * The Backup service on the stores and target in context; `Checkpoints`, `Projections` and `BackupSources` are
 * used when present.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<Backup, never, EventStore.EventStore | VectorStore.VectorStore | BackupTarget.BackupTarget> =>
  Layer.effect(Backup, make(options))

/**
 * The Backup service and a directory target from {@link config} (by default read under `BACKUP_`: `BACKUP_DIR`,
 * `BACKUP_KEEP_LAST`…), the directory defaulting to `<dataDir>/backups`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (options: {
  readonly dataDir: string
  readonly projectionCheckpoint?: string | undefined
  readonly config?: Config.Config<BackupConfig> | undefined
}): Layer.Layer<
  Backup | BackupTarget.BackupTarget,
  Config.ConfigError | BackupTarget.BackupTargetError,
  EventStore.EventStore | VectorStore.VectorStore
> =>
  Layer.unwrap(
    Effect.map(options.config ?? Config.nested(config, "BACKUP"), (settings) =>
      layer({ retention: retentionOf(settings), projectionCheckpoint: options.projectionCheckpoint }).pipe(
        Layer.provideMerge(BackupTarget.layerDirectory(directoryOf(settings, options.dataDir)))
      ))
  )

/**
 * The retention policy of a configuration.
 *
 * @since 0.1.0
 * @category utils
 */
export const retentionOf = (settings: BackupConfig): Retention.Policy => ({
  keepLast: settings.keepLast,
  keepDaily: settings.keepDaily,
  keepWeekly: settings.keepWeekly
})

/**
 * The backup directory of a configuration: `DIR`, else `<dataDir>/backups`.
 *
 * @since 0.1.0
 * @category utils
 */
export const directoryOf = (settings: BackupConfig, dataDir: string): string =>
  Option.getOrElse(settings.directory, () => Path.join(dataDir, "backups"))
