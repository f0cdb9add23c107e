// The rate-limit benchmark's worker and minimal server on the Effect 3 tree (bundled by bench/paired/workers.ts
// against that tree's packages): ours built with Effect 3's API, the rounds shared with bench/rate-limit.ts.
import * as Experimental from "@effect/experimental/RateLimiter"
import { HttpApiBuilder } from "@effect/platform"
import { RateLimiter, RateLimiterHttp, RateLimiterMemory } from "@ouroboros/rate-limit"
import { Services } from "@ouroboros/testkit"
import { startPingServer } from "e3-tree/bench/internal/ping.ts"
import { Duration, Effect, ManagedRuntime } from "effect"
import { randomUUID } from "node:crypto"
import { HUGE, loadResult, memoryRounds, redisKeys, redisRounds } from "../paired/rate-limit.ts"
import { serveTasks } from "../paired/serve.ts"

const policy = RateLimiter.Policy.make({ name: "bench", limit: HUGE, window: 60_000, scope: ["api-key"] })

const memoryOurs = (keys, subjects) => {
  const count = keys.length
  const ours = Effect.runSync(Effect.provide(RateLimiter.RateLimiter, RateLimiter.layerMemory({ policies: [policy] })))
  const unsafeDecide = ours.unsafeDecide
  const effectLimiter = Effect.runSync(Effect.provide(Experimental.make, Experimental.layerStoreMemory))
  const effectKeys = keys.map((key) => ({
    key,
    limit: HUGE,
    window: Duration.seconds(60),
    algorithm: "token-bucket",
    onExceeded: "fail"
  }))
  return {
    sync: (n) => {
      for (let i = 0; i < n; i++) unsafeDecide(subjects[i % count], Date.now())
    },
    fiber: (n) =>
      Effect.runPromise(Effect.gen(function*() {
        for (let i = 0; i < n; i++) yield* ours.decide(subjects[i % count])
      })),
    peerInFiber: (peer) => (n) =>
      Effect.runPromise(Effect.gen(function*() {
        for (let i = 0; i < n; i++) yield* Effect.tryPromise(() => peer.consume(keys[i % count]))
      })),
    effectLimiter: (n) =>
      Effect.runPromise(Effect.gen(function*() {
        for (let i = 0; i < n; i++) yield* effectLimiter.consume(effectKeys[i % count])
      }))
  }
}

const loadEffect = (runtime, concurrency, millis, op) =>
  runtime.runPromise(Effect.suspend(() => {
    const latencies = []
    let count = 0
    const deadline = performance.now() + millis
    const worker = Effect.gen(function*() {
      while (performance.now() < deadline) {
        const start = performance.now()
        yield* op(count++)
        latencies.push(performance.now() - start)
      }
    })
    return Effect.map(
      Effect.forEach(Array.from({ length: concurrency }), () => worker, { concurrency: "unbounded", discard: true }),
      () => loadResult(latencies, millis)
    )
  }))

export const worker = async () => {
  let memory
  let redis
  const redisRunner = async () => {
    if (redis !== undefined) return redis
    const prefix = `bench:rl:${randomUUID()}:`
    const runtime = ManagedRuntime.make(RateLimiter.layerRedis({ url: Services.redisUrl, prefix, policies: [policy] }))
    const ours = await runtime.runPromise(RateLimiter.RateLimiter)
    const subjects = redisKeys.map((apiKey) => ({ apiKey, client: "127.0.0.1", endpoint: "GET /api/v1/ping" }))
    return redis = redisRounds(Services.redisUrl, prefix, {
      ours: (c, ms) => loadEffect(runtime, c, ms, (i) => ours.decide(subjects[i % 1000])),
      peerInFibers: (peer, c, ms) =>
        loadEffect(runtime, c, ms, (i) => Effect.tryPromise(() => peer.consume(redisKeys[i % 1000]))),
      close: () => runtime.dispose()
    }, Number(process.env.RATE_LIMIT_BENCH_REDIS_MILLIS ?? 600))
  }
  serveTasks({
    memoryWarmUp: () => (memory ??= memoryRounds(memoryOurs, 200_000)).warmUp(),
    memory: (round) => memory.round(round),
    redisWarmUp: async () => (await redisRunner()).warmUp(),
    redis: async (round) => (await redisRunner()).round(round)
  }, async () => {
    await redis?.close()
  })
}

// As the Effect 3 tree's bench/rate-limit.ts served it: the middleware passed to HttpApiBuilder.serve.
export const serveForBench = async (mode) => {
  const limiter = RateLimiter.unsafeMake(RateLimiterMemory.unsafeMake(), { policies: [policy] })
  const middleware = mode === "off" ? (app) => app : await Effect.runPromise(
    RateLimiterHttp.make().pipe(Effect.provideService(RateLimiter.RateLimiter, limiter))
  )
  const server = await startPingServer(HttpApiBuilder.serve(middleware))
  console.log(`PORT=${server.port}`)
}
