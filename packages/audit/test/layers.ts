/**
 * Stores for the tests: in memory; on PostgreSQL in a fresh schema per layer (dropped after); on the embedded
 * PGlite (one database per file, a fresh schema per test on its single connection).
 */
import type { PgClient } from "@effect/sql-pg"
import { AuditStore } from "@ouroboros/audit"
import { Database } from "@ouroboros/sql"
import { PgSchema } from "@ouroboros/testkit"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"

/** A fresh SQL store on PostgreSQL, with its client (in the store's own schema). */
export const pgStore = (
  options: { readonly maxConnections?: number } = {}
): Layer.Layer<AuditStore.AuditStore | SqlClient.SqlClient | PgClient.PgClient> =>
  AuditStore.layerSql.pipe(
    Layer.provideMerge(PgSchema.layer({ prefix: "audit_test", maxConnections: options.maxConnections ?? 8 })),
    Layer.orDie
  )

/** The embedded database in a temporary directory (removed after). */
export const embeddedDatabase: Layer.Layer<SqlClient.SqlClient | PgClient.PgClient> = Layer.unwrap(
  Effect.gen(function*() {
    const dataDir = yield* Effect.acquireRelease(
      Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "audit-"))),
      (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
    )
    return Database.layerEmbedded({ dataDir })
  })
).pipe(Layer.orDie)

/**
 * A fresh schema on a database whose pool has one connection (PGlite): created and made current for the layer,
 * dropped after.
 */
export const freshSchema: Layer.Layer<never, never, SqlClient.SqlClient> = Layer.effectDiscard(
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const schema = `audit_test_${Math.random().toString(36).slice(2, 10)}`
    yield* Effect.acquireRelease(
      Effect.andThen(sql.unsafe(`CREATE SCHEMA ${schema}`), sql.unsafe(`SET search_path TO ${schema}`)),
      () =>
        Effect.andThen(sql.unsafe("SET search_path TO public"), sql.unsafe(`DROP SCHEMA ${schema} CASCADE`)).pipe(
          Effect.ignore
        )
    )
  }).pipe(Effect.orDie)
)

/** A fresh SQL store on the embedded database in context. */
export const embeddedStore: Layer.Layer<AuditStore.AuditStore, never, SqlClient.SqlClient> = AuditStore.layerSql.pipe(
  Layer.provide(freshSchema),
  Layer.orDie
)
