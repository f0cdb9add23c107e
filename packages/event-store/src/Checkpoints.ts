/**
 * Named checkpoints for projections of the event store: how far a reader (the vector store, a report) has applied
 * the global sequence, kept in SQL next to the events so that a restart catches up from where it stopped.
 *
 * Each checkpoint has an epoch. An outside reset (`set`: a restore, a rebuild) and a new holder of the projection
 * (`claim`, when a replica takes a projector's lease over) bump it; the projector's own progress (`advance`) only
 * lands while the epoch is the one it read. So a replica that lost its lease, or that projected the events a restore
 * has just replaced, cannot move the checkpoint any more: it learns that it must reset rather than resume.
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
  /** Bumped by every reset (`set`) and takeover (`claim`). */
  epoch: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  updatedAt: Schema.DateFromString
}) {}

/**
 * Where a projection stands: the last sequence applied and the epoch it was applied in (both 0 when nothing was
 * saved).
 *
 * @since 0.1.0
 * @category models
 */
export interface Position {
  readonly sequence: number
  readonly epoch: number
}

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
  /**
   * Resets `name` to `sequence` from outside the projector (it may move backwards: a rebuild starts again from 0, a
   * restore from its snapshots): bumps the epoch, so the projector resets rather than resumes.
   */
  readonly set: (name: string, sequence: number) => Effect.Effect<void>
  /** The sequence and epoch saved under `name` (`{ 0, 0 }` when none was saved). */
  readonly position: (name: string) => Effect.Effect<Position>
  /**
   * Takes the projection over (a replica that got its lease): bumps the epoch and keeps the sequence, so that the
   * previous holder's `advance` fails from now on. Returns the new position.
   */
  readonly claim: (name: string) => Effect.Effect<Position>
  /**
   * The projector's progress: saves `sequence` only if the epoch is still `epoch` (nobody reset or claimed the
   * projection since). False when it was not saved.
   */
  readonly advance: (name: string, sequence: number, epoch: number) => Effect.Effect<boolean>
  /** Every checkpoint, by name. */
  readonly list: Effect.Effect<ReadonlyArray<Checkpoint>>
  /** Forgets a checkpoint: its reader starts again from the first event. */
  readonly remove: (name: string) => Effect.Effect<void>
}>()("@ouroboros/event-store/Checkpoints") {}

const CheckpointFromRow = Schema.Struct({
  name: Schema.String,
  sequence: Int8,
  epoch: Int8,
  updated_at: Timestamp
}).pipe(Schema.decodeTo(
  Schema.toType(Checkpoint),
  SchemaTransformation.transform({
    decode: (row) =>
      new Checkpoint(
        { name: row.name, sequence: row.sequence, epoch: row.epoch, updatedAt: row.updated_at },
        { disableChecks: true }
      ),
    encode: (checkpoint) => ({
      name: checkpoint.name,
      sequence: checkpoint.sequence,
      epoch: checkpoint.epoch,
      updated_at: checkpoint.updatedAt
    })
  })
))

const PositionRow = Schema.Struct({ sequence: Int8, epoch: Int8 })

const checkSequence = (method: string, sequence: number): Effect.Effect<void> =>
  Number.isSafeInteger(sequence) && sequence >= 0
    ? Effect.void
    : Effect.die(new Error(`Checkpoints.${method}: ${sequence} is not a sequence number`))

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
    execute: (name) => sql`SELECT name, sequence, epoch, updated_at FROM event_store_checkpoints WHERE name = ${name}`
  })

  const position = Effect.fn("Checkpoints.position")(function*(name: string) {
    const [checkpoint] = yield* find(name)
    return checkpoint === undefined
      ? { sequence: 0, epoch: 0 }
      : { sequence: checkpoint.sequence, epoch: checkpoint.epoch }
  }, Effect.orDie)

  const get = (name: string) => Effect.map(position(name), (p) => p.sequence)

  const set = Effect.fn("Checkpoints.set")(function*(name: string, sequence: number) {
    yield* checkSequence("set", sequence)
    yield* sql`INSERT INTO event_store_checkpoints (name, sequence, epoch, updated_at)
      VALUES (${name}, ${sequence}, 1, now())
      ON CONFLICT (name) DO UPDATE SET sequence = excluded.sequence, epoch = event_store_checkpoints.epoch + 1,
        updated_at = excluded.updated_at`
  }, Effect.orDie)

  const decodePosition = Schema.decodeUnknownEffect(PositionRow)

  const claim = Effect.fn("Checkpoints.claim")(function*(name: string) {
    const rows = yield* sql`INSERT INTO event_store_checkpoints (name, sequence, epoch, updated_at)
      VALUES (${name}, 0, 1, now())
      ON CONFLICT (name) DO UPDATE SET epoch = event_store_checkpoints.epoch + 1, updated_at = excluded.updated_at
      RETURNING sequence, epoch`
    return yield* decodePosition(rows[0])
  }, Effect.orDie)

  const advance = Effect.fn("Checkpoints.advance")(function*(name: string, sequence: number, epoch: number) {
    yield* checkSequence("advance", sequence)
    const rows = yield* sql`UPDATE event_store_checkpoints SET sequence = ${sequence}, updated_at = now()
      WHERE name = ${name} AND epoch = ${epoch} RETURNING name`
    return rows.length === 1
  }, Effect.orDie)

  const list = SqlSchema.findAll({
    Request: Schema.Void,
    Result: CheckpointFromRow,
    execute: () => sql`SELECT name, sequence, epoch, updated_at FROM event_store_checkpoints ORDER BY name`
  })(undefined).pipe(Effect.orDie, Effect.withSpan("Checkpoints.list"))

  const remove = Effect.fn("Checkpoints.remove")(function*(name: string) {
    yield* sql`DELETE FROM event_store_checkpoints WHERE name = ${name}`
  }, Effect.orDie)

  return Checkpoints.of({ get, set, position, claim, advance, list, remove })
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
