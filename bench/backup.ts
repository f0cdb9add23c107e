/**
 * Backup and restore throughput: the event store on PostgreSQL (a fresh schema, dropped after; the embedded PGlite
 * when no server answers) with 200k events, and the embedded vector store with 100k vectors, backed up to a
 * temporary directory: a full backup, both verification tiers, and a full restore. Beside it, the peer: `pg_dump` of
 * the same events table (custom format) and `pg_restore` of it, measured in the same run.
 *
 * The issue asks 1M events and 100k vectors; 200k events keep the run under 90 s on the shared 2-core machine
 * (throughput is per event and the work is streamed, so it scales linearly). Set BENCH_BACKUP_EVENTS to change it.
 *
 * Run: `npm run bench -- backup` (from source:
 * `node --import tsx --input-type=module -e 'import("./bench/backup.ts").then(m => m.default())'`).
 */
import { Backup, BackupSource, BackupTarget } from "@ouroboros/backup"
import { Checkpoints, EventStore } from "@ouroboros/event-store"
import { TenantId } from "@ouroboros/kernel"
import { Database } from "@ouroboros/sql"
import { PgSchema, Services } from "@ouroboros/testkit"
import { Embedded, VectorStore } from "@ouroboros/vector-store"
import { Effect, Layer, References, Stream } from "effect"
import type { SqlClient } from "effect/sql"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const EVENTS = Number(process.env.BENCH_BACKUP_EVENTS ?? 200_000)
const VECTORS = 100_000
const DIMENSIONS = 128

interface Row {
  readonly operation: string
  readonly measured: string
  readonly seconds: number
  readonly "events/s": number | string
  readonly "vectors/s": number | string
  readonly "MB/s": number
}

const tempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), `ouroboros-bench-backup-${prefix}-`))),
    (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
  )

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const start = performance.now()
    const value = yield* effect
    return [value, (performance.now() - start) / 1000] as const
  })

const round = (n: number) => Math.round(n)
const mb = (bytes: number, seconds: number) => Math.round((bytes / 1e6 / seconds) * 10) / 10

const makeEvents = (count: number) => {
  const start = Date.now() - count
  return Stream.range(1, count).pipe(
    Stream.map((sequence) =>
      new EventStore.RecordedEvent({
        sequence,
        streamId: `tenant/acme/document/${Math.floor((sequence - 1) / 4)}`,
        version: (sequence - 1) % 4,
        type: "DocumentIngested",
        data: { text: `chunk ${sequence} of a document about backups and restores`, tokens: sequence % 512 },
        metadata: { tenantId: "acme" },
        tenantId: "acme",
        recordedAt: new Date(start + sequence)
      })
    )
  )
}

const program = (pg: boolean, schema: string) =>
  Effect.gen(function*() {
    const rows: Array<Row> = []
    const store = yield* EventStore.EventStore
    const vectors = yield* VectorStore.VectorStore
    const backup = yield* Backup.Backup
    const target = yield* BackupTarget.BackupTarget
    const backend = pg ? "PostgreSQL" : "PGlite"

    yield* store.importEvents(makeEvents(EVENTS), { batchSize: 2000 })
    yield* vectors.ensureCollection({ name: "chunks", dimensions: DIMENSIONS })
    const tenant = TenantId.make("acme")
    for (let offset = 0; offset < VECTORS; offset += 5000) {
      yield* vectors.upsert(
        "chunks",
        tenant,
        Array.from({ length: 5000 }, (_, k) => {
          const i = offset + k
          const vector = new Float32Array(DIMENSIONS)
          for (let d = 0; d < DIMENSIONS; d++) vector[d] = Math.sin(i * 31 + d)
          return { id: `p${i}`, vector, payload: { doc: i >> 2 } }
        })
      )
    }

    const [manifest, createSeconds] = yield* timed(backup.create({ kind: "full" }))
    const bytes = manifest.files.reduce((n, f) => n + f.bytes, 0)
    const eventBytes = manifest.files.filter((f) => f.source === "events").reduce((n, f) => n + f.bytes, 0)
    const measured = `${EVENTS} events (${backend}), ${VECTORS} vectors x ${DIMENSIONS}d (embedded); ` +
      `${(bytes / 1e6).toFixed(0)} MB (events ${(eventBytes / 1e6).toFixed(0)} MB NDJSON)`
    rows.push({
      operation: "backup create (full)",
      measured,
      seconds: createSeconds,
      "events/s": round(EVENTS / createSeconds),
      "vectors/s": round(VECTORS / createSeconds),
      "MB/s": mb(bytes, createSeconds)
    })
    const [, checksumSeconds] = yield* timed(backup.verify(manifest.id, { tier: "checksums" }))
    rows.push({
      operation: "verify: checksums",
      measured,
      seconds: checksumSeconds,
      "events/s": round(EVENTS / checksumSeconds),
      "vectors/s": round(VECTORS / checksumSeconds),
      "MB/s": mb(bytes, checksumSeconds)
    })
    const [, restoreTierSeconds] = yield* timed(backup.verify(manifest.id, { tier: "restore" }))
    rows.push({
      operation: "verify: restore into scratch",
      measured,
      seconds: restoreTierSeconds,
      "events/s": round(EVENTS / restoreTierSeconds),
      "vectors/s": round(VECTORS / restoreTierSeconds),
      "MB/s": mb(bytes, restoreTierSeconds)
    })
    const [result, restoreSeconds] = yield* timed(backup.restore(manifest.id))
    if (result.restoredEvents !== EVENTS) return yield* Effect.die(new Error(`restored ${result.restoredEvents}`))
    rows.push({
      operation: "restore (events + vector snapshot)",
      measured,
      seconds: restoreSeconds,
      "events/s": round(EVENTS / restoreSeconds),
      "vectors/s": round(VECTORS / restoreSeconds),
      "MB/s": mb(bytes, restoreSeconds)
    })

    if (pg) {
      // The peer: pg_dump / pg_restore of the same events table.
      const dump = Path.join(target.description, "events.pgdump")
      const url = new URL(Services.postgresUrl)
      const args = ["-h", url.hostname, "-p", url.port || "5432", "-U", url.username || "postgres"]
      const db = url.pathname.slice(1)
      const [, dumpSeconds] = yield* timed(Effect.sync(() =>
        execFileSync("pg_dump", [
          ...args,
          ...["-d", db, "-Fc", "-Z", "0", "--data-only", "-t", `${schema}.event_store_events`, "-f", dump]
        ])
      ))
      const dumpBytes = Fs.statSync(dump).size
      rows.push({
        operation: "peer: pg_dump events table",
        measured: `${EVENTS} events (PostgreSQL); ${(dumpBytes / 1e6).toFixed(0)} MB`,
        seconds: dumpSeconds,
        "events/s": round(EVENTS / dumpSeconds),
        "vectors/s": "-",
        "MB/s": mb(dumpBytes, dumpSeconds)
      })
      yield* store.truncate
      const [, pgRestoreSeconds] = yield* timed(Effect.sync(() =>
        execFileSync("pg_restore", [...args, "-d", db, "--data-only", dump])
      ))
      rows.push({
        operation: "peer: pg_restore events table",
        measured: `${EVENTS} events (PostgreSQL); ${(dumpBytes / 1e6).toFixed(0)} MB`,
        seconds: pgRestoreSeconds,
        "events/s": round(EVENTS / pgRestoreSeconds),
        "vectors/s": "-",
        "MB/s": mb(dumpBytes, pgRestoreSeconds)
      })
    }
    return rows.map((r) => ({ ...r, seconds: Math.round(r.seconds * 100) / 100 }))
  })

/**
 * @since 0.1.0
 */
export default async function run(): Promise<void> {
  const pg = await Services.postgres().catch(() => false)
  const schema = `bench_backup_${Math.random().toString(36).slice(2, 10)}`
  const layer = Layer.unwrap(Effect.gen(function*() {
    const vectorsDir = yield* tempDir("vectors")
    const backupsDir = yield* tempDir("target")
    const sql: Layer.Layer<SqlClient.SqlClient, unknown> = pg ? PgSchema.layer({ schema }) : Layer.unwrap(
      Effect.map(tempDir("pg"), (dataDir) => Database.layerEmbedded({ dataDir }))
    )
    return Backup.layer().pipe(
      Layer.provideMerge(Layer.mergeAll(
        EventStore.layer,
        Checkpoints.layer,
        Embedded.layer({ directory: vectorsDir, fsync: false }),
        BackupTarget.layerDirectory(backupsDir),
        BackupSource.layerRegistry
      )),
      Layer.provide(sql)
    )
  })).pipe(Layer.provideMerge(Layer.succeed(References.MinimumLogLevel, "Warn")))
  const rows = await Effect.runPromise(Effect.scoped(Effect.provide(program(pg, schema), layer)))
  console.log("\nBackup and restore throughput")
  console.table(rows)
}
