/**
 * An append-only event store on `effect/sql` (PostgreSQL, or the embedded PGlite).
 *
 * Every event gets a global `sequence` (increasing in commit order; a rolled-back append can leave a gap) and a
 * `version` inside its stream (0, 1, 2, …). An append can state the version it expects the stream to be at; a stale
 * expectation fails with {@link WrongExpectedVersion} (HTTP 409) and writes nothing.
 *
 * Ordering: appends take a transaction-level advisory lock on the events table before they allocate sequence numbers
 * and hold it until commit, so sequence order is commit order. A reader that has seen sequence `n` has seen every
 * event below `n` that will ever exist, which is what catch-up readers (projections, incremental backups) rely on.
 * Commits are therefore one at a time; to keep throughput, appends that wait are written together by one writer
 * fiber in one transaction (group commit), each with its own version check. `recordedAt` is taken under the same
 * lock and never goes backwards, so "every event up to time T" is a prefix of the sequence order, which is what
 * point-in-time recovery replays.
 *
 * @since 0.1.0
 */
import * as Rls from "@ouroboros/tenancy/Rls"
import {
  Array as Arr,
  Cause,
  Config,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Layer,
  Option,
  Queue,
  Ref,
  Schema,
  SchemaTransformation,
  Stream
} from "effect"
import { dual } from "effect/Function"
import { type Migrator, SqlClient, type SqlError, SqlSchema } from "effect/sql"
import * as Memory from "./internal/memory.js"
import * as Internal from "./internal/migrations.js"
import { Int8, Timestamp } from "./internal/rows.js"

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * The id of a stream, e.g. `tenant/acme/document/123` or `tenant/acme/pipeline/42/branch/main`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const StreamId = Schema.String.check(
  Schema.isMinLength(1),
  Schema.isMaxLength(1024),
  Schema.makeFilter((s) => !s.includes("\u0000"), { message: "a stream id cannot contain NUL characters" })
).annotate({ identifier: "StreamId", description: "The id of an event stream" })

/**
 * @since 0.1.0
 * @category models
 */
export type StreamId = typeof StreamId.Type

/**
 * What an append expects of the stream: `"any"` (no check, the default), `"no-stream"` (the stream has no event
 * yet) or the version of its last event (`-1` is the same as `"no-stream"`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ExpectedVersion = Schema.Union([
  Schema.Int.check(Schema.isGreaterThanOrEqualTo(-1)),
  Schema.Literals(["any", "no-stream"])
]).annotate({ identifier: "ExpectedVersion" })

/**
 * @since 0.1.0
 * @category models
 */
export type ExpectedVersion = typeof ExpectedVersion.Type

/**
 * Free-form event metadata. A string `tenantId` member is also stored in its own column for per-tenant reads.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Metadata = Schema.Record(Schema.String, Schema.Unknown)

/**
 * @since 0.1.0
 * @category models
 */
export type Metadata = typeof Metadata.Type

/**
 * An event to append: a type, a JSON payload and optional metadata.
 *
 * @since 0.1.0
 * @category schemas
 */
export const NewEvent = Schema.Struct({
  type: Schema.String.check(
    Schema.isMinLength(1),
    Schema.isMaxLength(256),
    Schema.makeFilter((s) => !s.includes("\u0000"), { message: "an event type cannot contain NUL characters" })
  ),
  data: Schema.Unknown,
  metadata: Schema.optional(Metadata)
}).annotate({ identifier: "NewEvent" })

/**
 * @since 0.1.0
 * @category models
 */
export interface NewEvent {
  readonly type: string
  readonly data: unknown
  readonly metadata?: Metadata | undefined
}

/**
 * An event as stored. Its encoded form is plain JSON (`recordedAt` an ISO string), the portable format of exports.
 *
 * @since 0.1.0
 * @category schemas
 */
export class RecordedEvent extends Schema.Class<RecordedEvent>("@ouroboros/event-store/RecordedEvent")({
  sequence: Schema.Int.check(Schema.isGreaterThan(0)),
  streamId: Schema.String,
  version: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  type: Schema.String,
  data: Schema.Unknown,
  metadata: Metadata,
  tenantId: Schema.optional(Schema.String),
  recordedAt: Schema.DateFromString
}) {}

/**
 * One {@link RecordedEvent} as a JSON text: a line of an NDJSON export.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RecordedEventFromJson = Schema.fromJsonString(RecordedEvent)

/**
 * The outcome of an append: the sequence numbers it took and the stream's new version. An empty append writes
 * nothing and reports sequence 0 for both.
 *
 * @since 0.1.0
 * @category schemas
 */
export const AppendResult = Schema.Struct({
  firstSequence: Schema.Int,
  lastSequence: Schema.Int,
  version: Schema.Int
}).annotate({ identifier: "AppendResult" })

/**
 * @since 0.1.0
 * @category models
 */
export type AppendResult = typeof AppendResult.Type

/**
 * @since 0.1.0
 * @category models
 */
export interface AppendOptions {
  readonly expectedVersion?: ExpectedVersion | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ReadStreamOptions {
  /** The first version to read (inclusive, default 0). */
  readonly fromVersion?: number | undefined
  /** At most this many events. */
  readonly limit?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ReadAllOptions {
  /** The first sequence to read (inclusive, default 1). */
  readonly fromSequence?: number | bigint | undefined
  /** The last sequence to read (inclusive). Default: the last sequence when the stream starts. */
  readonly toSequence?: number | bigint | undefined
  /** Only events recorded at or before this instant. */
  readonly until?: Date | undefined
  /** Rows per query (default 500). */
  readonly batchSize?: number | undefined
  /** Only the events of this tenant (`metadata.tenantId`). */
  readonly tenantId?: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface FollowOptions {
  /** The first sequence to read (inclusive, default 1). */
  readonly fromSequence?: number | bigint | undefined
  /** Only the events of this tenant (`metadata.tenantId`). */
  readonly tenantId?: string | undefined
  /** Rows per query (default 500). */
  readonly batchSize?: number | undefined
  /** How often to look for events appended by other processes (default 1 second). */
  readonly pollInterval?: Duration.Input | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ListStreamsOptions {
  /** Only streams whose id starts with this, e.g. `tenant/acme/document/`. */
  readonly prefix: string
  /** Only streams whose id sorts after this one (a page's last stream id: the next page starts after it). */
  readonly after?: string | undefined
  /** At most this many streams. */
  readonly limit: number
  /** Streams whose last event has one of these types are left out (e.g. a deleted document's stream). */
  readonly skipWhenLast?: ReadonlyArray<string> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ImportOptions {
  /** Rows per transaction (default 500). */
  readonly batchSize?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ImportResult {
  /** Events written. */
  readonly imported: number
  /** Events whose sequence was already present (a repeated import is a no-op). */
  readonly skipped: number
}

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/**
 * The stream is not at the version the append expected: someone else appended first. Nothing was written.
 *
 * @since 0.1.0
 * @category errors
 */
export class WrongExpectedVersion extends Schema.TaggedError<WrongExpectedVersion>()(
  "WrongExpectedVersion",
  {
    detail: Schema.String,
    streamId: Schema.String,
    expected: ExpectedVersion,
    actual: Schema.Int
  },
  { httpApiStatus: 409, description: "The stream is not at the expected version" }
) {}

/**
 * An imported event takes a (stream, version) that another event with a different sequence already holds: the
 * target is not empty and not a prefix of the export. The batch that met it was not written.
 *
 * @since 0.1.0
 * @category errors
 */
export class ImportConflict extends Schema.TaggedError<ImportConflict>()(
  "ImportConflict",
  { detail: Schema.String },
  { httpApiStatus: 409, description: "The imported events conflict with stored ones" }
) {}

/**
 * Every error of the event store.
 *
 * @since 0.1.0
 * @category errors
 */
export type EventStoreError = WrongExpectedVersion | ImportConflict

// -----------------------------------------------------------------------------
// service
// -----------------------------------------------------------------------------

/**
 * The event store.
 *
 * @since 0.1.0
 * @category tags
 * @example
 * import { EventStore } from "@ouroboros/event-store"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const store = yield* EventStore.EventStore
 *   const { version } = yield* store.append("tenant/acme/document/1", [
 *     { type: "DocumentIngested", data: { text: "hello" }, metadata: { tenantId: "acme" } }
 *   ], { expectedVersion: "no-stream" })
 *   return yield* store.readStream("tenant/acme/document/1")
 * })
 */
export class EventStore extends Context.Service<EventStore, {
  /** Appends events to a stream atomically, after checking the expected version. */
  readonly append: (
    streamId: string,
    events: ReadonlyArray<NewEvent>,
    options?: AppendOptions
  ) => Effect.Effect<AppendResult, WrongExpectedVersion>
  /** The events of one stream in version order. */
  readonly readStream: (
    streamId: string,
    options?: ReadStreamOptions
  ) => Effect.Effect<ReadonlyArray<RecordedEvent>>
  /** All events in sequence order, fetched in batches (each batch its own query: no connection is held between). */
  readonly readAll: (options?: ReadAllOptions) => Stream.Stream<RecordedEvent>
  /**
   * Every event from `fromSequence` on, then each new one as it is committed: an endless stream for projections.
   * Appends through this store wake it at once; appends by other processes are seen within `pollInterval`.
   */
  readonly follow: (options?: FollowOptions) => Stream.Stream<RecordedEvent>
  /** The highest committed sequence, 0 when the store is empty. Everything at or below it is readable. */
  readonly lastSequence: Effect.Effect<number>
  /** The version of the stream's last event, -1 when the stream has none. */
  readonly streamVersion: (streamId: string) => Effect.Effect<number>
  /**
   * Writes exported events back with their own sequence, version and time (a restore). Events whose sequence is
   * already stored are skipped, so importing a full export and then incremental ones, or repeating an import, is
   * safe. Import into an empty store or above {@link lastSequence}.
   */
  readonly importEvents: <E, R>(
    events: Stream.Stream<RecordedEvent, E, R>,
    options?: ImportOptions
  ) => Effect.Effect<ImportResult, E | ImportConflict, R>
  /** Deletes every event and restarts the sequence at 1 (before a full restore). */
  readonly truncate: Effect.Effect<void>
  /**
   * Streams by id, in the database's order of stream ids, each with all its events in version order: a page of
   * `limit` streams after `after` whose ids start with `prefix`. Keyset pagination: a stream that exists from the
   * first page to the last is listed exactly once, whatever is appended or deleted between pages.
   */
  readonly listStreams: (options: ListStreamsOptions) => Effect.Effect<ReadonlyArray<ReadonlyArray<RecordedEvent>>>
  /**
   * Deletes every event of a tenant (its `tenantId` column, or a stream under `tenant/<id>/`): erasing a deleted
   * tenant's data. An operator's action, run as the owner of the table; returns how many events were deleted.
   */
  readonly deleteTenant: (tenantId: string) => Effect.Effect<number>
}>()("@ouroboros/event-store/EventStore") {}

// -----------------------------------------------------------------------------
// tenant scope
// -----------------------------------------------------------------------------

/**
 * The tenant the current fiber acts for, if any. Inside {@link forTenant}, the SQL store runs `readStream`,
 * `streamVersion`, `listStreams` and `append` under PostgreSQL row-level security for that tenant (`app.tenant_id`
 * and the `ouroboros_tenant` role, see the migration `0003_row_level_security`): another tenant's rows are invisible,
 * and an event whose `metadata.tenantId` is another tenant's is refused (a defect). Outside it — the projector,
 * backups, operators' rebuilds — the store works as the table's owner and sees every tenant.
 *
 * @since 0.1.0
 * @category tenant scope
 */
export const TenantScope: Context.Reference<string | undefined> = Context.Reference<string | undefined>(
  "@ouroboros/event-store/TenantScope",
  { defaultValue: () => undefined }
)

/**
 * Runs `effect` with its event store calls scoped to one tenant (see {@link TenantScope}).
 *
 * @since 0.1.0
 * @category tenant scope
 * @example
 * import { EventStore } from "@ouroboros/event-store"
 * import { Effect } from "effect"
 * const mine = Effect.flatMap(EventStore.EventStore, (store) => store.readStream("tenant/acme/document/1"))
 *   .pipe(EventStore.forTenant("acme"))
 */
export const forTenant: {
  (tenantId: string): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(effect: Effect.Effect<A, E, R>, tenantId: string): Effect.Effect<A, E, R>
} = dual(
  2,
  <A, E, R>(effect: Effect.Effect<A, E, R>, tenantId: string): Effect.Effect<A, E, R> =>
    Effect.provideService(effect, TenantScope, tenantId)
)

// -----------------------------------------------------------------------------
// rows
// -----------------------------------------------------------------------------

const EventRow = Schema.Struct({
  sequence: Int8,
  stream_id: Schema.String,
  version: Int8,
  type: Schema.String,
  data: Schema.Unknown,
  metadata: Metadata,
  tenant_id: Schema.NullOr(Schema.String),
  recorded_at: Timestamp
})

// Straight to the class instance: its fields are already decoded, so the constructor skips the checks.
const RecordedEventFromRow = EventRow.pipe(Schema.decodeTo(
  Schema.toType(RecordedEvent),
  SchemaTransformation.transform({
    decode: (row) =>
      new RecordedEvent({
        sequence: row.sequence,
        streamId: row.stream_id,
        version: row.version,
        type: row.type,
        data: row.data,
        metadata: row.metadata,
        ...(row.tenant_id === null ? {} : { tenantId: row.tenant_id }),
        recordedAt: row.recorded_at
      }, { disableChecks: true }),
    encode: (event) => ({
      sequence: event.sequence,
      stream_id: event.streamId,
      version: event.version,
      type: event.type,
      data: event.data,
      metadata: event.metadata,
      tenant_id: event.tenantId ?? null,
      recorded_at: event.recordedAt
    })
  })
))

const SequenceRow = Schema.Struct({ sequence: Int8 })

const lockNamespace = 0x4f55524f // "OURO": the first key of the two-key advisory lock

const tenantOf = (metadata: Metadata | undefined): string | null =>
  typeof metadata?.tenantId === "string" ? metadata.tenantId : null

// SQLSTATE 23505 on the (stream, version) constraint: the database's own refusal of a duplicate version.
const isStreamVersionViolation = (error: SqlError.SqlError): boolean =>
  error.reason._tag === "UniqueViolation" && error.reason.constraint === Internal.streamVersionConstraint

// The server's explanation of a failed statement (`Key (stream_id, version)=(…) already exists.`).
const serverDetail = (error: SqlError.SqlError): string => {
  const cause = error.reason.cause
  return typeof cause === "object" && cause !== null && "detail" in cause ? String(cause.detail ?? "") : ""
}

const matches = (expected: ExpectedVersion, actual: number): boolean =>
  expected === "any" ? true : expected === "no-stream" ? actual === -1 : expected === actual

const describe = (expected: ExpectedVersion): string =>
  expected === "no-stream" || expected === -1 ? "no stream" : `version ${expected}`

const describeActual = (actual: number): string => actual === -1 ? "has no events" : `is at version ${actual}`

const insertChunk = 1000

interface EncodedEvent {
  readonly type: string
  readonly data: string
  readonly metadata: string
  readonly tenant_id: string | null
}

interface Pending {
  readonly streamId: string
  readonly events: ReadonlyArray<EncodedEvent>
  readonly expected: ExpectedVersion
  /** The tenant the append is scoped to ({@link TenantScope}): its rows are inserted under row-level security. */
  readonly tenant: string | undefined
  readonly deferred: Deferred.Deferred<AppendResult, WrongExpectedVersion>
}

/**
 * Tuning of the store. The defaults suit both PostgreSQL and the embedded database.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** At most this many waiting appends share one transaction and one commit (default 256; 1 turns grouping off). */
  readonly maxGroupSize?: number | undefined
  /** Rows per query of `readAll` when the caller does not say (default 500). */
  readonly readBatchSize?: number | undefined
}

/**
 * The store's settings (the server nests them under `EVENT_STORE_`):
 *
 * - `MAX_GROUP_SIZE` (default 256, 1 to 10000): at most this many concurrent appends are written in one transaction
 *   (group commit).
 * - `READ_BATCH_SIZE` (default 500, 1 to 100000): rows fetched per query when reading all events.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Required<Options>> = Config.all({
  maxGroupSize: Config.schema(
    Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 10_000 }, { message: "must be between 1 and 10000" })),
    "MAX_GROUP_SIZE"
  ).pipe(Config.withDefault(256)),
  readBatchSize: Config.schema(
    Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 100_000 }, { message: "must be between 1 and 100000" })),
    "READ_BATCH_SIZE"
  ).pipe(Config.withDefault(500))
})

/**
 * Builds the store on the `SqlClient` in context; its group-commit writer lives as long as the scope. The tables
 * must exist ({@link layer} runs the migrations).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}) =>
  Effect.gen(function*() {
    const maxGroup = Math.max(1, Math.trunc(options.maxGroupSize ?? 256))
    const defaultReadBatch = Math.max(1, Math.trunc(options.readBatchSize ?? 500))
    // Column names are ours: a client configured with name transforms must not rewrite them.
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const [table] = yield* sql<{ readonly oid: number }>`SELECT ${Internal.eventsTable}::regclass::oid::int AS oid`
    const tableOid = table?.oid ?? 0

    // Its own statement: in READ COMMITTED each statement takes a fresh snapshot, so the reads that follow see the
    // commit of whoever held the lock before.
    const lock = sql`SELECT pg_advisory_xact_lock(${lockNamespace}, ${tableOid})`

    const decodeSequences = Schema.decodeUnknownEffect(Schema.Array(SequenceRow))

    // Followers wait on the current signal; a commit completes it and puts a fresh one in its place. Not
    // `effect/reactivity`: its queries re-run a whole effect, where a follower pages on from its own cursor, and the
    // `Reactivity` a `PgClient` layer uses is its own, hidden from the context. Its commit-aware invalidation is what
    // `sql.afterCommit` gives the in-transaction append below.
    const signal = yield* Ref.make(yield* Deferred.make<void>())
    const wake = Effect.flatMap(
      Deferred.make<void>(),
      (next) => Effect.flatMap(Ref.getAndSet(signal, next), (current) => Deferred.succeed(current, undefined))
    )

    // A read of the tenant in scope runs under row-level security (a transaction of its own, or a savepoint of the
    // caller's); without a scope it runs as the table's owner.
    const scoped = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.flatMap(
        Effect.service(TenantScope),
        (tenant): Effect.Effect<A, E | SqlError.SqlError, R> =>
          tenant === undefined
            ? effect
            : Rls.withTenant(effect, tenant).pipe(Effect.provideService(SqlClient.SqlClient, sql))
      )

    const streamVersion = Effect.fn("EventStore.streamVersion")(function*(streamId: string) {
      const rows = yield* scoped(sql<{ readonly version: number }>`SELECT coalesce(max(version), -1) AS version
      FROM event_store_events WHERE stream_id = ${streamId}`)
      return rows[0]?.version ?? -1
    }, Effect.orDie)

    const lastSequence = Effect.gen(function*() {
      const rows = yield* sql`SELECT coalesce(max(sequence), 0) AS sequence FROM event_store_events`
      const [row] = yield* decodeSequences(rows)
      return row?.sequence ?? 0
    }).pipe(Effect.orDie, Effect.withSpan("EventStore.lastSequence"))

    const conflict = (streamId: string, expected: ExpectedVersion, actual: number) =>
      new WrongExpectedVersion({
        detail: `stream ${streamId} ${describeActual(actual)}, expected ${describe(expected)}`,
        streamId,
        expected,
        actual
      })

    const encode = (events: ReadonlyArray<NewEvent>): ReadonlyArray<EncodedEvent> =>
      // JSON.stringify throws on a BigInt or a cycle: a programming error, so a defect.
      events.map((event) => ({
        type: event.type,
        data: JSON.stringify(event.data ?? null),
        metadata: JSON.stringify(event.metadata ?? {}),
        tenant_id: tenantOf(event.metadata)
      }))

    const insertRows = (rows: ReadonlyArray<Record<string, unknown>>) =>
      Effect.gen(function*() {
        const sequences: Array<number> = []
        for (let offset = 0; offset < rows.length; offset += insertChunk) {
          const chunk = rows.slice(offset, offset + insertChunk)
          if (!Arr.isReadonlyArrayNonEmpty(chunk)) break
          const returned = yield* Effect.flatMap(
            sql`INSERT INTO event_store_events ${sql.insert(chunk)} RETURNING sequence`,
            (rows) => Effect.orDie(decodeSequences(rows))
          )
          for (const { sequence } of returned) sequences.push(sequence)
        }
        // Identity values are drawn in VALUES order; sorting does not depend on the order RETURNING lists them in.
        return sequences.sort((a, b) => a - b)
      })

    const toRows = (
      streamId: string,
      events: ReadonlyArray<EncodedEvent>,
      from: number,
      recordedAt: Date
    ): ReadonlyArray<Record<string, unknown>> =>
      events.map((event, index) => ({
        stream_id: streamId,
        version: from + index,
        type: event.type,
        data: event.data,
        metadata: event.metadata,
        tenant_id: event.tenant_id,
        recorded_at: recordedAt
      }))

    const uniqueViolationToConflict = <A>(
      self: Effect.Effect<A, WrongExpectedVersion | SqlError.SqlError>,
      streamId: string,
      expected: ExpectedVersion
    ): Effect.Effect<A, WrongExpectedVersion> =>
      Effect.catchTag(self, "SqlError", (error) =>
        // Only reachable when a writer bypassed the lock (or a caller's transaction runs at REPEATABLE READ): the
        // unique constraint still refuses a duplicate version.
        isStreamVersionViolation(error)
          ? Effect.flatMap(streamVersion(streamId), (actual) => Effect.fail(conflict(streamId, expected, actual)))
          : Effect.die(error))

    // One append in its own transaction (or the caller's): used inside a caller's transaction, where the append must
    // commit or roll back with it, and as the fallback of a group that met a unique violation.
    const appendDirect = (
      streamId: string,
      events: ReadonlyArray<EncodedEvent>,
      expected: ExpectedVersion,
      tenant: string | undefined
    ) =>
      Effect.gen(function*() {
        yield* lock
        const state = yield* heads([streamId])
        const actual = state.versions.get(streamId) ?? -1
        if (!matches(expected, actual)) return yield* conflict(streamId, expected, actual)
        const rows = toRows(streamId, events, actual + 1, state.now)
        // The lock and the heads are the owner's (every tenant's last time); the rows go in under the tenant's policy.
        const sequences = yield* (tenant === undefined
          ? insertRows(rows)
          : Rls.withTenant(insertRows(rows), tenant).pipe(Effect.provideService(SqlClient.SqlClient, sql)))
        return {
          firstSequence: sequences[0]!,
          lastSequence: sequences[sequences.length - 1]!,
          version: actual + events.length
        }
      }).pipe(sql.withTransaction, (self) => uniqueViolationToConflict(self, streamId, expected))

    const HeadsRow = Schema.Struct({
      stream_id: Schema.NullOr(Schema.String),
      version: Schema.NullOr(Int8),
      now: Schema.NullOr(Timestamp)
    })
    const decodeHeads = Schema.decodeUnknownEffect(Schema.Array(HeadsRow))

    // One round trip under the lock: the clock row first, then the last version of each stream that has events.
    const heads = (streamIds: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        const rows = yield* Effect.flatMap(
          sql`SELECT NULL::text AS stream_id, NULL::int AS version, greatest(
            date_trunc('milliseconds', clock_timestamp()),
            (SELECT recorded_at FROM event_store_events ORDER BY sequence DESC LIMIT 1)
          ) AS now
        UNION ALL
        SELECT stream_id, max(version), NULL FROM event_store_events
        WHERE ${sql.in("stream_id", streamIds)} GROUP BY stream_id`,
          decodeHeads
        )
        const versions = new Map<string, number>()
        let now: Date | undefined
        for (const row of rows) {
          if (row.stream_id === null) now = row.now ?? undefined
          else versions.set(row.stream_id, row.version ?? -1)
        }
        return { versions, now: now ?? new Date() }
      }).pipe(Effect.orDie)

    // Group commit: appends waiting for the lock are written together, one transaction and one commit for all of them.
    // Each keeps its own expected-version check; one that fails is left out and gets its own error.
    const writeGroup = (group: ReadonlyArray<Pending>) =>
      Effect.gen(function*() {
        const outcomes = yield* Effect.gen(function*() {
          yield* lock
          const state = yield* heads(Array.from(new Set(group.map((p) => p.streamId))))
          // Rows in the group's order, cut into runs of one tenant scope: each run is inserted under its tenant's
          // row-level security (the role and tenant are switched for the rest of the transaction), or as the owner.
          const runs: Array<{ readonly tenant: string | undefined; readonly rows: Array<Record<string, unknown>> }> = []
          let offset = 0
          const planned = group.map((pending) => {
            const actual = state.versions.get(pending.streamId) ?? -1
            if (!matches(pending.expected, actual)) {
              return { pending, error: conflict(pending.streamId, pending.expected, actual) } as const
            }
            state.versions.set(pending.streamId, actual + pending.events.length)
            const last = runs[runs.length - 1]
            const run = last !== undefined && last.tenant === pending.tenant
              ? last
              : (runs.push({ tenant: pending.tenant, rows: [] }), runs[runs.length - 1]!)
            run.rows.push(...toRows(pending.streamId, pending.events, actual + 1, state.now))
            const start = offset
            offset += pending.events.length
            return { pending, offset: start, version: actual + pending.events.length } as const
          })
          const sequences: Array<number> = []
          let scopedRole = false
          for (const run of runs) {
            if (run.tenant !== undefined) {
              yield* sql`SELECT set_config(${Rls.setting}, ${run.tenant}, true), set_config('role', ${Rls.defaultRole}, true)`
              scopedRole = true
            } else if (scopedRole) {
              yield* sql`SELECT set_config('role', 'none', true), set_config(${Rls.setting}, '', true)`
              scopedRole = false
            }
            // Identity values are drawn in statement order: the runs' sequences follow each other.
            sequences.push(...(yield* insertRows(run.rows)))
          }
          return planned.map((plan) =>
            "error" in plan
              ? [plan.pending, Exit.fail(plan.error)] as const
              : [
                plan.pending,
                Exit.succeed({
                  firstSequence: sequences[plan.offset]!,
                  lastSequence: sequences[plan.offset + plan.pending.events.length - 1]!,
                  version: plan.version
                })
              ] as const
          )
        }).pipe(sql.withTransaction)
        for (const [pending, exit] of outcomes) Deferred.doneUnsafe(pending.deferred, exit)
        yield* wake
      }).pipe(
        Effect.withSpan("EventStore.writeGroup", { attributes: { "event_store.appends": group.length } }),
        // A unique violation (a writer that bypassed the lock) or a row the database refuses: each append of the group
        // is retried on its own, so one bad append cannot fail its neighbours.
        Effect.catchCause((cause) =>
          Cause.hasFails(cause)
            ? Effect.forEach(
              group,
              (pending) =>
                Deferred.complete(
                  pending.deferred,
                  appendDirect(pending.streamId, pending.events, pending.expected, pending.tenant)
                ),
              { discard: true }
            ).pipe(Effect.andThen(wake))
            : Effect.forEach(group, (pending) => Deferred.die(pending.deferred, Cause.squash(cause)), { discard: true })
        ),
        // A group in flight when the store shuts down still completes, so nobody waits on an unanswered append.
        Effect.uninterruptible
      )

    const queue = yield* Effect.acquireRelease(
      Queue.unbounded<Pending>(),
      // Appends still queued when the store closes are interrupted, and later offers are refused, so nobody waits for
      // ever. One synchronous step: nothing can be offered between draining and shutting down.
      (queue) =>
        Effect.suspend(() => {
          const left: Array<Pending> = []
          let taken = Queue.takeUnsafe(queue)
          while (taken !== undefined && Exit.isSuccess(taken)) {
            left.push(taken.value)
            taken = Queue.takeUnsafe(queue)
          }
          Queue.shutdownUnsafe(queue)
          return Effect.forEach(left, (pending) => Deferred.interrupt(pending.deferred), { discard: true })
        })
    )
    yield* Queue.takeBetween(queue, 1, maxGroup).pipe(
      Effect.flatMap(writeGroup),
      Effect.forever,
      Effect.forkScoped
    )

    const append = Effect.fn("EventStore.append")(
      function*(streamId: string, events: ReadonlyArray<NewEvent>, options?: AppendOptions) {
        const expected = options?.expectedVersion ?? "any"
        yield* Effect.annotateCurrentSpan({ "event_store.stream_id": streamId, "event_store.events": events.length })
        if (events.length === 0) {
          const actual = yield* streamVersion(streamId)
          if (!matches(expected, actual)) return yield* conflict(streamId, expected, actual)
          return { firstSequence: 0, lastSequence: 0, version: actual }
        }
        const encoded = encode(events)
        const tenant = yield* TenantScope
        if (Option.isSome(yield* Effect.serviceOption(sql.transactionService))) {
          // Inside the caller's transaction: followers are woken once it commits, and not at all if it rolls back.
          return yield* Effect.tap(appendDirect(streamId, encoded, expected, tenant), () => sql.afterCommit(wake))
        }
        const deferred = yield* Deferred.make<AppendResult, WrongExpectedVersion>()
        if (!(yield* Queue.offer(queue, { streamId, events: encoded, expected, tenant, deferred }))) {
          return yield* Effect.interrupt
        }
        return yield* Deferred.await(deferred)
      }
    )

    const readStreamQuery = SqlSchema.findAll({
      Request: Schema.Struct({ streamId: Schema.String, fromVersion: Schema.Int, limit: Schema.NullOr(Schema.Int) }),
      Result: RecordedEventFromRow,
      execute: ({ fromVersion, limit, streamId }) =>
        sql`SELECT sequence, stream_id, version, type, data, metadata, tenant_id, recorded_at
        FROM event_store_events
        WHERE stream_id = ${streamId} AND version >= ${fromVersion}
        ORDER BY version
        LIMIT ${limit}`
    })

    const readStream = Effect.fn("EventStore.readStream")(
      function*(streamId: string, options?: ReadStreamOptions) {
        return yield* scoped(readStreamQuery({
          streamId,
          fromVersion: Math.max(0, Math.trunc(options?.fromVersion ?? 0)),
          limit: options?.limit === undefined ? null : Math.max(0, Math.trunc(options.limit))
        }))
      },
      Effect.orDie
    )

    const PageRequest = Schema.Struct({
      from: Schema.Number,
      to: Schema.Number,
      limit: Schema.Int,
      until: Schema.NullOr(Schema.Date),
      tenantId: Schema.NullOr(Schema.String)
    })

    const page = SqlSchema.findAll({
      Request: PageRequest,
      Result: RecordedEventFromRow,
      execute: ({ from, limit, tenantId, to, until }) =>
        sql`SELECT sequence, stream_id, version, type, data, metadata, tenant_id, recorded_at
        FROM event_store_events
        WHERE ${
          sql.and([
            sql`sequence >= ${from}`,
            sql`sequence <= ${to}`,
            ...(until === null ? [] : [sql`recorded_at <= ${until}`]),
            ...(tenantId === null ? [] : [sql`tenant_id = ${tenantId}`])
          ])
        }
        ORDER BY sequence
        LIMIT ${limit}`
    })

    const lastSequenceUntil = (until: Date) =>
      Effect.gen(function*() {
        // recordedAt never decreases along the sequence, so the newest event at or before `until` bounds the read.
        const rows = yield* sql`SELECT sequence FROM event_store_events
        WHERE recorded_at <= ${until} ORDER BY recorded_at DESC, sequence DESC LIMIT 1`
        const [row] = yield* decodeSequences(rows)
        return row?.sequence ?? 0
      }).pipe(Effect.orDie)

    const follow = (options?: FollowOptions): Stream.Stream<RecordedEvent> => {
      const batchSize = Math.max(1, Math.trunc(options?.batchSize ?? defaultReadBatch))
      const pollInterval = options?.pollInterval ?? Duration.seconds(1)
      const tenantId = options?.tenantId ?? null
      // Sequence order is commit order, so reading past the last visible sequence without an upper bound never skips
      // an event that commits later.
      return Stream.paginate(Math.max(1, Number(options?.fromSequence ?? 1)), (cursor) =>
        Effect.gen(function*() {
          const waitFor = yield* Ref.get(signal)
          const events = yield* Effect.orDie(
            page({ from: cursor, to: Number.MAX_SAFE_INTEGER, limit: batchSize, until: null, tenantId })
          )
          const last = events[events.length - 1]
          if (last === undefined) {
            yield* Effect.raceFirst(Deferred.await(waitFor), Effect.sleep(pollInterval))
            return [[], Option.some(cursor)] as const
          }
          return [events, Option.some(last.sequence + 1)] as const
        }))
    }

    const readAll = (options?: ReadAllOptions): Stream.Stream<RecordedEvent> =>
      Stream.unwrap(Effect.gen(function*() {
        const batchSize = Math.max(1, Math.trunc(options?.batchSize ?? defaultReadBatch))
        const from = Math.max(1, Number(options?.fromSequence ?? 1))
        const until = options?.until ?? null
        let to = options?.toSequence === undefined ? yield* lastSequence : Number(options.toSequence)
        if (until !== null) to = Math.min(to, yield* lastSequenceUntil(until))
        const tenantId = options?.tenantId ?? null
        return Stream.paginate(from, (cursor) =>
          cursor > to
            ? Effect.succeed([[], Option.none<number>()] as const)
            : Effect.map(
              Effect.orDie(page({ from: cursor, to, limit: batchSize, until, tenantId })),
              (events) => {
                const last = events[events.length - 1]
                return [
                  events,
                  last === undefined || events.length < batchSize ? Option.none() : Option.some(last.sequence + 1)
                ] as const
              }
            ))
      })).pipe(Stream.withSpan("EventStore.readAll"))

    const importBatch = (events: ReadonlyArray<RecordedEvent>) =>
      Effect.gen(function*() {
        yield* lock
        const values = events.map((event) =>
          sql`(${event.sequence}, ${event.streamId}, ${event.version}, ${event.type}, ${
            JSON.stringify(event.data ?? null)
          }, ${JSON.stringify(event.metadata)}, ${event.tenantId ?? null}, ${event.recordedAt})`
        )
        const inserted = yield* sql`INSERT INTO event_store_events
        (sequence, stream_id, version, type, data, metadata, tenant_id, recorded_at)
        OVERRIDING SYSTEM VALUE VALUES ${sql.csv(values)}
        ON CONFLICT (sequence) DO NOTHING
        RETURNING sequence`
        // Under the lock no append holds an unused number, so the identity can continue right after the maximum.
        yield* sql`SELECT setval(pg_get_serial_sequence(${Internal.eventsTable}, 'sequence'), max(sequence))
        FROM event_store_events`
        return { imported: inserted.length, skipped: events.length - inserted.length }
      }).pipe(
        sql.withTransaction,
        Effect.catchTag("SqlError", (error) =>
          isStreamVersionViolation(error)
            ? Effect.fail(
              new ImportConflict({
                detail: `an imported event takes a stream version that is already stored (${serverDetail(error)})`
              })
            )
            : Effect.die(error))
      )

    const importEvents = <E, R>(
      events: Stream.Stream<RecordedEvent, E, R>,
      options?: ImportOptions
    ): Effect.Effect<ImportResult, E | ImportConflict, R> =>
      events.pipe(
        Stream.grouped(Math.max(1, Math.trunc(options?.batchSize ?? 500))),
        Stream.mapEffect((batch) => Effect.tap(importBatch(batch), () => wake)),
        Stream.runFold(
          (): ImportResult => ({ imported: 0, skipped: 0 }),
          (total, batch) => ({ imported: total.imported + batch.imported, skipped: total.skipped + batch.skipped })
        ),
        Effect.withSpan("EventStore.importEvents")
      )

    const truncate = sql`TRUNCATE event_store_events RESTART IDENTITY`.pipe(
      Effect.asVoid,
      Effect.orDie,
      Effect.withSpan("EventStore.truncate")
    )

    const decodeEvents = Schema.decodeUnknownEffect(Schema.Array(RecordedEventFromRow))

    const listStreams = Effect.fn("EventStore.listStreams")(function*(options: ListStreamsOptions) {
      const limit = Math.max(0, Math.trunc(options.limit))
      if (limit === 0) return []
      const skip = options.skipWhenLast ?? []
      // The page is the first `limit` streams after `after` whose last event is not skipped, in the database's order of
      // stream ids (the unique (stream_id, version) index serves both the order and the last version); then every event
      // of those streams, in one statement and one snapshot.
      const rows = yield* scoped(sql`WITH heads AS (
        SELECT DISTINCT ON (stream_id) stream_id, type FROM event_store_events
        WHERE ${
        sql.and([
          sql`starts_with(stream_id, ${options.prefix})`,
          ...(options.after === undefined ? [] : [sql`stream_id > ${options.after}`])
        ])
      }
        ORDER BY stream_id, version DESC
      ), page AS (
        SELECT stream_id FROM heads
        WHERE ${skip.length === 0 ? sql`TRUE` : sql`NOT ${sql.in("type", skip)}`}
        ORDER BY stream_id LIMIT ${limit}
      )
      SELECT e.sequence, e.stream_id, e.version, e.type, e.data, e.metadata, e.tenant_id, e.recorded_at
      FROM event_store_events e JOIN page p ON p.stream_id = e.stream_id
      ORDER BY e.stream_id, e.version`)
      const events = yield* decodeEvents(rows)
      const streams: Array<Array<RecordedEvent>> = []
      for (const event of events) {
        const last = streams[streams.length - 1]
        if (last !== undefined && last[0]!.streamId === event.streamId) last.push(event)
        else streams.push([event])
      }
      return streams
    }, Effect.orDie)

    const deleteTenant = Effect.fn("EventStore.deleteTenant")(function*(tenantId: string) {
      const rows = yield* sql`DELETE FROM event_store_events
      WHERE tenant_id = ${tenantId} OR starts_with(stream_id, ${`tenant/${tenantId}/`})
      RETURNING sequence`
      return rows.length
    }, Effect.orDie)

    return EventStore.of({
      append,
      readStream,
      readAll,
      follow,
      lastSequence,
      streamVersion,
      importEvents,
      truncate,
      listStreams,
      deleteTenant
    })
  })

/**
 * Runs the event store's migrations (tables `event_store_events`, `event_store_checkpoints`, recorded in
 * `event_store_migrations`). {@link layer} and `Checkpoints.layer` include it; shared, it runs once per build.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMigrations: Layer.Layer<never, SqlError.SqlError | Migrator.MigrationError, SqlClient.SqlClient> =
  Layer.effectDiscard(Internal.run)

/**
 * The event store on the `SqlClient` in context, migrations included.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<EventStore, SqlError.SqlError | Migrator.MigrationError, SqlClient.SqlClient> = Layer
  .effect(EventStore, make()).pipe(Layer.provide(layerMigrations))

/**
 * The event store with explicit options, migrations included.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (
  options: Options
): Layer.Layer<EventStore, SqlError.SqlError | Migrator.MigrationError, SqlClient.SqlClient> =>
  Layer.effect(EventStore, make(options)).pipe(Layer.provide(layerMigrations))

/**
 * The event store configured from {@link config} (or the given config), migrations included.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config<Options> = config
): Layer.Layer<
  EventStore,
  SqlError.SqlError | Migrator.MigrationError | Config.ConfigError,
  SqlClient.SqlClient
> => Layer.unwrap(Effect.map(options, layerWith))

/**
 * An event store in memory with the same contract (ordering, versions, conflicts, time filters, follow, import), for
 * tests and single-process tools. Nothing survives the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options: Options = {}): Layer.Layer<EventStore> =>
  Layer.effect(
    EventStore,
    Memory.makeStore({ WrongExpectedVersion, ImportConflict, RecordedEvent, TenantScope }, options)
  )
