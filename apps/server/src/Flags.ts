/**
 * Feature flags in the server (`@ouroboros/feature-flags`): the flags the server reads, their built-in defaults, the
 * sources (built-in defaults ← `FLAGS_FILE` ← the database, flag by flag, the upper one winning), the request's
 * evaluation context (its principal and API version), and a health check.
 *
 * The flags:
 *
 * - `llm-model` (string): the language model of a tenant's answers when the request names none and the tenant's record
 *   names none; an empty value is the configured `OLLAMA_MODEL`.
 * - `api-v2` (boolean): whether API v2 is open to the caller (a rollout per tenant, through `VersionAccess`). During a
 *   rollout, mark v2 `preview` (`API_VERSIONS_PREVIEW=v2`) so that requests naming no version keep v1.
 * - `ollama` (boolean): whether answers may use the remote model; off, the local extractive model answers
 *   (`degraded: true`). `POST /admin/flags/ollama/kill` turns it off on every replica within a second.
 *
 * `packages/feature-flags/examples/ouroboros-flags.yaml` is a flag file for `FLAGS_FILE` with the same flags and
 * rules: the large model for enterprise tenants, v2 for the `beta` tenant and 10% of principals.
 *
 * @since 0.1.0
 */
import {
  EvaluationContext,
  FeatureFlags,
  type FlagDefinition,
  FlagProvider,
  FlagProviderFile,
  FlagProviderSql
} from "@ouroboros/feature-flags"
import { HealthCheck } from "@ouroboros/health"
import type { Principal } from "@ouroboros/kernel"
import { TenancyHttp } from "@ouroboros/tenancy"
import { ApiVersion, VersionAccess } from "@ouroboros/versioning"
import { Effect, Layer, Option } from "effect"

/**
 * `llm-model`: the model of a tenant's answers (empty: the configured one).
 *
 * @since 0.1.0
 * @category flags
 */
export const LlmModel = FeatureFlags.string("llm-model", "")

/**
 * `api-v2`: API v2 is open to the caller.
 *
 * @since 0.1.0
 * @category flags
 */
export const ApiV2 = FeatureFlags.boolean("api-v2", true)

/**
 * `ollama`: answers may use the remote language model.
 *
 * @since 0.1.0
 * @category flags
 */
export const Ollama = FeatureFlags.boolean("ollama", true)

const onOff = (on: boolean): FlagDefinition.Flag => ({
  state: "ENABLED",
  variants: { on: true, off: false },
  defaultVariant: on ? "on" : "off"
})

/**
 * The built-in defaults, under `FLAGS_FILE` and the database: the configured model, v2 open to everyone, the remote
 * model allowed.
 *
 * @since 0.1.0
 * @category flags
 */
export const defaults: FlagDefinition.FlagSet = {
  flags: {
    "llm-model": { state: "ENABLED", variants: { configured: "" }, defaultVariant: "configured" },
    "api-v2": onOff(true),
    "ollama": onOff(true)
  }
}

/**
 * The flags: the built-in {@link defaults}, under `FLAGS_FILE` when set, under the database's flags, kill switches and
 * tenant overrides (`FLAGS_POLL_INTERVAL`, `FLAGS_VALIDATION`, `FLAGS_LISTEN`, `FLAGS_NOTIFY_CHANNEL`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = Layer.unwrap(
  Effect.map(FeatureFlags.config, (c) => {
    const builtIn = FlagProvider.layerMemory(defaults, { name: "built-in", validation: c.validation })
    const lower = Option.match(c.file, {
      onNone: () => builtIn,
      onSome: (path) =>
        FlagProvider.layerLayered(
          builtIn,
          FlagProviderFile.layer({ path, pollInterval: c.pollInterval, validation: c.validation })
        )
    })
    const sql = FlagProviderSql.layer({ pollInterval: c.pollInterval, listen: c.listen, channel: c.channel })
    return FeatureFlags.layer({ validation: c.validation }).pipe(Layer.provide(FlagProvider.layerLayered(lower, sql)))
  })
)

/**
 * `feature-flags:status`: a `warn` while a source is stale (a broken flag file: the last good flags are in use), a
 * `fail` when one is in error. Not critical: evaluations go on with the flags at hand.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerHealth = HealthCheck.layerCheck({
  name: "feature-flags:status",
  componentType: "component",
  critical: false,
  run: Effect.map(FeatureFlags.status, (statuses) => {
    const summary = FlagProvider.summarize(statuses)
    return summary.status === "pass"
      ? HealthCheck.pass({ observedValue: statuses.length, observedUnit: "sources" })
      : summary.status === "warn"
      ? HealthCheck.warn(summary.output ?? "a flag source is stale")
      : HealthCheck.fail(summary.output ?? "a flag source failed")
  })
})

// The context of a principal in a version, made once per principal object (the tenancy cache hands out the same
// object for a key until it expires) and version.
const contexts = new WeakMap<Principal.Principal, Map<string | undefined, EvaluationContext.EvaluationContext>>()

const contextOf = (principal: Principal.Principal, apiVersion: string | undefined) => {
  let byVersion = contexts.get(principal)
  if (byVersion === undefined) contexts.set(principal, byVersion = new Map())
  let context = byVersion.get(apiVersion)
  if (context === undefined) {
    context = EvaluationContext.fromPrincipal(principal, { apiVersion })
    byVersion.set(apiVersion, context)
  }
  return context
}

/**
 * The request's evaluation context: its principal (targeting key and `principal` its subject, `tenantId`, `roles`,
 * `tier`, `authMethod`) and its API version (`apiVersion`), from what the tenancy middleware and the version
 * negotiation put in the request's context; empty for a request without a principal. Made when a flag is evaluated
 * (once per principal object and version), not per request: most requests evaluate no flag.
 *
 * @since 0.1.0
 * @category evaluation
 */
export const requestContext: Effect.Effect<EvaluationContext.EvaluationContext> = Effect.withFiber((fiber) => {
  const outcome = fiber.getRef(TenancyHttp.CurrentAuthentication)
  return Effect.succeed(
    outcome._tag === "Authenticated"
      ? contextOf(outcome.principal, fiber.getRef(ApiVersion.CurrentApiVersion))
      : EvaluationContext.empty
  )
})

/**
 * Evaluates a flag in the request's evaluation context ({@link requestContext}).
 *
 * @since 0.1.0
 * @category evaluation
 */
export const value = <A>(
  flags: FeatureFlags.FeatureFlags["Service"],
  flag: FeatureFlags.Flag<A>
): Effect.Effect<A> =>
  Effect.flatMap(requestContext, (context) => Effect.map(flags.details(flag, context), (d) => d.value))

/**
 * Who calls which version: the tier of the caller's tenant (its rate-limit tier, e.g. `standard`; the admin key
 * `admin`), never a tenant id, since `/metrics` is not tenant-scoped
 * (`api_version_caller_requests_total{version, caller}`), and whether v2 is open to the caller: the `api-v2` flag in
 * the request's evaluation context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerVersionAccess: Layer.Layer<never, never, FeatureFlags.FeatureFlags> = Layer.unwrap(
  Effect.map(Effect.service(FeatureFlags.FeatureFlags), (flags) =>
    VersionAccess.layer({
      caller: Effect.map(Effect.service(TenancyHttp.CurrentAuthentication), (outcome) =>
        outcome._tag !== "Authenticated"
          ? undefined
          : outcome.principal.method === "admin-key"
          ? "admin"
          : outcome.limiterTier ?? "default"),
      isEnabled: (version) => version === "v2" ? value(flags, ApiV2) : Effect.succeed(true)
    }))
)
