import { assert, describe, it } from "@effect/vitest"
import { Checkpoints, EventStore } from "@ouroboros/event-store"
import { TenantId } from "@ouroboros/kernel"
import * as QdrantStandIn from "@ouroboros/testkit/QdrantStandIn"
import { Qdrant, VectorStore } from "@ouroboros/vector-store"
import { Effect, Layer, References } from "effect"
import { Backup, BackupSource, BackupTarget } from "../src/index.js"
import { tempDir } from "./helpers.js"

const layer = Layer.unwrap(Effect.gen(function*() {
  const qdrant = yield* QdrantStandIn.scoped()
  const backups = yield* tempDir("qdrant-target")
  return Backup.layer().pipe(
    Layer.provideMerge(Layer.mergeAll(
      EventStore.layerMemory(),
      Checkpoints.layerMemory,
      Qdrant.layer({ url: qdrant.url }),
      BackupTarget.layerDirectory(backups),
      BackupSource.layerRegistry
    )),
    Layer.provideMerge(Layer.succeed(References.MinimumLogLevel, "Warn"))
  )
}))

describe("Backup with Qdrant", () => {
  it.live(
    "backs up collections through the snapshot API, verifies by a scratch restore, restores",
    () =>
      Effect.gen(function*() {
        const backup = yield* Backup.Backup
        const vectors = yield* VectorStore.VectorStore
        const tenant = TenantId.make("acme")
        yield* vectors.ensureCollection({ name: "chunks", dimensions: 4 })
        yield* vectors.upsert("chunks", tenant, [
          { id: "a", vector: [1, 0, 0, 0], payload: { text: "a" } },
          { id: "b", vector: [0, 1, 0, 0], payload: { text: "b" } },
          { id: "c", vector: [0, 0, 1, 0], payload: { text: "c" } }
        ])
        const manifest = yield* backup.create()
        const file = manifest.files.find((f) => f.source === "vectors:chunks")
        assert.strictEqual(file?.format, "qdrant")
        assert.strictEqual(file?.count, 3)
        yield* backup.verify(manifest.id, { tier: "restore" })
        // The scratch collection of the verification is gone.
        assert.deepStrictEqual((yield* vectors.listCollections).map((c) => c.name), ["chunks"])
        yield* vectors.drop("chunks")
        yield* vectors.ensureCollection({ name: "other", dimensions: 4 })
        yield* backup.restore(manifest.id)
        assert.deepStrictEqual((yield* vectors.listCollections).map((c) => c.name), ["chunks"])
        assert.strictEqual(yield* vectors.count("chunks", undefined), 3)
        const hits = yield* vectors.search("chunks", tenant, { vector: [0, 1, 0, 0], limit: 1 })
        assert.strictEqual(hits[0]?.id, "b")
      }).pipe(Effect.provide(layer)),
    { timeout: 30_000 }
  )
})
