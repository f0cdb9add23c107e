import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { HealthCheck, HealthHttp } from "@ouroboros/health"
import { ProblemHttp } from "@ouroboros/kernel"
import { Context, Effect, Layer, Ref, References, Result, Schema } from "effect"
import { HttpClient, HttpClientResponse, HttpRouter } from "effect/http"
import { HttpApi, HttpApiBuilder, HttpApiClient, HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"

/** What the test's dependency reports; flipped by the tests. */
class Dependency extends Context.Service<Dependency, Ref.Ref<HealthCheck.Status>>()("test/Dependency") {
  static readonly layer = Layer.effect(Dependency, Ref.make<HealthCheck.Status>("pass"))
}

const quiet = Layer.succeed(References.MinimumLogLevel, "None")

/** Serves `app` on a test server (the router's own request and listen logs off, as the server turns them off). */
const serve = <A, E, R>(app: Layer.Layer<A, E, R>) =>
  HttpRouter.serve(app, { disableLogger: true, disableListenLog: true })

const Checks = Layer.effectDiscard(Effect.gen(function*() {
  const state = yield* Dependency
  yield* HealthCheck.register({
    name: "postgres:responseTime",
    componentType: "datastore",
    critical: true,
    cacheTtl: 0,
    run: Effect.map(Ref.get(state), (status) =>
      status === "pass"
        ? HealthCheck.pass({ observedValue: 1, observedUnit: "ms" })
        : status === "warn"
        ? HealthCheck.warn("slow")
        : HealthCheck.fail("down"))
  })
}))

const Health = Checks.pipe(
  Layer.provideMerge(HealthCheck.layer({ serviceId: "ouroboros", version: "1" })),
  Layer.provideMerge(Dependency.layer)
)

const ApiServer = serve(
  HttpApiBuilder.layer(HealthHttp.Api).pipe(
    Layer.provide(HealthHttp.layerApi),
    Layer.provide(ProblemHttp.layer)
  )
).pipe(
  Layer.provideMerge(Health),
  Layer.provideMerge(NodeHttpServer.layerTest),
  Layer.provide(quiet)
)

const get = (path: string) =>
  Effect.gen(function*() {
    const response = yield* HttpClient.get(path)
    const body = yield* response.json
    return {
      status: response.status,
      contentType: response.headers["content-type"],
      cacheControl: response.headers["cache-control"],
      body,
      report: Schema.decodeUnknownSync(HealthCheck.HealthReport)(body)
    }
  })

class PingGroup extends HttpApiGroup.make("ping").add(
  HttpApiEndpoint.get("ping", "/api/ping", { success: Schema.String })
) {}
class BiggerApi extends HttpApi.make("bigger").add(PingGroup).add(HealthHttp.HealthGroup) {}
class PingApi extends HttpApi.make("ping-only").add(PingGroup) {}

const PingLive = HttpApiBuilder.group(
  BiggerApi,
  "ping",
  (handlers) => handlers.handle("ping", () => Effect.succeed("pong"))
)
const PingOnlyLive = HttpApiBuilder.group(
  PingApi,
  "ping",
  (handlers) => handlers.handle("ping", () => Effect.succeed("pong"))
)

const setStatus = (status: HealthCheck.Status) => Effect.flatMap(Dependency, (ref) => Ref.set(ref, status))

describe("HealthHttp", () => {
  describe("the HttpApi group", () => {
    it.effect("answers health+json, 503 while starting and 200 once serving", () =>
      Effect.gen(function*() {
        const starting = yield* get("/health/ready")
        assert.strictEqual(starting.status, 503)
        assert.strictEqual(starting.contentType, "application/health+json")
        assert.strictEqual(starting.cacheControl, "no-store")
        assert.strictEqual(starting.report.status, "fail")
        assert.deepStrictEqual(starting.report.notes, ["starting"])
        assert.strictEqual((yield* get("/health/startup")).status, 503)
        const live = yield* get("/health/live")
        assert.strictEqual(live.status, 200)
        assert.strictEqual(live.contentType, "application/health+json")

        yield* HealthCheck.setPhase("serving")
        const ready = yield* get("/health/ready")
        assert.strictEqual(ready.status, 200)
        assert.deepStrictEqual(ready.body, {
          status: "pass",
          version: "1",
          serviceId: "ouroboros",
          checks: {
            "postgres:responseTime": [{
              componentType: "datastore",
              observedValue: 1,
              observedUnit: "ms",
              status: "pass",
              time: new Date(0).toISOString()
            }]
          }
        })
        assert.strictEqual((yield* get("/health/startup")).status, 200)
      }).pipe(Effect.provide(ApiServer)))

    it.effect("warn is 200, a failing critical dependency is 503 with the same body shape, draining is 503", () =>
      Effect.gen(function*() {
        yield* HealthCheck.setPhase("serving")
        yield* setStatus("warn")
        const warn = yield* get("/health/ready")
        assert.strictEqual(warn.status, 200)
        assert.strictEqual(warn.report.status, "warn")

        yield* setStatus("fail")
        const fail = yield* get("/health/ready")
        assert.strictEqual(fail.status, 503)
        // The problem+json middleware leaves the health+json error body alone.
        assert.strictEqual(fail.contentType, "application/health+json")
        assert.strictEqual(fail.report.status, "fail")
        assert.strictEqual(fail.report.checks["postgres:responseTime"]![0]!.output, "down")
        assert.strictEqual((yield* get("/health/live")).status, 200)

        yield* setStatus("pass")
        assert.strictEqual((yield* get("/health/ready")).status, 200)
        yield* HealthCheck.setPhase("draining")
        const draining = yield* get("/health/ready")
        assert.strictEqual(draining.status, 503)
        assert.deepStrictEqual(draining.report.notes, ["draining"])
        assert.strictEqual((yield* get("/health/live")).status, 200)
      }).pipe(Effect.provide(ApiServer)))

    it.effect("is callable through HttpApiClient: 200 decodes as success, 503 as the typed error", () =>
      Effect.gen(function*() {
        const client = yield* HttpApiClient.make(HealthHttp.Api)
        const live = yield* client.live()
        assert.strictEqual(live.status, "pass")
        const ready = yield* Effect.result(client.ready())
        assert.isTrue(Result.isFailure(ready))
        if (Result.isFailure(ready)) {
          const error = ready.failure
          assert.isTrue(Schema.is(HealthCheck.HealthReport)(error))
          assert.deepStrictEqual(Schema.is(HealthCheck.HealthReport)(error) && error.notes, ["starting"])
        }
        yield* HealthCheck.setPhase("serving")
        assert.strictEqual((yield* client.ready()).status, "pass")
      }).pipe(Effect.provide(ApiServer)))

    it("documents both answers as application/health+json in OpenAPI", () => {
      const spec = OpenApi.fromApi(HealthHttp.Api)
      for (const path of ["/health/live", "/health/ready", "/health/startup"]) {
        const responses = spec.paths[path]?.get?.responses
        assert.isDefined(responses)
        const ok: Record<string, unknown> = { ...responses?.[200]?.content }
        const unavailable: Record<string, unknown> = { ...responses?.[503]?.content }
        assert.deepStrictEqual(Object.keys(ok), ["application/health+json"])
        assert.deepStrictEqual(Object.keys(unavailable), ["application/health+json"])
        // One report schema for both answers; the 503 says what it means.
        assert.deepStrictEqual(ok["application/health+json"], unavailable["application/health+json"])
        assert.strictEqual(responses?.[503]?.description, "The probe fails")
      }
      assert.deepStrictEqual(Object.keys(spec.components.schemas).sort(), ["HealthCheckResult", "HealthReport"])
    })

    it.effect("layer implements the group inside a larger api", () =>
      Effect.gen(function*() {
        const response = yield* HttpClient.get("/health/live")
        assert.strictEqual(response.status, 200)
        const other = yield* HttpClient.get("/api/ping").pipe(Effect.flatMap((r) => r.text))
        assert.strictEqual(other, "\"pong\"")
      }).pipe(
        Effect.provide(
          serve(
            HttpApiBuilder.layer(BiggerApi).pipe(
              Layer.provide(HealthHttp.layer(BiggerApi)),
              Layer.provide(PingLive)
            )
          ).pipe(
            Layer.provideMerge(HealthCheck.layer()),
            Layer.provideMerge(NodeHttpServer.layerTest)
          )
        )
      ))
  })

  describe("the plain router", () => {
    it.effect("serves the same answers", () =>
      Effect.gen(function*() {
        const ready = yield* get("/health/ready")
        assert.strictEqual(ready.status, 503)
        assert.strictEqual(ready.contentType, "application/health+json")
        assert.strictEqual(ready.cacheControl, "no-store")
        yield* HealthCheck.setPhase("serving")
        assert.strictEqual((yield* get("/health/ready")).status, 200)
        assert.strictEqual((yield* get("/health/live")).status, 200)
        assert.strictEqual((yield* get("/health/startup")).status, 200)
      }).pipe(
        Effect.provide(
          serve(HttpRouter.addAll(HealthHttp.routes)).pipe(
            Layer.provideMerge(Health),
            Layer.provideMerge(NodeHttpServer.layerTest),
            Layer.provide(quiet)
          )
        )
      ))

    it.effect("layerRouter adds the probes beside an api that lacks the group", () =>
      Effect.gen(function*() {
        const response = yield* HttpClient.get("/health/live")
        assert.strictEqual(response.status, 200)
        assert.strictEqual(response.headers["content-type"], "application/health+json")
        const body = yield* HttpClientResponse.schemaBodyJson(HealthCheck.HealthReport)(response)
        assert.strictEqual(body.status, "pass")
      }).pipe(
        Effect.provide(
          serve(
            Layer.mergeAll(
              HttpApiBuilder.layer(PingApi).pipe(Layer.provide(PingOnlyLive)),
              HealthHttp.layerRouter
            )
          ).pipe(
            Layer.provideMerge(HealthCheck.layer()),
            Layer.provideMerge(NodeHttpServer.layerTest)
          )
        )
      ))
  })

  it("layer only accepts an api that contains the group (a type-level check)", () => {
    const wrong = () =>
      // @ts-expect-error the api has no health group
      HealthHttp.layer(PingApi)
    const right = () => HealthHttp.layer(BiggerApi)
    assert.isFunction(wrong)
    assert.isFunction(right)
  })

  it("statusCode maps fail to 503 and the rest to 200", () => {
    assert.strictEqual(HealthHttp.statusCode({ status: "fail", checks: {} }), 503)
    assert.strictEqual(HealthHttp.statusCode({ status: "warn", checks: {} }), 200)
    assert.strictEqual(HealthHttp.statusCode({ status: "pass", checks: {} }), 200)
  })
})
