/**
 * Per-call overhead of a closed circuit breaker: ours (memory and Redis-backed) against a bare Effect step,
 * cockatiel and opossum against a bare `await`, all wrapping the same no-op in the same run.
 *
 * Run: `npm run bench -- circuit-breaker` (from source:
 * `node --import tsx --input-type=module -e 'import("./bench/circuit-breaker.ts").then(m => m.default())'`).
 */
import { CircuitBreaker, CircuitBreakerRedis, CircuitBreakerStore } from "@ouroboros/circuit-breaker"
import { Services } from "@ouroboros/testkit"
import { ConsecutiveBreaker, circuitBreaker, handleAll } from "cockatiel"
import { Context, Effect, Layer, References } from "effect"
import CircuitBreakerOpossum from "opossum"

const ITERATIONS = 100_000
const ROUNDS = 9

const median = (xs: ReadonlyArray<number>): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

const time = async (run: (n: number) => Promise<void>): Promise<number> => {
  const start = process.hrtime.bigint()
  await run(ITERATIONS)
  return Number(process.hrtime.bigint() - start) / ITERATIONS
}

interface Result {
  readonly baseline: number
  readonly wrapped: number
  readonly overhead: number
}

/**
 * ns per call of `wrapped` and of its `baseline`, measured alternately round by round (so that both see the same
 * machine load); the overhead is the median of the per-round differences.
 */
const compare = async (
  baseline: (n: number) => Promise<void>,
  wrapped: (n: number) => Promise<void>
): Promise<Result> => {
  await baseline(ITERATIONS)
  await wrapped(ITERATIONS)
  const bases: Array<number> = []
  const totals: Array<number> = []
  const overheads: Array<number> = []
  for (let round = 0; round < ROUNDS; round++) {
    const b = await time(baseline)
    const w = await time(wrapped)
    bases.push(b)
    totals.push(w)
    overheads.push(w - b)
  }
  return { baseline: median(bases), wrapped: median(totals), overhead: median(overheads) }
}

const effectLoop = (body: () => Effect.Effect<void, unknown>) => (n: number): Promise<void> => {
  let i = 0
  return Effect.runPromise(
    Effect.whileLoop({ while: () => i < n, body, step: () => i++ }).pipe(Effect.orDie)
  )
}

const noop = Effect.void
const noopAsync = async (): Promise<void> => {}

const bareEffect = effectLoop(() => noop)
const bareAwait = async (n: number) => {
  for (let i = 0; i < n; i++) await noopAsync()
}

/** Ours over a store that counts its operations: the closed path must perform none. */
const ours = (store: Layer.Layer<CircuitBreakerStore.CircuitBreakerStore>, options: CircuitBreaker.RegistryOptions) =>
  Effect.runPromise(
    Effect.scoped(Effect.gen(function*() {
      const counter = { calls: 0 }
      const counted = Layer.effect(
        CircuitBreakerStore.CircuitBreakerStore,
        Effect.map(
          Effect.service(CircuitBreakerStore.CircuitBreakerStore),
          (s) => CircuitBreakerStore.counting(s, counter)
        )
      ).pipe(Layer.provide(store))
      const context = yield* Layer.build(Layer.provide(CircuitBreaker.layerStore(options), counted))
      const registry = Context.get(context, CircuitBreaker.CircuitBreaker)
      const breaker = yield* registry.get("bench")
      const result = yield* Effect.promise(() => compare(bareEffect, effectLoop(() => breaker.execute(noop))))
      return { ...result, storeCalls: counter.calls }
    })).pipe(Effect.provideService(References.MinimumLogLevel, "Warn"))
  )

/**
 * @since 0.1.0
 */
export default async function run(): Promise<void> {
  const options: CircuitBreaker.RegistryOptions = {
    defaults: { tripPolicy: CircuitBreaker.consecutive(5), openDuration: "10 seconds" }
  }
  const withRedis = await Services.redis()

  const oursMemory = await ours(CircuitBreakerStore.layerMemory, options)
  const oursRedis = withRedis
    ? await ours(
      CircuitBreakerRedis.layerStore({ url: Services.redisUrl, prefix: `bench:cb:${process.pid}:${Date.now()}` }),
      options
    )
    : undefined
  const cockatiel = circuitBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) })
  const cockatielResult = await compare(bareAwait, async (n) => {
    for (let i = 0; i < n; i++) await cockatiel.execute(noopAsync)
  })
  const opossum = new CircuitBreakerOpossum(noopAsync, { timeout: false, resetTimeout: 10_000 })
  const opossumResult = await compare(bareAwait, async (n) => {
    for (let i = 0; i < n; i++) await opossum.fire()
  })
  opossum.shutdown()

  const row = (library: string, baseline: string, result: Result & { readonly storeCalls?: number }) => ({
    library,
    baseline,
    "baseline ns/call": Math.round(result.baseline),
    "wrapped ns/call": Math.round(result.wrapped),
    "overhead ns/call": Math.round(result.overhead),
    "store round trips": result.storeCalls ?? "-"
  })
  console.log(`closed breaker, ${ITERATIONS} calls x ${ROUNDS} alternating rounds (medians), node ${process.version}`)
  console.table([
    row("ouroboros (memory)", "Effect step", oursMemory),
    ...(oursRedis === undefined ? [] : [row("ouroboros (Redis-backed)", "Effect step", oursRedis)]),
    row("cockatiel 3.2.1", "await", cockatielResult),
    row("opossum 9.0.0", "await", opossumResult)
  ])
  if (!withRedis) console.log("Redis not reachable: the Redis-backed row is skipped")
}
