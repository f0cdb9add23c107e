/**
 * The contract every backend of the event store meets (PostgreSQL, embedded PGlite): one suite, run per backend.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Checkpoints, EventStore } from "@ouroboros/event-store"
import { Array as Arr, Cause, Deferred, Effect, Exit, Fiber, Layer, Option, Ref, Result, Schema, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"

const unique = (prefix: string) => `${prefix}/${Math.random().toString(36).slice(2, 10)}`

/**
 * Waits until `condition` holds, checking it every few milliseconds of real time (the tests run on the test clock, and
 * what they wait for happens in the database). The bound only ends a test that would otherwise hang.
 */
const pollUntil = (what: string, condition: Effect.Effect<boolean>): Effect.Effect<void> =>
  Effect.gen(function*() {
    for (let i = 0; i < 4000; i++) {
      if (yield* condition) return
      yield* Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 5)))
    }
    return yield* Effect.die(new Error(`gave up waiting until ${what}`))
  })

const collect = (
  stream: Stream.Stream<EventStore.RecordedEvent>
): Effect.Effect<ReadonlyArray<EventStore.RecordedEvent>> => Stream.runCollect(stream)

const isIncreasing = (values: ReadonlyArray<number>) => values.every((v, i) => i === 0 || v > values[i - 1]!)

/** JSON as it comes back from JSON text (`-0` is `0`, `undefined` members vanish). */
const viaJson = (value: unknown): unknown => JSON.parse(JSON.stringify(value ?? null))

/** Printable ASCII of a length between `min` and `max` (what fast-check's `string()` generated). */
const asciiString = (min: number, max: number) =>
  Schema.String.check(Schema.isPattern(new RegExp(`^[\\x20-\\x7e]{${min},${max}}$`)))

/** JSON values nested at most `depth` levels (fast-check's `jsonValue({ maxDepth })`). */
const jsonValue = (depth: number): Schema.Codec<Schema.Json> => {
  const leaf = [Schema.Null, Schema.Finite, Schema.Boolean, Schema.String] as const
  if (depth === 0) return Schema.Union(leaf)
  const inner = jsonValue(depth - 1)
  return Schema.Union([...leaf, Schema.Array(inner), Schema.Record(Schema.String, inner)])
}

/** The SQL store and checkpoints over a `SqlClient` layer, which stays in the context for the SQL-only tests. */
export const sqlStores = (
  sqlLayer: Layer.Layer<SqlClient.SqlClient, unknown>,
  store: EventStore.Options = {}
): Layer.Layer<EventStore.EventStore | Checkpoints.Checkpoints | SqlClient.SqlClient> =>
  Layer.mergeAll(EventStore.layerWith(store), Checkpoints.layer).pipe(Layer.provideMerge(sqlLayer), Layer.orDie)

const sqlClient = Effect.flatMap(
  Effect.serviceOption(SqlClient.SqlClient),
  (sql) => Option.isSome(sql) ? Effect.succeed(sql.value) : Effect.die(new Error("this test needs a SqlClient"))
)

/**
 * Runs the contract against an event store and checkpoints. `concurrency` is how many appends run at once in the
 * concurrency tests (the embedded database has one connection, so they queue there).
 */
export const contract = (
  name: string,
  storeLayer: Layer.Layer<EventStore.EventStore | Checkpoints.Checkpoints>,
  options: {
    /** How many appends run at once in the concurrency tests. */
    readonly concurrency: number
    /** Whether the store is SQL (the `SqlClient` is in the layer): runs transaction and multi-process tests. */
    readonly sql: boolean
    /** Whether a second connection can write while a transaction is open (not so on the embedded database). */
    readonly parallelConnections: boolean
  }
) => {
  layer(storeLayer, { timeout: "60 seconds" })(name, (it) => {
    describe("append and read", () => {
      it.effect("appends a batch and reads it back in version order", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const stream = unique("tenant/acme/document")
          const result = yield* store.append(stream, [
            { type: "DocumentIngested", data: { text: "hello", n: 1.5, list: [1, "a", null] }, metadata: { by: "x" } },
            { type: "DocumentDeleted", data: null }
          ])
          assert.strictEqual(result.version, 1)
          assert.strictEqual(result.lastSequence, result.firstSequence + 1)
          const events = yield* store.readStream(stream)
          assert.deepStrictEqual(events.map((e) => [e.version, e.type, e.sequence]), [
            [0, "DocumentIngested", result.firstSequence],
            [1, "DocumentDeleted", result.lastSequence]
          ])
          assert.deepStrictEqual(events[0]!.data, { text: "hello", n: 1.5, list: [1, "a", null] })
          assert.deepStrictEqual(events[0]!.metadata, { by: "x" })
          assert.strictEqual(events[1]!.data, null)
          assert.deepStrictEqual(events[1]!.metadata, {})
          assert.instanceOf(events[0]!.recordedAt, Date)
          assert.strictEqual(events[0]!.tenantId, undefined)
          assert.strictEqual(yield* store.streamVersion(stream), 1)
        }))

      it.effect("keeps payloads exactly: key order, NUL characters, lone surrogates, big arrays", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const stream = unique("exact")
          const data = { z: 1, a: "nul\u0000byte", s: "\udc00", arr: Arr.range(1, 2000), nested: { b: [true, false] } }
          yield* store.append(stream, [{ type: "T", data }])
          const [event] = yield* store.readStream(stream)
          assert.deepStrictEqual(event!.data, data)
          assert.deepStrictEqual(Object.keys(event!.data as object), ["z", "a", "s", "arr", "nested"])
        }))

      it.effect("reads a stream from a version with a limit", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const stream = unique("paged")
          yield* store.append(stream, Arr.range(0, 9).map((i) => ({ type: "N", data: i })))
          const page = yield* store.readStream(stream, { fromVersion: 3, limit: 4 })
          assert.deepStrictEqual(page.map((e) => e.data), [3, 4, 5, 6])
          assert.deepStrictEqual(yield* store.readStream(stream, { fromVersion: 10 }), [])
          assert.deepStrictEqual(yield* store.readStream(unique("missing")), [])
          assert.strictEqual(yield* store.streamVersion(unique("missing")), -1)
        }))

      it.effect("appends more than one insert chunk atomically", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const stream = unique("large")
          const result = yield* store.append(stream, Arr.range(0, 2499).map((i) => ({ type: "N", data: { i } })))
          assert.strictEqual(result.version, 2499)
          assert.strictEqual(result.lastSequence - result.firstSequence, 2499)
          const events = yield* store.readStream(stream)
          assert.strictEqual(events.length, 2500)
          assert.isTrue(isIncreasing(events.map((e) => e.sequence)))
          assert.deepStrictEqual(events[2499]!.data, { i: 2499 })
        }))

      it.effect("an empty append writes nothing but still checks the expected version", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const stream = unique("empty")
          const before = yield* store.lastSequence
          assert.deepStrictEqual(yield* store.append(stream, []), { firstSequence: 0, lastSequence: 0, version: -1 })
          assert.strictEqual(yield* store.lastSequence, before)
          const error = yield* Effect.flip(store.append(stream, [], { expectedVersion: 3 }))
          assert.strictEqual(error._tag, "WrongExpectedVersion")
        }))
      it.effect("an append the database refuses fails alone, not the appends written with it", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const stream = unique("neighbours")
          const exits = yield* Effect.forEach(
            Arr.range(0, 11),
            (i) => Effect.exit(store.append(`${stream}/${i}`, [{ type: i === 5 ? "bad\u0000type" : "Good", data: i }])),
            { concurrency: "unbounded" }
          )
          exits.forEach((exit, i) => {
            if (i === 5) assert.isTrue(Exit.isFailure(exit) && Cause.hasDies(exit.cause))
            else assert.isTrue(Exit.isSuccess(exit))
          })
          assert.strictEqual(yield* store.streamVersion(`${stream}/5`), -1)
          assert.strictEqual(yield* store.streamVersion(`${stream}/6`), 0)
        }))
    })

    describe("expected versions", () => {
      it.effect("no-stream, exact versions and any", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const stream = unique("versions")
          yield* store.append(stream, [{ type: "A", data: 1 }], { expectedVersion: "no-stream" })
          const again = yield* Effect.flip(
            store.append(stream, [{ type: "A", data: 2 }], { expectedVersion: "no-stream" })
          )
          assert.deepStrictEqual(
            { tag: again._tag, expected: again.expected, actual: again.actual, streamId: again.streamId },
            { tag: "WrongExpectedVersion", expected: "no-stream", actual: 0, streamId: stream }
          )
          assert.include(again.detail, "version 0")
          yield* store.append(stream, [{ type: "B", data: 2 }], { expectedVersion: 0 })
          const stale = yield* Effect.flip(store.append(stream, [{ type: "C", data: 3 }], { expectedVersion: 0 }))
          assert.strictEqual(stale.actual, 1)
          const r = yield* store.append(stream, [{ type: "D", data: 4 }], { expectedVersion: "any" })
          assert.strictEqual(r.version, 2)
          const minusOne = yield* Effect.flip(store.append(stream, [{ type: "E", data: 5 }], { expectedVersion: -1 }))
          assert.strictEqual(minusOne.actual, 2)
          // Nothing of a failed append was written.
          assert.deepStrictEqual((yield* store.readStream(stream)).map((e) => e.type), ["A", "B", "D"])
        }))

      it.effect("the conflict is a 409 that survives its schema", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const stream = unique("encoded")
          const error = yield* Effect.flip(store.append(stream, [{ type: "A", data: 1 }], { expectedVersion: 5 }))
          const encoded = yield* Schema.encodeEffect(EventStore.WrongExpectedVersion)(error)
          assert.deepStrictEqual(encoded, {
            _tag: "WrongExpectedVersion",
            detail: `stream ${stream} has no events, expected version 5`,
            streamId: stream,
            expected: 5,
            actual: -1
          })
        }))

      it.effect("concurrent appends at the same expected version: exactly one wins", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const stream = unique("race")
          yield* store.append(stream, [{ type: "Start", data: 0 }])
          const results = yield* Effect.forEach(
            Arr.range(1, 20),
            (i) => Effect.result(store.append(stream, [{ type: "Step", data: i }], { expectedVersion: 0 })),
            { concurrency: options.concurrency }
          )
          const winners = results.filter(Result.isSuccess)
          assert.strictEqual(winners.length, 1)
          assert.isTrue(results.filter(Result.isFailure).every((e) => e.failure.actual === 1))
          assert.strictEqual(yield* store.streamVersion(stream), 1)
        }))

      it.effect("concurrent appends with any: contiguous versions in sequence order, no duplicates", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const stream = unique("many")
          yield* Effect.forEach(
            Arr.range(0, 39),
            (i) => store.append(stream, [{ type: "A", data: i }, { type: "B", data: i }]),
            { concurrency: options.concurrency, discard: true }
          )
          const events = yield* store.readStream(stream)
          assert.deepStrictEqual(events.map((e) => e.version), Arr.range(0, 79))
          assert.isTrue(isIncreasing(events.map((e) => e.sequence)))
          // Each batch stayed together.
          for (let i = 0; i < 80; i += 2) assert.strictEqual(events[i]!.data, events[i + 1]!.data)
        }))
    })

    describe("transactions", () => {
      it.effect.runIf(options.sql)(
        "an append inside the caller's transaction commits and rolls back with it",
        () =>
          Effect.gen(function*() {
            const store = yield* EventStore.EventStore
            const sql = yield* sqlClient
            const stream = unique("tx")
            const failed = yield* sql.withTransaction(
              Effect.andThen(store.append(stream, [{ type: "A", data: 1 }]), Effect.fail("boom" as const))
            ).pipe(Effect.flip)
            assert.strictEqual(failed, "boom")
            assert.strictEqual(yield* store.streamVersion(stream), -1)
            const result = yield* sql.withTransaction(
              Effect.andThen(
                store.append(stream, [{ type: "A", data: 1 }], { expectedVersion: "no-stream" }),
                store.append(stream, [{ type: "B", data: 2 }], { expectedVersion: 0 })
              )
            )
            assert.strictEqual(result.version, 1)
            assert.deepStrictEqual((yield* store.readStream(stream)).map((e) => e.type), ["A", "B"])
          })
      )

      it.effect.runIf(options.sql && options.parallelConnections)(
        "a writer that bypasses the lock still cannot duplicate a version",
        () =>
          Effect.gen(function*() {
            const store = yield* EventStore.EventStore
            const sql = yield* sqlClient
            const stream = unique("bypass")
            const inserted = yield* Deferred.make<void>()
            const release = yield* Deferred.make<void>()
            const xid = yield* Deferred.make<string>()
            const intruder = yield* Effect.forkChild(sql.withTransaction(Effect.gen(function*() {
              yield* sql`INSERT INTO event_store_events ${
                sql.insert({
                  stream_id: stream,
                  version: 0,
                  type: "Intruder",
                  data: "null",
                  metadata: "{}",
                  recorded_at: new Date()
                })
              }`
              const [row] = yield* sql<{ readonly xid: string }>`SELECT xid(pg_current_xact_id())::text AS xid`
              yield* Deferred.succeed(xid, row!.xid)
              yield* Deferred.succeed(inserted, undefined)
              yield* Deferred.await(release)
            })))
            yield* Deferred.await(inserted)
            // Both appends read version -1 (the intruder has not committed) and wait on the unique index.
            const any = yield* Effect.forkChild(store.append(stream, [{ type: "Any", data: 1 }]))
            const fresh = yield* Effect.forkChild(
              Effect.result(store.append(stream, [{ type: "Fresh", data: 2 }], { expectedVersion: "no-stream" }))
            )
            const intruderXid = yield* Deferred.await(xid)
            yield* pollUntil(
              "an append waits on the intruder's transaction",
              Effect.map(
                Effect.orDie(sql<{ readonly waiting: number }>`SELECT count(*)::int AS waiting FROM pg_locks
                  WHERE NOT granted AND locktype = 'transactionid' AND transactionid::text = ${intruderXid}`),
                (rows) => (rows[0]?.waiting ?? 0) > 0
              )
            )
            yield* Deferred.succeed(release, undefined)
            yield* Fiber.join(intruder)
            const anyResult = yield* Fiber.join(any)
            const freshResult = yield* Fiber.join(fresh)
            assert.isTrue(Result.isFailure(freshResult))
            const types = (yield* store.readStream(stream)).map((e) => e.type)
            assert.deepStrictEqual(types, ["Intruder", "Any"])
            assert.strictEqual(anyResult.version, 1)
          })
      )
    })

    describe("global order", () => {
      it.effect("readAll yields every event in sequence order with non-decreasing times", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const from = (yield* store.lastSequence) + 1
          const streams = Arr.range(0, 9).map(() => unique("order"))
          yield* Effect.forEach(
            Arr.range(0, 59),
            (i) => store.append(streams[i % 10]!, [{ type: "E", data: i }]),
            { concurrency: options.concurrency, discard: true }
          )
          const events = yield* collect(store.readAll({ fromSequence: from, batchSize: 7 }))
          assert.strictEqual(events.length, 60)
          assert.deepStrictEqual(events.map((e) => e.sequence), Arr.range(from, from + 59))
          assert.isTrue(events.every((e, i) => i === 0 || e.recordedAt >= events[i - 1]!.recordedAt))
          assert.strictEqual(yield* store.lastSequence, from + 59)
          const window = yield* collect(store.readAll({ fromSequence: from + 10, toSequence: BigInt(from + 19) }))
          assert.deepStrictEqual(window.map((e) => e.sequence), Arr.range(from + 10, from + 19))
        }))

      it.effect("a catch-up reader following concurrent appends misses nothing", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const start = yield* store.lastSequence
          const seen = yield* Ref.make<ReadonlyArray<number>>([])
          const done = yield* Ref.make(false)
          const poll = Effect.gen(function*() {
            const last = yield* Ref.get(seen).pipe(Effect.map((s) => s[s.length - 1] ?? start))
            const events = yield* collect(store.readAll({ fromSequence: last + 1, batchSize: 50 }))
            yield* Ref.update(seen, (s) => [...s, ...events.map((e) => e.sequence)])
          })
          const reader = yield* Effect.forkChild(
            Effect.gen(function*() {
              while (!(yield* Ref.get(done))) yield* Effect.andThen(poll, Effect.yieldNow)
              yield* poll
            })
          )
          yield* Effect.forEach(
            Arr.range(0, 149),
            (i) => store.append(unique("follow"), [{ type: "E", data: i }]),
            { concurrency: options.concurrency, discard: true }
          )
          yield* Ref.set(done, true)
          yield* Fiber.join(reader)
          const sequences = yield* Ref.get(seen)
          assert.deepStrictEqual(sequences, Arr.range(start + 1, start + 150))
        }))

      it.effect("readAll until a timestamp and per tenant", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const from = (yield* store.lastSequence) + 1
          const tenantA = unique("a").replace("/", "-")
          const tenantB = unique("b").replace("/", "-")
          yield* store.append(unique("t"), [
            { type: "E", data: 1, metadata: { tenantId: tenantA } },
            { type: "E", data: 2, metadata: { tenantId: tenantB } }
          ])
          const [first] = yield* store.readStream((yield* collect(store.readAll({ fromSequence: from })))[0]!.streamId)
          // The database's clock is real, the memory store's is the test clock: move both past the first events'
          // millisecond.
          const sql = yield* Effect.serviceOption(SqlClient.SqlClient)
          if (Option.isSome(sql)) {
            yield* pollUntil(
              "the database's clock is past the first events",
              Effect.map(
                Effect.orDie(sql.value<{ readonly later: boolean }>`SELECT date_trunc('milliseconds', clock_timestamp())
                  > ${first!.recordedAt} AS later`),
                (rows) => rows[0]?.later === true
              )
            )
          }
          yield* TestClock.adjust("5 millis")
          yield* store.append(unique("t"), [
            { type: "E", data: 3, metadata: { tenantId: tenantA } },
            { type: "E", data: 4, metadata: { tenantId: 42 } }
          ])
          const until = first!.recordedAt
          const early = yield* collect(store.readAll({ fromSequence: from, until }))
          assert.deepStrictEqual(early.map((e) => e.data), [1, 2])
          const none = yield* collect(store.readAll({ fromSequence: from, until: new Date(until.getTime() - 1) }))
          assert.deepStrictEqual(none, [])
          const all = yield* collect(store.readAll({ fromSequence: from }))
          assert.deepStrictEqual(all.map((e) => e.data), [1, 2, 3, 4])
          assert.strictEqual(all[3]!.tenantId, undefined)
          const ofA = yield* collect(store.readAll({ fromSequence: from, tenantId: tenantA, batchSize: 1 }))
          assert.deepStrictEqual(ofA.map((e) => [e.data, e.tenantId]), [[1, tenantA], [3, tenantA]])
          const ofAEarly = yield* collect(store.readAll({ fromSequence: from, tenantId: tenantA, until }))
          assert.deepStrictEqual(ofAEarly.map((e) => e.data), [1])
        }))

      it.effect("readAll stops at the last sequence when it started", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const from = (yield* store.lastSequence) + 1
          const stream = unique("snapshot")
          yield* store.append(stream, [{ type: "E", data: 1 }, { type: "E", data: 2 }])
          const events = yield* store.readAll({ fromSequence: from, batchSize: 1 }).pipe(
            Stream.tap(() => store.append(stream, [{ type: "More", data: 0 }])),
            Stream.runCollect
          )
          assert.strictEqual(events.length, 2)
        }))
    })

    describe("follow", () => {
      it.effect("streams the backlog, then each append through this store as it commits", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const stream = unique("follow")
          const { firstSequence: from } = yield* store.append(stream, [{ type: "E", data: 1 }])
          // Each append comes once the follower has delivered everything before it: it is live, past its backlog.
          const delivered = yield* Ref.make(0)
          const follower = yield* Effect.forkChild(
            store.follow({ fromSequence: from, batchSize: 2 }).pipe(
              Stream.filter((e) => e.streamId === stream),
              Stream.tap(() => Ref.update(delivered, (n) => n + 1)),
              Stream.take(4),
              Stream.runCollect
            )
          )
          yield* pollUntil("the backlog is delivered", Effect.map(Ref.get(delivered), (n) => n === 1))
          yield* store.append(stream, [{ type: "E", data: 2 }])
          yield* pollUntil("the second event is delivered", Effect.map(Ref.get(delivered), (n) => n === 2))
          yield* store.append(stream, [{ type: "E", data: 3 }, { type: "E", data: 4 }])
          const events = yield* Fiber.join(follower)
          assert.deepStrictEqual(events.map((e) => e.data), [1, 2, 3, 4])
        }))

      it.effect.runIf(options.sql)(
        "an append in the caller's transaction wakes followers once it commits",
        () =>
          Effect.gen(function*() {
            const store = yield* EventStore.EventStore
            const sql = yield* sqlClient
            const stream = unique("follow-tx")
            const { firstSequence: from } = yield* store.append(stream, [{ type: "E", data: "before" }])
            // The test clock never moves, so only the store's own wake-up can deliver the event. The follower is live
            // (past its backlog, the first event) before the transaction appends.
            const delivered = yield* Ref.make(0)
            const follower = yield* Effect.forkChild(
              store.follow({ fromSequence: from, pollInterval: "1 hour" }).pipe(
                Stream.filter((e) => e.streamId === stream),
                Stream.tap(() => Ref.update(delivered, (n) => n + 1)),
                Stream.take(2),
                Stream.runCollect
              )
            )
            yield* pollUntil("the backlog is delivered", Effect.map(Ref.get(delivered), (n) => n === 1))
            // Inside the transaction, after the append, two round trips to the database: a store that woke its
            // followers at the append (not at the commit) would have them read before the commit, miss the event and
            // wait an hour.
            yield* sql.withTransaction(
              Effect.andThen(
                store.append(stream, [{ type: "E", data: "committed" }]),
                Effect.andThen(store.lastSequence, store.lastSequence)
              )
            )
            const events = yield* Fiber.join(follower)
            assert.deepStrictEqual(events.map((e) => e.data), ["before", "committed"])
          })
      )

      it.effect.runIf(options.sql)("sees appends by another process at the next poll", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const other = yield* Effect.provideService(EventStore.make(), SqlClient.SqlClient, yield* sqlClient)
          const stream = unique("poll")
          const { firstSequence: from } = yield* store.append(stream, [{ type: "E", data: "here" }])
          const delivered = yield* Ref.make(0)
          const follower = yield* Effect.forkChild(
            store.follow({ fromSequence: from, pollInterval: "1 second" }).pipe(
              Stream.filter((e) => e.streamId === stream),
              Stream.tap(() => Ref.update(delivered, (n) => n + 1)),
              Stream.take(2),
              Stream.runCollect
            )
          )
          // Live (past its backlog) before the other store appends: only a poll can bring that event.
          yield* pollUntil("the backlog is delivered", Effect.map(Ref.get(delivered), (n) => n === 1))
          yield* other.append(stream, [{ type: "E", data: "elsewhere" }])
          // Each check moves the test clock by one poll interval.
          yield* pollUntil(
            "the follower polls the other store's event",
            Effect.map(TestClock.adjust("1 second"), () => follower.pollUnsafe() !== undefined)
          )
          const events = yield* Fiber.join(follower)
          assert.deepStrictEqual(events.map((e) => e.data), ["here", "elsewhere"])
        }))
    })

    describe("checkpoints", () => {
      it.effect("get, set, list and remove", () =>
        Effect.gen(function*() {
          const checkpoints = yield* Checkpoints.Checkpoints
          const name = unique("projection")
          assert.strictEqual(yield* checkpoints.get(name), 0)
          yield* checkpoints.set(name, 41)
          yield* checkpoints.set(name, 42)
          assert.strictEqual(yield* checkpoints.get(name), 42)
          yield* checkpoints.set(name, 2 ** 40)
          assert.strictEqual(yield* checkpoints.get(name), 2 ** 40)
          const listed = (yield* checkpoints.list).find((c) => c.name === name)
          assert.strictEqual(listed?.sequence, 2 ** 40)
          assert.instanceOf(listed?.updatedAt, Date)
          yield* checkpoints.remove(name)
          assert.strictEqual(yield* checkpoints.get(name), 0)
          const bad = yield* Effect.exit(checkpoints.set(name, -1))
          assert.isTrue(bad._tag === "Failure")
        }))

      it.effect("epochs: set and claim bump it; advance lands only in the epoch it was read in", () =>
        Effect.gen(function*() {
          const checkpoints = yield* Checkpoints.Checkpoints
          const name = unique("epoch")
          assert.deepStrictEqual(yield* checkpoints.position(name), { sequence: 0, epoch: 0 })
          // Nothing saved yet: there is no epoch to advance in.
          assert.isFalse(yield* checkpoints.advance(name, 3, 0))
          const first = yield* checkpoints.claim(name)
          assert.deepStrictEqual(first, { sequence: 0, epoch: 1 })
          assert.isTrue(yield* checkpoints.advance(name, 5, first.epoch))
          assert.deepStrictEqual(yield* checkpoints.position(name), { sequence: 5, epoch: 1 })
          // Another holder takes over: the sequence stays, the first holder's progress no longer lands.
          const second = yield* checkpoints.claim(name)
          assert.deepStrictEqual(second, { sequence: 5, epoch: 2 })
          assert.isFalse(yield* checkpoints.advance(name, 9, first.epoch))
          assert.isTrue(yield* checkpoints.advance(name, 7, second.epoch))
          // A reset from outside (a restore) moves the sequence and the epoch.
          yield* checkpoints.set(name, 0)
          assert.deepStrictEqual(yield* checkpoints.position(name), { sequence: 0, epoch: 3 })
          assert.isFalse(yield* checkpoints.advance(name, 8, second.epoch))
          assert.strictEqual((yield* checkpoints.list).find((c) => c.name === name)?.epoch, 3)
          const bad = yield* Effect.exit(checkpoints.advance(name, -1, 3))
          assert.isTrue(bad._tag === "Failure")
        }))

      it.effect("a projection catches up from its checkpoint", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const checkpoints = yield* Checkpoints.Checkpoints
          const name = unique("catch-up")
          yield* checkpoints.set(name, yield* store.lastSequence)
          const stream = unique("projected")
          yield* store.append(stream, [{ type: "E", data: 1 }, { type: "E", data: 2 }])
          const applied: Array<unknown> = []
          const catchUp = Effect.gen(function*() {
            const from = (yield* checkpoints.get(name)) + 1
            yield* store.readAll({ fromSequence: from }).pipe(
              Stream.runForEach((event) =>
                Effect.andThen(Effect.sync(() => applied.push(event.data)), checkpoints.set(name, event.sequence))
              )
            )
          })
          yield* catchUp
          yield* store.append(stream, [{ type: "E", data: 3 }])
          yield* catchUp
          yield* catchUp
          assert.deepStrictEqual(applied, [1, 2, 3])
          assert.strictEqual(yield* checkpoints.get(name), yield* store.lastSequence)
        }))
    })

    describe("export and import", () => {
      it.effect("a JSON export imports back identically, incrementally and idempotently", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          yield* store.append(unique("x"), [{ type: "E", data: { a: 1 }, metadata: { tenantId: "acme" } }])
          yield* store.append(unique("y"), [{ type: "E", data: [1, 2] }, { type: "F", data: "s" }])
          const cut = yield* store.lastSequence
          yield* store.append(unique("z"), [{ type: "G", data: null }])
          const original = yield* collect(store.readAll())
          const encode = Schema.encodeSync(EventStore.RecordedEventFromJson)
          const decode = Schema.decodeSync(EventStore.RecordedEventFromJson)
          const full = original.filter((e) => e.sequence <= cut).map((e) => encode(e))
          const incremental = original.filter((e) => e.sequence > cut).map((e) => encode(e))

          yield* store.truncate
          assert.strictEqual(yield* store.lastSequence, 0)
          const first = yield* store.importEvents(
            Stream.fromIterable(full).pipe(Stream.map((line) => decode(line))),
            { batchSize: 100 }
          )
          assert.deepStrictEqual(first, { imported: full.length, skipped: 0 })
          const second = yield* store.importEvents(
            Stream.fromIterable([...full, ...incremental]).pipe(Stream.map((line) => decode(line)))
          )
          assert.deepStrictEqual(second, { imported: incremental.length, skipped: full.length })
          const restored = yield* collect(store.readAll())
          assert.deepStrictEqual(restored.map((e) => encode(e)), original.map((e) => encode(e)))

          // The sequence continues after the imported maximum.
          const next = yield* store.append(unique("after"), [{ type: "E", data: 0 }])
          assert.strictEqual(next.firstSequence, original[original.length - 1]!.sequence + 1)
        }))

      it.effect("importing over a different history is a typed conflict", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const stream = unique("clash")
          const { lastSequence } = yield* store.append(stream, [{ type: "E", data: 1 }])
          const [event] = yield* store.readStream(stream)
          const clash = new EventStore.RecordedEvent({ ...event!, sequence: lastSequence + 1000 })
          const error = yield* Effect.flip(store.importEvents(Stream.make(clash)))
          assert.strictEqual(error._tag, "ImportConflict")
          assert.strictEqual(yield* store.lastSequence, lastSequence)
        }))
    })

    describe("tenants", () => {
      const tenantIds = () => {
        const suffix = Math.random().toString(36).slice(2, 8)
        return [`ta${suffix}`, `tb${suffix}`] as const
      }
      const ingested = (tenant: string, id: string) => ({
        type: "DocumentIngested",
        data: { id },
        metadata: { tenantId: tenant }
      })

      it.effect("a tenant-scoped read sees only that tenant's events; its appends carry only its events", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const [a, b] = tenantIds()
          const streamA = `tenant/${a}/document/1`
          yield* store.append(streamA, [ingested(a, "1")]).pipe(EventStore.forTenant(a))
          yield* store.append(`tenant/${b}/document/1`, [ingested(b, "1")]).pipe(EventStore.forTenant(b))
          assert.strictEqual((yield* store.readStream(streamA).pipe(EventStore.forTenant(a))).length, 1)
          // Even a read that names another tenant's stream finds nothing, and its version is "no stream".
          assert.deepStrictEqual(yield* store.readStream(streamA).pipe(EventStore.forTenant(b)), [])
          assert.strictEqual(yield* store.streamVersion(streamA).pipe(EventStore.forTenant(b)), -1)
          assert.strictEqual(yield* store.streamVersion(streamA).pipe(EventStore.forTenant(a)), 0)
          // An event of A appended in B's scope is refused (the policy's WITH CHECK), and nothing is written.
          const foreign = yield* Effect.exit(store.append(streamA, [ingested(a, "1")]).pipe(EventStore.forTenant(b)))
          assert.isTrue(Exit.isFailure(foreign) && Cause.hasDies(foreign.cause))
          assert.strictEqual((yield* store.readStream(streamA)).length, 1)
          // Unscoped (the projector, backups), every tenant is visible.
          const all = yield* collect(store.readAll({ tenantId: a }))
          assert.isAbove(all.length, 0)
        }))

      it.effect("scoped and unscoped appends written together keep their own tenants", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const [a, b] = tenantIds()
          const from = (yield* store.lastSequence) + 1
          yield* Effect.forEach(Arr.range(0, 23), (i) => {
            const tenant = i % 3 === 0 ? a : i % 3 === 1 ? b : undefined
            const append = store.append(
              `tenant/${tenant ?? "shared"}/document/${i}`,
              [tenant === undefined ? { type: "E", data: i } : ingested(tenant, String(i))]
            )
            return tenant === undefined ? append : EventStore.forTenant(append, tenant)
          }, { concurrency: options.concurrency, discard: true })
          const all = yield* collect(store.readAll({ fromSequence: from }))
          const ours = all.filter((e) =>
            e.tenantId === a || e.tenantId === b || e.streamId.startsWith("tenant/shared/")
          )
          assert.strictEqual(ours.length, 24)
          assert.isTrue(isIncreasing(all.map((e) => e.sequence)))
        }))

      it.effect("listStreams pages a prefix by stream id, skipping streams whose last event says so", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const [a, b] = tenantIds()
          const prefix = `tenant/${a}/document/`
          for (const id of ["c", "a", "e", "b", "d"]) yield* store.append(`${prefix}${id}`, [ingested(a, id)])
          yield* store.append(`${prefix}b`, [{ type: "DocumentDeleted", data: {}, metadata: { tenantId: a } }])
          yield* store.append(`tenant/${b}/document/a`, [ingested(b, "a")])
          const page = (after?: string) =>
            store.listStreams({ prefix, after, limit: 2, skipWhenLast: ["DocumentDeleted"] })
          const first = yield* page()
          assert.strictEqual(first.length, 2)
          const second = yield* page(first[1]![0]!.streamId)
          const third = yield* page(second[second.length - 1]![0]!.streamId)
          const ids = [...first, ...second, ...third].map((events) => events[0]!.streamId.slice(prefix.length))
          assert.deepStrictEqual([...ids].sort(), ["a", "c", "d", "e"])
          assert.strictEqual(new Set(ids).size, 4)
          // Each stream comes with all its events, in version order.
          const all = yield* store.listStreams({ prefix, limit: 10 })
          assert.deepStrictEqual(
            all.map((events) => events.map((e) => e.version)),
            all.map((events) => events.map((_, i) => i))
          )
          assert.strictEqual(all.find((events) => events[0]!.streamId === `${prefix}b`)?.length, 2)
          // Scoped to another tenant, the prefix shows nothing.
          assert.deepStrictEqual(yield* store.listStreams({ prefix, limit: 10 }).pipe(EventStore.forTenant(b)), [])
        }))

      it.effect.prop(
        "pages over inserts and deletes made between pages: every stream that exists throughout, exactly once",
        [
          Schema.Struct({
            initial: Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 40 }))).check(
              Schema.isBetweenLength(0, 25)
            ),
            limit: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 6 })),
            between: Schema.Array(
              Schema.Array(
                Schema.Struct({
                  insert: Schema.Boolean,
                  id: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 40 }))
                })
              ).check(Schema.isBetweenLength(0, 4))
            ).check(Schema.isBetweenLength(0, 12))
          })
        ],
        ([scenario]) =>
          Effect.gen(function*() {
            const store = yield* EventStore.EventStore
            const [a] = tenantIds()
            const prefix = `tenant/${a}/document/`
            const live = new Set<string>()
            const touched = new Set<string>()
            const name = (id: number) => `d${String(id).padStart(2, "0")}`
            const insert = (id: string) =>
              Effect.andThen(store.append(`${prefix}${id}`, [ingested(a, id)]), Effect.sync(() => live.add(id)))
            const remove = (id: string) =>
              Effect.andThen(
                store.append(`${prefix}${id}`, [{ type: "DocumentDeleted", data: {}, metadata: { tenantId: a } }]),
                Effect.sync(() => live.delete(id))
              )
            for (const id of scenario.initial) yield* insert(name(id))
            const throughout = new Set(live)
            const seen: Array<string> = []
            let after: string | undefined
            for (let page = 0;; page++) {
              const streams = yield* store.listStreams({
                prefix,
                after,
                limit: scenario.limit,
                skipWhenLast: ["DocumentDeleted"]
              }).pipe(EventStore.forTenant(a))
              for (const events of streams) seen.push(events[0]!.streamId.slice(prefix.length))
              if (streams.length < scenario.limit) break
              after = streams[streams.length - 1]![0]!.streamId
              for (const change of scenario.between[page] ?? []) {
                const id = name(change.id)
                touched.add(id)
                if (change.insert) yield* insert(id)
                else if (live.has(id)) yield* remove(id)
              }
            }
            assert.strictEqual(new Set(seen).size, seen.length, `no duplicates: ${seen.join(",")}`)
            for (const id of throughout) {
              if (!touched.has(id)) assert.include(seen, id, `${id} existed throughout`)
            }
          }),
        { arbitrary: { runs: 20 } }
      )

      it.effect("deleteTenant deletes one tenant's events and no other's", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const [a, b] = tenantIds()
          yield* store.append(`tenant/${a}/document/1`, [ingested(a, "1"), ingested(a, "1")])
          yield* store.append(`tenant/${a}/pipeline/1`, [{ type: "PipelineStarted", data: {} }])
          yield* store.append(`tenant/${b}/document/1`, [ingested(b, "1")])
          assert.strictEqual(yield* store.deleteTenant(a), 3)
          assert.deepStrictEqual(yield* store.readStream(`tenant/${a}/document/1`), [])
          assert.strictEqual(yield* store.streamVersion(`tenant/${a}/document/1`), -1)
          assert.strictEqual((yield* store.readStream(`tenant/${b}/document/1`)).length, 1)
          // The stream starts again from version 0.
          const again = yield* store.append(`tenant/${a}/document/1`, [ingested(a, "1")], {
            expectedVersion: "no-stream"
          })
          assert.strictEqual(again.version, 0)
        }))
    })

    describe("properties", () => {
      it.effect.prop(
        "any sequence of appends reads back identically",
        [
          Schema.Array(
            Schema.Struct({
              stream: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 3 })),
              events: Schema.Array(
                Schema.Struct({
                  type: asciiString(1, 20),
                  data: jsonValue(3),
                  metadata: Schema.UndefinedOr(Schema.Record(asciiString(0, 8), jsonValue(1)))
                })
              ).check(Schema.isBetweenLength(1, 5))
            })
          ).check(Schema.isBetweenLength(1, 8))
        ],
        ([appends]) =>
          Effect.gen(function*() {
            const store = yield* EventStore.EventStore
            const prefix = unique("prop")
            const from = (yield* store.lastSequence) + 1
            const expected: Array<{ stream: string; type: string; data: unknown; metadata: unknown }> = []
            for (const { events, stream } of appends) {
              const streamId = `${prefix}/${stream}`
              yield* store.append(streamId, events)
              for (const e of events) {
                expected.push({
                  stream: streamId,
                  type: e.type,
                  data: viaJson(e.data),
                  metadata: viaJson(e.metadata ?? {})
                })
              }
            }
            const all = yield* collect(store.readAll({ fromSequence: from, batchSize: 4 }))
            assert.deepStrictEqual(
              all.map((e) => ({ stream: e.streamId, type: e.type, data: e.data, metadata: e.metadata })),
              expected
            )
            for (let s = 0; s < 4; s++) {
              const streamId = `${prefix}/${s}`
              const events = yield* store.readStream(streamId)
              assert.deepStrictEqual(events.map((e) => e.version), events.map((_, i) => i))
              assert.deepStrictEqual(
                events.map((e) => e.data),
                expected.filter((e) => e.stream === streamId).map((e) => e.data)
              )
            }
          }),
        { arbitrary: { runs: 25 } }
      )
    })
  })
}
