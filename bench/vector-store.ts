/**
 * Embedded vector store: ingest throughput (chunks/s, durable: one fsync per batch of 100), search latency (p50/p99,
 * top 10 by cosine) at 10k and 100k chunks of 384 dimensions, and the time to reopen the 100k store (snapshot load
 * and log replay), beside an exact scan in JavaScript and, when installed, usearch's exact SIMD scan and its HNSW
 * index (see `paired/vector-store.ts` for what each measures).
 *
 * Paired rounds: each round ingests a fresh store and times every contestant on the same queries, query by query in
 * a rotating order; with `BENCH_E3_TREE`, a worker on the Effect 3 tree runs ours and the scan, alternating with ours
 * round by round.
 *
 * Run: `npm run bench -- vector-store`. `VECTOR_BENCH_ROUNDS` (default 5), `VECTOR_BENCH_LARGE` (chunks of the large
 * size, default 100000), `VECTOR_BENCH_HNSW_UP_TO` (largest size an HNSW index is built for, default 10000: its build
 * at 100k takes minutes here).
 */
import { TenantId } from "@ouroboros/kernel"
import { Embedded, VectorStore } from "@ouroboros/vector-store"
import { Effect, ManagedRuntime } from "effect"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { serveTasks } from "./paired/serve.js"
import { show } from "./paired/stats.js"
import {
  type Contestant,
  DIMENSIONS,
  type OpenOurs,
  type RoundResult,
  type Setup,
  vectorRounds
} from "./paired/vector-store.js"
import { envInt, machineWatch, noE3Note, pairedRounds, sides } from "./paired/workers.js"

const tenant = TenantId.make("bench")

/** Ours on this tree (Effect 4): the store as the server's layer builds it. */
const open: OpenOurs = async (directory) => {
  const runtime = ManagedRuntime.make(Embedded.layer({ directory }))
  const store = await runtime.runPromise(Effect.service(VectorStore.VectorStore))
  await runtime.runPromise(
    store.ensureCollection({ name: "chunks", dimensions: DIMENSIONS, embedder: "synthetic-384" })
  )
  return {
    upsert: (points) => runtime.runPromise(store.upsert("chunks", tenant, points)),
    search: (vector, limit) =>
      runtime.runPromise(
        Effect.map(store.search("chunks", tenant, { vector, limit }), (hits) => hits.map((h) => h.id))
      ),
    count: () => runtime.runPromise(store.count("chunks", undefined)),
    close: () => runtime.dispose()
  }
}

export const sizes = (): ReadonlyArray<readonly [string, number, number]> => {
  const large = envInt("VECTOR_BENCH_LARGE", 100_000)
  return [["10k", 10_000, 100], [`${Math.round(large / 1000)}k`, large, 30]]
}

/** The worker of this tree (Effect 4). */
export const worker = async (): Promise<void> => {
  const runner = vectorRounds({
    open,
    tmp: () => Fs.mkdtemp(Path.join(Os.tmpdir(), "ouroboros-bench-vs-")),
    remove: (dir) => Fs.rm(dir, { recursive: true, force: true }),
    sizes: sizes(),
    ingestChunks: 5_000,
    peers: true,
    hnswUpTo: envInt("VECTOR_BENCH_HNSW_UP_TO", 10_000)
  })
  serveTasks({ setup: runner.setup, round: runner.round }, runner.close)
}

const contestants: ReadonlyArray<Contestant> = [
  "ours",
  "scan (JS, quickselect)",
  "usearch exact (SIMD, 1 thread)",
  "usearch HNSW (1 thread)"
]

/**
 * Runs the benchmark and prints its tables.
 */
export default async function run(): Promise<void> {
  const watch = await machineWatch()
  const rounds = envInt("VECTOR_BENCH_ROUNDS", 5)
  const trees = await sides(import.meta.url, "vector-store")
  // The setup (data, the stores' first ingest, the peers' indexes) runs once per worker, before the rounds.
  const setups: Record<string, Setup> = {}
  const bySide = await pairedRounds<RoundResult>({
    sides: trees,
    rounds,
    warmUp: "setup",
    onWarmUp: (label, value) => (setups[label] = value as Setup),
    task: "round"
  })
  const labels = Object.keys(bySide)
  const e4 = setups["Effect 4"]!
  console.log(
    `\nVector store (embedded), ${DIMENSIONS} dimensions, clustered synthetic data, top 10; median (min–max) of ` +
      `${rounds} paired rounds; search latency in CPU time per query (this machine is shared: wall time would also ` +
      `count other processes' turns)` + (e4.usearch ? "" : "; usearch is not installed: its rows are skipped")
  )
  console.table(labels.map((side) => ({
    tree: side,
    "ingest chunks/s (5k per round, fsync per 100)": show(bySide[side]!.map((r) => r.ingest)),
    "ingest CPU µs/chunk": show(bySide[side]!.map((r) => r.ingestCpu), 1),
    ...Object.fromEntries(
      Object.entries(setups[side]!.firstIngest).map(([size, rate]) => [
        `first ingest of ${size}, chunks/s`,
        Math.round(rate).toLocaleString("en-US")
      ])
    ),
    [`reopen ${sizes().at(-1)![0]} ms`]: show(bySide[side]!.map((r) => r.reopenMs))
  })))
  for (const [size] of sizes()) {
    const rows = contestants.flatMap((c) =>
      labels.flatMap((side) => {
        const xs = bySide[side]!.map((r) => r.sizes[size]?.latency[c]).filter((x) => x !== undefined)
        if (xs.length === 0) return []
        return [{
          contestant: c,
          tree: side,
          "p50 CPU ms": show(xs.map((x) => x.p50), 2),
          "p99 CPU ms": show(xs.map((x) => x.p99), 2),
          "recall@10 vs exact": (setups[side]!.recall[size]?.[c] ?? NaN).toFixed(3),
          ...(c === "usearch HNSW (1 thread)" && setups[side]!.hnswBuildMs[size] !== undefined
            ? { note: `index built in ${(setups[side]!.hnswBuildMs[size]! / 1000).toFixed(1)} s (2 threads)` }
            : {})
        }]
      })
    )
    console.log(`search, ${size} chunks`)
    console.table(rows)
    const p50 = (side: string, c: Contestant) => bySide[side]!.map((r) => r.sizes[size]!.latency[c]?.p50 ?? NaN)
    console.table(labels.flatMap((side) => [{
      tree: side,
      "ours p50 / scan p50": show(p50(side, "ours").map((x, i) => x / p50(side, "scan (JS, quickselect)")[i]!), 2),
      ...(side === "Effect 4" && e4.usearch
        ? {
          "ours p50 / usearch exact p50": show(
            p50(side, "ours").map((x, i) => x / p50(side, "usearch exact (SIMD, 1 thread)")[i]!),
            2
          )
        }
        : {}),
      ...(labels.length === 2 && side === "Effect 4"
        ? {
          "ours p50 Effect 4 / Effect 3": show(
            p50("Effect 4", "ours").map((x, i) => x / p50("Effect 3", "ours")[i]!),
            2
          )
        }
        : {})
    }]))
  }
  if (labels.length === 2) {
    console.log(
      "ingest Effect 4 / Effect 3 (paired rounds): " +
        show(bySide["Effect 4"]!.map((r, i) => r.ingest / bySide["Effect 3"]![i]!.ingest), 2) +
        "; ingest CPU per chunk: " +
        show(bySide["Effect 4"]!.map((r, i) => r.ingestCpu / bySide["Effect 3"]![i]!.ingestCpu), 2) +
        "; reopen: " + show(bySide["Effect 4"]!.map((r, i) => r.reopenMs / bySide["Effect 3"]![i]!.reopenMs), 2)
    )
  } else {
    console.log(noE3Note)
  }
  console.log(await watch())
}
