import { assert, describe, it } from "@effect/vitest"
import { CircuitBreaker } from "@ouroboros/circuit-breaker"
import { Checkpoints, EventStore } from "@ouroboros/event-store"
import { Embedder, Llm } from "@ouroboros/llm"
import { VectorStore } from "@ouroboros/vector-store"
import { Deferred, Effect, Fiber, Layer, Ref, Schema, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as Resilient from "../src/Resilient.js"
import * as Retrieval from "../src/Retrieval.js"
import {
  eventually,
  flakyEmbedder,
  makeSwitch,
  principal,
  quiet,
  retrieval,
  tempDir,
  tenantA,
  tenantB,
  vectorStore
} from "./layers.js"

const zebras = "Zebras are African equines with distinctive black-and-white striped coats. " +
  "Each zebra has its own pattern of stripes."
const tea = "Green tea is made from the leaves of Camellia sinensis. It is steamed or pan-fired to stop oxidation."

const service = Effect.service(Retrieval.Retrieval)

describe("Retrieval", () => {
  it.effect("ingests, reads, searches, answers and deletes in the caller's tenant", () =>
    Effect.gen(function*() {
      const retrieval = yield* service
      const created = yield* retrieval.ingest(tenantA, { id: "zebras", text: zebras, metadata: { topic: "animals" } })
      assert.strictEqual(created.id, "zebras")
      assert.strictEqual(created.chunks, 1)
      assert.strictEqual(created.embedder, Embedder.localId(384))
      const read = yield* retrieval.get(tenantA, "zebras")
      // The times are the event's, which was recorded just before ingest returned.
      assert.deepStrictEqual({ ...read, createdAt: "", updatedAt: "" }, { ...created, createdAt: "", updatedAt: "" })
      assert.strictEqual(read.text, zebras)
      yield* retrieval.ingest(tenantA, { id: "tea", text: tea, metadata: { topic: "drinks" } })

      // Read-your-writes: the vectors are searchable as soon as ingest returns.
      const hits = yield* retrieval.search(tenantA, { query: "striped animals from Africa", limit: 5 })
      assert.strictEqual(hits[0]!.documentId, "zebras")
      assert.deepStrictEqual(hits[0]!.metadata, { topic: "animals" })
      const status = yield* retrieval.status
      assert.strictEqual(status.appliedSequence, status.lastSequence)
      assert.strictEqual(status.lastSequence, 2)

      const answer = yield* retrieval.ask(tenantA, { question: "What do zebras look like?" })
      assert.strictEqual(answer.sources[0]!.documentId, "zebras")
      assert.include(answer.answer, "striped")
      assert.isTrue(answer.degraded, "the local extractive answerer marks its answers degraded")
      assert.strictEqual(answer.model, Llm.localModel)
      const noRag = yield* retrieval.ask(tenantA, { question: "What do zebras look like?", useRag: false })
      assert.deepStrictEqual(noRag.sources, [])

      yield* retrieval.remove(tenantA, "zebras")
      const gone = yield* Effect.flip(retrieval.get(tenantA, "zebras"))
      assert.strictEqual(gone._tag, "DocumentNotFound")
      assert.strictEqual(gone.message, "no document zebras")
      assert.strictEqual((yield* Effect.flip(retrieval.remove(tenantA, "zebras")))._tag, "DocumentNotFound")
      const after = yield* retrieval.search(tenantA, { query: "striped animals from Africa", limit: 5 })
      assert.notInclude(after.map((hit) => hit.documentId), "zebras")
    }).pipe(Effect.provide(retrieval())))

  it.effect("re-ingesting the same content changes nothing; new content is the next version", () =>
    Effect.gen(function*() {
      const retrieval = yield* service
      const first = yield* retrieval.ingest(tenantA, { id: "zebras", text: zebras })
      const again = yield* retrieval.ingest(tenantA, { id: "zebras", text: zebras })
      assert.strictEqual(again.version, first.version)
      assert.strictEqual(again.contentHash, first.contentHash)
      const recorded = yield* retrieval.get(tenantA, "zebras")
      const changed = yield* retrieval.ingest(tenantA, { id: "zebras", text: tea })
      assert.strictEqual(changed.version, first.version + 1)
      assert.strictEqual(changed.createdAt, recorded.createdAt)
      const hits = yield* retrieval.search(tenantA, { query: "green tea leaves" })
      assert.deepStrictEqual(hits.map((hit) => hit.text), [tea])
      const generated = yield* retrieval.ingest(tenantA, { text: tea })
      assert.match(generated.id, /^[0-9a-f-]{36}$/)
    }).pipe(Effect.provide(retrieval())))

  it.effect("tenants are isolated, in the shared collection and in a dedicated one", () =>
    Effect.gen(function*() {
      const retrieval = yield* service
      const vectors = yield* VectorStore.VectorStore
      const enterprise = principal("big-co")
      yield* retrieval.ingest(tenantA, { id: "zebras", text: zebras })
      yield* retrieval.ingest(enterprise, { id: "zebras", text: zebras })
      assert.strictEqual((yield* Effect.flip(retrieval.get(tenantB, "zebras")))._tag, "DocumentNotFound")
      assert.deepStrictEqual(yield* retrieval.search(tenantB, { query: "zebras" }), [])
      assert.strictEqual((yield* retrieval.search(enterprise, { query: "zebras" }))[0]!.documentId, "zebras")
      assert.strictEqual(yield* vectors.count("documents", undefined), 1)
      assert.strictEqual(yield* vectors.count("documents_big-co", undefined), 1)
    }).pipe(Effect.provide(retrieval({ dedicatedTenants: new Set(["big-co"]) }))))

  it.effect("filters by metadata; an unusable filter is InvalidFilter", () =>
    Effect.gen(function*() {
      const retrieval = yield* service
      yield* retrieval.ingest(tenantA, { id: "zebras", text: zebras, metadata: { topic: "animals", year: 2020 } })
      yield* retrieval.ingest(tenantA, { id: "tea", text: tea, metadata: { topic: "drinks", year: 2024 } })
      const drinks = yield* retrieval.search(tenantA, {
        query: "striped animals",
        filter: { must: [{ key: "topic", match: { value: "drinks" } }] }
      })
      assert.deepStrictEqual(drinks.map((hit) => hit.documentId), ["tea"])
      const recent = yield* retrieval.search(tenantA, {
        query: "anything",
        filter: { must: [{ key: "year", range: { lt: 2021 } }] }
      })
      assert.deepStrictEqual(recent.map((hit) => hit.documentId), ["zebras"])
      const invalid = yield* Effect.flip(
        retrieval.search(tenantA, { query: "x", filter: { must: [{ key: "year", range: {} }] } })
      )
      assert.strictEqual(invalid._tag, "InvalidFilter")
    }).pipe(Effect.provide(retrieval())))

  it.effect("every write is applied, also one recorded while the projector was catching up", () =>
    Effect.gen(function*() {
      const retrieval = yield* service
      const vectors = yield* VectorStore.VectorStore
      const texts = [zebras, tea, "Otters hold hands while they sleep.", "Cranes dance in pairs.", "Bees dance too."]
      for (const [i, text] of texts.entries()) yield* retrieval.ingest(tenantA, { id: `doc-${i}`, text })
      assert.strictEqual(yield* vectors.count("documents", undefined), texts.length)
      for (const [i, text] of texts.entries()) {
        assert.strictEqual((yield* retrieval.search(tenantA, { query: text, limit: 1 }))[0]?.documentId, `doc-${i}`)
      }
    }).pipe(Effect.provide(retrieval())))

  it.effect("a text with nothing to index is EmptyDocument, and nothing is recorded", () =>
    Effect.gen(function*() {
      const retrieval = yield* service
      const error = yield* Effect.flip(retrieval.ingest(tenantA, { id: "blank", text: " \n\t " }))
      assert.strictEqual(error._tag, "EmptyDocument")
      assert.strictEqual(error.message, "the text has no content to index")
      assert.strictEqual(yield* (yield* EventStore.EventStore).lastSequence, 0)
    }).pipe(Effect.provide(retrieval())))

  it.effect("a concurrent write to the document's stream is DocumentConflict", () =>
    Effect.gen(function*() {
      // Another writer appends to the stream between the read and the write of the ingest.
      const Racing = Layer.effect(
        EventStore.EventStore,
        Effect.map(EventStore.EventStore, (inner) =>
          EventStore.EventStore.of({
            ...inner,
            append: (stream, events, options) =>
              Effect.andThen(
                inner.append(stream, [{ type: "Interloper", data: {}, metadata: { tenantId: "tenant-a" } }]),
                inner.append(stream, events, options)
              )
          }))
      ).pipe(Layer.provide(EventStore.layerMemory()))
      const layer = Retrieval.layer().pipe(
        Layer.provide(Layer.mergeAll(
          Racing,
          Checkpoints.layerMemory,
          Layer.unwrap(Effect.map(tempDir, vectorStore)),
          Llm.layerLocal,
          Embedder.layerLocal()
        )),
        Layer.provide(quiet)
      )
      const error = yield* Effect.flatMap(service, (r) => r.ingest(tenantA, { id: "zebras", text: zebras })).pipe(
        Effect.flip,
        Effect.provide(layer)
      )
      assert.strictEqual(error._tag, "DocumentConflict")
      if (error._tag === "DocumentConflict") {
        assert.strictEqual(error.id, "zebras")
        assert.match(error.message, /^the document changed concurrently \(.+\); retry$/)
      }
    }))
})

describe("Retrieval when a dependency fails", () => {
  it.effect("a failing embedding model is ModelUnavailable before anything is recorded; ask degrades", () =>
    Effect.gen(function*() {
      const s = yield* makeSwitch
      yield* Effect.gen(function*() {
        const retrieval = yield* service
        yield* retrieval.ingest(tenantA, { id: "zebras", text: zebras })
        yield* Ref.set(s.down, true)
        const error = yield* Effect.flip(retrieval.ingest(tenantA, { id: "tea", text: tea }))
        assert.strictEqual(error._tag, "ModelUnavailable")
        if (error._tag === "ModelUnavailable") {
          assert.strictEqual(error.detail, "the embedding model is unavailable")
          assert.strictEqual(error.purpose, "embedding")
          assert.strictEqual(error.model, Embedder.localId(384))
          assert.strictEqual(error.reason, "connection refused")
          assert.isUndefined(error.retryAfter, "no breaker, no retry time")
        }
        assert.strictEqual(yield* (yield* EventStore.EventStore).lastSequence, 1)
        const search = yield* Effect.flip(retrieval.search(tenantA, { query: "zebras" }))
        assert.strictEqual(search._tag, "ModelUnavailable")
        // Without a retriever the answer is the local one, from no passages.
        const answer = yield* retrieval.ask(tenantA, { question: "What do zebras look like?" })
        assert.isTrue(answer.degraded)
        assert.deepStrictEqual(answer.sources, [])
        assert.strictEqual(answer.answer, Llm.cannotAnswer)
      }).pipe(Effect.provide(retrieval({}, Layer.succeed(Embedder.Embedder, flakyEmbedder(s)))))
    }))

  it.effect("ModelUnavailable carries the remaining break of the model's breaker, typed, not looked up by name", () =>
    Effect.gen(function*() {
      const s = yield* makeSwitch
      const Guard = Resilient.layerModelGuard("embedder", {
        breaker: { tripPolicy: CircuitBreaker.consecutive(1), openDuration: "10 seconds" }
      }).pipe(Layer.provide(CircuitBreaker.layer()))
      yield* Effect.gen(function*() {
        const retrieval = yield* service
        yield* Ref.set(s.down, true)
        // The failing call opens the breaker: its break is read from the breaker's state.
        const opening = yield* Effect.flip(retrieval.search(tenantA, { query: "zebras" }))
        assert.strictEqual(opening._tag, "ModelUnavailable")
        if (opening._tag === "ModelUnavailable") assert.strictEqual(opening.retryAfter, 10_000)
        yield* TestClock.adjust("4 seconds")
        // The breaker rejects the next call without making it: its CircuitOpen carries the rest of the break.
        const rejected = yield* Effect.flip(retrieval.search(tenantA, { query: "zebras" }))
        assert.strictEqual(rejected._tag, "ModelUnavailable")
        if (rejected._tag === "ModelUnavailable") {
          assert.strictEqual(rejected.retryAfter, 6_000)
          assert.include(rejected.reason, "circuit breaker embedder is open")
          assert.include(rejected.message, "retry in 6 s")
        }
        assert.strictEqual(yield* Ref.get(s.calls), 1)
      }).pipe(
        Effect.provide(retrieval({}, Layer.succeed(Embedder.Embedder, flakyEmbedder(s))).pipe(Layer.provide(Guard)))
      )
    }))

  it.effect("a failing vector store is VectorStoreUnavailable with its breaker's break; ask degrades", () =>
    Effect.gen(function*() {
      const down = yield* Ref.make(false)
      // The embedded store, whose searches fail while `down` is set.
      const Failing = Layer.effect(
        VectorStore.VectorStore,
        Effect.map(VectorStore.VectorStore, (inner) =>
          VectorStore.VectorStore.of({
            ...inner,
            search: (collection, tenantId, request) =>
              Effect.flatMap(Ref.get(down), (isDown) =>
                isDown
                  ? Effect.fail(
                    new VectorStore.VectorStoreError({ reason: "Unavailable", message: "qdrant: ECONNREFUSED" })
                  )
                  : inner.search(collection, tenantId, request))
          }))
      ).pipe(Layer.provide(Layer.unwrap(Effect.map(tempDir, vectorStore))))
      const Guard = Resilient.layerVectorStoreGuard("vectors", {
        breaker: { tripPolicy: CircuitBreaker.consecutive(2), openDuration: "30 seconds" }
      }).pipe(Layer.provide(CircuitBreaker.layer()))
      const layer = Retrieval.layer().pipe(
        Layer.provide(Layer.mergeAll(
          EventStore.layerMemory(),
          Checkpoints.layerMemory,
          Failing,
          Llm.layerLocal,
          Embedder.layerLocal()
        )),
        Layer.provide(Guard),
        Layer.provide(quiet)
      )
      yield* Effect.gen(function*() {
        const retrieval = yield* service
        yield* retrieval.ingest(tenantA, { id: "zebras", text: zebras })
        yield* Ref.set(down, true)
        const closed = yield* Effect.flip(retrieval.search(tenantA, { query: "zebras" }))
        assert.strictEqual(closed._tag, "VectorStoreUnavailable")
        if (closed._tag === "VectorStoreUnavailable") {
          assert.strictEqual(closed.detail, "the vector store is unavailable")
          assert.strictEqual(closed.reason, "qdrant: ECONNREFUSED")
          assert.isUndefined(closed.retryAfter, "the breaker is still closed")
        }
        const opening = yield* Effect.flip(retrieval.search(tenantA, { query: "zebras" }))
        assert.strictEqual(opening._tag === "VectorStoreUnavailable" ? opening.retryAfter : undefined, 30_000)
        const answer = yield* retrieval.ask(tenantA, { question: "What do zebras look like?" })
        assert.isTrue(answer.degraded)
        assert.deepStrictEqual(answer.sources, [])
      }).pipe(Effect.provide(layer))
    }))

  it.effect("a write that the projection cannot apply in time is ProjectionBehind; nothing is lost", () =>
    Effect.gen(function*() {
      const stuck = yield* Ref.make(false)
      const upserting = yield* Deferred.make<void>()
      const Stuck = Layer.effect(
        VectorStore.VectorStore,
        Effect.map(VectorStore.VectorStore, (inner) =>
          VectorStore.VectorStore.of({
            ...inner,
            upsert: (collection, tenantId, points) =>
              Effect.flatMap(Ref.get(stuck), (isStuck) =>
                isStuck
                  ? Effect.andThen(Deferred.succeed(upserting, undefined), Effect.never)
                  : inner.upsert(collection, tenantId, points))
          }))
      ).pipe(Layer.provide(Layer.unwrap(Effect.map(tempDir, vectorStore))))
      const layer = Retrieval.layer({ applyTimeout: "5 seconds" }).pipe(
        Layer.provideMerge(Layer.mergeAll(
          EventStore.layerMemory(),
          Checkpoints.layerMemory,
          Stuck,
          Llm.layerLocal,
          Embedder.layerLocal()
        )),
        Layer.provide(quiet)
      )
      yield* Effect.gen(function*() {
        const retrieval = yield* service
        yield* Ref.set(stuck, true)
        const fiber = yield* Effect.forkChild(retrieval.ingest(tenantA, { id: "zebras", text: zebras }))
        yield* Deferred.await(upserting)
        yield* TestClock.adjust("5 seconds")
        const error = yield* Effect.flip(Fiber.join(fiber))
        assert.strictEqual(error._tag, "ProjectionBehind")
        if (error._tag === "ProjectionBehind") assert.deepStrictEqual([error.awaited, error.applied], [1, 0])
        // The event is recorded: the document exists, and its vectors come once the projection catches up.
        assert.strictEqual((yield* retrieval.get(tenantA, "zebras")).id, "zebras")
        const events = yield* EventStore.EventStore
        assert.deepStrictEqual((yield* Stream.runCollect(events.readAll())).map((e) => e.type), ["DocumentIngested"])
      }).pipe(Effect.provide(layer))
    }))
})

describe("Retrieval's projection", () => {
  it.live("a restore bumps the epoch: the projector resets and drops the vectors of events that are gone", () =>
    Effect.gen(function*() {
      const retrieval = yield* service
      const events = yield* EventStore.EventStore
      const checkpoints = yield* Checkpoints.Checkpoints
      yield* retrieval.ingest(tenantA, { id: "zebras", text: zebras })
      yield* retrieval.ingest(tenantA, { id: "tea", text: tea })
      const find = (query: string) =>
        Effect.map(retrieval.search(tenantA, { query, limit: 5 }), (hits) => hits.map((h) => h.documentId))
      assert.include(yield* find("leaves of a plant"), "tea")
      // What `Backup.restore` does: the events as they were at a point in time (before the tea), and the checkpoint
      // reset to 0 in the same step; nobody calls the projector.
      const kept = yield* Stream.runCollect(events.readAll({ toSequence: 1 }))
      yield* events.truncate
      yield* events.importEvents(Stream.fromIterable(kept))
      yield* checkpoints.set(Retrieval.checkpointName, 0)
      // The collection is dropped and filled again meanwhile: a search may fail or find nothing for a moment.
      yield* eventually(
        "the projector resets and replays the restored events",
        Effect.all([find("leaves of a plant"), find("striped animals")]).pipe(
          Effect.map(([leaves, striped]) => !leaves.includes("tea") && striped.includes("zebras")),
          Effect.orElseSucceed(() => false)
        )
      )
      assert.deepStrictEqual(yield* find("striped animals"), ["zebras"])
      yield* eventually("the projection is at the restored head", Effect.map(retrieval.applied, (n) => n === 1))
      assert.deepStrictEqual(yield* retrieval.status, { appliedSequence: 1, lastSequence: 1 })
    }).pipe(Effect.provide(retrieval({ pollInterval: "20 millis" }))))

  it.live("resume restarts the projection from a checkpoint: what follows it is applied again, and only that", () =>
    Effect.gen(function*() {
      const s = yield* makeSwitch
      yield* Effect.gen(function*() {
        const retrieval = yield* service
        yield* retrieval.ingest(tenantA, { id: "zebras", text: zebras })
        yield* retrieval.ingest(tenantA, { id: "tea", text: tea })
        // Each ingest embeds once (the request's vectors go to the projector).
        assert.strictEqual(yield* Ref.get(s.calls), 2)
        yield* retrieval.resume(1)
        assert.strictEqual(yield* (yield* Checkpoints.Checkpoints).get(Retrieval.checkpointName), 1)
        yield* eventually("the projector applies event 2 again", Effect.map(Ref.get(s.calls), (n) => n === 3))
        yield* eventually("the projection is at the head", Effect.map(retrieval.applied, (n) => n === 2))
        assert.strictEqual(yield* Ref.get(s.calls), 3)
        const hits = yield* retrieval.search(tenantA, { query: "leaves of a plant", limit: 1 })
        assert.strictEqual(hits[0]?.documentId, "tea")
      }).pipe(
        Effect.provide(retrieval({ pollInterval: "20 millis" }, Layer.succeed(Embedder.Embedder, flakyEmbedder(s))))
      )
    }))

  it.effect("a rebuild replays the events: the same results, the projection at the head", () =>
    Effect.gen(function*() {
      const retrieval = yield* service
      yield* retrieval.ingest(tenantA, { id: "zebras", text: zebras })
      yield* retrieval.ingest(tenantA, { id: "tea", text: tea })
      yield* retrieval.remove(tenantA, "tea")
      const before = yield* retrieval.search(tenantA, { query: "leaves of a plant", limit: 5 })
      const vectors = yield* VectorStore.VectorStore
      yield* vectors.drop("documents")
      const rebuilt = yield* retrieval.rebuild
      assert.strictEqual(rebuilt.events, 3)
      assert.deepStrictEqual(yield* retrieval.search(tenantA, { query: "leaves of a plant", limit: 5 }), before)
      assert.deepStrictEqual(yield* retrieval.status, { appliedSequence: 3, lastSequence: 3 })
      assert.strictEqual(yield* retrieval.applied, 3)
    }).pipe(Effect.provide(retrieval())))

  it.effect("catches up from its checkpoint after startup, which does not wait for it: lag reports it", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const events = yield* EventStore.EventStore
      // The projector's embedding waits at this gate, so the catch-up is still running when startup is over.
      const gate = yield* Deferred.make<void>()
      const local = Embedder.makeLocal()
      const Gated = Layer.succeed(
        Embedder.Embedder,
        Embedder.Embedder.of({
          ...local,
          embed: (texts, o) => Effect.andThen(Deferred.await(gate), local.embed(texts, o))
        })
      )
      const Stores = Layer.mergeAll(Layer.succeed(EventStore.EventStore, events), Checkpoints.layerMemory)
      const start = Retrieval.layer().pipe(
        Layer.provide(Layer.mergeAll(Stores, vectorStore(directory), Llm.layerLocal, Gated)),
        Layer.provide(quiet)
      )
      // The process "dies" right after recording an ingest: the event is there, its vectors are not.
      yield* events.append(Retrieval.streamOf(tenantA.tenantId, "cranes"), [{
        type: "DocumentIngested",
        data: {
          documentId: "cranes",
          text: "Cranes dance in pairs on frozen lakes.",
          metadata: {},
          contentHash: "not-checked-here",
          chunks: 1,
          embedder: Embedder.localId(384)
        },
        metadata: { tenantId: "tenant-a", subject: "test" }
      }], { expectedVersion: "no-stream" })
      yield* Effect.gen(function*() {
        const retrieval = yield* service
        // Started, with the event not applied yet: lag says so.
        assert.strictEqual(yield* retrieval.lag, 1)
        // The only process (no lease in the context) projects.
        yield* eventually("the projector runs", retrieval.projecting)
        assert.strictEqual(yield* retrieval.lag, 1)
        yield* Deferred.succeed(gate, undefined)
        yield* eventually("the projection catches up", Effect.map(retrieval.lag, (lag) => lag === 0))
        const hits = yield* retrieval.search(tenantA, { query: "cranes dancing" })
        assert.strictEqual(hits[0]?.documentId, "cranes")
      }).pipe(Effect.provide(start))
    }).pipe(Effect.provide(EventStore.layerMemory())))

  it.effect("a collection that the configured embedder cannot fill is IncompatibleCollection at startup", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const start = (embedder: Embedder.Embedder["Service"]) =>
        Effect.scoped(Layer.build(
          Retrieval.layer().pipe(
            Layer.provide(Layer.mergeAll(
              EventStore.layerMemory(),
              Checkpoints.layerMemory,
              vectorStore(directory),
              Llm.layerLocal,
              Layer.succeed(Embedder.Embedder, embedder)
            )),
            Layer.provide(quiet)
          )
        ))
      yield* start(Embedder.makeLocal({ dimensions: 384 }))
      const size = yield* Effect.flip(start(Embedder.makeLocal({ dimensions: 256 })))
      assert.strictEqual(size._tag, "IncompatibleCollection")
      assert.include(size.message, "384")
      assert.include(size.message, "256")
      const other = yield* Effect.flip(start({ ...Embedder.makeLocal({ dimensions: 384 }), id: "another:model" }))
      assert.strictEqual(other._tag, "IncompatibleCollection")
      assert.strictEqual(
        other.message,
        "the vector collection documents was built with the embedder local:fh-384, but another:model is configured, " +
          "and their vectors are not comparable: configure the same embedder, or delete the collection so that it " +
          "is rebuilt from the events at startup"
      )
    }))
})

describe("Retrieval: lists, costs and tenants", () => {
  it.effect("lists a tenant's documents in pages with opaque cursors; a forged cursor is InvalidCursor", () =>
    Effect.gen(function*() {
      const retrieval = yield* service
      for (const id of ["c", "a", "e", "b", "d"]) yield* retrieval.ingest(tenantA, { id, text: `${zebras} ${id}` })
      yield* retrieval.ingest(tenantB, { id: "a", text: tea })
      yield* retrieval.remove(tenantA, "d")
      const first = yield* retrieval.list(tenantA, { limit: 2 })
      assert.deepStrictEqual(first.documents.map((d) => d.id), ["a", "b"])
      assert.isString(first.nextCursor)
      const second = yield* retrieval.list(tenantA, { limit: 2, cursor: first.nextCursor })
      assert.deepStrictEqual(second.documents.map((d) => d.id), ["c", "e"])
      assert.isUndefined(second.nextCursor, "no page after the last one")
      assert.strictEqual(second.documents[0]!.text, `${zebras} c`)
      assert.deepStrictEqual((yield* retrieval.list(tenantB, {})).documents.map((d) => d.text), [tea])
      for (const cursor of ["", "not-a-cursor", Buffer.from("{\"v\":2,\"after\":\"a\"}").toString("base64url")]) {
        assert.strictEqual((yield* Effect.flip(retrieval.list(tenantA, { cursor })))._tag, "InvalidCursor")
      }
    }).pipe(Effect.provide(retrieval())))

  it.effect.prop(
    "pages over ingests and deletes made between pages: no duplicates, no gaps for documents that exist throughout",
    [
      Schema.Struct({
        initial: Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 30 }))),
        limit: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 5 })),
        between: Schema.Array(Schema.Array(Schema.Struct({
          ingest: Schema.Boolean,
          id: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 30 }))
        })))
      })
    ],
    ([scenario]) =>
      Effect.gen(function*() {
        const retrieval = yield* service
        const who = principal(`p${Math.random().toString(36).slice(2, 8)}`)
        const name = (n: number) => `doc-${String(n).padStart(2, "0")}`
        const live = new Set<string>()
        for (const n of scenario.initial) {
          yield* retrieval.ingest(who, { id: name(n), text: `${tea} ${n}` })
          live.add(name(n))
        }
        const throughout = new Set(live)
        const seen: Array<string> = []
        let cursor: string | undefined
        for (let page = 0; page < 100; page++) {
          const result = yield* retrieval.list(who, { limit: scenario.limit, cursor })
          seen.push(...result.documents.map((d) => d.id))
          if (result.nextCursor === undefined) break
          cursor = result.nextCursor
          for (const change of scenario.between[page] ?? []) {
            const id = name(change.id)
            throughout.delete(id)
            if (change.ingest) {
              yield* retrieval.ingest(who, { id, text: `${zebras} ${page}` })
              live.add(id)
            } else if (live.has(id)) {
              yield* retrieval.remove(who, id)
              live.delete(id)
            }
          }
        }
        assert.strictEqual(new Set(seen).size, seen.length, "no duplicates")
        for (const id of throughout) assert.include(seen, id, "no gaps")
      }).pipe(Effect.provide(retrieval())),
    { arbitrary: { runs: 30 } }
  )

  it.effect("an answer says what it cost; `local` answers with the local model even when another is configured", () =>
    Effect.gen(function*() {
      const retrieval = yield* service
      yield* retrieval.ingest(tenantA, { id: "zebras", text: zebras })
      const answered = yield* retrieval.answer(tenantA, { question: "What do zebras look like?" })
      assert.strictEqual(answered.usage.embeddedCharacters, "What do zebras look like?".length)
      assert.isTrue(answered.usage.estimated)
      assert.isAbove(answered.usage.llmTokens, 0)
      assert.strictEqual(answered.response.sources[0]!.documentId, "zebras")
      const local = yield* retrieval.answer(tenantA, { question: "What do zebras look like?", local: true })
      assert.isTrue(local.response.degraded)
      assert.strictEqual(local.response.model, Llm.localModel)
      const norag = yield* retrieval.answer(tenantA, { question: "Zebras?", useRag: false })
      assert.strictEqual(norag.usage.embeddedCharacters, 0)
    }).pipe(Effect.provide(retrieval())))

  it.effect("purgeTenant erases a tenant's events and vectors, in the shared collection and its own", () =>
    Effect.gen(function*() {
      const retrieval = yield* service
      const vectors = yield* VectorStore.VectorStore
      const events = yield* EventStore.EventStore
      const big = principal("big-co")
      yield* retrieval.ingest(tenantA, { id: "zebras", text: zebras })
      yield* retrieval.ingest(tenantB, { id: "zebras", text: zebras })
      yield* retrieval.ingest(big, { id: "zebras", text: zebras })
      const purged = yield* retrieval.purgeTenant(tenantA.tenantId)
      assert.strictEqual(purged.events, 1)
      assert.strictEqual((yield* Effect.flip(retrieval.get(tenantA, "zebras")))._tag, "DocumentNotFound")
      assert.deepStrictEqual(yield* retrieval.search(tenantA, { query: "zebras" }), [])
      assert.strictEqual((yield* retrieval.search(tenantB, { query: "zebras" })).length, 1)
      assert.strictEqual((yield* Stream.runCollect(events.readAll({ tenantId: "tenant-a" }))).length, 0)
      yield* retrieval.purgeTenant(big.tenantId)
      assert.notInclude((yield* vectors.listCollections).map((c) => c.name), "documents_big-co")
      // A rebuild from the events brings nothing back.
      yield* retrieval.rebuild
      assert.deepStrictEqual(yield* retrieval.search(tenantA, { query: "zebras" }), [])
      assert.strictEqual(yield* vectors.count("documents", undefined), 1)
    }).pipe(Effect.provide(retrieval({ dedicatedTenants: new Set(["big-co"]) }))))

  it.effect("a tenant whose collection changes is re-indexed into it (reindexTenant)", () =>
    Effect.gen(function*() {
      const dedicated = new Set<string>()
      const layer = retrieval({ isDedicated: (tenant) => Effect.sync(() => dedicated.has(tenant)) })
      yield* Effect.gen(function*() {
        const retrieval = yield* service
        const vectors = yield* VectorStore.VectorStore
        yield* retrieval.ingest(tenantA, { id: "zebras", text: zebras })
        yield* retrieval.ingest(tenantA, { id: "tea", text: tea })
        yield* retrieval.remove(tenantA, "tea")
        yield* retrieval.ingest(tenantB, { id: "zebras", text: zebras })
        dedicated.add("tenant-a")
        const moved = yield* retrieval.reindexTenant(tenantA.tenantId)
        assert.strictEqual(moved.documents, 2)
        assert.strictEqual(yield* vectors.count("documents_tenant-a", undefined), 1)
        assert.strictEqual(yield* vectors.count("documents", undefined), 1, "only tenant B's left in the shared one")
        assert.strictEqual((yield* retrieval.search(tenantA, { query: "zebras" }))[0]!.documentId, "zebras")
        // New writes go to the new collection.
        yield* retrieval.ingest(tenantA, { id: "tea", text: tea })
        assert.strictEqual(yield* vectors.count("documents_tenant-a", undefined), 2)
      }).pipe(Effect.provide(layer))
    }))
})

describe("Retrieval: the cost of a remote model's answer", () => {
  it.effect("is the tokens the model server counted", () =>
    Effect.gen(function*() {
      const local = Llm.makeLocal()
      const counting = Llm.Llm.of({
        ...local,
        id: "ollama:test",
        chat: (request) =>
          Effect.succeed({
            content: "Striped [1].",
            model: request.model ?? "test",
            degraded: false,
            usage: { promptTokens: 120, completionTokens: 7 }
          })
      })
      const layer = Retrieval.layer().pipe(
        Layer.provideMerge(Layer.mergeAll(
          EventStore.layerMemory(),
          Checkpoints.layerMemory,
          Layer.unwrap(Effect.map(tempDir, vectorStore)),
          Layer.succeed(Llm.Llm, counting),
          Embedder.layerLocal()
        )),
        Layer.provide(quiet)
      )
      yield* Effect.gen(function*() {
        const retrieval = yield* service
        yield* retrieval.ingest(tenantA, { id: "zebras", text: zebras })
        const answered = yield* retrieval.answer(tenantA, { question: "What do zebras look like?", model: "big" })
        assert.deepStrictEqual(answered.usage, {
          embeddedCharacters: "What do zebras look like?".length,
          llmTokens: 127,
          estimated: false
        })
        assert.deepStrictEqual(
          { answer: answered.response.answer, model: answered.response.model, degraded: answered.response.degraded },
          { answer: "Striped [1].", model: "big", degraded: false }
        )
      }).pipe(Effect.provide(layer))
    }))
})
