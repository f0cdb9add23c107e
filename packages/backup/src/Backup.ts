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
 * @since 0.1.0
 */
import { Checkpoints, EventStore } from "@ouroboros/event-store"
import { Embedded, VectorStore } from "@ouroboros/vector-store"
import { Cause, Clock, Config, Context, Data, Effect, Layer, Option, Result, Schema, Semaphore, Stream } from "effect"
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
 * A restore failed part way. The stores may hold part of the backup: run the restore again.
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
  /** Restore even when the backup is not verified (its checksums are not checked either). */
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
 * The projections of the event store, as the application provides them: after a restore, `rebuild` recomputes the
 * vectors from the restored events. Optional: without it vectors come back from the snapshots.
 *
 * @since 0.1.0
 * @category services
 */
export class Projections extends Context.Service<Projections, {
  readonly rebuild: Effect.Effect<void, unknown>
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

    // The backup and those it builds on, oldest (the full one) first.
    const chainOf = (info: Manifest.BackupInfo) =>
      Effect.gen(function*() {
        const chain: Array<Manifest.BackupInfo> = [info]
        let current = info.manifest
        while (current.kind === "incremental") {
          const parent = current.parent
          const found = parent === undefined ? Option.none() : yield* readInfo(parent)
          if (Option.isNone(found)) {
            return yield* new BackupCorrupt({
              id: info.manifest.id,
              files: [`${parent ?? "?"}/${BackupTarget.manifestFile}`],
              detail: `backup ${current.id} builds on ${parent ?? "nothing"}, which is missing`
            })
          }
          chain.unshift(found.value)
          current = found.value.manifest
        }
        return chain
      })

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
            return BackupSource.sha256(target.read(id, file.name).pipe(Stream.tap((chunk) => {
              bytes += chunk.byteLength
              done += chunk.byteLength
              return progress({ phase: "checksums", done, total })
            }))).pipe(Effect.map((sha256) => ({ sha256, bytes })))
          }))
          const where = `${id}/${file.name}`
          if (Result.isFailure(result)) problems.push(problemAt(where, `${result.failure.message}`))
          else if (result.success.sha256 !== file.sha256) {
            problems.push(problemAt(where, `SHA-256 mismatch (expected ${file.sha256}, found ${result.success.sha256})`))
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
          const rows = yield* Effect.result(BackupSource.lines(target.read(info.manifest.id, entry.name)).pipe(
            Stream.mapEffect((line) =>
              Effect.try({ try: () => JSON.parse(line) as unknown, catch: () => `${where}: a row is not JSON` })
            ),
            Stream.runCount
          ))
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
        // The checksum tier covers every backup of the chain: a restore reads them all.
        for (const link of chain) problems.push(...(yield* checksumProblems(link, progress)))
        if (tier === "restore" && problems.length === 0) {
          problems.push(...(yield* Effect.catchDefect(
            restoreProblems(info, progress),
            (defect) =>
              Effect.succeed([problemAt(id, `restore test failed: ${describe(Cause.squash(Cause.die(defect)))}`)])
          )))
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
        if (restoreOptions?.force !== true) {
          // Files may have changed since the verification: re-check the checksums before anything is deleted.
          const problems: Array<Problem> = []
          for (const link of chain) {
            problems.push(...(yield* checksumProblems(link, progress)))
          }
          if (problems.length > 0) {
            return yield* new BackupCorrupt({
              id,
              files: problems.map((p) => p.file),
              detail: problems.map((p) => p.problem).join("; ")
            })
          }
        }
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
          yield* Effect.logInfo("restore started").pipe(
            Effect.annotateLogs({ backupId: id, at: at instanceof Date ? at.toISOString() : at ?? "backup" })
          )
          // Point in time past the backup: keep the later events of the live store before it is emptied.
          const replayFile = Path.join(Os.tmpdir(), `ouroboros-replay-${id}-${Date.now()}.ndjson`)
          yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(replayFile, { force: true })))
          let replayCount = 0
          if (at !== undefined && (untilSequence === undefined || untilSequence > backupTo)) {
            const live = events.readAll({
              fromSequence: backupTo + 1,
              ...(untilSequence === undefined ? {} : { toSequence: untilSequence }),
              ...(untilDate === undefined ? {} : { until: untilDate }),
              batchSize: 2000
            })
            yield* Effect.tryPromise({
              try: () => Fs.promises.writeFile(replayFile, ""),
              catch: restoreFailed("saving the events to replay")
            })
            yield* live.pipe(
              Stream.map(eventLine),
              Stream.grouped(2000),
              Stream.runForEach((batch) => {
                replayCount += batch.length
                return Effect.tryPromise({
                  try: () => Fs.promises.appendFile(replayFile, batch.map((l) => l + "\n").join("")),
                  catch: restoreFailed("saving the events to replay")
                })
              })
            )
            const liveLast = yield* events.lastSequence
            if (untilSequence !== undefined && liveLast < untilSequence) {
              return yield* new InvalidRestorePoint({
                id,
                detail: `sequence ${untilSequence} is past the last event of the store (${liveLast})`
              })
            }
          }

          yield* events.truncate
          let restoredEvents = 0
          for (const link of chain) {
            for (const file of eventFiles(link)) {
              yield* events.importEvents(
                readEvents(link, file).pipe(
                  Stream.filter(inRange),
                  Stream.mapArrayEffect((chunk) => {
                    restoredEvents += chunk.length
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
              BackupSource.lines(Stream.fromAsyncIterable(
                Fs.createReadStream(replayFile) as AsyncIterable<Buffer>,
                restoreFailed("reading the events to replay")
              )).pipe(Stream.mapEffect((line) => Effect.orDie(decodeEventLine(line)))),
              { batchSize: 1000 }
            ).pipe(
              Effect.mapError((e) => e._tag === "ImportConflict" ? new RestoreFailed({ id, detail: e.detail }) : e)
            )
            yield* progress({ phase: "replay", done: replayCount, total: replayCount })
          }

          const restoredSources: Array<string> = []
          const known = yield* sources
          for (const entry of info.manifest.sources) {
            const source = known.find((s) => s.name === entry.name)
            const file = info.manifest.files.find((f) => f.source === entry.name)
            if (source === undefined || file === undefined) {
              yield* Effect.logWarning(`backup source ${entry.name} is not registered here: not restored`)
              continue
            }
            yield* Effect.mapError(source.import(target.read(id, file.name)), restoreFailed(`source ${entry.name}`))
            restoredSources.push(entry.name)
          }

          if (vectorMode === "snapshot") {
            const snapshotFiles = info.manifest.files.filter((f) => f.source.startsWith(vectorsPrefix))
            const keep = new Set(snapshotFiles.map((f) => f.source.slice(vectorsPrefix.length)))
            for (const existing of yield* Effect.mapError(vectors.listCollections, restoreFailed("vector store"))) {
              if (!keep.has(existing.name)) {
                yield* Effect.mapError(vectors.drop(existing.name), restoreFailed(`dropping ${existing.name}`))
              }
            }
            let restoredVectors = 0
            for (const file of snapshotFiles) {
              const chunks = yield* Stream.runCollect(target.read(id, file.name)).pipe(
                Effect.mapError(restoreFailed(file.name))
              )
              const bytes = Buffer.concat(chunks)
              yield* vectors.restore(file.source.slice(vectorsPrefix.length), bytes).pipe(
                Effect.mapError(restoreFailed(file.name))
              )
              restoredVectors += file.count
              yield* progress({ phase: "vectors", done: restoredVectors, total: undefined })
            }
            if (Option.isSome(checkpoints)) {
              yield* checkpoints.value.set(checkpointName, Math.min(info.manifest.projectionCheckpoint, backupTo))
            }
          } else if (Option.isSome(projections)) {
            yield* progress({ phase: "rebuild vectors", done: 0, total: undefined })
            yield* Effect.mapError(projections.value.rebuild, restoreFailed("rebuilding the projections"))
          }

          const lastSequence = yield* events.lastSequence
          const result: RestoreResult = {
            id,
            chain: chain.map((c) => c.manifest.id),
            restoredEvents,
            replayedEvents: replayCount,
            lastSequence,
            vectors: vectorMode,
            sources: restoredSources
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
                return auditor.record({ action, backupId: done.id ?? backupId, outcome: "success", detail: done.detail })
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
      prune: prune.pipe(audited("backup.prune", undefined, (p) => ({ detail: `removed ${p.removed.join(", ") || "none"}` })))
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
  Layer.unwrap(Effect.map(options.config ?? Config.nested(config, "BACKUP"), (settings) =>
    layer({ retention: retentionOf(settings), projectionCheckpoint: options.projectionCheckpoint }).pipe(
      Layer.provideMerge(BackupTarget.layerDirectory(directoryOf(settings, options.dataDir)))
    )))

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
