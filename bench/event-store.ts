/**
 * Event store throughput on PostgreSQL (a fresh schema per worker, dropped after) and on the embedded PGlite (a
 * temporary directory): appends of 1 and of 100 events; appends from 16 concurrent fibers (group commit) beside its
 * fair peer, bare INSERTs grouped the same way (one multi-row INSERT and one commit per group, no lock, no version
 * check), and beside the bare INSERTs with one commit each and the appends without grouping (each in the caller's
 * transaction); readAll beside a bare SELECT of the same rows. See `paired/event-store.ts`.
 *
 * Paired rounds: every round measures each operation for a short window in our worker and, with `BENCH_E3_TREE`, in
 * a worker on the Effect 3 tree, alternating.
 *
 * Run: `npm run bench -- event-store`. `EVENT_STORE_BENCH_ROUNDS` (default 5), `EVENT_STORE_BENCH_MILLIS` (window
 * per operation, default 500), `EVENT_STORE_BENCH_BACKENDS` (default `PostgreSQL,PGlite`).
 */
import { EventStore } from "@ouroboros/event-store"
import { Database } from "@ouroboros/sql"
import { PgSchema, Services } from "@ouroboros/testkit"
import { Effect, Layer, ManagedRuntime, References, Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { eventStoreRounds, type Operation, operations, type Ops } from "./paired/event-store.js"
import { serveTasks } from "./paired/serve.js"
import { show } from "./paired/stats.js"
import { envInt, machineWatch, noE3Note, pairedRounds, sides } from "./paired/workers.js"

const payload = (i: number) => ({
  type: "DocumentIngested",
  data: { id: `doc-${i}`, text: "lorem ipsum dolor sit amet ".repeat(8), chunks: 4 },
  metadata: { tenantId: "acme", correlationId: "bench" }
})

const sqlLayerOf = (backend: string): Layer.Layer<SqlClient.SqlClient, unknown> =>
  backend === "PostgreSQL"
    ? PgSchema.layer({ prefix: "event_store_bench", maxConnections: 16 })
    : Layer.unwrap(Effect.gen(function*() {
      const dataDir = yield* Effect.acquireRelease(
        Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "event-store-bench-"))),
        (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
      )
      return Database.layerEmbedded({ dataDir })
    }))

/** Ours on this tree (Effect 4), as the server builds it. */
const opsOf = async (backend: string): Promise<Ops> => {
  const runtime = ManagedRuntime.make(
    EventStore.layer.pipe(
      Layer.provideMerge(sqlLayerOf(backend)),
      Layer.provide(Layer.succeed(References.MinimumLogLevel, "Warn"))
    )
  )
  const { sql, store } = await runtime.runPromise(Effect.all({
    sql: Effect.service(SqlClient.SqlClient),
    store: Effect.service(EventStore.EventStore)
  }))
  let n = 0
  const run = <A, E>(effect: Effect.Effect<A, E, never>) => runtime.runPromise(Effect.orDie(effect))
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
        Effect.suspend(() => {
          const values = Array.from({ length: rows }, bareRow) as [
            ReturnType<typeof bareRow>,
            ...Array<ReturnType<typeof bareRow>>
          ]
          return sql`INSERT INTO event_store_events ${sql.insert(values)}`
        }).pipe(sql.withTransaction)
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

/** The worker of this tree (Effect 4). */
export const worker = async (): Promise<void> => {
  let ops: Ops | undefined
  let runner: ReturnType<typeof eventStoreRounds> | undefined
  serveTasks({
    warmUp: async (backend: string) => {
      ops = await opsOf(backend)
      runner = eventStoreRounds(ops, envInt("EVENT_STORE_BENCH_MILLIS", 500))
      await runner.warmUp()
    },
    round: (index: number) => runner!.round(index)
  }, async () => {
    await ops?.close()
  })
}

type Round = Partial<Record<Operation, number>>

/**
 * Runs the benchmark and prints one table per backend.
 */
export default async function run(): Promise<void> {
  const watch = await machineWatch()
  const rounds = envInt("EVENT_STORE_BENCH_ROUNDS", 5)
  const millis = envInt("EVENT_STORE_BENCH_MILLIS", 500)
  const backends = (process.env.EVENT_STORE_BENCH_BACKENDS ?? "PostgreSQL,PGlite").split(",")
  const trees = await sides(import.meta.url, "event-store")
  for (const backend of backends) {
    if (backend === "PostgreSQL" && !(await Services.postgres().catch(() => false))) {
      console.log("PostgreSQL not reachable: skipped")
      continue
    }
    const bySide = await pairedRounds<Round>({
      sides: trees,
      rounds,
      warmUp: "warmUp",
      warmUpArg: backend,
      task: "round"
    })
    const labels = Object.keys(bySide)
    const of = (side: string, op: Operation) => bySide[side]!.map((r) => r[op]!)
    console.log(
      `\nEvent store on ${backend}: events/s, median (min–max) of ${rounds} paired rounds (writes: ${millis} ms each; ` +
        `reads: the first 20,000 events)`
    )
    console.table(operations.map((op) => ({
      operation: op,
      ...Object.fromEntries(labels.map((side) => [`${side} events/s`, show(of(side, op))])),
      ...(labels.length === 2
        ? { "Effect 4 / Effect 3": show(of("Effect 4", op).map((x, i) => x / of("Effect 3", op)[i]!), 2) }
        : {})
    })))
    console.table(labels.map((side) => ({
      tree: side,
      "group commit / bare INSERT grouped alike (fair)": show(
        of(side, "append, batch 1, 16 fibers (group commit)").map((x, i) =>
          x / of(side, "bare INSERT grouped like ours, 16 fibers")[i]!
        ),
        2
      ),
      "group commit / bare INSERT, one commit each": show(
        of(side, "append, batch 1, 16 fibers (group commit)").map((x, i) =>
          x / of(side, "bare INSERT, one commit each, 16 fibers")[i]!
        ),
        2
      ),
      "readAll / bare SELECT": show(
        of(side, "readAll, pages of 1000").map((x, i) => x / of(side, "bare SELECT pages (no decoding)")[i]!),
        2
      )
    })))
  }
  if (trees.length === 1) console.log(noE3Note)
  console.log(await watch())
}
