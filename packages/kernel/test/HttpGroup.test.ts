import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { HttpClient, HttpRouter } from "effect/http"
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware } from "effect/http-api"
import { HttpGroup, Problem, ProblemHttp } from "../src/index.js"

// A package's group and its implementation, written once.
class Group extends HttpApiGroup.make("notes").add(
  HttpApiEndpoint.get("get", "/notes/:id", {
    params: { id: Schema.String },
    success: Schema.Struct({ id: Schema.String }),
    error: Problem.NotFound
  })
) {}
const layer = HttpGroup.implement(Group, (handlers) =>
  handlers.handle("get", ({ params }) =>
    params.id === "missing"
      ? Effect.fail(new Problem.NotFound({ detail: "no such note" }))
      : Effect.succeed({ id: params.id })))

// A server that adds its own middleware to the group: the routes must run it.
class Guard extends HttpApiMiddleware.Service<Guard>()("test/Guard", { error: Problem.Forbidden }) {}
class Api extends HttpApi.make("server").add(Group.middleware(Guard)) {}

const GuardLive = Layer.succeed(Guard, (effect, { endpoint }) =>
  Effect.gen(function*() {
    const route = yield* HttpRouter.RouteContext
    if (route.params.id === "secret") return yield* new Problem.Forbidden({ detail: `not ${endpoint.name}` })
    return yield* effect
  }))

const Served = HttpRouter.serve(
  HttpApiBuilder.layer(Api).pipe(
    Layer.provide(layer(Api)),
    Layer.provide(GuardLive),
    Layer.provide(ProblemHttp.layer)
  ),
  { disableLogger: true, disableListenLog: true }
).pipe(Layer.provideMerge(NodeHttpServer.layerTest))

describe("HttpGroup.implement", () => {
  it.effect("serves a package's group inside another api, with the middleware that api added", () =>
    Effect.gen(function*() {
      const client = yield* HttpClient.HttpClient
      const get = (path: string) =>
        client.get(path).pipe(
          Effect.flatMap((r) => Effect.map(r.json, (body) => ({ status: r.status, body: body as any }))),
          Effect.orDie
        )
      assert.deepStrictEqual(yield* get("/notes/a"), { status: 200, body: { id: "a" } })
      const missing = yield* get("/notes/missing")
      assert.strictEqual(missing.status, 404)
      assert.strictEqual(missing.body.detail, "no such note")
      const guarded = yield* get("/notes/secret")
      assert.strictEqual(guarded.status, 403)
      assert.strictEqual(guarded.body.title, "Forbidden")
    }).pipe(Effect.provide(Served)))
})
