/**
 * The server's own tables in its backups, beside the events and the vectors that `@ouroboros/backup` takes itself:
 * the tenants and their keys, quota counters and usage (`@ouroboros/tenancy`), and the feature flags' definitions,
 * kill switches and tenant overrides (`@ouroboros/feature-flags`). A restore replaces them together with the events,
 * in the restore's one transaction, so a restored server has the tenants, keys and flags it had at the backup.
 *
 * Not registered here ({@link excluded}, checked against the database by `apps/server/test/BackupSources.test.ts`):
 * - the event store's events and checkpoints: the backup takes them itself (events incrementally and to a point in
 *   time; a restore resets the projections' checkpoints and rebuilds the vectors);
 * - the audit log (`audit_*`): a restore must not rewrite the history that records it (the restore is itself an
 *   audit event); the log has its own tamper-evident export (`ouroboros audit export`, checked by `audit verify`);
 * - `feature_flags_revision`: a restore moves it forward instead, so that every replica reloads the restored flags;
 * - the migration records (`*_migrations`), which describe the schema, not the data.
 *
 * After a restore, a replica may answer from its key cache for up to `API_KEY_CACHE_TTL` (30 s by default), as it
 * does after a revocation made on another replica.
 *
 * @since 0.1.0
 */
import { BackupSource } from "@ouroboros/backup"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"

/**
 * The tables, in restore order: a table comes after the ones it references (`tenancy_api_keys` after
 * `tenancy_tenants`, whose emptying cascades to the keys).
 *
 * @since 0.1.0
 * @category constants
 */
export const tables: ReadonlyArray<BackupSource.TableOptions> = [
  { name: "tenancy_tenants", table: "tenancy_tenants", orderBy: "id" },
  { name: "tenancy_api_keys", table: "tenancy_api_keys", orderBy: "id" },
  { name: "tenancy_quota_counters", table: "tenancy_quota_counters", orderBy: ["tenant_id", "quota", "period"] },
  { name: "tenancy_usage_batches", table: "tenancy_usage_batches", orderBy: "id" },
  { name: "tenancy_usage_events", table: "tenancy_usage_events", orderBy: "id" },
  { name: "tenancy_usage_daily", table: "tenancy_usage_daily", orderBy: ["tenant_id", "day", "kind"] },
  { name: "feature_flags", table: "feature_flags", orderBy: "key" },
  { name: "feature_flag_kills", table: "feature_flag_kills", orderBy: "key" },
  { name: "feature_flag_overrides", table: "feature_flag_overrides", orderBy: ["key", "tenant_id"] }
]

/**
 * The server's tables that are not backed up, each with the reason (see the module's documentation).
 *
 * @since 0.1.0
 * @category constants
 */
export const excluded: ReadonlyArray<{ readonly pattern: RegExp; readonly reason: string }> = [
  {
    pattern: /^event_store_(events|checkpoints)$/,
    reason: "the backup's own: the events (to a point in time) and the projections' checkpoints (reset by a restore)"
  },
  { pattern: /^audit_/, reason: "the audit log keeps its own history and export; a restore must not rewrite it" },
  { pattern: /^feature_flags_revision$/, reason: "moved forward by a restore, so replicas reload the flags" },
  { pattern: /_migrations$/, reason: "the schema's migration records" }
]

// The flags' tables: a restore moves the revision forward, so that the replicas polling it reload the flags.
const flagTables = new Set(["feature_flags", "feature_flag_kills", "feature_flag_overrides"])

/**
 * Registers {@link tables} with the backup's source registry. Registration reads nothing; a backup or a restore needs
 * the tables to exist (the server's layers and the command line run the packages' migrations first).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<never, never, BackupSource.BackupSources | SqlClient.SqlClient> = Layer.effectDiscard(
  Effect.gen(function*() {
    const registry = yield* BackupSource.BackupSources
    const sql = yield* SqlClient.SqlClient
    for (const options of tables) {
      const source = yield* BackupSource.tableSource(options)
      yield* registry.register(
        flagTables.has(options.table)
          ? {
            ...source,
            import: (bytes) =>
              source.import(bytes).pipe(
                Effect.andThen(sql`UPDATE feature_flags_revision SET revision = revision + 1`)
              )
          }
          : source
      )
    }
  })
)
