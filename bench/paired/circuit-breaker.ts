/**
 * The circuit-breaker benchmark's rounds, shared by our Effect 4 worker and the Effect 3 adapter: each round times
 * (in CPU time), for every contestant in turn, `ITERATIONS` calls of a no-op without and with a closed breaker around
 * it. Ours runs in
 * an Effect loop against a bare Effect step; cockatiel and opossum in an async loop against a bare `await`.
 */
import { circuitBreaker, ConsecutiveBreaker, handleAll } from "cockatiel"
import CircuitBreakerOpossum from "opossum"

/** Calls per timing. */
export const ITERATIONS = Number(process.env.BREAKER_BENCH_CALLS ?? 1_000_000)

/** What the tree under test supplies: loops of `n` calls, and how many store operations ours performed. */
export interface Subject {
  /** `n` bare Effect steps (`Effect.void`) in one `Effect.whileLoop`. */
  readonly effectStep: (n: number) => Promise<void>
  /** `n` calls of the same step through our breaker (memory store), in the same kind of loop. */
  readonly memory: (n: number) => Promise<void>
  /** The same through our Redis-backed store, when Redis answers. */
  readonly redis: ((n: number) => Promise<void>) | undefined
  /** Store operations of ours so far (a closed breaker should make none). */
  readonly storeCalls: () => number
}

/** ns per call of one contestant in one round. */
export interface Timing {
  readonly baseline: number
  readonly wrapped: number
}

export type Contestant = "ours (memory)" | "ours (Redis-backed)" | "cockatiel" | "opossum"

const noopAsync = async (): Promise<void> => {}

const bareAwait = async (n: number) => {
  for (let i = 0; i < n; i++) await noopAsync()
}

/**
 * ns of this process's CPU time per call: on a shared machine a wall-clock timing also counts the time other
 * processes held the CPU, which CPU time leaves out.
 */
const time = async (run: (n: number) => Promise<void>): Promise<number> => {
  const start = process.cpuUsage()
  await run(ITERATIONS)
  const used = process.cpuUsage(start)
  return ((used.user + used.system) * 1000) / ITERATIONS
}

/** The round runner of one worker: call `round(i)` for round i. */
export const rounds = (subject: Subject) => {
  const cockatiel = circuitBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) })
  const opossum = new CircuitBreakerOpossum(noopAsync, { timeout: false, resetTimeout: 10_000 })
  const contestants: Array<[Contestant, (n: number) => Promise<void>, (n: number) => Promise<void>]> = [
    ["ours (memory)", subject.effectStep, subject.memory],
    ...(subject.redis === undefined
      ? []
      : [["ours (Redis-backed)", subject.effectStep, subject.redis] as [
        Contestant,
        (n: number) => Promise<void>,
        (n: number) => Promise<void>
      ]]),
    ["cockatiel", bareAwait, async (n) => {
      for (let i = 0; i < n; i++) await cockatiel.execute(noopAsync)
    }],
    ["opossum", bareAwait, async (n) => {
      for (let i = 0; i < n; i++) await opossum.fire()
    }]
  ]
  return {
    warmUp: async () => {
      for (const [, baseline, wrapped] of contestants) {
        await baseline(ITERATIONS)
        await wrapped(ITERATIONS)
      }
    },
    /** One round: every contestant's baseline then its wrapped loop, the contestants' order rotating by round. */
    round: async (index: number): Promise<{ timings: Partial<Record<Contestant, Timing>>; storeCalls: number }> => {
      const timings: Partial<Record<Contestant, Timing>> = {}
      for (let k = 0; k < contestants.length; k++) {
        const [name, baseline, wrapped] = contestants[(k + index) % contestants.length]!
        // An untimed short pass of both loops first: on Effect 4 the first Effect loop after the other contestants'
        // async loops ran up to ten times slower (the same loop measured 30 ns per step or 300), whichever came first.
        await baseline(ITERATIONS / 10)
        await wrapped(ITERATIONS / 10)
        const b = await time(baseline)
        const w = await time(wrapped)
        timings[name] = { baseline: b, wrapped: w }
      }
      return { timings, storeCalls: subject.storeCalls() }
    }
  }
}
