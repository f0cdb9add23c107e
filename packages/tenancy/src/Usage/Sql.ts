/**
 * Usage on `effect/sql` (PostgreSQL or the embedded PGlite): batches applied once, events kept, daily sums upserted.
 * Reads of a tenant's usage run under its row-level security (`Rls.withTenant`) as well as their filter.
 *
 * @since 0.1.0
 */
import { Array as Arr, Effect, Layer } from "effect"
import { type Migrator, SqlClient, type SqlError } from "effect/sql"
import * as Migrations from "../internal/migrations.js"
import * as Rls from "../Rls.js"
import { type CloudEvent, type UsageKind, UsageStore, UsageStoreError } from "../Usage.js"

/**
 * The store on the `SqlClient` in context; runs the package's migrations first.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<
  UsageStore["Service"],
  SqlError.SqlError | Migrator.MigrationError,
  SqlClient.SqlClient
> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* Migrations.run

  return UsageStore.of({
    apply: (batch) =>
      Effect.gen(function*() {
        // The batch id is taken first, in the same transaction: a second attempt finds it and applies nothing.
        const fresh = yield* sql`INSERT INTO tenancy_usage_batches (id, applied_at) VALUES (${batch.id}, now())
          ON CONFLICT (id) DO NOTHING RETURNING id`
        if (fresh.length === 0) return false
        const events = batch.events
        if (!Arr.isReadonlyArrayNonEmpty(events)) return true
        yield* sql`INSERT INTO tenancy_usage_events ${
          sql.insert(Arr.map(events, (event) => ({
            id: event.id,
            tenant_id: event.subject,
            type: event.type,
            time: new Date(event.time),
            event: JSON.stringify(event)
          })))
        } ON CONFLICT (id) DO NOTHING`
        // One row per tenant, day and kind in a batch (the buffer aggregates), so one upsert takes them all.
        yield* sql`INSERT INTO tenancy_usage_daily ${
          sql.insert(Arr.map(events, (event) => ({
            tenant_id: event.data.tenantId,
            day: event.data.day,
            kind: event.data.kind,
            amount: Math.round(event.data.value)
          })))
        } ON CONFLICT (tenant_id, day, kind) DO UPDATE SET amount = tenancy_usage_daily.amount + EXCLUDED.amount`
        return true
      }).pipe(
        sql.withTransaction,
        Effect.mapError((cause) => new UsageStoreError({ cause }))
      ),
    daily: (tenantId, from, to) =>
      sql<{ readonly day: string; readonly kind: UsageKind; readonly amount: string }>`
        SELECT to_char(day, 'YYYY-MM-DD') AS day, kind, amount::text AS amount FROM tenancy_usage_daily
        WHERE tenant_id = ${tenantId} AND day BETWEEN ${from}::date AND ${to}::date ORDER BY day, kind`.pipe(
        Rls.withTenant(tenantId),
        Effect.provideService(SqlClient.SqlClient, sql),
        Effect.map((rows) => rows.map((row) => ({ day: row.day, kind: row.kind, amount: Number(row.amount) }))),
        Effect.orDie
      ),
    events: (tenantId, from, to) =>
      sql<{ readonly event: unknown }>`SELECT event FROM tenancy_usage_events
        WHERE tenant_id = ${tenantId} AND (event->'data'->>'day') BETWEEN ${from} AND ${to} ORDER BY time, id`.pipe(
        Rls.withTenant(tenantId),
        Effect.provideService(SqlClient.SqlClient, sql),
        Effect.map((rows) =>
          rows.map((row) => (typeof row.event === "string" ? JSON.parse(row.event) : row.event) as CloudEvent)
        ),
        Effect.orDie
      ),
    // Across tenants, as the owner of the tables (maintenance, not a tenant's request). An event's day is the UTC day
    // of its time.
    prune: ({ batchesBefore, day }) =>
      Effect.gen(function*() {
        const count = (rows: ReadonlyArray<{ readonly n: number }>) => rows[0]?.n ?? 0
        const events = yield* sql<{ readonly n: number }>`WITH gone AS (
          DELETE FROM tenancy_usage_events WHERE time < ${`${day}T00:00:00Z`}::timestamptz RETURNING 1
        ) SELECT count(*)::int AS n FROM gone`
        const days = yield* sql<{ readonly n: number }>`WITH gone AS (
          DELETE FROM tenancy_usage_daily WHERE day < ${day}::date RETURNING 1
        ) SELECT count(*)::int AS n FROM gone`
        const batches = yield* sql<{ readonly n: number }>`WITH gone AS (
          DELETE FROM tenancy_usage_batches WHERE applied_at < ${new Date(batchesBefore)} RETURNING 1
        ) SELECT count(*)::int AS n FROM gone`
        return { events: count(events), days: count(days), batches: count(batches) }
      }).pipe(Effect.mapError((cause) => new UsageStoreError({ cause })))
  })
})

/**
 * The SQL store as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<UsageStore, SqlError.SqlError | Migrator.MigrationError, SqlClient.SqlClient> = Layer
  .effect(UsageStore, make)
