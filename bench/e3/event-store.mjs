// The event-store benchmark's worker on the Effect 3 tree (bundled by bench/paired/workers.ts against that tree's
// packages): the operations built with Effect 3's API, the rounds shared with bench/event-store.ts.
import { SqlClient } from "@effect/sql"
import { EventStore } from "@ouroboros/event-store"
import { Database } from "@ouroboros/sql"
import { PgSchema } from "@ouroboros/testkit"
import { Effect, Layer, Logger, LogLevel, ManagedRuntime, Stream } from "effect"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { eventStoreRounds } from "../paired/event-store.ts"
import { serveTasks } from "../paired/serve.ts"

const payload = (i) => ({
  type: "DocumentIngested",
  data: { id: `doc-${i}`, text: "lorem ipsum dolor sit amet ".repeat(8), chunks: 4 },
  metadata: { tenantId: "acme", correlationId: "bench" }
})

const sqlLayerOf = (backend) =>
  backend === "PostgreSQL"
    ? PgSchema.layer({ prefix: "event_store_bench", maxConnections: 16 })
    : Layer.unwrapScoped(Effect.gen(function*() {
      const dataDir = yield* Effect.acquireRelease(
        Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "event-store-bench-"))),
        (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
      )
      return Database.layerEmbedded({ dataDir })
    }))

const opsOf = async (backend) => {
  const runtime = ManagedRuntime.make(
    EventStore.layer.pipe(
      Layer.provideMerge(sqlLayerOf(backend)),
      Layer.provide(Logger.minimumLogLevel(LogLevel.Warning))
    )
  )
  const { sql, store } = await runtime.runPromise(
    Effect.all({ sql: SqlClient.SqlClient, store: EventStore.EventStore })
  )
  let n = 0
  const run = (effect) => runtime.runPromise(Effect.orDie(effect))
  const one = Effect.suspend(() => store.append(`bench/${n++ % 64}`, [payload(n)]))
  const bareRow = () => ({
    stream_id: `bare/${n++}`,
    version: 0,
    type: "DocumentIngested",
    data: JSON.stringify(payload(n).data),
    metadata: JSON.stringify(payload(n).metadata),
    tenant_id: "acme",
    recorded_at: new Date()
  })
  return {
    append1: () => run(one).then(() => undefined),
    append100: () =>
      run(
        Effect.suspend(() => store.append(`bench/batch/${n++ % 64}`, Array.from({ length: 100 }, (_, i) => payload(i))))
      ).then(() => undefined),
    appendInOwnTransaction: () => run(sql.withTransaction(one)).then(() => undefined),
    bareInsert: (rows) =>
      run(
        Effect.suspend(() => sql`INSERT INTO event_store_events ${sql.insert(Array.from({ length: rows }, bareRow))}`)
          .pipe(sql.withTransaction)
      ).then(() => undefined),
    readAll: (events) => run(Stream.runCount(Stream.take(store.readAll({ batchSize: 1000 }), events))),
    bareSelect: (events) =>
      run(Effect.gen(function*() {
        let read = 0
        for (let from = 1; from <= events; from += 1000) {
          const page = yield* sql`SELECT * FROM event_store_events WHERE sequence >= ${from} AND sequence < ${
            from + 1000
          } ORDER BY sequence`
          read += page.length
        }
        return read
      })),
    close: () => runtime.dispose()
  }
}

export const worker = async () => {
  let ops
  let runner
  serveTasks({
    warmUp: async (backend) => {
      ops = await opsOf(backend)
      runner = eventStoreRounds(ops, Number(process.env.EVENT_STORE_BENCH_MILLIS ?? 500))
      await runner.warmUp()
    },
    round: (index) => runner.round(index)
  }, async () => {
    await ops?.close()
  })
}
