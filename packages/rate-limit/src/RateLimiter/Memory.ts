/**
 * The in-memory rate-limit store: O(1) per decision and bounded memory.
 *
 * Each scope (a policy and what it counts by) has its own `Map` from key to state, so a decision looks up the
 * caller's key string as it is (its hash is cached by V8) instead of building and hashing a composite key. States are
 * updated in place; a single-check decision allocates only its result.
 *
 * Every state records when it becomes equivalent to a fresh one (a full bucket, an empty window). A clock hand (a live
 * `Map` iterator) goes round the scopes: every 64th decision it looks at the next 32 keys and drops the idle ones, so
 * idle keys go in O(1) amortized time without reordering live ones, and with no background fiber. When `maxKeys` is
 * reached, a new key takes the place of the least recently used of up to 8 keys under the hand (sampled LRU, as Redis
 * evicts), which can only make a limit more lenient, never stricter.
 *
 * The store also implements `effect/persistence/RateLimiter`'s store (with its semantics, on the same bounded
 * keyspace), so Effect's `RateLimiter` runs on it: `RateLimiter.layer.pipe(Layer.provide(RateLimiterMemory.layer()))`.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Layer } from "effect"
import { RateLimiter as Persistence } from "effect/persistence"
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

type StoreService = RateLimiterStore["Service"]

/** What the keyspace needs of a state: when it is idle, and when it was last used. */
interface Timed {
  expiresAt: number
  /** when the key was last decided */
  seen: number
}

interface Entry extends Algorithms.State, Timed {}

/** The state of `effect/persistence`'s adaptive limiter for one key (its memory store's fields). */
interface AdaptiveEntry extends Timed {
  phase: Persistence.AdaptivePhase
  epoch: number
  cooldownUntil: number
  learningStartedAt: number
  observedTokens: number
  learnedLimit: number
  learnedWindowMillis: number
}

interface Scope<E extends Timed> {
  readonly map: Map<string, E>
  hand: MapIterator<[string, E]> | undefined
}

/** How many keys the hand looks at per sweep, every `SWEEP_EVERY` decisions. */
const SWEEP_KEYS = 32
const SWEEP_EVERY = 64
/** How many keys an eviction samples. */
const SAMPLE = 8

/** The keyspaces of a store, with their sweep and bound. */
class Keyspaces {
  private readonly scopes = new Map<string, Scope<Timed>>()
  private readonly order: Array<Scope<Timed>> = []
  private turn = 0
  private ops = 0
  size = 0
  constructor(readonly maxKeys: number) {}

  scope<E extends Timed = Entry>(name: string): Scope<E> {
    let scope = this.scopes.get(name)
    if (scope === undefined) {
      scope = { map: new Map(), hand: undefined }
      this.scopes.set(name, scope)
      this.order.push(scope)
    }
    return scope as unknown as Scope<E>
  }

  insert<E extends Timed>(scope: Scope<E>, key: string, entry: E, now: number): void {
    if (this.size >= this.maxKeys) {
      this.evict(scope.map.size > 0 ? scope as unknown as Scope<Timed> : this.largest(), now)
    }
    scope.map.set(key, entry)
    this.size++
  }

  /** The next entry under a scope's hand, starting over at the end (undefined when the scope is empty). */
  private next(scope: Scope<Timed>): [string, Timed] | undefined {
    let step = scope.hand?.next()
    if (step === undefined || step.done === true) {
      scope.hand = scope.map.entries()
      step = scope.hand.next()
      if (step.done === true) return undefined
    }
    return step.value
  }

  private evict(scope: Scope<Timed>, now: number): void {
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

  private largest(): Scope<Timed> {
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

/** How long adaptive state outlives its cooldown or window, and its longest window (as `effect/persistence`). */
const adaptiveGraceMillis = 60_000
const adaptiveMaxWindowMillis = 60 * 60 * 1_000

const clampAdaptiveMillis = (millis: number): number =>
  Number.isNaN(millis) || millis <= 0 ? 1 : Math.min(millis, adaptiveMaxWindowMillis)

/**
 * Builds a memory store.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<MemoryStore> => Effect.sync(() => makeUnsafe(options))

/**
 * Builds a memory store synchronously.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeUnsafe = (options: Options = {}): MemoryStore => {
  const keys = new Keyspaces(options.maxKeys ?? 1_000_000)
  // effect/persistence's operations keep their keys in scopes of their own, one per kind of state.
  const fixedWindows = keys.scope("\u0000fixed-window")
  const tokenBuckets = keys.scope("\u0000token-bucket")
  const adaptives = keys.scope<AdaptiveEntry>("\u0000adaptive")
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
    const scopes: Array<Scope<Entry>> = new Array(n)
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

  /** Writes a persistence state (a, b, expiry) in place, or inserts it unless it is already idle. */
  const put = (
    scope: Scope<Entry>,
    key: string,
    entry: Entry | undefined,
    a: number,
    b: number,
    expiresAt: number,
    now: number
  ) => {
    if (entry !== undefined) {
      entry.a = a
      entry.b = b
      entry.c = 0
      entry.expiresAt = expiresAt
      entry.seen = now
    } else if (expiresAt > now) {
      keys.insert(scope, key, { a, b, c: 0, expiresAt, seen: now }, now)
    }
  }

  /** The live adaptive state of a key; an idle one is dropped. */
  const adaptiveState = (key: string, now: number): AdaptiveEntry | undefined => {
    const state = adaptives.map.get(key)
    if (state === undefined) return undefined
    if (state.expiresAt <= now) {
      if (adaptives.map.delete(key)) keys.size--
      return undefined
    }
    state.seen = now
    return state
  }

  const toCooldown = (state: AdaptiveEntry, cooldownUntil: number) => {
    state.phase = "cooldown"
    state.cooldownUntil = cooldownUntil
    state.learningStartedAt = 0
    state.observedTokens = 0
    state.learnedLimit = 0
    state.learnedWindowMillis = 0
    state.expiresAt = cooldownUntil + adaptiveGraceMillis
  }

  // The semantics of effect/persistence's memory store, operation by operation, on this store's keyspace (bounded,
  // swept by the hand) instead of unbounded maps swept by a fiber once a minute.
  const persistence = Persistence.RateLimiterStore.of({
    fixedWindow: (options) =>
      Effect.clockWith((clock) =>
        Effect.sync(() => {
          const now = clock.currentTimeMillisUnsafe()
          keys.tick(now)
          const refillMillis = Duration.toMillis(options.refillRate)
          const entry = fixedWindows.map.get(options.key)
          // a = count; expiresAt = the end of the window
          const fresh = entry === undefined || entry.expiresAt <= now
          const count = fresh ? 0 : entry.a
          const expiresAt = fresh ? now : entry.expiresAt
          if (options.limit !== undefined && count + options.tokens > options.limit) {
            if (entry !== undefined) entry.seen = now
            return [count + options.tokens, expiresAt - now] as const
          }
          let next = expiresAt
          if (options.limit === undefined) next += refillMillis * options.tokens
          // A capped window opens on its first positive admission and lasts the full window.
          else if (expiresAt === now && options.tokens > 0) next = now + refillMillis * options.limit
          put(fixedWindows, options.key, entry, count + options.tokens, 0, next, now)
          return [count + options.tokens, next - now] as const
        })
      ),
    tokenBucket: (options) =>
      Effect.clockWith((clock) =>
        Effect.sync(() => {
          const now = clock.currentTimeMillisUnsafe()
          keys.tick(now)
          const refillMillis = Duration.toMillis(options.refillRate)
          const entry = tokenBuckets.map.get(options.key)
          // a = tokens, b = the start of the current refill interval
          const fresh = entry === undefined || entry.expiresAt <= now
          let tokens = fresh ? options.limit : entry.a
          let lastRefill = fresh ? now : entry.b
          const refills = Math.floor((now - lastRefill) / refillMillis)
          if (refills > 0) {
            tokens = Math.min(options.limit, tokens + refills)
            lastRefill += refills * refillMillis
          }
          if (tokens >= options.limit) lastRefill = now
          const left = tokens - options.tokens
          if (options.allowOverflow || left >= 0) tokens = left
          // Idle once fully refilled: indistinguishable from a fresh bucket.
          const expiresAt = lastRefill + Math.ceil(options.limit - tokens) * refillMillis
          put(tokenBuckets, options.key, entry, tokens, lastRefill, expiresAt, now)
          return [left, Math.max(0, now - lastRefill)] as const
        })
      ),
    adaptiveConsume: (options) =>
      Effect.clockWith((clock) =>
        Effect.sync((): Persistence.AdaptiveConsumeResult => {
          const now = clock.currentTimeMillisUnsafe()
          keys.tick(now)
          const state = adaptiveState(options.key, now)
          if (state === undefined) return { delay: Duration.zero, epoch: 0, phase: "inactive" }
          switch (state.phase) {
            case "cooldown": {
              if (state.cooldownUntil > now) {
                return { delay: Duration.millis(state.cooldownUntil - now), epoch: state.epoch, phase: "cooldown" }
              }
              state.phase = "learning"
              state.epoch += 1
              state.learningStartedAt = now
              state.observedTokens = options.tokens
              state.expiresAt = now + Duration.toMillis(options.fallbackWindow) + adaptiveGraceMillis
              return { delay: Duration.zero, epoch: state.epoch, phase: "learning" }
            }
            case "learning": {
              state.observedTokens += options.tokens
              return { delay: Duration.zero, epoch: state.epoch, phase: "learning" }
            }
            case "learned": {
              const refillRateMillis = state.learnedWindowMillis / state.learnedLimit
              if (state.cooldownUntil <= now) {
                state.observedTokens = 0
                state.cooldownUntil = now
              }
              state.observedTokens += options.tokens
              state.cooldownUntil += refillRateMillis * options.tokens
              const ttl = state.cooldownUntil - now
              const elapsed = state.observedTokens * refillRateMillis - ttl
              const windowNumber = Math.floor((state.observedTokens - 1) / state.learnedLimit)
              const wait = windowNumber * state.learnedWindowMillis - elapsed
              return {
                delay: wait <= 0 ? Duration.zero : Duration.millis(wait),
                epoch: state.epoch,
                phase: "learned"
              }
            }
            default:
              return { delay: Duration.zero, epoch: state.epoch, phase: state.phase }
          }
        })
      ),
    adaptiveFeedback: (options) =>
      Effect.clockWith((clock) =>
        Effect.sync(() => {
          if (options.status !== 429 || options.retryAfter === undefined) return
          const retryAfterMillis = clampAdaptiveMillis(Duration.toMillis(options.retryAfter))
          const now = clock.currentTimeMillisUnsafe()
          keys.tick(now)
          const cooldownUntil = now + retryAfterMillis
          const state = adaptiveState(options.key, now)
          if (state === undefined) {
            if (options.epoch !== 0) return
            const fresh: AdaptiveEntry = {
              phase: "cooldown",
              epoch: 0,
              cooldownUntil,
              learningStartedAt: 0,
              observedTokens: 0,
              learnedLimit: 0,
              learnedWindowMillis: 0,
              expiresAt: cooldownUntil + adaptiveGraceMillis,
              seen: now
            }
            keys.insert(adaptives, options.key, fresh, now)
            return
          }
          if (state.epoch !== options.epoch) return
          switch (state.phase) {
            case "cooldown": {
              state.cooldownUntil = Math.max(state.cooldownUntil, cooldownUntil)
              state.expiresAt = state.cooldownUntil + adaptiveGraceMillis
              return
            }
            case "learning": {
              const accepted = state.observedTokens - options.tokens
              if (accepted <= 0) return toCooldown(state, cooldownUntil)
              const learnedWindowMillis = clampAdaptiveMillis(now - state.learningStartedAt + retryAfterMillis)
              state.phase = "learned"
              state.epoch += 1
              state.cooldownUntil = state.learningStartedAt + learnedWindowMillis
              state.observedTokens = accepted
              state.learnedLimit = accepted
              state.learnedWindowMillis = learnedWindowMillis
              state.expiresAt = now + learnedWindowMillis + adaptiveGraceMillis
              return
            }
            case "learned":
              return toCooldown(state, cooldownUntil)
          }
        })
      )
  })

  return {
    consume: (checks, cost) =>
      Effect.clockWith((clock) => Effect.sync(() => decide(checks, cost, clock.currentTimeMillisUnsafe()))),
    consumeUnsafe: decide,
    status: Effect.succeed("pass"),
    persistence,
    size: () => keys.size
  }
}

/**
 * The memory store as a layer, providing both our store and `effect/persistence`'s.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { Layer } from "effect"
 * import { RateLimiter } from "effect/persistence"
 * import { RateLimiterMemory } from "@ouroboros/rate-limit"
 * // Effect's own limiter, on our bounded memory store
 * const limiter = RateLimiter.layer.pipe(Layer.provide(RateLimiterMemory.layer({ maxKeys: 10_000 })))
 */
export const layer = (options: Options = {}): Layer.Layer<RateLimiterStore | Persistence.RateLimiterStore> =>
  Layer.effectContext(Effect.map(make(options), toContext))
