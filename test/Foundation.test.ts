import { assert, describe, it } from "@effect/vitest"
import { Testing } from "@ouroboros/server"
import { Effect } from "effect"

const get = (url: string, init?: RequestInit) => Effect.promise(() => fetch(url, init))

describe("server foundation", () => {
  it.live("answers probes, OpenAPI, docs, and 404 problems", () =>
    Effect.gen(function*() {
      const server = yield* Testing.start()
      const ready = yield* get(`${server.url}/health/ready`)
      assert.strictEqual(ready.status, 200)
      assert.strictEqual(ready.headers.get("content-type"), "application/health+json")
      const live = yield* get(`${server.url}/health/live`)
      assert.strictEqual(live.status, 200)
      const openapi = yield* get(`${server.url}/openapi.json`)
      assert.strictEqual(openapi.status, 200)
      const spec = yield* Effect.promise(() => openapi.json() as Promise<{ paths: Record<string, unknown> }>)
      // The newest version's document (v2); each version has its own.
      assert.property(spec.paths, "/api/v2/documents")
      const v1 = yield* get(`${server.url}/api/v1/openapi.json`)
      const v1Spec = yield* Effect.promise(() => v1.json() as Promise<{ paths: Record<string, unknown> }>)
      assert.property(v1Spec.paths, "/api/v1/documents")
      const docs = yield* get(`${server.url}/docs`)
      assert.strictEqual(docs.status, 200)
      const metrics = yield* get(`${server.url}/metrics`)
      assert.strictEqual(metrics.status, 200)
      assert.match(metrics.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/)
      const text = yield* Effect.promise(() => metrics.text())
      assert.include(text, "# TYPE http_server_active_requests gauge")
      const missing = yield* get(`${server.url}/nope`)
      assert.strictEqual(missing.status, 404)
      assert.strictEqual(missing.headers.get("content-type"), "application/problem+json")
      const body = yield* Effect.promise(() => missing.json() as Promise<{ title: string }>)
      assert.strictEqual(body.title, "Not Found")
    }), { timeout: 60_000 })
})

describe("startup failures", () => {
  it.live("a port in use ends the process with exit 1 and one line that says so", () =>
    Effect.gen(function*() {
      const server = yield* Testing.start()
      const dataDir = yield* Testing.tempDir
      const main = new URL("../apps/server/dist/main.js", import.meta.url).pathname
      const result = yield* Effect.promise(() =>
        import("node:child_process").then(({ spawnSync }) =>
          spawnSync(process.execPath, [main], {
            env: {
              ...process.env,
              PORT: String(server.port),
              HOST: "127.0.0.1",
              DATA_DIR: dataDir,
              LOG_LEVEL: "error"
            },
            encoding: "utf8",
            timeout: 60_000
          })
        )
      )
      assert.strictEqual(result.status, 1)
      const lines = `${result.stdout}${result.stderr}`.trim().split("\n")
      assert.strictEqual(lines.length, 1)
      assert.include(lines[0], "EADDRINUSE")
    }), { timeout: 90_000 })
})
