/**
 * Per-call overhead of a closed circuit breaker: ours (memory and Redis-backed) against a bare Effect step, cockatiel
 * and opossum against a bare `await`, all wrapping the same no-op. Paired rounds: in each round every contestant is
 * timed without and with its breaker, and the overhead of the round is the difference; the goal (ours ≤ cockatiel) is
 * judged on the per-round differences. With `BENCH_E3_TREE`, the same rounds run in a worker on the Effect 3 tree,
 * alternating with ours round by round.
 *
 * Run: `npm run bench -- circuit-breaker`. `BREAKER_BENCH_ROUNDS` (default 10), `BREAKER_BENCH_PROCESSES` (sets of worker
 * processes the rounds are spread over, default 5), `BREAKER_BENCH_CALLS` (calls per timing, default 1000000).
 */
import { CircuitBreaker, CircuitBreakerRedis, CircuitBreakerStore } from "@ouroboros/circuit-breaker"
import { Services } from "@ouroboros/testkit"
import { Effect, Layer, ManagedRuntime, References } from "effect"
import { type Contestant, ITERATIONS, rounds, type Timing } from "./paired/circuit-breaker.js"
import { serveTasks } from "./paired/serve.js"
import { num, show, showVerdict, verdict, verdictLegend } from "./paired/stats.js"
import { envInt, machineWatch, noE3Note, pairedRounds, sides } from "./paired/workers.js"

type Round = { readonly timings: Partial<Record<Contestant, Timing>>; readonly storeCalls: number }

/** The worker for this tree (Effect 4): builds ours as an application builds it and answers rounds. */
export const worker = async (): Promise<void> => {
  const counter = { calls: 0 }
  const registryOf = async (store: Layer.Layer<CircuitBreakerStore.CircuitBreakerStore>) => {
    // A store that counts its operations: the closed path must perform none.
    const counted = Layer.effect(
      CircuitBreakerStore.CircuitBreakerStore,
      Effect.map(
        Effect.service(CircuitBreakerStore.CircuitBreakerStore),
        (s) => CircuitBreakerStore.counting(s, counter)
      )
    ).pipe(Layer.provide(store))
    const runtime = ManagedRuntime.make(
      CircuitBreaker.layerStore({ defaults: { tripPolicy: CircuitBreaker.consecutive(5), openDuration: "10 seconds" } })
        .pipe(Layer.provide(counted), Layer.provide(Layer.succeed(References.MinimumLogLevel, "Warn")))
    )
    return runtime.runPromise(
      Effect.flatMap(Effect.service(CircuitBreaker.CircuitBreaker), (registry) => registry.get("bench"))
    )
  }
  const loop = (body: () => Effect.Effect<void, unknown>) => (n: number): Promise<void> => {
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

const contestants: ReadonlyArray<Contestant> = ["ours (memory)", "ours (Redis-backed)", "cockatiel", "opossum"]

/**
 * @since 0.1.0
 */
export default async function run(): Promise<void> {
  const watch = await machineWatch()
  const roundCount = envInt("BREAKER_BENCH_ROUNDS", 10)
  const processes = envInt("BREAKER_BENCH_PROCESSES", 5)
  const bySide = await pairedRounds<Round>({
    sides: await sides(import.meta.url, "circuit-breaker"),
    rounds: roundCount,
    processes,
    warmUp: "warmUp",
    task: "round"
  })
  const labels = Object.keys(bySide)
  const series = (side: string, c: Contestant, f: (t: Timing) => number) =>
    bySide[side]!.flatMap((r) => r.timings[c] === undefined ? [] : [f(r.timings[c])])
  const overhead = (t: Timing) => t.wrapped - t.baseline
  console.log(
    `\nClosed breaker: ns of CPU time per call, median (min–max) of ${roundCount} paired rounds over ${processes} sets of worker ` +
      `processes; ${ITERATIONS} calls per timing. Ours wraps Effect.void in an Effect loop (baseline: the bare step), ` +
      `the peers an async no-op in an await loop (baseline: the bare await); overhead = wrapped − baseline per round.` +
      (labels.length === 2 ? " The Effect 3 tree's worker alternates with ours round by round." : "")
  )
  console.table(contestants.flatMap((c) =>
    series("Effect 4", c, overhead).length === 0 ? [] : [{
      contestant: c,
      ...Object.fromEntries(labels.flatMap((side) => [
        [`${side} baseline`, show(series(side, c, (t) => t.baseline))],
        [`${side} wrapped`, show(series(side, c, (t) => t.wrapped))],
        [`${side} overhead`, show(series(side, c, overhead))]
      ])),
      "store round trips": c.startsWith("ours")
        ? labels.map((side) => bySide[side]!.at(-1)!.storeCalls).join(" / ")
        : "-"
    }]
  ))
  // Paired per round, ours against cockatiel in the same worker and round, read two ways: the overheads (wrapped −
  // baseline), and the whole protected call (each in its own idiom). The second does not lean on the baseline, which
  // on Effect 4 moved between about 30 and 300 ns from one timing to the next (the same loop: the runtime's call sites
  // as the other contestants had left them).
  console.table(labels.flatMap((side) =>
    (["ours (memory)", "ours (Redis-backed)"] as const).flatMap((c) => {
      if (series(side, c, overhead).length === 0) return []
      const byOverhead = series(side, c, overhead).map((o, i) => o - series(side, "cockatiel", overhead)[i]!)
      const byCall = series(side, c, (t) => t.wrapped).map((w, i) =>
        w - series(side, "cockatiel", (t) => t.wrapped)[i]!
      )
      const ns = (d: number) => `${num(d)} ns`
      return [{
        goal: `${c} ≤ cockatiel`,
        tree: side,
        "overhead: ours − cockatiel, ns": show(byOverhead),
        "on the overheads": showVerdict(verdict(byOverhead, (d) => d <= 0, "lower"), ns),
        "whole call: ours − cockatiel, ns": show(byCall),
        "on the whole call": showVerdict(verdict(byCall, (d) => d <= 0, "lower"), ns)
      }]
    })
  ))
  if (labels.length === 2) {
    console.log(
      "Effect 4 against Effect 3 (paired rounds; cockatiel and opossum, the same code in both workers, show " +
        "how much two processes differ by luck alone)"
    )
    console.table(contestants.flatMap((c) => {
      const now = series("Effect 4", c, overhead)
      const before = series("Effect 3", c, overhead)
      if (now.length === 0 || before.length === 0) return []
      const wrappedNow = series("Effect 4", c, (t) => t.wrapped)
      const wrappedBefore = series("Effect 3", c, (t) => t.wrapped)
      return [{
        contestant: c,
        "overhead: Effect 4 − Effect 3, ns/call": show(now.map((x, i) => x - before[i]!)),
        "wrapped: Effect 4 / Effect 3": show(wrappedNow.map((x, i) => x / wrappedBefore[i]!), 2)
      }]
    }))
  } else {
    console.log(noE3Note)
  }
  console.log(verdictLegend)
  console.log(await watch())
}
