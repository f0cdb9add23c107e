import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { HttpClient, HttpRouter, HttpServerResponse } from "effect/http"
import { ResponseHeaders } from "../src/index.js"

// One response value answered to every request (as a middleware's prebuilt refusal is): the fields of one request must
// not be written into it.
const shared = HttpServerResponse.text("shared")

const routes = Layer.mergeAll(
  HttpRouter.add("GET", "/ok", HttpServerResponse.text("ok")),
  HttpRouter.add("GET", "/shared", shared),
  HttpRouter.add("GET", "/broken", Effect.die("boom")),
  // A response that carries one of the fields itself.
  HttpRouter.add("GET", "/own", HttpServerResponse.text("own", { headers: { "x-first": "own" } }))
)

/**
 * A middleware that puts fields on the response through `set` (twice, the second value replacing the first) and
 * through `setUnsafe` with the fiber's context, as a hot path would. It runs outside the platform's response
 * handling (the `serve` position), so it cannot map the response itself.
 */
const fields = <E, R>(inner: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
  ResponseHeaders.set("X-First", "0").pipe(
    Effect.andThen(ResponseHeaders.set("x-first", "1")),
    Effect.andThen(Effect.withFiber((fiber) => {
      ResponseHeaders.setUnsafe(fiber.context, "x-second", "2")
      return inner
    }))
  )

interface Seen {
  readonly status: number
  readonly first: string | null | undefined
  readonly second: string | null | undefined
  readonly text: string
}

const expectFields = (get: (path: string) => Effect.Effect<Seen>) =>
  Effect.gen(function*() {
    assert.deepStrictEqual(yield* get("/ok"), { status: 200, first: "1", second: "2", text: "ok" })
    const broken = yield* get("/broken")
    assert.deepStrictEqual([broken.status, broken.first, broken.second], [500, "1", "2"])
    const missing = yield* get("/missing")
    assert.deepStrictEqual([missing.status, missing.first, missing.second], [404, "1", "2"])
    // The response's own field is kept.
    assert.deepStrictEqual(yield* get("/own"), { status: 200, first: "own", second: "2", text: "own" })
    // A response answered to several requests gets the fields on each answer and keeps none of them itself.
    for (let i = 0; i < 2; i++) {
      assert.deepStrictEqual(yield* get("/shared"), { status: 200, first: "1", second: "2", text: "shared" })
    }
    assert.deepStrictEqual([shared.headers["x-first"], shared.headers["x-second"]], [undefined, undefined])
  })

describe("ResponseHeaders", () => {
  it.effect("served by Node: fields reach every response (success, defect, unknown route)", () =>
    Effect.gen(function*() {
      const client = yield* HttpClient.HttpClient
      yield* expectFields((path) =>
        client.get(path).pipe(
          Effect.flatMap((response) =>
            Effect.map(response.text, (text) => ({
              status: response.status,
              first: response.headers["x-first"],
              second: response.headers["x-second"],
              text
            }))
          ),
          Effect.orDie
        )
      )
    }).pipe(
      Effect.provide(
        HttpRouter.serve(routes, { middleware: fields, disableLogger: true, disableListenLog: true }).pipe(
          Layer.provideMerge(NodeHttpServer.layerTest)
        )
      )
    ))

  it.effect("served elsewhere (a web handler): fields reach every response", () =>
    Effect.gen(function*() {
      const { dispose, handler } = HttpRouter.toWebHandler(routes, { middleware: fields, disableLogger: true })
      yield* Effect.addFinalizer(() => Effect.promise(dispose))
      const get = (path: string) =>
        Effect.promise(async () => {
          const response = await handler(new Request(`http://localhost${path}`))
          return {
            status: response.status,
            first: response.headers.get("x-first"),
            second: response.headers.get("x-second"),
            text: await response.text()
          }
        })
      yield* expectFields(get)
    }))

  it.effect("outside a request, setting a field does nothing", () =>
    Effect.gen(function*() {
      yield* ResponseHeaders.set("x-any", "1")
    }))
})
