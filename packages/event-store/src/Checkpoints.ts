/**
 * Named checkpoints for projections of the event store: how far a reader (the vector store, a report) has applied
 * the global sequence, kept in SQL next to the events so that a restart catches up from where it stopped.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Schema, SchemaTransformation } from "effect"
import { type Migrator, SqlClient, type SqlError, SqlSchema } from "effect/sql"
import { layerMigrations } from "./EventStore.js"
import * as Memory from "./internal/memory.js"
import { Int8, Timestamp } from "./internal/rows.js"

/**
 * A checkpoint: its name, the last sequence applied and when it was saved.
 *
 * @since 0.1.0
 * @category schemas
 */
export class Checkpoint extends Schema.Class<Checkpoint>("@ouroboros/event-store/Checkpoint")({
  name: Schema.String,
  sequence: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  updatedAt: Schema.DateFromString
}) {}

/**
 * The checkpoint store.
 *
 * @since 0.1.0
 * @category tags
 * @example
 * import { Checkpoints, EventStore } from "@ouroboros/event-store"
 * import { Effect, Stream } from "effect"
 *
 * const catchUp = Effect.gen(function*() {
 *   const store = yield* EventStore.EventStore
 *   const checkpoints = yield* Checkpoints.Checkpoints
 *   const from = (yield* checkpoints.get("vector-store")) + 1
 *   yield* store.readAll({ fromSequence: from }).pipe(
 *     Stream.runForEach((event) => checkpoints.set("vector-store", event.sequence))
 *   )
 * })
 */
export class Checkpoints extends Context.Service<Checkpoints, {
  /** The last sequence applied under `name`, 0 when none was saved. */
  readonly get: (name: string) => Effect.Effect<number>
  /** Saves the last sequence applied under `name` (it may move backwards: a rebuild starts again from 0). */
  readonly set: (name: string, sequence: number) => Effect.Effect<void>
  /** Every checkpoint, by name. */
  readonly list: Effect.Effect<ReadonlyArray<Checkpoint>>
  /** Forgets a checkpoint: its reader starts again from the first event. */
  readonly remove: (name: string) => Effect.Effect<void>
}>()("@ouroboros/event-store/Checkpoints") {}

const CheckpointFromRow = Schema.Struct({
  name: Schema.String,
  sequence: Int8,
  updated_at: Timestamp
}).pipe(Schema.decodeTo(
  Schema.toType(Checkpoint),
  SchemaTransformation.transform({
    decode: (row) =>
      new Checkpoint({ name: row.name, sequence: row.sequence, updatedAt: row.updated_at }, { disableChecks: true }),
    encode: (checkpoint) => ({
      name: checkpoint.name,
      sequence: checkpoint.sequence,
      updated_at: checkpoint.updatedAt
    })
  })
))

/**
 * Builds the checkpoint store on the `SqlClient` in context. The table must exist ({@link layer} runs the
 * migrations).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.gen(function*() {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()

  const find = SqlSchema.findAll({
    Request: Schema.String,
    Result: CheckpointFromRow,
    execute: (name) => sql`SELECT name, sequence, updated_at FROM event_store_checkpoints WHERE name = ${name}`
  })

  const get = Effect.fn("Checkpoints.get")(function*(name: string) {
    const [checkpoint] = yield* find(name)
    return checkpoint?.sequence ?? 0
  }, Effect.orDie)

  const set = Effect.fn("Checkpoints.set")(function*(name: string, sequence: number) {
    if (!Number.isSafeInteger(sequence) || sequence < 0) {
      return yield* Effect.die(new Error(`Checkpoints.set: ${sequence} is not a sequence number`))
    }
    yield* sql`INSERT INTO event_store_checkpoints (name, sequence, updated_at) VALUES (${name}, ${sequence}, now())
      ON CONFLICT (name) DO UPDATE SET sequence = excluded.sequence, updated_at = excluded.updated_at`
  }, Effect.orDie)

  const list = SqlSchema.findAll({
    Request: Schema.Void,
    Result: CheckpointFromRow,
    execute: () => sql`SELECT name, sequence, updated_at FROM event_store_checkpoints ORDER BY name`
  })(undefined).pipe(Effect.orDie, Effect.withSpan("Checkpoints.list"))

  const remove = Effect.fn("Checkpoints.remove")(function*(name: string) {
    yield* sql`DELETE FROM event_store_checkpoints WHERE name = ${name}`
  }, Effect.orDie)

  return Checkpoints.of({ get, set, list, remove })
})

/**
 * The checkpoint store on the `SqlClient` in context, migrations included.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Checkpoints, SqlError.SqlError | Migrator.MigrationError, SqlClient.SqlClient> = Layer
  .effect(Checkpoints, make).pipe(Layer.provide(layerMigrations))

/**
 * Checkpoints in memory, for tests and single-process tools.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<Checkpoints> = Layer.effect(Checkpoints, Memory.makeCheckpoints({ Checkpoint }))
