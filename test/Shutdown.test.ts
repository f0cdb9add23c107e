import { assert, describe, it } from "@effect/vitest"
import { Testing } from "@ouroboros/server"
import { OllamaStandIn } from "@ouroboros/testkit"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { eventually, tenantA } from "./helpers.js"

const main = Path.resolve(import.meta.dirname, "../apps/server/dist/main.js")

describe.runIf(Fs.existsSync(main))("graceful shutdown of the real server process", () => {
  it.live(
    "SIGTERM under load: no request sent before the drain ended fails, the long one completes, exit 0",
    () =>
      Effect.gen(function*() {
        // Each chunk of a streamed answer takes 150 ms: an /ask stays in flight for about two seconds.
        const ollama = yield* OllamaStandIn.scoped({ streamDelayMs: 150 })
        const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-shutdown-"))
        // A port the kernel just handed out and released: a random pick can collide with another test's connection.
        const port = yield* Effect.promise(() =>
          new Promise<number>((resolve) => {
            const probe = Net.createServer().listen(0, "127.0.0.1", () => {
              const { port } = probe.address() as Net.AddressInfo
              probe.close(() => resolve(port))
            })
          })
        )
        const drainMs = 1500
        const child = spawn(process.execPath, [main], {
          env: {
            ...process.env,
            PORT: String(port),
            HOST: "127.0.0.1",
            DATA_DIR: dataDir,
            LOG_LEVEL: "info",
            OUROBOROS_API_KEYS: `tenant-a:${Testing.keys.tenantA}`,
            OUROBOROS_ADMIN_API_KEY: Testing.keys.admin,
            OLLAMA_URL: ollama.url,
            OLLAMA_EMBED_DIMENSIONS: "768",
            RATE_LIMIT_DEFAULT: "1000000/1m",
            SHUTDOWN_DRAIN_MS: String(drainMs),
            SHUTDOWN_TIMEOUT_MS: "15000"
          },
          stdio: ["ignore", "pipe", "pipe"]
        })
        let logs = ""
        child.stdout.on("data", (d) => (logs += d))
        child.stderr.on("data", (d) => (logs += d))
        const exited = new Promise<{ code: number | null }>((resolve) =>
          child.once("exit", (code) => resolve({ code }))
        )
        yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
        const url = `http://127.0.0.1:${port}`
        yield* Effect.promise(async () => {
          for (let i = 0; i < 600; i++) {
            if (await fetch(`${url}/health/ready`).then((r) => r.ok, () => false)) return
            await new Promise((r) => setTimeout(r, 50))
          }
          throw new Error(`the server did not start:\n${logs}`)
        })
        const ingest = yield* Effect.promise(() =>
          fetch(`${url}/api/v1/documents`, {
            method: "POST",
            headers: tenantA,
            body: JSON.stringify({ id: "owls", text: "Owls hunt at night and sleep by day." })
          })
        )
        assert.strictEqual(ingest.status, 201)

        const results: Array<{ sentAt: number; ok: boolean; status: number; error?: string }> = []
        let running = true
        const worker = async () => {
          while (running) {
            const sentAt = performance.now()
            try {
              const response = await fetch(`${url}/api/v1/whoami`, { headers: tenantA })
              await response.arrayBuffer()
              results.push({ sentAt, ok: response.status === 200, status: response.status })
            } catch (error) {
              results.push({ sentAt, ok: false, status: 0, error: String((error as Error).cause ?? error) })
              await new Promise((r) => setTimeout(r, 20))
            }
          }
        }
        const workers = Array.from({ length: 6 }, worker)
        const long = fetch(`${url}/api/v1/ask`, {
          method: "POST",
          headers: tenantA,
          body: JSON.stringify({ question: "When do owls hunt?" })
        }).then(async (r) => ({ status: r.status, body: await r.json() as { degraded: boolean } }))
        // The load is running and the long request is in flight: its streamed answer has started.
        yield* eventually(
          "the long /ask to stream from Ollama while the load runs",
          Effect.sync(() => ({
            chats: ollama.requests.filter((r) => r.path === "/api/chat").length,
            sent: results.length
          })),
          ({ chats, sent }) => chats > 0 && sent > 0,
          { every: "10 millis" }
        )
        const signalledAt = performance.now()
        child.kill("SIGTERM")
        // Readiness turns 503 as soon as the signal is handled, while the server still serves (the drain period):
        // once the drain ends the port is closed, and a probe gets no answer at all.
        yield* eventually(
          "readiness to answer 503",
          Effect.promise(() => fetch(`${url}/health/ready`).then((r) => r.status, () => 0)),
          (status) => status === 503,
          { every: "10 millis" }
        )
        const served = yield* Effect.promise(() =>
          fetch(`${url}/api/v1/whoami`, { headers: tenantA }).then((r) => r.status, () => 0)
        )
        assert.strictEqual(served, 200, "readiness turns 503 at once, while requests are still served")
        const longResult = yield* Effect.promise(() => long)
        const exit = yield* Effect.promise(() => exited)
        running = false
        yield* Effect.promise(() => Promise.all(workers))

        assert.strictEqual(longResult.status, 200, "the long request completes")
        assert.isFalse(longResult.body.degraded)
        assert.strictEqual(exit.code, 0, logs)
        // No step of the shutdown ran into its timeout (SHUTDOWN_TIMEOUT_MS, the hooks' and finalizers' bounds).
        assert.notMatch(logs, /(Shutdown hook|Finalizer) "[^"]*" timed out/)
        assert.notInclude(logs, "cut by the")
        const beforeDrainEnd = results.filter((r) => r.sentAt < signalledAt + drainMs - 100)
        assert.isAbove(beforeDrainEnd.length, 50)
        assert.deepStrictEqual(beforeDrainEnd.filter((r) => !r.ok), [], "no request sent before the drain ended failed")
        // Finalizers ran: the data directory lock is released, and the embedded database was closed cleanly.
        assert.isFalse(Fs.existsSync(Path.join(dataDir, "ouroboros.lock")))
        assert.include(logs, "Shutdown: done, exit code 0")
        Fs.rmSync(dataDir, { recursive: true, force: true })
      }),
    { timeout: 90_000 }
  )
})
