/**
 * Flags from a file in flagd's format (JSON or YAML), validated when loaded and reloaded when it changes.
 *
 * The file is read every poll interval (flag files are small; reading them is cheaper than trusting modification
 * times, and it sees a Kubernetes ConfigMap's symlink swap like any other change). A new text is validated; a valid
 * one replaces the flags, an invalid or unreadable one keeps the last good flags, logs one warning that says why,
 * and turns the provider's status `stale` with the same reason until a good file comes back.
 *
 * The file must be valid when the provider starts: there are no last good flags to keep yet.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Layer, Semaphore, Stream, SubscriptionRef } from "effect"
import * as Fs from "node:fs/promises"
import * as FlagDefinition from "../FlagDefinition.js"
import * as FlagProvider from "../FlagProvider.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The flag file. */
  readonly path: string
  /** How often the file is read for changes (default 500 milliseconds). */
  readonly pollInterval?: Duration.Input | undefined
  /** `strict` (default) or `lenient` (what the flagd daemon accepts). */
  readonly validation?: FlagDefinition.ValidationMode | undefined
  /** The format; by default from the file name (`.yaml`/`.yml` YAML, otherwise JSON). */
  readonly format?: FlagDefinition.Format | undefined
}

const readText = (path: string) =>
  Effect.tryPromise({
    try: () => Fs.readFile(path, "utf8"),
    catch: (error) => `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`
  })

/**
 * Makes a provider over a flag file.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options) =>
  Effect.gen(function*() {
    const name = `file:${options.path}`
    const format = options.format ?? FlagDefinition.formatOf(options.path)
    const mode = options.validation ?? "strict"
    const sourceError = (detail: string, issues: ReadonlyArray<FlagDefinition.Issue> = []) =>
      new FlagProvider.FlagSourceError({ provider: name, detail, issues })

    const text = yield* readText(options.path).pipe(Effect.mapError((detail) => sourceError(detail)))
    const first = FlagDefinition.parse(text, format, mode)
    if (first._tag === "Failure") {
      return yield* sourceError(`flag file ${options.path} is invalid: ${first.failure.detail}`, first.failure.issues)
    }
    for (const warning of first.success.warnings) {
      yield* Effect.logWarning(`flag file ${options.path}: ${warning.path}: ${warning.message}`)
    }
    const cells = yield* FlagProvider.makeCells(name, FlagProvider.stateOf(first.success.flagSet, name))
    const lock = yield* Semaphore.make(1)
    let lastText = text
    let lastProblem: string | undefined

    const problem = (detail: string) =>
      Effect.gen(function*() {
        if (detail !== lastProblem) {
          lastProblem = detail
          yield* Effect.logWarning(`keeping the last good flags: ${detail}`)
        }
        yield* cells.failed(detail)
      })

    const check = lock.withPermits(1)(Effect.gen(function*() {
      const read = yield* Effect.result(readText(options.path))
      if (read._tag === "Failure") return yield* problem(read.failure)
      const text = read.success
      if (text === lastText) {
        // The good file is back after a bad one.
        if (lastProblem !== undefined) {
          lastProblem = undefined
          yield* cells.loaded(SubscriptionRef.getUnsafe(cells.state))
          yield* Effect.logInfo(`flag file ${options.path} is valid again`)
        }
        return
      }
      const parsed = FlagDefinition.parse(text, format, mode)
      if (parsed._tag === "Failure") {
        return yield* problem(`flag file ${options.path} is invalid: ${parsed.failure.detail}`)
      }
      lastText = text
      lastProblem = undefined
      for (const warning of parsed.success.warnings) {
        yield* Effect.logWarning(`flag file ${options.path}: ${warning.path}: ${warning.message}`)
      }
      yield* cells.loaded(FlagProvider.stateOf(parsed.success.flagSet, name))
      yield* Effect.logInfo(
        `reloaded flag file ${options.path}: ${Object.keys(parsed.success.flagSet.flags).length} flags`
      )
    })).pipe(Effect.annotateLogs({ service: "feature-flags", provider: name }))

    // The file was just read: the first check is one interval away.
    yield* check.pipe(
      Effect.catchCause((cause) => Effect.logError("flag file poll failed", cause)),
      Effect.delay(options.pollInterval ?? Duration.millis(500)),
      Effect.forever,
      Effect.forkScoped
    )

    return FlagProvider.FlagProvider.of({
      name,
      state: SubscriptionRef.get(cells.state),
      changes: SubscriptionRef.changes(cells.state),
      status: Effect.map(SubscriptionRef.get(cells.status), (s) => [s]),
      statusChanges: Stream.map(SubscriptionRef.changes(cells.status), (s) => [s]),
      writable: false,
      apply: () =>
        Effect.fail(
          new FlagProvider.ReadOnlyProvider({
            provider: name,
            detail: `flags from ${options.path} are read-only: edit the file`
          })
        ),
      refresh: check
    })
  })

/**
 * A provider over a flag file.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { FeatureFlags, FlagProviderFile } from "@ouroboros/feature-flags"
 * import { Layer } from "effect"
 * const FlagsLive = FeatureFlags.layer().pipe(Layer.provide(FlagProviderFile.layer({ path: "flags.yaml" })))
 */
export const layer = (options: Options): Layer.Layer<FlagProvider.FlagProvider, FlagProvider.FlagSourceError> =>
  Layer.effect(FlagProvider.FlagProvider, make(options))
