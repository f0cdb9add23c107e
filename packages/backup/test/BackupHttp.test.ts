import { HttpApi, HttpApiBuilder, HttpApiClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { EventStore } from "@ouroboros/event-store"
import { ProblemHttp } from "@ouroboros/kernel"
import { Effect, Either, Layer, Logger, LogLevel } from "effect"
import { BackupHttp } from "../src/index.js"
import { layerStores } from "./helpers.js"

class ServerApi extends HttpApi.make("server").add(BackupHttp.Group) {}

const ApiServer = HttpApiBuilder.serve(ProblemHttp.middleware).pipe(
  Layer.provide(HttpApiBuilder.api(ServerApi)),
  Layer.provide(BackupHttp.layer(ServerApi)),
  Layer.provideMerge(layerStores()),
  Layer.provideMerge(NodeHttpServer.layerTest),
  Layer.provide(Logger.minimumLogLevel(LogLevel.None))
)

describe("BackupHttp", () => {
  it.scoped("creates, lists, verifies and restores through the admin API", () =>
    Effect.gen(function*() {
      const client = yield* HttpApiClient.make(ServerApi)
      const store = yield* EventStore.EventStore
      yield* store.append("tenant/acme/document/1", [{ type: "DocumentIngested", data: { text: "a" } }])
      const manifest = yield* client.backups.create({ urlParams: { kind: "full" } })
      assert.strictEqual(manifest.kind, "full")
      const listed = yield* client.backups.list()
      assert.deepStrictEqual(listed.map((i) => i.manifest.id), [manifest.id])

      // Not verified yet: 409.
      const refused = yield* Effect.either(client.backups.restore({ path: { id: manifest.id }, payload: undefined }))
      assert.strictEqual(Either.isLeft(refused) && refused.left._tag, "Conflict", String(Either.isLeft(refused) && refused.left))

      const noBody = yield* HttpClient.post(`/admin/backups/${manifest.id}/restore`)
      assert.strictEqual(noBody.status, 409)

      const verification = yield* client.backups.verify({ path: { id: manifest.id }, urlParams: { tier: "restore" } })
      assert.isTrue(verification.ok)
      yield* store.append("tenant/acme/document/2", [{ type: "DocumentIngested", data: { text: "b" } }])
      const restored = yield* client.backups.restore({ path: { id: manifest.id }, payload: { at: 2 } })
      assert.strictEqual(restored.lastSequence, 2)
      assert.strictEqual(restored.replayedEvents, 1)

      const past = yield* Effect.either(client.backups.restore({ path: { id: manifest.id }, payload: { at: 99 } }))
      assert.strictEqual(Either.isLeft(past) && past.left._tag, "UnprocessableEntity")
      const raw = yield* HttpClient.post(`/admin/backups/20260101T000000000Z-full-zzzz/verify`)
      assert.strictEqual(raw.status, 404)
      const bad = yield* HttpClient.execute(
        HttpClientRequest.post(`/admin/backups/${manifest.id}/restore`).pipe(
          HttpClientRequest.bodyUnsafeJson({ at: "yesterday" })
        )
      )
      assert.strictEqual(bad.status, 400)
    }).pipe(Effect.provide(ApiServer)), { timeout: 30_000 })
})
