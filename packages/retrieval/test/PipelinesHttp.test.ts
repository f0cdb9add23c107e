import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { EventStore } from "@ouroboros/event-store"
import { Principal, Problem, ProblemHttp, TenantId } from "@ouroboros/kernel"
import { Llm } from "@ouroboros/llm"
import { Effect, Layer, Redacted, References } from "effect"
import { HttpClient, HttpClientRequest, HttpRouter } from "effect/http"
import { HttpApi, HttpApiBuilder, HttpApiMiddleware, HttpApiSecurity } from "effect/http-api"
import * as Pipeline from "../src/Pipeline.js"
import * as PipelinesHttp from "../src/PipelinesHttp.js"
import { Retrieval } from "../src/Retrieval.js"

// The server's kind of authentication: an API key that resolves to a principal, provided to the handlers.
class Authentication extends HttpApiMiddleware.Service<Authentication, {
  provides: Principal.CurrentPrincipal
}>()("test/Authentication", {
  error: [Problem.Unauthorized, Problem.Forbidden],
  security: { apiKey: HttpApiSecurity.apiKey({ key: "X-API-Key", in: "header" }) }
}) {}

// As the server mounts it: behind its authentication, under /api/v1.
class TestApi extends HttpApi.make("test").add(
  PipelinesHttp.PipelinesGroup.middleware(Authentication).prefix("/api/v1")
) {}

const principals: Record<string, Principal.Principal> = {
  "key-a": new Principal.Principal({
    tenantId: TenantId.make("tenant-a"),
    subject: "key:a",
    roles: ["writer"],
    method: "api-key"
  }),
  "key-b": new Principal.Principal({
    tenantId: TenantId.make("tenant-b"),
    subject: "key:b",
    roles: ["writer"],
    method: "api-key"
  })
}

const StubAuthentication = Layer.succeed(
  Authentication,
  Authentication.of({
    apiKey: (httpEffect, { credential }) => {
      const principal = principals[Redacted.value(credential)]
      return principal === undefined
        ? Effect.fail(new Problem.Unauthorized({ detail: "the API key is not valid" }))
        : Effect.provideService(httpEffect, Principal.CurrentPrincipal, principal)
    }
  })
)

const unused = () => Effect.die(new Error("not used by pipelines"))

const StubRetrieval = Layer.succeed(
  Retrieval,
  Retrieval.of({
    ingest: unused,
    get: unused,
    remove: unused,
    ask: unused,
    answer: unused,
    list: unused,
    purgeTenant: unused,
    reindexTenant: unused,
    rebuild: unused(),
    resume: unused,
    applied: Effect.succeed(0),
    status: Effect.succeed({ appliedSequence: 0, lastSequence: 0 }),
    lag: Effect.succeed(0),
    projecting: Effect.succeed(true),
    search: () =>
      Effect.succeed([{
        documentId: "zebras",
        chunk: 0,
        text: "Zebras are African equines with black-and-white striped coats.",
        score: 0.9,
        metadata: {}
      }])
  })
)

// As the server does: errors become RFC 9457 problems.
const ApiServer = HttpRouter.serve(
  HttpApiBuilder.layer(TestApi).pipe(
    Layer.provide(PipelinesHttp.layer(TestApi)),
    Layer.provide(StubAuthentication),
    Layer.provide(Pipeline.layer),
    Layer.provide(Layer.mergeAll(EventStore.layerMemory(), Llm.layerLocal, StubRetrieval)),
    Layer.provide(ProblemHttp.layer)
  ),
  { disableLogger: true, disableListenLog: true }
).pipe(
  Layer.provideMerge(NodeHttpServer.layerTest),
  Layer.provide(Layer.succeed(References.MinimumLogLevel, "None"))
)

const call = (method: "GET" | "POST", path: string, options: { key?: string; body?: unknown } = {}) =>
  Effect.gen(function*() {
    let request = HttpClientRequest.make(method)(path)
    if (options.key !== undefined) request = HttpClientRequest.setHeader(request, "x-api-key", options.key)
    if (options.body !== undefined) request = HttpClientRequest.bodyJsonUnsafe(request, options.body)
    const response = yield* HttpClient.execute(request)
    const body = (yield* response.json) as Record<string, unknown>
    return { status: response.status, contentType: response.headers["content-type"], body }
  })

describe("PipelinesApi served", () => {
  it.effect("POST runs a script (201) and GET reads it back (200); another tenant gets 404", () =>
    Effect.gen(function*() {
      const created = yield* call("POST", "/api/v1/pipelines", {
        key: "key-a",
        body: { script: "SetTopic('zebras') | UseRetrieval(1) | UseDraft | UseCritique | UseImprove" }
      })
      assert.strictEqual(created.status, 201)
      assert.strictEqual(created.body.status, "completed")
      assert.strictEqual(created.body.topic, "zebras")
      const steps = created.body.steps as ReadonlyArray<{ kind: string; output: string }>
      assert.deepStrictEqual(steps.map((s) => s.kind), ["retrieve", "draft", "critique", "improve"])
      assert.strictEqual(created.body.answer, steps[3]!.output)
      const id = created.body.id as string

      const read = yield* call("GET", `/api/v1/pipelines/${id}`, { key: "key-a" })
      assert.strictEqual(read.status, 200)
      assert.deepStrictEqual(read.body, created.body)

      const other = yield* call("GET", `/api/v1/pipelines/${id}`, { key: "key-b" })
      assert.strictEqual(other.status, 404)
      assert.strictEqual(other.contentType, "application/problem+json")
      assert.deepStrictEqual(other.body, {
        _tag: "NotFound",
        type: "about:blank",
        title: "Not Found",
        status: 404,
        detail: `no pipeline ${id}`
      })
      assert.strictEqual((yield* call("GET", "/api/v1/pipelines/nope", { key: "key-a" })).status, 404)
    }).pipe(Effect.provide(ApiServer)))

  it.effect("POST takes a list of steps with a topic", () =>
    Effect.gen(function*() {
      const created = yield* call("POST", "/api/v1/pipelines", {
        key: "key-b",
        body: { topic: "zebras", steps: ["draft", "critique", "improve"] }
      })
      assert.strictEqual(created.status, 201)
      assert.strictEqual(created.body.script, "SetTopic('zebras') | UseDraft | UseCritique | UseImprove")
    }).pipe(Effect.provide(ApiServer)))

  it.effect("a bad script is a 400 problem naming the line, column and token", () =>
    Effect.gen(function*() {
      const response = yield* call("POST", "/api/v1/pipelines", {
        key: "key-a",
        body: { script: "SetTopic('zebras')\n  | UseDraft | UseCritque" }
      })
      assert.strictEqual(response.status, 400)
      assert.strictEqual(response.contentType, "application/problem+json")
      assert.strictEqual(response.body.line, 2)
      assert.strictEqual(response.body.column, 16)
      assert.strictEqual(response.body.token, "UseCritque")
      assert.include(response.body.detail as string, "did you mean UseCritique?")
    }).pipe(Effect.provide(ApiServer)))

  it.effect("malformed bodies are 400s and a missing key is a 401", () =>
    Effect.gen(function*() {
      const both = yield* call("POST", "/api/v1/pipelines", {
        key: "key-a",
        body: { topic: "z", steps: ["draft"], script: "UseDraft" }
      })
      assert.strictEqual(both.status, 400)
      assert.include(both.body.detail as string, "give exactly one of steps and script")
      const neither = yield* call("POST", "/api/v1/pipelines", { key: "key-a", body: { topic: "z" } })
      assert.strictEqual(neither.status, 400)
      const unknownStep = yield* call("POST", "/api/v1/pipelines", {
        key: "key-a",
        body: { topic: "z", steps: ["draft", "summarize"] }
      })
      assert.strictEqual(unknownStep.status, 400)
      const order = yield* call("POST", "/api/v1/pipelines", {
        key: "key-a",
        body: { topic: "z", steps: ["improve"] }
      })
      assert.strictEqual(order.status, 400)
      assert.strictEqual(order.body._tag, "BadRequest")
      assert.include(order.body.detail as string, "steps[0]")
      const anonymous = yield* call("POST", "/api/v1/pipelines", { body: { topic: "z", steps: ["draft"] } })
      assert.strictEqual(anonymous.status, 401)
    }).pipe(Effect.provide(ApiServer)))
})
