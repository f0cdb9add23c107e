/**
 * What a flag is evaluated for: a targeting key (the subject whose bucket a rollout picks), the tenant, the principal
 * and free attributes (roles, tier, API version, …), which targeting rules read.
 *
 * A request's context is request-scoped: a middleware provides {@link CurrentEvaluationContext} (for example from
 * the authenticated principal with {@link fromPrincipal}) and every evaluation in the request reads it.
 *
 * In flagd's terms the context is flat: `targetingKey`, `tenantId` and `principal` sit beside the attributes, so a
 * rule reads `{ "var": "tenantId" }`, `{ "var": "roles" }` or `{ "var": "apiVersion" }`. The three named members
 * win over attributes of the same name.
 *
 * @since 0.1.0
 */
import type { EvaluationContext as OpenFeatureContext, EvaluationContextValue } from "@openfeature/core"
import type { Principal } from "@ouroboros/kernel"
import { Context, Effect } from "effect"
import { dual } from "effect/Function"

/**
 * A value of an attribute: what JSON holds, plus dates (OpenFeature's evaluation context values).
 *
 * @since 0.1.0
 * @category models
 */
export type Attribute = EvaluationContextValue

/**
 * The evaluation context.
 *
 * @since 0.1.0
 * @category models
 */
export interface EvaluationContext {
  /** Whose bucket a percentage rollout picks (flagd's `fractional` hashes flag key + targeting key). */
  readonly targetingKey?: string | undefined
  /** The tenant: per-tenant overrides match it, rules read it as `tenantId`. */
  readonly tenantId?: string | undefined
  /** The principal's subject (an API key id, a JWT `sub`): rules read it as `principal`. */
  readonly principal?: string | undefined
  /** Anything else a rule may read. */
  readonly attributes?: Readonly<Record<string, Attribute>> | undefined
}

/**
 * The empty context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const empty: EvaluationContext = {}

/**
 * Makes a context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (context: EvaluationContext): EvaluationContext => context

/**
 * The context of the current request. Its default is the empty context; a middleware provides the request's.
 *
 * @since 0.1.0
 * @category references
 * @example
 * import { EvaluationContext } from "@ouroboros/feature-flags"
 * import { Effect } from "effect"
 * const handler = Effect.succeed("ok").pipe(
 *   EvaluationContext.provide({ targetingKey: "key-1", tenantId: "acme" })
 * )
 */
export const CurrentEvaluationContext = Context.Reference<EvaluationContext>(
  "@ouroboros/feature-flags/CurrentEvaluationContext",
  { defaultValue: () => empty }
)

/**
 * Runs `effect` with `context` as the current evaluation context.
 *
 * @since 0.1.0
 * @category combinators
 */
export const provide: {
  (context: EvaluationContext): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(effect: Effect.Effect<A, E, R>, context: EvaluationContext): Effect.Effect<A, E, R>
} = dual(
  2,
  <A, E, R>(effect: Effect.Effect<A, E, R>, context: EvaluationContext): Effect.Effect<A, E, R> =>
    Effect.provideService(effect, CurrentEvaluationContext, context)
)

/**
 * `that` on top of `self`: its named members win when set, attributes are merged (those of `that` win).
 *
 * @since 0.1.0
 * @category combinators
 */
export const merge = (self: EvaluationContext, that: EvaluationContext | undefined): EvaluationContext => {
  if (that === undefined || that === self) return self
  if (self === empty) return that
  return {
    targetingKey: that.targetingKey ?? self.targetingKey,
    tenantId: that.tenantId ?? self.tenantId,
    principal: that.principal ?? self.principal,
    attributes: self.attributes === undefined
      ? that.attributes
      : that.attributes === undefined
      ? self.attributes
      : { ...self.attributes, ...that.attributes }
  }
}

/**
 * The context of an authenticated request: the principal's subject is the targeting key and the principal, its
 * tenant the tenant; `roles`, `tier` and `authMethod` become attributes, with `apiVersion` when given.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * import { EvaluationContext } from "@ouroboros/feature-flags"
 * import { Principal, TenantId } from "@ouroboros/kernel"
 * const principal = new Principal.Principal({
 *   tenantId: TenantId.make("acme"), subject: "key:1", roles: ["writer"], method: "api-key"
 * })
 * const context = EvaluationContext.fromPrincipal(principal, { apiVersion: "2" })
 */
export const fromPrincipal = (
  principal: Principal.Principal,
  extra: {
    readonly apiVersion?: string | undefined
    readonly attributes?: Readonly<Record<string, Attribute>> | undefined
  } = {}
): EvaluationContext => ({
  targetingKey: principal.subject,
  tenantId: principal.tenantId,
  principal: principal.subject,
  attributes: {
    ...extra.attributes,
    roles: [...principal.roles],
    authMethod: principal.method,
    ...(principal.tier === undefined ? {} : { tier: principal.tier }),
    ...(extra.apiVersion === undefined ? {} : { apiVersion: extra.apiVersion })
  }
})

const flattened = new WeakMap<EvaluationContext, OpenFeatureContext>()

/**
 * The flat OpenFeature / flagd context: attributes, then `targetingKey`, `tenantId` and `principal` when set. The
 * result is cached per context object (a request's context is flattened once however many flags it evaluates).
 *
 * @since 0.1.0
 * @category conversions
 */
export const toOpenFeature = (context: EvaluationContext): OpenFeatureContext => {
  let flat = flattened.get(context)
  if (flat === undefined) {
    const out: Record<string, EvaluationContextValue> = context.attributes === undefined
      ? {}
      : { ...context.attributes }
    if (context.targetingKey !== undefined) out.targetingKey = context.targetingKey
    else delete out.targetingKey
    if (context.tenantId !== undefined) out.tenantId = context.tenantId
    else delete out.tenantId
    if (context.principal !== undefined) out.principal = context.principal
    else delete out.principal
    flat = out as OpenFeatureContext
    flattened.set(context, flat)
  }
  return flat
}

/**
 * The context of a flat OpenFeature context (the reverse of {@link toOpenFeature}).
 *
 * @since 0.1.0
 * @category conversions
 */
export const fromOpenFeature = (context: OpenFeatureContext): EvaluationContext => {
  const { targetingKey, tenantId, principal, ...attributes } = context
  return {
    targetingKey,
    tenantId: typeof tenantId === "string" ? tenantId : undefined,
    principal: typeof principal === "string" ? principal : undefined,
    attributes
  }
}
