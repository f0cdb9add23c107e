import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import { HttpClient, HttpRouter } from "effect/http"
import { App } from "./example.js"

const env = ConfigProvider.fromUnknown({ OUROBOROS_API_KEYS: "acme:acme-key-0123456789abcdef" })

describe("README example", () => {
  it.effect("serves a tenant endpoint behind the package's authentication", () =>
    Effect.gen(function*() {
      const client = yield* HttpClient.HttpClient
      const ok = yield* client.get("/notes", { headers: { "x-api-key": "acme-key-0123456789abcdef" } })
      assert.strictEqual(ok.status, 200)
      assert.strictEqual(yield* ok.json, "notes of acme")
      const refused = yield* client.get("/notes", { headers: { "x-api-key": "wrong-key-0123456789abcdef" } })
      assert.strictEqual(refused.status, 401)
    }).pipe(
      Effect.provide(
        HttpRouter.serve(App, { disableLogger: true, disableListenLog: true }).pipe(
          Layer.provideMerge(NodeHttpServer.layerTest),
          Layer.provide(Layer.succeed(ConfigProvider.ConfigProvider, env))
        )
      )
    ))
})
