/**
 * Background jobs (backups, catch-up projections) that a shutdown interrupts cleanly: each job is a supervised fiber,
 * interrupted when the drain period ends (its finalizers run while the resources it uses are still open), and a
 * job written with {@link resumable} saves a checkpoint after each step so the next start resumes where it stopped.
 *
 * @since 0.1.0
 */
import { Context, Effect, FiberMap, Layer, Option, type Schema, type Scope } from "effect"
import { KeyValueStore } from "effect/persistence"
import * as Shutdown from "./Shutdown.js"

/**
 * The supervisor of background jobs.
 *
 * @since 0.1.0
 * @category services
 */
export class Jobs extends Context.Service<Jobs, {
  /**
   * Starts `job` in the background under `name` (a running job of the same name is interrupted first). Failures and
   * defects are logged, not propagated; interruption at shutdown is logged as such.
   */
  readonly run: <E, R>(name: string, job: Effect.Effect<void, E, R>) => Effect.Effect<void, never, R>
  /** The names of the jobs running now. */
  readonly running: Effect.Effect<ReadonlyArray<string>>
  /** Interrupts every job and waits for their finalizers. */
  readonly stopAll: Effect.Effect<void>
}>()("@ouroboros/shutdown/Jobs") {}

/**
 * Builds the supervisor; the jobs are interrupted when the shutdown stops accepting connections, and in any case when
 * the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<Jobs["Service"], never, Scope.Scope | Shutdown.Shutdown> = Effect.gen(function*() {
  const shutdown = yield* Shutdown.Shutdown
  const fibers = yield* FiberMap.make<string>()
  const stopAll = FiberMap.clear(fibers)
  yield* shutdown.onStop("background jobs", stopAll)
  return Jobs.of({
    run: (name, job) =>
      Effect.asVoid(FiberMap.run(
        fibers,
        name,
        job.pipe(
          Effect.onInterrupt(() => Effect.logInfo("Background job interrupted; it resumes on the next start")),
          Effect.catchCause((cause) => Effect.logError("Background job failed", cause)),
          Effect.annotateLogs({ job: name })
        )
      )),
    running: Effect.sync(() => Array.from(fibers, ([name]) => name)),
    stopAll
  })
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Jobs, never, Shutdown.Shutdown> = Layer.effect(Jobs, make)

/**
 * Where a job keeps its progress.
 *
 * @since 0.1.0
 * @category models
 */
export interface Checkpoint<S> {
  readonly load: Effect.Effect<Option.Option<S>>
  readonly save: (state: S) => Effect.Effect<void>
  readonly clear: Effect.Effect<void>
}

/**
 * A checkpoint in the `KeyValueStore` (`KeyValueStore.layerFileSystem(dir)` in production), decoded with `schema`.
 * An unreadable checkpoint is reported and treated as absent; a failure to save one is a defect.
 *
 * @since 0.1.0
 * @category constructors
 */
export const checkpoint = <S, I>(
  name: string,
  schema: Schema.Codec<S, I>
): Effect.Effect<Checkpoint<S>, never, KeyValueStore.KeyValueStore> =>
  Effect.map(KeyValueStore.KeyValueStore, (kv) => {
    const store = KeyValueStore.toSchemaStore(kv, schema)
    const key = `job-checkpoint:${name}`
    return {
      load: store.get(key).pipe(
        Effect.catch((error) =>
          Effect.as(Effect.logWarning(`Checkpoint of job "${name}" is unreadable, starting over`, error), Option.none())
        )
      ),
      save: (state: S) => Effect.orDie(store.set(key, state)),
      clear: Effect.orDie(store.remove(key))
    }
  })

/**
 * A job made of steps that resumes after an interruption: it starts from the saved checkpoint (or `initial`), runs
 * `step` until it yields `None`, saves the state after each step and clears it at the end. Interrupted mid-step, the
 * step runs again on the next start (at least once), so steps should be idempotent.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * import { Jobs } from "@ouroboros/shutdown"
 * import { Effect, Option, Schema } from "effect"
 * const catchUp = Effect.flatMap(Jobs.checkpoint("catch-up", Schema.Number), (checkpoint) =>
 *   Jobs.resumable({
 *     checkpoint,
 *     initial: 0,
 *     step: (sequence) => Effect.succeed(sequence < 100 ? Option.some(sequence + 1) : Option.none())
 *   }))
 */
export const resumable = <S, E, R>(options: {
  readonly checkpoint: Checkpoint<S>
  readonly initial: S
  readonly step: (state: S) => Effect.Effect<Option.Option<S>, E, R>
}): Effect.Effect<void, E, R> =>
  Effect.gen(function*() {
    const saved = yield* options.checkpoint.load
    if (Option.isSome(saved)) yield* Effect.logInfo("Background job resumes from its checkpoint")
    let state = Option.getOrElse(saved, () => options.initial)
    while (true) {
      const next = yield* options.step(state)
      if (Option.isNone(next)) break
      state = next.value
      yield* options.checkpoint.save(state)
    }
    yield* options.checkpoint.clear
  })
