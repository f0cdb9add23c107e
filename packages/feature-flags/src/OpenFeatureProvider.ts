/**
 * An OpenFeature server provider (`@openfeature/server-sdk`) over `FeatureFlags`, so that code written against the
 * OpenFeature SDK evaluates the same flags, with the same kill switches, overrides and metrics, and the SDK's hooks
 * see every evaluation.
 *
 * Events: `ConfigurationChanged` with the keys that changed whenever the flags change (a file reload, a change on
 * another replica, a kill switch); `Stale` while a source serves its last good flags or has none (a broken file, an
 * unreachable database) and `Ready` when it recovers.
 *
 * A separate entry point (`@ouroboros/feature-flags/OpenFeatureProvider`): `@openfeature/server-sdk` is only needed
 * by applications that use it.
 *
 * @since 0.1.0
 */
import {
  type EvaluationContext,
  type Hook,
  type JsonValue,
  NOOP_PROVIDER,
  OpenFeature,
  OpenFeatureEventEmitter,
  type Provider,
  ProviderEvents,
  type ResolutionDetails
} from "@openfeature/server-sdk"
import { Effect, Layer, Stream } from "effect"
import * as FeatureFlags from "./FeatureFlags.js"
import * as FlagProvider from "./FlagProvider.js"

/**
 * The provider's name in OpenFeature's metadata.
 *
 * @since 0.1.0
 * @category constants
 */
export const providerName = "ouroboros-feature-flags"

/**
 * The OpenFeature provider. Build it with {@link make}, which also wires its events; resolutions are synchronous
 * underneath (the promises are already resolved).
 *
 * @since 0.1.0
 * @category models
 */
export class OuroborosProvider implements Provider {
  /** @since 0.1.0 */
  readonly metadata = { name: providerName } as const
  /** @since 0.1.0 */
  readonly runsOn = "server" as const
  /** @since 0.1.0 */
  readonly events = new OpenFeatureEventEmitter()
  /** Provider hooks (none by default; applications add theirs to the client or the API). @since 0.1.0 */
  readonly hooks: Array<Hook> = []
  readonly #flags: FeatureFlags.FeatureFlags["Service"]

  constructor(flags: FeatureFlags.FeatureFlags["Service"]) {
    this.#flags = flags
  }

  /** @since 0.1.0 */
  resolveBooleanEvaluation(
    flagKey: string,
    defaultValue: boolean,
    context: EvaluationContext
  ): Promise<ResolutionDetails<boolean>> {
    return Promise.resolve(this.#flags.resolve("boolean", flagKey, defaultValue, context))
  }

  /** @since 0.1.0 */
  resolveStringEvaluation(
    flagKey: string,
    defaultValue: string,
    context: EvaluationContext
  ): Promise<ResolutionDetails<string>> {
    return Promise.resolve(this.#flags.resolve("string", flagKey, defaultValue, context))
  }

  /** @since 0.1.0 */
  resolveNumberEvaluation(
    flagKey: string,
    defaultValue: number,
    context: EvaluationContext
  ): Promise<ResolutionDetails<number>> {
    return Promise.resolve(this.#flags.resolve("number", flagKey, defaultValue, context))
  }

  /** @since 0.1.0 */
  resolveObjectEvaluation<T extends JsonValue>(
    flagKey: string,
    defaultValue: T,
    context: EvaluationContext
  ): Promise<ResolutionDetails<T>> {
    return Promise.resolve(this.#flags.resolve("object", flagKey, defaultValue, context))
  }
}

/**
 * Makes the provider over the `FeatureFlags` in context and forwards flag changes and source health to its events
 * for as long as the scope is open.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * import { FeatureFlags } from "@ouroboros/feature-flags"
 * import * as OpenFeatureProvider from "@ouroboros/feature-flags/OpenFeatureProvider"
 * import { OpenFeature } from "@openfeature/server-sdk"
 * import { Effect } from "effect"
 * const program = Effect.gen(function*() {
 *   const provider = yield* OpenFeatureProvider.make
 *   yield* Effect.promise(() => OpenFeature.setProviderAndWait(provider))
 *   const client = OpenFeature.getClient()
 *   return yield* Effect.promise(() => client.getBooleanValue("new-search", false, { targetingKey: "u1" }))
 * }).pipe(Effect.scoped, Effect.provide(FeatureFlags.layerMemory()))
 */
export const make = Effect.gen(function*() {
  const flags = yield* FeatureFlags.FeatureFlags
  const provider = new OuroborosProvider(flags)
  // Subscribed before the provider is returned: no change made after `make` is missed.
  const changes = yield* flags.subscribe
  yield* changes.pipe(
    Stream.runForEach(({ keys }) =>
      Effect.sync(() => provider.events.emit(ProviderEvents.ConfigurationChanged, { flagsChanged: [...keys] }))
    ),
    Effect.forkScoped
  )
  let stale = false
  yield* flags.statusChanges.pipe(
    Stream.runForEach((statuses) =>
      Effect.sync(() => {
        const summary = FlagProvider.summarize(statuses)
        if (summary.status !== "pass" && !stale) {
          stale = true
          provider.events.emit(ProviderEvents.Stale, { message: summary.output ?? "a flag source is not ready" })
        } else if (summary.status === "pass" && stale) {
          stale = false
          provider.events.emit(ProviderEvents.Ready, { message: "every flag source is ready" })
        }
      })
    ),
    Effect.forkScoped
  )
  return provider
})

/**
 * Registers the provider with the OpenFeature API (for `domain`, or as the default provider) and waits until it is
 * ready; when the layer is released the registration is replaced by OpenFeature's no-op provider.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerGlobal = (
  options: { readonly domain?: string | undefined } = {}
): Layer.Layer<never, never, FeatureFlags.FeatureFlags> =>
  Layer.effectDiscard(Effect.gen(function*() {
    const provider = yield* make
    yield* Effect.acquireRelease(
      Effect.promise(() =>
        options.domain === undefined
          ? OpenFeature.setProviderAndWait(provider)
          : OpenFeature.setProviderAndWait(options.domain, provider)
      ),
      () =>
        Effect.promise(() =>
          options.domain === undefined
            ? OpenFeature.setProviderAndWait(NOOP_PROVIDER)
            : OpenFeature.setProviderAndWait(options.domain, NOOP_PROVIDER)
        ).pipe(Effect.ignore)
    )
  }))
