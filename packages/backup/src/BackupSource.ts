/**
 * Extra things a backup holds besides the event store and the vector store: the audit log, tenants, flags… Each is a
 * `BackupSource` (export as bytes, import from bytes, count, hash), kept in a registry so that a package adds its
 * table to every backup with one line:
 *
 * ```ts
 * const AuditBackupLive = BackupSource.layerTable({ name: "audit", table: "audit_events", orderBy: "id" })
 * ```
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Option, Ref, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { createHash } from "node:crypto"

/**
 * One thing to back up. `export` must be deterministic for unchanged content: `hash` is the SHA-256 of what it
 * yields, and a restore is checked by comparing the hash after import with the one in the manifest.
 *
 * @since 0.1.0
 * @category models
 */
export interface BackupSource {
  /** Unique name; the backup file is `<name>.ndjson` (letters, digits, `_`, `-`). */
  readonly name: string
  /** The whole content as bytes. */
  readonly export: Stream.Stream<Uint8Array, unknown>
  /** Replaces the whole content with exported bytes. */
  readonly import: (bytes: Stream.Stream<Uint8Array, unknown>) => Effect.Effect<void, unknown>
  /** How many items (rows) it holds. */
  readonly count: Effect.Effect<number, unknown>
  /** SHA-256 (hex) of `export`. */
  readonly hash: Effect.Effect<string, unknown>
}

/**
 * The registry of sources.
 *
 * @since 0.1.0
 * @category services
 */
export class BackupSources extends Context.Service<BackupSources, {
  readonly register: (source: BackupSource) => Effect.Effect<void>
  readonly all: Effect.Effect<ReadonlyArray<BackupSource>>
}>()("@ouroboros/backup/BackupSources") {}

/**
 * An empty registry.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeRegistry: Effect.Effect<BackupSources["Service"]> = Effect.map(
  Ref.make<ReadonlyArray<BackupSource>>([]),
  (ref) =>
    BackupSources.of({
      register: (source) => Ref.update(ref, (sources) => [...sources.filter((s) => s.name !== source.name), source]),
      all: Ref.get(ref)
    })
)

/**
 * The registry (the Backup layer provides one when none is given).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRegistry: Layer.Layer<BackupSources> = Layer.effect(BackupSources, makeRegistry)

/**
 * Adds a source to every backup.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (source: BackupSource): Layer.Layer<never, never, BackupSources> =>
  Layer.effectDiscard(Effect.flatMap(BackupSources, (registry) => registry.register(source)))

/**
 * The SHA-256 of a byte stream.
 *
 * @since 0.1.0
 * @category utils
 */
export const sha256 = <E, R>(bytes: Stream.Stream<Uint8Array, E, R>): Effect.Effect<string, E, R> =>
  Effect.suspend(() => {
    const hash = createHash("sha256")
    return Stream.runForEach(bytes, (chunk) => Effect.sync(() => hash.update(chunk))).pipe(
      Effect.map(() => hash.digest("hex"))
    )
  })

/**
 * Splits a byte stream into lines (NDJSON), dropping empty ones.
 *
 * @since 0.1.0
 * @category utils
 */
export const lines = <E, R>(bytes: Stream.Stream<Uint8Array, E, R>): Stream.Stream<string, E, R> =>
  bytes.pipe(Stream.decodeText(), Stream.splitLines, Stream.filter((line) => line.length > 0))

const encoder = new TextEncoder()

/**
 * Encodes lines as NDJSON bytes, in chunks of about 1 MiB.
 *
 * @since 0.1.0
 * @category utils
 */
export const ndjson = <E, R>(items: Stream.Stream<string, E, R>): Stream.Stream<Uint8Array, E, R> =>
  items.pipe(
    Stream.rechunk(2048),
    Stream.mapArray((lines) => [encoder.encode(lines.map((line) => line + "\n").join(""))])
  )

/**
 * @since 0.1.0
 * @category models
 */
export interface TableOptions {
  /** The source name (and file name). */
  readonly name: string
  /** The table, optionally schema-qualified (`audit.events`). */
  readonly table: string
  /** The column(s) giving a stable total order (a primary key), e.g. `"id"` or `["tenant_id", "key"]`. */
  readonly orderBy: string | ReadonlyArray<string>
  /** Rows per query (default 1000). */
  readonly batchSize?: number | undefined
}

/**
 * A SQL table as a source: rows exported as NDJSON (`row_to_json`) in key order, imported back with
 * `json_populate_record` after emptying the table, in one transaction.
 *
 * @since 0.1.0
 * @category constructors
 */
export const tableSource = (options: TableOptions): Effect.Effect<BackupSource, never, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const table = sql(options.table)
    const quote = (identifier: string) =>
      identifier.split(".").map((part) => `"${part.replace(/"/g, "\"\"")}"`).join(".")
    const orderBy = sql.literal(
      (typeof options.orderBy === "string" ? [options.orderBy] : options.orderBy).map(quote).join(", ")
    )
    const batchSize = Math.max(1, options.batchSize ?? 1000)
    // Keyset pagination would need the key's types; OFFSET is fine inside one REPEATABLE READ snapshot.
    const rows: Stream.Stream<string, unknown> = Stream.paginate(
      0,
      (offset: number) =>
        sql<{ j: string }>`SELECT row_to_json(t)::text AS j FROM ${table} t ORDER BY ${orderBy}
        LIMIT ${batchSize} OFFSET ${offset}`.pipe(
          Effect.map((page) =>
            [
              page.map((r) => r.j),
              page.length < batchSize ? Option.none<number>() : Option.some(offset + batchSize)
            ] as const
          )
        )
    )
    const exported = ndjson(rows)
    const importRows = (bytes: Stream.Stream<Uint8Array, unknown>) =>
      Effect.gen(function*() {
        yield* sql`DELETE FROM ${table}`
        yield* lines(bytes).pipe(
          Stream.grouped(batchSize),
          Stream.runForEach((batch) =>
            sql`INSERT INTO ${table} SELECT * FROM json_populate_recordset(NULL::${table}, ${
              "[" + batch.join(",") + "]"
            }::json)`
          )
        )
      }).pipe(sql.withTransaction)
    return {
      name: options.name,
      export: exported,
      import: importRows,
      count: Effect.map(sql<{ n: number }>`SELECT count(*)::int AS n FROM ${table}`, (r) => r[0]?.n ?? 0),
      hash: sha256(exported)
    } satisfies BackupSource
  })

/**
 * Adds a SQL table to every backup: one line per table.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { BackupSource } from "@ouroboros/backup"
 * const TenantsBackup = BackupSource.layerTable({ name: "tenants", table: "tenants", orderBy: "id" })
 */
export const layerTable = (options: TableOptions): Layer.Layer<never, never, BackupSources | SqlClient.SqlClient> =>
  Layer.effectDiscard(Effect.gen(function*() {
    const registry = yield* BackupSources
    yield* registry.register(yield* tableSource(options))
  }))
