/**
 * Backup and restore throughput: the event store on PostgreSQL (a fresh schema per worker, dropped after) and the
 * embedded vector store, backed up to a temporary directory: a full backup, both verification tiers and a full
 * restore, each split into its events and vectors phases (see `paired/backup.ts`); beside it the peer, `pg_dump` and
 * `pg_restore` of the same events table, in the same round.
 *
 * Paired rounds: with `BENCH_E3_TREE`, a worker on the Effect 3 tree runs the same rounds on its own schema,
 * alternating with ours. The defaults: 100k events and 50k vectors of 128 dimensions (throughput is per event and
 * the work is streamed, so it scales linearly; 5 paired rounds of 200k events took 3.5 minutes here, the 1M
 * would take a quarter of an hour).
 *
 * Run: `npm run bench -- backup`. `BENCH_BACKUP_EVENTS` (default 100000), `BENCH_BACKUP_VECTORS` (50000),
 * `BENCH_BACKUP_ROUNDS` (5). Needs PostgreSQL (the peer is pg_dump).
 */
import { Backup, BackupSource, BackupTarget } from "@ouroboros/backup"
import { Checkpoints, EventStore } from "@ouroboros/event-store"
import { TenantId } from "@ouroboros/kernel"
import { PgSchema, Services } from "@ouroboros/testkit"
import { Embedded, VectorStore } from "@ouroboros/vector-store"
import { Effect, Layer, ManagedRuntime, References, Stream } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { backupRounds, type Ops, type Round } from "./paired/backup.js"
import { serveTasks } from "./paired/serve.js"
import { show } from "./paired/stats.js"
import { envInt, machineWatch, noE3Note, pairedRounds, sides } from "./paired/workers.js"

const DIMENSIONS = 128

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

/** The worker of this tree (Effect 4): the stores filled once, then rounds. */
export const worker = async (): Promise<void> => {
  const events = envInt("BENCH_BACKUP_EVENTS", 100_000)
  const vectorCount = envInt("BENCH_BACKUP_VECTORS", 50_000)
  const schema = `bench_backup_${Math.random().toString(36).slice(2, 10)}`
  const vectorsDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-bench-backup-vectors-"))
  const backupsDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-bench-backup-target-"))
  const runtime = ManagedRuntime.make(
    Backup.layer().pipe(
      Layer.provideMerge(Layer.mergeAll(
        EventStore.layer,
        Checkpoints.layer,
        Embedded.layer({ directory: vectorsDir, fsync: false }),
        BackupTarget.layerDirectory(backupsDir),
        BackupSource.layerRegistry
      )),
      Layer.provide(PgSchema.layer({ schema })),
      Layer.provideMerge(Layer.succeed(References.MinimumLogLevel, "Warn"))
    )
  )
  const run = <A, E>(effect: Effect.Effect<A, E, Backup.Backup | EventStore.EventStore | VectorStore.VectorStore>) =>
    runtime.runPromise(Effect.orDie(effect))
  const progress = (onProgress: (phase: string) => void) => (p: { readonly phase: string }) =>
    Effect.sync(() => onProgress(p.phase))
  const ops: Ops = {
    create: (onProgress) =>
      run(Effect.gen(function*() {
        const backup = yield* Backup.Backup
        const manifest = yield* backup.create({ kind: "full", onProgress: progress(onProgress) })
        return {
          id: manifest.id,
          eventBytes: manifest.files.filter((f) => f.source === "events").reduce((n, f) => n + f.bytes, 0),
          bytes: manifest.files.reduce((n, f) => n + f.bytes, 0)
        }
      })),
    verify: (id, tier) =>
      run(Effect.flatMap(Effect.service(Backup.Backup), (b) => b.verify(id, { tier }))).then(() => undefined),
    restore: (id, onProgress) =>
      run(Effect.flatMap(Effect.service(Backup.Backup), (b) => b.restore(id, { onProgress: progress(onProgress) })))
        .then(
          (result) => result.restoredEvents
        ),
    truncate: () => run(Effect.flatMap(Effect.service(EventStore.EventStore), (s) => s.truncate)),
    schema,
    postgresUrl: Services.postgresUrl,
    directory: backupsDir
  }
  serveTasks({
    setup: () =>
      run(Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const vectors = yield* VectorStore.VectorStore
        yield* store.importEvents(makeEvents(events), { batchSize: 2000 })
        yield* vectors.ensureCollection({ name: "chunks", dimensions: DIMENSIONS })
        const tenant = TenantId.make("acme")
        for (let offset = 0; offset < vectorCount; offset += 5000) {
          yield* vectors.upsert(
            "chunks",
            tenant,
            Array.from({ length: Math.min(5000, vectorCount - offset) }, (_, k) => {
              const i = offset + k
              const vector = new Float32Array(DIMENSIONS)
              for (let d = 0; d < DIMENSIONS; d++) vector[d] = Math.sin(i * 31 + d)
              return { id: `p${i}`, vector, payload: { doc: i >> 2 } }
            })
          )
        }
      })),
    round: () => backupRounds(ops, events).round()
  }, async () => {
    await runtime.dispose()
    Fs.rmSync(vectorsDir, { recursive: true, force: true })
    Fs.rmSync(backupsDir, { recursive: true, force: true })
  })
}

/**
 * @since 0.1.0
 */
export default async function run(): Promise<void> {
  if (!(await Services.postgres().catch(() => false))) {
    console.log("PostgreSQL not reachable: the backup benchmark (its peer is pg_dump) is skipped")
    return
  }
  const watch = await machineWatch()
  const events = envInt("BENCH_BACKUP_EVENTS", 100_000)
  const vectors = envInt("BENCH_BACKUP_VECTORS", 50_000)
  const rounds = envInt("BENCH_BACKUP_ROUNDS", 5)
  const bySide = await pairedRounds<Round>({
    sides: await sides(import.meta.url, "backup"),
    rounds,
    warmUp: "setup",
    task: "round"
  })
  const labels = Object.keys(bySide)
  const per = (side: string, f: (r: Round) => number) => bySide[side]!.map(f)
  const rows = labels.flatMap((side) => {
    const mb = (bytes: (r: Round) => number, seconds: (r: Round) => number) =>
      show(per(side, (r) => bytes(r) / 1e6 / seconds(r)), 1)
    return [
      {
        tree: side,
        operation: "backup create: events phase",
        seconds: show(per(side, (r) => r.createEvents), 2),
        "events/s": show(per(side, (r) => events / r.createEvents)),
        "vectors/s": "-",
        "MB/s": mb((r) => r.eventBytes, (r) => r.createEvents)
      },
      {
        tree: side,
        operation: "backup create: vector snapshot phase",
        seconds: show(per(side, (r) => r.createVectors), 2),
        "events/s": "-",
        "vectors/s": show(per(side, (r) => vectors / r.createVectors)),
        "MB/s": mb((r) => r.bytes - r.eventBytes, (r) => r.createVectors)
      },
      {
        tree: side,
        operation: "backup create: whole",
        seconds: show(per(side, (r) => r.create), 2),
        "events/s": "-",
        "vectors/s": "-",
        "MB/s": mb((r) => r.bytes, (r) => r.create)
      },
      {
        tree: side,
        operation: "verify: checksums (all files)",
        seconds: show(per(side, (r) => r.verifyChecksums), 2),
        "events/s": "-",
        "vectors/s": "-",
        "MB/s": mb((r) => r.bytes, (r) => r.verifyChecksums)
      },
      {
        tree: side,
        operation: "verify: restore into scratch (all)",
        seconds: show(per(side, (r) => r.verifyRestore), 2),
        "events/s": "-",
        "vectors/s": "-",
        "MB/s": mb((r) => r.bytes, (r) => r.verifyRestore)
      },
      {
        tree: side,
        operation: "restore: checksums first (Effect 3: inside its events phase)",
        seconds: show(per(side, (r) => r.restoreChecks), 2),
        "events/s": "-",
        "vectors/s": "-",
        "MB/s": "-"
      },
      {
        tree: side,
        operation: "restore: events phase",
        seconds: show(per(side, (r) => r.restoreEvents), 2),
        "events/s": show(per(side, (r) => events / r.restoreEvents)),
        "vectors/s": "-",
        "MB/s": mb((r) => r.eventBytes, (r) => r.restoreEvents)
      },
      {
        tree: side,
        operation: "restore: vector snapshot phase",
        seconds: show(per(side, (r) => r.restoreVectors), 2),
        "events/s": "-",
        "vectors/s": show(per(side, (r) => vectors / r.restoreVectors)),
        "MB/s": "-"
      },
      {
        tree: side,
        operation: "restore: whole",
        seconds: show(per(side, (r) => r.restore), 2),
        "events/s": "-",
        "vectors/s": "-",
        "MB/s": "-"
      },
      {
        tree: side,
        operation: "peer: pg_dump events table",
        seconds: show(per(side, (r) => r.pgDump), 2),
        "events/s": show(per(side, (r) => events / r.pgDump)),
        "vectors/s": "-",
        "MB/s": mb((r) => r.dumpBytes, (r) => r.pgDump)
      },
      {
        tree: side,
        operation: "peer: pg_restore events table",
        seconds: show(per(side, (r) => r.pgRestore), 2),
        "events/s": show(per(side, (r) => events / r.pgRestore)),
        "vectors/s": "-",
        "MB/s": mb((r) => r.dumpBytes, (r) => r.pgRestore)
      }
    ]
  })
  console.log(
    `\nBackup and restore, ${events} events (PostgreSQL) and ${vectors} vectors × ${DIMENSIONS}d (embedded); ` +
      `median (min–max) of ${rounds} paired rounds. Phases from the service's progress reports; the events phases ` +
      `are what compares with pg_dump / pg_restore (events table only).`
  )
  console.table(rows)
  console.table(labels.map((side) => ({
    tree: side,
    "backup events phase / pg_dump (events/s)": show(per(side, (r) => r.pgDump / r.createEvents), 2),
    "restore events phase / pg_restore": show(per(side, (r) => r.pgRestore / r.restoreEvents), 2)
  })))
  if (labels.length === 2) {
    const ratio = (f: (r: Round) => number) =>
      show(bySide["Effect 4"]!.map((r, i) => f(bySide["Effect 3"]![i]!) / f(r)), 2)
    console.log("Effect 4 / Effect 3, throughput (paired rounds; pg_dump and pg_restore are the same tools in both)")
    console.table([{
      "create events": ratio((r) => r.createEvents),
      "create vectors": ratio((r) => r.createVectors),
      "verify checksums": ratio((r) => r.verifyChecksums),
      "verify restore": ratio((r) => r.verifyRestore),
      // Effect 3's restore reports no progress while it checks the checksums: its events phase holds them.
      "restore checks + events": ratio((r) => r.restoreChecks + r.restoreEvents),
      "restore vectors": ratio((r) => r.restoreVectors),
      "pg_dump": ratio((r) => r.pgDump),
      "pg_restore": ratio((r) => r.pgRestore)
    }])
  } else {
    console.log(noE3Note)
  }
  console.log(await watch())
}
