/**
 * Migrations per package: each package that keeps tables runs its own ordered set, recorded in its own table, so a
 * package can be used alone and packages never collide.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { Migrator, SqlClient, type SqlError } from "effect/sql"

/**
 * A set of migrations keyed `NNNN_name` (the number orders them).
 *
 * @since 0.1.0
 * @category models
 */
export type Migrations = Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>>

const migrator = Migrator.make({})

/** The `NNNN_name` keys of a set, as the migrator reads them (other keys are ignored, as the migrator does). */
const parse = (migrations: Migrations): ReadonlyArray<readonly [id: number, name: string]> =>
  Object.keys(migrations).flatMap((key) => {
    const match = /^(\d+)_(.+)$/.exec(key)
    return match === null ? [] : [[Number(match[1]), match[2]!] as const]
  })

/**
 * The migrations recorded in `table`, id to name, or `undefined` when the table does not exist yet (PostgreSQL
 * only). One statement, no transaction, no lock: a restart with nothing to migrate costs one round trip per package.
 */
const recorded = (
  sql: SqlClient.SqlClient,
  table: string
): Effect.Effect<ReadonlyMap<number, string> | undefined, SqlError.SqlError> =>
  sql.onDialectOrElse({
    pg: () =>
      sql<{ migration_id: number; name: string }>`SELECT migration_id, name FROM ${sql(table)}`.withoutTransform.pipe(
        Effect.map((rows) => new Map(rows.map((row) => [row.migration_id, row.name]))),
        // 42P01 undefined_table: a database this set has never run on.
        Effect.catchIf(
          (error) => (error.reason.cause as { code?: unknown } | undefined)?.code === "42P01",
          () => Effect.succeed(undefined)
        )
      ),
    orElse: () => Effect.succeed(undefined)
  })

/**
 * What the recorded migrations say about a set: every migration recorded under its own name (nothing to do), or the
 * ones that differ. A migration with an id at or below the newest recorded one that is missing or recorded under
 * another name is never run by the migrator (it only runs ids above the newest): it is reported, not skipped silently.
 */
const compare = (
  set: ReadonlyArray<readonly [id: number, name: string]>,
  done: ReadonlyMap<number, string>
): { readonly upToDate: boolean; readonly changed: ReadonlyArray<string> } => {
  const newest = Math.max(0, ...done.keys())
  const changed: Array<string> = []
  let pending = false
  for (const [id, name] of set) {
    const recordedName = done.get(id)
    if (recordedName === name) continue
    if (id > newest) pending = true
    else {
      changed.push(
        recordedName === undefined
          ? `${id}_${name} (not recorded, older than the newest recorded migration ${newest})`
          : `${id}_${name} (recorded as ${id}_${recordedName})`
      )
    }
  }
  return { upToDate: !pending && changed.length === 0, changed }
}

/**
 * Runs the migrations that have not run yet, in order, in one transaction, recorded in `<name>_migrations`.
 *
 * When the table already records the newest migration of the set (every restart), nothing else happens: the check
 * takes no lock and no transaction. Otherwise the migrator runs as usual: it locks the table, so replicas starting
 * together run each migration once.
 *
 * @since 0.1.0
 * @category combinators
 * @example
 * import { Migrations } from "@ouroboros/sql"
 * import { Effect } from "effect"
 * import { SqlClient } from "effect/sql"
 * const run = Migrations.run({
 *   name: "notes",
 *   migrations: {
 *     "0001_create_notes": Effect.flatMap(SqlClient.SqlClient, (sql) => sql`CREATE TABLE notes (id text primary key)`)
 *   }
 * })
 */
export const run = (options: {
  readonly name: string
  readonly migrations: Migrations
}): Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  Migrator.MigrationError | SqlError.SqlError,
  SqlClient.SqlClient
> => {
  const table = `${options.name}_migrations`
  const set = parse(options.migrations)
  const duplicates = new Set(set.map(([id]) => id)).size !== set.length
  const migrate = migrator({ loader: Migrator.fromRecord(options.migrations), table }).pipe(
    Effect.tap((ran) =>
      ran.length === 0
        ? Effect.void
        : Effect.logInfo(`ran ${ran.length} migration(s)`).pipe(
          Effect.annotateLogs({ service: "sql", migrations: options.name, ran: ran.map(([, name]) => name).join(",") })
        )
    )
  )
  return Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // A set with duplicate ids goes to the migrator, which refuses it.
    const done = duplicates ? undefined : yield* recorded(sql, table)
    if (done === undefined) return yield* migrate
    const { changed, upToDate } = compare(set, done)
    if (upToDate) {
      const latest = String(Math.max(0, ...done.keys()))
      yield* Effect.logDebug("Migrations complete").pipe(
        Effect.annotateLogs({ service: "sql", migrations: options.name, latest_migration_id: latest })
      )
      return []
    }
    if (changed.length > 0) {
      yield* Effect.logWarning(
        `migrations that differ from those recorded in ${table} (the migrator runs only newer ones): ` +
          changed.join(", ")
      ).pipe(Effect.annotateLogs({ service: "sql", migrations: options.name }))
    }
    return yield* migrate
  })
}
