/**
 * Starting the real server process (`apps/server/dist/main.js`) with the credentials an operator gives it: mistakes
 * stop it with one line that names them, an admin key alone says how to create the first tenant (at the address it
 * really listens on), and with nothing configured the development setup prints two demo tenants' keys, which
 * production refuses.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Ports from "@ouroboros/testkit/Ports"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const main = Path.resolve(import.meta.dirname, "../apps/server/dist/main.js")

const freePort = Effect.promise(() => Ports.freePort())

interface Started {
  readonly url: string
  readonly logs: () => string
  readonly exited: Promise<number | null>
}

/** Starts the server with `env` in a fresh data directory (unless given); stopped when the scope closes. */
const start = (env: Record<string, string>, dataDir?: string) =>
  Effect.gen(function*() {
    const port = yield* freePort
    const dir = dataDir ?? Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-startup-"))
    const child = spawn(process.execPath, [main], {
      env: {
        PATH: process.env.PATH ?? "",
        PORT: String(port),
        HOST: "127.0.0.1",
        DATA_DIR: dir,
        LOG_FORMAT: "json",
        SHUTDOWN_DRAIN_MS: "0",
        ...env
      },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let logs = ""
    child.stdout.on("data", (d) => (logs += d))
    child.stderr.on("data", (d) => (logs += d))
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve))
    yield* Effect.addFinalizer(() =>
      Effect.promise(async () => {
        if (child.exitCode === null) {
          child.kill("SIGTERM")
          await exited
        }
        if (dataDir === undefined) Fs.rmSync(dir, { recursive: true, force: true })
      })
    )
    return { url: `http://127.0.0.1:${port}`, logs: () => logs, exited } satisfies Started
  })

/** Waits until the server is ready, or exits; the deadline only bounds the test. */
const ready = (server: Started) =>
  Effect.promise(async () => {
    const exit = server.exited.then((code) => ({ code }))
    for (let i = 0; i < 1200; i++) {
      const done = await Promise.race([exit, new Promise((r) => setTimeout(() => r(undefined), 0))])
      if (done !== undefined) return { ready: false as const, code: (done as { code: number | null }).code }
      if (await fetch(`${server.url}/health/ready`).then((r) => r.ok, () => false)) return { ready: true as const }
      await new Promise((r) => setTimeout(r, 50))
    }
    throw new Error(`the server did not start:\n${server.logs()}`)
  })

const refusal = (env: Record<string, string>) =>
  Effect.gen(function*() {
    const server = yield* start(env)
    const outcome = yield* ready(server)
    assert.isFalse(outcome.ready, server.logs())
    if (!outcome.ready) assert.strictEqual(outcome.code, 1)
    const lines = server.logs().trim().split("\n")
    assert.strictEqual(lines.length, 1, server.logs())
    return lines[0]!
  })

describe.runIf(Fs.existsSync(main))("starting the server process", () => {
  it.live(
    "a key listed twice, or equal to the admin key, stops it with one line that names the problem",
    () =>
      Effect.gen(function*() {
        const twice = yield* refusal({
          OUROBOROS_API_KEYS: "acme:same-key-0123456789,beta:same-key-0123456789"
        })
        assert.strictEqual(
          twice,
          "ouroboros: cannot start: OUROBOROS_API_KEYS entry 1 and OUROBOROS_API_KEYS entry 2: the same API key is " +
            "listed twice (tenants acme and beta); every key must appear once"
        )
        const admin = yield* refusal({
          OUROBOROS_ADMIN_API_KEY: "admin-key-0123456789",
          OUROBOROS_API_KEYS: "acme:admin-key-0123456789"
        })
        assert.strictEqual(
          admin,
          "ouroboros: cannot start: OUROBOROS_API_KEYS entry 1: the key of tenant acme is the admin key " +
            "(OUROBOROS_ADMIN_API_KEY); give it another key"
        )
      }),
    { timeout: 60_000 }
  )

  it.live(
    "with only an admin key, it says how to create the first tenant, at its real address",
    () =>
      Effect.gen(function*() {
        const server = yield* start({ OUROBOROS_ADMIN_API_KEY: "admin-key-0123456789" })
        assert.isTrue((yield* ready(server)).ready)
        // Logged once the server listens, which is before it is ready.
        const notice = server.logs().split("\n").find((line) => line.includes("No tenant exists yet"))
        assert.isDefined(notice, server.logs())
        assert.include(notice!, `curl -X POST ${server.url}/admin/tenants`)
        assert.notInclude(notice!, "localhost:8080")
        // And the way it describes works.
        const created = yield* Effect.promise(() =>
          fetch(`${server.url}/admin/tenants`, {
            method: "POST",
            headers: { "x-api-key": "admin-key-0123456789", "content-type": "application/json" },
            body: JSON.stringify({ id: "acme" })
          })
        )
        assert.strictEqual(created.status, 201)
      }),
    { timeout: 60_000 }
  )

  it.live(
    "with nothing configured, two demo tenants whose printed keys work; production refuses them",
    () =>
      Effect.gen(function*() {
        const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-startup-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dataDir, { recursive: true, force: true })))
        const keys = yield* Effect.scoped(Effect.gen(function*() {
          const server = yield* start({}, dataDir)
          assert.isTrue((yield* ready(server)).ready)
          const line = server.logs().split("\n").find((l) => l.includes("development setup"))
          assert.isDefined(line, server.logs())
          const fields = JSON.parse(line!) as Record<string, string>
          const keyA = fields["key:demo-a"]!
          assert.match(keyA, /^ouro_demo_/)
          const me = yield* Effect.promise(() =>
            fetch(`${server.url}/api/v1/whoami`, { headers: { "x-api-key": keyA } }).then((r) =>
              r.json() as Promise<{ tenantId: string }>
            )
          )
          assert.strictEqual(me.tenantId, "demo-a")
          return { a: keyA, b: fields["key:demo-b"]!, admin: fields.adminKey! }
        }))
        const refused = yield* refusal({
          NODE_ENV: "production",
          OUROBOROS_ADMIN_API_KEY: keys.admin,
          OUROBOROS_API_KEYS: `demo-a:${keys.a},demo-b:${keys.b}`
        })
        assert.strictEqual(
          refused,
          "ouroboros: cannot start: NODE_ENV=production refuses the demo keys; configure real keys"
        )
      }),
    { timeout: 90_000 }
  )
})
