import { assert, describe, it } from "@effect/vitest"
import { EventStore } from "@ouroboros/event-store"
import { Testing } from "@ouroboros/server"
import { Database } from "@ouroboros/sql"
import { Effect, Layer } from "effect"
import { call, eventually, tenantA } from "./helpers.js"

describe("the vector projection repairs itself", () => {
  it.live("a crash between appending the event and writing the vectors loses nothing", () =>
    Effect.gen(function*() {
      const dataDir = yield* Testing.tempDir
      // A first run ingests a document normally.
      yield* Effect.scoped(Effect.gen(function*() {
        const server = yield* Testing.start({ DATA_DIR: dataDir })
        const created = yield* call(`${server.url}/api/v1/documents`, {
          headers: tenantA,
          body: { id: "otters", text: "Otters hold hands while they sleep." }
        })
        assert.strictEqual(created.status, 201)
      }))
      // The process "dies" right after recording an ingest: the event is there, its vectors are not.
      yield* Effect.scoped(
        Effect.gen(function*() {
          const events = yield* EventStore.EventStore
          yield* events.append("tenant/tenant-a/document/cranes", [{
            type: "DocumentIngested",
            data: {
              documentId: "cranes",
              text: "Cranes dance in pairs on frozen lakes.",
              metadata: {},
              contentHash: "not-checked-here",
              chunks: 1,
              embedder: "local:fh-384"
            },
            metadata: { tenantId: "tenant-a", subject: "test" }
          }], { expectedVersion: "no-stream" })
        }).pipe(Effect.provide(EventStore.layer.pipe(Layer.provide(Database.layerEmbedded({ dataDir })))))
      )
      // The next start catches up from its checkpoint (readiness does not wait for it): the document becomes
      // searchable.
      const server = yield* Testing.start({ DATA_DIR: dataDir })
      const search = yield* eventually(
        "the projection to catch up with the recorded ingest",
        call(`${server.url}/api/v1/search`, { headers: tenantA, body: { query: "cranes dancing" } }),
        (reply) => reply.status !== 200 || reply.body.results[0]?.documentId === "cranes"
      )
      assert.strictEqual(search.status, 200)
      assert.strictEqual(search.body.results[0]?.documentId, "cranes")
      const otters = yield* call(`${server.url}/api/v1/search`, {
        headers: tenantA,
        body: { query: "otters sleeping" }
      })
      assert.strictEqual(otters.body.results[0]?.documentId, "otters")
    }), { timeout: 90_000 })
})

describe("startup checks", () => {
  it.live(
    "an embedder whose size does not match the collection is a clear error at startup",
    () =>
      Effect.gen(function*() {
        const dataDir = yield* Testing.tempDir
        yield* Effect.scoped(Testing.start({ DATA_DIR: dataDir, LOCAL_EMBED_DIMENSIONS: "384" }))
        const failure = yield* Effect.flip(
          Effect.scoped(Testing.start({ DATA_DIR: dataDir, LOCAL_EMBED_DIMENSIONS: "256" }))
        )
        const message = String((failure as { message?: unknown }).message ?? failure)
        assert.include(message, "384")
        assert.include(message, "256")
      }),
    { timeout: 90_000 }
  )
})
