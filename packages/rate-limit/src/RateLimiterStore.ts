/**
 * Where rate-limit state lives. A store decides several checks at once, atomically: either every check admits the
 * request and all of them consume, or the request is rejected and nothing is consumed.
 *
 * The same store object also implements the `RateLimiterStore` of `effect/persistence/RateLimiter` (`fixedWindow`,
 * `tokenBucket`, `adaptiveConsume`, `adaptiveFeedback`), so Effect's own `RateLimiter` runs on our stores, and
 * `fromPersistence` runs ours on any store of Effect's.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Schema } from "effect"
import { RateLimiter as Persistence } from "effect/persistence"

/**
 * The algorithms a check can use.
 *
 * - `token-bucket`: a bucket of `limit` tokens refilled continuously at `limit` per `window` (bursts up to `limit`).
 * - `sliding-window`: the sliding window counter (the previous fixed window weighted by its overlap plus the current
 *   one), O(1) state per key.
 *
 * @since 0.1.0
 * @category models
 */
export const Algorithm = Schema.Literals(["token-bucket", "sliding-window"])

/**
 * @since 0.1.0
 * @category models
 */
export type Algorithm = typeof Algorithm.Type

/**
 * One limit to check for one key. A key lives in a scope (a policy and what it counts by, such as `default|k`): the
 * memory store keeps a map per scope, so a hot path can pass a key string it already has (an API key's hash, an
 * address) without building a composite one. Stores that need one string use `scope=key`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Check {
  readonly scope: string
  readonly key: string
  readonly algorithm: Algorithm
  readonly limit: number
  readonly windowMillis: number
}

/**
 * The outcome of one check. Times are milliseconds from the decision.
 *
 * - `remaining`: requests (units) still available after this decision.
 * - `resetAfterMillis`: time until the quota is fully restored.
 * - `retryAfterMillis`: when not allowed, time until the same request would be allowed; 0 otherwise.
 *
 * @since 0.1.0
 * @category models
 */
export interface CheckResult {
  readonly allowed: boolean
  readonly remaining: number
  readonly resetAfterMillis: number
  readonly retryAfterMillis: number
}

/**
 * The store could not decide (Redis unreachable, a script error).
 *
 * @since 0.1.0
 * @category errors
 */
export class RateLimitStoreError extends Schema.TaggedError<RateLimitStoreError>()(
  "RateLimitStoreError",
  { message: Schema.String, cause: Schema.optional(Schema.Defect()) },
  { httpApiStatus: 503, description: "The rate-limit store is unavailable" }
) {}

/**
 * Health of a store as health checks report it: `warn` while a fallback is in use or the primary is unreachable.
 *
 * @since 0.1.0
 * @category models
 */
export type Status = "pass" | "warn"

/**
 * The store of `effect/persistence/RateLimiter`, as our stores also implement it.
 *
 * @since 0.1.0
 * @category models
 */
export type PersistenceStore = Persistence.RateLimiterStore["Service"]

/**
 * The store service: atomic multi-check `consume`, plus the operations of `effect/persistence`'s store.
 *
 * @since 0.1.0
 * @category services
 */
export class RateLimiterStore extends Context.Service<RateLimiterStore, {
  /** Decides all checks atomically: when one rejects, none consumes. */
  readonly consume: (
    checks: ReadonlyArray<Check>,
    cost: number
  ) => Effect.Effect<ReadonlyArray<CheckResult>, RateLimitStoreError>
  /** A synchronous `consume` at time `now` (ms), offered by stores that need no I/O (memory). */
  readonly consumeUnsafe?:
    | ((checks: ReadonlyArray<Check>, cost: number, now: number) => ReadonlyArray<CheckResult>)
    | undefined
  /** `pass`, or `warn` while degraded. */
  readonly status: Effect.Effect<Status>
  /** The same state as a store of `effect/persistence/RateLimiter`, for Effect's own `RateLimiter`. */
  readonly persistence: PersistenceStore
}>()("@ouroboros/rate-limit/RateLimiterStore") {}

/**
 * The one-string form of a check's key: `scope=key`.
 *
 * @since 0.1.0
 * @category utils
 */
export const fullKey = (check: Check): string => `${check.scope}=${check.key}`

/**
 * Runs our checks on any store of `effect/persistence/RateLimiter` (for instance its node-redis store). Token buckets
 * use its `tokenBucket`, sliding windows its `fixedWindow` (a fixed window of the same length: the closest it has).
 * Checks run one after another: unlike our own stores, a rejection by a later check does not give back what earlier
 * checks consumed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromPersistence = (store: PersistenceStore): RateLimiterStore["Service"] => {
  const one = (check: Check, cost: number): Effect.Effect<CheckResult, RateLimitStoreError> => {
    const key = fullKey(check)
    const perToken = check.windowMillis / check.limit
    const refillRate = Duration.millis(perToken)
    const result: Effect.Effect<CheckResult, Persistence.RateLimiterError> = check.algorithm === "token-bucket"
      ? Effect.map(
        store.tokenBucket({ key, tokens: cost, limit: check.limit, refillRate, allowOverflow: false }),
        ([left, elapsed]): CheckResult =>
          left >= 0
            ? {
              allowed: true,
              remaining: Math.floor(left),
              resetAfterMillis: Math.max(0, Math.ceil((check.limit - left) * perToken - elapsed)),
              retryAfterMillis: 0
            }
            : {
              allowed: false,
              remaining: Math.max(0, Math.floor(left + cost)),
              resetAfterMillis: Math.max(0, Math.ceil((check.limit - left - cost) * perToken - elapsed)),
              retryAfterMillis: Math.max(0, Math.ceil(Math.ceil(-left) * perToken - elapsed))
            }
      )
      : Effect.map(
        store.fixedWindow({ key, tokens: cost, refillRate, limit: check.limit }),
        ([count, ttl]): CheckResult =>
          count <= check.limit
            ? { allowed: true, remaining: check.limit - count, resetAfterMillis: ttl, retryAfterMillis: 0 }
            : { allowed: false, remaining: 0, resetAfterMillis: ttl, retryAfterMillis: ttl }
      )
    return Effect.mapError(result, (error) => new RateLimitStoreError({ message: error.message, cause: error }))
  }
  return {
    consume: (checks, cost) =>
      Effect.gen(function*() {
        const results: Array<CheckResult> = []
        for (const check of checks) results.push(yield* one(check, cost))
        return results
      }),
    status: Effect.succeed("pass"),
    persistence: store
  }
}

/**
 * Both store services, ours and `effect/persistence`'s, for one store.
 *
 * @since 0.1.0
 * @category utils
 */
export const toContext = (
  store: RateLimiterStore["Service"]
): Context.Context<RateLimiterStore | Persistence.RateLimiterStore> =>
  Context.make(RateLimiterStore, store).pipe(Context.add(Persistence.RateLimiterStore, store.persistence))
