/**
 * The `ouroboros` command line (`apps/server/dist/cli.js`) on a data directory: `tenants create | list` and
 * `keys create | rotate | revoke | list`, each with `--json`, and a key it issues opens the server started on the
 * same data directory afterwards.
 */
import { assert, describe, it } from "@effect/vitest"
import { Testing } from "@ouroboros/server"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const cli = Path.resolve(import.meta.dirname, "../apps/server/dist/cli.js")

const run = (dataDir: string, ...args: ReadonlyArray<string>) => {
  const result = spawnSync(process.execPath, [cli, ...args], {
    env: { PATH: process.env.PATH ?? "", DATA_DIR: dataDir },
    encoding: "utf8"
  })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

const json = (dataDir: string, ...args: ReadonlyArray<string>): any => {
  const result = run(dataDir, ...args, "--json")
  assert.strictEqual(result.code, 0, result.stderr + result.stdout)
  return JSON.parse(result.stdout)
}

describe.runIf(Fs.existsSync(cli))("the command line: tenants and keys", () => {
  it.live(
    "creates tenants and keys, rotates and revokes them; the server accepts what it issued",
    () =>
      Effect.gen(function*() {
        const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-cli-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dataDir, { recursive: true, force: true })))
        const tenant = json(dataDir, "tenants", "create", "acme", "--tier", "free", "--name", "Acme Corp")
        assert.deepInclude(tenant, { id: "acme", tier: "free", name: "Acme Corp", dedicatedCollection: false })
        assert.deepStrictEqual(json(dataDir, "tenants", "list").map((t: { id: string }) => t.id), ["acme"])
        const again = run(dataDir, "tenants", "create", "acme")
        assert.strictEqual(again.code, 1)
        assert.include(again.stderr, "a tenant acme exists already")
        const bad = run(dataDir, "tenants", "create", "Not-A-Tenant")
        assert.strictEqual(bad.code, 1)
        assert.include(bad.stderr, "is not a tenant id")

        const reader = json(dataDir, "keys", "create", "acme", "--role", "reader", "--name", "ci")
        assert.match(reader.key, /^ouro_[0-9a-f]{12}_/)
        assert.deepStrictEqual(reader.info.roles, ["reader"])
        const writer = json(dataDir, "keys", "create", "acme")
        assert.deepStrictEqual(writer.info.roles, ["writer", "reader"])
        const rotated = json(dataDir, "keys", "rotate", "acme", writer.info.id, "--grace", "0")
        assert.strictEqual(rotated.previous.id, writer.info.id)
        const revoked = json(dataDir, "keys", "revoke", "acme", reader.info.id)
        assert.strictEqual(revoked.status, "revoked")
        const keys = json(dataDir, "keys", "list", "acme")
        assert.deepStrictEqual(
          keys.map((k: { id: string; status: string }) => [k.id, k.status]).sort(),
          [[reader.info.id, "revoked"], [writer.info.id, "expired"], [rotated.info.id, "active"]].sort()
        )
        // The key is shown once, in plain text too.
        const human = run(dataDir, "keys", "create", "acme")
        assert.strictEqual(human.code, 0)
        assert.match(human.stdout, /ouro_[0-9a-f]{12}_\S+/)
        assert.include(human.stdout, "shown this once")
        assert.strictEqual(run(dataDir, "keys", "revoke", "acme", "nope").code, 1)

        // The server on the same data directory accepts the rotated key and refuses the others.
        const server = yield* Testing.start({ DATA_DIR: dataDir })
        const status = (key: string) =>
          Effect.promise(() =>
            fetch(`${server.url}/api/v1/whoami`, { headers: { "x-api-key": key } }).then((r) => r.status)
          )
        assert.strictEqual(yield* status(rotated.key), 200)
        assert.strictEqual(yield* status(writer.key), 401)
        assert.strictEqual(yield* status(reader.key), 401)
      }),
    { timeout: 90_000 }
  )
})
