/**
 * Migrations per package: each package that keeps tables runs its own ordered set, recorded in its own table, so a
 * package can be used alone and packages never collide.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { Migrator, type SqlClient, type SqlError } from "effect/sql"

/**
 * A set of migrations keyed `NNNN_name` (the number orders them).
 *
 * @since 0.1.0
 * @category models
 */
export type Migrations = Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>>

const migrator = Migrator.make({})

/**
 * Runs the migrations that have not run yet, in order, in one transaction, recorded in `<name>_migrations`.
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
> =>
  migrator({ loader: Migrator.fromRecord(options.migrations), table: `${options.name}_migrations` }).pipe(
    Effect.tap((ran) =>
      ran.length === 0
        ? Effect.void
        : Effect.logInfo(`ran ${ran.length} migration(s)`).pipe(
          Effect.annotateLogs({ service: "sql", migrations: options.name, ran: ran.map(([, name]) => name).join(",") })
        )
    )
  )
