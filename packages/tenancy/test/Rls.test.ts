import { assert, describe, layer } from "@effect/vitest"
import { TenantId } from "@ouroboros/kernel"
import { Services } from "@ouroboros/testkit"
import { DateTime, Effect, Exit, Layer } from "effect"
import { SqlClient } from "effect/sql"
import * as Quotas from "../src/Quotas.js"
import * as QuotasSql from "../src/Quotas/Sql.js"
import * as Rls from "../src/Rls.js"
import { Tenant } from "../src/Tenant.js"
import { TenantStore } from "../src/TenantStore.js"
import * as TenantStoreSql from "../src/TenantStore/Sql.js"
import { UsageStore } from "../src/Usage.js"
import * as UsageSql from "../src/Usage/Sql.js"
import { layerEmbedded, layerPgSchema } from "./layers.js"

const a = TenantId.make("rls-a")
const b = TenantId.make("rls-b")

const tenant = (id: TenantId.TenantId) =>
  new Tenant({
    id,
    name: id,
    tier: "standard",
    quotas: {},
    dedicatedCollection: false,
    createdAt: DateTime.makeUnsafe(0),
    updatedAt: DateTime.makeUnsafe(0)
  })

const suite = (name: string, sqlLayer: Layer.Layer<SqlClient.SqlClient, unknown>) =>
  describe(name, () => {
    const stores = Layer.mergeAll(TenantStoreSql.layer, QuotasSql.layer, UsageSql.layer).pipe(
      Layer.provideMerge(sqlLayer)
    )
    layer(stores, { timeout: "60 seconds" })((it) => {
      it.effect("a table with row-level security shows a tenant only its rows, even without a WHERE", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql`CREATE TABLE notes (id text PRIMARY KEY, tenant_id text NOT NULL, body text NOT NULL)`
          yield* Rls.enable({ table: "notes" })
          yield* sql`INSERT INTO notes VALUES ('1', ${a}, 'a1'), ('2', ${a}, 'a2'), ('3', ${b}, 'b1')`
          // The owner (the service's connection) sees every row.
          const all = yield* sql<{ id: string }>`SELECT id FROM notes ORDER BY id`
          assert.deepStrictEqual(all.map((r) => r.id), ["1", "2", "3"])
          const asA = yield* sql<{ id: string; tenant_id: string }>`SELECT id, tenant_id FROM notes ORDER BY id`.pipe(
            Rls.withTenant(a)
          )
          assert.deepStrictEqual(asA.map((r) => r.id), ["1", "2"])
          const asB = yield* sql<{ id: string }>`SELECT id FROM notes ORDER BY id`.pipe(Rls.withTenant(b))
          assert.deepStrictEqual(asB.map((r) => r.id), ["3"])
          // Writes are checked too: A cannot insert a row of B, nor update or delete B's rows.
          const foreign = yield* Effect.exit(
            sql`INSERT INTO notes VALUES ('4', ${b}, 'sneaky')`.pipe(Rls.withTenant(a))
          )
          assert.isTrue(Exit.isFailure(foreign))
          const updated = yield* sql`UPDATE notes SET body = 'x' RETURNING id`.pipe(Rls.withTenant(a))
          assert.deepStrictEqual(updated.map((r) => r.id).sort(), ["1", "2"])
          const deleted = yield* sql`DELETE FROM notes WHERE id = '3' RETURNING id`.pipe(Rls.withTenant(a))
          assert.strictEqual(deleted.length, 0)
          // The tenant setting is visible inside, and gone after the transaction.
          assert.strictEqual(yield* Rls.currentTenant.pipe(Rls.withTenant(a)), a)
          assert.strictEqual(yield* Rls.currentTenant, undefined)
          // Under the role with no tenant set, nothing is visible.
          const none = yield* sql.withTransaction(
            Effect.andThen(sql.unsafe(`SET LOCAL ROLE ${Rls.defaultRole}`), sql`SELECT id FROM notes`)
          )
          assert.strictEqual(none.length, 0)
          // The role switch ended with the transaction: the owner sees everything again.
          assert.strictEqual((yield* sql`SELECT id FROM notes`).length, 3)
          // Nested in a transaction (a savepoint): the enclosing transaction gets its own role and tenant back.
          const nested = yield* sql.withTransaction(Effect.gen(function*() {
            const inner = yield* sql<{ id: string }>`SELECT id FROM notes`.pipe(Rls.withTenant(b))
            const after = yield* sql<{ id: string }>`SELECT id FROM notes`
            return [inner.length, after.length]
          }))
          assert.deepStrictEqual(nested, [1, 3])
          const nestedTenant = yield* Effect.gen(function*() {
            const inner = yield* sql<{ id: string }>`SELECT id FROM notes`.pipe(Rls.withTenant(b))
            const after = yield* sql<{ id: string }>`SELECT id FROM notes`
            return [inner.length, after.length, yield* Rls.currentTenant]
          }).pipe(Rls.withTenant(a))
          assert.deepStrictEqual(nestedTenant, [1, 2, a])
          const role = yield* sql<{ user: string; superuser: boolean }>`SELECT current_user AS user,
            (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser`.pipe(Rls.withTenant(a))
          assert.strictEqual(role[0]?.user, Rls.defaultRole)
          assert.strictEqual(role[0]?.superuser, false)
        }))

      it.effect("the package's own tables (keys, quota counters, usage) are isolated the same way", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const tenants = yield* TenantStore
          const quotas = yield* Quotas.QuotaStore
          const usage = yield* UsageStore
          yield* tenants.insert(tenant(a))
          yield* tenants.insert(tenant(b))
          for (const [tenantId, id] of [[a, "aaaaaaaaaaaa"], [b, "bbbbbbbbbbbb"]] as const) {
            yield* tenants.insertKey({
              id,
              tenantId,
              digest: "00".repeat(32),
              name: undefined,
              roles: ["reader"],
              createdAt: 0,
              expiresAt: undefined,
              revokedAt: undefined,
              replacedBy: undefined
            })
            yield* quotas.add(tenantId, [{ quota: "documents", period: "total", amount: 3 }])
            yield* usage.apply({
              id: `batch-${tenantId}`,
              events: [{
                specversion: "1.0",
                id: `event-${tenantId}`,
                source: "/test",
                type: "dev.ouroboros.usage.requests",
                subject: tenantId,
                time: "2025-01-01T00:00:00.000Z",
                datacontenttype: "application/json",
                data: { tenantId, kind: "requests", value: 1, day: "2025-01-01" }
              }]
            })
          }
          for (
            const table of ["tenancy_api_keys", "tenancy_quota_counters", "tenancy_usage_events", "tenancy_usage_daily"]
          ) {
            const owner = yield* sql<{ tenant_id: string }>`SELECT tenant_id FROM ${sql(table)}`
            assert.deepStrictEqual([...new Set(owner.map((r) => r.tenant_id))].sort(), [a, b], table)
            const scoped = yield* sql<{ tenant_id: string }>`SELECT tenant_id FROM ${sql(table)}`.pipe(
              Rls.withTenant(a)
            )
            assert.isAbove(scoped.length, 0, table)
            assert.deepStrictEqual([...new Set(scoped.map((r) => r.tenant_id))], [a], table)
          }
          // The store's own tenant-scoped reads run under the policy: B's key is not listed for A.
          assert.deepStrictEqual((yield* tenants.listKeys(a)).map((k) => k.id), ["aaaaaaaaaaaa"])
        }))
    })
  })

suite("row-level security on the embedded database (PGlite, through its socket)", layerEmbedded)

describe.runIf(await Services.postgres())("row-level security on PostgreSQL", () => {
  suite("PostgreSQL", layerPgSchema())
})
