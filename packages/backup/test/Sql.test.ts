import { assert, describe, it } from "@effect/vitest"
import { Checkpoints, EventStore } from "@ouroboros/event-store"
import { Services } from "@ouroboros/testkit"
import { Embedded } from "@ouroboros/vector-store"
import { Context, Effect, Layer, Option, Ref, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { Backup, BackupSource, BackupTarget, Scheduler } from "../src/index.js"
import { layerEmbeddedSql, layerPgSchema, tempDir } from "./helpers.js"

/** Imports of the wrapped event store fail once this many events went through (unset: never). */
class FailAfter extends Context.Service<FailAfter, Ref.Ref<number | undefined>>()("test/FailAfter") {}

// The SQL event store, whose import fails part way when `FailAfter` says so (once).
const failingEvents = Layer.effect(
  EventStore.EventStore,
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const failAfter = yield* FailAfter
    return EventStore.EventStore.of({
      ...store,
      importEvents: (events, options) =>
        Effect.suspend(() => {
          let seen = 0
          return store.importEvents(
            events.pipe(Stream.mapEffect((event) =>
              Effect.flatMap(Ref.get(failAfter), (limit) =>
                limit !== undefined && ++seen > limit
                  ? Effect.andThen(
                    Ref.set(failAfter, undefined),
                    Effect.fail(new EventStore.ImportConflict({ detail: `injected failure after ${limit} events` }))
                  )
                  : Effect.succeed(event))
            )),
            // Small batches: several are committed to the transaction before the failure.
            { batchSize: Math.min(options?.batchSize ?? 500, 5) }
          )
        })
    })
  })
).pipe(Layer.provide(EventStore.layer))

// The Backup service on the SQL event store, with a SQL table registered in one line.
const layerOn = (sql: Layer.Layer<SqlClient.SqlClient, unknown>) =>
  Layer.unwrap(Effect.gen(function*() {
    const vectors = yield* tempDir("sql-vectors")
    const backups = yield* tempDir("sql-target")
    const notesTable = Layer.effectDiscard(Effect.flatMap(SqlClient.SqlClient, (sql) =>
      sql`CREATE TABLE IF NOT EXISTS notes (id int PRIMARY KEY, body text NOT NULL, tags jsonb, at timestamptz)`))
    const stores = Layer.mergeAll(
      failingEvents,
      Checkpoints.layer,
      Embedded.layer({ directory: vectors, fsync: false }),
      BackupTarget.layerDirectory(backups),
      BackupSource.layerRegistry
    )
    return Backup.layer().pipe(
      Layer.provideMerge(BackupSource.layerTable({ name: "notes", table: "notes", orderBy: "id", batchSize: 2 })),
      Layer.provideMerge(stores),
      Layer.provideMerge(notesTable),
      Layer.provideMerge(Layer.effect(FailAfter, Ref.make<number | undefined>(undefined))),
      Layer.provideMerge(sql)
    )
  }))

const notesHash = Effect.gen(function*() {
  const registry = yield* BackupSource.BackupSources
  const [notes] = yield* registry.all
  return yield* Effect.orDie(notes!.hash)
})

const eventsHash = Effect.flatMap(
  EventStore.EventStore,
  (store) => BackupSource.sha256(BackupSource.ndjson(Stream.map(store.readAll(), Backup.eventLine)))
)

const ingest = (id: string) =>
  Effect.flatMap(EventStore.EventStore, (store) =>
    store.append(`tenant/acme/document/${id}`, [{
      type: "DocumentIngested",
      data: { id, text: `text of ${id}`, nested: { b: 1, a: [1, 2] } },
      metadata: { tenantId: "acme" }
    }]))

const contract = (name: string, sql: () => Layer.Layer<SqlClient.SqlClient, unknown>) =>
  describe(name, () => {
    it.live("round trip of events and a SQL table; recovery between two ingests returns exactly the first", () =>
      Effect.gen(function*() {
        const backup = yield* Backup.Backup
        const store = yield* EventStore.EventStore
        const client = yield* SqlClient.SqlClient
        yield* client`INSERT INTO notes VALUES (1, 'one', '{"x":1}', now()), (2, 'two', null, null), (3, 'it''s', '[]', now())`
        for (let i = 0; i < 25; i++) {
          yield* ingest(`d${i}`)
        }
        const before = { events: yield* eventsHash, notes: yield* notesHash }

        const manifest = yield* backup.create()
        assert.deepStrictEqual(manifest.sources, [{ name: "notes", count: 3, hash: before.notes }])
        yield* backup.verify(manifest.id, { tier: "restore" })
        yield* client`DELETE FROM notes WHERE id = 2`
        yield* ingest("extra")
        yield* backup.restore(manifest.id)
        assert.strictEqual(yield* eventsHash, before.events)
        assert.strictEqual(yield* notesHash, before.notes)
        assert.strictEqual(yield* store.lastSequence, 25)
        // Appends continue after the restored sequence.
        const next = yield* ingest("after-restore")
        assert.strictEqual(next.firstSequence, 26)

        // Point in time between two ingests, on the database's own clock.
        yield* ingest("first")
        // Spacing only (a lower bound): at least 30 ms pass between the two ingests on every clock, so their
        // `recordedAt` differ by more than the millisecond a `Date` keeps; a slow machine only widens the gap.
        yield* Effect.sleep("30 millis")
        yield* ingest("second")
        const tail = yield* Stream.runCollect(store.readAll({ fromSequence: 27 }))
        const [first, second] = tail
        const between = new Date((first!.recordedAt.getTime() + second!.recordedAt.getTime()) / 2)
        assert.isTrue(first!.recordedAt < between && between < second!.recordedAt)
        const result = yield* backup.restore(manifest.id, { at: between, vectors: "snapshot" })
        assert.strictEqual(result.replayedEvents, 2)
        const after = yield* Stream.runCollect(store.readAll({ fromSequence: 26 }))
        assert.deepStrictEqual(
          after.map((e) =>
            e.streamId
          ),
          [
            "tenant/acme/document/after-restore",
            "tenant/acme/document/first"
          ]
        )
      }).pipe(Effect.provide(layerOn(sql()))), { timeout: 60_000 })

    it.live("a failure midway through the event import rolls the whole restore back (one transaction)", () =>
      Effect.gen(function*() {
        const backup = yield* Backup.Backup
        const store = yield* EventStore.EventStore
        const client = yield* SqlClient.SqlClient
        const checkpoints = yield* Checkpoints.Checkpoints
        yield* client`INSERT INTO notes VALUES (1, 'one', null, null), (2, 'two', null, null)`
        for (let i = 0; i < 25; i++) {
          yield* ingest(`d${i}`)
        }
        const manifest = yield* backup.create()
        yield* backup.verify(manifest.id)
        yield* client`DELETE FROM notes WHERE id = 2`
        for (let i = 25; i < 35; i++) {
          yield* ingest(`d${i}`)
        }
        yield* checkpoints.set("vector-projection", 35)
        const before = { events: yield* eventsHash, notes: yield* notesHash, last: yield* store.lastSequence }

        yield* Ref.set(yield* FailAfter, 12)
        const error = yield* Effect.flip(backup.restore(manifest.id))
        assert.strictEqual(error._tag, "RestoreFailed")
        assert.include(error._tag === "RestoreFailed" ? error.detail : "", "injected failure after 12 events")
        assert.deepStrictEqual(
          { events: yield* eventsHash, notes: yield* notesHash, last: yield* store.lastSequence },
          before,
          "the events and the table are as they were"
        )
        assert.strictEqual(yield* checkpoints.get("vector-projection"), 35)
        // The sequence was not moved by the rolled-back import: the next append follows the kept events.
        const next = yield* ingest("after")
        assert.strictEqual(next.firstSequence, before.last + 1)
      }).pipe(Effect.provide(layerOn(sql()))), { timeout: 60_000 })
  })

contract("embedded (PGlite)", () => layerEmbeddedSql)

describe.runIf(await Services.postgres())("PostgreSQL", () => {
  contract("events and tables", () => layerPgSchema())

  it.live("the advisory lock lets one replica run at a time", () =>
    Effect.gen(function*() {
      const lock = yield* Scheduler.ReplicaLock
      const inner = yield* lock.withLock(lock.withLock(Effect.succeed("inner")))
      // The outer run holds the lock on its own connection: the nested one (another connection) is refused.
      assert.deepStrictEqual(inner, Option.some(Option.none()))
      assert.deepStrictEqual(yield* lock.withLock(Effect.succeed(1)), Option.some(1))
    }).pipe(Effect.provide(Scheduler.layerAdvisoryLock.pipe(Layer.provide(layerPgSchema())))), { timeout: 30_000 })
})
