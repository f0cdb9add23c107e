/**
 * Flags in PostgreSQL (or the embedded PGlite of `@ouroboros/sql`), shared by every replica: definitions, kill
 * switches and tenant overrides, each in its own table, and one revision row that every change increments.
 *
 * How a change reaches the other replicas within a second:
 *
 * - **NOTIFY**: a change commits with `pg_notify(channel, revision)`; replicas that `LISTEN` (`@effect/sql-pg`'s
 *   `PgClient.listen`, which holds one pooled connection) reload at once.
 * - **Poll**, the safety net and the only way where LISTEN is not available: every `pollInterval` (default 500 ms)
 *   each replica reads the revision row, and reloads everything when it moved. A notification lost while a listener
 *   reconnects is caught by the next poll, so the bound holds either way.
 *
 * `listen: "auto"` listens only when the pool has more than one connection: the embedded database is reached
 * through a socket that admits one connection, which a listener would hold for ever; there the poll alone keeps the
 * promise (one process owns an embedded database, so its own changes are applied at once anyway).
 *
 * Rows are checked when they are loaded (flagd's structure; `$ref`s may point to evaluators of a lower provider, so
 * the schema itself is enforced on the merged flag set by `FeatureFlags`): a definition that is not a flag is skipped
 * and reported in `status`.
 *
 * @since 0.1.0
 */
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Layer, Option, Queue, Schema, Semaphore, Stream, SubscriptionRef } from "effect"
import { type Migrator, SqlClient, type SqlError } from "effect/sql"
import * as FlagDefinition from "../FlagDefinition.js"
import * as FlagProvider from "../FlagProvider.js"
import * as Migrations from "../internal/migrations.js"
import { own, setOwn } from "../internal/records.js"

/**
 * The default NOTIFY channel.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultChannel = "ouroboros_feature_flags"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** How often the revision row is polled (default 500 milliseconds). */
  readonly pollInterval?: Duration.Input | undefined
  /** LISTEN/NOTIFY: `auto` (default: when the pool has more than one connection), `on` or `off`. */
  readonly listen?: "auto" | "on" | "off" | undefined
  /** The NOTIFY channel (default {@link defaultChannel}). */
  readonly channel?: string | undefined
  /** The provider's name in statuses and flag sources (default `sql`). */
  readonly name?: string | undefined
}

/**
 * What can fail when the provider starts (afterwards database failures show in `status`, and a write that fails is
 * a defect).
 *
 * @since 0.1.0
 * @category errors
 */
export type SqlProviderError = SqlError.SqlError | Migrator.MigrationError

const iso = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`

const Snapshot = Schema.Struct({
  revision: Schema.String,
  flags: Schema.Record(Schema.String, Schema.Unknown),
  kills: Schema.Record(Schema.String, FlagProvider.Kill),
  overrides: Schema.Array(
    Schema.Struct({ key: Schema.String, tenantId: Schema.String, ...FlagProvider.Override.fields })
  )
})

const decodeSnapshot = Schema.decodeUnknownEffect(Snapshot)
const decodeFlag = Schema.decodeUnknownResult(FlagDefinition.Flag)

/**
 * Applies the provider's migrations (tables `feature_flags`, `feature_flag_kills`, `feature_flag_overrides`,
 * `feature_flags_revision`; recorded in `feature_flags_migrations`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMigrations: Layer.Layer<never, SqlProviderError, SqlClient.SqlClient> = Layer.effectDiscard(
  Migrations.run
)

/**
 * Makes the provider over the `SqlClient` in context (migrations must have run: see {@link layer}).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const pg = yield* Effect.serviceOption(PgClient.PgClient)
    const name = options.name ?? "sql"
    const channel = options.channel ?? defaultChannel
    const pollInterval = options.pollInterval ?? Duration.millis(500)

    const load = Effect.gen(function*() {
      const rows = yield* sql<{ readonly revision: string }>`SELECT
        (SELECT revision::text FROM feature_flags_revision) AS revision,
        (SELECT coalesce(jsonb_object_agg(key, definition), '{}'::jsonb) FROM feature_flags) AS flags,
        (SELECT coalesce(jsonb_object_agg(key, jsonb_strip_nulls(jsonb_build_object(
          'variant', variant, 'reason', reason, 'actor', actor,
          'at', to_char(at AT TIME ZONE 'UTC', ${sql.literal(iso)})))), '{}'::jsonb)
          FROM feature_flag_kills) AS kills,
        (SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
          'key', key, 'tenantId', tenant_id, 'variant', variant, 'actor', actor, 'reason', reason,
          'at', to_char(at AT TIME ZONE 'UTC', ${sql.literal(iso)}))) ORDER BY key, tenant_id), '[]'::jsonb)
          FROM feature_flag_overrides) AS overrides`
      const snapshot = yield* decodeSnapshot(rows[0]).pipe(Effect.orDie)
      const flags: Record<string, FlagDefinition.Flag> = {}
      const problems: Array<string> = []
      for (const [key, definition] of Object.entries(snapshot.flags)) {
        const decoded = decodeFlag(definition)
        const valid = decoded._tag === "Success"
          ? FlagDefinition.validate({ flags: { [key]: decoded.success } }, "lenient")
          : undefined
        if (decoded._tag === "Failure" || valid?._tag === "Failure") {
          const why = decoded._tag === "Failure" ? decoded.failure.message : valid!._tag === "Failure"
            ? valid!.failure.detail
            : ""
          problems.push(`flag ${key} in the database is invalid and skipped: ${why}`)
          continue
        }
        setOwn(flags, key, decoded.success)
      }
      const overrides: Record<string, Record<string, FlagProvider.Override>> = {}
      for (const { key, tenantId, ...override } of snapshot.overrides) {
        const tenants = own(overrides, key) ?? {}
        setOwn(tenants, tenantId, override)
        setOwn(overrides, key, tenants)
      }
      const state: FlagProvider.FlagState = {
        flagSet: { flags },
        kills: snapshot.kills,
        overrides,
        sources: Object.fromEntries(Object.keys(flags).map((key) => [key, name]))
      }
      return { revision: snapshot.revision, state, problems }
    })

    const first = yield* load
    const cells = yield* FlagProvider.makeCells(name, first.state)
    let revision = first.revision
    // Rows that did not load, and the database being out of reach: each reported once, until it changes.
    let rowProblems: string | undefined
    let unreachable: string | undefined
    const lock = yield* Semaphore.make(1)

    const publish = (loaded: Effect.Success<typeof load>) =>
      Effect.gen(function*() {
        revision = loaded.revision
        yield* cells.loaded(loaded.state)
        const problem = loaded.problems.length === 0 ? undefined : loaded.problems.join("; ")
        if (problem !== undefined) {
          if (problem !== rowProblems) yield* Effect.logWarning(problem)
          yield* cells.failed(problem)
        }
        rowProblems = problem
      })

    if (first.problems.length > 0) yield* publish(first)

    // Reads the revision, and everything when it moved. A database that cannot be reached keeps the last flags.
    const check = lock.withPermits(1)(
      Effect.gen(function*() {
        const rows = yield* sql<{ readonly revision: string }>`SELECT revision::text AS revision
          FROM feature_flags_revision`
        const current = rows[0]?.revision
        if (unreachable !== undefined) {
          unreachable = undefined
          yield* Effect.logInfo("the database is reachable again")
          if (current === revision) {
            yield* rowProblems === undefined
              ? cells.loaded(SubscriptionRef.getUnsafe(cells.state))
              : cells.failed(rowProblems)
          }
        }
        if (current !== revision) yield* publish(yield* load)
      }).pipe(
        Effect.catchTag("SqlError", (error) =>
          Effect.gen(function*() {
            const detail = `cannot read the flags from the database: ${error.message}`
            if (detail !== unreachable) yield* Effect.logWarning(`keeping the last good flags: ${detail}`)
            unreachable = detail
            yield* cells.failed(detail)
          }))
      )
    ).pipe(Effect.annotateLogs({ service: "feature-flags", provider: name }))

    // Everything was just loaded: the first poll is one interval away.
    yield* check.pipe(
      Effect.catchCause((cause) => Effect.logError("flag poll failed", cause)),
      Effect.delay(pollInterval),
      Effect.forever,
      Effect.forkScoped
    )

    const listen = options.listen ?? "auto"
    if (listen !== "off" && Option.isSome(pg)) {
      const client = pg.value
      const stats = yield* client.poolStats
      if (listen === "on" || stats.max > 1) {
        const listener = Effect.gen(function*() {
          const queue = yield* client.listen(channel)
          yield* Effect.logDebug(`listening on ${channel}`)
          // Changes between the last poll and LISTEN.
          yield* check
          while (true) {
            yield* Queue.take(queue)
            yield* check
          }
        }).pipe(
          Effect.scoped,
          Effect.catchCause((cause) => Effect.logWarning("flag listener stopped; polling until it is back", cause)),
          Effect.andThen(Effect.sleep(Duration.seconds(1))),
          Effect.forever,
          Effect.annotateLogs({ service: "feature-flags", provider: name })
        )
        yield* Effect.forkScoped(listener)
      }
    }

    const write = (mutation: FlagProvider.Mutation) => {
      switch (mutation._tag) {
        case "PutFlag":
          return sql`INSERT INTO feature_flags (key, definition, updated_at)
            VALUES (${mutation.key}, ${JSON.stringify(mutation.flag)}::jsonb, now())
            ON CONFLICT (key) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at
            RETURNING key`
        case "RemoveFlag":
          return sql`DELETE FROM feature_flags WHERE key = ${mutation.key} RETURNING key`
        case "Kill":
          return sql`INSERT INTO feature_flag_kills (key, variant, reason, actor, at)
            VALUES (${mutation.key}, ${mutation.kill.variant ?? null}, ${mutation.kill.reason},
              ${mutation.kill.actor}, ${mutation.kill.at}::timestamptz)
            ON CONFLICT (key) DO UPDATE SET variant = excluded.variant, reason = excluded.reason,
              actor = excluded.actor, at = excluded.at
            RETURNING key`
        case "Revive":
          return sql`DELETE FROM feature_flag_kills WHERE key = ${mutation.key} RETURNING key`
        case "SetOverride":
          return sql`INSERT INTO feature_flag_overrides (key, tenant_id, variant, actor, reason, at)
            VALUES (${mutation.key}, ${mutation.tenantId}, ${mutation.override.variant}, ${mutation.override.actor},
              ${mutation.override.reason ?? null}, ${mutation.override.at}::timestamptz)
            ON CONFLICT (key, tenant_id) DO UPDATE SET variant = excluded.variant, actor = excluded.actor,
              reason = excluded.reason, at = excluded.at
            RETURNING key`
        case "RemoveOverride":
          return sql`DELETE FROM feature_flag_overrides WHERE key = ${mutation.key}
            AND tenant_id = ${mutation.tenantId} RETURNING key`
      }
    }

    const apply = (mutation: FlagProvider.Mutation) =>
      lock.withPermits(1)(Effect.gen(function*() {
        const changed = yield* sql.withTransaction(Effect.gen(function*() {
          // Removing what is not there changes nothing: no new revision, no notification.
          if ((yield* write(mutation)).length === 0) return false
          const rows = yield* sql<{ readonly revision: string }>`UPDATE feature_flags_revision
            SET revision = revision + 1 RETURNING revision::text AS revision`
          // Delivered when the transaction commits, and only then.
          yield* sql`SELECT pg_notify(${channel}, ${rows[0]?.revision ?? ""})`
          return true
        }))
        // This replica sees its own change at once (and whatever else changed meanwhile).
        if (changed) yield* publish(yield* load)
      })).pipe(Effect.orDie, Effect.withSpan("FlagProviderSql.apply"))

    return FlagProvider.FlagProvider.of({
      name,
      state: SubscriptionRef.get(cells.state),
      changes: SubscriptionRef.changes(cells.state),
      status: Effect.map(SubscriptionRef.get(cells.status), (s) => [s]),
      statusChanges: Stream.map(SubscriptionRef.changes(cells.status), (s) => [s]),
      writable: true,
      apply,
      refresh: check
    })
  })

/**
 * The provider over the `SqlClient` in context, migrations included.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { FeatureFlags, FlagProviderSql } from "@ouroboros/feature-flags"
 * import { Database } from "@ouroboros/sql"
 * import { Layer } from "effect"
 * const FlagsLive = FeatureFlags.layer().pipe(
 *   Layer.provide(FlagProviderSql.layer()),
 *   Layer.provide(Database.layerConfig())
 * )
 */
export const layer = (
  options: Options = {}
): Layer.Layer<FlagProvider.FlagProvider, SqlProviderError, SqlClient.SqlClient> =>
  Layer.effect(FlagProvider.FlagProvider, make(options)).pipe(Layer.provide(layerMigrations))
