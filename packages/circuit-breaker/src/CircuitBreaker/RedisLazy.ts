/**
 * The Redis state store (`CircuitBreaker/Redis`), loaded on first use: the package's index exports this module as
 * `CircuitBreakerRedis`, so that a program on per-process breakers never loads the Redis module nor ioredis. Each
 * constructor loads `@ouroboros/circuit-breaker/CircuitBreaker/Redis` when it runs (the layers: when they are
 * built); import that module directly for the rest of its API (`parseRecord`).
 *
 * @since 0.1.0
 */
import { Data, Effect, Layer } from "effect"
import type * as CircuitBreaker from "../CircuitBreaker.js"
import { CircuitBreakerStore } from "../CircuitBreakerStore.js"
import type * as Redis from "./Redis.js"

/**
 * How to reach Redis.
 *
 * @since 0.1.0
 * @category models
 */
export type Options = Redis.Options

/**
 * The Redis store module could not be loaded (ioredis is not installed).
 *
 * @since 0.1.0
 * @category errors
 */
export class RedisStoreUnavailable extends Data.TaggedError("RedisStoreUnavailable")<{
  readonly message: string
  readonly cause: unknown
}> {}

/**
 * Loads the Redis store module, and with it ioredis.
 *
 * @since 0.1.0
 * @category constructors
 */
export const load: Effect.Effect<typeof Redis, RedisStoreUnavailable> = Effect.tryPromise({
  try: () => import("./Redis.js"),
  catch: (cause) =>
    new RedisStoreUnavailable({
      message: "Cannot load the Redis circuit-breaker store (is ioredis installed?)",
      cause
    })
})

// The constructors below keep the signatures they had when the index loaded the module eagerly: a module that cannot
// be loaded is a defect there (a deployment without ioredis that asks for Redis); `load` gives it as a typed error.
const loaded = Effect.orDie(load)

/**
 * Builds the Redis store; the connections close with the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): ReturnType<typeof Redis.make> =>
  Effect.flatMap(loaded, (module) => module.make(options))

/**
 * The Redis store.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStore = (options: Options = {}): Layer.Layer<CircuitBreakerStore> =>
  Layer.effect(CircuitBreakerStore, make(options))

/**
 * The breaker registry with state shared through Redis.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { CircuitBreaker, CircuitBreakerRedis } from "@ouroboros/circuit-breaker"
 * const live = CircuitBreakerRedis.layerRedis({ url: "redis://127.0.0.1:6379" }, {
 *   defaults: CircuitBreaker.defaultOptions
 * })
 */
export const layerRedis = (
  options: Options,
  registry: CircuitBreaker.RegistryOptions = {}
): Layer.Layer<CircuitBreaker.CircuitBreaker> =>
  Layer.unwrap(Effect.map(loaded, (module) => module.layerRedis(options, registry)))
