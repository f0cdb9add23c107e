import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { CircuitBreaker } from "@ouroboros/circuit-breaker"
import { Principal, Problem, ProblemHttp } from "@ouroboros/kernel"
import { Embedder } from "@ouroboros/llm"
import { Filter } from "@ouroboros/vector-store"
import { Effect, Layer, Redacted, Ref } from "effect"
import { HttpClient, HttpClientRequest, HttpRouter } from "effect/http"
import { HttpApi, HttpApiBuilder, HttpApiMiddleware, HttpApiSecurity } from "effect/http-api"
import { TestClock } from "effect/testing"
import { InvalidPipeline, PipelineConflict, PipelineNotFound } from "../src/Pipeline.js"
import { PipelineSyntaxError } from "../src/PipelineSyntax.js"
import * as Resilient from "../src/Resilient.js"
import {
  DocumentConflict,
  DocumentNotFound,
  EmptyDocument,
  IncompatibleCollection,
  ModelUnavailable,
  ProjectionBehind,
  VectorStoreUnavailable
} from "../src/RetrievalError.js"
import * as RetrievalHttp from "../src/RetrievalHttp.js"
import { flakyEmbedder, makeSwitch, principal, retrieval, type Switch } from "./layers.js"

const apiKey = HttpApiSecurity.apiKey({ key: "X-API-Key", in: "header" })

// The server's kind of middlewares: an API key resolves to a principal, provided to the handlers.
class Authentication extends HttpApiMiddleware.Service<Authentication, {
  provides: Principal.CurrentPrincipal
}>()("test/Authentication", { error: Problem.Unauthorized, security: { apiKey } }) {}

class AdminAuthentication extends HttpApiMiddleware.Service<AdminAuthentication, {
  provides: Principal.CurrentPrincipal
}>()("test/AdminAuthentication", { error: Problem.Forbidden, security: { apiKey } }) {}

const principals: Record<string, Principal.Principal> = {
  "key-a": principal("tenant-a"),
  "key-b": principal("tenant-b")
}

const AuthenticationLive = Layer.succeed(Authentication, {
  apiKey: (effect, { credential }) => {
    const found = principals[Redacted.value(credential)]
    return found === undefined
      ? Effect.fail(new Problem.Unauthorized({ detail: "the API key is not valid" }))
      : Effect.provideService(effect, Principal.CurrentPrincipal, found)
  }
})
const AdminAuthenticationLive = Layer.succeed(AdminAuthentication, {
  apiKey: (effect, { credential }) =>
    Redacted.value(credential) === "admin-key"
      ? Effect.provideService(effect, Principal.CurrentPrincipal, principal("system"))
      : Effect.fail(new Problem.Forbidden({ detail: "this endpoint needs the admin role" }))
})

// As the server mounts the groups: behind its middlewares, the documents under /api/v1.
class TestApi extends HttpApi.make("test")
  .add(RetrievalHttp.DocumentsGroup.middleware(Authentication).prefix("/api/v1"))
  .add(RetrievalHttp.ProjectionsGroup.middleware(AdminAuthentication))
{}

/** The api served over `Retrieval` with the embedder given (`s` down makes it fail), its model guard a breaker. */
const served = (s: Switch) =>
  HttpRouter.serve(
    HttpApiBuilder.layer(TestApi).pipe(
      Layer.provide([RetrievalHttp.layerDocuments(TestApi), RetrievalHttp.layerProjections(TestApi)]),
      Layer.provide([AuthenticationLive, AdminAuthenticationLive]),
      Layer.provide(retrieval({}, Layer.succeed(Embedder.Embedder, flakyEmbedder(s)))),
      Layer.provide(
        Resilient.layerModelGuard("embedder", {
          breaker: { tripPolicy: CircuitBreaker.consecutive(1), openDuration: "30 seconds" }
        }).pipe(Layer.provide(CircuitBreaker.layer()))
      ),
      Layer.provide(ProblemHttp.layer)
    ),
    { disableLogger: true, disableListenLog: true }
  ).pipe(Layer.provideMerge(NodeHttpServer.layerTest))

const call = (method: "GET" | "POST" | "DELETE", path: string, options: { key?: string; body?: unknown } = {}) =>
  Effect.gen(function*() {
    let request = HttpClientRequest.make(method)(path)
    if (options.key !== undefined) request = HttpClientRequest.setHeader(request, "x-api-key", options.key)
    if (options.body !== undefined) request = HttpClientRequest.bodyJsonUnsafe(request, options.body)
    const response = yield* HttpClient.execute(request)
    const text = yield* response.text
    return {
      status: response.status,
      headers: response.headers,
      body: (text === "" ? undefined : JSON.parse(text)) as any
    }
  })

const zebras = "Zebras are African equines with distinctive black-and-white striped coats."

describe("RetrievalHttp served", () => {
  it.effect("whoami, documents: 201, 200, 204; another tenant's document is a 404 problem; a bad filter a 400", () =>
    Effect.gen(function*() {
      const s = yield* makeSwitch
      yield* Effect.gen(function*() {
        const whoami = yield* call("GET", "/api/v1/whoami", { key: "key-b" })
        assert.deepStrictEqual([whoami.status, whoami.body], [200, {
          tenantId: "tenant-b",
          subject: "key:tenant-b",
          roles: ["writer", "reader"]
        }])
        const created = yield* call("POST", "/api/v1/documents", {
          key: "key-a",
          body: { id: "zebras", text: zebras, metadata: { topic: "animals" } }
        })
        assert.strictEqual(created.status, 201)
        assert.strictEqual(created.body.id, "zebras")
        assert.strictEqual(created.body.chunks, 1)
        const read = yield* call("GET", "/api/v1/documents/zebras", { key: "key-a" })
        assert.strictEqual(read.status, 200)
        assert.strictEqual(read.body.text, zebras)

        const other = yield* call("GET", "/api/v1/documents/zebras", { key: "key-b" })
        assert.strictEqual(other.status, 404)
        assert.strictEqual(other.headers["content-type"], "application/problem+json")
        assert.deepStrictEqual(other.body, {
          _tag: "NotFound",
          type: "about:blank",
          title: "Not Found",
          status: 404,
          detail: "no document zebras"
        })

        const search = yield* call("POST", "/api/v1/search", { key: "key-a", body: { query: "striped animals" } })
        assert.strictEqual(search.status, 200)
        assert.strictEqual(search.body.results[0].documentId, "zebras")
        const badFilter = yield* call("POST", "/api/v1/search", {
          key: "key-a",
          body: { query: "x", filter: { must: [{ key: 3 }] } }
        })
        assert.strictEqual(badFilter.status, 400)
        assert.strictEqual(badFilter.body._tag, "InvalidFilter")
        assert.strictEqual(badFilter.body.title, "Bad Request")
        assert.include(badFilter.body.detail, "filter.must")

        const ask = yield* call("POST", "/api/v1/ask", {
          key: "key-a",
          body: { question: "What do zebras look like?" }
        })
        assert.strictEqual(ask.status, 200)
        assert.strictEqual(ask.body.sources[0].documentId, "zebras")
        assert.isTrue(ask.body.degraded)

        const empty = yield* call("POST", "/api/v1/documents", { key: "key-a", body: { text: "   " } })
        assert.strictEqual(empty.status, 400, "a blank text does not decode")
        assert.strictEqual((yield* call("DELETE", "/api/v1/documents/zebras", { key: "key-a" })).status, 204)
        const again = yield* call("DELETE", "/api/v1/documents/zebras", { key: "key-a" })
        assert.strictEqual(again.status, 404)
        assert.strictEqual(again.body.detail, "no document zebras")
        assert.strictEqual((yield* call("GET", "/api/v1/documents/zebras", { key: "key-a" })).status, 404)
        assert.strictEqual((yield* call("GET", "/api/v1/documents/zebras")).status, 401, "the group's middleware runs")
      }).pipe(Effect.provide(served(s)))
    }))

  it.effect("an open breaker's remaining break reaches the client as Retry-After", () =>
    Effect.gen(function*() {
      const s = yield* makeSwitch
      yield* Effect.gen(function*() {
        yield* Ref.set(s.down, true)
        const opening = yield* call("POST", "/api/v1/search", { key: "key-a", body: { query: "zebras" } })
        assert.strictEqual(opening.status, 503)
        assert.strictEqual(opening.headers["retry-after"], "30")
        assert.deepStrictEqual(opening.body, {
          _tag: "ServiceUnavailable",
          type: "about:blank",
          title: "Service Unavailable",
          status: 503,
          detail: "the embedding model is unavailable",
          retryAfter: 30
        })
        yield* TestClock.adjust("10 seconds")
        // Rejected by the breaker: CircuitOpen's retryAfter, carried by ModelUnavailable to the problem.
        const rejected = yield* call("POST", "/api/v1/documents", { key: "key-a", body: { text: zebras } })
        assert.strictEqual(rejected.status, 503)
        assert.strictEqual(rejected.headers["retry-after"], "20")
        assert.strictEqual(rejected.body.detail, "the embedding model is unavailable")
        assert.strictEqual(yield* Ref.get(s.calls), 1, "the open breaker made no call")
        // Ask does not fail: it answers extractively from no passages.
        const ask = yield* call("POST", "/api/v1/ask", { key: "key-a", body: { question: "zebras?" } })
        assert.strictEqual(ask.status, 200)
        assert.isTrue(ask.body.degraded)
      }).pipe(Effect.provide(served(s)))
    }))

  it.effect("projections: status and rebuild, behind the admin middleware", () =>
    Effect.gen(function*() {
      const s = yield* makeSwitch
      yield* Effect.gen(function*() {
        yield* call("POST", "/api/v1/documents", { key: "key-a", body: { id: "zebras", text: zebras } })
        const status = yield* call("GET", "/admin/projections/vectors", { key: "admin-key" })
        assert.strictEqual(status.status, 200)
        assert.deepStrictEqual(status.body, { appliedSequence: 1, lastSequence: 1 })
        const rebuilt = yield* call("POST", "/admin/projections/vectors/rebuild", { key: "admin-key" })
        assert.strictEqual(rebuilt.status, 200)
        assert.deepStrictEqual(rebuilt.body, { appliedSequence: 1, lastSequence: 1 })
        const search = yield* call("POST", "/api/v1/search", { key: "key-a", body: { query: "striped animals" } })
        assert.strictEqual(search.body.results[0].documentId, "zebras")
        assert.strictEqual((yield* call("GET", "/admin/projections/vectors", { key: "key-a" })).status, 403)
      }).pipe(Effect.provide(served(s)))
    }))
})

describe("RetrievalHttp.toProblem", () => {
  it("maps every domain error to its problem, in one place", () => {
    const cases: ReadonlyArray<readonly [unknown, Problem.HttpError | Filter.InvalidFilter | PipelineSyntaxError]> = [
      [new DocumentNotFound({ id: "x" }), new Problem.NotFound({ detail: "no document x" })],
      [new PipelineNotFound({ id: "p" }), new Problem.NotFound({ detail: "no pipeline p" })],
      [
        new DocumentConflict({ id: "x", reason: "expected 1, found 2" }),
        new Problem.Conflict({ detail: "the document changed concurrently (expected 1, found 2); retry" })
      ],
      [
        new PipelineConflict({ id: "p", reason: "expected 1, found 2" }),
        new Problem.Conflict({ detail: "the pipeline's branch changed concurrently (expected 1, found 2)" })
      ],
      [new EmptyDocument({ id: "x" }), new Problem.UnprocessableEntity({ detail: "the text has no content to index" })],
      [
        new ModelUnavailable({ model: "m", purpose: "embedding", reason: "down", retryAfter: 1_001 }),
        new Problem.ServiceUnavailable({ detail: "the embedding model is unavailable", retryAfter: 2 })
      ],
      [
        new ModelUnavailable({ model: "m", purpose: "generation", reason: "down" }),
        new Problem.ServiceUnavailable({ detail: "the language model is unavailable" })
      ],
      [
        new VectorStoreUnavailable({ reason: "down", retryAfter: 0 }),
        new Problem.ServiceUnavailable({ detail: "the vector store is unavailable", retryAfter: 1 })
      ],
      [
        new ProjectionBehind({ awaited: 5, applied: 3 }),
        new Problem.ServiceUnavailable({ detail: "the vector index is catching up", retryAfter: 1 })
      ],
      [
        new IncompatibleCollection({ collection: "c", reason: "sizes differ" }),
        new Problem.ServiceUnavailable({ detail: "sizes differ" })
      ],
      [new InvalidPipeline({ detail: "steps[0]: no" }), new Problem.BadRequest({ detail: "steps[0]: no" })],
      [new Filter.InvalidFilter({ detail: "filter.must" }), new Filter.InvalidFilter({ detail: "filter.must" })],
      [
        new PipelineSyntaxError({ detail: "bad", line: 1, column: 2, token: "x" }),
        new PipelineSyntaxError({ detail: "bad", line: 1, column: 2, token: "x" })
      ]
    ]
    for (const [error, expected] of cases) {
      const problem = RetrievalHttp.toProblem(error as Parameters<typeof RetrievalHttp.toProblem>[0])
      assert.strictEqual(problem.constructor, expected.constructor)
      assert.deepStrictEqual({ ...problem }, { ...expected })
    }
  })
})
