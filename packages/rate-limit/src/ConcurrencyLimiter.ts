/**
 * A concurrent-request limiter: at most `limit` requests in flight per key (API key, client). It protects against
 * clients that open many slow requests at once, which a rate limiter alone does not catch.
 *
 * @since 0.1.0
 */
import { Config, Context, Effect, Layer, Schema, type Scope } from "effect"

/**
 * The key already has `limit` requests in flight. `retryAfter` is in seconds.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConcurrencyLimitExceeded extends Schema.TaggedError<ConcurrencyLimitExceeded>()(
  "ConcurrencyLimitExceeded",
  { detail: Schema.String, limit: Schema.Number, retryAfter: Schema.Number },
  { httpApiStatus: 429, description: "Too many requests in flight" }
) {}

/**
 * Every error of this module.
 *
 * @since 0.1.0
 * @category errors
 */
export type ConcurrencyLimiterError = ConcurrencyLimitExceeded

/**
 * The concurrency limiter.
 *
 * @since 0.1.0
 * @category services
 */
export class ConcurrencyLimiter extends Context.Service<ConcurrencyLimiter, {
  readonly limit: number
  /** Takes a permit for `key` until the scope closes, or fails at once when none is left. */
  readonly acquire: (key: string) => Effect.Effect<void, ConcurrencyLimitExceeded, Scope.Scope>
  /** Runs `effect` holding a permit for `key`. */
  readonly withPermit: (
    key: string
  ) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | ConcurrencyLimitExceeded, R>
  /** Takes a permit without a scope: `false` when none is left. Pair a `true` with `release`. */
  readonly tryAcquire: (key: string) => Effect.Effect<boolean>
  /** Gives back a permit taken by `tryAcquire`. */
  readonly release: (key: string) => Effect.Effect<void>
  /** `tryAcquire`, synchronously (for hot paths already inside a fiber step). */
  readonly tryAcquireUnsafe: (key: string) => boolean
  /** `release`, synchronously. */
  readonly releaseUnsafe: (key: string) => void
  /** Requests in flight for `key`. */
  readonly inFlight: (key: string) => Effect.Effect<number>
}>()("@ouroboros/rate-limit/ConcurrencyLimiter") {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Requests in flight per key. */
  readonly limit: number
}

/**
 * Builds a limiter (per process; keys with nothing in flight take no memory).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<ConcurrencyLimiter["Service"]> =>
  Effect.sync(() => {
    const counts = new Map<string, number>()
    const releaseUnsafe = (key: string) => {
      const n = (counts.get(key) ?? 1) - 1
      if (n <= 0) counts.delete(key)
      else counts.set(key, n)
    }
    const tryAcquireUnsafe = (key: string) => {
      const n = counts.get(key) ?? 0
      if (n >= options.limit) return false
      counts.set(key, n + 1)
      return true
    }
    const release = (key: string) => Effect.sync(() => releaseUnsafe(key))
    const tryAcquire = (key: string) => Effect.sync(() => tryAcquireUnsafe(key))
    const take = (key: string) =>
      Effect.flatMap(tryAcquire(key), (ok) => {
        if (!ok) {
          return Effect.fail(
            new ConcurrencyLimitExceeded({
              detail: `At most ${options.limit} requests may be in flight at once`,
              limit: options.limit,
              retryAfter: 1
            })
          )
        }
        return Effect.void
      })
    const acquire = (key: string) => Effect.acquireRelease(take(key), () => release(key))
    return ConcurrencyLimiter.of({
      limit: options.limit,
      acquire,
      withPermit: (key) => (effect) =>
        Effect.uninterruptibleMask((restore) =>
          Effect.andThen(take(key), Effect.ensuring(restore(effect), release(key)))
        ),
      tryAcquire,
      release,
      tryAcquireUnsafe,
      releaseUnsafe,
      inFlight: (key) => Effect.sync(() => counts.get(key) ?? 0)
    })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<ConcurrencyLimiter> =>
  Layer.effect(ConcurrencyLimiter, make(options))

/**
 * `RATE_LIMIT_CONCURRENCY` (default 50, a positive integer): requests in flight at once per API key (or client
 * address).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  limit: Config.schema(
    Schema.Int.check(Schema.isGreaterThan(0, { message: "must be a positive integer" })),
    "RATE_LIMIT_CONCURRENCY"
  ).pipe(Config.withDefault(50))
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<ConcurrencyLimiter, Config.ConfigError> = Layer.effect(
  ConcurrencyLimiter,
  Effect.flatMap(config, make)
)
