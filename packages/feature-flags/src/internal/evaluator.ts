/**
 * A flag state compiled for evaluation: flagd-core's storage and evaluator for the flag set, with kill switches and
 * per-tenant overrides looked up first. Everything here is synchronous and never throws.
 */
import {
  ErrorCode,
  type EvaluationContext as OpenFeatureContext,
  type FlagMetadata,
  type FlagValue,
  type FlagValueType,
  type Logger,
  StandardResolutionReasons
} from "@openfeature/core"
import { type FeatureFlag, FlagdCore, MemoryStorage } from "@openfeature/flagd-core"
import * as FlagDefinition from "../FlagDefinition.js"
import type * as FlagProvider from "../FlagProvider.js"
import { own } from "./records.js"

/**
 * The outcome of one evaluation, in OpenFeature's terms.
 */
export interface Resolution<T> {
  readonly value: T
  readonly variant?: string
  readonly reason: string
  readonly errorCode?: ErrorCode
  readonly errorMessage?: string
  readonly flagMetadata: FlagMetadata
}

export interface Compiled {
  readonly state: FlagProvider.FlagState
  /** Per flag key: a signature of everything that decides its evaluations (definition, kill, overrides). */
  readonly signatures: ReadonlyMap<string, string>
  readonly warnings: ReadonlyArray<FlagDefinition.Issue>
  readonly resolve: <T extends FlagValue>(
    type: FlagValueType,
    key: string,
    defaultValue: T,
    context: OpenFeatureContext
  ) => Resolution<T>
}

const noop = () => {}

/** flagd-core logs only at debug level while it evaluates; compile-time warnings are collected by `compile`. */
const quietLogger: Logger = { error: noop, warn: noop, info: noop, debug: noop }

const typeMismatch = <T>(key: string, type: FlagValueType, value: unknown, defaultValue: T, flag: FeatureFlag) => ({
  value: defaultValue,
  reason: StandardResolutionReasons.ERROR,
  errorCode: ErrorCode.TYPE_MISMATCH,
  errorMessage: `Evaluated type of the flag ${key} does not match. Expected ${type}, got ${typeof value}`,
  flagMetadata: flag.metadata
})

/**
 * Compiles a state. `mode` is the validation of the merged flag set (each source validated its own already).
 */
export const compile = (
  state: FlagProvider.FlagState,
  mode: FlagDefinition.ValidationMode
): { readonly _tag: "Success"; readonly compiled: Compiled } | {
  readonly _tag: "Failure"
  readonly error: FlagDefinition.InvalidFlagSet
} => {
  const validated = FlagDefinition.validate(state.flagSet, mode)
  if (validated._tag === "Failure") return { _tag: "Failure", error: validated.failure }
  const storage = new MemoryStorage(quietLogger)
  storage.setConfigurations(JSON.stringify(validated.success.flagSet), false)
  const core = new FlagdCore(storage, quietLogger)
  const flags = storage.getFlags()

  const kills = new Map(Object.entries(state.kills))
  const overrides = new Map(
    Object.entries(state.overrides).map(([key, tenants]) => [key, new Map(Object.entries(tenants))])
  )

  const signatures = new Map<string, string>()
  for (const [key, flag] of flags) {
    const kill = own(state.kills, key)
    const tenants = own(state.overrides, key)
    signatures.set(
      key,
      `${flag.hash}|${kill === undefined ? "" : JSON.stringify(kill)}|${
        tenants === undefined ? "" : JSON.stringify(tenants)
      }`
    )
  }

  const served = <T extends FlagValue>(
    type: FlagValueType,
    key: string,
    flag: FeatureFlag,
    variant: string,
    reason: string,
    defaultValue: T
  ): Resolution<T> | undefined => {
    const value = flag.variants.get(variant)
    if (value === undefined) return undefined
    if (typeof value !== type) return typeMismatch(key, type, value, defaultValue, flag)
    return { value: value as T, variant, reason, flagMetadata: flag.metadata }
  }

  const resolve = <T extends FlagValue>(
    type: FlagValueType,
    key: string,
    defaultValue: T,
    context: OpenFeatureContext
  ): Resolution<T> => {
    const flag = flags.get(key)
    if (flag !== undefined) {
      // The kill switch beats everything, overrides and the file's own state included.
      const kill = kills.get(key)
      if (kill !== undefined) {
        const variant = kill.variant ?? flag.defaultVariant
        const resolution = variant === undefined
          ? undefined
          : served(type, key, flag, variant, StandardResolutionReasons.DISABLED, defaultValue)
        return resolution ?? {
          value: defaultValue,
          reason: StandardResolutionReasons.DISABLED,
          flagMetadata: flag.metadata
        }
      }
      if (flag.state !== "DISABLED") {
        const tenant = context.tenantId
        if (typeof tenant === "string") {
          const override = overrides.get(key)?.get(tenant)
          // An override whose variant the flag no longer has is ignored: the flag's own rules apply.
          const resolution = override === undefined
            ? undefined
            : served(type, key, flag, override.variant, StandardResolutionReasons.TARGETING_MATCH, defaultValue)
          if (resolution !== undefined) return resolution
        }
      }
    }
    try {
      const resolution = core.resolve(type, key, defaultValue, context, quietLogger)
      return resolution as Resolution<T>
    } catch (error) {
      // flagd-core catches targeting errors itself; this is for anything it did not foresee.
      return {
        value: defaultValue,
        reason: StandardResolutionReasons.ERROR,
        errorCode: ErrorCode.GENERAL,
        errorMessage: error instanceof Error ? error.message : String(error),
        flagMetadata: flag?.metadata ?? {}
      }
    }
  }

  return {
    _tag: "Success",
    compiled: { state, signatures, warnings: validated.success.warnings, resolve }
  }
}

/** The compiled state, or, when it does not compile even leniently, the compiled empty flag set. */
export const empty = (mode: FlagDefinition.ValidationMode, state: FlagProvider.FlagState): Compiled => {
  const result = compile(state, mode)
  if (result._tag === "Success") return result.compiled
  const fallback = compile({ ...state, flagSet: FlagDefinition.empty, kills: {}, overrides: {} }, "lenient")
  if (fallback._tag === "Success") return fallback.compiled
  throw new Error("the empty flag set does not compile")
}

/** The keys whose evaluations may differ between two compiled states. */
export const changedKeys = (before: Compiled, after: Compiled): ReadonlyArray<string> => {
  const changed: Array<string> = []
  for (const [key, signature] of after.signatures) {
    if (before.signatures.get(key) !== signature) changed.push(key)
  }
  for (const key of before.signatures.keys()) {
    if (!after.signatures.has(key)) changed.push(key)
  }
  return changed
}
