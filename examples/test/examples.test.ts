/**
 * The example programs, run as their headers say (Node with tsx, the workspace packages from their sources), each
 * checked on the JSON line it prints. `examples/testing-api.test.ts` is itself a vitest suite and runs with the others.
 */
import { assert, describe, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { createRequire } from "node:module"
import { fileURLToPath, pathToFileURL } from "node:url"

const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href

const run = (example: string) =>
  new Promise<{ readonly code: number | null; readonly output: unknown; readonly stderr: string }>(
    (resolve, reject) => {
      const file = fileURLToPath(new URL(`../${example}`, import.meta.url))
      const child = spawn(process.execPath, ["--conditions=@ouroboros/source", "--import", tsx, file], {
        stdio: ["ignore", "pipe", "pipe"]
      })
      let stdout = ""
      let stderr = ""
      child.stdout.on("data", (chunk) => (stdout += String(chunk)))
      child.stderr.on("data", (chunk) => (stderr += String(chunk)))
      child.once("error", reject)
      child.once("exit", (code) => {
        const last = stdout.trim().split("\n").filter((line) => line.startsWith("{")).pop()
        resolve({ code, output: last === undefined ? undefined : JSON.parse(last), stderr: stderr + stdout })
      })
    }
  )

describe("examples", () => {
  it(
    "circuit-breaker-fetch: falls back while the upstream fails, then the open breaker refuses, then the limit",
    async () => {
      const result = await run("circuit-breaker-fetch.ts")
      assert.strictEqual(result.code, 0, result.stderr)
      assert.deepStrictEqual(result.output, {
        outcomes: [
          "fallback after UpstreamFailed",
          "fallback after UpstreamFailed",
          "fallback after CircuitOpen",
          "fallback after CircuitOpen",
          "limited by outgoing"
        ],
        // The open breaker kept the last calls from reaching the upstream.
        upstreamRequests: 2
      })
    },
    120_000
  )

  it("httpapi-mount: the app's route and Ouroboros's health group behind Ouroboros's rate limiter", async () => {
    const result = await run("httpapi-mount.ts")
    assert.strictEqual(result.code, 0, result.stderr)
    const output = result.output as {
      hello: Array<number>
      greeting: unknown
      limitedPolicy: string | null
      health: { status: number; body: { status: string; checks: Record<string, unknown> } }
    }
    assert.deepStrictEqual(output.hello, [200, 200, 429])
    assert.deepStrictEqual(output.greeting, { greeting: "hello from the shop" })
    assert.strictEqual(output.limitedPolicy, "\"per-client\";q=2;w=60")
    assert.strictEqual(output.health.status, 200)
    assert.strictEqual(output.health.body.status, "pass")
    assert.deepStrictEqual(Object.keys(output.health.body.checks), ["shop:stock"])
  }, 120_000)
})
