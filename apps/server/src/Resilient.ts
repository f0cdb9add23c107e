/**
 * Every call to Ollama and Qdrant goes through its resilience pipeline (retry ← circuit breaker ← timeout ←
 * bulkhead). The services are decorated in place, so the rest of the server is unaware of them; fallbacks (the local
 * answerer, or a 503 with `Retry-After`) are decided by the retrieval pipeline, which knows what may stand in.
 *
 * @since 0.1.0
 */
import { CircuitBreaker, CircuitBreakerRedis, Resilience } from "@ouroboros/circuit-breaker"
import { HealthCheck } from "@ouroboros/health"
import { Embedder, Llm, LlmError } from "@ouroboros/llm"
import { VectorStore } from "@ouroboros/vector-store"
import { Config, Context, Effect, Layer, Option, Redacted, Stream } from "effect"

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

/**
 * The pipeline of a dependency from `RESILIENCE_<NAME>_*` (timeout, retries, bulkhead, breaker policy).
 *
 * @since 0.1.0
 * @category constructors
 */
export const pipeline = (
  name: string,
  predicates: { readonly isFailure: (e: unknown) => boolean; readonly isRetryable: (e: unknown) => boolean }
) =>
  Effect.flatMap(Resilience.config.pipe(Config.nested(`RESILIENCE_${name.toUpperCase()}`)), (policy) =>
    Resilience.make(name, {
      ...policy,
      breaker: { ...(policy.breaker ?? CircuitBreaker.defaultOptions), isFailure: predicates.isFailure },
      isRetryable: predicates.isRetryable
    }))

const isResilienceError = (error: unknown): error is Resilience.ResilienceError =>
  typeof error === "object" && error !== null && "_tag" in error &&
  (error._tag === "Timeout" || error._tag === "BulkheadFull" || error._tag === "CircuitOpen")

/**
 * The remaining break of a dependency's breaker in whole seconds, when it is open.
 *
 * @since 0.1.0
 * @category utils
 */
export const retryAfterSeconds = (name: string): Effect.Effect<number | undefined> =>
  Effect.serviceOption(CircuitBreaker.CircuitBreaker).pipe(
    Effect.flatMap(Option.match({
      onNone: () => Effect.succeed(undefined),
      onSome: (registry) =>
        registry.snapshotOf(name).pipe(
          Effect.map((s) => s.retryAfter === null ? undefined : Math.max(1, Math.ceil(s.retryAfter / 1000))),
          Effect.orElseSucceed(() => undefined)
        )
    }))
  )

/**
 * Wraps a remote `Llm` and `Embedder` (Ollama) in the `ollama` pipeline; local models are passed through.
 *
 * @since 0.1.0
 * @category layers
 */
export const models = <E, R>(inner: Layer.Layer<Llm.Llm | Embedder.Embedder, E, R>) =>
  Layer.effectContext(
    Effect.gen(function*() {
      const llm = yield* Llm.Llm
      const embedder = yield* Embedder.Embedder
      if (!llm.id.startsWith("ollama") && !embedder.id.startsWith("ollama")) {
        return Context.make(Llm.Llm, llm).pipe(Context.add(Embedder.Embedder, embedder))
      }
      const ollama = yield* pipeline("ollama", {
        isFailure: (e) => LlmError.isRetryable(e) || isResilienceError(e),
        isRetryable: LlmError.isRetryable
      })
      const guard = <A>(effect: Effect.Effect<A, LlmError.LlmError>): Effect.Effect<A, LlmError.LlmError> =>
        ollama(effect).pipe(Effect.catchIf(isResilienceError, (e) =>
          Effect.fail(
            new LlmError.LlmUnavailable({
              reason: e._tag === "Timeout" ? "timeout" : "connection",
              detail: e._tag === "CircuitOpen" ? "ollama: circuit open" : `ollama: ${e._tag}`
            })
          )))
      return Context.make(Llm.Llm, {
        ...llm,
        chat: (request) => guard(llm.chat(request)),
        generate: (prompt, options) => guard(llm.generate(prompt, options)),
        answer: (question, passages, options) => guard(llm.answer(question, passages, options))
      }).pipe(Context.add(Embedder.Embedder, {
        ...embedder,
        embed: (texts, options) => guard(embedder.embed(texts, options))
      }))
    })
  ).pipe(Layer.provide(inner))

/**
 * Wraps a Qdrant `VectorStore` in the `qdrant` pipeline; the embedded store is passed through.
 *
 * @since 0.1.0
 * @category layers
 */
export const vectors = <E, R>(inner: Layer.Layer<VectorStore.VectorStore, E, R>, remote: boolean) =>
  Layer.effect(
    VectorStore.VectorStore,
    Effect.gen(function*() {
      const store = yield* VectorStore.VectorStore
      if (!remote) return store
      const qdrant = yield* pipeline("qdrant", {
        isFailure: (e) =>
          isResilienceError(e) ||
          (e instanceof VectorStore.VectorStoreError && (e.reason === "Unavailable" || e.reason === "Timeout")),
        isRetryable: (e) => e instanceof VectorStore.VectorStoreError && e.reason === "Unavailable"
      })
      const guard = <A, E2>(effect: Effect.Effect<A, E2>): Effect.Effect<A, E2 | VectorStore.VectorStoreError> =>
        qdrant(effect).pipe(Effect.catchIf(isResilienceError, (e) =>
          Effect.fail(
            new VectorStore.VectorStoreError({
              reason: e._tag === "Timeout" ? "Timeout" : "Unavailable",
              message: e._tag === "CircuitOpen" ? "qdrant: circuit open" : `qdrant: ${e._tag}`,
              cause: e
            })
          ))) as Effect.Effect<A, E2 | VectorStore.VectorStoreError>
      return VectorStore.VectorStore.of({
        ensureCollection: (spec) => guard(store.ensureCollection(spec)),
        collectionInfo: (name) => guard(store.collectionInfo(name)),
        listCollections: guard(store.listCollections),
        upsert: (c, t, p) => guard(store.upsert(c, t, p)),
        delete: (c, t, s) => guard(store.delete(c, t, s)),
        search: (c, t, r) => guard(store.search(c, t, r)),
        count: (c, t, f) => guard(store.count(c, t, f)),
        // Snapshots are long transfers with their own deadline: only the breaker guards them.
        snapshot: (c) => store.snapshot(c),
        restore: (c, b) => store.restore(c, b),
        drop: (c) => guard(store.drop(c))
      })
    })
  ).pipe(Layer.provide(inner))

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
  run: Effect.flatMap(Effect.service(CircuitBreaker.CircuitBreaker), (registry) =>
    Effect.map(registry.snapshot, (all) => {
      const degraded = all.filter((s) => s.state === "open" || s.state === "half-open" || s.state === "forced-open")
      return degraded.length === 0
        ? HealthCheck.pass({ observedValue: all.length, observedUnit: "breakers" })
        : HealthCheck.warn(degraded.map((s) => `${s.name} is ${s.state}`).join(", "), {
          observedValue: degraded.length,
          observedUnit: "breakers not closed"
        })
    }))
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
