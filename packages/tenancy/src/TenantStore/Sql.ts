/**
 * The tenant store on `effect/sql`: PostgreSQL, or the embedded PGlite of `@ouroboros/sql`. Runs the package's
 * migrations when built. Key rows are under row-level security (`Rls`): a listing of a tenant's keys runs as that
 * tenant, so a missing filter could not show another tenant's keys.
 *
 * @since 0.1.0
 */
import { TenantId } from "@ouroboros/kernel"
import { DateTime, Effect, Layer, Option } from "effect"
import { type Migrator, SqlClient, SqlError } from "effect/sql"
import * as Migrations from "../internal/migrations.js"
import * as Rls from "../Rls.js"
import { ApiKeyNotFound, type KeyRole, Tenant, TenantAlreadyExists, TenantNotFound, type Tier } from "../Tenant.js"
import { KeyIdTaken, type StoredKey, TenantStore } from "../TenantStore.js"

interface TenantRow {
  readonly id: string
  readonly name: string
  readonly tier: string
  readonly quotas: unknown
  readonly rate_limit_tier: string | null
  readonly model: string | null
  readonly dedicated_collection: boolean
  readonly created_at: Date
  readonly updated_at: Date
}

interface KeyRow {
  readonly id: string
  readonly tenant_id: string
  readonly digest: string
  readonly name: string | null
  readonly roles: unknown
  readonly created_at: Date
  readonly expires_at: Date | null
  readonly revoked_at: Date | null
  readonly replaced_by: string | null
  readonly last_used_at: Date | null
}

const toTenant = (row: TenantRow): Tenant =>
  new Tenant({
    id: TenantId.make(row.id),
    name: row.name,
    tier: row.tier as Tier,
    quotas: (typeof row.quotas === "string" ? JSON.parse(row.quotas) : row.quotas) as Tenant["quotas"],
    ...(row.rate_limit_tier === null ? {} : { rateLimitTier: row.rate_limit_tier }),
    ...(row.model === null ? {} : { model: row.model }),
    dedicatedCollection: row.dedicated_collection,
    createdAt: DateTime.fromDateUnsafe(row.created_at),
    updatedAt: DateTime.fromDateUnsafe(row.updated_at)
  })

const millis = (date: Date | null): number | undefined => date === null ? undefined : date.getTime()

const toKey = (row: KeyRow): StoredKey => ({
  id: row.id,
  tenantId: TenantId.make(row.tenant_id),
  digest: row.digest,
  name: row.name ?? undefined,
  roles: (typeof row.roles === "string" ? JSON.parse(row.roles) : row.roles) as ReadonlyArray<KeyRole>,
  createdAt: row.created_at.getTime(),
  expiresAt: millis(row.expires_at),
  revokedAt: millis(row.revoked_at),
  replacedBy: row.replaced_by ?? undefined,
  ...(row.last_used_at === null || row.last_used_at === undefined ? {} : { lastUsedAt: row.last_used_at.getTime() })
})

const date = (ms: number | undefined): Date | null => ms === undefined ? null : new Date(ms)

/** The SQLSTATE of a failed statement. */
const sqlState = (error: SqlError.SqlError): string | undefined =>
  (error.reason.cause as { readonly code?: string } | undefined)?.code

/**
 * The store on the `SqlClient` in context; runs the migrations first.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<
  TenantStore["Service"],
  SqlError.SqlError | Migrator.MigrationError,
  SqlClient.SqlClient
> = Effect.gen(
  function*() {
    const sql = yield* SqlClient.SqlClient
    yield* Migrations.run

    const insertKeyRow = (key: StoredKey) =>
      sql`INSERT INTO tenancy_api_keys
          (id, tenant_id, digest, name, roles, created_at, expires_at, revoked_at, replaced_by)
        VALUES (${key.id}, ${key.tenantId}, ${key.digest}, ${key.name ?? null}, ${JSON.stringify(key.roles)}::jsonb,
          ${new Date(key.createdAt)}, ${date(key.expiresAt)}, ${date(key.revokedAt)}, ${key.replacedBy ?? null})`.pipe(
        Effect.catchIf(
          (error) => sqlState(error) === "23505",
          () => Effect.fail(new KeyIdTaken({ id: key.id }))
        ),
        Effect.catchIf(
          (error): error is SqlError.SqlError => SqlError.isSqlError(error) && sqlState(error) === "23503",
          () => Effect.fail(new TenantNotFound({ tenantId: key.tenantId }))
        )
      )

    return TenantStore.of({
      list: sql<TenantRow>`SELECT * FROM tenancy_tenants ORDER BY id`.pipe(
        Effect.map((rows) => rows.map(toTenant)),
        Effect.orDie
      ),
      get: (id) =>
        sql<TenantRow>`SELECT * FROM tenancy_tenants WHERE id = ${id}`.pipe(
          Effect.map((rows) => Option.map(Option.fromUndefinedOr(rows[0]), toTenant)),
          Effect.orDie
        ),
      insert: (tenant) =>
        sql`INSERT INTO tenancy_tenants
            (id, name, tier, quotas, rate_limit_tier, model, dedicated_collection, created_at, updated_at)
          VALUES (${tenant.id}, ${tenant.name}, ${tenant.tier}, ${JSON.stringify(tenant.quotas)}::jsonb,
            ${tenant.rateLimitTier ?? null}, ${tenant.model ?? null}, ${tenant.dedicatedCollection},
            ${DateTime.toDateUtc(tenant.createdAt)}, ${DateTime.toDateUtc(tenant.updatedAt)})
          ON CONFLICT (id) DO NOTHING RETURNING id`.pipe(
          Effect.orDie,
          Effect.flatMap((rows) =>
            rows.length === 0 ? Effect.fail(new TenantAlreadyExists({ tenantId: tenant.id })) : Effect.void
          )
        ),
      update: (tenant) =>
        sql`UPDATE tenancy_tenants SET name = ${tenant.name}, tier = ${tenant.tier},
            quotas = ${JSON.stringify(tenant.quotas)}::jsonb, rate_limit_tier = ${tenant.rateLimitTier ?? null},
            model = ${tenant.model ?? null}, dedicated_collection = ${tenant.dedicatedCollection},
            updated_at = ${DateTime.toDateUtc(tenant.updatedAt)}
          WHERE id = ${tenant.id} RETURNING id`.pipe(
          Effect.orDie,
          Effect.flatMap((rows) =>
            rows.length === 0 ? Effect.fail(new TenantNotFound({ tenantId: tenant.id })) : Effect.void
          )
        ),
      delete: (id) =>
        Effect.gen(function*() {
          const keys = yield* sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM tenancy_api_keys
            WHERE tenant_id = ${id}`
          const deleted = yield* sql`DELETE FROM tenancy_tenants WHERE id = ${id} RETURNING id`
          return deleted.length === 0 ? Option.none<number>() : Option.some(keys[0]?.n ?? 0)
        }).pipe(
          sql.withTransaction,
          Effect.orDie,
          Effect.flatMap(Option.match({
            onNone: () => Effect.fail(new TenantNotFound({ tenantId: id })),
            onSome: Effect.succeed
          }))
        ),
      listKeys: (tenantId) =>
        // Under the tenant's row-level security as well as the filter.
        sql<KeyRow>`SELECT * FROM tenancy_api_keys WHERE tenant_id = ${tenantId} ORDER BY created_at, id`.pipe(
          Rls.withTenant(tenantId),
          Effect.provideService(SqlClient.SqlClient, sql),
          Effect.map((rows) => rows.map(toKey)),
          Effect.orDie
        ),
      findKey: (id) =>
        sql<KeyRow>`SELECT * FROM tenancy_api_keys WHERE id = ${id}`.pipe(
          Effect.map((rows) => Option.map(Option.fromUndefinedOr(rows[0]), toKey)),
          Effect.orDie
        ),
      insertKey: (key) =>
        insertKeyRow(key).pipe(
          Effect.asVoid,
          Effect.catchIf(SqlError.isSqlError, Effect.die)
        ),
      rotateKey: ({ expiresAt, id, now, replacement, tenantId }) =>
        Effect.gen(function*() {
          const rows = yield* sql<KeyRow>`UPDATE tenancy_api_keys
            SET expires_at = LEAST(COALESCE(expires_at, ${new Date(expiresAt)}), ${new Date(expiresAt)}),
              replaced_by = ${replacement.id}
            WHERE id = ${id} AND tenant_id = ${tenantId} AND revoked_at IS NULL
              AND (expires_at IS NULL OR expires_at > ${new Date(now)})
            RETURNING *`
          if (rows.length === 0) return yield* new ApiKeyNotFound({ tenantId, keyId: id })
          yield* insertKeyRow(replacement)
          return toKey(rows[0]!)
        }).pipe(
          sql.withTransaction,
          Effect.catchIf(SqlError.isSqlError, Effect.die),
          Effect.catchTag("TenantNotFound", () => Effect.fail(new ApiKeyNotFound({ tenantId, keyId: id })))
        ),
      revokeKey: (tenantId, id, at) =>
        sql<KeyRow>`UPDATE tenancy_api_keys SET revoked_at = COALESCE(revoked_at, ${new Date(at)})
          WHERE id = ${id} AND tenant_id = ${tenantId} RETURNING *`.pipe(
          Effect.orDie,
          Effect.flatMap((rows) =>
            rows.length === 0
              ? Effect.fail(new ApiKeyNotFound({ tenantId, keyId: id }))
              : Effect.succeed(toKey(rows[0]!))
          )
        ),
      // One statement for the whole batch; a later time already written (by another replica) is kept.
      touchKeys: (uses) =>
        uses.length === 0 ? Effect.void : sql`UPDATE tenancy_api_keys AS k
          SET last_used_at = to_timestamp(u.at / 1000.0)
          FROM jsonb_to_recordset(${
          JSON.stringify(uses.map(({ at, id }) => ({ id, at })))
        }::jsonb) AS u(id text, at bigint)
          WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < to_timestamp(u.at / 1000.0))`.pipe(
          Effect.asVoid,
          Effect.orDie
        )
    })
  }
)

/**
 * The SQL store as a layer (it needs a `SqlClient`: `Database.layerConfig()` of `@ouroboros/sql`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<TenantStore, SqlError.SqlError | Migrator.MigrationError, SqlClient.SqlClient> = Layer
  .effect(TenantStore, make)
