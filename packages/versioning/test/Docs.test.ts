import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { HttpClient } from "effect/http"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { VersioningHttp, VersionPolicy } from "../src/index.js"
import { Versions } from "./fixtures/Documents.js"
import { request, served } from "./fixtures/Server.js"

const methods = ["get", "put", "post", "delete", "patch", "head", "options"] as const

/** Every operation of a document, with its path and method. */
const operations = (spec: any) =>
  Object.entries(spec.paths as Record<string, Record<string, any>>).flatMap(([path, item]) =>
    methods.flatMap((method) => item[method] === undefined ? [] : [{ path, method, operation: item[method] }])
  )

/** A document whose operations are all well-formed: ids unique, responses declared, every $ref resolvable. */
const assertValid = (spec: any) => {
  assert.strictEqual(spec.openapi, "3.1.0")
  const ids = operations(spec).map((o) => o.operation.operationId)
  assert.strictEqual(new Set(ids).size, ids.length, "operationIds are unique")
  for (const { operation, path } of operations(spec)) {
    assert.isAbove(Object.keys(operation.responses).length, 0, `${path} declares responses`)
    for (const status of Object.keys(operation.responses)) assert.match(status, /^[1-5]\d\d$/)
  }
  const refs = JSON.stringify(spec).match(/"\$ref":"#\/components\/schemas\/[^"]+"/g) ?? []
  for (const ref of refs) {
    const name = ref.slice("\"$ref\":\"#/components/schemas/".length, -1)
    assert.isDefined(spec.components.schemas[name], `${name} is defined`)
  }
}

const settings: VersionPolicy.Settings = {
  versions: { v1: { deprecated: "2027-01-01", sunset: "2027-07-01", link: "https://example.com/migrate/v1" } }
}

describe("documents", () => {
  it.effect("one OpenAPI document per version, each with its own schemas; /openapi.json is the default version", () =>
    Effect.gen(function*() {
      const v1 = (yield* request("GET", "/api/v1/openapi.json")).body
      const v2 = (yield* request("GET", "/api/v2/openapi.json")).body
      const v3 = (yield* request("GET", "/api/v3/openapi.json")).body
      for (const spec of [v1, v2, v3]) assertValid(spec)
      assert.deepStrictEqual([v1.info.version, v2.info.version, v3.info.version], ["v1", "v2", "v3"])
      assert.deepStrictEqual(Object.keys(v1.paths).sort(), [
        "/api/v1/documents",
        "/api/v1/documents-count",
        "/api/v1/documents/{id}"
      ])
      assert.deepStrictEqual(Object.keys(v2.paths).sort(), ["/api/v2/documents", "/api/v2/documents/{id}"])
      // Each version documents its own bodies.
      assert.deepStrictEqual(Object.keys(v1.components.schemas.IngestRequestV1.properties).sort(), [
        "id",
        "metadata",
        "text"
      ])
      assert.isUndefined(v1.components.schemas.IngestRequestV3)
      assert.deepStrictEqual(
        Object.keys(v3.components.schemas.IngestRequestV3.properties).sort(),
        ["content", "id", "labels"]
      )
      assert.deepStrictEqual((yield* request("GET", "/openapi.json")).body, v3)
    }).pipe(Effect.provide(served())))

  it.effect("a deprecated version's operations are deprecated, and so are those the next version removed", () =>
    Effect.gen(function*() {
      const v1 = (yield* request("GET", "/api/v1/openapi.json")).body
      for (const { operation } of operations(v1)) assert.isTrue(operation.deprecated, operation.operationId)
      assert.deepStrictEqual(v1.info["x-api-lifecycle"], {
        status: "deprecated",
        deprecated: "2027-01-01T00:00:00.000Z",
        sunset: "2027-07-01T00:00:00.000Z",
        link: "https://example.com/migrate/v1"
      })
      for (const version of ["v2", "v3"]) {
        const spec = (yield* request("GET", `/api/${version}/openapi.json`)).body
        for (const { operation } of operations(spec)) assert.isUndefined(operation.deprecated, operation.operationId)
        assert.strictEqual(spec.info["x-api-lifecycle"].status, "stable")
      }
    }).pipe(Effect.provide(served({ settings }))))

  it.effect("an operation the next version removed is deprecated even in a version that is not", () =>
    Effect.sync(() => {
      const lifecycle: VersionPolicy.Lifecycle = {
        version: "v1",
        preview: false,
        deprecatedAt: undefined,
        sunsetAt: undefined,
        link: undefined
      }
      const spec = VersioningHttp.openApi(Versions, "v1", { lifecycle })
      const byId = Object.fromEntries(operations(spec).map((o) => [o.operation.operationId, o.operation.deprecated]))
      assert.deepStrictEqual(byId, {
        "documents.ingest": undefined,
        "documents.get": undefined,
        "documents.count": true
      })
      assert.strictEqual((spec.info as any)["x-api-lifecycle"].status, "stable")
    }))

  it.effect("an unversioned api's operations can be included in every document", () =>
    Effect.sync(() => {
      class Health extends HttpApiGroup.make("health").add(
        HttpApiEndpoint.get("live", "/health/live", { success: Schema.Struct({ status: Schema.String }) })
      ) {}
      class Unversioned extends HttpApi.make("server").add(Health).annotate(OpenApi.Title, "Server") {}
      const spec = VersioningHttp.openApi(Versions, "v2", { include: Unversioned })
      assertValid(spec)
      assert.deepStrictEqual(Object.keys(spec.paths).sort(), [
        "/api/v2/documents",
        "/api/v2/documents/{id}",
        "/health/live"
      ])
      assert.strictEqual(spec.info.title, "Documents")
      assert.deepStrictEqual(spec.tags.map((t) => t.name).sort(), ["documents", "health"])
    }))

  it.effect("Swagger UI at /docs switches between the versions' documents", () =>
    Effect.gen(function*() {
      const response = yield* HttpClient.get("/docs")
      const page = yield* response.text
      assert.strictEqual(response.status, 200)
      assert.match(response.headers["content-type"] ?? "", /^text\/html/)
      // The bundle carries Swagger UI's standalone preset, whose top bar lists `urls`.
      assert.include(page, "SwaggerUIStandalonePreset")
      assert.include(
        page,
        `const urls = [{"url":"/api/v3/openapi.json","name":"v3"},{"url":"/api/v2/openapi.json","name":"v2"},{"url":"/api/v1/openapi.json","name":"v1"}];`
      )
      assert.include(page, `"urls.primaryName": "v3"`)
      assert.include(page, `layout: "StandaloneLayout"`)
      // Ours runs last: it replaces the single-document start-up of HttpApiSwagger's page.
      assert.isAbove(page.lastIndexOf("window.onload"), page.indexOf("swagger-spec"))
    }).pipe(Effect.provide(served())))

  it.effect("/api/versions tells clients which versions exist and when each goes away, with migration notes", () =>
    Effect.gen(function*() {
      const listing = yield* request("GET", "/api/versions")
      assert.strictEqual(listing.status, 200)
      assert.strictEqual(listing.headers["api-supported-versions"], "v3, v2, v1")
      assert.isUndefined(listing.headers["api-version"])
      assert.strictEqual(listing.body.defaultVersion, "v3")
      assert.deepStrictEqual(listing.body.supportedVersions, ["v3", "v2", "v1"])
      assert.deepStrictEqual(listing.body.versions.map((v: any) => [v.version, v.status]), [
        ["v3", "stable"],
        ["v2", "stable"],
        ["v1", "deprecated"]
      ])
      const v1 = yield* request("GET", "/api/versions/v1")
      assert.deepStrictEqual(v1.body, {
        version: "v1",
        status: "deprecated",
        deprecated: "2027-01-01T00:00:00.000Z",
        sunset: "2027-07-01T00:00:00.000Z",
        link: "https://example.com/migrate/v1",
        openapi: "/api/v1/openapi.json",
        changes: [
          {
            from: "v1",
            to: "v2",
            description:
              "Answers are wrapped in { data, meta }; `text` is called `content`; a missing document is DocumentNotFound",
            endpoints: [],
            removed: [{ endpoint: "documents.count", description: "Use GET /api/v2/documents and count the list" }]
          },
          {
            from: "v2",
            to: "v3",
            description: "Documents: `metadata` is called `labels`, and documents carry their `revision`",
            endpoints: [{ endpoint: "documents.ingest", description: "The body's `metadata` is `labels`" }],
            removed: []
          }
        ]
      })
      const unknown = yield* request("GET", "/api/versions/v7")
      assert.strictEqual(unknown.status, 404)
      assert.strictEqual(unknown.headers["content-type"], "application/problem+json")
      assert.strictEqual(unknown.body.detail, "no API version v7; supported versions: v3, v2, v1")
    }).pipe(Effect.provide(served({ settings }))))
})
