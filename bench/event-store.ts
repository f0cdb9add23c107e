/**
 * Event store throughput on PostgreSQL (a fresh schema, dropped after) and on the embedded PGlite (a temporary
 * directory): appends of 1 and of 100 events; appends from 16 concurrent fibers (grouped into shared commits), the
 * same appends each in its own transaction (no grouping: one lock hold and one commit each), and a bare INSERT
 * without the ordering lock (the cost of "sequence order = commit order"); readAll beside a bare SELECT of the same
 * rows.
 * Each measurement is time-boxed; the whole run stays under a minute.
 */
import { EventStore } from "@ouroboros/event-store"
import { Database } from "@ouroboros/sql"
import { PgSchema, Services } from "@ouroboros/testkit"
import { Effect, Layer, Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"

const window = 1_500

interface Row {
  readonly backend: string
  readonly operation: string
  readonly "events/s": number
  readonly events: number
  readonly "ms/op": number
}

const measure = (
  backend: string,
  operation: string,
  concurrency: number,
  op: Effect.Effect<number>
) =>
  Effect.gen(function*() {
    const start = performance.now()
    const deadline = start + window
    let events = 0
    let ops = 0
    yield* Effect.forEach(
      Array.from({ length: concurrency }),
      () =>
        Effect.whileLoop({
          while: () => performance.now() < deadline,
          body: () => op,
          step: (n) => {
            events += n
            ops++
          }
        }),
      { concurrency, discard: true }
    )
    const elapsed = performance.now() - start
    return {
      backend,
      operation,
      "events/s": Math.round(events / (elapsed / 1000)),
      events,
      "ms/op": Number((elapsed * concurrency / Math.max(1, ops)).toFixed(2))
    } satisfies Row
  })

const payload = (i: number) => ({
  type: "DocumentIngested",
  data: { id: `doc-${i}`, text: "lorem ipsum dolor sit amet ".repeat(8), chunks: 4 },
  metadata: { tenantId: "acme", correlationId: "bench" }
})

const suite = (backend: string, concurrency: number) =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const sql = yield* SqlClient.SqlClient
    const rows: Array<Row> = []
    let n = 0
    const one = Effect.suspend(() => store.append(`bench/${n++ % 64}`, [payload(n)])).pipe(
      Effect.as(1),
      Effect.orDie
    )
    const hundred = Effect.suspend(() =>
      store.append(`bench/batch/${n++ % 64}`, Array.from({ length: 100 }, (_, i) => payload(i)))
    ).pipe(Effect.as(100), Effect.orDie)
    // The same row written by a bare INSERT in a transaction, without the advisory lock or the version check.
    const bare = Effect.suspend(() =>
      sql`INSERT INTO event_store_events ${
        sql.insert({
          stream_id: `bare/${n++}`,
          version: 0,
          type: "DocumentIngested",
          data: JSON.stringify(payload(n).data),
          metadata: JSON.stringify(payload(n).metadata),
          tenant_id: "acme",
          recorded_at: new Date()
        })
      }`
    ).pipe(sql.withTransaction, Effect.as(1), Effect.orDie)

    // Warm up: the first statements of a fresh database (and of PGlite's wasm) are much slower than the rest.
    yield* Effect.repeat(Effect.zip(one, bare), { times: 30 })
    rows.push(yield* measure(backend, "append, batch 1", 1, one))
    rows.push(yield* measure(backend, "bare INSERT (no lock), 1 fiber", 1, bare))
    rows.push(yield* measure(backend, "append, batch 100", 1, hundred))
    rows.push(yield* measure(backend, `append, batch 1, ${concurrency} fibers`, concurrency, one))
    // Inside a caller's transaction an append skips group commit: one lock hold and one commit per append.
    const inOwnTransaction = Effect.orDie(sql.withTransaction(one))
    rows.push(yield* measure(backend, `append in own tx, ${concurrency} fibers`, concurrency, inOwnTransaction))
    rows.push(yield* measure(backend, `bare INSERT (no lock), ${concurrency} fibers`, concurrency, bare))

    const total = yield* store.lastSequence
    const readStart = performance.now()
    const read = yield* Stream.runCount(store.readAll({ batchSize: 1000 }))
    const readMs = performance.now() - readStart
    rows.push({
      backend,
      operation: "readAll (batch 1000)",
      "events/s": Math.round(read / (readMs / 1000)),
      events: read,
      "ms/op": Number((readMs / Math.max(1, read / 1000)).toFixed(2))
    })
    const bareStart = performance.now()
    let bareRead = 0
    for (let from = 1; from <= total; from += 1000) {
      const page = yield* sql`SELECT * FROM event_store_events WHERE sequence >= ${from} AND sequence < ${
        from + 1000
      } ORDER BY sequence`
      bareRead += page.length
    }
    const bareMs = performance.now() - bareStart
    rows.push({
      backend,
      operation: "bare SELECT pages (no decoding)",
      "events/s": Math.round(bareRead / (bareMs / 1000)),
      events: bareRead,
      "ms/op": Number((bareMs / Math.max(1, bareRead / 1000)).toFixed(2))
    })
    return rows
  }).pipe(Effect.catchCause((cause) => Effect.as(Effect.logError(`${backend} failed`, cause), [] as Array<Row>)))

const pgSchemaLayer = PgSchema.layer({ prefix: "event_store_bench", maxConnections: 16 })

const embeddedLayer = Layer.unwrap(Effect.gen(function*() {
  const dataDir = yield* Effect.acquireRelease(
    Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "event-store-bench-"))),
    (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
  )
  return Database.layerEmbedded({ dataDir })
}))

const runOn = (backend: string, sqlLayer: Layer.Layer<SqlClient.SqlClient, unknown>, concurrency: number) =>
  suite(backend, concurrency).pipe(
    Effect.provide(EventStore.layer.pipe(Layer.provideMerge(sqlLayer))),
    Effect.catchCause((cause) => Effect.as(Effect.logError(`${backend} unavailable`, cause), [] as Array<Row>))
  )

/**
 * Runs the benchmark and prints one table.
 */
export default async function run(): Promise<void> {
  const rows: Array<Row> = []
  if (await Services.postgres().catch(() => false)) {
    rows.push(...await Effect.runPromise(runOn("PostgreSQL", pgSchemaLayer, 16)))
  }
  rows.push(...await Effect.runPromise(runOn("PGlite", embeddedLayer, 16)))
  console.log("Event store: appends (each measured for 1.5 s; ms/op = per append) and reads (ms/op = per 1000 rows)")
  console.table(rows)
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await run()
}
