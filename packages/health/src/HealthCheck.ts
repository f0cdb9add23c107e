/**
 * The health of the process and of what it depends on: a registry of checks that any Layer adds to, and the three
 * probes Kubernetes asks about (live, ready, startup), reported in the shape of draft-inadarei-api-health-check.
 *
 * Each check runs with its own timeout (a hanging check is a failed check once it passes), its result is cached for a
 * short time and concurrent probes share one run, so probes stay cheap however often they come.
 *
 * @since 0.1.0
 */
import {
  Cause,
  Clock,
  Config,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Option,
  Ref,
  Schema
} from "effect"
import type { Scope } from "effect"

/**
 * The status of a check or of a whole report: `pass` (healthy), `warn` (healthy, with concerns) or `fail`.
 *
 * @since 0.1.0
 * @category models
 */
export const Status = Schema.Literals(["pass", "warn", "fail"])

/**
 * @since 0.1.0
 * @category models
 */
export type Status = typeof Status.Type

/**
 * The probes: `live` (the process can serve), `ready` (send it traffic), `startup` (it has finished starting).
 *
 * @since 0.1.0
 * @category models
 */
export const Probe = Schema.Literals(["live", "ready", "startup"])

/**
 * @since 0.1.0
 * @category models
 */
export type Probe = typeof Probe.Type

/**
 * The lifecycle phase of the process: `starting` until the server is up, `serving`, then `draining` on shutdown.
 *
 * @since 0.1.0
 * @category models
 */
export const Phase = Schema.Literals(["starting", "serving", "draining"])

/**
 * @since 0.1.0
 * @category models
 */
export type Phase = typeof Phase.Type

/**
 * The result of one check, an element of `checks["component:measurement"]` in a report.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CheckResult = Schema.Struct({
  componentId: Schema.optionalKey(Schema.String),
  componentType: Schema.optionalKey(Schema.String),
  // Finite: JSON has no NaN or Infinity (`JSON.stringify` writes them as null), and a string such as "Infinity" stays
  // a string.
  observedValue: Schema.optionalKey(Schema.Union([Schema.Finite, Schema.String, Schema.Boolean])),
  observedUnit: Schema.optionalKey(Schema.String),
  status: Status,
  time: Schema.optionalKey(Schema.String),
  output: Schema.optionalKey(Schema.String)
}).annotate({ identifier: "HealthCheckResult", description: "The result of one health check" })

/**
 * @since 0.1.0
 * @category models
 */
export type CheckResult = typeof CheckResult.Type

/**
 * A health report (draft-inadarei-api-health-check): the overall `status`, notes on the phase, and the results of the
 * checks keyed `component:measurement`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const HealthReport = Schema.Struct({
  status: Status,
  version: Schema.optionalKey(Schema.String),
  releaseId: Schema.optionalKey(Schema.String),
  serviceId: Schema.optionalKey(Schema.String),
  description: Schema.optionalKey(Schema.String),
  notes: Schema.optionalKey(Schema.Array(Schema.String)),
  output: Schema.optionalKey(Schema.String),
  checks: Schema.Record(Schema.String, Schema.Array(CheckResult))
}).annotate({ identifier: "HealthReport", description: "A health report in the api-health-check format" })

/**
 * @since 0.1.0
 * @category models
 */
export type HealthReport = typeof HealthReport.Type

/**
 * What a check observed.
 *
 * @since 0.1.0
 * @category models
 */
export interface Observation {
  readonly status: Status
  readonly observedValue?: number | string | boolean
  readonly observedUnit?: string
  /** Shown for `warn` and `fail` only; keep it free of secrets. */
  readonly output?: string
}

/**
 * A health check. `run` may need services (`R`): `register` captures them when the check is registered.
 *
 * @since 0.1.0
 * @category models
 */
export interface Check<R = never> {
  /** The key of the result in a report: `component:measurement`, e.g. `postgres:responseTime`. */
  readonly name: string
  readonly componentId?: string
  /** `datastore`, `system`, `component` or any other word. */
  readonly componentType?: string
  /** A failing critical check fails the probe; a failing non-critical one makes it `warn`. */
  readonly critical: boolean
  /** A run still going after this is a failure (`timed out after …`). Default: the service's `defaultTimeout`. */
  readonly timeout?: Duration.Input
  /** How long a result is reused. Default: the service's `defaultCacheTtl`. */
  readonly cacheTtl?: Duration.Input
  /** The probes the check belongs to. Default: `["ready"]`. */
  readonly probes?: ReadonlyArray<Probe>
  /** Observes the component. A failure or a defect makes the result `fail` with an output that names only its tag. */
  readonly run: Effect.Effect<Observation, unknown, R>
}

/**
 * A `pass` observation.
 *
 * @since 0.1.0
 * @category constructors
 */
export const pass = (fields?: Omit<Observation, "status">): Observation => ({ ...fields, status: "pass" })

/**
 * A `warn` observation with an output.
 *
 * @since 0.1.0
 * @category constructors
 */
export const warn = (output: string, fields?: Omit<Observation, "status" | "output">): Observation => ({
  ...fields,
  status: "warn",
  output
})

/**
 * A `fail` observation with an output.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fail = (output: string, fields?: Omit<Observation, "status" | "output">): Observation => ({
  ...fields,
  status: "fail",
  output
})

/**
 * The health service.
 *
 * @since 0.1.0
 * @category tags
 */
export class HealthCheck extends Context.Service<
  HealthCheck,
  {
    /** Adds a check; it is removed when the scope closes. */
    readonly register: <R>(check: Check<R>) => Effect.Effect<void, never, Scope.Scope | R>
    /** Moves the process to another phase (the shutdown package sets `draining`). */
    readonly setPhase: (phase: Phase) => Effect.Effect<void>
    /** The current phase. */
    readonly phase: Effect.Effect<Phase>
    /** Runs (or reuses) the checks of a probe and aggregates them. */
    readonly report: (probe: Probe) => Effect.Effect<HealthReport>
  }
>()("@ouroboros/health/HealthCheck") {}

/**
 * Options of the service. Durations default to 2 seconds (timeout) and 1 second (cache).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly serviceId?: string | undefined
  readonly version?: string | undefined
  readonly releaseId?: string | undefined
  readonly description?: string | undefined
  readonly defaultTimeout?: Duration.Input | undefined
  readonly defaultCacheTtl?: Duration.Input | undefined
  /** Default `starting`: readiness fails until `setPhase("serving")`. */
  readonly initialPhase?: Phase | undefined
  /** Put the message of a failed check's error in its output (default false: only its tag, nothing that can leak). */
  readonly exposeErrors?: boolean | undefined
}

type EntryState =
  | { readonly _tag: "Idle" }
  | { readonly _tag: "Running"; readonly deferred: Deferred.Deferred<CheckResult> }
  | { readonly _tag: "Done"; readonly result: CheckResult; readonly at: number }

interface Entry {
  readonly check: Check<never>
  readonly timeout: Duration.Duration
  readonly ttl: number
  readonly probes: ReadonlySet<Probe>
  state: EntryState
  last: Status | undefined
}

const idle: EntryState = { _tag: "Idle" }

const describeCause = (cause: Cause.Cause<unknown>, expose: boolean): string => {
  if (Cause.hasInterruptsOnly(cause)) return "check interrupted"
  const failure = Cause.findErrorOption(cause)
  if (Option.isNone(failure)) return "check failed unexpectedly"
  const error = failure.value
  const tag = typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string"
    ? error._tag
    : undefined
  const message = expose
    ? error instanceof Error ? error.message : typeof error === "string" ? error : undefined
    : undefined
  const head = tag === undefined ? "check failed" : `check failed (${tag})`
  return message === undefined || message === "" ? head : `${head}: ${message}`
}

const rank: Record<Status, number> = { pass: 0, warn: 1, fail: 2 }
const worst = (a: Status, b: Status): Status => rank[b] > rank[a] ? b : a

/**
 * Makes the service. Shared runs of the checks live in the scope of the service.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<HealthCheck["Service"], never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const defaultTimeout = Duration.fromInputUnsafe(options.defaultTimeout ?? "2 seconds")
    const defaultTtl = Duration.toMillis(options.defaultCacheTtl ?? "1 second")
    const expose = options.exposeErrors ?? false
    const initial = options.initialPhase ?? "starting"
    const phase = yield* Ref.make<Phase>(initial)
    const served = yield* Ref.make(initial !== "starting")
    const entries = new Map<number, Entry>()
    let nextId = 0

    const execute = (entry: Entry): Effect.Effect<CheckResult> =>
      Effect.gen(function*() {
        const { check } = entry
        const run = Effect.withSpan(check.run, "HealthCheck.check", { attributes: { "health.check": check.name } })
        // The run is detached from the probe: a check stuck in an uninterruptible call (a driver waiting on a dead
        // socket) is reported as timed out when its timeout passes instead of holding the probe until it returns.
        const fiber = yield* Effect.forkDetach(Effect.exit(run), { startImmediately: true })
        const outcome = yield* Effect.timeoutOption(Fiber.join(fiber), entry.timeout).pipe(
          // Asks a late run to stop without waiting for it (a no-op once it has finished).
          Effect.ensuring(Effect.sync(() => fiber.interruptUnsafe()))
        )
        const now = yield* Clock.currentTimeMillis
        const observation: Observation = Option.match(outcome, {
          onNone: () => fail(`timed out after ${Duration.format(entry.timeout)}`),
          onSome: Exit.match({
            onFailure: (cause) => fail(describeCause(cause, expose)),
            onSuccess: (observation) => observation
          })
        })
        const result: CheckResult = {
          ...(check.componentId !== undefined ? { componentId: check.componentId } : {}),
          ...(check.componentType !== undefined ? { componentType: check.componentType } : {}),
          ...(observation.observedValue !== undefined ? { observedValue: observation.observedValue } : {}),
          ...(observation.observedUnit !== undefined ? { observedUnit: observation.observedUnit } : {}),
          status: observation.status,
          time: new Date(now).toISOString(),
          ...(observation.status !== "pass" && observation.output !== undefined ? { output: observation.output } : {})
        }
        const previous = entry.last
        entry.last = result.status
        entry.state = { _tag: "Done", result, at: now }
        if (previous !== result.status && (previous !== undefined || result.status !== "pass")) {
          const annotations = { check: check.name, status: result.status, critical: check.critical }
          const log = result.status === "pass"
            ? Effect.logInfo("Health check passes again")
            : Option.match(outcome, {
              onNone: () => Effect.logWarning(`Health check ${result.status}`),
              onSome: (exit) =>
                Exit.isFailure(exit)
                  ? Effect.logWarning(`Health check ${result.status}`, exit.cause)
                  : Effect.logWarning(`Health check ${result.status}`)
            })
          yield* Effect.annotateLogs(log, annotations)
        }
        return result
      }).pipe(
        Effect.onInterrupt(() => Effect.sync(() => (entry.state = idle))),
        Effect.annotateLogs({ service: "health" })
      )

    const fresh = (entry: Entry, now: number): CheckResult | undefined =>
      entry.state._tag === "Done" && now < entry.state.at + entry.ttl ? entry.state.result : undefined

    const resultOf = (entry: Entry, now: number): Effect.Effect<CheckResult> =>
      Effect.suspend(() => {
        const state = entry.state
        if (state._tag === "Running") return Deferred.await(state.deferred)
        const cached = fresh(entry, now)
        if (cached !== undefined) return Effect.succeed(cached)
        const deferred = Deferred.makeUnsafe<CheckResult>()
        entry.state = { _tag: "Running", deferred }
        // The run belongs to the service, not to the probe that started it: an impatient client that goes away
        // does not cancel the run the other probes wait for.
        // Started at once: a check that answers synchronously is done before the probe awaits it.
        return Effect.andThen(
          Effect.forkIn(Deferred.into(execute(entry), deferred), scope, { startImmediately: true }),
          Deferred.await(deferred)
        )
      })

    const register = <R>(check: Check<R>): Effect.Effect<void, never, Scope.Scope | R> =>
      Effect.flatMap(Effect.context<R>(), (context) => {
        const id = nextId++
        const entry: Entry = {
          check: { ...check, run: Effect.provideContext(check.run, context) },
          timeout: check.timeout === undefined ? defaultTimeout : Duration.fromInputUnsafe(check.timeout),
          ttl: check.cacheTtl === undefined ? defaultTtl : Duration.toMillis(check.cacheTtl),
          probes: new Set(check.probes ?? ["ready"]),
          state: idle,
          last: undefined
        }
        return Effect.acquireRelease(
          Effect.sync(() => void entries.set(id, entry)),
          () => Effect.sync(() => void entries.delete(id))
        )
      })

    const setPhase = (next: Phase): Effect.Effect<void> =>
      Effect.andThen(
        Ref.set(phase, next),
        next === "serving" ? Ref.set(served, true) : Effect.void
      ).pipe(
        Effect.andThen(Effect.logInfo(`Health phase: ${next}`)),
        Effect.annotateLogs({ service: "health" })
      )

    // Probes are not traced (a probe every few seconds would drown the real traces); check runs are.
    const report = (probe: Probe): Effect.Effect<HealthReport> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const selected = Array.from(entries.values()).filter((entry) => entry.probes.has(probe))
        const results: Array<CheckResult | undefined> = selected.map((entry) => fresh(entry, now))
        // The cheap path: every result is cached, nothing to fork.
        const pending: Array<Effect.Effect<void>> = []
        selected.forEach((entry, i) => {
          if (results[i] === undefined) {
            pending.push(Effect.map(resultOf(entry, now), (result) => void (results[i] = result)))
          }
        })
        const run = pending.length === 0
          ? Effect.void
          : pending.length === 1
          ? pending[0]!
          : Effect.all(pending, { concurrency: "unbounded", discard: true })
        return Effect.flatMap(run, () => aggregate(probe, selected, results as ReadonlyArray<CheckResult>))
      })

    const aggregate = (probe: Probe, selected: ReadonlyArray<Entry>, results: ReadonlyArray<CheckResult>) =>
      Effect.gen(function*() {
        const current = yield* Ref.get(phase)
        const hasServed = yield* Ref.get(served)
        let status: Status = "pass"
        const notes: Array<string> = []
        const failing: Array<string> = []
        const degraded: Array<string> = []
        const checks: Record<string, Array<CheckResult>> = {}
        for (let i = 0; i < selected.length; i++) {
          const entry = selected[i]!
          const result = results[i]!
          const name = entry.check.name
          ;(checks[name] ??= []).push(result)
          if (result.status === "fail" && entry.check.critical) {
            status = "fail"
            failing.push(name)
          } else if (result.status !== "pass") {
            status = worst(status, "warn")
            degraded.push(name)
          }
        }
        if (probe === "ready" && current !== "serving") {
          status = "fail"
          notes.push(current)
        }
        if (probe === "startup" && !hasServed) {
          status = "fail"
          notes.push("starting")
        }
        const output = [
          ...notes.map((note) => `the service is ${note}`),
          ...(failing.length > 0 ? [`failing: ${failing.join(", ")}`] : []),
          ...(degraded.length > 0 ? [`degraded: ${degraded.join(", ")}`] : [])
        ].join("; ")
        const health: HealthReport = {
          status,
          ...(options.version !== undefined ? { version: options.version } : {}),
          ...(options.releaseId !== undefined ? { releaseId: options.releaseId } : {}),
          ...(options.serviceId !== undefined ? { serviceId: options.serviceId } : {}),
          ...(options.description !== undefined ? { description: options.description } : {}),
          ...(notes.length > 0 ? { notes } : {}),
          ...(status !== "pass" && output !== "" ? { output } : {}),
          checks
        }
        return health
      })

    return HealthCheck.of({ register, setPhase, phase: Ref.get(phase), report })
  })

/**
 * The service as a Layer.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { HealthCheck } from "@ouroboros/health"
 * import { Effect, Layer } from "effect"
 *
 * const DiskCheck = Layer.effectDiscard(HealthCheck.register({
 *   name: "disk:free", componentType: "system", critical: false, timeout: "1 second",
 *   run: Effect.succeed(HealthCheck.pass({ observedValue: 42, observedUnit: "GiB" }))
 * }))
 * const Health = DiskCheck.pipe(Layer.provideMerge(HealthCheck.layer({ serviceId: "ouroboros" })))
 */
export const layer = (options?: Options): Layer.Layer<HealthCheck> => Layer.effect(HealthCheck, make(options))

/**
 * The configuration of the service (nest it, e.g. under `HEALTH`).
 *
 * | key | default | meaning |
 * | --- | --- | --- |
 * | `SERVICE_ID` | none | the serviceId of health reports |
 * | `VERSION` | none | the version of health reports |
 * | `RELEASE_ID` | none | the releaseId of health reports |
 * | `CHECK_TIMEOUT` | `2 seconds` | how long a health check may run before it counts as failed |
 * | `CACHE_TTL` | `1 second` | how long a health check result is reused by later probes |
 * | `EXPOSE_ERRORS` | `false` | whether the output of a failed check carries its error message (it may name hosts) |
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<{
  readonly serviceId: Option.Option<string>
  readonly version: Option.Option<string>
  readonly releaseId: Option.Option<string>
  readonly defaultTimeout: Duration.Duration
  readonly defaultCacheTtl: Duration.Duration
  readonly exposeErrors: boolean
}> = Config.all({
  serviceId: Config.option(Config.String("SERVICE_ID")),
  version: Config.option(Config.String("VERSION")),
  releaseId: Config.option(Config.String("RELEASE_ID")),
  defaultTimeout: Config.Duration("CHECK_TIMEOUT").pipe(Config.withDefault(Duration.seconds(2))),
  defaultCacheTtl: Config.Duration("CACHE_TTL").pipe(Config.withDefault(Duration.seconds(1))),
  exposeErrors: Config.Boolean("EXPOSE_ERRORS").pipe(Config.withDefault(false))
})

/**
 * The service configured from {@link config} (or the given configuration, e.g. `config` nested under `HEALTH`), with
 * extra options (e.g. a description) merged in.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { HealthCheck } from "@ouroboros/health"
 * import { Config } from "effect"
 * // HEALTH_SERVICE_ID, HEALTH_VERSION, HEALTH_CACHE_TTL, …
 * const HealthLive = HealthCheck.layerConfig({ serviceId: "api" }, Config.nested(HealthCheck.config, "HEALTH"))
 */
export const layerConfig = (
  options?: Options,
  settings: Config.Config<Config.Success<typeof config>> = config
): Layer.Layer<HealthCheck, Config.ConfigError> =>
  Layer.effect(
    HealthCheck,
    Effect.flatMap(settings, (values) =>
      make({
        ...options,
        serviceId: Option.getOrUndefined(values.serviceId) ?? options?.serviceId,
        version: Option.getOrUndefined(values.version) ?? options?.version,
        releaseId: Option.getOrUndefined(values.releaseId) ?? options?.releaseId,
        defaultTimeout: values.defaultTimeout,
        defaultCacheTtl: values.defaultCacheTtl,
        exposeErrors: values.exposeErrors
      }))
  )

/**
 * Registers a check with the service in context, for the scope. Any Layer can add its checks this way.
 *
 * @since 0.1.0
 * @category accessors
 * @example
 * import { HealthCheck } from "@ouroboros/health"
 * import { Effect, Layer } from "effect"
 * const CacheCheck = Layer.effectDiscard(HealthCheck.register({
 *   name: "cache:reachable", critical: false, run: Effect.succeed(HealthCheck.pass())
 * }))
 */
export const register = <R>(check: Check<R>): Effect.Effect<void, never, HealthCheck | Scope.Scope | R> =>
  Effect.flatMap(HealthCheck, (health) => health.register(check))

/**
 * A Layer that registers a check for its lifetime.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerCheck = <R>(check: Check<R>): Layer.Layer<never, never, HealthCheck | Exclude<R, Scope.Scope>> =>
  Layer.effectDiscard(register(check))

/**
 * Moves the service in context to another phase.
 *
 * @since 0.1.0
 * @category accessors
 */
export const setPhase = (phase: Phase): Effect.Effect<void, never, HealthCheck> =>
  Effect.flatMap(HealthCheck, (health) => health.setPhase(phase))

/**
 * The report of a probe from the service in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const report = (probe: Probe): Effect.Effect<HealthReport, never, HealthCheck> =>
  Effect.flatMap(HealthCheck, (health) => health.report(probe))

/**
 * The current phase of the service in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const phase: Effect.Effect<Phase, never, HealthCheck> = Effect.flatMap(HealthCheck, (health) => health.phase)

/**
 * Marks the service `serving` once built and `draining` when released. Put it last in the server's Layer graph (after
 * the HTTP server) so readiness turns on when everything is up and off first on shutdown.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerServing: Layer.Layer<never, never, HealthCheck> = Layer.effectDiscard(
  Effect.acquireRelease(setPhase("serving"), () => setPhase("draining"))
)
