/**
 * Where flags come from: one interface for every source (memory, a flag file, PostgreSQL), so `FeatureFlags` never
 * knows which it reads and a new source is one file and one layer.
 *
 * A provider holds a {@link FlagState}: a flag set in flagd's format, the kill switches and the per-tenant
 * overrides. It publishes every new state on `changes`, reports its health on `status` (a flag file that broke keeps
 * its last good flags and says why there), and, when it is writable, applies {@link Mutation}s.
 *
 * Providers stack: {@link layered} puts one over another (file defaults under database overrides, say). The upper
 * one wins flag by flag, kill by kill and override by override, and takes the writes.
 *
 * @since 0.1.0
 */
import { Clock, Context, Effect, Layer, Schema, Semaphore, Stream, SubscriptionRef } from "effect"
import * as FlagDefinition from "./FlagDefinition.js"
import { own, setOwn } from "./internal/records.js"

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * A kill switch: the flag serves `variant` with reason `DISABLED`, whatever its rules and overrides say (no variant:
 * its `defaultVariant`, or the caller's default when it has none). Who pulled it, when and why are kept with it.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Kill = Schema.Struct({
  reason: Schema.String,
  actor: Schema.String,
  at: Schema.String.annotate({ description: "ISO-8601 instant" }),
  variant: Schema.optionalKey(Schema.String)
}).annotate({ identifier: "FlagKill" })

/**
 * @since 0.1.0
 * @category models
 */
export type Kill = typeof Kill.Type

/**
 * A per-tenant override: the tenant gets `variant` (reason `TARGETING_MATCH`) before any targeting rule runs.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Override = Schema.Struct({
  variant: Schema.String,
  actor: Schema.String,
  at: Schema.String.annotate({ description: "ISO-8601 instant" }),
  reason: Schema.optionalKey(Schema.String)
}).annotate({ identifier: "FlagOverride" })

/**
 * @since 0.1.0
 * @category models
 */
export type Override = typeof Override.Type

/**
 * What a provider holds. `sources` names the provider each flag comes from (for operators).
 *
 * @since 0.1.0
 * @category models
 */
export interface FlagState {
  readonly flagSet: FlagDefinition.FlagSet
  readonly kills: Readonly<Record<string, Kill>>
  readonly overrides: Readonly<Record<string, Readonly<Record<string, Override>>>>
  readonly sources: Readonly<Record<string, string>>
}

/**
 * The empty state.
 *
 * @since 0.1.0
 * @category constructors
 */
export const emptyState: FlagState = { flagSet: FlagDefinition.empty, kills: {}, overrides: {}, sources: {} }

/**
 * The state of a flag set that comes from `source`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const stateOf = (flagSet: FlagDefinition.FlagSet, source: string): FlagState => ({
  flagSet,
  kills: {},
  overrides: {},
  sources: Object.fromEntries(Object.keys(flagSet.flags).map((key) => [key, source]))
})

/**
 * A change to a writable provider.
 *
 * @since 0.1.0
 * @category models
 */
export type Mutation =
  | { readonly _tag: "PutFlag"; readonly key: string; readonly flag: FlagDefinition.Flag }
  | { readonly _tag: "RemoveFlag"; readonly key: string }
  | { readonly _tag: "Kill"; readonly key: string; readonly kill: Kill }
  | { readonly _tag: "Revive"; readonly key: string }
  | { readonly _tag: "SetOverride"; readonly key: string; readonly tenantId: string; readonly override: Override }
  | { readonly _tag: "RemoveOverride"; readonly key: string; readonly tenantId: string }

/**
 * The health of one source: `ready`; `stale` (it serves its last good flags but cannot refresh them: a broken file,
 * an unreachable database); or `error` (it has nothing to serve).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Status = Schema.Struct({
  provider: Schema.String,
  status: Schema.Literals(["ready", "stale", "error"]),
  detail: Schema.optionalKey(Schema.String),
  since: Schema.String.annotate({ description: "ISO-8601 instant of the last change of status" }),
  loadedAt: Schema.optionalKey(Schema.String.annotate({ description: "ISO-8601 instant of the last good load" })),
  flags: Schema.Int
}).annotate({ identifier: "FlagProviderStatus" })

/**
 * @since 0.1.0
 * @category models
 */
export type Status = typeof Status.Type

/**
 * The summary of statuses a health check reports: `pass` when every source is ready, `warn` when one serves stale
 * flags, `fail` when one has none; `output` says which and why.
 *
 * @since 0.1.0
 * @category utils
 * @example
 * import { FeatureFlags, FlagProvider } from "@ouroboros/feature-flags"
 * import { HealthCheck } from "@ouroboros/health"
 * import { Effect, Layer } from "effect"
 *
 * // a health check that warns while a source serves stale flags and fails while one has none
 * const FlagsCheck = Layer.effectDiscard(HealthCheck.register({
 *   name: "feature-flags:status",
 *   critical: false,
 *   run: Effect.map(FeatureFlags.status, FlagProvider.summarize)
 * }))
 */
export const summarize = (statuses: ReadonlyArray<Status>): {
  readonly status: "pass" | "warn" | "fail"
  readonly output?: string
} => {
  const bad = statuses.filter((s) => s.status !== "ready")
  if (bad.length === 0) return { status: "pass" }
  const output = bad.map((s) => `${s.provider} ${s.status}${s.detail === undefined ? "" : `: ${s.detail}`}`).join("; ")
  return { status: bad.some((s) => s.status === "error") ? "fail" : "warn", output }
}

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/**
 * The provider cannot be written (a flag file): flags change where they are defined.
 *
 * @since 0.1.0
 * @category errors
 */
export class ReadOnlyProvider extends Schema.TaggedError<ReadOnlyProvider>()("ReadOnlyProvider", {
  provider: Schema.String,
  detail: Schema.String
}) {}

/**
 * A source could not be loaded when the provider started: a missing or invalid flag file, say. (Later failures keep
 * the last good flags and show in `status`.)
 *
 * @since 0.1.0
 * @category errors
 */
export class FlagSourceError extends Schema.TaggedError<FlagSourceError>()("FlagSourceError", {
  provider: Schema.String,
  detail: Schema.String,
  issues: Schema.Array(FlagDefinition.Issue)
}) {}

/**
 * Every error of providers.
 *
 * @since 0.1.0
 * @category errors
 */
export type FlagProviderError = ReadOnlyProvider | FlagSourceError

// -----------------------------------------------------------------------------
// service
// -----------------------------------------------------------------------------

/**
 * A source of flags.
 *
 * @since 0.1.0
 * @category tags
 */
export class FlagProvider extends Context.Service<FlagProvider, {
  /** A name for logs and statuses (`memory`, `file:flags.yaml`, `sql`, `file:flags.yaml+sql`). */
  readonly name: string
  /** The current (last good) state. Cheap: no I/O. */
  readonly state: Effect.Effect<FlagState>
  /** The current state, then every new one. */
  readonly changes: Stream.Stream<FlagState>
  /** The health of each source. */
  readonly status: Effect.Effect<ReadonlyArray<Status>>
  /** The current statuses, then every change. */
  readonly statusChanges: Stream.Stream<ReadonlyArray<Status>>
  /** Whether {@link apply} can succeed. */
  readonly writable: boolean
  /** Applies a change; the new state is current when it returns. */
  readonly apply: (mutation: Mutation) => Effect.Effect<void, ReadOnlyProvider>
  /** Looks at the source now instead of at the next poll. */
  readonly refresh: Effect.Effect<void>
}>()("@ouroboros/feature-flags/FlagProvider") {}

// -----------------------------------------------------------------------------
// state operations
// -----------------------------------------------------------------------------

const without = <A>(record: Readonly<Record<string, A>>, key: string): Readonly<Record<string, A>> => {
  if (!Object.hasOwn(record, key)) return record
  const { [key]: _, ...rest } = record
  return rest
}

/**
 * The state after a mutation, the flags it adds attributed to `source`. A removal of something absent returns
 * `state` itself.
 *
 * @since 0.1.0
 * @category state
 */
export const applyMutation = (state: FlagState, mutation: Mutation, source: string): FlagState => {
  switch (mutation._tag) {
    case "PutFlag":
      return {
        ...state,
        flagSet: { ...state.flagSet, flags: { ...state.flagSet.flags, [mutation.key]: mutation.flag } },
        sources: { ...state.sources, [mutation.key]: source }
      }
    case "RemoveFlag":
      return !Object.hasOwn(state.flagSet.flags, mutation.key) ? state : {
        ...state,
        flagSet: { ...state.flagSet, flags: without(state.flagSet.flags, mutation.key) },
        sources: without(state.sources, mutation.key)
      }
    case "Kill":
      return { ...state, kills: { ...state.kills, [mutation.key]: mutation.kill } }
    case "Revive":
      return !Object.hasOwn(state.kills, mutation.key) ? state : { ...state, kills: without(state.kills, mutation.key) }
    case "SetOverride":
      return {
        ...state,
        overrides: {
          ...state.overrides,
          [mutation.key]: { ...own(state.overrides, mutation.key), [mutation.tenantId]: mutation.override }
        }
      }
    case "RemoveOverride": {
      const current = own(state.overrides, mutation.key) ?? {}
      if (!Object.hasOwn(current, mutation.tenantId)) return state
      const tenants = without(current, mutation.tenantId)
      return {
        ...state,
        overrides: Object.keys(tenants).length === 0
          ? without(state.overrides, mutation.key)
          : { ...state.overrides, [mutation.key]: tenants }
      }
    }
  }
}

const mergeOptional = <A>(
  lower: Readonly<Record<string, A>> | undefined,
  upper: Readonly<Record<string, A>> | undefined
): Readonly<Record<string, A>> | undefined =>
  lower === undefined ? upper : upper === undefined ? lower : { ...lower, ...upper }

/**
 * `upper` over `lower`: flags, evaluators, metadata, kills and overrides of `upper` win key by key.
 *
 * @since 0.1.0
 * @category state
 */
export const mergeStates = (lower: FlagState, upper: FlagState): FlagState => {
  const evaluators = mergeOptional(lower.flagSet.$evaluators, upper.flagSet.$evaluators)
  const metadata = mergeOptional(lower.flagSet.metadata, upper.flagSet.metadata)
  const overrides: Record<string, Readonly<Record<string, Override>>> = { ...lower.overrides }
  for (const [key, tenants] of Object.entries(upper.overrides)) {
    setOwn(overrides, key, { ...own(lower.overrides, key), ...tenants })
  }
  return {
    flagSet: {
      flags: { ...lower.flagSet.flags, ...upper.flagSet.flags },
      ...(evaluators === undefined ? {} : { $evaluators: evaluators }),
      ...(metadata === undefined ? {} : { metadata })
    },
    kills: { ...lower.kills, ...upper.kills },
    overrides,
    sources: { ...lower.sources, ...upper.sources }
  }
}

// -----------------------------------------------------------------------------
// building blocks
// -----------------------------------------------------------------------------

/**
 * The current instant as ISO-8601, from the Effect clock.
 *
 * @since 0.1.0
 * @category utils
 */
export const now: Effect.Effect<string> = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms).toISOString())

/**
 * The state and status cells a provider publishes through, shared by the providers of this package.
 *
 * @since 0.1.0
 * @category building blocks
 */
export interface Cells {
  readonly state: SubscriptionRef.SubscriptionRef<FlagState>
  readonly status: SubscriptionRef.SubscriptionRef<Status>
  /** Publishes a new good state (and a `ready` status). */
  readonly loaded: (state: FlagState) => Effect.Effect<void>
  /** Records a failure: `stale` when there is a last good state, `error` when there is none. */
  readonly failed: (detail: string) => Effect.Effect<void>
}

/**
 * Makes the cells of a provider named `name`, starting from `initial` (`undefined`: nothing loaded yet).
 *
 * @since 0.1.0
 * @category building blocks
 */
export const makeCells = (name: string, initial: FlagState | undefined) =>
  Effect.gen(function*() {
    const at = yield* now
    const state = yield* SubscriptionRef.make(initial ?? emptyState)
    let hasGood = initial !== undefined
    const status = yield* SubscriptionRef.make<Status>({
      provider: name,
      status: hasGood ? "ready" : "error",
      ...(hasGood ? { loadedAt: at } : { detail: "not loaded yet" }),
      since: at,
      flags: Object.keys((initial ?? emptyState).flagSet.flags).length
    })
    const loaded = (next: FlagState) =>
      Effect.gen(function*() {
        const at = yield* now
        hasGood = true
        if (next !== SubscriptionRef.getUnsafe(state)) yield* SubscriptionRef.set(state, next)
        const previous = SubscriptionRef.getUnsafe(status)
        const flags = Object.keys(next.flagSet.flags).length
        if (previous.status !== "ready" || previous.flags !== flags) {
          yield* SubscriptionRef.set(status, {
            provider: name,
            status: "ready",
            since: previous.status === "ready" ? previous.since : at,
            loadedAt: at,
            flags
          })
        }
      })
    const failed = (detail: string) =>
      Effect.gen(function*() {
        const previous = SubscriptionRef.getUnsafe(status)
        const next = hasGood ? "stale" : "error"
        if (previous.status === next && previous.detail === detail) return
        const at = yield* now
        yield* SubscriptionRef.set(status, {
          ...previous,
          status: next,
          detail,
          since: previous.status === next ? previous.since : at
        })
      })
    return { state, status, loaded, failed } satisfies Cells
  })

// -----------------------------------------------------------------------------
// memory
// -----------------------------------------------------------------------------

/**
 * A provider in memory: writable, lost with the process. The initial flag set is validated like a file.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory = (
  initial: FlagDefinition.FlagSet = FlagDefinition.empty,
  options: {
    readonly name?: string | undefined
    readonly validation?: FlagDefinition.ValidationMode | undefined
  } = {}
) =>
  Effect.gen(function*() {
    const name = options.name ?? "memory"
    const validated = FlagDefinition.validate(initial, options.validation ?? "strict")
    if (validated._tag === "Failure") {
      return yield* new FlagSourceError({
        provider: name,
        detail: validated.failure.detail,
        issues: validated.failure.issues
      })
    }
    const cells = yield* makeCells(name, stateOf(validated.success.flagSet, name))
    const lock = yield* Semaphore.make(1)
    return FlagProvider.of({
      name,
      state: SubscriptionRef.get(cells.state),
      changes: SubscriptionRef.changes(cells.state),
      status: Effect.map(SubscriptionRef.get(cells.status), (s) => [s]),
      statusChanges: Stream.map(SubscriptionRef.changes(cells.status), (s) => [s]),
      writable: true,
      apply: (mutation) =>
        lock.withPermits(1)(
          Effect.flatMap(
            SubscriptionRef.get(cells.state),
            (state) => cells.loaded(applyMutation(state, mutation, name))
          )
        ),
      refresh: Effect.void
    })
  })

/**
 * An in-memory provider with `initial` flags.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (
  initial?: FlagDefinition.FlagSet,
  options?: {
    readonly name?: string | undefined
    readonly validation?: FlagDefinition.ValidationMode | undefined
  }
): Layer.Layer<FlagProvider, FlagSourceError> => Layer.effect(FlagProvider, makeMemory(initial, options))

// -----------------------------------------------------------------------------
// layering
// -----------------------------------------------------------------------------

/**
 * `upper` over `lower`: see {@link mergeStates}. Writes go to `upper`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const layered = (
  lower: FlagProvider["Service"],
  upper: FlagProvider["Service"]
): FlagProvider["Service"] => {
  let cache: { lower: FlagState; upper: FlagState; merged: FlagState } | undefined
  const merged = (l: FlagState, u: FlagState): FlagState => {
    if (cache === undefined || cache.lower !== l || cache.upper !== u) {
      cache = { lower: l, upper: u, merged: mergeStates(l, u) }
    }
    return cache.merged
  }
  return FlagProvider.of({
    name: `${lower.name}+${upper.name}`,
    state: Effect.zipWith(lower.state, upper.state, merged),
    changes: Stream.zipLatestWith(lower.changes, upper.changes, merged),
    status: Effect.zipWith(lower.status, upper.status, (l, u) => [...l, ...u]),
    statusChanges: Stream.zipLatestWith(lower.statusChanges, upper.statusChanges, (l, u) => [...l, ...u]),
    writable: upper.writable,
    apply: upper.apply,
    refresh: Effect.andThen(lower.refresh, upper.refresh)
  })
}

/**
 * The provider of `upper` over the provider of `lower` (each layer is built on its own).
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { FlagProvider, FlagProviderFile, FlagProviderSql } from "@ouroboros/feature-flags"
 * // file defaults, database overrides (and kill switches) on top
 * const Flags = FlagProvider.layerLayered(FlagProviderFile.layer({ path: "flags.yaml" }), FlagProviderSql.layer())
 */
export const layerLayered = <E1, R1, E2, R2>(
  lower: Layer.Layer<FlagProvider, E1, R1>,
  upper: Layer.Layer<FlagProvider, E2, R2>
): Layer.Layer<FlagProvider, E1 | E2, R1 | R2> =>
  Layer.effect(
    FlagProvider,
    Effect.gen(function*() {
      const l = Context.get(yield* Layer.build(lower), FlagProvider)
      const u = Context.get(yield* Layer.build(upper), FlagProvider)
      return layered(l, u)
    })
  )
