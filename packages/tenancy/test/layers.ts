/**
 * SQL layers for the tests: a fresh PostgreSQL schema per layer (dropped after), and the embedded database in a
 * temporary directory (removed after).
 */
import type { PgClient } from "@effect/sql-pg"
import { Database } from "@ouroboros/sql"
import { PgSchema } from "@ouroboros/testkit"
import { Effect, Layer } from "effect"
import type { SqlClient } from "effect/sql"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"

/** A PostgreSQL client whose every connection works in a new schema, dropped when the layer is released. */
export const layerPgSchema = (
  options: { readonly maxConnections?: number; readonly schema?: string } = {}
): Layer.Layer<SqlClient.SqlClient | PgClient.PgClient, unknown> =>
  PgSchema.layer({ prefix: "tenancy_test", maxConnections: options.maxConnections ?? 8, schema: options.schema })

/** The embedded database (PGlite behind a socket, one connection) in a temporary directory. */
export const layerEmbedded: Layer.Layer<SqlClient.SqlClient | PgClient.PgClient, unknown> = Layer.unwrap(
  Effect.gen(function*() {
    const dataDir = yield* Effect.acquireRelease(
      Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "tenancy-"))),
      (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
    )
    return Database.layerEmbedded({ dataDir })
  })
)
