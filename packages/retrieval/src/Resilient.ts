/**
 * Retrieval's resilience around the dependencies that may be remote: the models (`Embedder` and `Llm`) and the vector
 * store. A {@link Guard} says how a dependency's calls run (through its resilience pipeline: retry ← circuit breaker
 * ← timeout ← bulkhead, or directly) and, when a call failed, how long until the dependency may be called again.
 *
 * `Retrieval` and `Pipelines` read their guards from {@link ModelGuard} and {@link VectorStoreGuard}: by default calls
 * run directly (local models, the embedded store); an application with a remote model server or Qdrant provides a
 * guard built from a pipeline ({@link layerModelGuard}, {@link layerVectorStoreGuard}). A failure becomes a domain
 * error carrying the breaker's remaining break (`ModelUnavailable` / `VectorStoreUnavailable` with `retryAfter`):
 * the guard holds its pipeline, so nothing is looked up by name. Fallbacks (the local answerer, a degraded step)
 * are decided by the services, which know what may stand in.
 *
 * @since 0.1.0
 */
import { CircuitBreaker, Resilience } from "@ouroboros/circuit-breaker"
import { LlmError } from "@ouroboros/llm"
import { VectorStore } from "@ouroboros/vector-store"
import { Context, Effect, Layer } from "effect"
import { ModelUnavailable, VectorStoreUnavailable } from "./RetrievalError.js"

/**
 * How the calls to one dependency run.
 *
 * @since 0.1.0
 * @category models
 */
export interface Guard {
  /** Runs one call: through the dependency's resilience pipeline, or directly. */
  readonly run: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | Resilience.ResilienceError, R>
  /**
   * The remaining break (milliseconds) of the dependency's breaker after a call failed with `error`, when it is open:
   * the breaker's own `CircuitOpen.retryAfter`, or its state when that very call opened it. `undefined` otherwise.
   */
  readonly retryAfter: (error: unknown) => Effect.Effect<number | undefined>
}

/**
 * Calls run directly; a failure says nothing about when to retry. The guard of local models and of the embedded
 * store.
 *
 * @since 0.1.0
 * @category constructors
 */
export const direct: Guard = {
  run: (effect) => effect,
  retryAfter: () => Effect.succeed(undefined)
}

/**
 * Calls run through `pipeline`; after a failure, `retryAfter` comes from its breaker.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromPipeline = (pipeline: Resilience.Pipeline): Guard => ({
  run: (effect) => pipeline(effect),
  retryAfter: (error) =>
    error instanceof CircuitBreaker.CircuitOpen
      ? Effect.succeed(error.retryAfter)
      : Effect.map(pipeline.breaker.snapshot, (snapshot) => snapshot.retryAfter ?? undefined)
})

/**
 * The guard of the models (every `Embedder` and `Llm` call of `Retrieval` and `Pipelines`). Default: {@link direct}.
 *
 * @since 0.1.0
 * @category references
 */
export const ModelGuard: Context.Reference<Guard> = Context.Reference<Guard>(
  "@ouroboros/retrieval/Resilient/ModelGuard",
  { defaultValue: () => direct }
)

/**
 * The guard of the vector store (every `VectorStore` call of `Retrieval`). Default: {@link direct}.
 *
 * @since 0.1.0
 * @category references
 */
export const VectorStoreGuard: Context.Reference<Guard> = Context.Reference<Guard>(
  "@ouroboros/retrieval/Resilient/VectorStoreGuard",
  { defaultValue: () => direct }
)

const isResilienceError = (error: unknown): error is Resilience.ResilienceError =>
  error instanceof CircuitBreaker.CircuitOpen || error instanceof Resilience.Timeout ||
  error instanceof Resilience.BulkheadFull

/**
 * Which failures of a model server count against its breaker (those worth another attempt: connection, timeout,
 * 5xx; and the pipeline's own) and which are retried (`LlmError.isRetryable`). A missing model or a refused request
 * is the caller's problem, not the server's.
 *
 * @since 0.1.0
 * @category predicates
 */
export const modelPredicates = {
  isFailure: (error: unknown): boolean => LlmError.isRetryable(error) || isResilienceError(error),
  isRetryable: LlmError.isRetryable
}

const isVectorStoreDown = (error: unknown): boolean =>
  error instanceof VectorStore.VectorStoreError && (error.reason === "Unavailable" || error.reason === "Timeout")

/**
 * Which failures of a vector store count against its breaker (unavailable, timing out; and the pipeline's own) and
 * which are retried (unavailable). A bad filter or a vector of the wrong size is not the store's trouble.
 *
 * @since 0.1.0
 * @category predicates
 */
export const vectorStorePredicates = {
  isFailure: (error: unknown): boolean => isResilienceError(error) || isVectorStoreDown(error),
  isRetryable: (error: unknown): boolean =>
    error instanceof VectorStore.VectorStoreError && error.reason === "Unavailable"
}

const withPredicates = (
  policy: Resilience.Policy,
  predicates: { readonly isFailure: (error: unknown) => boolean; readonly isRetryable: (error: unknown) => boolean }
): Resilience.Policy => ({
  ...policy,
  breaker: { ...(policy.breaker ?? CircuitBreaker.defaultOptions), isFailure: predicates.isFailure },
  isRetryable: predicates.isRetryable
})

/**
 * The guard of a model server: a pipeline named `name` (its breaker is `name` in the registry) with `policy` and
 * {@link modelPredicates}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeModelGuard = (
  name: string,
  policy: Resilience.Policy = {}
): Effect.Effect<Guard, never, CircuitBreaker.CircuitBreaker> =>
  Effect.map(Resilience.make(name, withPredicates(policy, modelPredicates)), fromPipeline)

/**
 * The guard of a remote vector store: a pipeline named `name` with `policy` and {@link vectorStorePredicates}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeVectorStoreGuard = (
  name: string,
  policy: Resilience.Policy = {}
): Effect.Effect<Guard, never, CircuitBreaker.CircuitBreaker> =>
  Effect.map(Resilience.make(name, withPredicates(policy, vectorStorePredicates)), fromPipeline)

/**
 * Provides {@link ModelGuard}: the models are called through the pipeline `name`.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { CircuitBreaker } from "@ouroboros/circuit-breaker"
 * import { Resilient } from "@ouroboros/retrieval"
 * import { Layer } from "effect"
 * const Guards = Resilient.layerModelGuard("ollama", {
 *   timeout: "30 seconds",
 *   retry: { times: 2, delay: "100 millis" }
 * }).pipe(Layer.provide(CircuitBreaker.layer()))
 */
export const layerModelGuard = (
  name: string,
  policy: Resilience.Policy = {}
): Layer.Layer<never, never, CircuitBreaker.CircuitBreaker> => Layer.effect(ModelGuard, makeModelGuard(name, policy))

/**
 * Provides {@link VectorStoreGuard}: the vector store is called through the pipeline `name`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerVectorStoreGuard = (
  name: string,
  policy: Resilience.Policy = {}
): Layer.Layer<never, never, CircuitBreaker.CircuitBreaker> =>
  Layer.effect(VectorStoreGuard, makeVectorStoreGuard(name, policy))

const reasonOf = (error: unknown): string => {
  if (typeof error === "object" && error !== null) {
    const { detail, message } = error as { readonly message?: unknown; readonly detail?: unknown }
    if (typeof message === "string" && message !== "") return message
    if (typeof detail === "string" && detail !== "") return detail
  }
  return String(error)
}

/**
 * The `ModelUnavailable` of a failed model call, with the breaker's remaining break.
 *
 * @since 0.1.0
 * @category errors
 */
export const modelUnavailable = (
  guard: Guard,
  model: string,
  purpose: ModelUnavailable["purpose"],
  error: unknown
): Effect.Effect<never, ModelUnavailable> =>
  Effect.flatMap(guard.retryAfter(error), (retryAfter) =>
    Effect.fail(
      new ModelUnavailable({
        model,
        purpose,
        reason: reasonOf(error),
        ...(retryAfter !== undefined ? { retryAfter } : {})
      })
    ))

/**
 * The `VectorStoreUnavailable` of a failed vector store call, with the breaker's remaining break.
 *
 * @since 0.1.0
 * @category errors
 */
export const vectorStoreUnavailable = (guard: Guard, error: unknown): Effect.Effect<never, VectorStoreUnavailable> =>
  Effect.flatMap(guard.retryAfter(error), (retryAfter) =>
    Effect.fail(
      new VectorStoreUnavailable({ reason: reasonOf(error), ...(retryAfter !== undefined ? { retryAfter } : {}) })
    ))

/**
 * Runs a model call through `guard`; any failure is a `ModelUnavailable`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const callModel = <A, E, R>(
  guard: Guard,
  model: string,
  purpose: ModelUnavailable["purpose"],
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, ModelUnavailable, R> =>
  Effect.catch(guard.run(effect), (error) => modelUnavailable(guard, model, purpose, error))

/**
 * A `VectorStore` whose every call (but snapshots and restores, long transfers with deadlines of their own) runs
 * through `guard`, for the store's other users (backups, a command line) to share retrieval's pipeline. A pipeline's
 * own error becomes a `VectorStoreError` (`Timeout`, else `Unavailable`) whose `cause` is that error, so a
 * `CircuitOpen` keeps its `retryAfter`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const guardVectorStore = (
  guard: Guard,
  store: VectorStore.VectorStore["Service"]
): VectorStore.VectorStore["Service"] => {
  if (guard === direct) return store
  const run = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E | VectorStore.VectorStoreError> =>
    Effect.catchIf(
      guard.run(effect),
      isResilienceError,
      (error) =>
        Effect.fail(
          new VectorStore.VectorStoreError({
            reason: error._tag === "Timeout" ? "Timeout" : "Unavailable",
            message: error.message,
            cause: error
          })
        )
    ) as Effect.Effect<A, E | VectorStore.VectorStoreError>
  return VectorStore.VectorStore.of({
    ensureCollection: (spec) => run(store.ensureCollection(spec)),
    collectionInfo: (name) => run(store.collectionInfo(name)),
    listCollections: run(store.listCollections),
    upsert: (collection, tenantId, points) => run(store.upsert(collection, tenantId, points)),
    delete: (collection, tenantId, selector) => run(store.delete(collection, tenantId, selector)),
    search: (collection, tenantId, request) => run(store.search(collection, tenantId, request)),
    count: (collection, tenantId, filter) => run(store.count(collection, tenantId, filter)),
    snapshot: (collection) => store.snapshot(collection),
    restore: (collection, bytes) => store.restore(collection, bytes),
    drop: (collection) => run(store.drop(collection))
  })
}

/**
 * Replaces the `VectorStore` in context with one guarded by the {@link VectorStoreGuard} in context (see
 * {@link guardVectorStore}).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerGuardedVectorStore: Layer.Layer<VectorStore.VectorStore, never, VectorStore.VectorStore> = Layer
  .effect(
    VectorStore.VectorStore,
    Effect.gen(function*() {
      const store = yield* VectorStore.VectorStore
      const guard = yield* VectorStoreGuard
      return guardVectorStore(guard, store)
    })
  )
