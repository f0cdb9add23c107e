/**
 * A PostgreSQL client for tests that works in a schema of its own: created for the layer, dropped when the layer is
 * released, so tests on one database never see each other's tables.
 *
 * @since 0.1.0
 */
import { PgClient } from "@effect/sql-pg"
import { Context, Effect, Layer, Redacted } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import { postgresUrl } from "./Services.js"

/**
 * `url` with `search_path` set to `schema` for every connection.
 *
 * @since 0.1.0
 * @category utils
 */
export const withSearchPath = (url: string, schema: string): string =>
  `${url}${url.includes("?") ? "&" : "?"}options=${encodeURIComponent(`-c search_path=${schema}`)}`

/**
 * A client of the test PostgreSQL (`Services.postgresUrl`) in a new schema: `schema` when given (for tools that must
 * name it, such as `pg_dump`), otherwise `<prefix>_<random>`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: {
    readonly prefix?: string | undefined
    readonly schema?: string | undefined
    readonly maxConnections?: number | undefined
  } = {}
): Layer.Layer<SqlClient.SqlClient | PgClient.PgClient, SqlError.SqlError> =>
  Layer.unwrap(Effect.gen(function*() {
    const schema = options.schema ?? `${options.prefix ?? "test"}_${Math.random().toString(36).slice(2, 10)}`
    const admin = Context.get(
      yield* Layer.build(PgClient.layer({ url: Redacted.make(postgresUrl), maxConnections: 1 })),
      SqlClient.SqlClient
    )
    yield* Effect.acquireRelease(
      admin`CREATE SCHEMA ${admin(schema)}`,
      () => Effect.orDie(admin`DROP SCHEMA ${admin(schema)} CASCADE`)
    )
    return PgClient.layer({
      url: Redacted.make(withSearchPath(postgresUrl, schema)),
      maxConnections: options.maxConnections ?? 4
    })
  }))
