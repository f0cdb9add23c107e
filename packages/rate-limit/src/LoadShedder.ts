/**
 * A load shedder: when the process is saturated (too many requests in flight, or an event loop lagging behind), it
 * rejects ordinary requests while keeping a reserved share of capacity for critical ones (health probes, admin).
 *
 * @since 0.1.0
 */
import { HttpApiSchema } from "@effect/platform"
import { Config, Context, Duration, Effect, Layer, Schedule, Schema, type Scope } from "effect"
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
  HttpApiSchema.annotations({ status: 503, description: "The service is saturated" })
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
 * @category tags
 */
export class LoadShedder extends Context.Tag("@ouroboros/rate-limit/LoadShedder")<
  LoadShedder,
  {
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
    readonly unsafeTryAdmit: (priority: Priority) => boolean
    /** `Retry-After` seconds of a shed request. */
    readonly retryAfter: number
    /** Requests in flight. */
    readonly inFlight: Effect.Effect<number>
    /** `warn` while ordinary requests are being shed. */
    readonly status: Effect.Effect<Status>
  }
>() {}

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
  readonly retryAfter?: Duration.DurationInput | undefined
  /** Also shed ordinary requests while the event loop's p99 delay exceeds this (default: not checked). */
  readonly maxEventLoopDelay?: Duration.DurationInput | undefined
}

/**
 * Builds a load shedder; with `maxEventLoopDelay` a fiber samples the event loop every 500 ms for the scope's life.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<LoadShedder["Type"], never, Scope.Scope> =>
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
      yield* Effect.sync(() => {
        lagging = histogram.count > 0 && histogram.percentile(99) > limitNanos
        histogram.reset()
      }).pipe(Effect.repeat(Schedule.spaced("500 millis")), Effect.forkScoped)
    }
    const overloaded = new Overloaded({ detail: "The service is saturated; retry shortly", retryAfter })
    const unsafeTryAdmit = (priority: Priority) => {
      const cap = priority === "critical" ? max : lagging ? 0 : normalMax
      if (inFlight >= cap) return false
      inFlight++
      return true
    }
    const tryAdmit = (priority: Priority) => Effect.sync(() => unsafeTryAdmit(priority))
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
          Effect.zipRight(take(priority), Effect.ensuring(restore(effect), release))
        ),
      tryAdmit,
      release,
      unsafeTryAdmit,
      retryAfter,
      inFlight: Effect.sync(() => inFlight),
      status: Effect.sync(() => (lagging || inFlight >= normalMax ? "warn" : "pass"))
    })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<LoadShedder> => Layer.scoped(LoadShedder, make(options))

/**
 * - `LOAD_SHED_MAX_IN_FLIGHT` (1000): requests in flight at most.
 * - `LOAD_SHED_RESERVED` (0.1): share kept for critical requests.
 * - `LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS` (0 = not checked): shed ordinary requests above this event-loop p99 delay.
 *
 * @since 0.1.0
 * @category config
 */
export const config = Config.all({
  maxInFlight: Config.integer("LOAD_SHED_MAX_IN_FLIGHT").pipe(
    Config.withDefault(1000),
    Config.validate({ message: "must be a positive integer", validation: (n) => n > 0 }),
    Config.withDescription("Requests in flight at most, critical ones included")
  ),
  reserved: Config.number("LOAD_SHED_RESERVED").pipe(
    Config.withDefault(0.1),
    Config.validate({ message: "must be between 0 and 1", validation: (n) => n >= 0 && n < 1 }),
    Config.withDescription("Share of capacity kept for critical requests (health, admin)")
  ),
  maxEventLoopDelay: Config.integer("LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS").pipe(
    Config.withDefault(0),
    Config.map((ms) => (ms > 0 ? Duration.millis(ms) : undefined)),
    Config.withDescription("Shed ordinary requests while the event loop p99 delay exceeds this (0: off)")
  )
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<LoadShedder, import("effect/ConfigError").ConfigError> = Layer.scoped(
  LoadShedder,
  Effect.flatMap(config, make)
)
