/**
 * Embedded vector store: ingest throughput (chunks/s, durable: one fsync per batch of 100) and search latency
 * (p50/p99, exact cosine, top 10) at 10k and 100k chunks of 384 dimensions, plus the time to reopen the store
 * (snapshot load + log replay). Beside it, a naive peer: the same exact search over `number[][]` with a full sort.
 */
import * as TenantId from "@ouroboros/kernel/TenantId"
import { Effect } from "effect"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import * as Embedded from "../packages/vector-store/src/VectorStore/Embedded.js"

const DIMENSIONS = 384
const BATCH = 100
const BUDGET_MS = 55_000

const randomVector = (): Array<number> => {
  const v = new Array<number>(DIMENSIONS)
  for (let i = 0; i < DIMENSIONS; i++) v[i] = Math.random() * 2 - 1
  return v
}

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

const naiveSearch = (rows: ReadonlyArray<ReadonlyArray<number>>, query: ReadonlyArray<number>, limit: number) => {
  const scored = rows.map((row, i) => {
    let dot = 0, a = 0, b = 0
    for (let d = 0; d < row.length; d++) {
      dot += row[d]! * query[d]!
      a += row[d]! * row[d]!
      b += query[d]! * query[d]!
    }
    return { i, score: dot / Math.sqrt(a * b) }
  })
  return scored.sort((x, y) => y.score - x.score).slice(0, limit)
}

interface Row {
  readonly store: string
  readonly chunks: number
  readonly "ingest chunks/s": number | string
  readonly "search p50 ms": number
  readonly "search p99 ms": number
  readonly "reopen ms": number | string
}

const round = (n: number, digits = 2) => Number(n.toFixed(digits))

const measure = (size: number, queries: number, started: number) =>
  Effect.gen(function*() {
    const directory = yield* Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "ouroboros-bench-vs-")))
    const tenant = TenantId.make("bench")
    try {
      const rows: Array<Array<number>> = []
      const ingest = yield* Effect.scoped(Effect.gen(function*() {
        const store = yield* Embedded.make({ directory })
        yield* store.ensureCollection({ name: "chunks", dimensions: DIMENSIONS, embedder: "random-384" })
        let elapsed = 0
        for (let start = 0; start < size; start += BATCH) {
          const points = Array.from({ length: Math.min(BATCH, size - start) }, (_, k) => {
            const vector = randomVector()
            rows.push(vector)
            const i = start + k
            return { id: `doc-${Math.floor(i / 10)}#${i % 10}`, vector, payload: { documentId: `doc-${Math.floor(i / 10)}`, chunk: i % 10, text: `chunk ${i} of a document, some text `.repeat(3) } }
          })
          const t0 = performance.now()
          yield* store.upsert("chunks", tenant, points)
          elapsed += performance.now() - t0
          if (Date.now() - started > BUDGET_MS) throw new Error("benchmark budget exceeded during ingest")
        }
        const latencies: Array<number> = []
        for (let q = 0; q < queries; q++) {
          const vector = randomVector()
          const t0 = performance.now()
          const hits = yield* store.search("chunks", tenant, { vector, limit: 10 })
          latencies.push(performance.now() - t0)
          if (hits.length !== 10) throw new Error("expected 10 hits")
        }
        latencies.sort((a, b) => a - b)
        return { chunksPerSecond: size / (elapsed / 1000), latencies }
      }))
      const t0 = performance.now()
      const count = yield* Effect.scoped(Effect.flatMap(Embedded.make({ directory }), (store) => store.count("chunks", undefined)))
      const reopenMs = performance.now() - t0
      if (count !== size) throw new Error(`reopened with ${count} chunks, expected ${size}`)

      const naive: Array<number> = []
      for (let q = 0; q < Math.min(queries, 20); q++) {
        const vector = randomVector()
        const t1 = performance.now()
        naiveSearch(rows, vector, 10)
        naive.push(performance.now() - t1)
      }
      naive.sort((a, b) => a - b)
      const result: Array<Row> = [
        {
          store: "embedded (Float32Array, heap top-k)",
          chunks: size,
          "ingest chunks/s": Math.round(ingest.chunksPerSecond),
          "search p50 ms": round(percentile(ingest.latencies, 50)),
          "search p99 ms": round(percentile(ingest.latencies, 99)),
          "reopen ms": Math.round(reopenMs)
        },
        {
          store: "naive peer (number[][], full sort)",
          chunks: size,
          "ingest chunks/s": "-",
          "search p50 ms": round(percentile(naive, 50)),
          "search p99 ms": round(percentile(naive, 99)),
          "reopen ms": "-"
        }
      ]
      return result
    } finally {
      yield* Effect.promise(() => fs.rm(directory, { recursive: true, force: true }))
    }
  })

/**
 * Runs the benchmark and prints a table.
 */
export default async function run(): Promise<void> {
  const started = Date.now()
  const small = await Effect.runPromise(measure(10_000, 200, started))
  const large = await Effect.runPromise(measure(100_000, 50, started))
  console.log(`\nVector store (embedded), ${DIMENSIONS} dimensions, batches of ${BATCH}, fsync per batch, top 10`)
  console.table([...small, ...large])
  console.log(`(${((Date.now() - started) / 1000).toFixed(1)} s)`)
}
