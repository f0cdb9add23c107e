/**
 * The bundled server (`apps/server/dist/main.js`) as a process, for tests that talk to it as a client does: started on
 * a free port and a fresh data directory, awaited until `/health/ready` answers 200, stopped with SIGTERM.
 */
import { freePort } from "@ouroboros/testkit/Ports"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const main = new URL("../apps/server/dist/main.js", import.meta.url).pathname

export interface Running {
  readonly url: string
  readonly dataDir: string
  readonly child: ReturnType<typeof spawn>
  /** What the process wrote so far, stdout and stderr. */
  readonly output: () => string
}

/**
 * Starts the server with `env` over a minimal environment (`PATH`, the port, `127.0.0.1`, a fresh `DATA_DIR`, no
 * drain period) and waits until it is ready. The deadline only bounds the test.
 */
export const startServer = async (env: Record<string, string>): Promise<Running> => {
  const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-server-"))
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  let output = ""
  const child = spawn(process.execPath, [main], {
    env: {
      PATH: process.env.PATH ?? "",
      PORT: String(port),
      HOST: "127.0.0.1",
      DATA_DIR: dataDir,
      SHUTDOWN_DRAIN_MS: "0",
      ...env
    },
    stdio: ["ignore", "pipe", "pipe"]
  })
  child.stdout?.on("data", (chunk) => (output += String(chunk)))
  child.stderr?.on("data", (chunk) => (output += String(chunk)))
  const deadline = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited: ${output}`)
    const ready = await fetch(`${url}/health/ready`).then((r) => r.status === 200, () => false)
    if (ready) break
    if (Date.now() > deadline) throw new Error(`the server did not get ready: ${output}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { url, dataDir, child, output: () => output }
}

/** Stops the server (SIGTERM, then waits for its exit) and removes its data directory. */
export const stopServer = async (server: Running | undefined) => {
  if (server === undefined) return
  if (server.child.exitCode === null) {
    const exited = new Promise((resolve) => server.child.once("exit", resolve))
    server.child.kill("SIGTERM")
    await exited
  }
  Fs.rmSync(server.dataDir, { recursive: true, force: true })
}
