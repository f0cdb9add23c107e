/**
 * Graceful shutdown. On SIGTERM or SIGINT the service turns not-ready at once, keeps serving for a drain period so
 * load balancers stop sending traffic, then stops accepting connections, waits for in-flight requests up to a
 * timeout, interrupts (and logs) what is left, releases every resource in reverse order of acquisition with a bound,
 * and exits with a code that says how it went. A second signal exits at once.
 *
 * `run` replaces `Layer.launch` + `NodeRuntime.runMain`: `runMain` interrupts the program on the first signal, so the
 * server's own shutdown stops accepting at once and gives running requests `gracefulShutdownTimeout`, with no drain
 * period while readiness fails and no bound on releasing resources. Here nothing is released before the requests are
 * done, because the whole drain happens before the application's scope closes.
 *
 * @since 0.1.0
 */
import {
  Cause,
  Config,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Logger,
  Option,
  Ref,
  Schema,
  Scope,
  Stream,
  SubscriptionRef
} from "effect"
import * as InFlight from "./InFlight.js"

/**
 * Finalizers run uninterruptibly, so a plain timeout would wait for a stuck one forever: run it in a fiber of its own
 * and, if it will not stop when the wait for it is interrupted, leave it behind in the background.
 */
const abandonable = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.interruptible(
    Effect.flatMap(Effect.forkDetach(effect), (fiber) =>
      Effect.onInterrupt(Fiber.join(fiber), () => Effect.sync(() => fiber.interruptUnsafe())))
  )

/**
 * `serving` until a signal; `draining` (not ready, still serving) for the drain period; `stopping` once the server
 * no longer accepts connections and in-flight requests are awaited; `stopped` when they are done or cut.
 *
 * @since 0.1.0
 * @category models
 */
export type Phase = "serving" | "draining" | "stopping" | "stopped"

/**
 * Exit codes of {@link run}.
 *
 * @since 0.1.0
 * @category constants
 */
export const ExitCode = {
  /** Drained cleanly: every request completed, every finalizer ran in time. */
  ok: 0,
  /** The application failed to start. */
  startupFailed: 1,
  /** Requests were still running at `SHUTDOWN_TIMEOUT_MS` and were cut (they are logged with correlation ids). */
  requestsCut: 3,
  /** Releasing resources took longer than `SHUTDOWN_FINALIZER_TIMEOUT_MS`. */
  finalizersTimedOut: 4,
  /** A second SIGINT: exit at once. */
  secondSigint: 130,
  /** A second SIGTERM: exit at once. */
  secondSigterm: 143
} as const

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** How long to keep serving after the signal, while readiness reports 503. */
  readonly drain: Duration.Input
  /** How long to wait for in-flight requests once the server stops accepting connections. */
  readonly timeout: Duration.Input
  /** Bound on each stop hook and on releasing all resources. */
  readonly finalizerTimeout: Duration.Input
  /** Install SIGTERM/SIGINT listeners (off in unit tests). */
  readonly signals: boolean
}

const millis = (name: string, defaultValue: number): Config.Config<Duration.Duration> =>
  Config.schema(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0, { message: "must be >= 0" })), name).pipe(
    Config.withDefault(defaultValue),
    Config.map(Duration.millis)
  )

/**
 * The shutdown options from the environment:
 *
 * | Variable | Default | Meaning |
 * | --- | --- | --- |
 * | `SHUTDOWN_DRAIN_MS` | 5000 | milliseconds to keep serving after SIGTERM while readiness is 503 |
 * | `SHUTDOWN_TIMEOUT_MS` | 20000 | milliseconds to wait for in-flight requests after the drain |
 * | `SHUTDOWN_FINALIZER_TIMEOUT_MS` | 3000 | milliseconds allowed for releasing resources (pools, exporters) at exit |
 *
 * Each must be an integer >= 0. With the 1 s trace flush of `@ouroboros/correlation`, the defaults fit together
 * under Kubernetes' default 30 s termination grace period.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  drain: millis("SHUTDOWN_DRAIN_MS", 5000),
  timeout: millis("SHUTDOWN_TIMEOUT_MS", 20000),
  finalizerTimeout: millis("SHUTDOWN_FINALIZER_TIMEOUT_MS", 3000),
  signals: Config.succeed(true)
})

/**
 * The shutdown coordinator.
 *
 * @since 0.1.0
 * @category services
 */
export class Shutdown extends Context.Service<Shutdown, {
  readonly options: Options
  readonly phase: Effect.Effect<Phase>
  /** The current phase, then every change: what a health check follows to report readiness. */
  readonly phases: Stream.Stream<Phase>
  /** `true` from the signal on: readiness must fail, responses carry `Connection: close`. */
  readonly isDraining: Effect.Effect<boolean>
  /** Starts the shutdown (what a signal does); later calls are ignored. */
  readonly trigger: (reason: string) => Effect.Effect<void>
  /** Waits for the trigger and yields its reason. */
  readonly triggered: Effect.Effect<string>
  /** Runs `hook` when draining begins (for example, flip readiness). Removed when the scope closes. */
  readonly onDrain: (hook: Effect.Effect<void>) => Effect.Effect<void, never, Scope.Scope>
  /**
   * Runs `hook` when the drain period ends, while in-flight requests are awaited (stop accepting connections,
   * interrupt background jobs). Each hook is bounded by `finalizerTimeout`. Removed when the scope closes.
   */
  readonly onStop: (name: string, hook: Effect.Effect<void>) => Effect.Effect<void, never, Scope.Scope>
  /**
   * The drain sequence (without releasing resources): draining → wait `drain` → stopping (stop hooks) → await
   * in-flight requests up to `timeout` → interrupt the rest → stopped. Yields `ExitCode.ok` or
   * `ExitCode.requestsCut`.
   */
  readonly drain: Effect.Effect<number>
}>()("@ouroboros/shutdown/Shutdown") {}

/**
 * Builds the coordinator; with `signals` it owns the process' SIGTERM and SIGINT listeners for the scope's lifetime.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Shutdown["Service"], never, Scope.Scope | InFlight.InFlight> =>
  Effect.gen(function*() {
    const inFlight = yield* InFlight.InFlight
    const phase = yield* SubscriptionRef.make<Phase>("serving")
    const reason = yield* Deferred.make<string>()
    const drainHooks = yield* Ref.make<ReadonlyArray<Effect.Effect<void>>>([])
    const stopHooks = yield* Ref.make<ReadonlyArray<readonly [string, Effect.Effect<void>]>>([])

    const trigger = (why: string) => Effect.asVoid(Deferred.succeed(reason, why))

    const register = <A>(ref: Ref.Ref<ReadonlyArray<A>>, item: A) =>
      Effect.acquireRelease(
        Ref.update(ref, (items) => [...items, item]),
        () => Ref.update(ref, (items) => items.filter((i) => i !== item))
      )

    if (options.signals) {
      let received = 0
      const listener = (signal: NodeJS.Signals) => {
        received++
        if (received > 1) {
          // A second signal means "now": no drain, no finalizers.
          process.exit(signal === "SIGINT" ? ExitCode.secondSigint : ExitCode.secondSigterm)
        }
        Deferred.doneUnsafe(reason, Exit.succeed(signal))
      }
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          process.on("SIGTERM", listener)
          process.on("SIGINT", listener)
        }),
        () =>
          Effect.sync(() => {
            process.off("SIGTERM", listener)
            process.off("SIGINT", listener)
          })
      )
    }

    const bounded = (name: string, hook: Effect.Effect<void>) =>
      abandonable(hook).pipe(
        Effect.timeoutOrElse({
          duration: options.finalizerTimeout,
          orElse: () => Effect.logWarning(`Shutdown hook "${name}" timed out`)
        }),
        Effect.catchCause((cause) => Effect.logWarning(`Shutdown hook "${name}" failed`, cause))
      )

    const drain = Effect.gen(function*() {
      yield* SubscriptionRef.set(phase, "draining")
      const drainMillis = Duration.toMillis(options.drain)
      yield* Effect.logInfo(`Shutdown: draining for ${drainMillis} ms (readiness fails, still serving)`).pipe(
        Effect.annotateLogs({ inFlight: yield* inFlight.count })
      )
      yield* Effect.forEach(yield* Ref.get(drainHooks), (hook) => bounded("drain", hook), { discard: true })
      yield* Effect.sleep(options.drain)

      yield* SubscriptionRef.set(phase, "stopping")
      yield* Effect.logInfo("Shutdown: stopped accepting connections, waiting for in-flight requests").pipe(
        Effect.annotateLogs({ inFlight: yield* inFlight.count, timeoutMillis: Duration.toMillis(options.timeout) })
      )
      const hooks = yield* Ref.get(stopHooks)
      const [, idle] = yield* Effect.all([
        Effect.forEach(hooks, ([name, hook]) => bounded(name, hook), { concurrency: "unbounded", discard: true }),
        inFlight.awaitIdle(options.timeout)
      ], { concurrency: 2 })

      let code: number = ExitCode.ok
      if (!idle) {
        const cut = yield* inFlight.interruptAll(options.finalizerTimeout)
        if (cut.length > 0) {
          code = ExitCode.requestsCut
          const timeoutMillis = Duration.toMillis(options.timeout)
          yield* Effect.logError(`Shutdown: ${cut.length} request(s) cut by the ${timeoutMillis} ms timeout`)
            .pipe(Effect.annotateLogs({ correlationIds: cut.map((r) => r.correlationId ?? "none").join(",") }))
        }
      }
      yield* SubscriptionRef.set(phase, "stopped")
      return code
    })

    return Shutdown.of({
      options,
      phase: SubscriptionRef.get(phase),
      phases: SubscriptionRef.changes(phase),
      isDraining: Effect.map(SubscriptionRef.get(phase), (p) => p !== "serving"),
      trigger,
      triggered: Deferred.await(reason),
      onDrain: (hook) => register(drainHooks, hook),
      onStop: (name, hook) => register(stopHooks, [name, hook] as const),
      drain
    })
  })

/**
 * The coordinator and its in-flight tracker.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Shutdown | InFlight.InFlight> =>
  Layer.effect(Shutdown, make(options)).pipe(Layer.provideMerge(InFlight.layer))

/**
 * {@link layer} from `SHUTDOWN_*` configuration.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  overrides?: Partial<Options>
): Layer.Layer<Shutdown | InFlight.InFlight, Config.ConfigError> =>
  Layer.unwrap(Effect.map(config, (options) => layer({ ...options, ...overrides })))

/**
 * Adds a finalizer to the current scope bounded by `timeout` (default: half the coordinator's `finalizerTimeout`,
 * which bounds all finalizers together): when it overruns it is abandoned with a warning, so one stuck resource
 * neither holds the exit past the grace period nor keeps the resources acquired before it from being released.
 *
 * @since 0.1.0
 * @category finalizers
 * @example
 * import { Shutdown } from "@ouroboros/shutdown"
 * import { Effect } from "effect"
 * const audit = Effect.gen(function*() {
 *   yield* Shutdown.addFinalizer("audit flush", Effect.log("flushed"))
 * })
 */
export const addFinalizer = (
  name: string,
  finalizer: Effect.Effect<void>,
  timeout?: Duration.Input
): Effect.Effect<void, never, Scope.Scope | Shutdown> =>
  Effect.flatMap(Shutdown, (shutdown) => {
    const budget = timeout ?? Duration.times(Duration.fromInputUnsafe(shutdown.options.finalizerTimeout), 0.5)
    return Effect.addFinalizer(() =>
      abandonable(finalizer).pipe(
        Effect.timeoutOption(budget),
        Effect.flatMap(Option.match({
          onNone: () => Effect.logWarning(`Finalizer "${name}" timed out`),
          onSome: () => Effect.logDebug(`Finalizer "${name}" done`)
        })),
        Effect.catchCause((cause) => Effect.logWarning(`Finalizer "${name}" failed`, cause))
      )
    )
  })

/**
 * The whole life of an application: build `main` (its resources and its server), serve until a signal, drain, then
 * release `main`'s scope (every finalizer in reverse order of acquisition) within `finalizerTimeout`. Yields the exit
 * code (see {@link ExitCode}).
 *
 * @since 0.1.0
 * @category running
 */
export const lifecycle = <A, E, R>(
  main: Layer.Layer<A, E, R>
): Effect.Effect<number, never, Shutdown | InFlight.InFlight | Exclude<R, Shutdown | InFlight.InFlight>> =>
  Effect.gen(function*() {
    const shutdown = yield* Shutdown
    const scope = yield* Scope.make()
    const built = yield* Effect.exit(Layer.buildWithScope(main, scope))
    if (Exit.isFailure(built)) {
      yield* Effect.logError(`Startup failed: ${oneLine(built.cause)}`)
      yield* abandonable(Scope.close(scope, built)).pipe(Effect.timeoutOption(shutdown.options.finalizerTimeout))
      return ExitCode.startupFailed
    }
    const reason = yield* shutdown.triggered
    yield* Effect.logInfo(`Shutdown: ${reason} received`)
    let code = yield* shutdown.drain
    const released = yield* abandonable(Scope.close(scope, Exit.void)).pipe(
      Effect.timeoutOption(shutdown.options.finalizerTimeout)
    )
    if (Option.isNone(released)) {
      yield* Effect.logError(
        `Shutdown: releasing resources took over ${
          Duration.toMillis(shutdown.options.finalizerTimeout)
        } ms, exiting anyway`
      )
      if (code === ExitCode.ok) code = ExitCode.finalizersTimedOut
    }
    yield* Effect.logInfo(`Shutdown: done, exit code ${code}`)
    return code
  }) as Effect.Effect<number, never, Shutdown | InFlight.InFlight | Exclude<R, Shutdown | InFlight.InFlight>>

const oneLine = (cause: Cause.Cause<unknown>): string => {
  const describe = (error: unknown, depth: number): string => {
    if (!(error instanceof Error)) return String(error)
    // An error that only wraps another (a ServeError around EADDRINUSE, say) is named by what it wraps.
    if (error.message === "" && depth < 3 && "cause" in error) {
      return `${error.name}: ${describe(error.cause, depth + 1)}`
    }
    return `${error.name}: ${error.message}`
  }
  const message = describe(Cause.squash(cause), 0)
  return message.split("\n")[0] ?? message
}

/**
 * What {@link run} logs with when it is given no `runtime`: logfmt lines on stdout
 * (`timestamp=… level=INFO fiber=#3 message="Shutdown: SIGTERM received"`), the lines Effect 3's default logger
 * wrote, which log collectors of existing deployments parse.
 */
const defaultRuntime: Layer.Layer<never> = Logger.layer([Logger.consoleLogFmt])

/**
 * Runs an application with graceful shutdown and exits the process with the resulting code. `runtime` provides
 * what `main` needs from outside (a logger layer, typically; without one, logs are logfmt lines on stdout); the
 * shutdown options come from `SHUTDOWN_*`.
 *
 * The process stays alive while the application serves: Effect 4 keeps it alive while a fiber waits, here for the
 * signal.
 *
 * @since 0.1.0
 * @category running
 * @example
 * import { Shutdown, ShutdownHttp } from "@ouroboros/shutdown"
 * import { HttpRouter, HttpServerResponse } from "effect/http"
 * import { Layer } from "effect"
 *
 * const Routes = HttpRouter.add("GET", "/", HttpServerResponse.text("hi"))
 * const Main = HttpRouter.serve(Routes, { middleware: ShutdownHttp.middleware, disableLogger: true }).pipe(
 *   Layer.provide(ShutdownHttp.layerServer({ port: 8080 }))
 * )
 * Shutdown.run(Main)
 */
export const run = <A, E>(
  main: Layer.Layer<A, E, Shutdown | InFlight.InFlight>,
  options?: {
    readonly runtime?: Layer.Layer<never> | undefined
    readonly overrides?: Partial<Options> | undefined
    readonly exit?: ((code: number) => void) | undefined
  }
): void => {
  const exit = options?.exit ?? ((code: number) => process.exit(code))
  const program = lifecycle(main).pipe(
    Effect.provide(layerConfig(options?.overrides)),
    Effect.catchCause((cause) =>
      Effect.as(Effect.logError(`Startup failed: ${oneLine(cause)}`), ExitCode.startupFailed as number)
    ),
    Effect.provide(options?.runtime ?? defaultRuntime)
  )
  Effect.runFork(program).addObserver((result) => {
    exit(Exit.isSuccess(result) ? result.value : ExitCode.startupFailed)
  })
}
