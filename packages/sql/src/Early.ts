/**
 * Starts the embedded database before the rest of a program loads. A server's entry module calls
 * {@link startEmbeddedEarly} and only then imports its bundle: PGlite (loading its WebAssembly, opening the data
 * directory) starts in its worker thread while the main thread loads and builds the server, and
 * `Database.layerEmbedded` adopts the running database instead of starting one.
 *
 * This module depends on nothing but Node's built-ins, so an entry that imports it stays small.
 *
 * @since 0.1.0
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Embedded from "./internal/embedded.js"
import * as Lock from "./internal/lock.js"

/**
 * What {@link startEmbeddedEarly} did: started the database of `directory`, or skipped with the reason (the
 * `Database` layer then opens the database itself and reports any problem the usual way).
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome =
  | { readonly _tag: "Started"; readonly directory: string }
  | { readonly _tag: "Skipped"; readonly reason: string }

/**
 * Locks `DATA_DIR` and starts its embedded database in a worker thread, unless `DATABASE_URL` is set. Reads the same
 * variables as `Database.config` (`DATABASE_URL`, `DATA_DIR` with its default `./data`), raw, as a hint only:
 * `Database.config` still decodes them, and when the layer's configuration ends up naming another directory, the
 * early database is stopped and unlocked and the layer opens its own. Never throws: whatever prevents an early start
 * is left for the layer to report.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * // The entry module of a server: nothing else is imported statically, so the database starts before the rest loads
 * // (bundled with splitting, each dynamic import is a chunk of its own).
 * import { startEmbeddedEarly } from "@ouroboros/sql/Early"
 *
 * const outcome = startEmbeddedEarly()
 * if (outcome._tag === "Skipped") console.log(`the database layer opens the database itself: ${outcome.reason}`)
 * // The program's layer, loaded now: `Database.layerConfig()` adopts the database started above.
 * const { Database } = await import("@ouroboros/sql")
 * const DatabaseLive = Database.layerConfig()
 */
export const startEmbeddedEarly = (
  env: Readonly<Record<string, string | undefined>> = process.env
): Outcome => {
  Embedded.mark("sql: early start")
  if (env.DATABASE_URL !== undefined && env.DATABASE_URL !== "") {
    return { _tag: "Skipped", reason: "DATABASE_URL is set" }
  }
  try {
    const dataDir = env.DATA_DIR ?? "./data"
    const attempt = Lock.attempt({ directory: dataDir })
    if (attempt._tag !== "Taken") return { _tag: "Skipped", reason: "the data directory is locked" }
    const directory = Path.resolve(dataDir, "pg")
    try {
      Fs.mkdirSync(directory, { recursive: true })
      const handle = Embedded.spawn(directory, new URL("./pglite-worker.mjs", import.meta.url))
      Embedded.publish({ directory, lock: attempt.lock, handle, tookOver: attempt.tookOver })
    } catch (error) {
      attempt.lock.release()
      throw error
    }
    return { _tag: "Started", directory }
  } catch (error) {
    return { _tag: "Skipped", reason: String(error) }
  }
}
