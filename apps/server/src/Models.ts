/**
 * The models of the server: Ollama when `OLLAMA_URL` is set, its calls guarded by the `ollama` breaker pipeline;
 * else the local embedder and extractive answerer, called directly. Outgoing calls carry the request's
 * `X-Correlation-ID` and W3C trace context.
 *
 * @since 0.1.0
 */
import { Correlation } from "@ouroboros/correlation"
import { FeatureFlags } from "@ouroboros/feature-flags"
import type { Principal } from "@ouroboros/kernel"
import { LlmConfig } from "@ouroboros/llm"
import { Tenants } from "@ouroboros/tenancy"
import { Context, Effect, Layer, Option } from "effect"
import * as Breakers from "./Breakers.js"
import * as Flags from "./Flags.js"

/**
 * `Llm` and `Embedder`, and retrieval's model guard when the models are remote (the configured URL decides, not the
 * models' ids).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = Layer.unwrap(
  Effect.map(LlmConfig.config, (settings) => {
    const models = LlmConfig.layerFrom(settings, { headers: Correlation.outgoingHeaders })
    return Option.isSome(settings.url) ? Layer.merge(models, Breakers.layerOllamaGuard) : models
  })
)

/**
 * Which language model answers a tenant: `model`, when one is chosen (else the configured `OLLAMA_MODEL`), and
 * whether the local extractive model answers instead (`local`: the remote model is switched off).
 *
 * @since 0.1.0
 * @category models
 */
export interface Choice {
  readonly model?: string | undefined
  readonly local: boolean
}

/**
 * The choice for a request, in the request's evaluation context.
 *
 * @since 0.1.0
 * @category services
 */
export class ModelChoice extends Context.Service<
  ModelChoice,
  (principal: Principal.Principal, requested: string | undefined) => Effect.Effect<Choice>
>()("@ouroboros/server/ModelChoice") {}

/**
 * The model the request names, else the tenant's record's `model`, else the `llm-model` flag (empty: the configured
 * model); the local model when the `ollama` flag is off.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerChoice: Layer.Layer<ModelChoice, never, Tenants.Tenants | FeatureFlags.FeatureFlags> = Layer.effect(
  ModelChoice,
  Effect.gen(function*() {
    const tenants = yield* Tenants.Tenants
    const flags = yield* FeatureFlags.FeatureFlags
    const flagged = Effect.map(Flags.value(flags, Flags.LlmModel), (model) => model === "" ? undefined : model)
    return (principal, requested) =>
      Effect.gen(function*() {
        const local = !(yield* Flags.value(flags, Flags.Ollama))
        if (requested !== undefined) return { model: requested, local }
        const tenant = yield* tenants.lookup(principal.tenantId)
        const own = Option.getOrUndefined(Option.flatMap(tenant, (t) => Option.fromUndefinedOr(t.model)))
        return { model: own ?? (yield* flagged), local }
      })
  })
)
