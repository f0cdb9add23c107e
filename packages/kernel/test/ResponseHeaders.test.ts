import {
  HttpApp,
  HttpClient,
  type HttpMiddleware,
  HttpRouter,
  HttpServer,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FiberRef, Option } from "effect"
import { ResponseHeaders } from "../src/index.js"

const app = HttpRouter.empty.pipe(
  HttpRouter.get("/ok", HttpServerResponse.text("ok")),
  HttpRouter.get("/broken", Effect.die("boom")),
  // A response that carries one of the fields itself.
  HttpRouter.get("/own", HttpServerResponse.text("own", { headers: { "x-first": "own" } })),
  // What the handlers of the request see: the pre-response handlers of its fiber.
  HttpRouter.get(
    "/handlers",
    Effect.map(FiberRef.get(HttpApp.currentPreResponseHandlers), (handlers) =>
      HttpServerResponse.text(
        Option.match(handlers, {
          onNone: () => "none",
          onSome: (handler) => (handler === ResponseHeaders.handler ? "one" : "composed")
        })
      ))
  )
)

/**
 * Two middlewares that put fields on the response: one through `set` (twice, the second value replacing the first),
 * one through `unsafeSet`, whose results `needed` records.
 */
const fields = (needed: Array<boolean>): HttpMiddleware.HttpMiddleware => <E, R>(inner: HttpApp.Default<E, R>) => {
  const second = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    const first = ResponseHeaders.unsafeSet(request, "x-second", "2")
    needed.push(first)
    return first ? Effect.zipRight(ResponseHeaders.ensureHandler, inner) : inner
  })
  return ResponseHeaders.set("X-First", "0").pipe(
    Effect.zipRight(ResponseHeaders.set("x-first", "1")),
    Effect.zipRight(second)
  )
}

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
  })

describe("ResponseHeaders", () => {
  it.scoped("served by Node: fields reach every response, with no pre-response handler", () =>
    Effect.gen(function*() {
      const needed: Array<boolean> = []
      yield* HttpServer.serveEffect(app, fields(needed))
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
      // No request needed a handler, and none was appended.
      assert.isTrue(needed.every((first) => !first))
      const handlers = yield* Effect.orDie(Effect.flatMap(client.get("/handlers"), (response) => response.text))
      assert.strictEqual(handlers, "none")
    }).pipe(Effect.provide(NodeHttpServer.layerTest)))

  it.effect("served elsewhere (a web handler): fields reach every response through one handler per request", () =>
    Effect.gen(function*() {
      const needed: Array<boolean> = []
      const handle = HttpApp.toWebHandler(app, fields(needed))
      const get = (path: string) =>
        Effect.promise(async () => {
          const response = await handle(new Request(`http://localhost${path}`))
          return {
            status: response.status,
            first: response.headers.get("x-first"),
            second: response.headers.get("x-second"),
            text: await response.text()
          }
        })
      yield* expectFields(get)
      // `set` appended the handler; `unsafeSet` found it there.
      assert.isTrue(needed.every((first) => !first))
      // Once per request, not once per field or middleware.
      assert.strictEqual((yield* get("/handlers")).text, "one")
    }))
})
