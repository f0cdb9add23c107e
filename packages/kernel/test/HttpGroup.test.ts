import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { HttpClient, HttpRouter } from "effect/http"
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware } from "effect/http-api"
import { HttpGroup, Principal, Problem, ProblemHttp, TenantId } from "../src/index.js"

// A package's group and its implementation, written once. Its handler reads the principal, which the package does
// not provide: the server's middleware does, per request.
class Group extends HttpApiGroup.make("notes").add(
  HttpApiEndpoint.get("get", "/notes/:id", {
    params: { id: Schema.String },
    success: Schema.Struct({ id: Schema.String, tenant: Schema.String }),
    error: Problem.NotFound
  })
) {}
const layer = HttpGroup.implement(Group, (handlers) =>
  handlers.handle("get", ({ params }) =>
    Effect.gen(function*() {
      const principal = yield* Principal.CurrentPrincipal
      if (params.id === "missing") return yield* new Problem.NotFound({ detail: "no such note" })
      return { id: params.id, tenant: principal.tenantId }
    })))

// A server that adds its own middleware to the group: the routes must run it, and it provides the principal.
class Guard extends HttpApiMiddleware.Service<Guard, { provides: Principal.CurrentPrincipal }>()("test/Guard", {
  error: Problem.Forbidden
}) {}
class Api extends HttpApi.make("server").add(Group.middleware(Guard)) {}

const principal = new Principal.Principal({
  tenantId: TenantId.make("acme"),
  subject: "test",
  roles: ["reader"],
  method: "api-key"
})
const GuardLive = Layer.succeed(Guard, (effect, { endpoint }) =>
  Effect.gen(function*() {
    const route = yield* HttpRouter.RouteContext
    if (route.params.id === "secret") return yield* new Problem.Forbidden({ detail: `not ${endpoint.name}` })
    return yield* Effect.provideService(effect, Principal.CurrentPrincipal, principal)
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
      assert.deepStrictEqual(yield* get("/notes/a"), { status: 200, body: { id: "a", tenant: "acme" } })
      const missing = yield* get("/notes/missing")
      assert.strictEqual(missing.status, 404)
      assert.strictEqual(missing.body.detail, "no such note")
      const guarded = yield* get("/notes/secret")
      assert.strictEqual(guarded.status, 403)
      assert.strictEqual(guarded.body.title, "Forbidden")
    }).pipe(Effect.provide(Served)))
})
