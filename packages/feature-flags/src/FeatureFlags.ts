/**
 * Feature flags: typed evaluation of flags in flagd's format, per-tenant overrides, percentage rollouts and A/B
 * variants by consistent hashing, and a kill switch that beats every rule.
 *
 * Evaluation is flagd's own (`@openfeature/flagd-core`: JsonLogic targeting with `fractional`, `sem_ver`,
 * `starts_with`, `ends_with` and `$ref` evaluators). Before it runs, a kill switch is looked up (it serves the kill's
 * variant, with reason `DISABLED`: by default the `false` variant of a boolean flag, else the flag's
 * `defaultVariant`), then the tenant's override (reason `TARGETING_MATCH`). An evaluation never fails: a missing flag, a value of the wrong type, a JSON value that does
 * not decode or a rule that does not compile gives the caller's default with reason `ERROR` and OpenFeature's error
 * code (`FLAG_NOT_FOUND`, `TYPE_MISMATCH`, `PARSE_ERROR`, `GENERAL`).
 *
 * Flags come from a `FlagProvider` (memory, a flag file, PostgreSQL, or a stack of them); this service follows its
 * changes and recompiles, so an evaluation is a synchronous map lookup plus flagd's rule.
 *
 * Every evaluation counts in `feature_flag_evaluations_total{flag, variant, reason}`, for A/B analysis.
 *
 * @since 0.1.0
 */
import {
  ErrorCode,
  type EvaluationContext as OpenFeatureContext,
  type FlagMetadata,
  type FlagValue,
  type FlagValueType,
  StandardResolutionReasons
} from "@openfeature/core"
import { Text } from "@ouroboros/kernel"
import {
  Config,
  Context,
  Duration,
  Effect,
  Layer,
  Metric,
  Option,
  PubSub,
  Schema,
  type Scope,
  Semaphore,
  Stream,
  SubscriptionRef
} from "effect"
import type { SqlClient } from "effect/sql"
import * as EvaluationContext from "./EvaluationContext.js"
import * as FlagAudit from "./FlagAudit.js"
import * as FlagDefinition from "./FlagDefinition.js"
import * as FlagProvider from "./FlagProvider.js"
import * as FlagProviderFile from "./FlagProvider/File.js"
import * as FlagProviderSql from "./FlagProvider/Sql.js"
import * as Evaluator from "./internal/evaluator.js"
import { own } from "./internal/records.js"

// -----------------------------------------------------------------------------
// flags
// -----------------------------------------------------------------------------

/**
 * A typed flag: its key, the type of its variants, the value the caller falls back to, and (for JSON flags) how its
 * value decodes.
 *
 * @since 0.1.0
 * @category models
 */
export interface Flag<A> {
  readonly key: string
  readonly type: FlagValueType
  readonly defaultValue: A
  /** For JSON flags: the decoded value, or why it does not decode. */
  readonly decode?:
    | ((value: unknown) => { readonly ok: true; readonly value: A } | {
      readonly ok: false
      readonly message: string
    })
    | undefined
}

/**
 * A boolean flag.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * import { FeatureFlags } from "@ouroboros/feature-flags"
 * const NewSearch = FeatureFlags.boolean("new-search", false)
 */
export const boolean = (key: string, defaultValue: boolean): Flag<boolean> => ({ key, type: "boolean", defaultValue })

/**
 * A string flag.
 *
 * @since 0.1.0
 * @category constructors
 */
export const string = <A extends string = string>(key: string, defaultValue: A): Flag<A> => ({
  key,
  type: "string",
  defaultValue
})

/**
 * A number flag.
 *
 * @since 0.1.0
 * @category constructors
 */
export const number = (key: string, defaultValue: number): Flag<number> => ({ key, type: "number", defaultValue })

/**
 * A JSON (object) flag whose value decodes with `schema`. A value that does not decode gives the default with
 * `TYPE_MISMATCH`. Decoded values are cached per variant value, so a hot flag decodes once per change.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * import { FeatureFlags } from "@ouroboros/feature-flags"
 * import { Schema } from "effect"
 * const Limits = FeatureFlags.json("ask-limits", Schema.Struct({ topK: Schema.Int }), { topK: 5 })
 */
export const json = <A>(key: string, schema: Schema.ConstraintDecoder<A>, defaultValue: A): Flag<A> => {
  const decodeUnknown = Schema.decodeUnknownResult(schema)
  const cache = new WeakMap<
    object,
    { readonly ok: true; readonly value: A } | { readonly ok: false; readonly message: string }
  >()
  const decode = (value: unknown) => {
    const cached = typeof value === "object" && value !== null ? cache.get(value) : undefined
    if (cached !== undefined) return cached
    let outcome: { readonly ok: true; readonly value: A } | { readonly ok: false; readonly message: string }
    try {
      const result = decodeUnknown(value)
      outcome = result._tag === "Success"
        ? { ok: true, value: result.success }
        : { ok: false, message: result.failure.message }
    } catch (error) {
      outcome = { ok: false, message: error instanceof Error ? error.message : String(error) }
    }
    if (typeof value === "object" && value !== null) cache.set(value, outcome)
    return outcome
  }
  return { key, type: "object", defaultValue, decode }
}

/**
 * The details of an evaluation, as OpenFeature defines them: the value, the variant, the reason, and on error its
 * code and message.
 *
 * @since 0.1.0
 * @category models
 */
export interface EvaluationDetails<A> {
  readonly flagKey: string
  readonly value: A
  readonly variant?: string | undefined
  /** `STATIC`, `DEFAULT`, `TARGETING_MATCH`, `DISABLED` or `ERROR` (OpenFeature's reasons). */
  readonly reason: string
  readonly errorCode?: ErrorCode | undefined
  readonly errorMessage?: string | undefined
  readonly flagMetadata: FlagMetadata
}

/**
 * OpenFeature's `ResolutionDetails` of one evaluation (no `undefined` members).
 *
 * @since 0.1.0
 * @category models
 */
export type Resolution<T> = Evaluator.Resolution<T>

/**
 * The flags whose evaluations may have changed, and the state they come from.
 *
 * @since 0.1.0
 * @category models
 */
export interface FlagsChanged {
  readonly keys: ReadonlyArray<string>
  readonly state: FlagProvider.FlagState
}

/**
 * What an operator sees of a flag: its definition, where it comes from, its kill switch and its tenant overrides.
 *
 * @since 0.1.0
 * @category schemas
 */
export const FlagView = Schema.Struct({
  key: Schema.String,
  source: Schema.String,
  definition: Schema.Union([FlagDefinition.Flag, Schema.Record(Schema.String, Schema.Json)]),
  kill: Schema.optionalKey(FlagProvider.Kill),
  overrides: Schema.Record(Schema.String, FlagProvider.Override)
}).annotate({ identifier: "FeatureFlag" })

/**
 * @since 0.1.0
 * @category models
 */
export type FlagView = typeof FlagView.Type

/**
 * Who makes a change and why (kept with kills and overrides, and given to the audit hook).
 *
 * @since 0.1.0
 * @category models
 */
export interface ChangeBy {
  readonly actor: string
  readonly reason?: string | undefined
}

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/**
 * No flag (or no override of the tenant) with this key.
 *
 * @since 0.1.0
 * @category errors
 */
export class FlagNotFound extends Schema.TaggedError<FlagNotFound>()("FlagNotFound", {
  key: Schema.String,
  detail: Schema.String
}) {}

/**
 * The change does not hold: a definition flagd would refuse, or a variant the flag does not have.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidFlag extends Schema.TaggedError<InvalidFlag>()("InvalidFlag", {
  key: Schema.String,
  detail: Schema.String,
  issues: Schema.Array(FlagDefinition.Issue)
}) {}

/**
 * The change conflicts with the current state: the flags cannot be written here (`read-only`, a flag file), or the
 * new definition drops a variant a kill switch or an override still serves (`variant-in-use`).
 *
 * @since 0.1.0
 * @category errors
 */
export class FlagConflict extends Schema.TaggedError<FlagConflict>()("FlagConflict", {
  key: Schema.String,
  reason: Schema.Literals(["read-only", "variant-in-use"]),
  detail: Schema.String
}) {}

/**
 * Every error of the service's changes (evaluations never fail).
 *
 * @since 0.1.0
 * @category errors
 */
export type FeatureFlagsError = FlagNotFound | InvalidFlag | FlagConflict

// -----------------------------------------------------------------------------
// service
// -----------------------------------------------------------------------------

/**
 * The feature flag service.
 *
 * @since 0.1.0
 * @category tags
 */
export class FeatureFlags extends Context.Service<FeatureFlags, {
  /** Evaluates a flag for the current evaluation context, with `context` on top of it. Never fails. */
  readonly details: <A>(flag: Flag<A>, context?: EvaluationContext.EvaluationContext) => Effect.Effect<
    EvaluationDetails<A>
  >
  /** Evaluates a flag for exactly `context`, synchronously. Never throws. */
  readonly detailsSync: <A>(flag: Flag<A>, context: EvaluationContext.EvaluationContext) => EvaluationDetails<A>
  /**
   * OpenFeature's resolution (`ResolutionDetails`) on a flat OpenFeature context: what the OpenFeature provider
   * calls. Never throws.
   */
  readonly resolve: <T extends FlagValue>(
    type: FlagValueType,
    key: string,
    defaultValue: T,
    context: OpenFeatureContext
  ) => Resolution<T>
  /** The state evaluations currently use. */
  readonly state: Effect.Effect<FlagProvider.FlagState>
  /** Every change of the flags, with the keys whose evaluations may differ (from when the stream starts). */
  readonly changes: Stream.Stream<FlagsChanged>
  /** Subscribes at once: the stream has every change made after this effect returns (until the scope closes). */
  readonly subscribe: Effect.Effect<Stream.Stream<FlagsChanged>, never, Scope.Scope>
  /** The health of the flag sources (and of the merged flag set). */
  readonly status: Effect.Effect<ReadonlyArray<FlagProvider.Status>>
  /** The current statuses, then every change. */
  readonly statusChanges: Stream.Stream<ReadonlyArray<FlagProvider.Status>>
  /** Looks at the sources now and recompiles; current when it returns. */
  readonly refresh: Effect.Effect<void>
  /** Every flag, for operators. */
  readonly list: Effect.Effect<ReadonlyArray<FlagView>>
  /** One flag, for operators. */
  readonly get: (key: string) => Effect.Effect<FlagView, FlagNotFound>
  /** Creates or replaces a flag (validated as strictly as a file). */
  readonly put: (key: string, flag: FlagDefinition.Flag, by: ChangeBy) => Effect.Effect<
    FlagView,
    InvalidFlag | FlagConflict
  >
  /** Removes a flag from the writable source (a flag of a lower source, a file, shows again). */
  readonly remove: (key: string, by: ChangeBy) => Effect.Effect<void, FlagNotFound | FlagConflict>
  /**
   * Pulls the kill switch: every evaluation serves `variant` with reason `DISABLED`. Without one: the variant whose
   * value is `false` (boolean flags), else the flag's default variant, else the caller's default.
   */
  readonly kill: (
    key: string,
    kill: { readonly reason: string; readonly variant?: string | undefined },
    by: { readonly actor: string }
  ) => Effect.Effect<FlagView, FeatureFlagsError>
  /** Releases the kill switch. */
  readonly revive: (key: string, by: ChangeBy) => Effect.Effect<FlagView, FlagNotFound | FlagConflict>
  /** Sets the variant a tenant gets. */
  readonly setOverride: (
    key: string,
    tenantId: string,
    override: { readonly variant: string },
    by: ChangeBy
  ) => Effect.Effect<FlagView, FeatureFlagsError>
  /** Removes a tenant's override. */
  readonly removeOverride: (key: string, tenantId: string, by: ChangeBy) => Effect.Effect<
    FlagView,
    FlagNotFound | FlagConflict
  >
}>()("@ouroboros/feature-flags/FeatureFlags") {}

// -----------------------------------------------------------------------------
// metrics
// -----------------------------------------------------------------------------

const evaluationsId = "feature_flag_evaluations_total"
const evaluationsDescription = "Feature flag evaluations by flag, variant and reason"

/**
 * Evaluations by `flag`, `variant` (empty when none was served) and `reason`. Read one series with
 * `Metric.withAttributes(evaluations, { flag: "new-search", variant: "on", reason: "TARGETING_MATCH" })`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const evaluations = Metric.counter(evaluationsId, { description: evaluationsDescription, incremental: true })

/** The counts of each series, per metric registry: every service instance on one registry shares them. */
const countsByRegistry = new WeakMap<object, Map<string, { count: number }>>()

/**
 * The series of each flag, variant and reason, registered the first time they are met: an evaluation then adds one
 * to a plain number (no metric update, no attribute merging, no registry lookup), and the registry reads the number
 * when metrics are read or exported. Flag keys come from code, so the set of series stays small.
 */
const makeCounters = (context: Context.Context<never>) => {
  const registry = Context.get(context, Metric.MetricRegistry)
  let counts = countsByRegistry.get(registry)
  if (counts === undefined) countsByRegistry.set(registry, counts = new Map())
  const shared = counts
  const byFlag = new Map<string, Map<string, Map<string, { count: number }>>>()
  return (key: string, variant: string | undefined, reason: string): void => {
    let byVariant = byFlag.get(key)
    if (byVariant === undefined) byFlag.set(key, byVariant = new Map())
    const v = variant ?? ""
    let byReason = byVariant.get(v)
    if (byReason === undefined) byVariant.set(v, byReason = new Map())
    let cell = byReason.get(reason)
    if (cell === undefined) {
      const id = `${key}\u0000${v}\u0000${reason}`
      cell = shared.get(id)
      if (cell === undefined) {
        const created = { count: 0 }
        shared.set(id, created)
        Metric.registerUnsafe(
          Metric.counter(evaluationsId, {
            description: evaluationsDescription,
            incremental: true,
            attributes: { flag: key, variant: v, reason }
          }),
          context,
          { get: () => ({ count: created.count, incremental: true }), update: () => {}, modify: () => {} }
        )
        cell = created
      }
      byReason.set(reason, cell)
    }
    cell.count++
  }
}

// -----------------------------------------------------------------------------
// constructors
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * How the merged flag set is validated before it is used (each source validates its own flags): `strict` (the
   * default) refuses what breaks flagd's schema; `lenient` accepts what the flagd daemon accepts.
   */
  readonly validation?: FlagDefinition.ValidationMode | undefined
}

const toDetails = <T>(key: string, resolution: Evaluator.Resolution<T>): EvaluationDetails<T> => ({
  flagKey: key,
  value: resolution.value,
  variant: resolution.variant,
  reason: resolution.reason,
  errorCode: resolution.errorCode,
  errorMessage: resolution.errorMessage,
  flagMetadata: resolution.flagMetadata
})

const viewOf = (state: FlagProvider.FlagState, key: string): FlagView | undefined => {
  const definition = own(state.flagSet.flags, key)
  if (definition === undefined) return undefined
  const kill = own(state.kills, key)
  return {
    key,
    source: own(state.sources, key) ?? "unknown",
    definition,
    ...(kill === undefined ? {} : { kill }),
    overrides: own(state.overrides, key) ?? {}
  }
}

/**
 * Makes the service over the `FlagProvider` in context (and the `FlagAudit` hook, when one is provided).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}) =>
  Effect.gen(function*() {
    const mode = options.validation ?? "strict"
    const provider = yield* FlagProvider.FlagProvider
    const audit = yield* FlagAudit.FlagAudit
    const context = yield* Effect.context<never>()
    const count = makeCounters(context)

    const changes = yield* PubSub.unbounded<FlagsChanged>()
    const evaluatorStatus = yield* SubscriptionRef.make<ReadonlyArray<FlagProvider.Status>>([])
    const initial = yield* provider.state
    const first = Evaluator.compile(initial, mode)
    let current: Evaluator.Compiled
    if (first._tag === "Success") {
      current = first.compiled
    } else {
      // Each source validated its own flags, so this is the merged set (a flag of one source using an evaluator of
      // another, say). With no previous flags to keep, serve it the way flagd would rather than serve nothing.
      yield* Effect.logError(`the merged flag set is invalid, loading it leniently: ${first.error.detail}`)
      current = Evaluator.empty("lenient", initial)
      yield* SubscriptionRef.set(evaluatorStatus, [{
        provider: "merged",
        status: "stale",
        detail: first.error.detail,
        since: yield* FlagProvider.now,
        flags: Object.keys(initial.flagSet.flags).length
      }])
    }
    for (const warning of current.warnings) {
      yield* Effect.logWarning(`flag ${warning.path}: ${warning.message}`)
    }
    const lock = yield* Semaphore.make(1)

    // Always compiles the provider's latest state, so a late trigger never brings an older state back.
    const recompile = lock.withPermits(1)(Effect.gen(function*() {
      const state = yield* provider.state
      if (state === current.state) return
      const result = Evaluator.compile(state, mode)
      if (result._tag === "Failure") {
        yield* Effect.logError(`the merged flag set is invalid, keeping the previous one: ${result.error.detail}`)
        yield* SubscriptionRef.set(evaluatorStatus, [{
          provider: "merged",
          status: "stale",
          detail: result.error.detail,
          since: yield* FlagProvider.now,
          flags: Object.keys(current.state.flagSet.flags).length
        }])
        return
      }
      const before = current
      current = result.compiled
      if ((yield* SubscriptionRef.get(evaluatorStatus)).length > 0) yield* SubscriptionRef.set(evaluatorStatus, [])
      const keys = Evaluator.changedKeys(before, current)
      if (keys.length > 0) {
        yield* Effect.logInfo(`flags changed: ${keys.join(", ")}`)
        yield* PubSub.publish(changes, { keys, state: current.state })
      }
    })).pipe(Effect.annotateLogs({ service: "feature-flags" }))

    yield* provider.changes.pipe(Stream.runForEach(() => recompile), Effect.forkScoped)

    const resolve = <T extends FlagValue>(
      type: FlagValueType,
      key: string,
      defaultValue: T,
      context: OpenFeatureContext
    ): Resolution<T> => {
      const resolution = current.resolve(type, key, defaultValue, context)
      count(key, resolution.variant, resolution.reason)
      return resolution
    }

    const detailsSync = <A>(flag: Flag<A>, context: EvaluationContext.EvaluationContext): EvaluationDetails<A> => {
      const flat = EvaluationContext.toOpenFeature(context)
      const decode = flag.decode
      if (decode === undefined) {
        const resolution = current.resolve(flag.type, flag.key, flag.defaultValue as FlagValue, flat)
        count(flag.key, resolution.variant, resolution.reason)
        return toDetails(flag.key, resolution) as EvaluationDetails<A>
      }
      const resolution = current.resolve(flag.type, flag.key, null, flat)
      if (resolution.errorCode !== undefined || resolution.value === null) {
        count(flag.key, resolution.variant, resolution.reason)
        return { ...toDetails(flag.key, resolution), value: flag.defaultValue }
      }
      const decoded = decode(resolution.value)
      if (decoded.ok) {
        count(flag.key, resolution.variant, resolution.reason)
        return { ...toDetails(flag.key, resolution), value: decoded.value }
      }
      count(flag.key, resolution.variant, StandardResolutionReasons.ERROR)
      return {
        flagKey: flag.key,
        value: flag.defaultValue,
        variant: resolution.variant,
        reason: StandardResolutionReasons.ERROR,
        errorCode: ErrorCode.TYPE_MISMATCH,
        errorMessage: `the value of ${flag.key} does not decode: ${decoded.message}`,
        flagMetadata: resolution.flagMetadata
      }
    }

    const details = <A>(flag: Flag<A>, context?: EvaluationContext.EvaluationContext) =>
      Effect.withFiber<EvaluationDetails<A>>((fiber) =>
        Effect.succeed(
          detailsSync(flag, EvaluationContext.merge(fiber.getRef(EvaluationContext.CurrentEvaluationContext), context))
        )
      )

    // ---------------------------------------------------------------- changes

    const writable = (key: string) =>
      provider.writable
        ? Effect.void
        : Effect.fail(
          new FlagConflict({
            key,
            reason: "read-only",
            detail: `the flags of ${provider.name} are read-only: change them where they are defined`
          })
        )

    const apply = (mutation: FlagProvider.Mutation) =>
      provider.apply(mutation).pipe(
        Effect.catchTag(
          "ReadOnlyProvider",
          (error) => Effect.fail(new FlagConflict({ key: mutation.key, reason: "read-only", detail: error.detail }))
        ),
        Effect.andThen(recompile)
      )

    const existing = (key: string) =>
      Effect.flatMap(provider.state, (state) => {
        const view = viewOf(state, key)
        return view === undefined
          ? Effect.fail(new FlagNotFound({ key, detail: `no flag ${key}` }))
          : Effect.succeed({ state, view })
      })

    const afterChange = (key: string) =>
      Effect.flatMap(provider.state, (state) => {
        const view = viewOf(state, key)
        return view === undefined
          ? Effect.die(new Error(`flag ${key} vanished while it was changed`))
          : Effect.succeed(view)
      })

    const record = (change: Omit<FlagAudit.Change, "at">) =>
      Effect.flatMap(FlagProvider.now, (at) => audit.record({ ...change, at }))

    const unknownVariant = (key: string, variant: string, view: FlagView) =>
      new InvalidFlag({
        key,
        detail: `flag ${key} has no variant ${variant}`,
        issues: [{
          path: "/variant",
          message: `not one of ${Object.keys(view.definition.variants ?? {}).join(", ")}`
        }]
      })

    // What "off" is when a kill names no variant: the variant whose value is `false` for a boolean flag, otherwise
    // the default variant (what the flag serves when no rule matches); with neither, the caller's default.
    const offVariant = (view: FlagView): string | undefined => {
      const variants = view.definition.variants as Readonly<Record<string, unknown>> | undefined
      const off = Object.entries(variants ?? {}).find(([, value]) => value === false)
      if (off !== undefined) return off[0]
      const fallback = view.definition.defaultVariant
      return typeof fallback === "string" ? fallback : undefined
    }

    const hasVariant = (view: FlagView, variant: string) =>
      typeof view.definition.variants === "object" && view.definition.variants !== null &&
      Object.hasOwn(view.definition.variants, variant)

    const put = Effect.fn("FeatureFlags.put")(function*(key: string, flag: FlagDefinition.Flag, by: ChangeBy) {
      yield* writable(key)
      const state = yield* provider.state
      const candidate: FlagDefinition.FlagSet = {
        flags: { [key]: flag },
        ...(state.flagSet.$evaluators === undefined ? {} : { $evaluators: state.flagSet.$evaluators })
      }
      const validated = FlagDefinition.validate(candidate, "strict")
      if (validated._tag === "Failure") {
        return yield* new InvalidFlag({
          key,
          detail: validated.failure.detail,
          issues: validated.failure.issues
        })
      }
      // A flag is stored as JSON that PostgreSQL's jsonb holds: no NUL character in any string or key.
      if (Text.containsNul(flag)) {
        const message = "may not contain the NUL character (U+0000)"
        return yield* new InvalidFlag({
          key,
          detail: `the definition of ${key} ${message}`,
          issues: [{ path: "", message }]
        })
      }
      const killed = own(state.kills, key)?.variant
      const inUse = [
        ...(killed === undefined ? [] : [killed]),
        ...Object.values(own(state.overrides, key) ?? {}).map((o) => o.variant)
      ].filter((variant) => !Object.hasOwn(flag.variants, variant))
      if (inUse.length > 0) {
        return yield* new FlagConflict({
          key,
          reason: "variant-in-use",
          detail: `variant(s) ${[...new Set(inUse)].join(", ")} of ${key} are served by a kill switch or an override`
        })
      }
      const before = own(state.flagSet.flags, key)
      yield* apply({ _tag: "PutFlag", key, flag })
      yield* record({
        action: "flag.put",
        flagKey: key,
        actor: by.actor,
        ...(by.reason === undefined ? {} : { reason: by.reason }),
        ...(before === undefined ? {} : { before }),
        after: flag
      })
      return yield* afterChange(key)
    })

    const remove = Effect.fn("FeatureFlags.remove")(function*(key: string, by: ChangeBy) {
      yield* writable(key)
      const { view } = yield* existing(key)
      yield* apply({ _tag: "RemoveFlag", key })
      const after = yield* provider.state
      if (own(after.flagSet.flags, key) !== undefined && own(after.sources, key) === view.source) {
        return yield* new FlagNotFound({ key, detail: `flag ${key} is not defined in ${provider.name}` })
      }
      yield* record({
        action: "flag.remove",
        flagKey: key,
        actor: by.actor,
        ...(by.reason === undefined ? {} : { reason: by.reason }),
        before: view.definition
      })
    })

    const kill = Effect.fn("FeatureFlags.kill")(function*(
      key: string,
      request: { readonly reason: string; readonly variant?: string | undefined },
      by: { readonly actor: string }
    ) {
      yield* writable(key)
      const { view } = yield* existing(key)
      if (request.variant !== undefined && !hasVariant(view, request.variant)) {
        return yield* unknownVariant(key, request.variant, view)
      }
      const variant = request.variant ?? offVariant(view)
      const kill: FlagProvider.Kill = {
        reason: request.reason,
        actor: by.actor,
        at: yield* FlagProvider.now,
        ...(variant === undefined ? {} : { variant })
      }
      yield* apply({ _tag: "Kill", key, kill })
      yield* Effect.logWarning(`kill switch pulled on ${key} by ${by.actor}: ${request.reason}`).pipe(
        Effect.annotateLogs({ service: "feature-flags", flag: key, actor: by.actor })
      )
      yield* record({
        action: "flag.kill",
        flagKey: key,
        actor: by.actor,
        reason: request.reason,
        ...(view.kill === undefined ? {} : { before: view.kill }),
        after: kill
      })
      return yield* afterChange(key)
    })

    const revive = Effect.fn("FeatureFlags.revive")(function*(key: string, by: ChangeBy) {
      yield* writable(key)
      const { view } = yield* existing(key)
      if (view.kill === undefined) return view
      yield* apply({ _tag: "Revive", key })
      yield* Effect.logWarning(`kill switch released on ${key} by ${by.actor}`).pipe(
        Effect.annotateLogs({ service: "feature-flags", flag: key, actor: by.actor })
      )
      yield* record({
        action: "flag.revive",
        flagKey: key,
        actor: by.actor,
        ...(by.reason === undefined ? {} : { reason: by.reason }),
        before: view.kill
      })
      return yield* afterChange(key)
    })

    const setOverride = Effect.fn("FeatureFlags.setOverride")(function*(
      key: string,
      tenantId: string,
      request: { readonly variant: string },
      by: ChangeBy
    ) {
      yield* writable(key)
      const { view } = yield* existing(key)
      if (!hasVariant(view, request.variant)) return yield* unknownVariant(key, request.variant, view)
      const override: FlagProvider.Override = {
        variant: request.variant,
        actor: by.actor,
        at: yield* FlagProvider.now,
        ...(by.reason === undefined ? {} : { reason: by.reason })
      }
      yield* apply({ _tag: "SetOverride", key, tenantId, override })
      const before = own(view.overrides, tenantId)
      yield* record({
        action: "override.set",
        flagKey: key,
        tenantId,
        actor: by.actor,
        ...(by.reason === undefined ? {} : { reason: by.reason }),
        ...(before === undefined ? {} : { before }),
        after: override
      })
      return yield* afterChange(key)
    })

    const removeOverride = Effect.fn("FeatureFlags.removeOverride")(function*(
      key: string,
      tenantId: string,
      by: ChangeBy
    ) {
      yield* writable(key)
      const { view } = yield* existing(key)
      const before = own(view.overrides, tenantId)
      if (before === undefined) {
        return yield* new FlagNotFound({ key, detail: `flag ${key} has no override for tenant ${tenantId}` })
      }
      yield* apply({ _tag: "RemoveOverride", key, tenantId })
      yield* record({
        action: "override.remove",
        flagKey: key,
        tenantId,
        actor: by.actor,
        ...(by.reason === undefined ? {} : { reason: by.reason }),
        before
      })
      return yield* afterChange(key)
    })

    const get = (key: string) => Effect.map(existing(key), ({ view }) => view)

    return FeatureFlags.of({
      details,
      detailsSync,
      resolve,
      state: Effect.sync(() => current.state),
      changes: Stream.fromPubSub(changes),
      subscribe: Effect.map(PubSub.subscribe(changes), Stream.fromSubscription),
      status: Effect.zipWith(provider.status, SubscriptionRef.get(evaluatorStatus), (p, e) => [...p, ...e]),
      statusChanges: Stream.zipLatestWith(
        provider.statusChanges,
        SubscriptionRef.changes(evaluatorStatus),
        (p, e) => [...p, ...e]
      ),
      refresh: Effect.andThen(provider.refresh, recompile),
      list: Effect.map(
        provider.state,
        (state) => Object.keys(state.flagSet.flags).sort().map((key) => viewOf(state, key)!)
      ),
      get,
      put,
      remove,
      kill,
      revive,
      setOverride,
      removeOverride
    })
  })

// -----------------------------------------------------------------------------
// accessors
// -----------------------------------------------------------------------------

/**
 * Evaluates a flag for the current evaluation context (with `context` on top): its details. Never fails.
 *
 * @since 0.1.0
 * @category evaluation
 * @example
 * import { FeatureFlags } from "@ouroboros/feature-flags"
 * import { Effect } from "effect"
 * const NewSearch = FeatureFlags.boolean("new-search", false)
 * const program = Effect.map(FeatureFlags.details(NewSearch), (d) => `${d.value} (${d.reason})`)
 */
export const details = <A>(
  flag: Flag<A>,
  context?: EvaluationContext.EvaluationContext
): Effect.Effect<EvaluationDetails<A>, never, FeatureFlags> => FeatureFlags.use((flags) => flags.details(flag, context))

/**
 * Evaluates a flag for the current evaluation context (with `context` on top): its value. Never fails.
 *
 * @since 0.1.0
 * @category evaluation
 * @example
 * import { FeatureFlags } from "@ouroboros/feature-flags"
 * import { Effect } from "effect"
 * const NewSearch = FeatureFlags.boolean("new-search", false)
 * const program = Effect.gen(function*() {
 *   return (yield* FeatureFlags.value(NewSearch)) ? "new search" : "old search"
 * })
 */
export const value = <A>(
  flag: Flag<A>,
  context?: EvaluationContext.EvaluationContext
): Effect.Effect<A, never, FeatureFlags> =>
  FeatureFlags.use((flags) => Effect.map(flags.details(flag, context), (d) => d.value))

/**
 * The statuses of the flag sources (for a health check: see `FlagProvider.summarize`).
 *
 * @since 0.1.0
 * @category accessors
 */
export const status: Effect.Effect<ReadonlyArray<FlagProvider.Status>, never, FeatureFlags> = FeatureFlags.use((
  flags
) => flags.status)

// -----------------------------------------------------------------------------
// configuration and layers
// -----------------------------------------------------------------------------

/**
 * The configuration of {@link layerConfig}:
 *
 * - `FLAGS_FILE` (optional): a flag file in flagd's format (`.json`, `.yaml` or `.yml`), the defaults under the
 *   database's flags; checked for changes every poll interval.
 * - `FLAGS_POLL_INTERVAL` (default `500 millis`): how often the file and the database are checked for changes (the
 *   database also pushes changes with LISTEN/NOTIFY where it can).
 * - `FLAGS_VALIDATION` (`strict` | `lenient`, default `strict`): `lenient` accepts what the flagd daemon accepts
 *   (schema violations only warn).
 * - `FLAGS_LISTEN` (`auto` | `on` | `off`, default `auto`): LISTEN/NOTIFY for database changes; `auto` listens when
 *   the pool has more than one connection (not on the embedded database).
 * - `FLAGS_NOTIFY_CHANNEL` (default `ouroboros_feature_flags`): the NOTIFY channel.
 *
 * @since 0.1.0
 * @category config
 */
export const config = Config.all({
  file: Config.option(Config.String("FLAGS_FILE")),
  pollInterval: Config.Duration("FLAGS_POLL_INTERVAL").pipe(Config.withDefault(Duration.millis(500))),
  validation: Config.Literals(["strict", "lenient"], "FLAGS_VALIDATION").pipe(
    Config.withDefault<FlagDefinition.ValidationMode>("strict")
  ),
  listen: Config.Literals(["auto", "on", "off"], "FLAGS_LISTEN").pipe(
    Config.withDefault<"auto" | "on" | "off">("auto")
  ),
  channel: Config.String("FLAGS_NOTIFY_CHANNEL").pipe(Config.withDefault(FlagProviderSql.defaultChannel))
})

/**
 * @since 0.1.0
 * @category config
 */
export type FlagsConfig = Config.Success<typeof config>

/**
 * The service over the `FlagProvider` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<FeatureFlags, never, FlagProvider.FlagProvider> =>
  Layer.effect(FeatureFlags, make(options))

/**
 * The service over flags in memory (writable, per process): for tests and single-process applications.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { FeatureFlags } from "@ouroboros/feature-flags"
 * const FlagsLive = FeatureFlags.layerMemory({
 *   flags: { "new-search": { state: "ENABLED", variants: { on: true, off: false }, defaultVariant: "on" } }
 * })
 */
export const layerMemory = (
  initial?: FlagDefinition.FlagSet,
  options?: Options
): Layer.Layer<FeatureFlags, FlagProvider.FlagSourceError> =>
  layer(options).pipe(Layer.provide(FlagProvider.layerMemory(initial, { validation: options?.validation })))

/**
 * The service over a flag file (read-only; reloaded when it changes).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFile = (
  options: FlagProviderFile.Options & Options
): Layer.Layer<FeatureFlags, FlagProvider.FlagSourceError> =>
  layer(options).pipe(Layer.provide(FlagProviderFile.layer(options)))

/**
 * The service over flags in PostgreSQL (or the embedded database), shared by every replica.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSql = (
  options?: FlagProviderSql.Options & Options
): Layer.Layer<FeatureFlags, FlagProviderSql.SqlProviderError, SqlClient.SqlClient> =>
  layer(options).pipe(Layer.provide(FlagProviderSql.layer(options)))

/**
 * The service from {@link config}: the database's flags (kill switches and overrides included) over the
 * `FLAGS_FILE` defaults when a file is configured.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  settings: Config.Config<FlagsConfig> = config
): Layer.Layer<
  FeatureFlags,
  Config.ConfigError | FlagProvider.FlagSourceError | FlagProviderSql.SqlProviderError,
  SqlClient.SqlClient
> =>
  Layer.unwrap(Effect.map(settings, (c) => {
    const sql = FlagProviderSql.layer({
      pollInterval: c.pollInterval,
      listen: c.listen,
      channel: c.channel
    })
    const provider = Option.match(c.file, {
      onNone: () => sql,
      onSome: (path) =>
        FlagProvider.layerLayered(
          FlagProviderFile.layer({ path, pollInterval: c.pollInterval, validation: c.validation }),
          sql
        )
    })
    return layer({ validation: c.validation }).pipe(Layer.provide(provider))
  }))
