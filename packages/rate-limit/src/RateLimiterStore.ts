/**
 * Where rate-limit state lives. A store decides several checks at once, atomically: either every check admits the
 * request and all of them consume, or the request is rejected and nothing is consumed.
 *
 * The same store object also implements `@effect/experimental`'s `RateLimiterStore` (`fixedWindow`, `tokenBucket`),
 * so the experimental `RateLimiter` runs on our stores, and `fromExperimental` runs ours on any experimental store.
 *
 * @since 0.1.0
 */
import * as Experimental from "@effect/experimental/RateLimiter"
import { HttpApiSchema } from "@effect/platform"
import { Context, Duration, Effect, Schema } from "effect"

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
export const Algorithm = Schema.Literal("token-bucket", "sliding-window")

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
  { message: Schema.String, cause: Schema.optional(Schema.Defect) },
  HttpApiSchema.annotations({ status: 503, description: "The rate-limit store is unavailable" })
) {}

/**
 * Health of a store as health checks report it: `warn` while a fallback is in use or the primary is unreachable.
 *
 * @since 0.1.0
 * @category models
 */
export type Status = "pass" | "warn"

/**
 * The store service: atomic multi-check `consume`, plus the experimental store operations.
 *
 * @since 0.1.0
 * @category tags
 */
export class RateLimiterStore extends Context.Tag("@ouroboros/rate-limit/RateLimiterStore")<
  RateLimiterStore,
  {
    /** Decides all checks atomically: when one rejects, none consumes. */
    readonly consume: (
      checks: ReadonlyArray<Check>,
      cost: number
    ) => Effect.Effect<ReadonlyArray<CheckResult>, RateLimitStoreError>
    /** A synchronous `consume` at time `now` (ms), offered by stores that need no I/O (memory). */
    readonly unsafeConsume?:
      | ((checks: ReadonlyArray<Check>, cost: number, now: number) => ReadonlyArray<CheckResult>)
      | undefined
    /** `pass`, or `warn` while degraded. */
    readonly status: Effect.Effect<Status>
    /** The same state as an `@effect/experimental` store. */
    readonly experimental: Experimental.RateLimiterStore["Type"]
  }
>() {}

/**
 * The one-string form of a check's key: `scope=key`.
 *
 * @since 0.1.0
 * @category utils
 */
export const fullKey = (check: Check): string => `${check.scope}=${check.key}`

/**
 * Runs our checks on any `@effect/experimental` store. Token buckets use its `tokenBucket`, sliding windows its
 * `fixedWindow` (the closest it has). Checks run one after another: unlike our own stores, a rejection by a later
 * check does not give back what earlier checks consumed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromExperimental = (store: Experimental.RateLimiterStore["Type"]): RateLimiterStore["Type"] => {
  const one = (check: Check, cost: number): Effect.Effect<CheckResult, RateLimitStoreError> => {
    const key = fullKey(check)
    const refillRate = Duration.millis(check.windowMillis / check.limit)
    const perToken = check.windowMillis / check.limit
    const result: Effect.Effect<CheckResult, Experimental.RateLimiterError> = check.algorithm === "token-bucket"
      ? Effect.map(
        store.tokenBucket({ key, tokens: cost, limit: check.limit, refillRate, allowOverflow: false }),
        (left): CheckResult =>
          left >= 0
            ? {
              allowed: true,
              remaining: left,
              resetAfterMillis: Math.ceil((check.limit - left) * perToken),
              retryAfterMillis: 0
            }
            : {
              allowed: false,
              remaining: Math.max(0, left + cost),
              resetAfterMillis: Math.ceil((check.limit - left - cost) * perToken),
              retryAfterMillis: Math.ceil(-left * perToken)
            }
      )
      : Effect.map(
        store.fixedWindow({ key, tokens: cost, refillRate, limit: check.limit }),
        ([count, ttl]): CheckResult =>
          count <= check.limit
            ? { allowed: true, remaining: check.limit - count, resetAfterMillis: ttl, retryAfterMillis: 0 }
            : { allowed: false, remaining: 0, resetAfterMillis: ttl, retryAfterMillis: ttl }
      )
    return Effect.mapError(result, (cause) => new RateLimitStoreError({ message: cause.message, cause }))
  }
  return {
    consume: (checks, cost) =>
      Effect.gen(function*() {
        const results: Array<CheckResult> = []
        for (const check of checks) {
          const result = yield* one(check, cost)
          results.push(result)
        }
        return results
      }),
    status: Effect.succeed("pass"),
    experimental: store
  }
}

/**
 * Both store tags, ours and `@effect/experimental`'s, for one store.
 *
 * @since 0.1.0
 * @category utils
 */
export const toContext = (
  store: RateLimiterStore["Type"]
): Context.Context<RateLimiterStore | Experimental.RateLimiterStore> =>
  Context.make(RateLimiterStore, store).pipe(Context.add(Experimental.RateLimiterStore, store.experimental))
