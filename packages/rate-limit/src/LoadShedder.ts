/**
 * A load shedder: when the process is saturated (too many requests in flight, or an event loop lagging behind), it
 * rejects ordinary requests while keeping a reserved share of capacity for critical ones (health probes, admin).
 *
 * @since 0.1.0
 */
import { Config, Context, Duration, Effect, Layer, Schema, type Scope } from "effect"
import { monitorEventLoopDelay } from "node:perf_hooks"
import type { Status } from "./RateLimiterStore.js"

/**
 * The process is saturated and the request was shed. `retryAfter` is in seconds.
 *
 * @since 0.1.0
 * @category errors
 */
export class Overloaded extends Schema.TaggedError<Overloaded>()(
  "Overloaded",
  { detail: Schema.String, retryAfter: Schema.Number },
  { httpApiStatus: 503, description: "The service is saturated" }
) {}

/**
 * Every error of this module.
 *
 * @since 0.1.0
 * @category errors
 */
export type LoadShedderError = Overloaded

/**
 * `critical` requests may use the whole capacity, `normal` ones all but the reserved share.
 *
 * @since 0.1.0
 * @category models
 */
export type Priority = "critical" | "normal"

/**
 * The load shedder.
 *
 * @since 0.1.0
 * @category services
 */
export class LoadShedder extends Context.Service<LoadShedder, {
  /** Admits a request until the scope closes, or fails with `Overloaded`. */
  readonly admit: (priority: Priority) => Effect.Effect<void, Overloaded, Scope.Scope>
  /** Runs `effect` as an admitted request. */
  readonly run: (
    priority: Priority
  ) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | Overloaded, R>
  /** Admits without a scope: `false` when shed. Pair a `true` with `release`. */
  readonly tryAdmit: (priority: Priority) => Effect.Effect<boolean>
  /** Ends a request admitted by `tryAdmit`. */
  readonly release: Effect.Effect<void>
  /** `tryAdmit`, synchronously (for hot paths already inside a fiber step). */
  readonly tryAdmitUnsafe: (priority: Priority) => boolean
  /** `Retry-After` seconds of a shed request. */
  readonly retryAfter: number
  /** Requests in flight. */
  readonly inFlight: Effect.Effect<number>
  /** `warn` while ordinary requests are being shed. */
  readonly status: Effect.Effect<Status>
}>()("@ouroboros/rate-limit/LoadShedder") {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Requests in flight at most (critical ones included). */
  readonly maxInFlight: number
  /** Share of `maxInFlight` kept for critical requests (default 0.1). */
  readonly reserved?: number | undefined
  /** `Retry-After` of a shed request (default 1 second). */
  readonly retryAfter?: Duration.Input | undefined
  /** Also shed ordinary requests while the event loop's p99 delay exceeds this (default: not checked). */
  readonly maxEventLoopDelay?: Duration.Input | undefined
}

/**
 * Builds a load shedder; with `maxEventLoopDelay` a fiber samples the event loop every 500 ms for the scope's life.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<LoadShedder["Service"], never, Scope.Scope> =>
  Effect.gen(function*() {
    const max = options.maxInFlight
    const normalMax = Math.max(0, Math.floor(max * (1 - (options.reserved ?? 0.1))))
    const retryAfter = Math.max(1, Math.ceil(Duration.toSeconds(options.retryAfter ?? "1 second")))
    let inFlight = 0
    let lagging = false
    if (options.maxEventLoopDelay !== undefined) {
      const limitNanos = Duration.toMillis(options.maxEventLoopDelay) * 1e6
      const histogram = yield* Effect.acquireRelease(
        Effect.sync(() => {
          const h = monitorEventLoopDelay({ resolution: 10 })
          h.enable()
          return h
        }),
        (h) => Effect.sync(() => h.disable())
      )
      // Each sample covers the 500 ms before it, the first one included: a lag before the first sample is not reset
      // away unseen.
      yield* Effect.sleep("500 millis").pipe(
        Effect.andThen(Effect.sync(() => {
          lagging = histogram.count > 0 && histogram.percentile(99) > limitNanos
          histogram.reset()
        })),
        Effect.forever,
        Effect.forkScoped
      )
    }
    const overloaded = new Overloaded({ detail: "The service is saturated; retry shortly", retryAfter })
    const tryAdmitUnsafe = (priority: Priority) => {
      const cap = priority === "critical" ? max : lagging ? 0 : normalMax
      if (inFlight >= cap) return false
      inFlight++
      return true
    }
    const tryAdmit = (priority: Priority) => Effect.sync(() => tryAdmitUnsafe(priority))
    const take = (priority: Priority) =>
      Effect.flatMap(tryAdmit(priority), (ok) => (ok ? Effect.void : Effect.fail(overloaded)))
    const release = Effect.sync(() => {
      inFlight--
    })
    const admit = (priority: Priority) => Effect.acquireRelease(take(priority), () => release)
    return LoadShedder.of({
      admit,
      run: (priority) => (effect) =>
        Effect.uninterruptibleMask((restore) =>
          Effect.andThen(take(priority), Effect.ensuring(restore(effect), release))
        ),
      tryAdmit,
      release,
      tryAdmitUnsafe,
      retryAfter,
      inFlight: Effect.sync(() => inFlight),
      status: Effect.sync(() => (lagging || inFlight >= normalMax ? "warn" : "pass"))
    })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<LoadShedder> => Layer.effect(LoadShedder, make(options))

/**
 * - `LOAD_SHED_MAX_IN_FLIGHT` (1000, a positive integer): requests in flight at most, critical ones included.
 * - `LOAD_SHED_RESERVED` (0.1, from 0 up to but not including 1): share of capacity kept for critical requests
 *   (health, admin).
 * - `LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS` (0 = not checked): shed ordinary requests while the event loop's p99 delay
 *   exceeds this.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  maxInFlight: Config.schema(
    Schema.Int.check(Schema.isGreaterThan(0, { message: "must be a positive integer" })),
    "LOAD_SHED_MAX_IN_FLIGHT"
  ).pipe(Config.withDefault(1000)),
  reserved: Config.schema(
    Schema.Finite.check(
      Schema.isBetween({ minimum: 0, maximum: 1, exclusiveMaximum: true }, { message: "must be between 0 and 1" })
    ),
    "LOAD_SHED_RESERVED"
  ).pipe(Config.withDefault(0.1)),
  maxEventLoopDelay: Config.Int("LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS").pipe(
    Config.withDefault(0),
    Config.map((ms) => (ms > 0 ? Duration.millis(ms) : undefined))
  )
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<LoadShedder, Config.ConfigError> = Layer.effect(
  LoadShedder,
  Effect.flatMap(config, make)
)
