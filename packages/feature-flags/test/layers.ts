/**
 * SQL layers for the tests: a PostgreSQL schema of its own per layer (dropped after), and the embedded database in
 * a temporary directory (removed after).
 */
import { PgClient } from "@effect/sql-pg"
import { Database } from "@ouroboros/sql"
import { PgSchema, Services } from "@ouroboros/testkit"
import { Effect, Layer, Redacted } from "effect"
import type { SqlClient } from "effect/sql"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"

/** A new schema name. */
export const schemaName = () => `feature_flags_test_${Math.random().toString(36).slice(2, 10)}`

/** A client in a new schema, dropped when the layer is released. */
export const layerPgSchema = (
  schema: string = schemaName()
): Layer.Layer<SqlClient.SqlClient | PgClient.PgClient, unknown> => PgSchema.layer({ schema, maxConnections: 4 })

/** Another client (its own pool: another replica) in an existing schema. */
export const layerPgClient = (schema: string): Layer.Layer<SqlClient.SqlClient | PgClient.PgClient, unknown> =>
  PgClient.layer({ url: Redacted.make(PgSchema.withSearchPath(Services.postgresUrl, schema)), maxConnections: 4 })

/** The embedded database (PGlite behind a socket, one connection) in a temporary directory. */
export const layerEmbedded: Layer.Layer<SqlClient.SqlClient | PgClient.PgClient, unknown> = Layer.unwrap(
  Effect.gen(function*() {
    const dataDir = yield* Effect.acquireRelease(
      Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "feature-flags-"))),
      (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
    )
    return Database.layerEmbedded({ dataDir })
  })
)
