/**
 * An optional hook that records who changed which flag, how and why: every change made through `FeatureFlags` (a
 * definition, a kill switch, a tenant override) is handed to it after it took effect. By default nothing is
 * recorded; a server with an audit log provides an implementation (this package does not depend on one).
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Schema } from "effect"

/**
 * What was done.
 *
 * @since 0.1.0
 * @category models
 */
export const Action = Schema.Literals([
  "flag.put",
  "flag.remove",
  "flag.kill",
  "flag.revive",
  "override.set",
  "override.remove"
])

/**
 * @since 0.1.0
 * @category models
 */
export type Action = typeof Action.Type

/**
 * One change: its action, the flag (and tenant, for overrides), who made it and why, the state of what changed
 * before and after (a definition, a kill or an override; absent when there was none), and when.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Change = Schema.Struct({
  action: Action,
  flagKey: Schema.String,
  tenantId: Schema.optionalKey(Schema.String),
  actor: Schema.String,
  reason: Schema.optionalKey(Schema.String),
  before: Schema.optionalKey(Schema.Unknown),
  after: Schema.optionalKey(Schema.Unknown),
  at: Schema.String
}).annotate({ identifier: "FlagChange" })

/**
 * @since 0.1.0
 * @category models
 */
export type Change = typeof Change.Type

/**
 * The shape of the hook.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** Records a change that took effect. Cannot fail: an implementation handles its own failures. */
  readonly record: (change: Change) => Effect.Effect<void>
}

/**
 * The audit hook. `FeatureFlags` reads it when its layer is built; the default records nothing.
 *
 * @since 0.1.0
 * @category references
 * @example
 * import { FeatureFlags, FlagAudit } from "@ouroboros/feature-flags"
 * import { Effect, Layer } from "effect"
 * const Audited = FeatureFlags.layerMemory().pipe(
 *   Layer.provide(FlagAudit.layer({ record: (change) => Effect.logInfo("flag changed", change) }))
 * )
 */
export const FlagAudit = Context.Reference<Service>("@ouroboros/feature-flags/FlagAudit", {
  defaultValue: () => noop
})

/**
 * The hook that records nothing.
 *
 * @since 0.1.0
 * @category constructors
 */
export const noop: Service = { record: () => Effect.void }

/**
 * Provides an implementation of the hook.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (service: Service): Layer.Layer<never> => Layer.succeed(FlagAudit, service)
