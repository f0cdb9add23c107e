import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { EventStore } from "@ouroboros/event-store"
import { ProblemHttp } from "@ouroboros/kernel"
import { Effect, Layer, References, Result } from "effect"
import { HttpClient, HttpClientRequest, HttpRouter } from "effect/http"
import { HttpApi, HttpApiBuilder, HttpApiClient } from "effect/http-api"
import { BackupHttp } from "../src/index.js"
import { layerStores } from "./helpers.js"

class ServerApi extends HttpApi.make("server").add(BackupHttp.Group) {}

const ApiServer = HttpRouter.serve(
  HttpApiBuilder.layer(ServerApi).pipe(
    Layer.provide(BackupHttp.layer(ServerApi)),
    Layer.provide(ProblemHttp.layer)
  ),
  { disableLogger: true, disableListenLog: true }
).pipe(
  Layer.provideMerge(layerStores()),
  Layer.provideMerge(NodeHttpServer.layerTest),
  Layer.provide(Layer.succeed(References.MinimumLogLevel, "None"))
)

describe("BackupHttp", () => {
  it.effect("creates, lists, verifies and restores through the admin API", () =>
    Effect.gen(function*() {
      const client = yield* HttpApiClient.make(ServerApi)
      const store = yield* EventStore.EventStore
      yield* store.append("tenant/acme/document/1", [{ type: "DocumentIngested", data: { text: "a" } }])
      const manifest = yield* client.backups.create({ query: { kind: "full" } })
      assert.strictEqual(manifest.kind, "full")
      const listed = yield* client.backups.list()
      assert.deepStrictEqual(listed.map((i) => i.manifest.id), [manifest.id])

      // Not verified yet: 409.
      const refused = yield* Effect.result(client.backups.restore({ params: { id: manifest.id }, payload: null }))
      assert.strictEqual(
        Result.isFailure(refused) && refused.failure._tag,
        "Conflict",
        String(Result.isFailure(refused) && refused.failure)
      )

      const noBody = yield* HttpClient.post(`/admin/backups/${manifest.id}/restore`)
      assert.strictEqual(noBody.status, 409)

      const verification = yield* client.backups.verify({ params: { id: manifest.id }, query: { tier: "restore" } })
      assert.isTrue(verification.ok)
      yield* store.append("tenant/acme/document/2", [{ type: "DocumentIngested", data: { text: "b" } }])
      const restored = yield* client.backups.restore({ params: { id: manifest.id }, payload: { at: 2 } })
      assert.strictEqual(restored.lastSequence, 2)
      assert.strictEqual(restored.replayedEvents, 1)

      const past = yield* Effect.result(client.backups.restore({ params: { id: manifest.id }, payload: { at: 99 } }))
      assert.strictEqual(Result.isFailure(past) && past.failure._tag, "UnprocessableEntity")
      const raw = yield* HttpClient.post(`/admin/backups/20260101T000000000Z-full-zzzz/verify`)
      assert.strictEqual(raw.status, 404)
      const bad = yield* HttpClient.execute(
        HttpClientRequest.post(`/admin/backups/${manifest.id}/restore`).pipe(
          HttpClientRequest.bodyJsonUnsafe({ at: "yesterday" })
        )
      )
      assert.strictEqual(bad.status, 400)
    }).pipe(Effect.provide(ApiServer)), { timeout: 30_000 })
})
