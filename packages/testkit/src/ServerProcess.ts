/**
 * A server program (the bundled server, `apps/server/dist/main.js`, or another build of it) as a child process, for
 * tests that talk to it as a client does: on a port from {@link Ports.freePort}, `127.0.0.1`, a fresh
 * data directory (or one given), no drain period, and a minimal environment (`PATH` and what the caller adds), so
 * that nothing of the test runner's environment reaches it. Its output is kept for failure messages.
 *
 * {@link start} waits until the readiness path answers 200, and fails with the output when the process exits first
 * or the deadline passes (the deadline only bounds the test). {@link spawn} and {@link awaitReady} are its two halves,
 * for tests that expect the process to refuse to start.
 *
 * @since 0.1.0
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { freePort } from "./Ports.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The program, run with this process's Node. */
  readonly main: string
  /** Over `PATH`, `PORT`, `HOST=127.0.0.1`, `DATA_DIR` and `SHUTDOWN_DRAIN_MS=0`. */
  readonly env?: Readonly<Record<string, string>> | undefined
  /** The data directory, kept on stop; by default a fresh one, removed on stop. */
  readonly dataDir?: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ServerProcess {
  readonly url: string
  readonly port: number
  readonly dataDir: string
  readonly child: ChildProcess.ChildProcess
  /** The exit code (null after a signal), once the process has exited. */
  readonly exited: Promise<number | null>
  /** What the process wrote so far, stdout and stderr. */
  output(): string
  /** SIGTERM, then waits for the exit; removes the data directory unless it was given. */
  stop(): Promise<void>
}

/**
 * Starts the program without waiting for it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const spawn = async (options: Options): Promise<ServerProcess> => {
  const dataDir = options.dataDir ?? Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-server-"))
  const port = await freePort()
  let output = ""
  const child = ChildProcess.spawn(process.execPath, [options.main], {
    env: {
      PATH: process.env.PATH ?? "",
      PORT: String(port),
      HOST: "127.0.0.1",
      DATA_DIR: dataDir,
      SHUTDOWN_DRAIN_MS: "0",
      ...options.env
    },
    stdio: ["ignore", "pipe", "pipe"]
  })
  child.stdout.on("data", (chunk) => (output += String(chunk)))
  child.stderr.on("data", (chunk) => (output += String(chunk)))
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    dataDir,
    child,
    exited,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM")
        await exited
      }
      if (options.dataDir === undefined) Fs.rmSync(dataDir, { recursive: true, force: true })
    }
  }
}

/**
 * Polls `path` (default `/health/ready`) until it answers 200 (`ready: true`) or the process exits (`ready: false`,
 * with its exit code). Past the deadline (default 90 s) it kills the process and fails with its output.
 *
 * @since 0.1.0
 * @category utils
 */
export const awaitReady = async (
  server: ServerProcess,
  options: { readonly path?: string | undefined; readonly deadlineMs?: number | undefined } = {}
): Promise<{ readonly ready: true } | { readonly ready: false; readonly code: number | null }> => {
  const deadline = Date.now() + (options.deadlineMs ?? 90_000)
  let code: number | null | undefined
  void server.exited.then((c) => (code = c))
  for (;;) {
    if (code !== undefined) return { ready: false, code }
    if (await fetch(`${server.url}${options.path ?? "/health/ready"}`).then((r) => r.status === 200, () => false)) {
      return { ready: true }
    }
    if (Date.now() > deadline) {
      server.child.kill("SIGKILL")
      throw new Error(`the server did not get ready:\n${server.output()}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/**
 * Starts the program and waits until it is ready; fails with its output when it exits first.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = async (
  options: Options & { readonly readyPath?: string | undefined; readonly deadlineMs?: number | undefined }
): Promise<ServerProcess> => {
  const server = await spawn(options)
  const outcome = await awaitReady(server, { path: options.readyPath, deadlineMs: options.deadlineMs })
  if (!outcome.ready) {
    await server.stop()
    throw new Error(`the server exited (code ${outcome.code}):\n${server.output()}`)
  }
  return server
}
