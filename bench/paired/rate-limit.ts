/**
 * The rate-limit benchmark's in-memory and Redis rounds, shared by our Effect 4 worker and the Effect 3 adapter. The
 * tree under test supplies ours (and the loops that need its Effect); the peer, rate-limiter-flexible, is built here.
 *
 * Like against like:
 * - synchronous: our `decideUnsafe` (what the HTTP middleware calls when the store decides synchronously, i.e. in
 *   memory) against the body of the peer's `RateLimiterMemory.consume` without its Promise (its `MemoryStorage.incrby`
 *   and the same limit check; the peer has no public synchronous API, so this is its decision as it would be one);
 * - asynchronous, each in its own idiom: `yield* decide(...)` in one fiber against `await consume(...)` in an async
 *   loop;
 * - asynchronous from an Effect program: the same fiber loop, the peer through `Effect.tryPromise`.
 * Through Redis, the peer's ioredis client has `enableAutoPipelining` (its best configuration: commands issued in the
 * same tick share a write), as ours batches the decisions of a tick.
 */
import { Redis } from "ioredis"
import { RateLimiterMemory as FlexMemory, RateLimiterRedis as FlexRedis } from "rate-limiter-flexible"

/** A limit no run reaches: every decision admits. */
export const HUGE = 1_000_000_000

/** The subject of a decision, as the HTTP middleware builds it. */
export interface Subject {
  readonly apiKey: string
  readonly client: string
  readonly endpoint: string
}

export const keysOf = (n: number): Array<string> => Array.from({ length: n }, (_, i) => `key-${i}`)

export const subjectsOf = (keys: ReadonlyArray<string>): Array<Subject> =>
  keys.map((apiKey) => ({ apiKey, client: "127.0.0.1", endpoint: "GET /api/v1/ping" }))

/** Loops of `n` decisions over a fixture's keys (key `i % keys`). */
export type Loop = (n: number) => Promise<void> | void

/** What the tree under test supplies for the in-memory rounds, for one fixture. */
export interface MemoryOurs {
  /** `n` calls of `decideUnsafe` with `Date.now()`. */
  readonly sync: Loop
  /** `n` × `yield* decide(subject)` in one fiber. */
  readonly fiber: Loop
  /** `n` × `yield* Effect.tryPromise(() => peer.consume(key))` in one fiber. */
  readonly peerInFiber: (peer: FlexMemory) => Loop
  /** `n` decisions of the Effect ecosystem's own limiter (`effect/persistence`; `@effect/experimental` on Effect 3). */
  readonly effectLimiter: Loop
}

export type MemoryContestant =
  | "ours sync (decideUnsafe)"
  | "peer sync (consume's body)"
  | "ours async (decide, one fiber)"
  | "peer async (await consume)"
  | "peer in the fiber (tryPromise)"
  | "Effect's limiter (one fiber)"

export const memoryFixtures = [["1 key", 1], ["100k keys", 100_000]] as const

/** Builds the in-memory round runner: `round(i)` returns decisions/s per fixture and contestant. */
export const memoryRounds = (
  make: (keys: ReadonlyArray<string>, subjects: ReadonlyArray<Subject>) => MemoryOurs,
  decisions: number
) => {
  const fixtures = memoryFixtures.map(([label, count]) => {
    const keys = keysOf(count)
    const ours = make(keys, subjectsOf(keys))
    const peer = new FlexMemory({ points: HUGE, duration: 60 })
    // The peer's own `consume`, less its Promise: the same storage call and the same limit check.
    const storage = (peer as unknown as {
      _memoryStorage: { incrby: (key: string, points: number, seconds: number) => { consumedPoints: number } }
    })._memoryStorage
    const internals = peer as unknown as { _getKeySecDuration: (options: object) => number }
    const seconds = internals._getKeySecDuration({})
    let admitted = 0
    const peerSync: Loop = (n) => {
      for (let i = 0; i < n; i++) {
        const res = storage.incrby(peer.getKey(keys[i % count]!), 1, seconds) as {
          consumedPoints: number
          remainingPoints?: number
        }
        res.remainingPoints = Math.max(peer.points - res.consumedPoints, 0)
        if (res.consumedPoints <= peer.points) admitted++
      }
    }
    const peerAwait: Loop = async (n) => {
      for (let i = 0; i < n; i++) await peer.consume(keys[i % count]!)
    }
    const contestants: Array<[MemoryContestant, Loop]> = [
      ["ours sync (decideUnsafe)", ours.sync],
      ["peer sync (consume's body)", peerSync],
      ["ours async (decide, one fiber)", ours.fiber],
      ["peer async (await consume)", peerAwait],
      ["peer in the fiber (tryPromise)", ours.peerInFiber(peer)],
      ["Effect's limiter (one fiber)", ours.effectLimiter]
    ]
    return { label, contestants, admitted: () => admitted }
  })
  const runAll = async (n: number, index: number) => {
    const out: Record<string, Partial<Record<MemoryContestant, number>>> = {}
    for (const fixture of fixtures) {
      const rates: Partial<Record<MemoryContestant, number>> = {}
      for (let k = 0; k < fixture.contestants.length; k++) {
        const [name, loop] = fixture.contestants[(k + index) % fixture.contestants.length]!
        // CPU time of this process: a wall-clock timing on a shared machine also counts the time other processes
        // held the CPU.
        const start = process.cpuUsage()
        await loop(n)
        const used = process.cpuUsage(start)
        rates[name] = (n * 1_000_000) / (used.user + used.system)
      }
      out[fixture.label] = rates
    }
    return out
  }
  return {
    // A full pass over the keys for every contestant: a key's first decision creates its state (the peer also arms a
    // timer per key), which no later round pays.
    warmUp: () => runAll(Math.max(50_000, ...memoryFixtures.map(([, count]) => count)), 0).then(() => undefined),
    round: (index: number) => runAll(decisions, index)
  }
}

/** Decisions per second and p99 latency (ms) of a load. */
export interface LoadResult {
  readonly perSecond: number
  readonly p99: number
}

/** The p99 of latencies (ms) and the rate over `millis`. */
export const loadResult = (latencies: ReadonlyArray<number>, millis: number): LoadResult => {
  const sorted = Float64Array.from(latencies).sort()
  return {
    perSecond: (latencies.length * 1000) / millis,
    p99: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? NaN
  }
}

/** What the tree under test supplies for the Redis rounds: fiber loads in one runtime, as a server runs them. */
export interface RedisOurs {
  /** `concurrency` fibers deciding for `millis` through our Redis store (behind the fail-open fallback). */
  readonly ours: (concurrency: number, millis: number) => Promise<LoadResult>
  /** The same fibers calling the peer through `Effect.tryPromise`. */
  readonly peerInFibers: (peer: FlexRedis, concurrency: number, millis: number) => Promise<LoadResult>
  readonly close: () => Promise<void>
}

export type RedisContestant = "ours" | "peer (await consume)" | "peer in fibers (tryPromise)"

export const redisKeys = keysOf(1000)

/** Builds the Redis round runner over `url`: `round(i)` returns, per concurrency, each contestant's load. */
export const redisRounds = (url: string, prefix: string, ours: RedisOurs, millis: number) => {
  const client = new Redis(url, { enableAutoPipelining: true })
  const peer = new FlexRedis({ storeClient: client, points: HUGE, duration: 60, keyPrefix: `${prefix}flex` })
  const peerLoad = async (concurrency: number, ms: number): Promise<LoadResult> => {
    const latencies: Array<number> = []
    let count = 0
    const deadline = performance.now() + ms
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const key = redisKeys[count++ % 1000]!
        const start = performance.now()
        await peer.consume(key)
        latencies.push(performance.now() - start)
      }
    }))
    return loadResult(latencies, ms)
  }
  const contestants: Array<[RedisContestant, (concurrency: number, ms: number) => Promise<LoadResult>]> = [
    ["ours", ours.ours],
    ["peer (await consume)", peerLoad],
    ["peer in fibers (tryPromise)", (c, ms) => ours.peerInFibers(peer, c, ms)]
  ]
  const runAll = async (ms: number, index: number) => {
    const out: Record<string, Partial<Record<RedisContestant, LoadResult>>> = {}
    for (const concurrency of [1, 50]) {
      const results: Partial<Record<RedisContestant, LoadResult>> = {}
      for (let k = 0; k < contestants.length; k++) {
        const [name, load] = contestants[(k + index) % contestants.length]!
        results[name] = await load(concurrency, ms)
      }
      out[`c=${concurrency}`] = results
    }
    return out
  }
  return {
    warmUp: () => runAll(300, 0).then(() => undefined),
    round: (index: number) => runAll(millis, index),
    close: async () => {
      await ours.close()
      const cleaner = new Redis(url)
      let cursor = "0"
      do {
        const [next, found] = await cleaner.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
        cursor = next
        if (found.length > 0) await cleaner.del(...found)
      } while (cursor !== "0")
      await cleaner.quit()
      await client.quit()
    }
  }
}
