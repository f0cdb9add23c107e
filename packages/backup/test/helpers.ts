import { Checkpoints, EventStore } from "@ouroboros/event-store"
import { Database } from "@ouroboros/sql"
import { PgSchema } from "@ouroboros/testkit"
import { Embedded } from "@ouroboros/vector-store"
import { Context, Effect, Layer } from "effect"
import type { SqlClient } from "effect/sql"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Backup, BackupSource, BackupTarget } from "../src/index.js"

/** A temporary directory removed with the scope. */
export const tempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), `ouroboros-backup-${prefix}-`))),
    (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
  )

/** Stores in memory / temp dirs, the target in a temp dir. */
export const layerStores = (options: Backup.Options = {}) =>
  Layer.unwrap(Effect.gen(function*() {
    const vectors = yield* tempDir("vectors")
    const backups = yield* tempDir("target")
    const stores = Layer.mergeAll(
      EventStore.layerMemory(),
      Checkpoints.layerMemory,
      Embedded.layer({ directory: vectors, fsync: false }),
      BackupTarget.layerDirectory(backups),
      BackupSource.layerRegistry
    )
    return Backup.layer(options).pipe(Layer.provideMerge(stores), Layer.provideMerge(Layer.succeed(Dir, backups)))
  }))

/** The target directory of `layerStores`. */
export class Dir extends Context.Service<Dir, string>()("test/BackupDir") {}

/** A PostgreSQL client working in a new schema, dropped when the layer is released. */
export const layerPgSchema = (
  options: { readonly maxConnections?: number } = {}
): Layer.Layer<SqlClient.SqlClient, unknown> =>
  PgSchema.layer({ prefix: "backup_test", maxConnections: options.maxConnections ?? 4 })

/** The embedded database in a temporary directory. */
export const layerEmbeddedSql: Layer.Layer<SqlClient.SqlClient, unknown> = Layer.unwrap(
  Effect.map(tempDir("pg"), (dataDir) => Database.layerEmbedded({ dataDir }))
)
