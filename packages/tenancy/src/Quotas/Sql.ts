/**
 * The quota counters on `effect/sql` (PostgreSQL or the embedded PGlite), shared by every replica on the database.
 *
 * A consumption is one transaction of conditional upserts, one per counter in a fixed order:
 *
 * ```sql
 * INSERT INTO tenancy_quota_counters (tenant_id, quota, period, used)
 *   SELECT $tenant, $quota, $period, $n WHERE $n <= $limit
 * ON CONFLICT (tenant_id, quota, period)
 *   DO UPDATE SET used = tenancy_quota_counters.used + EXCLUDED.used
 *   WHERE tenancy_quota_counters.used + EXCLUDED.used <= $limit
 * RETURNING used
 * ```
 *
 * PostgreSQL runs the conflict branch on the row it has locked, with the row's latest committed value, so two
 * consumers never both see room for one last unit; no row back means the counter is full, and the transaction is
 * rolled back so no other counter moved either. Nothing is read first and written later.
 *
 * @since 0.1.0
 */
import { Effect, Layer, Option } from "effect"
import { type Migrator, SqlClient, type SqlError } from "effect/sql"
import * as Migrations from "../internal/migrations.js"
import { type QuotaName, QuotaStore, type Violation } from "../Quotas.js"

class Refused {
  constructor(readonly violation: Violation) {}
}

/**
 * The store on the `SqlClient` in context; runs the package's migrations first.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<
  QuotaStore["Service"],
  SqlError.SqlError | Migrator.MigrationError,
  SqlClient.SqlClient
> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* Migrations.run

  const usedOf = (tenantId: string, quota: QuotaName, period: string) =>
    Effect.map(
      sql<{ readonly used: string }>`SELECT used::text AS used FROM tenancy_quota_counters
        WHERE tenant_id = ${tenantId} AND quota = ${quota} AND period = ${period}`,
      (rows) => Number(rows[0]?.used ?? 0)
    )

  return QuotaStore.of({
    consume: (tenantId, items) =>
      Effect.gen(function*() {
        for (const item of items) {
          const rows = item.limit === null
            ? yield* sql`INSERT INTO tenancy_quota_counters (tenant_id, quota, period, used)
                VALUES (${tenantId}, ${item.quota}, ${item.period}, ${item.amount})
                ON CONFLICT (tenant_id, quota, period)
                DO UPDATE SET used = tenancy_quota_counters.used + EXCLUDED.used
                RETURNING used`
            : yield* sql`INSERT INTO tenancy_quota_counters (tenant_id, quota, period, used)
                SELECT ${tenantId}, ${item.quota}, ${item.period}, ${item.amount}::bigint
                WHERE ${item.amount}::bigint <= ${item.limit}::bigint
                ON CONFLICT (tenant_id, quota, period)
                DO UPDATE SET used = tenancy_quota_counters.used + EXCLUDED.used
                WHERE tenancy_quota_counters.used + EXCLUDED.used <= ${item.limit}::bigint
                RETURNING used`
          if (rows.length === 0) {
            const used = yield* usedOf(tenantId, item.quota, item.period)
            // Failing rolls the transaction back: no counter of this consumption moved.
            return yield* Effect.fail(new Refused({ quota: item.quota, limit: item.limit!, used }))
          }
        }
      }).pipe(
        // One statement is atomic on its own: a transaction only for several counters (all or none).
        items.length > 1 ? sql.withTransaction : (effect) => effect,
        Effect.as(Option.none<Violation>()),
        Effect.catch((error) =>
          error instanceof Refused ? Effect.succeed(Option.some(error.violation)) : Effect.die(error)
        )
      ),
    add: (tenantId, items) =>
      Effect.forEach(
        items,
        (item) =>
          sql`INSERT INTO tenancy_quota_counters (tenant_id, quota, period, used)
            VALUES (${tenantId}, ${item.quota}, ${item.period}, GREATEST(${item.amount}::bigint, 0))
            ON CONFLICT (tenant_id, quota, period)
            DO UPDATE SET used = GREATEST(tenancy_quota_counters.used + ${item.amount}::bigint, 0)`,
        { discard: true }
      ).pipe(
        sql.withTransaction,
        Effect.orDie
      ),
    read: (tenantId, counters) =>
      Effect.forEach(counters, (counter) => usedOf(tenantId, counter.quota, counter.period)).pipe(Effect.orDie),
    purge: (tenantId) =>
      sql`DELETE FROM tenancy_quota_counters WHERE tenant_id = ${tenantId}`.pipe(Effect.asVoid, Effect.orDie),
    // Periods compare as text: 'd:2025-03-09' < 'd:2025-03-10', 'm:2025-02' < 'm:2025-03'.
    prune: ({ day, month }) =>
      sql<{ readonly n: number }>`WITH gone AS (
        DELETE FROM tenancy_quota_counters
        WHERE (period LIKE 'd:%' AND period < ${`d:${day}`} COLLATE "C")
          OR (period LIKE 'm:%' AND period < ${`m:${month}`} COLLATE "C")
        RETURNING 1
      ) SELECT count(*)::int AS n FROM gone`.pipe(Effect.map((rows) => rows[0]?.n ?? 0), Effect.orDie)
  })
})

/**
 * The SQL store as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<QuotaStore, SqlError.SqlError | Migrator.MigrationError, SqlClient.SqlClient> = Layer
  .effect(QuotaStore, make)
