/**
 * Which modules a program loads: runs a fixture in its own Node process with a resolve hook that records every module
 * it resolves (through `import` or `require`), and can make chosen packages fail to resolve as if they were not
 * installed. Packages use it to check that their memory-only entry points load none of their optional dependencies
 * (ioredis, pg, OpenTelemetry), and that the modules that need one fail with their typed error when it is missing.
 *
 * @since 0.1.0
 */
import { Data, Effect } from "effect"
import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"

const run = promisify(execFile)

/** The hook, plain JavaScript next to this module in src/ and in dist/. */
const hook = fileURLToPath(new URL("./record-loads.mjs", import.meta.url))

/**
 * Options of {@link record}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * The directory the fixture runs in (the package's, usually), from which `tsx` and the fixture's bare imports
   * resolve.
   */
  readonly cwd: string
  /** Changes to the inherited environment: a variable set to `undefined` is removed. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
  /** Bare specifiers that fail to resolve (`ERR_MODULE_NOT_FOUND`), as packages that are not installed. */
  readonly deny?: RegExp | undefined
}

/**
 * What a fixture printed and what it loaded.
 *
 * @since 0.1.0
 * @category models
 */
export interface Recorded {
  /** The fixture's standard output, parsed as JSON. */
  readonly output: unknown
  /**
   * Every resolution, in order, one a line: `<specifier> <resolved URL>`, or `<specifier> denied` for one that
   * {@link Options.deny} refused.
   */
  readonly loaded: ReadonlyArray<string>
}

/**
 * The fixture did not run to its end, or did not print JSON.
 *
 * @since 0.1.0
 * @category errors
 */
export class FixtureFailed extends Data.TaggedError("FixtureFailed")<{
  readonly fixture: string
  readonly cause: unknown
}> {
  override get message() {
    return `The fixture ${this.fixture} failed: ${
      this.cause instanceof Error ? this.cause.message : String(this.cause)
    }`
  }
}

/**
 * Runs `fixture` (a TypeScript or JavaScript file, run as `node --conditions=@ouroboros/source --import tsx`, so the
 * workspace packages resolve to their sources) in a new Node process and records the modules it resolves. The fixture
 * prints one JSON value on its standard output.
 *
 * @example
 * ```ts
 * import { assert, it } from "@effect/vitest"
 * import * as ModuleLoads from "@ouroboros/testkit/ModuleLoads"
 * import { Effect } from "effect"
 * import { fileURLToPath } from "node:url"
 *
 * it.effect("the in-memory store loads no optional dependency", () =>
 *   Effect.gen(function*() {
 *     const { loaded } = yield* ModuleLoads.record(fileURLToPath(new URL("./fixture/memory-only.ts", import.meta.url)), {
 *       cwd: fileURLToPath(new URL("..", import.meta.url))
 *     })
 *     assert.deepStrictEqual(ModuleLoads.matching(loaded), [])
 *   }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const record = (fixture: string, options: Options): Effect.Effect<Recorded, FixtureFailed> =>
  Effect.acquireUseRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "module-loads-"))),
    (dir) =>
      Effect.tryPromise({
        try: async (signal) => {
          const file = join(dir, "loaded.txt")
          const env: NodeJS.ProcessEnv = { ...process.env, RECORD_LOADS_FILE: file }
          delete env.RECORD_LOADS_DENY
          if (options.deny !== undefined) env.RECORD_LOADS_DENY = options.deny.source
          for (const [name, value] of Object.entries(options.env ?? {})) {
            if (value === undefined) delete env[name]
            else env[name] = value
          }
          const { stdout } = await run(
            process.execPath,
            ["--conditions=@ouroboros/source", "--import", "tsx", "--import", hook, fixture],
            { env, cwd: options.cwd, signal }
          )
          const loaded = readFileSync(file, "utf8").split("\n").filter((line) => line.length > 0)
          return { output: JSON.parse(stdout.trim()) as unknown, loaded }
        },
        catch: (cause) => new FixtureFailed({ fixture, cause })
      }),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

/**
 * A bare specifier or resolved URL of an optional dependency of the packages: ioredis, pg (and `pg-*`) or
 * OpenTelemetry.
 *
 * @since 0.1.0
 * @category constants
 */
export const optionalDependencies: RegExp =
  /^(?:ioredis|pg|pg-[a-z-]+|@opentelemetry\/.+)$|\/node_modules\/(?:ioredis|pg|@opentelemetry)\//

/**
 * The lines of {@link Recorded.loaded} whose specifier or resolved URL matches `pattern` (by default
 * {@link optionalDependencies}).
 *
 * @since 0.1.0
 * @category filters
 */
export const matching = (
  loaded: ReadonlyArray<string>,
  pattern: RegExp = optionalDependencies
): ReadonlyArray<string> => loaded.filter((line) => line.split(" ").some((part) => pattern.test(part)))
