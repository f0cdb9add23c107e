/**
 * The embedded database's worker thread, in plain Node (no Effect), shared by the `Database` layer and by `Early`,
 * which starts it before the server's bundle loads and leaves it for the layer to adopt.
 *
 * @internal
 */
import * as Module from "node:module"
import * as Os from "node:os"
import * as Path from "node:path"
import { Worker } from "node:worker_threads"
import type { Held } from "./lock.js"

/**
 * What a started worker reports. Exported because the declaration of `Database.startEmbedded` (its result) names it;
 * nothing imports it, hence `@public` for knip.
 *
 * @public
 */
export interface Info {
  readonly port: number
  readonly version: string
}

/** Where the start of the database failed: loading PGlite, opening the data directory, or opening the socket. */
export type Stage = "load" | "open" | "listen" | "thread"

/** Why the worker did not start the database, or stopped serving it. */
export class WorkerFailure extends Error {
  readonly stage: Stage
  constructor(stage: Stage, message: string, options?: { readonly cause?: unknown }) {
    super(message, options)
    this.name = "WorkerFailure"
    this.stage = stage
  }
}

/** A worker thread running PGlite behind a socket. */
export interface Handle {
  /** The data directory (`<DATA_DIR>/pg`, resolved). */
  readonly directory: string
  readonly threadId: number
  /** Resolves once the socket accepts connections; rejects with a {@link WorkerFailure}. */
  readonly ready: Promise<Info>
  /**
   * Resolves when the thread ends without having been asked to stop (it crashed, or PGlite aborted): the reason. It
   * never resolves for a thread that is stopped.
   */
  readonly lost: Promise<WorkerFailure>
  /**
   * Closes the socket and the database (a checkpoint), bounded by `timeoutMillis`, then ends the thread. Resolves
   * with the reason the database could not be closed cleanly, if it could not. Idempotent.
   */
  readonly stop: (timeoutMillis: number) => Promise<string | undefined>
}

type WorkerMessage =
  | { readonly type: "ready"; readonly port: number; readonly version: string }
  | { readonly type: "error"; readonly stage: Stage; readonly message: string }
  | { readonly type: "stopped"; readonly error?: string }

const pgliteVersion = "0.5.14"

/**
 * Where the template of a fresh data directory is kept: `OUROBOROS_PGLITE_TEMPLATE`, or a file in the system's
 * temporary directory named after the PGlite version.
 */
export const templatePath = (): string =>
  process.env.OUROBOROS_PGLITE_TEMPLATE ?? Path.join(Os.tmpdir(), `ouroboros-pglite-${pgliteVersion}.tgz`)

/** Whether start-up milestones are printed (`OUROBOROS_STARTUP_TRACE=1`): one JSON line each on stderr. */
const tracing = (): boolean => {
  const value = process.env.OUROBOROS_STARTUP_TRACE
  return value !== undefined && value !== "" && value !== "0" && value !== "false"
}

/** Prints a start-up milestone with the milliseconds since the process started, when {@link tracing}. */
export const mark = (name: string): void => {
  if (tracing()) {
    process.stderr.write(`${JSON.stringify({ startup: name, ms: Math.round(performance.now() * 10) / 10 })}\n`)
  }
}

/**
 * Starts the worker thread on `directory` (which must exist). `script` is `pglite-worker.mjs`, resolved by the
 * caller next to its own module: in a bundle that is the bundle's directory, where the build copies the script.
 */
export const spawn = (directory: string, script: URL): Handle => {
  mark("sql: worker spawned")
  // The worker's own modules (PGlite) use the compile cache when the process has one (`module.enableCompileCache`).
  const getCompileCacheDir = (Module as { getCompileCacheDir?: () => string | undefined }).getCompileCacheDir
  const worker = new Worker(script, {
    workerData: {
      dataDir: directory,
      template: templatePath(),
      compileCache: getCompileCacheDir?.(),
      trace: tracing() ? performance.timeOrigin : undefined
    }
  })
  let settle: { resolve: (info: Info) => void; reject: (error: WorkerFailure) => void } | undefined
  const ready = new Promise<Info>((resolve, reject) => {
    settle = { resolve, reject }
  })
  // Nobody may be waiting yet (an early start): the layer that adopts the worker reads the outcome later.
  ready.catch(() => {})
  let onLost: ((failure: WorkerFailure) => void) | undefined
  const lost = new Promise<WorkerFailure>((resolve) => {
    onLost = resolve
  })
  let onStopped: ((error: string | undefined) => void) | undefined
  const stopped = new Promise<string | undefined>((resolve) => {
    onStopped = resolve
  })
  let stopping: Promise<string | undefined> | undefined
  let error: Error | undefined
  worker.on("message", (message: WorkerMessage) => {
    switch (message.type) {
      case "ready":
        mark("sql: worker ready")
        return settle!.resolve({ port: message.port, version: message.version })
      case "error":
        return settle!.reject(new WorkerFailure(message.stage, message.message))
      case "stopped":
        return onStopped!(message.error)
    }
  })
  // An uncaught exception in the thread (the thread then exits).
  worker.on("error", (cause) => {
    error = cause
  })
  worker.on("exit", (code) => {
    const failure = new WorkerFailure(
      "thread",
      error === undefined ? `the worker thread exited with code ${code}` : `the worker thread failed: ${error.message}`,
      { cause: error }
    )
    // Before it was ready: startup would otherwise wait for ever. After: whoever serves the database must know.
    settle!.reject(failure)
    if (stopping === undefined) onLost!(failure)
    // While stopping: the thread ended before it said the database was closed.
    onStopped!(failure.message)
  })
  return {
    directory,
    threadId: worker.threadId,
    ready,
    lost,
    stop: (timeoutMillis) =>
      stopping ??= (async () => {
        worker.postMessage({ type: "stop" })
        let timer: NodeJS.Timeout | undefined
        const outcome = await Promise.race([
          stopped,
          new Promise<string>((resolve) => {
            timer = setTimeout(() => resolve(`not closed within ${timeoutMillis} ms`), timeoutMillis)
          })
        ])
        clearTimeout(timer)
        await worker.terminate()
        return outcome
      })()
  }
}

/** A database started before the layer that uses it: its lock and its worker, until a layer adopts them. */
export interface Early {
  readonly directory: string
  readonly lock: Held
  readonly handle: Handle
  /** Why a stale lock was taken over, to be logged by the layer that adopts it. */
  readonly tookOver?: string | undefined
}

const registryKey = Symbol.for("@ouroboros/sql/Early")

type Registry = { early?: Early | undefined }

const registry = (): Registry => {
  const global = globalThis as { [registryKey]?: Registry }
  return global[registryKey] ??= {}
}

/** Leaves an early start for a layer to adopt (one per process; the bundle and the entry share `globalThis`). */
export const publish = (early: Early): void => {
  registry().early = early
  // Never adopted (the process ends before the layer runs, e.g. on a configuration error): the lock goes with it.
  process.once("exit", () => {
    if (registry().early === early) early.lock.release()
  })
}

/**
 * Takes the early start of `directory`, if there is one. An early start of another directory (the configuration
 * says otherwise than the environment did) is handed back as `abandoned`, for the caller to stop.
 */
export const claim = (directory: string): { readonly early?: Early; readonly abandoned?: Early } => {
  const current = registry().early
  if (current === undefined) return {}
  registry().early = undefined
  return current.directory === directory ? { early: current } : { abandoned: current }
}
