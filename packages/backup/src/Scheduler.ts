/**
 * Scheduled backups: on a cron schedule (`effect/Cron`, UTC), take a backup (full every Nth, incremental otherwise),
 * verify it and prune by the retention policy. With several replicas, one runs each backup: the run takes a
 * PostgreSQL session advisory lock (`pg_try_advisory_lock`) on a reserved connection, and a replica that does not get
 * it skips that run. The loop is a scoped fiber: shutting down interrupts a running backup, which leaves only a
 * partial directory, removed at the next start.
 *
 * @since 0.1.0
 */
import { Cause, Clock, Context, Cron, Duration, Effect, Layer, Option, Result } from "effect"
import { SqlClient } from "effect/sql"
import * as Backup from "./Backup.js"
import type * as Manifest from "./Manifest.js"

/**
 * Runs an effect on one replica at a time: `none` when another replica holds the lock.
 *
 * @since 0.1.0
 * @category services
 */
export class ReplicaLock extends Context.Service<ReplicaLock, {
  readonly withLock: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<Option.Option<A>, E, R>
}>()("@ouroboros/backup/ReplicaLock") {}

/**
 * The advisory lock's first key ("OURO") and the name its second is made from: `hashtext('<schema>:backup')`, the
 * schema being the connection's `current_schema()`, so that deployments sharing one database in different schemas each
 * run their own schedule.
 *
 * @since 0.1.0
 * @category constants
 */
export const lockKeys = [0x4f55524f, "backup"] as const

const lockKey = "$1, hashtext(current_schema() || ':' || $2::text)"

/**
 * A lock for one process (the embedded database has one process anyway): always granted.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLocalLock: Layer.Layer<ReplicaLock> = Layer.succeed(ReplicaLock, {
  withLock: (effect) => Effect.asSome(effect)
})

/**
 * A PostgreSQL session advisory lock, held on a reserved connection for the whole run (a crash releases it with the
 * connection). Do not use it on the embedded database: it has one connection, which the lock would hold.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerAdvisoryLock: Layer.Layer<ReplicaLock, never, SqlClient.SqlClient> = Layer.effect(
  ReplicaLock,
  Effect.map(SqlClient.SqlClient, (sql) => ({
    withLock: <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.scoped(Effect.gen(function*() {
        const connection = yield* Effect.orDie(sql.reserve)
        const rows = yield* Effect.orDie(
          connection.execute(`SELECT pg_try_advisory_lock(${lockKey}) AS locked`, [...lockKeys], undefined)
        )
        if (rows[0]?.locked !== true) return Option.none<A>()
        return yield* Effect.asSome(effect).pipe(
          Effect.ensuring(
            Effect.ignore(connection.execute(`SELECT pg_advisory_unlock(${lockKey})`, [...lockKeys], undefined))
          )
        )
      }))
  }))
)

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** A cron expression (5 or 6 fields), UTC. */
  readonly schedule: string
  /** Every Nth backup is full (1: all full). */
  readonly fullEvery: number
  /** Verification after each backup. */
  readonly verify: Backup.Tier | "none"
}

/**
 * Which kind the next scheduled backup is: full when there is none or when the last `fullEvery - 1` are
 * incremental.
 *
 * @since 0.1.0
 * @category utils
 */
export const nextKind = (
  newestFirst: ReadonlyArray<{ readonly kind: Manifest.Kind }>,
  fullEvery: number
): Manifest.Kind => {
  const sinceFull = newestFirst.findIndex((m) => m.kind === "full")
  if (sinceFull === -1) return "full"
  return sinceFull + 1 >= fullEvery ? "full" : "incremental"
}

/**
 * One scheduled run: backup, verification, pruning, under the replica lock. `none` when another replica ran it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const runOnce = (options: Pick<Options, "fullEvery" | "verify">) =>
  Effect.gen(function*() {
    const backup = yield* Backup.Backup
    const lock = yield* ReplicaLock
    return yield* lock.withLock(Effect.gen(function*() {
      const list = yield* backup.list
      const kind = nextKind(list.map((i) => i.manifest), options.fullEvery)
      const manifest = yield* backup.create({ kind })
      if (options.verify !== "none") yield* backup.verify(manifest.id, { tier: options.verify })
      yield* backup.prune
      return manifest
    }))
  }).pipe(Effect.withSpan("Backup.scheduledRun"), Effect.annotateLogs({ service: "backup" }))

/**
 * The schedule loop (forked in the layer's scope). Failures are logged; the next run comes at the next cron time.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options) =>
  Effect.gen(function*() {
    const cron = Cron.parse(options.schedule, "UTC")
    if (Result.isFailure(cron)) {
      return yield* Effect.die(
        new Error(`BACKUP_SCHEDULE: ${cron.failure.message} (${JSON.stringify(options.schedule)})`)
      )
    }
    const loop = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const next = Cron.next(cron.success, new Date(now))
      yield* Effect.sleep(Duration.millis(Math.max(0, next.getTime() - now)))
      yield* runOnce(options).pipe(
        Effect.tap(Option.match({
          onNone: () => Effect.logDebug("scheduled backup skipped: another replica runs it"),
          onSome: (manifest) =>
            Effect.logInfo("scheduled backup done").pipe(Effect.annotateLogs({ backupId: manifest.id }))
        })),
        Effect.catchCause((cause) =>
          Cause.hasInterruptsOnly(cause) ? Effect.failCause(cause) : Effect.logError("scheduled backup failed", cause)
        )
      )
    }).pipe(Effect.forever, Effect.annotateLogs({ service: "backup" }))
    yield* Effect.forkScoped(loop)
  })

/**
 * Runs scheduled backups while the layer lives.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { Scheduler } from "@ouroboros/backup"
 * const SchedulerLive = Scheduler.layer({ schedule: "0 3 * * *", fullEvery: 7, verify: "restore" })
 */
export const layer = (options: Options): Layer.Layer<never, never, Backup.Backup | ReplicaLock> =>
  Layer.effectDiscard(make(options))

/**
 * The scheduler from `Backup.config` (nothing runs when `ENABLED` is false).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (settings: Backup.BackupConfig): Layer.Layer<never, never, Backup.Backup | ReplicaLock> =>
  settings.enabled
    ? layer({ schedule: settings.schedule, fullEvery: settings.fullEvery, verify: settings.verify })
    : Layer.empty
