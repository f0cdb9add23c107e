/**
 * Starting the real server process (`apps/server/dist/main.js`) with the credentials an operator gives it: mistakes
 * stop it with one line that names them, an admin key alone says how to create the first tenant (at the address it
 * really listens on), and with nothing configured the development setup prints two demo tenants' keys, which
 * production refuses.
 */
import { assert, describe, it } from "@effect/vitest"
import * as ServerProcess from "@ouroboros/testkit/ServerProcess"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const main = Path.resolve(import.meta.dirname, "../apps/server/dist/main.js")

/** Starts the server with `env` in a fresh data directory (unless given); stopped when the scope closes. */
const start = (env: Record<string, string>, dataDir?: string) =>
  Effect.acquireRelease(
    Effect.promise(() => ServerProcess.spawn({ main, dataDir, env: { LOG_FORMAT: "json", ...env } })),
    (server) => Effect.promise(() => server.stop())
  )

/** Waits until the server is ready, or exits; the deadline only bounds the test. */
const ready = (server: ServerProcess.ServerProcess) => Effect.promise(() => ServerProcess.awaitReady(server))

const refusal = (env: Record<string, string>) =>
  Effect.gen(function*() {
    const server = yield* start(env)
    const outcome = yield* ready(server)
    assert.isFalse(outcome.ready, server.output())
    if (!outcome.ready) assert.strictEqual(outcome.code, 1)
    const lines = server.output().trim().split("\n")
    assert.strictEqual(lines.length, 1, server.output())
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
        const notice = server.output().split("\n").find((line) => line.includes("No tenant exists yet"))
        assert.isDefined(notice, server.output())
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
          const line = server.output().split("\n").find((l) => l.includes("development setup"))
          assert.isDefined(line, server.output())
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
