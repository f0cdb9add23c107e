import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Principal, RequestContext } from "@ouroboros/kernel"
import { RawHttp } from "@ouroboros/testkit"
import { Context, Effect, Layer, Metric, Option } from "effect"
import { HttpClient, HttpClientRequest, HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import { HttpApiClient } from "effect/http-api"
import { TestClock } from "effect/testing"
import * as Http from "node:http"
import { ApiVersion } from "../src/index.js"
import { ApiV1 } from "./fixtures/Documents.js"
import { app, type AppOptions, request, served } from "./fixtures/Server.js"

const noDocs: AppOptions = { docs: false }

const ingest = (version: string, body: unknown) => request("POST", `/api/${version}/documents`, { body })

describe("negotiation", () => {
  it.effect("the URL segment names the version", () =>
    Effect.gen(function*() {
      const created = yield* ingest("v1", { id: "a", text: "hello", metadata: { lang: "en" } })
      assert.strictEqual(created.status, 201)
      assert.deepStrictEqual(created.body, { id: "a", text: "hello", metadata: { lang: "en" } })
      assert.strictEqual(created.headers["api-version"], "v1")
      assert.strictEqual(created.headers["api-supported-versions"], "v3, v2, v1")
      assert.isUndefined(created.headers["vary"])

      const v2 = yield* request("GET", "/api/v2/documents/a")
      assert.deepStrictEqual(v2.body, {
        data: { id: "a", content: "hello", metadata: { lang: "en" } },
        meta: { apiVersion: "v2" }
      })
      assert.strictEqual(v2.headers["api-version"], "v2")
      const v3 = yield* request("GET", "/api/v3/documents/a")
      assert.deepStrictEqual(v3.body, {
        data: { id: "a", content: "hello", labels: { lang: "en" }, revision: 1 },
        meta: { apiVersion: "v3" }
      })
      assert.strictEqual(v3.headers["api-version"], "v3")
    }).pipe(Effect.provide(served(noDocs))))

  it.effect("on /api/... without a segment, the api-version header names it, and the answer varies on it", () =>
    Effect.gen(function*() {
      yield* ingest("v3", { id: "a", content: "hello", labels: { n: 1 } })
      const v1 = yield* request("GET", "/api/documents/a", { headers: { "api-version": "v1" } })
      assert.strictEqual(v1.status, 200)
      assert.deepStrictEqual(v1.body, { id: "a", text: "hello", metadata: { n: 1 } })
      assert.strictEqual(v1.headers["api-version"], "v1")
      assert.strictEqual(v1.headers["vary"], "api-version")
      // Lenient spellings in the header.
      for (const spelling of ["V2", "2", " v02 "]) {
        const v2 = yield* request("GET", "/api/documents/a", { headers: { "api-version": spelling } })
        assert.strictEqual(v2.headers["api-version"], "v2", spelling)
        assert.deepStrictEqual(v2.body.data, { id: "a", content: "hello", metadata: { n: 1 } })
      }
      // POST too: the body is read by the negotiated version's schema.
      const posted = yield* request("POST", "/api/documents", {
        headers: { "api-version": "v1" },
        body: { id: "b", text: "bonjour" }
      })
      assert.strictEqual(posted.status, 201)
      assert.deepStrictEqual(posted.body, { id: "b", text: "bonjour", metadata: {} })
    }).pipe(Effect.provide(served(noDocs))))

  it.effect("with neither segment nor header, the newest stable version", () =>
    Effect.gen(function*() {
      yield* ingest("v3", { id: "a", content: "hello" })
      const answer = yield* request("GET", "/api/documents/a")
      assert.strictEqual(answer.headers["api-version"], "v3")
      assert.strictEqual(answer.body.data.revision, 1)
    }).pipe(Effect.provide(served(noDocs))))

  it.effect("a preview version is never the default, but is served when named", () =>
    Effect.gen(function*() {
      yield* ingest("v3", { id: "a", content: "hello" })
      const byDefault = yield* request("GET", "/api/documents/a")
      assert.strictEqual(byDefault.headers["api-version"], "v2")
      assert.deepStrictEqual(byDefault.body.data, { id: "a", content: "hello", metadata: {} })
      const named = yield* request("GET", "/api/documents/a", { headers: { "api-version": "v3" } })
      assert.strictEqual(named.headers["api-version"], "v3")
      assert.strictEqual(named.headers["api-supported-versions"], "v3, v2, v1")
    }).pipe(Effect.provide(served({ ...noDocs, settings: { versions: { v3: { preview: true } } } }))))

  it.effect("a configured default", () =>
    Effect.gen(function*() {
      yield* ingest("v3", { id: "a", content: "hello" })
      const answer = yield* request("GET", "/api/documents/a")
      assert.strictEqual(answer.headers["api-version"], "v1")
      assert.deepStrictEqual(answer.body, { id: "a", text: "hello", metadata: {} })
    }).pipe(Effect.provide(served({ ...noDocs, settings: { default: "v1" } }))))

  it.effect("a header that contradicts the URL segment is ignored: the URL wins", () =>
    Effect.gen(function*() {
      yield* ingest("v3", { id: "a", content: "hello" })
      const answer = yield* request("GET", "/api/v1/documents/a", { headers: { "api-version": "v3" } })
      assert.strictEqual(answer.status, 200)
      assert.strictEqual(answer.headers["api-version"], "v1")
      assert.deepStrictEqual(answer.body, { id: "a", text: "hello", metadata: {} })
      assert.isUndefined(answer.headers["vary"])
      // Even a malformed header is ignored when the URL names the version.
      const malformed = yield* request("GET", "/api/v2/documents/a", { headers: { "api-version": "banana" } })
      assert.strictEqual(malformed.status, 200)
      assert.strictEqual(malformed.headers["api-version"], "v2")
    }).pipe(Effect.provide(served(noDocs))))

  it.effect("an unknown or malformed version is a 400 problem listing the supported versions", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [string, Record<string, string>, string]> = [
        ["/api/v9/documents/a", {}, "v9"],
        ["/api/v1.5/documents/a", {}, "v1.5"],
        ["/api/V1/documents/a", {}, "V1"],
        ["/api/v01/documents/a", {}, "v01"],
        ["/api/documents/a", { "api-version": "v9" }, "v9"],
        ["/api/documents/a", { "api-version": "banana" }, "banana"],
        ["/api/documents/a", { "api-version": "v1, v2" }, "v1, v2"]
      ]
      for (const [path, headers, requested] of cases) {
        const answer = yield* request("GET", path, { headers })
        assert.strictEqual(answer.status, 400, path)
        assert.strictEqual(answer.headers["content-type"], "application/problem+json")
        assert.strictEqual(answer.body._tag, "UnsupportedApiVersion")
        assert.strictEqual(answer.body.status, 400)
        assert.strictEqual(answer.body.requested, requested)
        assert.deepStrictEqual(answer.body.supportedVersions, ["v3", "v2", "v1"])
        assert.match(answer.body.detail, /supported versions: v3, v2, v1$/)
        // Problems carry the version fields too: the list, and the default version that answered.
        assert.strictEqual(answer.headers["api-supported-versions"], "v3, v2, v1")
        assert.strictEqual(answer.headers["api-version"], "v3")
      }
    }).pipe(Effect.provide(served(noDocs))))

  it.effect("a disabled version is an unknown one", () =>
    Effect.gen(function*() {
      const answer = yield* request("GET", "/api/v2/documents/a")
      assert.strictEqual(answer.status, 400)
      assert.deepStrictEqual(answer.body.supportedVersions, ["v3", "v1"])
      assert.strictEqual(answer.headers["api-supported-versions"], "v3, v1")
    }).pipe(Effect.provide(served({ ...noDocs, settings: { versions: { v2: { disabled: true } } } }))))

  it.effect("every API answer carries the version fields: handler errors, decode errors, the router's 404", () =>
    Effect.gen(function*() {
      const answers = [
        yield* request("GET", "/api/v1/documents/missing"), // a handler's error, migrated to v1's shape
        yield* request("POST", "/api/v1/documents", { body: { txt: "typo" } }), // a decode error
        yield* request("GET", "/api/v1/no-such-route"), // the router's 404
        yield* request("GET", "/api/v1/documents/a", { headers: { "x-api-key": "nope" } }) // the middleware's 401
      ]
      assert.deepStrictEqual(answers.map((a) => a.status), [404, 400, 404, 401])
      for (const answer of answers) {
        assert.strictEqual(answer.headers["content-type"], "application/problem+json")
        assert.strictEqual(answer.headers["api-version"], "v1")
        assert.strictEqual(answer.headers["api-supported-versions"], "v3, v2, v1")
      }
      // v1's missing document is kernel's NotFound: no `documentId`, which v2 added.
      assert.deepStrictEqual(answers[0]!.body, {
        _tag: "NotFound",
        type: "about:blank",
        title: "Not Found",
        status: 404,
        detail: "no document missing"
      })
      const v2 = yield* request("GET", "/api/v2/documents/missing")
      assert.strictEqual(v2.body._tag, "DocumentNotFound")
      assert.strictEqual(v2.body.documentId, "missing")
    }).pipe(Effect.provide(served(noDocs))))

  it.effect("paths outside the API prefix are not negotiated", () =>
    Effect.gen(function*() {
      const outside = [yield* request("GET", "/apidocs"), yield* request("GET", "/health")]
      for (const answer of outside) {
        assert.strictEqual(answer.status, 404)
        assert.isUndefined(answer.headers["api-version"])
        assert.isUndefined(answer.headers["api-supported-versions"])
      }
    }).pipe(Effect.provide(served(noDocs))))

  it.effect("the version is in the request's context: CurrentApiVersion and kernel's RequestInfo", () => {
    const Probe = HttpRouter.add(
      "GET",
      "/api/v2/probe",
      Effect.gen(function*() {
        const version = yield* ApiVersion.current
        const info = yield* Effect.serviceOption(RequestContext.RequestContext)
        return HttpServerResponse.jsonUnsafe({ version, info: Option.getOrUndefined(info)?.apiVersion })
      })
    )
    const info: RequestContext.RequestInfo = {
      correlationId: "c-1",
      traceId: undefined,
      apiVersion: undefined,
      receivedAt: 0
    }
    const Served = HttpRouter.serve(Layer.merge(app(noDocs), Probe), {
      disableLogger: true,
      disableListenLog: true,
      middleware: (effect) => Effect.provideService(effect, RequestContext.RequestContext, info)
    }).pipe(Layer.provideMerge(NodeHttpServer.layerTest))
    return Effect.gen(function*() {
      assert.deepStrictEqual((yield* request("GET", "/api/v2/probe")).body, { version: "v2", info: "v2" })
      // An unversioned path is routed to the negotiated version's route.
      assert.deepStrictEqual(
        (yield* request("GET", "/api/probe", { headers: { "api-version": "v2" } })).body,
        { version: "v2", info: "v2" }
      )
    }).pipe(Effect.provide(Served))
  })
})

describe("lifecycle", () => {
  const deprecated: AppOptions = {
    ...noDocs,
    settings: {
      versions: {
        v1: { deprecated: "2027-01-01", sunset: "2027-07-01", link: "https://example.com/migrate/v1" },
        v2: { deprecated: "2028-01-01T12:00:00Z" }
      }
    }
  }

  it.effect("a deprecated version carries Deprecation (RFC 9745), Sunset (RFC 8594) and Link rel=deprecation", () =>
    Effect.gen(function*() {
      yield* ingest("v3", { id: "a", content: "hello" })
      const v1 = yield* request("GET", "/api/v1/documents/a")
      assert.strictEqual(v1.status, 200)
      assert.strictEqual(v1.headers["deprecation"], "@1798761600")
      assert.strictEqual(v1.headers["sunset"], "Thu, 01 Jul 2027 00:00:00 GMT")
      assert.strictEqual(v1.headers["link"], "<https://example.com/migrate/v1>; rel=\"deprecation\"")
      // Without a configured link, the version's migration notes.
      const v2 = yield* request("GET", "/api/v2/documents/a")
      assert.strictEqual(v2.headers["deprecation"], "@1830340800")
      assert.isUndefined(v2.headers["sunset"])
      assert.strictEqual(v2.headers["link"], "</api/versions/v2>; rel=\"deprecation\"")
      // Problems of a deprecated version carry them too; the stable version carries none.
      const missing = yield* request("GET", "/api/v1/documents/missing")
      assert.strictEqual(missing.status, 404)
      assert.strictEqual(missing.headers["deprecation"], "@1798761600")
      const v3 = yield* request("GET", "/api/v3/documents/a")
      assert.isUndefined(v3.headers["deprecation"])
      assert.isUndefined(v3.headers["sunset"])
      assert.isUndefined(v3.headers["link"])
    }).pipe(Effect.provide(served(deprecated))))

  it.effect("after its sunset a version answers 410 Gone, pointing to the newest stable version", () =>
    Effect.gen(function*() {
      yield* ingest("v3", { id: "a", content: "hello" })
      yield* TestClock.setTime(Date.parse("2027-06-30T23:59:59Z"))
      const before = yield* request("GET", "/api/v1/documents/a")
      assert.strictEqual(before.status, 200)
      assert.strictEqual(before.headers["sunset"], "Thu, 01 Jul 2027 00:00:00 GMT")

      yield* TestClock.setTime(Date.parse("2027-07-01T00:00:00Z"))
      const after = yield* request("GET", "/api/v1/documents/a?x=1")
      assert.strictEqual(after.status, 410)
      assert.strictEqual(after.headers["content-type"], "application/problem+json")
      assert.deepStrictEqual(after.body, {
        _tag: "ApiVersionGone",
        type: "about:blank",
        title: "Gone",
        status: 410,
        detail: "API version v1 was sunset on 2027-07-01T00:00:00.000Z; use v3",
        version: "v1",
        sunset: "2027-07-01T00:00:00.000Z",
        successor: "v3",
        successorUrl: "/api/v3/documents/a?x=1",
        supportedVersions: ["v3", "v2"]
      })
      assert.strictEqual(
        after.headers["link"],
        "</api/v3/documents/a?x=1>; rel=\"successor-version\", <https://example.com/migrate/v1>; rel=\"deprecation\""
      )
      assert.strictEqual(after.headers["api-version"], "v1")
      assert.strictEqual(after.headers["api-supported-versions"], "v3, v2")
      // Asked for by header, the same.
      const byHeader = yield* request("GET", "/api/documents/a", { headers: { "api-version": "v1" } })
      assert.strictEqual(byHeader.status, 410)
      assert.strictEqual(byHeader.body.successorUrl, "/api/v3/documents/a")
      // The other versions are untouched, and list v1 no more.
      const v2 = yield* request("GET", "/api/v2/documents/a")
      assert.strictEqual(v2.status, 200)
      assert.strictEqual(v2.headers["api-supported-versions"], "v3, v2")
    }).pipe(Effect.provide(served(deprecated))))
})

describe("version changes", () => {
  it.effect("v1 and v2 are served by v3's handlers: requests migrated up, answers down", () =>
    Effect.gen(function*() {
      // Written in v1, read in v3: `text` became `content`, `metadata` became `labels`.
      yield* ingest("v1", { id: "a", text: "hello", metadata: { lang: "en", n: 2, ok: true } })
      const v3 = yield* request("GET", "/api/v3/documents/a")
      assert.deepStrictEqual(v3.body.data, {
        id: "a",
        content: "hello",
        labels: { lang: "en", n: 2, ok: true },
        revision: 1
      })
      // Written in v3, read in v1.
      yield* ingest("v3", { id: "b", content: "bonjour", labels: { lang: "fr" } })
      const v1 = yield* request("GET", "/api/v1/documents/b")
      assert.deepStrictEqual(v1.body, { id: "b", text: "bonjour", metadata: { lang: "fr" } })
      // The same conflict in every version (kernel's Conflict did not change).
      const conflict = yield* ingest("v1", { id: "b", text: "other" })
      assert.strictEqual(conflict.status, 409)
      assert.strictEqual(conflict.body.detail, "document b exists with other content")
    }).pipe(Effect.provide(served(noDocs))))

  it.effect("an endpoint only newer versions have is not served in older ones; a removed one is served by its change", () =>
    Effect.gen(function*() {
      yield* ingest("v3", { id: "a", content: "hello" })
      yield* ingest("v3", { id: "b", content: "world" })
      assert.strictEqual((yield* request("GET", "/api/v2/documents")).body.data.length, 2)
      assert.strictEqual((yield* request("GET", "/api/v1/documents")).status, 404)
      assert.deepStrictEqual((yield* request("GET", "/api/v1/documents-count")).body, { count: 2 })
      assert.strictEqual((yield* request("GET", "/api/v2/documents-count")).status, 404)
    }).pipe(Effect.provide(served(noDocs))))

  it.effect("a v1 client built from v1's HttpApi works unchanged", () =>
    Effect.gen(function*() {
      const v1 = yield* HttpApiClient.make(ApiV1, {
        transformClient: HttpClient.mapRequest(HttpClientRequest.setHeader("x-api-key", "key-acme"))
      })
      const created = yield* v1.documents.ingest({ payload: { text: "hello", metadata: { a: 1 } } })
      assert.deepStrictEqual(created, { id: "doc-1", text: "hello", metadata: { a: 1 } })
      assert.deepStrictEqual(yield* v1.documents.get({ params: { id: "doc-1" } }), created)
      assert.deepStrictEqual(yield* v1.documents.count(), { count: 1 })
      const missing = yield* Effect.flip(v1.documents.get({ params: { id: "nope" } }))
      assert.strictEqual(missing._tag, "NotFound")
    }).pipe(Effect.provide(served(noDocs))))
})

describe("metrics and access", () => {
  const caller = Effect.map(
    Effect.serviceOption(Principal.CurrentPrincipal),
    Option.match({ onNone: () => undefined, onSome: (p) => p.tenantId as string })
  )

  it.effect("requests are counted by version and outcome, and by caller when the server names one", () =>
    Effect.gen(function*() {
      yield* ingest("v3", { id: "a", content: "hello" })
      yield* request("GET", "/api/v1/documents/a")
      yield* request("GET", "/api/documents/a", { headers: { "api-version": "v1" } })
      yield* request("GET", "/api/v3/documents/a", { headers: { "x-api-key": "key-beta" } })
      yield* request("GET", "/api/v9/documents/a")
      yield* request("GET", "/api/documents/a", { headers: { "api-version": "nope" } })
      const snapshot = yield* Metric.snapshot
      const count = (id: string, attributes: Record<string, string>) =>
        snapshot.filter((s) => s.id === id && Object.entries(attributes).every(([k, v]) => s.attributes?.[k] === v))
          .map((s) => (s.state as { count: number }).count).reduce((a, b) => a + b, 0)
      assert.strictEqual(count("api_version_requests_total", { version: "v1", outcome: "served" }), 2)
      assert.strictEqual(count("api_version_requests_total", { version: "v3", outcome: "served" }), 2)
      assert.strictEqual(count("api_version_requests_total", { version: "unknown", outcome: "unsupported" }), 1)
      assert.strictEqual(count("api_version_requests_total", { version: "malformed", outcome: "unsupported" }), 1)
      assert.strictEqual(count("api_version_caller_requests_total", { version: "v1", caller: "acme" }), 2)
      assert.strictEqual(count("api_version_caller_requests_total", { version: "v3", caller: "acme" }), 1)
      assert.strictEqual(count("api_version_caller_requests_total", { version: "v3", caller: "beta" }), 1)
    }).pipe(
      Effect.provide(served({ ...noDocs, access: { caller } })),
      Effect.provideService(Metric.MetricRegistry, new Map())
    ))

  it.effect("a version can be opened per caller: the extension point of a per-tenant rollout flag", () =>
    Effect.gen(function*() {
      yield* request("POST", "/api/v2/documents", { body: { id: "a", content: "hello" } })
      const refused = yield* request("GET", "/api/v3/documents/a")
      assert.strictEqual(refused.status, 400)
      assert.strictEqual(refused.body._tag, "UnsupportedApiVersion")
      assert.deepStrictEqual(refused.body.supportedVersions, ["v2", "v1"])
      assert.strictEqual(refused.headers["api-supported-versions"], "v2, v1")
      assert.strictEqual(refused.headers["content-type"], "application/problem+json")
      const allowed = yield* request("GET", "/api/v3/documents/a", { headers: { "x-api-key": "key-beta" } })
      assert.strictEqual(allowed.status, 200)
      // The default is v2 (v3 is a preview), so callers without the flag keep working without naming a version.
      assert.strictEqual((yield* request("GET", "/api/documents/a")).headers["api-version"], "v2")
    }).pipe(Effect.provide(served({
      ...noDocs,
      settings: { versions: { v3: { preview: true } } },
      access: { caller, isEnabled: (version, tenant) => Effect.succeed(version !== "v3" || tenant === "beta") }
    }))))
})

describe("raw HTTP", () => {
  const port = Effect.map(Effect.context<HttpServer.HttpServer>(), (context) => {
    const address = Context.get(context, HttpServer.HttpServer).address
    return address._tag === "UnixPathAddress" ? 0 : address.port
  })

  it.effect("field names and values on the wire", () =>
    Effect.gen(function*() {
      const agent = new Http.Agent({ keepAlive: false })
      const p = yield* port
      yield* RawHttp.request(p, {
        method: "POST",
        path: "/api/v3/documents",
        agent,
        headers: { "content-type": "application/json", "x-api-key": "key-acme" },
        body: JSON.stringify({ id: "a", content: "hello" })
      })
      const negotiated = yield* RawHttp.request(p, {
        method: "GET",
        path: "/api/documents/a",
        agent,
        headers: { "API-Version": "v1", "x-api-key": "key-acme" }
      })
      assert.strictEqual(negotiated.status, 200)
      assert.strictEqual(negotiated.headers["api-version"], "v1")
      assert.strictEqual(negotiated.headers["api-supported-versions"], "v3, v2, v1")
      assert.strictEqual(negotiated.headers["vary"], "api-version")
      assert.strictEqual(negotiated.headers["deprecation"], "@1798761600")
      assert.deepStrictEqual(JSON.parse(negotiated.body), { id: "a", text: "hello", metadata: {} })
      const unknown = yield* RawHttp.request(p, { method: "GET", path: "/api/v7/documents/a", agent })
      assert.strictEqual(unknown.status, 400)
      assert.strictEqual(unknown.headers["content-type"], "application/problem+json")
      assert.strictEqual(unknown.headers["api-supported-versions"], "v3, v2, v1")
      agent.destroy()
    }).pipe(Effect.provide(served({ ...noDocs, settings: { versions: { v1: { deprecated: "2027-01-01" } } } }))))

  // The router serves `/API/v1/x`, `//api/v1/x`, `/%61pi/v1/x`… as `/api/v1/x` (case-insensitive, `//` merged,
  // decoded): each such spelling is negotiated and answered with the version headers, problems included.
  it.effect("every spelling the router serves under /api is negotiated", () =>
    Effect.gen(function*() {
      const agent = new Http.Agent({ keepAlive: false })
      const p = yield* port
      const get = (path: string, headers?: Record<string, string>) =>
        RawHttp.request(p, { method: "GET", path, agent, headers: { "x-api-key": "key-acme", ...headers } })
      const created = yield* RawHttp.request(p, {
        method: "POST",
        path: "/api/v3/documents",
        agent,
        headers: { "content-type": "application/json", "x-api-key": "key-acme" },
        body: JSON.stringify({ id: "Ab:c", content: "hello" })
      })
      assert.strictEqual(created.status, 201)
      const v1 = { id: "Ab:c", text: "hello", metadata: {} }
      const cases: ReadonlyArray<readonly [string, Record<string, string>, string]> = [
        ["/API/v1/documents/Ab%3Ac", {}, "v1"],
        ["//api/v1/documents/Ab%3Ac", {}, "v1"],
        ["/%61pi/v1/documents/Ab%3Ac", {}, "v1"],
        ["/Api//v1/documents/Ab%3Ac/", {}, "v1"],
        ["/api/%761/documents/Ab%3Ac", {}, "v1"],
        ["/api/v1/documents/Ab%3Ac;x=1", {}, "v1"],
        // Header negotiation, and the URL rewritten to the version's route (the parameter keeps its case).
        ["/API/documents/Ab%3Ac", { "api-version": "v1" }, "v1"],
        ["//api//documents/Ab%3Ac?x=1", { "api-version": "v1" }, "v1"],
        ["/%61pi/documents/Ab%3Ac", { "api-version": "v1" }, "v1"]
      ]
      for (const [path, headers, version] of cases) {
        const answer = yield* get(path, headers)
        assert.strictEqual(answer.status, 200, path)
        assert.strictEqual(answer.headers["api-version"], version, path)
        assert.strictEqual(answer.headers["api-supported-versions"], "v3, v2, v1", path)
        assert.strictEqual(answer.headers["deprecation"], "@1798761600", path)
        assert.deepStrictEqual(JSON.parse(answer.body), v1, path)
      }
      // The default version when the header is absent.
      const byDefault = yield* get("//API/%64ocuments/Ab%3Ac")
      assert.strictEqual(byDefault.status, 200)
      assert.strictEqual(byDefault.headers["api-version"], "v3")
      assert.strictEqual(byDefault.headers["vary"], "api-version")
      assert.strictEqual(JSON.parse(byDefault.body).data.id, "Ab:c")
      // Problems too: a missing document, an unknown version, the router's 404.
      const problems = [["/API/v2/documents/none", 404], ["//api/v9/documents/a", 400], [
        "/%61pi/nothing",
        404
      ]] as const
      for (const [path, status] of problems) {
        const answer = yield* get(path)
        assert.strictEqual(answer.status, status, path)
        assert.strictEqual(answer.headers["content-type"], "application/problem+json", path)
        assert.strictEqual(answer.headers["api-supported-versions"], "v3, v2, v1", path)
        assert.isString(answer.headers["api-version"], path)
      }
      // `/API/V1/...`: the segment is a version, spelled wrong (as `/api/V1/...`), never an unnegotiated route.
      assert.strictEqual((yield* get("/API/V1/documents/Ab%3Ac")).status, 400)
      // The versions document is not negotiated in any spelling, and `/apidocs` is not under `/api`.
      const versions = yield* get("//API/Versions")
      assert.strictEqual(versions.headers["api-supported-versions"], "v3, v2, v1")
      assert.isUndefined(versions.headers["api-version"])
      assert.isUndefined((yield* get("/APIDOCS")).headers["api-supported-versions"])
      agent.destroy()
    }).pipe(Effect.provide(served({ settings: { versions: { v1: { deprecated: "2027-01-01" } } } }))))
})
