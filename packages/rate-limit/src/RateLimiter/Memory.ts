/**
 * The in-memory rate-limit store: O(1) per decision and bounded memory.
 *
 * Each scope (a policy and what it counts by) has its own `Map` from key to state, so a decision looks up the
 * caller's key string as it is (its hash is cached by V8) instead of building and hashing a composite key. States are
 * updated in place; a single-check decision allocates only its result.
 *
 * Every state records when it becomes equivalent to a fresh one (a full bucket, an empty window). A clock hand (a live
 * `Map` iterator) goes round the scopes: every 64th decision it looks at the next 32 keys and drops the idle ones, so
 * idle keys go in O(1) amortized time without reordering live ones. When `maxKeys` is reached, a new key takes the
 * place of the least recently used of up to 8 keys under the hand (sampled LRU, as Redis evicts), which can only make
 * a limit more lenient, never stricter.
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
  /** At most this many keys are kept, over all scopes (default 1 000 000). */
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

interface Entry extends Algorithms.State {
  /** when the key was last decided */
  seen: number
}

interface Scope {
  readonly map: Map<string, Entry>
  hand: MapIterator<[string, Entry]> | undefined
}

/** How many keys the hand looks at per sweep, every `SWEEP_EVERY` decisions. */
const SWEEP_KEYS = 32
const SWEEP_EVERY = 64
/** How many keys an eviction samples. */
const SAMPLE = 8

/** The keyspaces of a store, with their sweep and bound. */
class Keyspaces {
  private readonly scopes = new Map<string, Scope>()
  private readonly order: Array<Scope> = []
  private turn = 0
  private ops = 0
  size = 0
  constructor(readonly maxKeys: number) {}

  scope(name: string): Scope {
    let scope = this.scopes.get(name)
    if (scope === undefined) {
      scope = { map: new Map(), hand: undefined }
      this.scopes.set(name, scope)
      this.order.push(scope)
    }
    return scope
  }

  insert(scope: Scope, key: string, entry: Entry, now: number): void {
    if (this.size >= this.maxKeys) this.evict(scope.map.size > 0 ? scope : this.largest(), now)
    scope.map.set(key, entry)
    this.size++
  }

  /** The next entry under a scope's hand, starting over at the end (undefined when the scope is empty). */
  private next(scope: Scope): [string, Entry] | undefined {
    let step = scope.hand?.next()
    if (step === undefined || step.done === true) {
      scope.hand = scope.map.entries()
      step = scope.hand.next()
      if (step.done === true) return undefined
    }
    return step.value
  }

  private evict(scope: Scope, now: number): void {
    let victim: string | undefined
    let oldest = Infinity
    for (let i = Math.min(SAMPLE, scope.map.size); i > 0; i--) {
      const step = this.next(scope)
      if (step === undefined) break
      const [key, entry] = step
      if (entry.expiresAt <= now) {
        victim = key
        break
      }
      if (entry.seen < oldest) {
        oldest = entry.seen
        victim = key
      }
    }
    if (victim !== undefined && scope.map.delete(victim)) this.size--
  }

  private largest(): Scope {
    let best = this.order[0]!
    for (const scope of this.order) if (scope.map.size > best.map.size) best = scope
    return best
  }

  /** Every `SWEEP_EVERY` calls, drops the idle keys among the next `SWEEP_KEYS` under the hand of the next scope. */
  tick(now: number): void {
    if ((++this.ops & (SWEEP_EVERY - 1)) !== 0 || this.size === 0) return
    const scope = this.order[this.turn++ % this.order.length]!
    const map = scope.map
    for (let budget = Math.min(SWEEP_KEYS, map.size); budget > 0; budget--) {
      const step = this.next(scope)
      if (step === undefined) break
      if (step[1].expiresAt <= now && map.delete(step[0])) this.size--
    }
  }
}

/** The state of an entry, or undefined when it has none or an idle one (whose entry is then reused in place). */
const live = (entry: Entry | undefined, now: number): Algorithms.State | undefined =>
  entry === undefined || entry.expiresAt <= now ? undefined : entry

const store = (entry: Entry, out: Algorithms.Outcome, now: number): void => {
  entry.a = out.a
  entry.b = out.b
  entry.c = out.c
  entry.expiresAt = out.expiresAt
  entry.seen = now
}

const entryOf = (out: Algorithms.Outcome, now: number): Entry => ({
  a: out.a,
  b: out.b,
  c: out.c,
  expiresAt: out.expiresAt,
  seen: now
})

/**
 * Builds a memory store.
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
  const keys = new Keyspaces(options.maxKeys ?? 1_000_000)
  // @effect/experimental's operations keep their own keys in one scope.
  const experimentalScope = keys.scope("\u0000experimental")
  const scratch = Algorithms.outcome()

  const decide = (checks: ReadonlyArray<Check>, cost: number, now: number): ReadonlyArray<CheckResult> => {
    keys.tick(now)
    const n = checks.length
    if (n === 1) {
      const check = checks[0]!
      const scope = keys.scope(check.scope)
      const entry = scope.map.get(check.key)
      Algorithms.run(check.algorithm, live(entry, now), check.limit, check.windowMillis, cost, now, scratch)
      if (scratch.allowed) {
        if (entry === undefined) keys.insert(scope, check.key, entryOf(scratch, now), now)
        else store(entry, scratch, now)
      } else if (entry !== undefined) {
        entry.seen = now
      }
      return [{
        allowed: scratch.allowed,
        remaining: scratch.remaining,
        resetAfterMillis: scratch.resetAfterMillis,
        retryAfterMillis: scratch.retryAfterMillis
      }]
    }
    const scopes: Array<Scope> = new Array(n)
    const entries: Array<Entry | undefined> = new Array(n)
    const outcomes: Array<Algorithms.Outcome> = new Array(n)
    let allowed = true
    for (let i = 0; i < n; i++) {
      const check = checks[i]!
      const scope = keys.scope(check.scope)
      const entry = scope.map.get(check.key)
      const out = Algorithms.outcome()
      Algorithms.run(check.algorithm, live(entry, now), check.limit, check.windowMillis, cost, now, out)
      scopes[i] = scope
      entries[i] = entry
      outcomes[i] = out
      if (!out.allowed) allowed = false
    }
    const results: Array<CheckResult> = new Array(n)
    for (let i = 0; i < n; i++) {
      const out = outcomes[i]!
      const entry = entries[i]
      if (allowed) {
        if (entry === undefined) keys.insert(scopes[i]!, checks[i]!.key, entryOf(out, now), now)
        else store(entry, out, now)
      } else if (entry !== undefined) {
        entry.seen = now
      }
      // Rejected: nothing is consumed, so a check that would have admitted reports what it had before this request.
      results[i] = allowed || !out.allowed
        ? {
          allowed: out.allowed,
          remaining: out.remaining,
          resetAfterMillis: out.resetAfterMillis,
          retryAfterMillis: out.retryAfterMillis
        }
        : {
          allowed: true,
          remaining: Math.min(checks[i]!.limit, out.remaining + cost),
          resetAfterMillis: out.resetAfterMillis,
          retryAfterMillis: 0
        }
    }
    return results
  }

  /** The experimental state of a key: a = tokens or count, b = last refill, expiresAt as ours. */
  const experimentalState = (key: string, now: number) => {
    keys.tick(now)
    const entry = experimentalScope.map.get(key)
    return { entry, state: live(entry, now) }
  }
  const putExperimental = (key: string, entry: Entry | undefined, a: number, b: number, expiresAt: number, now: number) => {
    if (entry === undefined) keys.insert(experimentalScope, key, { a, b, c: 0, expiresAt, seen: now }, now)
    else {
      entry.a = a
      entry.b = b
      entry.c = 0
      entry.expiresAt = expiresAt
      entry.seen = now
    }
  }

  const experimental = Experimental.RateLimiterStore.of({
    fixedWindow: (options) =>
      Clock.clockWith((clock) =>
        Effect.sync(() => {
          const refill = Duration.toMillis(options.refillRate)
          const now = clock.unsafeCurrentTimeMillis()
          const { entry, state } = experimentalState(options.key, now)
          // a = count; expiresAt = when the window's tokens have all refilled
          const count = state?.a ?? 0
          const expiresAt = state?.expiresAt ?? now
          if (options.limit !== undefined && count + options.tokens > options.limit) {
            return [count + options.tokens, expiresAt - now] as const
          }
          const next = expiresAt + refill * options.tokens
          putExperimental(options.key, entry, count + options.tokens, 0, next, now)
          return [count + options.tokens, next - now] as const
        })
      ),
    tokenBucket: (options) =>
      Clock.clockWith((clock) =>
        Effect.sync(() => {
          const refill = Duration.toMillis(options.refillRate)
          const now = clock.unsafeCurrentTimeMillis()
          const { entry, state } = experimentalState(options.key, now)
          // a = tokens, b = last refill
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
          putExperimental(options.key, entry, stored, last, last + Math.max(1, (options.limit - stored) * refill), now)
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
    size: () => keys.size
  }
}

/**
 * The memory store as a layer, providing both our store and `@effect/experimental`'s.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<RateLimiterStore | Experimental.RateLimiterStore> =>
  Layer.effectContext(Effect.map(make(options), toContext))
