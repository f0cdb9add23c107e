import { assert, describe, it } from "@effect/vitest"
import { ProblemHttp } from "@ouroboros/kernel"
import { Effect, Exit, Layer, Result, Schema, SchemaGetter, SchemaIssue, SchemaTransformation } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { HttpApi, HttpApiEndpoint, HttpApiGroup } from "effect/http-api"
import * as fc from "fast-check"
import { VersionChange, VersionedApi, VersioningHttp, VersionPolicy } from "../src/index.js"
import {
  ApiV1,
  ApiV2,
  ApiV3,
  DocumentV1,
  DocumentV3,
  Envelopes,
  IngestV1,
  IngestV3,
  LabelsAndRevisions,
  Versions
} from "./fixtures/Documents.js"
import { app, referenceApp } from "./fixtures/Server.js"
import { Store } from "./readme/api.js"
import * as Readme from "./readme/example.js"

type WebHandler = (request: Request) => Promise<Response>

const webHandler = (layer: Layer.Layer<never, any, any>) => {
  const { dispose, handler } = HttpRouter.toWebHandler(layer as Layer.Layer<never, never, HttpRouter.HttpRouter>, {
    disableLogger: true
  })
  return { handler: handler as unknown as WebHandler, dispose }
}

const call = async (
  handler: WebHandler,
  method: string,
  path: string,
  body?: string,
  headers?: Record<string, string>
) => {
  const response = await handler(
    new Request(`http://localhost${path}`, {
      method,
      headers: { "content-type": "application/json", "x-api-key": "key-acme", ...headers },
      ...(body !== undefined ? { body } : {})
    })
  )
  const text = await response.text()
  return { status: response.status, body: text === "" ? undefined : JSON.parse(text) as unknown }
}

// -----------------------------------------------------------------------------
// v1 answered before v2 existed
// -----------------------------------------------------------------------------

const Id = fc.constantFrom("a", "b", "doc-1", "doc-2", "x:y", "missing")
const Scalar = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.integer({ min: -1000, max: 1000 }),
  fc.boolean(),
  fc.double({ noNaN: true, noDefaultInfinity: true })
)
const MetadataArb = fc.dictionary(fc.constantFrom("lang", "n", "ok", "tag"), Scalar, { maxKeys: 3 })
const Operation = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant("ingest" as const),
      body: fc.record({
        id: Id,
        text: fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom("hello", "world")),
        metadata: MetadataArb
      }, {
        requiredKeys: ["text"]
      }).map((body) => JSON.stringify(body))
    })
  },
  // Anything at all, and bodies that are not JSON: the decode errors must be v1's too.
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant("ingest" as const), body: fc.jsonValue().map((v) => JSON.stringify(v)) })
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("ingest" as const), body: fc.constantFrom("{", "", "[1,") }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant("get" as const), id: Id }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("count" as const) }) }
)
// v1 asked for by URL segment, or on the unversioned path by header.
const Route = fc.constantFrom("segment" as const, "header" as const)

describe("VersionedApi", () => {
  it.live("property: v1 migrated up to v3, handled by v3's handlers and migrated down answers as v1 did before v2 existed", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(fc.array(fc.tuple(Operation, Route), { minLength: 1, maxLength: 10 }), async (operations) => {
          const versioned = webHandler(app({ docs: false }))
          const reference = webHandler(referenceApp)
          try {
            for (const [operation, route] of operations) {
              const path = operation.op === "ingest"
                ? "/documents"
                : operation.op === "get"
                ? `/documents/${operation.id}`
                : "/documents-count"
              const method = operation.op === "ingest" ? "POST" : "GET"
              const body = operation.op === "ingest" ? operation.body : undefined
              const migrated = route === "segment"
                ? await call(versioned.handler, method, `/api/v1${path}`, body)
                : await call(versioned.handler, method, `/api${path}`, body, { "api-version": "v1" })
              const original = await call(reference.handler, method, `/api/v1${path}`, body)
              assert.deepStrictEqual(migrated, original, `${method} ${path} ${body ?? ""}`)
            }
          } finally {
            await versioned.dispose()
            await reference.dispose()
          }
        }),
        { numRuns: 150 }
      )
    ))

  it.effect("property: any valid v1 body migrates up to a valid v3 body, any v3 document down to a valid v1 document", () =>
    Effect.sync(() => {
      const up = VersionedApi.migrateUp(Versions, {
        group: "documents",
        endpoint: "ingest",
        part: "payload",
        from: "v1"
      })
      const down = VersionedApi.migrateDown(Versions, {
        group: "documents",
        endpoint: "get",
        part: "success",
        to: "v1"
      })
      const Text = fc.string({ minLength: 1, maxLength: 20 }).filter((s) => s.trim().length > 0)
      fc.assert(
        fc.property(
          fc.record({ id: Id, text: Text, metadata: MetadataArb }, { requiredKeys: ["text"] }),
          fc.record({ id: Id, content: fc.string({ maxLength: 20 }), labels: MetadataArb, revision: fc.nat() }),
          (v1Body, v3Document) => {
            const v1 = Schema.decodeUnknownSync(IngestV1)(v1Body)
            const v3 = Schema.decodeUnknownSync(IngestV3)(Effect.runSync(up(v1)))
            assert.strictEqual(v3.content, v1.text)
            assert.strictEqual(v3.id, v1.id)
            assert.deepStrictEqual(v3.labels, v1.metadata)
            const answer = Effect.runSync(
              down({ data: Schema.decodeUnknownSync(DocumentV3)(v3Document), meta: { apiVersion: "v3" } })
            )
            assert.deepStrictEqual(Schema.decodeUnknownSync(DocumentV1)(answer), {
              id: v3Document.id,
              text: v3Document.content,
              metadata: v3Document.labels
            })
          }
        ),
        { numRuns: 200 }
      )
    }))

  it.live("the README's example serves v1 from v2's handler", () =>
    Effect.promise(async () => {
      const { dispose, handler } = webHandler(Readme.App.pipe(
        Layer.provide(ProblemHttp.layer),
        Layer.provide(
          Layer.succeed(Store, { get: (id) => Effect.succeed({ data: { id, content: `content of ${id}` } }) })
        )
      ))
      try {
        assert.deepStrictEqual(await call(handler, "GET", "/api/v1/documents/x"), {
          status: 200,
          body: { id: "x", text: "content of x" }
        })
        assert.deepStrictEqual(await call(handler, "GET", "/api/documents/x"), {
          status: 200,
          body: { data: { id: "x", content: "content of x" } }
        })
      } finally {
        await dispose()
      }
    }))

  it.effect("versions and the endpoints each dropped", () =>
    Effect.sync(() => {
      assert.deepStrictEqual(VersionedApi.versions(Versions), ["v3", "v2", "v1"])
      assert.deepStrictEqual([...VersionedApi.removedAfter(Versions, "v1")], ["documents.count"])
      assert.deepStrictEqual([...VersionedApi.removedAfter(Versions, "v2")], [])
      assert.strictEqual(Versions.prefix, "/api")
    }))

  it.effect("a bundle checks what types cannot: paths, order, neighbours, overlapping and missing changes", () =>
    Effect.sync(() => {
      assert.throws(
        () => VersionedApi.make("v2", ApiV1),
        /documents.ingest of v2 is at \/api\/v1\/documents, not under \/api\/v2/
      )
      assert.throws(() => VersionedApi.make("2", ApiV1), /"2" is not a version/)
      assert.throws(
        () => VersionedApi.make("v3", ApiV3).previous("v3" as any, ApiV2 as any),
        /v3 must be older than v3/
      )
      assert.throws(
        () =>
          VersionedApi.make("v3", ApiV3).previous("v2", ApiV2, LabelsAndRevisions).previous(
            "v1" as any,
            ApiV1,
            LabelsAndRevisions as any
          ),
        /is not a change from v1 to v2/
      )
      const again = VersionChange.make(ApiV2, ApiV3, "the same payload again")
        .endpoint("documents", "ingest", { payload: (v2) => ({ content: v2.content }) })
      assert.throws(
        () => VersionedApi.make("v3", ApiV3).previous("v2", ApiV2, LabelsAndRevisions, again),
        /both migrate documents.ingest.payload; merge them/
      )
      const withoutRemoval = VersionChange.make(ApiV1, ApiV2, "no removal")
      assert.throws(
        () =>
          VersionedApi.make("v3", ApiV3).previous("v2", ApiV2, LabelsAndRevisions).previous(
            "v1" as any,
            ApiV1,
            withoutRemoval
          ),
        /documents.count of v1 is not in v2 and no change declares it removed/
      )
      assert.throws(
        () => (VersionChange.make(ApiV1, ApiV2, "x") as any).endpoint("documents", "count", {}),
        /documents.count is not an endpoint of both versions/
      )
      assert.throws(
        () => (VersionChange.make(ApiV1, ApiV2, "x") as any).removed("documents", "get", () => Effect.void),
        /documents.get is not an endpoint that only the older version has/
      )
      assert.throws(() => VersionedApi.group(Versions, "nope" as any, (h: any) => h), /no group "nope"/)
      assert.isTrue(VersionChange.isVersionChange(Envelopes))
      assert.isTrue(VersionedApi.isVersionedApi(Versions))
    }))

  it.effect("serving a version without its group's handlers is a defect that names the group", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(
        Layer.build(
          VersionedApi.layer(Versions).pipe(Layer.provide(HttpRouter.layer)) as Layer.Layer<never, never, never>
        )
      )
      assert.isTrue(Exit.isFailure(exit))
      assert.match(String(exit), /group "documents" is not implemented/)
    }))
})

// -----------------------------------------------------------------------------
// Migrations that refuse, fail, go both ways; raw handlers; a group only older versions have
// -----------------------------------------------------------------------------

const TagsV1 = Schema.Struct({ tags: Schema.Array(Schema.String) })
const TagV2 = Schema.Struct({ tag: Schema.String })

class TagsGroupV1 extends HttpApiGroup.make("tags").add(
  HttpApiEndpoint.post("set", "/tags", { payload: TagsV1, success: TagsV1 }),
  HttpApiEndpoint.get("raw", "/raw", { success: Schema.String }),
  HttpApiEndpoint.get("broken", "/broken", { success: Schema.Struct({ n: Schema.String }) }),
  HttpApiEndpoint.post("rename", "/rename", {
    payload: Schema.Struct({ full_name: Schema.String }),
    success: Schema.Struct({ full_name: Schema.String })
  })
).prefix("/api/v1") {}
class LegacyV1 extends HttpApiGroup.make("legacy").add(
  HttpApiEndpoint.get("ping", "/ping", { success: Schema.Literal("pong") }),
  HttpApiEndpoint.get("old", "/old", { success: Schema.String })
).prefix("/api/v1") {}
class TagsApiV1 extends HttpApi.make("tags-v1").add(TagsGroupV1, LegacyV1) {}

class TagsGroupV2 extends HttpApiGroup.make("tags").add(
  HttpApiEndpoint.post("set", "/tags", { payload: TagV2, success: TagV2 }),
  HttpApiEndpoint.get("raw", "/raw", { success: Schema.String }),
  HttpApiEndpoint.get("broken", "/broken", { success: Schema.Struct({ n: Schema.Finite }) }),
  HttpApiEndpoint.post("rename", "/rename", {
    payload: Schema.Struct({ name: Schema.String }),
    success: Schema.Struct({ name: Schema.String })
  })
).prefix("/api/v2") {}
class TagsApiV2 extends HttpApi.make("tags-v2").add(TagsGroupV2) {}

// One transformation, both directions: v1's `full_name` is v2's `name`, in requests and in answers.
const fullName = SchemaTransformation.transform({
  decode: (v1: { readonly full_name: string }) => ({ name: v1.full_name }),
  encode: (v2: { readonly name: string }) => ({ full_name: v2.name })
})

const OneTag = VersionChange.make(TagsApiV1, TagsApiV2, "A document has one tag")
  .endpoint("tags", "set", {
    payload: VersionChange.upOrFail((v1) =>
      v1.tags.length === 1 ? Result.succeed({ tag: v1.tags[0]! }) : Result.fail("v2 keeps exactly one tag")
    ),
    success: (v2) => ({ tags: [v2.tag] })
  })
  .endpoint("tags", "broken", {
    success: new SchemaTransformation.Transformation(
      SchemaGetter.forbidden(() => "down only"),
      SchemaGetter.transformEffect((v2: { readonly n: number }) =>
        Effect.fail(new SchemaIssue.InvalidValue({ message: `cannot express ${v2.n} in v1` }))
      )
    )
  })
  .endpoint("tags", "rename", { payload: fullName, success: fullName })
  .removed("legacy", "ping", () => Effect.succeed("pong" as const), { description: "ping answers in v1 only" })
  .removed("legacy", "old", VersionChange.gone("GET /api/v1/old was removed in v2; use POST /api/v2/tags"))

const Tags = VersionedApi.make("v2", TagsApiV2).previous("v1", TagsApiV1, OneTag)

const TagsLive = VersionedApi.group(Tags, "tags", (handlers) =>
  handlers
    .handle("set", ({ payload }) => Effect.succeed({ tag: payload.tag.toUpperCase() }))
    .handleRaw("raw", ({ request }) => Effect.succeed(HttpServerResponse.text(`raw ${request.url}`)))
    .handle("broken", () => Effect.succeed({ n: 42 }))
    .handle("rename", ({ payload }) => Effect.succeed({ name: payload.name.trim() })))

const tagsApp = VersionedApi.layer(Tags).pipe(
  Layer.provide(TagsLive),
  Layer.provide(VersioningHttp.layer()),
  Layer.provide(ProblemHttp.layer),
  Layer.provide(VersionPolicy.layer(VersionedApi.versions(Tags)))
)

describe("migrations", () => {
  it.live("a request the newer version cannot express is a 400 naming the part; an answer that cannot be migrated a 500", () =>
    Effect.promise(async () => {
      const { dispose, handler } = webHandler(tagsApp)
      try {
        assert.deepStrictEqual(await call(handler, "POST", "/api/v1/tags", JSON.stringify({ tags: ["a"] })), {
          status: 200,
          body: { tags: ["A"] }
        })
        const refused = await call(handler, "POST", "/api/v1/tags", JSON.stringify({ tags: ["a", "b"] }))
        assert.strictEqual(refused.status, 400)
        assert.strictEqual((refused.body as any)._tag, "HttpApiDecodeError")
        assert.strictEqual((refused.body as any).detail, "v2 keeps exactly one tag")
        const broken = await call(handler, "GET", "/api/v1/broken")
        assert.strictEqual(broken.status, 500)
        assert.strictEqual((broken.body as any).detail, "The server could not complete the request")
        assert.deepStrictEqual(await call(handler, "GET", "/api/v2/broken"), { status: 200, body: { n: 42 } })
      } finally {
        await dispose()
      }
    }))

  it.live("one Schema transformation migrates both ways; raw handlers and removed groups serve older versions", () =>
    Effect.promise(async () => {
      const { dispose, handler } = webHandler(tagsApp)
      try {
        assert.deepStrictEqual(await call(handler, "POST", "/api/v1/rename", JSON.stringify({ full_name: " Ada " })), {
          status: 200,
          body: { full_name: "Ada" }
        })
        const raw = await handler(new Request("http://localhost/api/raw", { headers: { "api-version": "1" } }))
        assert.strictEqual(await raw.text(), "raw /api/v1/raw")
        assert.strictEqual(raw.headers.get("api-version"), "v1")
        assert.deepStrictEqual(await call(handler, "GET", "/api/v1/ping"), { status: 200, body: "pong" })
        assert.strictEqual((await call(handler, "GET", "/api/v2/ping")).status, 404)
        // A removed endpoint may also just answer 410.
        assert.deepStrictEqual(await call(handler, "GET", "/api/v1/old"), {
          status: 410,
          body: {
            type: "about:blank",
            title: "Gone",
            status: 410,
            detail: "GET /api/v1/old was removed in v2; use POST /api/v2/tags"
          }
        })
      } finally {
        await dispose()
      }
    }))

  it.effect("migrations run outside requests too: an answer rendered in a pinned version (webhooks)", () =>
    Effect.gen(function*() {
      const v1 = yield* VersionedApi.migrateDown(Tags, { group: "tags", endpoint: "set", part: "success", to: "v1" })({
        tag: "x"
      })
      assert.deepStrictEqual(v1, { tags: ["x"] })
      const refused = yield* Effect.flip(
        VersionedApi.migrateUp(Tags, { group: "tags", endpoint: "set", part: "payload", from: "v1" })({ tags: [] })
      )
      assert.strictEqual(refused._tag, "InvalidValue")
      // The newest version migrates nothing.
      assert.deepStrictEqual(
        yield* VersionedApi.migrateDown(Tags, { group: "tags", endpoint: "set", part: "success", to: "v2" })({
          tag: "x"
        }),
        { tag: "x" }
      )
    }))
})
