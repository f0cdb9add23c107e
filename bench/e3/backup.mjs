// The backup benchmark's worker on the Effect 3 tree (bundled by bench/paired/workers.ts against that tree's
// packages): the Backup service built with Effect 3's API, the rounds shared with bench/backup.ts.
import { Backup, BackupSource, BackupTarget } from "@ouroboros/backup"
import { Checkpoints, EventStore } from "@ouroboros/event-store"
import { TenantId } from "@ouroboros/kernel"
import { PgSchema, Services } from "@ouroboros/testkit"
import { Embedded, VectorStore } from "@ouroboros/vector-store"
import { Effect, Layer, Logger, LogLevel, ManagedRuntime, Stream } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { backupRounds } from "../paired/backup.ts"
import { serveTasks } from "../paired/serve.ts"

const DIMENSIONS = 128

const makeEvents = (count) => {
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

export const worker = async () => {
  const events = Number(process.env.BENCH_BACKUP_EVENTS ?? 100_000)
  const vectorCount = Number(process.env.BENCH_BACKUP_VECTORS ?? 50_000)
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
      Layer.provide(Logger.minimumLogLevel(LogLevel.Warning))
    )
  )
  const run = (effect) => runtime.runPromise(Effect.orDie(effect))
  const progress = (onProgress) => (p) => Effect.sync(() => onProgress(p.phase))
  const ops = {
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
    verify: (id, tier) => run(Effect.flatMap(Backup.Backup, (b) => b.verify(id, { tier }))).then(() => undefined),
    restore: (id, onProgress) =>
      run(Effect.flatMap(Backup.Backup, (b) => b.restore(id, { onProgress: progress(onProgress) }))).then(
        (result) => result.restoredEvents
      ),
    truncate: () => run(Effect.flatMap(EventStore.EventStore, (s) => s.truncate)),
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
