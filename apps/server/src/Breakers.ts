/**
 * The server's circuit breakers: the registry (shared through Redis when `REDIS_URL` is set), the policies of the
 * Ollama and Qdrant pipelines from `RESILIENCE_OLLAMA_*` / `RESILIENCE_QDRANT_*`, a health check and one span per
 * transition.
 *
 * Which calls go through a pipeline, and what a failure means (a 503 with `Retry-After`, or the local answerer), is
 * retrieval's: `@ouroboros/retrieval`'s `Resilient` guards. This module only configures them.
 *
 * @since 0.1.0
 */
import { CircuitBreaker, CircuitBreakerRedis, Resilience } from "@ouroboros/circuit-breaker"
import { HealthCheck } from "@ouroboros/health"
import { Resilient } from "@ouroboros/retrieval"
import { Config, Effect, Layer, Option, Redacted, Stream } from "effect"

/**
 * The breaker registry: shared through Redis when `REDIS_URL` is set (all replicas open and close together), per
 * process otherwise. Defaults come from `CIRCUIT_BREAKER_*`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerBreakers: Layer.Layer<CircuitBreaker.CircuitBreaker, Config.ConfigError> = Layer.unwrap(
  Effect.gen(function*() {
    const redisUrl = yield* Config.option(Config.Redacted("REDIS_URL"))
    const defaults = yield* CircuitBreaker.config.pipe(Config.nested("CIRCUIT_BREAKER"))
    return Option.match(redisUrl, {
      onNone: () => CircuitBreaker.layer({ defaults }),
      onSome: (url) => CircuitBreakerRedis.layerRedis({ url: Redacted.value(url) }, { defaults })
    })
  })
)

// `RESILIENCE_<NAME>_*`: the policy of a dependency's pipeline (timeout, retries, bulkhead, breaker policy).
const policy = (name: string): Config.Config<Resilience.Policy> =>
  Resilience.config.pipe(Config.nested(`RESILIENCE_${name.toUpperCase()}`))

/**
 * Retrieval's guard of the Ollama models: the `ollama` pipeline with the policy of `RESILIENCE_OLLAMA_*`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerOllamaGuard: Layer.Layer<never, Config.ConfigError, CircuitBreaker.CircuitBreaker> = Layer.unwrap(
  Effect.map(policy("ollama"), (ollama) => Resilient.layerModelGuard("ollama", ollama))
)

/**
 * Retrieval's guard of Qdrant: the `qdrant` pipeline with the policy of `RESILIENCE_QDRANT_*`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerQdrantGuard: Layer.Layer<never, Config.ConfigError, CircuitBreaker.CircuitBreaker> = Layer.unwrap(
  Effect.map(policy("qdrant"), (qdrant) => Resilient.layerVectorStoreGuard("qdrant", qdrant))
)

/**
 * A health check that warns while any breaker is not closed (the service runs degraded).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerHealth = HealthCheck.layerCheck({
  name: "circuit-breakers:state",
  componentType: "component",
  critical: false,
  run: Effect.flatMap(
    Effect.service(CircuitBreaker.CircuitBreaker),
    (registry) =>
      Effect.map(registry.snapshot, (all) => {
        const degraded = all.filter((s) => s.state === "open" || s.state === "half-open" || s.state === "forced-open")
        return degraded.length === 0
          ? HealthCheck.pass({ observedValue: all.length, observedUnit: "breakers" })
          : HealthCheck.warn(degraded.map((s) => `${s.name} is ${s.state}`).join(", "), {
            observedValue: degraded.length,
            observedUnit: "breakers not closed"
          })
      })
  )
})

/**
 * One span per breaker transition (`CircuitBreaker.transition`, with the breaker, the states, the version and whether
 * another replica made it), so a trace backend shows when a dependency was cut off and when it recovered.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerTransitionSpans: Layer.Layer<never, never, CircuitBreaker.CircuitBreaker> = Layer.effectDiscard(
  Effect.flatMap(Effect.service(CircuitBreaker.CircuitBreaker), (registry) =>
    registry.changes.pipe(
      Stream.runForEach((change) =>
        Effect.void.pipe(
          Effect.withSpan("CircuitBreaker.transition", {
            root: true,
            attributes: {
              "circuit_breaker.name": change.name,
              "circuit_breaker.from": change.from,
              "circuit_breaker.to": change.to,
              "circuit_breaker.version": change.version,
              "circuit_breaker.remote": change.remote
            }
          })
        )
      ),
      Effect.forkScoped
    ))
)
