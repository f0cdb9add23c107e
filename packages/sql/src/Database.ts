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
import { Clock, Config, Data, Duration, Effect, Layer, Option, Redacted, Schema } from "effect"
import type { SqlClient, SqlError } from "effect/sql"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Early from "./Early.js"
import * as Embedded from "./internal/embedded.js"
import * as Lock from "./internal/lock.js"

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
 * corrupting the files. The lock file (`ouroboros.lock`) names its holder: process id, host name, boot id, PID
 * namespace, start time and a token; the holder touches it every `heartbeat` (5 s).
 *
 * A lock is taken over only when its holder is shown to be gone, and only from the same host:
 *
 * - same machine boot and PID namespace: when its process no longer runs (or the PID now belongs to another
 *   process, or to this one: a restarted container is PID 1 again);
 * - another container (PID namespace) or an earlier boot of this host: when its heartbeat is older than
 *   `staleAfter` (30 s). A younger one is watched until it either beats (the holder lives: `Locked`) or goes stale;
 * - another host, or a lock file this version cannot read (an older version's bare PID): never (`Locked`, with what
 *   to delete if that server is gone for good).
 *
 * @since 0.1.0
 * @category constructors
 */
export const lockDirectory = (directory: string, options?: {
  readonly heartbeat?: Duration.Input | undefined
  readonly staleAfter?: Duration.Input | undefined
}) => {
  const timing: Lock.Timing = {
    heartbeatMillis: options?.heartbeat === undefined
      ? Lock.defaultTiming.heartbeatMillis
      : Duration.toMillis(Duration.fromInputUnsafe(options.heartbeat)),
    staleAfterMillis: options?.staleAfter === undefined
      ? Lock.defaultTiming.staleAfterMillis
      : Duration.toMillis(Duration.fromInputUnsafe(options.staleAfter))
  }
  const look = (watched: number | undefined) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.try({
        try: () => Lock.attempt({ directory, timing, now, watched }),
        catch: (cause) =>
          new DatabaseError({ reason: "Locked", message: `cannot lock DATA_DIR ${directory}: ${String(cause)}`, cause })
      }))
  const take = (watched: number | undefined): Effect.Effect<Lock.Held, DatabaseError> =>
    Effect.flatMap(look(watched), (result) => {
      switch (result._tag) {
        case "Taken":
          return result.tookOver === undefined
            ? Effect.succeed(result.lock)
            : Effect.as(tookOverWarning(directory, result.tookOver), result.lock)
        case "Held":
          return Effect.fail(new DatabaseError({ reason: "Locked", message: result.message }))
        case "Watch":
          // Look again shortly: a heartbeat in between means the holder lives; none until `staleAfter`, it is gone.
          return Effect.andThen(
            Effect.sleep(Duration.millis(Math.min(1_000, timing.heartbeatMillis))),
            take(watched ?? result.mtimeMs)
          )
      }
    })
  return Effect.acquireRelease(take(undefined), (lock) => Effect.sync(lock.release)).pipe(
    Effect.map((lock) => lock.file)
  )
}

/**
 * Where the template of a fresh embedded data directory is kept: `OUROBOROS_PGLITE_TEMPLATE`, or a file in the
 * system's temporary directory named after the PGlite version. `npm install` writes it (see the server's build).
 *
 * @since 0.1.0
 * @category utils
 */
export const templatePath = (): string => Embedded.templatePath()

const embeddedFailed = (message: string, cause?: unknown) =>
  new DatabaseError({ reason: "EmbeddedFailed", message: `embedded PostgreSQL: ${message}`, cause })

const workerScript = () => new URL("./pglite-worker.mjs", import.meta.url)

/** The failure of the worker as the layer reports it, saying which stage failed. */
const workerFailed = (directory: string, failure: unknown): DatabaseError => {
  if (!(failure instanceof Embedded.WorkerFailure)) return embeddedFailed(String(failure), failure)
  switch (failure.stage) {
    case "load":
      return embeddedFailed(`cannot load PGlite: ${failure.message}`, failure)
    case "open":
      return embeddedFailed(`cannot open the data directory ${directory}: ${failure.message}`, failure)
    case "listen":
      return embeddedFailed(`cannot open its socket on 127.0.0.1: ${failure.message}`, failure)
    case "thread":
      return embeddedFailed(failure.message, failure)
  }
}

/**
 * Runs a started worker in the scope: waits until it is ready, logs an error if its thread ends while it serves, and
 * stops it (closing the socket and the database cleanly, bounded to 10 seconds) when the scope closes. A database
 * that could not be closed cleanly is logged: its next start replays the write-ahead log.
 */
const runWorker = <E>(start: Effect.Effect<Embedded.Handle, E>) =>
  Effect.gen(function*() {
    const handle = yield* Effect.acquireRelease(start, (handle) =>
      Effect.promise(() => handle.stop(10_000)).pipe(
        Effect.flatMap((error) =>
          error === undefined
            ? Effect.void
            : Effect.logWarning(`embedded PostgreSQL was not closed cleanly: ${error}`).pipe(
              Effect.annotateLogs({ service: "sql", directory: handle.directory })
            )
        )
      ))
    const info = yield* Effect.tryPromise({
      try: () => handle.ready,
      catch: (failure) => workerFailed(handle.directory, failure)
    })
    // The thread may still end while it serves (PGlite aborted): queries then fail with connection errors, and the
    // log says why.
    yield* Effect.promise(() => handle.lost).pipe(
      Effect.flatMap((failure) =>
        Effect.logError(`embedded PostgreSQL stopped: ${failure.message}`).pipe(
          Effect.annotateLogs({ service: "sql", directory: handle.directory })
        )
      ),
      Effect.forkScoped
    )
    yield* Effect.logDebug("embedded PostgreSQL started").pipe(
      Effect.annotateLogs({
        service: "sql",
        directory: handle.directory,
        port: info.port,
        version: info.version,
        threadId: handle.threadId
      })
    )
    return info
  })

/**
 * Starts PGlite in a worker thread behind a PostgreSQL socket on 127.0.0.1 and yields its port. Stopping closes the
 * socket and the database cleanly (a checkpoint), bounded to 10 seconds.
 *
 * @since 0.1.0
 * @category constructors
 */
export const startEmbedded = (dataDir: string) =>
  runWorker(Effect.try({
    try: () => {
      const directory = Path.resolve(dataDir, "pg")
      Fs.mkdirSync(directory, { recursive: true })
      return Embedded.spawn(directory, workerScript())
    },
    catch: (cause) => embeddedFailed(`cannot start the worker thread: ${String(cause)}`, cause)
  }))

/**
 * Starts the embedded database of `DATA_DIR` now, before anything else is loaded, for {@link layerEmbedded} to
 * adopt: the data directory is locked and PGlite starts in its worker thread while the rest of the program loads.
 * Nothing is started when `DATABASE_URL` is set or the lock cannot be taken at once (the layer then reports why).
 *
 * A server calls this from a small entry module before it imports its bundle; the function is also exported, with
 * nothing but Node built-ins behind it, as `@ouroboros/sql/Early`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const startEmbeddedEarly = Early.startEmbeddedEarly

const tookOverWarning = (directory: string, why: string) =>
  Effect.logWarning(`took over the lock of DATA_DIR: ${why}`).pipe(Effect.annotateLogs({ service: "sql", directory }))

const adopted = (early: Embedded.Early) =>
  Effect.gen(function*() {
    yield* Effect.acquireRelease(Effect.succeed(early.lock), (lock) => Effect.sync(lock.release))
    if (early.tookOver !== undefined) yield* tookOverWarning(Path.dirname(early.directory), early.tookOver)
    return yield* runWorker(Effect.succeed(early.handle))
  })

const abandon = (early: Embedded.Early) =>
  Effect.promise(() => early.handle.stop(10_000)).pipe(Effect.andThen(Effect.sync(early.lock.release)))

/**
 * The embedded database under `dataDir`: the directory is locked for this process, PGlite runs in a worker thread,
 * and the pool holds exactly one connection. A database started by {@link startEmbeddedEarly} for the same
 * directory is adopted (lock and worker) instead of starting another.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerEmbedded = (options: {
  readonly dataDir: string
}): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, DatabaseError> =>
  Layer.unwrap(
    Effect.gen(function*() {
      Embedded.mark("sql: layer needs the database")
      const { abandoned, early } = Embedded.claim(Path.resolve(options.dataDir, "pg"))
      if (abandoned !== undefined) yield* abandon(abandoned)
      const { port } = early !== undefined
        ? yield* adopted(early)
        : yield* Effect.andThen(lockDirectory(options.dataDir), startEmbedded(options.dataDir))
      Embedded.mark(early !== undefined ? "sql: early database adopted" : "sql: database started")
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
