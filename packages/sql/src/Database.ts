/**
 * One Layer that provides an `effect/sql` `SqlClient` for PostgreSQL: a server from `DATABASE_URL` in production,
 * or, with no URL, an embedded PostgreSQL (PGlite) under `DATA_DIR`, so the service starts with no external service.
 *
 * The embedded database runs in a worker thread behind a wire-protocol socket and is reached through the same
 * `@effect/sql-pg` driver as a real server: one compiler, one migrator, one set of error codes for both.
 *
 * @since 0.1.0
 */
import { PgClient } from "@effect/sql-pg"
import { Config, Data, Deferred, Duration, Effect, Layer, Option, Redacted, Schema } from "effect"
import type { SqlClient, SqlError } from "effect/sql"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Worker } from "node:worker_threads"

/**
 * The database could not be opened: the data directory is locked by another process, the embedded engine failed to
 * start, or the server could not be reached.
 *
 * @since 0.1.0
 * @category errors
 */
export class DatabaseError extends Data.TaggedError("DatabaseError")<{
  readonly reason: "Locked" | "EmbeddedFailed" | "Unreachable"
  readonly message: string
  readonly cause?: unknown
}> {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** A PostgreSQL URL; none selects the embedded database. */
  readonly url: Option.Option<Redacted.Redacted<string>>
  /** Where the embedded database keeps its files (`<dataDir>/pg`). */
  readonly dataDir: string
  /** Pool size for a PostgreSQL server (the embedded database always uses one connection). */
  readonly maxConnections?: number | undefined
}

/**
 * The configuration of {@link layerConfig}:
 *
 * - `DATABASE_URL` (secret, optional): PostgreSQL URL; when unset an embedded PostgreSQL (PGlite) under `DATA_DIR`
 *   is used.
 * - `DATA_DIR` (default `./data`): directory for embedded data (database, vectors, backups).
 * - `DATABASE_MAX_CONNECTIONS` (default `10`, between 1 and 100): connection pool size for a PostgreSQL server.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  url: Config.option(Config.Redacted("DATABASE_URL")),
  dataDir: Config.String("DATA_DIR").pipe(Config.withDefault("./data")),
  maxConnections: Config.schema(
    Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 100 }, { message: "must be between 1 and 100" })),
    "DATABASE_MAX_CONNECTIONS"
  ).pipe(Config.withDefault(10))
})

/**
 * Builds the client and runs one query, so a database that cannot be reached fails the layer at once (the pool
 * itself connects lazily).
 */
const connected = (
  options: PgClient.PgPoolConfig,
  onError: (cause: SqlError.SqlError, message: string) => DatabaseError
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, DatabaseError> =>
  PgClient.layerFrom(
    PgClient.make(options).pipe(
      Effect.tap((client) => client`SELECT 1`),
      Effect.mapError((cause) => onError(cause, describeError(cause)))
    )
  )

/** The driver's message, then the underlying one (`connect ECONNREFUSED 127.0.0.1:5432`) when it adds something. */
const describeError = (error: SqlError.SqlError): string => {
  const detail = error.reason.cause instanceof Error ? error.reason.cause.message : undefined
  return detail === undefined || detail === "" || error.message.includes(detail)
    ? error.message
    : `${error.message}: ${detail}`
}

/**
 * A PostgreSQL server from its URL. The connection is tried at once so a wrong URL fails startup clearly.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerPg = (options: {
  readonly url: Redacted.Redacted<string>
  readonly maxConnections?: number | undefined
}): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, DatabaseError> =>
  connected(
    {
      url: options.url,
      maxConnections: options.maxConnections ?? 10,
      connectTimeout: Duration.seconds(5),
      applicationName: "ouroboros"
    },
    (cause, message) =>
      new DatabaseError({
        reason: "Unreachable",
        message: `cannot connect to DATABASE_URL (${describeUrl(options.url)}): ${message}`,
        cause
      })
  )

const describeUrl = (url: Redacted.Redacted<string>): string => {
  try {
    const parsed = new URL(Redacted.value(url))
    return `${parsed.hostname}:${parsed.port || "5432"}${parsed.pathname}`
  } catch {
    return "not a valid URL"
  }
}

/**
 * Takes an exclusive lock on a data directory: a second process that opens it fails with a clear error instead of
 * corrupting the files. A lock left by a process that no longer runs is taken over.
 *
 * @since 0.1.0
 * @category constructors
 */
export const lockDirectory = (directory: string) =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        Fs.mkdirSync(directory, { recursive: true })
        const file = Path.join(directory, "ouroboros.lock")
        for (let attempt = 0; attempt < 2; attempt++) {
          try {
            Fs.writeFileSync(file, String(process.pid), { flag: "wx" })
            return file
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
            const owner = Number(Fs.readFileSync(file, "utf8").trim())
            if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
              throw new DatabaseError({
                reason: "Locked",
                message: `DATA_DIR ${directory} is in use by process ${owner}; stop it or choose another DATA_DIR`
              })
            }
            Fs.rmSync(file, { force: true })
          }
        }
        throw new Error(`could not take ${file}`)
      },
      catch: (cause) =>
        cause instanceof DatabaseError
          ? cause
          : new DatabaseError({
            reason: "Locked",
            message: `cannot lock DATA_DIR ${directory}: ${String(cause)}`,
            cause
          })
    }),
    (file) => Effect.sync(() => Fs.rmSync(file, { force: true }))
  )

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/**
 * Where the template of a fresh embedded data directory is kept: `OUROBOROS_PGLITE_TEMPLATE`, or a file in the
 * system's temporary directory named after the PGlite version. `npm install` writes it (see the server's build).
 *
 * @since 0.1.0
 * @category utils
 */
export const templatePath = (): string =>
  process.env.OUROBOROS_PGLITE_TEMPLATE ?? Path.join(Os.tmpdir(), `ouroboros-pglite-${pgliteVersion}.tgz`)

const pgliteVersion = "0.5.14"

type WorkerMessage =
  | { readonly type: "ready"; readonly port: number; readonly version: string }
  | { readonly type: "error"; readonly message: string }
  | { readonly type: "stopped"; readonly error?: string }

const embeddedFailed = (message: string, cause?: unknown) =>
  new DatabaseError({ reason: "EmbeddedFailed", message: `embedded PostgreSQL: ${message}`, cause })

/**
 * Starts PGlite in a worker thread behind a PostgreSQL socket on 127.0.0.1 and yields its port. Stopping closes the
 * socket and the database cleanly (a checkpoint), bounded to 10 seconds.
 *
 * @since 0.1.0
 * @category constructors
 */
export const startEmbedded = (dataDir: string) =>
  Effect.gen(function*() {
    const directory = Path.resolve(dataDir, "pg")
    yield* Effect.sync(() => Fs.mkdirSync(directory, { recursive: true }))
    const ready = yield* Deferred.make<{ port: number; version: string }, DatabaseError>()
    const stopped = yield* Deferred.make<void>()
    const worker = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const worker = new Worker(new URL("./pglite-worker.mjs", import.meta.url), {
          workerData: { dataDir: directory, template: templatePath() }
        })
        worker.on("message", (message: WorkerMessage) => {
          if (message.type === "ready") Deferred.doneUnsafe(ready, Effect.succeed(message))
          else if (message.type === "error") Deferred.doneUnsafe(ready, Effect.fail(embeddedFailed(message.message)))
          else Deferred.doneUnsafe(stopped, Effect.void)
        })
        worker.on("error", (cause) => Deferred.doneUnsafe(ready, Effect.fail(embeddedFailed(cause.message, cause))))
        worker.on("exit", (code) => {
          // A worker that ends before it is ready (no message) would otherwise leave startup waiting for ever.
          const early = embeddedFailed(`the worker exited with code ${code} before it was ready`)
          Deferred.doneUnsafe(ready, Effect.fail(early))
          Deferred.doneUnsafe(stopped, Effect.void)
        })
        return worker
      }),
      (worker) =>
        Effect.sync(() => worker.postMessage({ type: "stop" })).pipe(
          Effect.andThen(Deferred.await(stopped)),
          Effect.timeout(Duration.seconds(10)),
          Effect.ignore,
          Effect.andThen(Effect.promise(() => worker.terminate())),
          Effect.ignore
        )
    )
    const info = yield* Deferred.await(ready)
    yield* Effect.logDebug("embedded PostgreSQL started").pipe(
      Effect.annotateLogs({
        service: "sql",
        directory,
        port: info.port,
        version: info.version,
        threadId: worker.threadId
      })
    )
    return info
  })

/**
 * The embedded database under `dataDir`: the directory is locked for this process, PGlite runs in a worker thread,
 * and the pool holds exactly one connection.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerEmbedded = (options: {
  readonly dataDir: string
}): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, DatabaseError> =>
  Layer.unwrap(
    Effect.gen(function*() {
      yield* lockDirectory(options.dataDir)
      const { port } = yield* startEmbedded(options.dataDir)
      return connected(
        {
          host: "127.0.0.1",
          port,
          username: "postgres",
          database: "postgres",
          maxConnections: 1,
          minConnections: 1,
          // An idle connection is kept: the socket server admits one connection, so reconnect churn only adds risk.
          idleTimeout: Duration.days(1),
          applicationName: "ouroboros"
        },
        (cause, message) => embeddedFailed(message, cause)
      )
    })
  )

/**
 * PostgreSQL when a URL is given, the embedded database otherwise.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, DatabaseError> =>
  Option.match(options.url, {
    onNone: () => layerEmbedded({ dataDir: options.dataDir }),
    onSome: (url) => layerPg({ url, maxConnections: options.maxConnections })
  })

/**
 * {@link layer} from {@link config}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config<Options> = config
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, DatabaseError | Config.ConfigError> =>
  Layer.unwrap(Effect.map(options, layer))

/**
 * Whether the options select the embedded database.
 *
 * @since 0.1.0
 * @category utils
 */
export const isEmbedded = (options: Options): boolean => Option.isNone(options.url)
