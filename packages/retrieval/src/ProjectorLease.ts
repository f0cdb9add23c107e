/**
 * The projector's lease: with several replicas on one database, one of them projects the event store into the
 * vectors at a time. The lease is a PostgreSQL session advisory lock (`pg_try_advisory_lock`) held on a connection
 * reserved for it, so a holder that crashes, or whose connection breaks, loses it with its session. The holder checks
 * its lock on that connection every `checkInterval` and stops projecting as soon as it is gone; the other replicas
 * try to take it on a `Schedule` and the first that gets it continues from the checkpoint in the database.
 *
 * With the embedded database there is one process, and the lease is always held (`layerLocal`).
 *
 * @since 0.1.0
 */
import { Config, Context, Data, Duration, Effect, Layer, Ref, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlConnection } from "effect/sql"

/**
 * The lease: {@link ProjectorLease.whileHeld} runs the projection while this replica holds it.
 *
 * @since 0.1.0
 * @category services
 */
export class ProjectorLease extends Context.Service<ProjectorLease, {
  /**
   * Waits until this replica holds the lease (trying again on the lease's schedule), runs `effect` while it is held
   * and returns its result. When the lease is lost before `effect` ends, `effect` is interrupted and the wait starts
   * over; `effect` may therefore run again, later, on this replica.
   */
  readonly whileHeld: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Whether this replica holds the lease now (checked on its connection). */
  readonly held: Effect.Effect<boolean>
}>()("@ouroboros/retrieval/ProjectorLease") {}

/**
 * The advisory lock's first key ("OURO") and the name its second is made from: `hashtext('<schema>:projector')`,
 * the schema being the connection's `current_schema()`, so that deployments sharing one database in different
 * schemas each have their own projector (the event store's and the audit log's locks are keyed by their tables for
 * the same reason). The backup scheduler's lock is `("OURO", '<schema>:backup')`.
 *
 * @since 0.1.0
 * @category constants
 */
export const lockKeys = [0x4f55524f, "projector"] as const

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The two keys of the advisory lock. Default: {@link lockKeys}, the second hashed with the schema. */
  readonly keys?: readonly [number, number] | undefined
  /** When a replica without the lease tries again. Default every 5 seconds. */
  readonly retry?: Schedule.Schedule<unknown> | undefined
  /** How often the holder checks that its lock is still there. Default every 2 seconds. */
  readonly checkInterval?: Duration.Input | undefined
}

/**
 * The lease for one process (the embedded database): always held.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLocal: Layer.Layer<ProjectorLease> = Layer.sync(ProjectorLease, () => local)

/**
 * The lease of one process, as a value: always held.
 *
 * @since 0.1.0
 * @category constructors
 */
export const local: ProjectorLease["Service"] = {
  whileHeld: (effect) => effect,
  held: Effect.succeed(true)
}

// Not held, or lost: try again on the schedule.
class NotHeld extends Data.TaggedError("NotHeld")<{ readonly lost: boolean }> {}

/**
 * Builds the advisory-lock lease on the `SqlClient` in context (PostgreSQL). Do not use it on the embedded database:
 * it has one connection, which the lease would hold.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeAdvisoryLock = (options: Options = {}) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // The second key: given, or the name hashed with the connection's schema (one expression in every statement).
    const keys: ReadonlyArray<number | string> = options.keys ?? lockKeys
    const second = options.keys === undefined ? "hashtext(current_schema() || ':' || $2::text)" : "$2::int"
    const retry = options.retry ?? Schedule.spaced(Duration.seconds(5))
    const checkInterval = options.checkInterval ?? Duration.seconds(2)
    // The connection the lock lives on while this replica holds it.
    const holder = yield* Ref.make<SqlConnection.Connection | undefined>(undefined)

    const stillLocked = (connection: SqlConnection.Connection) =>
      connection.execute(
        `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()
          AND classid = $1::int::oid AND objid = (${second})::oid AND objsubid = 2`,
        keys,
        undefined
      ).pipe(Effect.map((rows) => Number(rows[0]?.n) > 0), Effect.orElseSucceed(() => false))

    // Fails with `NotHeld` once the lock is gone (its session ended, or its connection fails).
    const watch = (connection: SqlConnection.Connection) =>
      Effect.gen(function*() {
        while (true) {
          yield* Effect.sleep(checkInterval)
          if (!(yield* stillLocked(connection))) {
            yield* Effect.logWarning("the projector lease was lost; this replica stops projecting")
            return yield* new NotHeld({ lost: true })
          }
        }
      })

    const attempt = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | NotHeld, R> =>
      Effect.scoped(Effect.gen(function*() {
        const connection = yield* Effect.catch(sql.reserve, () => Effect.fail(new NotHeld({ lost: false })))
        const rows = yield* connection.execute(`SELECT pg_try_advisory_lock($1, ${second}) AS locked`, keys, undefined)
          .pipe(
            Effect.catch(() => Effect.fail(new NotHeld({ lost: false })))
          )
        if (rows[0]?.locked !== true) return yield* new NotHeld({ lost: false })
        yield* Effect.acquireRelease(
          Ref.set(holder, connection),
          () =>
            Effect.andThen(
              Ref.set(holder, undefined),
              Effect.ignore(connection.execute(`SELECT pg_advisory_unlock($1, ${second})`, keys, undefined))
            )
        )
        yield* Effect.logInfo("this replica holds the projector lease")
        return yield* Effect.raceFirst(effect, watch(connection))
      }))

    const whileHeld = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
      attempt(effect).pipe(
        Effect.retry({ schedule: retry, while: (error) => error instanceof NotHeld }),
        Effect.catch((error) => error instanceof NotHeld ? Effect.die(error) : Effect.fail(error as E))
      )

    const held = Effect.flatMap(
      Ref.get(holder),
      (connection) => connection === undefined ? Effect.succeed(false) : stillLocked(connection)
    )

    return ProjectorLease.of({ whileHeld, held })
  }).pipe(Effect.annotateLogs({ service: "retrieval" }))

/**
 * The advisory-lock lease on the `SqlClient` in context (PostgreSQL shared by several replicas).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerAdvisoryLock = (options: Options = {}): Layer.Layer<ProjectorLease, never, SqlClient.SqlClient> =>
  Layer.effect(ProjectorLease, makeAdvisoryLock(options))

/**
 * The lease's settings as configuration gives them.
 *
 * @since 0.1.0
 * @category models
 */
export interface Settings {
  readonly retryInterval: Duration.Duration
  readonly checkInterval: Duration.Duration
}

/**
 * The lease's settings from configuration: `RETRY_INTERVAL` (how often a replica without the lease tries to take it,
 * default 5 s) and `CHECK_INTERVAL` (how often the holder checks its lock, default 2 s). A server nests them, e.g.
 * under `PROJECTOR_LEASE_`.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Settings> = Config.all({
  retryInterval: Config.Duration("RETRY_INTERVAL").pipe(Config.withDefault(Duration.seconds(5))),
  checkInterval: Config.Duration("CHECK_INTERVAL").pipe(Config.withDefault(Duration.seconds(2)))
})

/**
 * The advisory-lock lease with the settings of {@link config}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  settings: Config.Config<Settings> = config
): Layer.Layer<ProjectorLease, Config.ConfigError, SqlClient.SqlClient> =>
  Layer.unwrap(Effect.map(
    settings,
    ({ checkInterval, retryInterval }) => layerAdvisoryLock({ retry: Schedule.spaced(retryInterval), checkInterval })
  ))
