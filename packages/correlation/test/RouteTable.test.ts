import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Schema } from "effect"
import { HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup } from "effect/http-api"
import * as fc from "fast-check"
import { RouteTable } from "../src/index.js"

// Every handler answers with the template of the route the router chose (`RouteContext`).
const chosen = Effect.map(
  Effect.service(HttpRouter.RouteContext),
  (context) => HttpServerResponse.text(context.route.path)
)

const Api = HttpApi.make("test").add(
  HttpApiGroup.make("documents")
    .add(HttpApiEndpoint.get("get", "/documents/:id", { success: Schema.String }))
    .add(HttpApiEndpoint.post("create", "/documents", { success: Schema.String }))
    .prefix("/api/v1")
)

const ApiLive = HttpApiBuilder.layer(Api).pipe(
  Layer.provide(HttpApiBuilder.group(Api, "documents", (handlers) =>
    handlers
      .handle("get", () => Effect.map(Effect.service(HttpRouter.RouteContext), (c) => c.route.path))
      .handle("create", () => Effect.map(Effect.service(HttpRouter.RouteContext), (c) => c.route.path))))
)

const Routes = Layer.mergeAll(
  ApiLive,
  HttpRouter.add("GET", "/api/v1/whoami", chosen),
  HttpRouter.add("*", "/any/:thing", chosen),
  HttpRouter.add("GET", "/files/*", chosen),
  HttpRouter.add("GET", "/assets/*", chosen),
  HttpRouter.add("GET", "/assets", chosen),
  HttpRouter.add("GET", "/docs", chosen),
  Layer.effectDiscard(Effect.gen(function*() {
    const router = yield* HttpRouter.HttpRouter
    const admin = router.prefixed("/admin")
    yield* admin.add("GET", "/flags", chosen)
    yield* admin.prefixed("/backups").add("POST", "/:id/verify", chosen)
    yield* admin.addAll([HttpRouter.route("DELETE", "/tenants/:id", chosen)])
  }))
)

const build = (table: RouteTable.RouteTable) =>
  Effect.map(
    Layer.build(
      Routes.pipe(
        Layer.provide(RouteTable.layer(table)),
        Layer.provideMerge(HttpRouter.layer),
        Layer.provide(HttpServer.layerServices)
      )
    ),
    (context) => Context.get(context, HttpRouter.HttpRouter).asHttpEffect()
  )

const bases = new Map(
  ["GET", "HEAD", "POST", "DELETE", "PUT"].map((method) =>
    [method, HttpServerRequest.fromWeb(new Request("http://localhost/", { method }))] as const
  )
)

const servedBy = (
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, any>,
  method: string,
  url: string
) =>
  Effect.map(
    Effect.exit(Effect.provideService(
      app,
      HttpServerRequest.HttpServerRequest,
      bases.get(method)!.modify({ url })
    )),
    (exit) => {
      if (Exit.isFailure(exit)) return undefined
      const body = exit.value.body
      return body._tag === "Uint8Array" ? new TextDecoder().decode(body.body).replace(/^"|"$/g, "") : "?"
    }
  )

describe("RouteTable", () => {
  it.effect("records every route, prefixes included", () =>
    Effect.gen(function*() {
      const table = RouteTable.make()
      yield* build(table)
      const routes = table.routes()
      for (
        const route of [
          "GET /api/v1/documents/:id",
          "POST /api/v1/documents",
          "GET /api/v1/whoami",
          "* /any/:thing",
          "GET /files/*",
          "GET /admin/flags",
          "POST /admin/backups/:id/verify",
          "DELETE /admin/tenants/:id"
        ]
      ) assert.include(routes, route)
    }).pipe(Effect.scoped))

  it.effect("finds the route the router chooses, for any spelling of any request", () =>
    Effect.gen(function*() {
      const table = RouteTable.make()
      const app = yield* build(table)
      const paths = [
        "/api/v1/documents/abc",
        "/api/v1/documents",
        "/api/v1/whoami",
        "/any/x",
        "/files/a/b.js",
        "/files",
        "/assets",
        "/assets/x.css",
        "/docs",
        "/admin/flags",
        "/admin/backups/b1/verify",
        "/admin/tenants/t1",
        "/nowhere",
        "/api/v1/documents/abc/more"
      ]
      const methods = ["GET", "HEAD", "POST", "DELETE", "PUT"]
      const spell = (path: string, flips: ReadonlyArray<number>, suffix: string) => {
        let out = ""
        for (let i = 0; i < path.length; i++) {
          const c = path[i]!
          const how = flips[i % flips.length]!
          out += how === 1 ? c.toUpperCase() : how === 2 && c === "/" ? "//" : how === 3 && c !== "/"
            ? `%${c.charCodeAt(0).toString(16)}`
            : c
        }
        return out + suffix
      }
      const cases = fc.sample(
        fc.tuple(
          fc.constantFrom(...paths),
          fc.constantFrom(...methods),
          fc.array(fc.constantFrom(0, 0, 0, 0, 1, 2, 3), { minLength: 8, maxLength: 8 }),
          fc.constantFrom("", "/", "?q=1", ";a=b", "/./x", "%2Fx")
        ),
        { numRuns: 1500, seed: 20 }
      )
      let matched = 0
      for (const [path, method, flips, suffix] of cases) {
        const url = spell(path, flips, suffix)
        const expected = yield* servedBy(app, method, url)
        const found = table.lookup(method, url)?.path
        if (expected !== undefined) matched++
        assert.strictEqual(found, expected, `${method} ${url}`)
      }
      assert.isAbove(matched, cases.length / 4)
    }).pipe(Effect.scoped))

  it("an unknown request has no route", () => {
    const table = RouteTable.make()
    table.add("GET", "/a")
    assert.isUndefined(table.lookup("GET", "/b"))
    assert.strictEqual(table.lookup("HEAD", "/A/")?.path, "/a")
    assert.strictEqual(RouteTable.unmatched.path, "unmatched")
  })
})
