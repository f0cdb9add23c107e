// The circuit-breaker benchmark's worker on the Effect 3 tree (bundled by bench/paired/workers.ts against that
// tree's packages): ours built with Effect 3's API, the rounds shared with bench/circuit-breaker.ts.
import { CircuitBreaker, CircuitBreakerRedis, CircuitBreakerStore } from "@ouroboros/circuit-breaker"
import { Services } from "@ouroboros/testkit"
import { Effect, Layer, Logger, LogLevel, ManagedRuntime } from "effect"
import { rounds } from "../paired/circuit-breaker.ts"
import { serveTasks } from "../paired/serve.ts"

export const worker = async () => {
  const counter = { calls: 0 }
  const registryOf = async (store) => {
    const counted = Layer.effect(
      CircuitBreakerStore.CircuitBreakerStore,
      Effect.map(CircuitBreakerStore.CircuitBreakerStore, (s) => CircuitBreakerStore.counting(s, counter))
    ).pipe(Layer.provide(store))
    const runtime = ManagedRuntime.make(
      CircuitBreaker.layerStore({ defaults: { tripPolicy: CircuitBreaker.consecutive(5), openDuration: "10 seconds" } })
        .pipe(Layer.provide(counted), Layer.provide(Logger.minimumLogLevel(LogLevel.Warning)))
    )
    return runtime.runPromise(Effect.flatMap(CircuitBreaker.CircuitBreaker, (registry) => registry.get("bench")))
  }
  const loop = (body) => (n) => {
    let i = 0
    return Effect.runPromise(Effect.whileLoop({ while: () => i < n, body, step: () => i++ }).pipe(Effect.orDie))
  }
  const noop = Effect.void
  const memory = await registryOf(CircuitBreakerStore.layerMemory)
  const redis = (await Services.redis())
    ? await registryOf(
      CircuitBreakerRedis.layerStore({ url: Services.redisUrl, prefix: `bench:cb:${process.pid}:${Date.now()}` })
    )
    : undefined
  const runner = rounds({
    effectStep: loop(() => noop),
    memory: loop(() => memory.execute(noop)),
    redis: redis === undefined ? undefined : loop(() => redis.execute(noop)),
    storeCalls: () => counter.calls
  })
  serveTasks({ warmUp: runner.warmUp, round: runner.round })
}
