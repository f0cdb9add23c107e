/**
 * The `ouroboros` command line: `ouroboros backup create | list | verify | restore`, `ouroboros tenants create |
 * list`, `ouroboros keys create | rotate | revoke | list` and `ouroboros audit verify | export` (see `AuditCli`), on the same configuration as the server (environment,
 * `DATA_DIR`, `DATABASE_URL`, `QDRANT_URL`, `OUROBOROS_CONFIG`). With the embedded database the server must be
 * stopped (the data directory is locked by one process). A restore leaves the vector collections empty and the
 * projection checkpoint in a new epoch: the running server that holds the projector lease rebuilds them at once, or
 * the next one that starts.
 *
 * @since 0.1.0
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Backup, BackupCli, BackupSource } from "@ouroboros/backup"
import { Checkpoints, EventStore } from "@ouroboros/event-store"
import { FlagProviderSql } from "@ouroboros/feature-flags"
import { Retrieval } from "@ouroboros/retrieval"
import { Database } from "@ouroboros/sql"
import { Jwt, TenantConfig, Tenants, TenantsCli, TenantStoreSql } from "@ouroboros/tenancy"
import { VectorStore } from "@ouroboros/vector-store"
import { Config, Effect, Layer, Logger, References } from "effect"
import { Command } from "effect/cli"
import * as Path from "node:path"
import * as AuditCli from "./AuditCli.js"
import * as BackupSources from "./BackupSources.js"
import * as Breakers from "./Breakers.js"
import * as ServerConfig from "./ServerConfig.js"
import * as Vectors from "./Vectors.js"

// The vectors are a projection: dropping them and resetting the checkpoint makes the server rebuild them at start.
const Projections = Layer.effect(
  Backup.Projections,
  Effect.gen(function*() {
    const vectors = yield* VectorStore.VectorStore
    const checkpoints = yield* Checkpoints.Checkpoints
    return {
      rebuild: Effect.gen(function*() {
        for (const collection of yield* vectors.listCollections) yield* vectors.drop(collection.name)
        yield* checkpoints.set(Retrieval.checkpointName, 0)
      })
    }
  })
)

const Services = Layer.unwrap(
  Effect.map(Config.String("DATA_DIR").pipe(Config.withDefault("./data")), (dataDir) => {
    const Sql = Database.layerConfig()
    // The vector store's calls go through the guard of the server's `qdrant` pipeline, as the server's do.
    const Vectors_ = Vectors.layerGuarded.pipe(
      Layer.provide(Vectors.layer(Path.resolve(dataDir, "vectors"))),
      Layer.provide(Breakers.layerBreakers)
    )
    const Stores = Layer.mergeAll(EventStore.layer, Checkpoints.layer, Vectors_).pipe(Layer.provideMerge(Sql))
    // The tenants the server would start with (the variables and the config file), over the same SQL store.
    const TenantsLive = Layer.unwrap(Effect.gen(function*() {
      const file = yield* ServerConfig.loadFile(yield* Config.option(Config.String("OUROBOROS_CONFIG")))
      const bootstrap = yield* TenantConfig.fromEnv(file.tenants)
      const settings = yield* Tenants.config
      return Tenants.layer({ ...settings, bootstrap })
    })).pipe(Layer.provide([TenantStoreSql.layer, Jwt.layerDisabled]), Layer.provide(Sql))
    // The server's tables in its backups (`BackupSources`); their migrations run first, so that a restore into a new
    // database finds them.
    const Sources = BackupSources.layer.pipe(
      Layer.provideMerge(BackupSource.layerRegistry),
      Layer.provide(FlagProviderSql.layerMigrations),
      Layer.provide(TenantStoreSql.layer),
      Layer.provide(Sql)
    )
    return Backup.layerConfig({ dataDir }).pipe(
      Layer.provideMerge(Sources),
      Layer.provide(Projections),
      Layer.provideMerge(Stores),
      Layer.merge(TenantsLive)
    )
  })
)

const cli = Command.make("ouroboros").pipe(
  Command.withSubcommands([BackupCli.command, TenantsCli.tenantsCommand, TenantsCli.keysCommand, AuditCli.command])
)

// Warnings and errors only, as logfmt lines on stdout (Effect 3's default logger, which this command used).
const Logs = Layer.merge(Logger.layer([Logger.consoleLogFmt]), Layer.succeed(References.MinimumLogLevel, "Warn"))

Command.run(cli, { version: "0.1.0" }).pipe(
  Effect.provide(Services),
  Effect.provide(NodeServices.layer),
  Effect.provide(Logs),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
