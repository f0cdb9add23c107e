/**
 * The bundled server (`apps/server/dist/main.js`) as the HTTP benchmarks run it: a child process on a free port of
 * 127.0.0.1 with an API key for tenant `bench`, started once `/health/ready` answers 200.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { awaitOk, freePort, track } from "./process.js"

/** The repository root: this module is two levels down both as source (bench/internal) and bundled (bench/dist). */
export const root = Path.resolve(import.meta.dirname, "../..")

/** The API key the bundled server accepts (and peers check). */
export const benchKey = "bench-key-0123456789abcdef"

export interface Started {
  readonly child: ChildProcess
  readonly port: number
}

/**
 * Starts the bundled server on `dataDir`, with `env` over the benchmark's defaults (a limit no run reaches); `main` is
 * the bundle (default `apps/server/dist/main.js`; another build of it, say of an earlier commit, to compare).
 */
export const startBundled = async (
  dataDir: string,
  env: Record<string, string> = {},
  main = Path.join(root, "apps/server/dist/main.js")
): Promise<Started & { readonly readyMillis: number }> => {
  if (!Fs.existsSync(main)) throw new Error("build the server first (npm run build)")
  const port = await freePort()
  const started = performance.now()
  const child = track(spawn(process.execPath, [main], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: "127.0.0.1",
      DATA_DIR: dataDir,
      LOG_LEVEL: "warning",
      OUROBOROS_API_KEYS: `bench:${benchKey}`,
      OUROBOROS_ADMIN_API_KEY: "bench-admin-0123456789abcdef",
      RATE_LIMIT_DEFAULT: "1000000000/1m",
      SHUTDOWN_DRAIN_MS: "0",
      ...env
    },
    stdio: ["ignore", "ignore", process.env.BENCH_DEBUG ? "inherit" : "ignore"]
  }))
  try {
    await awaitOk(`http://127.0.0.1:${port}/health/ready`, {
      gone: () => child.exitCode !== null || child.signalCode !== null,
      intervalMillis: 20
    })
  } catch (error) {
    child.kill("SIGKILL")
    throw error
  }
  return { child, port, readyMillis: performance.now() - started }
}

/** Stops a child with SIGTERM (SIGKILL after 10 s) and waits for it to exit. */
export const stopChild = (child: ChildProcess): Promise<void> =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGTERM")
    setTimeout(() => child.kill("SIGKILL"), 10_000).unref()
  })
