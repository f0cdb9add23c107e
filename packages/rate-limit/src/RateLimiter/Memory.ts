/**
 * The in-memory rate-limit store: O(1) per decision and bounded memory.
 *
 * Keys live in a `Map`. Every state records when it becomes equivalent to a fresh one (a full bucket, an empty
 * window); every 16th decision looks at 32 keys from the cold end of the map, dropping idle ones and giving live ones a
 * second chance at the back (a CLOCK-style sweep, O(1) amortized). When `maxKeys` is reached the coldest key goes,
 * which can only make a limit more lenient, never stricter.
 *
 * @since 0.1.0
 */
import * as Experimental from "@effect/experimental/RateLimiter"
import { Clock, Duration, Effect, Layer } from "effect"
import * as Algorithms from "../internal/algorithms.js"
import { type Check, type CheckResult, RateLimiterStore, toContext } from "../RateLimiterStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** At most this many keys are kept (default 1 000 000). */
  readonly maxKeys?: number | undefined
}

/**
 * A memory store, which also tells how many keys it holds.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryStore extends StoreService {
  readonly size: () => number
}

type StoreService = RateLimiterStore["Type"]

class Lru {
  readonly map = new Map<string, Algorithms.State>()
  private ops = 0
  constructor(readonly maxKeys: number) {}
  get(key: string, now: number): Algorithms.State | undefined {
    const state = this.map.get(key)
    if (state === undefined) return undefined
    if (state.expiresAt <= now) {
      this.map.delete(key)
      return undefined
    }
    return state
  }
  set(key: string, state: Algorithms.State): void {
    const map = this.map
    // Updating keeps the key's place; `sweep` gives live keys found at the cold end a second chance.
    map.set(key, state)
    if (map.size > this.maxKeys) map.delete(map.keys().next().value!)
  }
  /** Every 16th call, looks at up to 32 keys from the cold end: drops idle ones, moves live ones to the back. */
  tick(now: number): void {
    if ((++this.ops & 15) !== 0 || this.map.size === 0) return
    const map = this.map
    let budget = Math.min(32, map.size)
    const live: Array<[string, Algorithms.State]> = []
    for (const [key, state] of map) {
      if (budget-- === 0) break
      map.delete(key)
      if (state.expiresAt > now) live.push([key, state])
    }
    for (const [key, state] of live) map.set(key, state)
  }
}

/**
 * Builds a memory store (ours and the experimental one share nothing but the bound).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<RateLimiterStore["Type"]> =>
  Effect.sync(() => unsafeMake(options))

/**
 * Builds a memory store synchronously.
 *
 * @since 0.1.0
 * @category constructors
 */
export const unsafeMake = (options: Options = {}): MemoryStore => {
  const maxKeys = options.maxKeys ?? 1_000_000
  const lru = new Lru(maxKeys)
  const experimentalLru = new Lru(maxKeys)

  const decide = (checks: ReadonlyArray<Check>, cost: number, now: number) => {
    lru.tick(now)
    const n = checks.length
    if (n === 1) {
      const check = checks[0]!
      const outcome = run(check.algorithm, lru.get(check.key, now), check.limit, check.windowMillis, cost, now)
      if (outcome.allowed) lru.set(check.key, outcome.next)
      return [outcome]
    }
    const outcomes: Array<Algorithms.Outcome> = new Array(n)
    let allowed = true
    for (let i = 0; i < n; i++) {
      const check = checks[i]!
      const outcome = run(check.algorithm, lru.get(check.key, now), check.limit, check.windowMillis, cost, now)
      outcomes[i] = outcome
      if (!outcome.allowed) allowed = false
    }
    if (allowed) {
      for (let i = 0; i < n; i++) lru.set(checks[i]!.key, outcomes[i]!.next)
      return outcomes
    }
    // Rejected: nothing is consumed, so report what each check had before this request.
    return outcomes.map((outcome, i): CheckResult =>
      outcome.allowed ? unconsumed(checks[i]!, outcome, cost) : outcome
    )
  }

  const experimental = Experimental.RateLimiterStore.of({
    fixedWindow: (options) =>
      Clock.clockWith((clock) =>
        Effect.sync(() => {
          const refill = Duration.toMillis(options.refillRate)
          const now = clock.unsafeCurrentTimeMillis()
          experimentalLru.tick(now)
          // a = count; expiresAt = when the window's tokens have all refilled
          const state = experimentalLru.get(options.key, now) ?? { a: 0, b: 0, c: 0, expiresAt: now }
          if (options.limit !== undefined && state.a + options.tokens > options.limit) {
            return [state.a + options.tokens, state.expiresAt - now] as const
          }
          const next = { a: state.a + options.tokens, b: 0, c: 0, expiresAt: state.expiresAt + refill * options.tokens }
          experimentalLru.set(options.key, next)
          return [next.a, next.expiresAt - now] as const
        })
      ),
    tokenBucket: (options) =>
      Clock.clockWith((clock) =>
        Effect.sync(() => {
          const refill = Duration.toMillis(options.refillRate)
          const now = clock.unsafeCurrentTimeMillis()
          experimentalLru.tick(now)
          // a = tokens, b = last refill
          const state = experimentalLru.get(options.key, now)
          let tokens = options.limit
          let last = now
          if (state !== undefined) {
            tokens = state.a
            last = state.b
            const add = Math.floor((now - last) / refill)
            if (add > 0) {
              tokens = Math.min(options.limit, tokens + add)
              last += add * refill
            }
          }
          const left = tokens - options.tokens
          const stored = options.allowOverflow || left >= 0 ? left : tokens
          // Idle once full again: (limit - stored) refills after the last one.
          experimentalLru.set(options.key, {
            a: stored,
            b: last,
            c: 0,
            expiresAt: last + Math.max(1, (options.limit - stored) * refill)
          })
          return left
        })
      )
  })

  return {
    consume: (checks, cost) =>
      Clock.clockWith((clock) => Effect.sync(() => decide(checks, cost, clock.unsafeCurrentTimeMillis()))),
    unsafeConsume: decide,
    status: Effect.succeed("pass"),
    experimental,
    size: () => lru.map.size + experimentalLru.map.size
  }
}

const run = (
  algorithm: "token-bucket" | "sliding-window",
  state: Algorithms.State | undefined,
  limit: number,
  window: number,
  cost: number,
  now: number
): Algorithms.Outcome =>
  algorithm === "token-bucket"
    ? Algorithms.tokenBucket(state, limit, window, cost, now)
    : Algorithms.slidingWindow(state, limit, window, cost, now)

const unconsumed = (
  check: Check,
  outcome: Algorithms.Outcome,
  cost: number
): CheckResult => ({
  allowed: true,
  remaining: Math.min(check.limit, outcome.remaining + cost),
  resetAfterMillis: outcome.resetAfterMillis,
  retryAfterMillis: 0
})

/**
 * The memory store as a layer, providing both our store and `@effect/experimental`'s.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<RateLimiterStore | Experimental.RateLimiterStore> =>
  Layer.effectContext(Effect.map(make(options), toContext))
