/**
 * The server's tables in its backups: every table the server creates is backed up or excluded with a reason, and a
 * restore brings back the tenants, their keys and the flags as they were at the backup (and the replicas see the
 * restored flags).
 */
import { assert, describe, it } from "@effect/vitest"
import { PgSchema, Services } from "@ouroboros/testkit"
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import * as BackupSources from "../src/BackupSources.js"
import * as Testing from "../src/Testing.js"
import { call, eventually } from "./helpers.js"

const json = { "content-type": "application/json" }
const admin = { "x-api-key": Testing.keys.admin, ...json }

const postgres = await Services.postgres()

describe("the server's tables in its backups", () => {
  it.live.runIf(postgres)(
    "every table the server creates is backed up or excluded with a reason",
    () =>
      Effect.gen(function*() {
        const schema = `backup_sources_${Math.random().toString(36).slice(2, 10)}`
        const context = yield* Layer.build(PgSchema.layer({ schema }))
        yield* Testing.start({ DATABASE_URL: PgSchema.withSearchPath(Services.postgresUrl, schema) })
        const sql = Context.get(context, SqlClient.SqlClient)
        const rows = yield* sql<{ readonly name: string }>`SELECT table_name AS name FROM information_schema.tables
        WHERE table_schema = ${schema} AND table_type = 'BASE TABLE' ORDER BY table_name`.pipe(Effect.orDie)
        const names = rows.map((r) => r.name)
        assert.isAbove(names.length, 10)
        const backedUp = new Set(BackupSources.tables.map((t) => t.table))
        const uncovered = names.filter((name) =>
          !backedUp.has(name) && !BackupSources.excluded.some((e) => e.pattern.test(name))
        )
        assert.deepStrictEqual(uncovered, [], `tables neither backed up nor excluded: ${uncovered.join(", ")}`)
        // And every table named exists.
        for (const table of backedUp) assert.include(names, table)
      }),
    { timeout: 120_000 }
  )

  it.live(
    "a restore brings back the tenants, their keys and the flags as they were at the backup",
    () =>
      Effect.gen(function*() {
        const server = yield* Testing.start({ FLAGS_POLL_INTERVAL: "50 millis" })
        const { url } = server
        // A tenant with a key, a flag and an override, then a backup.
        const tenant = yield* call(`${url}/admin/tenants`, { headers: admin, body: { id: "gamma", name: "Gamma" } })
        assert.strictEqual(tenant.status, 201, JSON.stringify(tenant.body))
        const key = yield* call(`${url}/admin/tenants/gamma/keys`, { headers: admin, body: { name: "ci" } })
        assert.strictEqual(key.status, 201, JSON.stringify(key.body))
        const gamma = { "x-api-key": key.body.key as string, ...json }
        const flag = {
          state: "ENABLED",
          variants: { on: true, off: false },
          defaultVariant: "off"
        }
        const put = yield* call(`${url}/admin/flags/backup-probe`, { method: "PUT", headers: admin, body: flag })
        assert.oneOf(put.status, [200, 201], JSON.stringify(put.body))
        const override = yield* call(`${url}/admin/flags/backup-probe/tenants/gamma`, {
          method: "PUT",
          headers: admin,
          body: { variant: "on", reason: "before the backup" }
        })
        assert.oneOf(override.status, [200, 201, 204], JSON.stringify(override.body))
        assert.strictEqual((yield* call(`${url}/api/v1/whoami`, { headers: gamma })).status, 200)

        const created = yield* call(`${url}/admin/backups`, { headers: admin, method: "POST" })
        assert.strictEqual(created.status, 201, JSON.stringify(created.body))
        const id = created.body.id as string
        const files = (yield* call(`${url}/admin/backups`, { headers: admin })).body
          .find((b: { manifest: { id: string } }) => b.manifest.id === id).manifest.sources
          .map((s: { name: string }) => s.name)
        for (const table of BackupSources.tables) assert.include(files, table.name)

        // After the backup: the tenant is deleted (its keys with it), the flag's override removed.
        assert.oneOf((yield* call(`${url}/admin/tenants/gamma`, { method: "DELETE", headers: admin })).status, [
          200,
          204
        ])
        assert.oneOf(
          (yield* call(`${url}/admin/flags/backup-probe/tenants/gamma`, { method: "DELETE", headers: admin })).status,
          [200, 204]
        )
        assert.strictEqual((yield* call(`${url}/admin/tenants/gamma`, { headers: admin })).status, 404)
        assert.strictEqual((yield* call(`${url}/api/v1/whoami`, { headers: gamma })).status, 401)

        const verified = yield* call(`${url}/admin/backups/${id}/verify`, { headers: admin, method: "POST" })
        assert.strictEqual(verified.status, 200, JSON.stringify(verified.body))
        const restored = yield* call(`${url}/admin/backups/${id}/restore`, { headers: admin, body: {} })
        assert.strictEqual(restored.status, 200, JSON.stringify(restored.body))

        // The tenant and its key are back; so is the override, on every reader of the flags.
        assert.strictEqual((yield* call(`${url}/admin/tenants/gamma`, { headers: admin })).status, 200)
        const whoami = yield* eventually(
          "the restored key",
          call(`${url}/api/v1/whoami`, { headers: gamma }),
          (r) => r.status === 200
        )
        assert.strictEqual(whoami.status, 200)
        assert.strictEqual(whoami.body.tenantId, "gamma")
        const overrides = yield* eventually(
          "the restored override",
          call(`${url}/admin/flags/backup-probe/tenants`, { headers: admin }),
          (r) => JSON.stringify(r.body).includes("gamma")
        )
        assert.include(JSON.stringify(overrides.body), "\"on\"", JSON.stringify(overrides.body))
      }),
    { timeout: 120_000 }
  )
})
