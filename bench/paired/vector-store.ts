/**
 * The vector-store benchmark's rounds, shared by our Effect 4 worker and the Effect 3 adapter. The tree under test
 * supplies our embedded store; the data, the peers and the timing are here.
 *
 * Data: clustered synthetic embeddings (256 centroids on the unit sphere, each point its centroid plus Gaussian noise;
 * queries near the data), from a seeded generator so that both workers search the same vectors. Random uniform
 * vectors would be the worst case for an approximate index and like no real embedding.
 *
 * Contestants, each answering the top 10 by cosine similarity:
 * - ours: `search` of the embedded store (exact: a scan of its contiguous Float32Array of normalised rows with a small
 *   heap), through its Effect API, with its per-row tenant check and a copy of each hit's payload;
 * - scan: the floor of an exact search in JavaScript: the same data pre-normalised in one Float32Array, dot products
 *   with four accumulators, top k by partial selection (quickselect), no tenant check, no payloads;
 * - usearch exact (`exactSearch`, inner product on the pre-normalised rows, one thread): a native SIMD exact scan;
 * - usearch HNSW (`Index`, connectivity 16, expansion 128 / 64, searched on one thread): an approximate index, with
 *   its recall@10 against the exact answer and its build time (two threads).
 * usearch is optional (`npm i -D usearch`: prebuilt binaries inside the package, no compiler needed); without it those
 * rows are skipped.
 */

import { createRequire } from "node:module"
import * as Path from "node:path"

export const DIMENSIONS = 384
const CENTROIDS = 256
const BATCH = 100
const K = 10

/** mulberry32: a small seeded generator, the same sequence in every process. */
const generator = (seed: number) => {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  let spare: number | undefined
  const gaussian = () => {
    if (spare !== undefined) {
      const s = spare
      spare = undefined
      return s
    }
    const u = Math.max(next(), 1e-12)
    const v = next()
    const r = Math.sqrt(-2 * Math.log(u))
    spare = r * Math.sin(2 * Math.PI * v)
    return r * Math.cos(2 * Math.PI * v)
  }
  return { next, gaussian }
}

const normalizeInto = (target: Float32Array, offset: number, dims: number) => {
  let norm = 0
  for (let d = 0; d < dims; d++) norm += target[offset + d]! * target[offset + d]!
  const scale = 1 / Math.sqrt(norm)
  for (let d = 0; d < dims; d++) target[offset + d]! *= scale
}

/** `n` clustered vectors (rows of one Float32Array, not normalised) and `queries` query vectors near them. */
export const dataset = (n: number, queries: number, seed: number) => {
  const g = generator(seed)
  const centroids = new Float32Array(CENTROIDS * DIMENSIONS)
  for (let i = 0; i < centroids.length; i++) centroids[i] = g.gaussian()
  for (let c = 0; c < CENTROIDS; c++) normalizeInto(centroids, c * DIMENSIONS, DIMENSIONS)
  const sigma = 0.8 / Math.sqrt(DIMENSIONS)
  const rows = (count: number) => {
    const out = new Float32Array(count * DIMENSIONS)
    for (let i = 0; i < count; i++) {
      const c = Math.floor(g.next() * CENTROIDS) * DIMENSIONS
      for (let d = 0; d < DIMENSIONS; d++) out[i * DIMENSIONS + d] = centroids[c + d]! + sigma * g.gaussian()
    }
    return out
  }
  return { vectors: rows(n), queries: rows(queries) }
}

/** Our store as the tree under test opens it. */
export interface OursStore {
  readonly upsert: (
    points: ReadonlyArray<{ id: string; vector: Float32Array; payload: Record<string, unknown> }>
  ) => Promise<void>
  /** The ids of the top `limit`. */
  readonly search: (vector: Float32Array, limit: number) => Promise<ReadonlyArray<string>>
  readonly count: () => Promise<number>
  readonly close: () => Promise<void>
}

/** What the tree under test supplies: opens (or reopens) our store in `directory`, collection `chunks` ensured. */
export type OpenOurs = (directory: string) => Promise<OursStore>

const row = (vectors: Float32Array, i: number) => vectors.slice(i * DIMENSIONS, (i + 1) * DIMENSIONS)

/** Chunks per second of wall time, and CPU µs per chunk (this process, all threads). */
const ingest = async (store: OursStore, vectors: Float32Array, count: number) => {
  let elapsed = 0
  let cpu = 0
  for (let start = 0; start < count; start += BATCH) {
    const points = Array.from({ length: Math.min(BATCH, count - start) }, (_, k) => {
      const i = start + k
      return {
        id: `p${i}`,
        vector: row(vectors, i),
        payload: {
          documentId: `doc-${Math.floor(i / 10)}`,
          chunk: i % 10,
          text: `chunk ${i} of a document, some text `.repeat(3)
        }
      }
    })
    const t0 = performance.now()
    const c0 = process.cpuUsage()
    await store.upsert(points)
    const used = process.cpuUsage(c0)
    elapsed += performance.now() - t0
    cpu += used.user + used.system
  }
  return { perSecond: (count * 1000) / elapsed, cpuPerChunk: cpu / count }
}

/** The exact scan in JavaScript over pre-normalised rows; top k by quickselect on the scores. */
const scanner = (matrix: Float32Array, n: number) => {
  const scores = new Float32Array(n)
  const order = new Int32Array(n)
  const select = (lo: number, hi: number, k: number) => {
    // Quickselect (Hoare partition, median-of-three pivot): afterwards order[0..k) holds the k best, unsorted.
    while (hi > lo) {
      const mid = (lo + hi) >> 1
      const a = scores[order[lo]!]!, b = scores[order[mid]!]!, c = scores[order[hi]!]!
      const pivot = a > b ? (b > c ? b : a > c ? c : a) : (a > c ? a : b > c ? c : b)
      let i = lo, j = hi
      while (i <= j) {
        while (scores[order[i]!]! > pivot) i++
        while (scores[order[j]!]! < pivot) j--
        if (i <= j) {
          const t = order[i]!
          order[i] = order[j]!
          order[j] = t
          i++
          j--
        }
      }
      if (k <= j) hi = j
      else if (k >= i) lo = i
      else return
    }
  }
  return (query: Float32Array, k: number): Array<number> => {
    for (let r = 0; r < n; r++) {
      const base = r * DIMENSIONS
      let d0 = 0, d1 = 0, d2 = 0, d3 = 0
      for (let d = 0; d < DIMENSIONS; d += 4) {
        d0 += matrix[base + d]! * query[d]!
        d1 += matrix[base + d + 1]! * query[d + 1]!
        d2 += matrix[base + d + 2]! * query[d + 2]!
        d3 += matrix[base + d + 3]! * query[d + 3]!
      }
      scores[r] = d0 + d1 + d2 + d3
      order[r] = r
    }
    select(0, n - 1, k - 1)
    return Array.from(order.subarray(0, k)).sort((x, y) => scores[y]! - scores[x]!)
  }
}

interface USearch {
  readonly Index: new(options: Record<string, unknown>) => {
    add: (keys: BigUint64Array, vectors: Float32Array, threads?: number) => void
    search: (vector: Float32Array, k: number, threads?: number) => { keys: BigUint64Array }
  }
  readonly MetricKind: { readonly IP: unknown }
  readonly exactSearch: (
    dataset: Float32Array,
    queries: Float32Array,
    dimensions: number,
    count: number,
    metric: unknown,
    threads?: number
  ) => { keys: BigUint64Array }
}

/**
 * usearch from this tree's dependencies or, to try it before it is one, from the `node_modules` folder named by
 * `BENCH_PEER_MODULES` (a scratch `npm i usearch` elsewhere).
 */
const loadUSearch = async (): Promise<USearch | undefined> => {
  const extra = process.env.BENCH_PEER_MODULES
  for (const specifier of ["usearch", ...(extra ? [createRequire(Path.join(extra, "x.js")).resolve("usearch")] : [])]) {
    try {
      const module = (await import(specifier)) as { default?: USearch } & USearch
      return module.default ?? module
    } catch {
      // the next place, or none
    }
  }
  return undefined
}

export type Contestant =
  | "ours"
  | "scan (JS, quickselect)"
  | "usearch exact (SIMD, 1 thread)"
  | "usearch HNSW (1 thread)"

export interface SizeResult {
  /** Per contestant: p50 and p99 of the round's queries, ms of CPU time. */
  readonly latency: Partial<Record<Contestant, { p50: number; p99: number }>>
}

export interface RoundResult {
  readonly ingest: number
  /** CPU µs per chunk ingested. */
  readonly ingestCpu: number
  readonly reopenMs: number
  readonly sizes: Record<string, SizeResult>
}

export interface Setup {
  readonly firstIngest: Record<string, number>
  /** Share of the exact top 10 each contestant returned (1 = the same ids), per size. */
  readonly recall: Record<string, Partial<Record<Contestant, number>>>
  readonly hnswBuildMs: Record<string, number>
  readonly usearch: boolean
}

const percentile = (xs: Array<number>, p: number) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!
}

/**
 * The round runner of one worker. `sizes`: [label, chunks, queries per round]; `peers`: whether to run the usearch
 * rows (our Effect 4 worker does; the Effect 3 worker runs ours and the scan); `hnswUpTo`: the largest size an HNSW
 * index is built for (its build is slow on 2 cores).
 */
export const vectorRounds = (options: {
  readonly open: OpenOurs
  readonly tmp: () => Promise<string>
  readonly remove: (dir: string) => Promise<void>
  readonly sizes: ReadonlyArray<readonly [string, number, number]>
  readonly ingestChunks: number
  readonly peers: boolean
  readonly hnswUpTo: number
}) => {
  const largest = Math.max(...options.sizes.map(([, n]) => n))
  const data = dataset(largest, Math.max(...options.sizes.map(([, , q]) => q)), 21)
  const normalized = data.vectors.slice()
  for (let i = 0; i < largest; i++) normalizeInto(normalized, i * DIMENSIONS, DIMENSIONS)
  const queries = data.queries.slice()
  for (let q = 0; q < queries.length / DIMENSIONS; q++) normalizeInto(queries, q * DIMENSIONS, DIMENSIONS)
  const stores: Record<string, { dir: string; store: OursStore }> = {}
  const searchers: Record<string, Partial<Record<Contestant, (q: Float32Array) => Promise<ReadonlyArray<number>>>>> = {}
  let usearch: USearch | undefined
  return {
    setup: async (): Promise<Setup> => {
      usearch = options.peers ? await loadUSearch() : undefined
      const firstIngest: Record<string, number> = {}
      const recall: Record<string, Partial<Record<Contestant, number>>> = {}
      const hnswBuildMs: Record<string, number> = {}
      for (const [label, n, q] of options.sizes) {
        const dir = await options.tmp()
        const store = await options.open(dir)
        firstIngest[label] = (await ingest(store, data.vectors, n)).perSecond
        stores[label] = { dir, store }
        const matrix = normalized.subarray(0, n * DIMENSIONS)
        const scan = scanner(matrix, n)
        const s: Partial<Record<Contestant, (q: Float32Array) => Promise<ReadonlyArray<number>>>> = {
          ours: async (query) => (await store.search(query, K)).map((id) => Number(id.slice(1))),
          "scan (JS, quickselect)": async (query) => scan(query, K)
        }
        if (usearch !== undefined) {
          const u = usearch
          // The binding reads a typed array's whole buffer: give it arrays of their own (a query's copy costs
          // nanoseconds beside the search).
          const own = matrix.slice()
          s["usearch exact (SIMD, 1 thread)"] = async (query) =>
            Array.from(u.exactSearch(own, query.slice(), DIMENSIONS, K, u.MetricKind.IP, 1).keys, Number)
          if (n <= options.hnswUpTo) {
            const index = new u.Index({
              dimensions: DIMENSIONS,
              metric: u.MetricKind.IP,
              connectivity: 16,
              expansion_add: 128,
              expansion_search: 64
            })
            const t0 = performance.now()
            index.add(BigUint64Array.from({ length: n }, (_, i) => BigInt(i)), matrix.slice(), 2)
            hnswBuildMs[label] = performance.now() - t0
            s["usearch HNSW (1 thread)"] = async (query) => Array.from(index.search(query.slice(), K, 1).keys, Number)
          }
        }
        searchers[label] = s
        // Warm-up, and each contestant's agreement with the exact answer (the scan's).
        const shares: Partial<Record<Contestant, Array<number>>> = {}
        for (let i = 0; i < q; i++) {
          const query = queries.subarray(i * DIMENSIONS, (i + 1) * DIMENSIONS)
          const exact = new Set(await s["scan (JS, quickselect)"]!(query))
          for (
            const [name, search] of Object.entries(s) as Array<
              [Contestant, (q: Float32Array) => Promise<ReadonlyArray<number>>]
            >
          ) {
            const got = await search(query)
            ;(shares[name] ??= []).push(got.filter((id) => exact.has(id)).length / K)
          }
        }
        recall[label] = Object.fromEntries(
          Object.entries(shares).map(([name, xs]) => [name, xs.reduce((a, b) => a + b, 0) / xs.length])
        )
      }
      return { firstIngest, recall, hnswBuildMs, usearch: usearch !== undefined }
    },
    round: async (index: number): Promise<RoundResult> => {
      // Ingest: a fresh store, `ingestChunks` chunks in batches of 100, one fsync per batch.
      const dir = await options.tmp()
      const fresh = await options.open(dir)
      const rate = await ingest(fresh, data.vectors, options.ingestChunks)
      await fresh.close()
      await options.remove(dir)
      const sizes: Record<string, SizeResult> = {}
      for (const [label, , q] of options.sizes) {
        const s = searchers[label]!
        const names = Object.keys(s) as Array<Contestant>
        const times: Partial<Record<Contestant, Array<number>>> = {}
        // Query by query, the contestants in a rotating order.
        for (let i = 0; i < q; i++) {
          const query = queries.subarray(i * DIMENSIONS, (i + 1) * DIMENSIONS)
          for (let k = 0; k < names.length; k++) {
            const name = names[(k + i + index) % names.length]!
            // CPU time of this process, ms: a wall-clock timing on a shared machine also counts the time other
            // processes held the CPU. Every contestant searches on this thread only.
            const t0 = process.cpuUsage()
            await s[name]!(query)
            const used = process.cpuUsage(t0)
            ;(times[name] ??= []).push((used.user + used.system) / 1000)
          }
        }
        sizes[label] = {
          latency: Object.fromEntries(
            Object.entries(times).map(([name, xs]) => [name, { p50: percentile(xs, 0.5), p99: percentile(xs, 0.99) }])
          )
        }
      }
      // Reopen the largest store: snapshot load and log replay, in a second instance.
      const [largestLabel, n] = options.sizes.at(-1)!
      const t0 = performance.now()
      const reopened = await options.open(stores[largestLabel]!.dir)
      const count = await reopened.count()
      const reopenMs = performance.now() - t0
      await reopened.close()
      if (count !== n) throw new Error(`reopened with ${count} chunks, expected ${n}`)
      return { ingest: rate.perSecond, ingestCpu: rate.cpuPerChunk, reopenMs, sizes }
    },
    close: async () => {
      for (const { dir, store } of Object.values(stores)) {
        await store.close()
        await options.remove(dir)
      }
    }
  }
}
