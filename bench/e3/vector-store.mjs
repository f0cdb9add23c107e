// The vector-store benchmark's worker on the Effect 3 tree (bundled by bench/paired/workers.ts against that tree's
// packages): our store opened with Effect 3's API, the rounds shared with bench/vector-store.ts (ours and the scan).
import { TenantId } from "@ouroboros/kernel"
import { Embedded, VectorStore } from "@ouroboros/vector-store"
import { Effect, ManagedRuntime } from "effect"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { serveTasks } from "../paired/serve.ts"
import { DIMENSIONS, vectorRounds } from "../paired/vector-store.ts"

const tenant = TenantId.make("bench")

const open = async (directory) => {
  const runtime = ManagedRuntime.make(Embedded.layer({ directory }))
  const store = await runtime.runPromise(VectorStore.VectorStore)
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

export const worker = async () => {
  const large = Number(process.env.VECTOR_BENCH_LARGE ?? 100_000)
  const runner = vectorRounds({
    open,
    tmp: () => Fs.mkdtemp(Path.join(Os.tmpdir(), "ouroboros-bench-vs-")),
    remove: (dir) => Fs.rm(dir, { recursive: true, force: true }),
    sizes: [["10k", 10_000, 100], [`${Math.round(large / 1000)}k`, large, 30]],
    ingestChunks: 5_000,
    peers: false,
    hnswUpTo: 0
  })
  serveTasks({ setup: runner.setup, round: runner.round }, runner.close)
}
