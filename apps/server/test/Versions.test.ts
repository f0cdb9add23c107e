/**
 * The versions of the whole server over HTTP: v2's envelopes and cursor lists, negotiation on `/api/...`, the version
 * headers on every API answer (problems included), the lifecycle from configuration (deprecation headers, 410 after
 * the sunset), one OpenAPI document per version and Swagger UI over them, and requests counted by version and tenant.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Testing from "../src/Testing.js"
import { call } from "./helpers.js"

const A = { "x-api-key": Testing.keys.tenantA }
const B = { "x-api-key": Testing.keys.tenantB }
const admin = { "x-api-key": Testing.keys.admin }

const zebras = "Zebras are African equines with distinctive black-and-white striped coats."

describe("API versions", () => {
  it.live("v2 answers in envelopes; v1 answers the same data as before", () =>
    Effect.gen(function*() {
      const server = yield* Testing.start()
      const v1 = `${server.url}/api/v1`
      const v2 = `${server.url}/api/v2`
      const correlation = { ...A, "x-correlation-id": "envelope-test-1" }
      const created = yield* call(`${v2}/documents`, { headers: correlation, body: { id: "z", text: zebras } })
      assert.strictEqual(created.status, 201)
      assert.deepStrictEqual(created.body.meta, { apiVersion: "v2", correlationId: "envelope-test-1" })
      assert.strictEqual(created.body.data.id, "z")
      const got2 = yield* call(`${v2}/documents/z`, { headers: A })
      const got1 = yield* call(`${v1}/documents/z`, { headers: A })
      assert.deepStrictEqual(got1.body, got2.body.data)
      const search2 = yield* call(`${v2}/search`, { headers: A, body: { query: "stripes" } })
      const search1 = yield* call(`${v1}/search`, { headers: A, body: { query: "stripes" } })
      assert.deepStrictEqual(search1.body, { results: search2.body.data })
      const ask2 = yield* call(`${v2}/ask`, { headers: A, body: { question: "What are zebras?" } })
      assert.strictEqual(ask2.body.data.sources[0].documentId, "z")
      const who = yield* call(`${v2}/whoami`, { headers: A })
      assert.strictEqual(who.body.data.tenantId, "tenant-a")
      const pipeline = yield* call(`${v2}/pipelines`, { headers: A, body: { topic: "zebras", steps: ["draft"] } })
      assert.strictEqual(pipeline.status, 201)
      const read1 = yield* call(`${v1}/pipelines/${pipeline.body.data.id}`, { headers: A })
      const read2 = yield* call(`${v2}/pipelines/${pipeline.body.data.id}`, { headers: A })
      assert.deepStrictEqual(read1.body, read2.body.data)
      // Errors are problems in every version, the same problem.
      const missing1 = yield* call(`${v1}/documents/nope`, { headers: A })
      const missing2 = yield* call(`${v2}/documents/nope`, { headers: A })
      assert.strictEqual(missing2.headers.get("content-type"), "application/problem+json")
      assert.deepStrictEqual({ ...missing1.body, correlationId: 0 }, { ...missing2.body, correlationId: 0 })
      assert.strictEqual((yield* call(`${v2}/documents/z`, { method: "DELETE", headers: A })).status, 204)
    }), { timeout: 60_000 })

  it.live("GET /api/v2/documents pages a tenant's documents with opaque cursors", () =>
    Effect.gen(function*() {
      const server = yield* Testing.start()
      const v2 = `${server.url}/api/v2`
      for (const id of ["e", "b", "a", "d", "c"]) {
        yield* call(`${v2}/documents`, { headers: A, body: { id, text: `${zebras} (${id})` } })
      }
      yield* call(`${v2}/documents`, { headers: B, body: { id: "x", text: zebras } })
      const first = yield* call(`${v2}/documents?limit=2`, { headers: A })
      assert.strictEqual(first.status, 200)
      assert.deepStrictEqual(first.body.data.map((d: { id: string }) => d.id), ["a", "b"])
      assert.strictEqual(first.body.meta.limit, 2)
      const cursor = first.body.meta.nextCursor
      assert.isString(cursor)
      // Between pages: one deleted before the cursor, one added after it, one deleted after it.
      yield* call(`${v2}/documents/a`, { method: "DELETE", headers: A })
      yield* call(`${v2}/documents`, { headers: A, body: { id: "cc", text: zebras } })
      yield* call(`${v2}/documents/e`, { method: "DELETE", headers: A })
      const second = yield* call(`${v2}/documents?limit=2&cursor=${cursor}`, { headers: A })
      assert.deepStrictEqual(second.body.data.map((d: { id: string }) => d.id), ["c", "cc"])
      const third = yield* call(`${v2}/documents?limit=2&cursor=${second.body.meta.nextCursor}`, { headers: A })
      assert.deepStrictEqual(third.body.data.map((d: { id: string }) => d.id), ["d"])
      assert.isUndefined(third.body.meta.nextCursor)
      // The default page, and the other tenant's.
      assert.strictEqual((yield* call(`${v2}/documents`, { headers: A })).body.meta.limit, 20)
      assert.deepStrictEqual(
        (yield* call(`${v2}/documents`, { headers: B })).body.data.map((d: { id: string }) => d.id),
        ["x"]
      )
      // A forged cursor and a bad limit are 400 problems.
      const forged = yield* call(`${v2}/documents?cursor=bm90LWEtY3Vyc29y`, { headers: A })
      assert.strictEqual(forged.status, 400)
      assert.strictEqual(forged.headers.get("content-type"), "application/problem+json")
      assert.strictEqual((yield* call(`${v2}/documents?limit=0`, { headers: A })).status, 400)
      assert.strictEqual((yield* call(`${v2}/documents?limit=101`, { headers: A })).status, 400)
      // No list in v1: it did not exist (the path takes POST only: a 405 that says so).
      const noList = yield* call(`${server.url}/api/v1/documents`, { headers: A })
      assert.strictEqual(noList.status, 405)
      assert.strictEqual(noList.headers.get("allow"), "POST")
    }), { timeout: 60_000 })

  it.live(
    "negotiation: the URL, else the api-version header, else the newest stable version",
    () =>
      Effect.gen(function*() {
        const server = yield* Testing.start()
        const unversioned = yield* call(`${server.url}/api/whoami`, { headers: A })
        assert.strictEqual(unversioned.headers.get("api-version"), "v2")
        assert.strictEqual(unversioned.headers.get("vary"), "api-version")
        assert.strictEqual(unversioned.body.data.tenantId, "tenant-a")
        const v1 = yield* call(`${server.url}/api/whoami`, { headers: { ...A, "api-version": "1" } })
        assert.strictEqual(v1.headers.get("api-version"), "v1")
        assert.deepStrictEqual(Object.keys(v1.body).sort(), ["roles", "subject", "tenantId"])
        // The URL wins over a header that contradicts it, and needs no Vary.
        const url = yield* call(`${server.url}/api/v1/whoami`, { headers: { ...A, "api-version": "v2" } })
        assert.strictEqual(url.headers.get("api-version"), "v1")
        assert.isNull(url.headers.get("vary"))
        assert.isUndefined(url.body.data)
        // Unknown and malformed versions: 400, naming the supported ones.
        for (const path of ["/api/v9/whoami", "/api/v1.5/whoami"]) {
          const refused = yield* call(`${server.url}${path}`, { headers: A })
          assert.strictEqual(refused.status, 400)
          assert.deepStrictEqual(refused.body.supportedVersions, ["v2", "v1"])
          assert.strictEqual(refused.headers.get("api-supported-versions"), "v2, v1")
        }
        const badHeader = yield* call(`${server.url}/api/whoami`, { headers: { ...A, "api-version": "v7" } })
        assert.strictEqual(badHeader.status, 400)
        // Every API answer carries the headers, problems and the router's 404 included; other paths do not.
        const unauthorized = yield* call(`${server.url}/api/v2/whoami`)
        assert.strictEqual(unauthorized.status, 401)
        assert.strictEqual(unauthorized.headers.get("api-version"), "v2")
        assert.strictEqual(unauthorized.headers.get("api-supported-versions"), "v2, v1")
        const notFound = yield* call(`${server.url}/api/v1/nope`, { headers: A })
        assert.strictEqual(notFound.headers.get("api-version"), "v1")
        assert.isNull((yield* call(`${server.url}/health/live`)).headers.get("api-version"))
        const versions = yield* call(`${server.url}/api/versions`)
        assert.deepStrictEqual(versions.body.supportedVersions, ["v2", "v1"])
        assert.strictEqual(versions.body.defaultVersion, "v2")
      }),
    { timeout: 60_000 }
  )

  it.live(
    "the lifecycle from the environment: deprecation headers, then 410 after the sunset",
    () =>
      Effect.gen(function*() {
        const deprecated = yield* Testing.start({
          API_VERSIONS_DEPRECATED: "v1@2025-01-01",
          API_VERSIONS_SUNSET: "v1@2099-01-01",
          API_VERSIONS_LINKS: "v1@https://example.com/migrate-v1"
        })
        const warned = yield* call(`${deprecated.url}/api/v1/whoami`, { headers: A })
        assert.strictEqual(warned.status, 200)
        assert.strictEqual(warned.headers.get("deprecation"), `@${Date.UTC(2025, 0, 1) / 1000}`)
        assert.strictEqual(warned.headers.get("sunset"), new Date(Date.UTC(2099, 0, 1)).toUTCString())
        assert.strictEqual(warned.headers.get("link"), "<https://example.com/migrate-v1>; rel=\"deprecation\"")
        const docs = yield* call(`${deprecated.url}/api/v1/openapi.json`)
        assert.isTrue(
          Object.values(docs.body.paths as Record<string, Record<string, { deprecated?: boolean }>>)
            .flatMap((ops) => Object.values(ops)).filter((op) => op.deprecated === true).length > 0
        )

        const gone = yield* Testing.start({
          API_VERSIONS_DEPRECATED: "v1@2020-01-01",
          API_VERSIONS_SUNSET: "v1@2021-01-01"
        })
        const answer = yield* call(`${gone.url}/api/v1/documents/z`, { headers: A })
        assert.strictEqual(answer.status, 410)
        assert.strictEqual(answer.headers.get("content-type"), "application/problem+json")
        assert.strictEqual(answer.body.successor, "v2")
        assert.strictEqual(answer.body.successorUrl, "/api/v2/documents/z")
        assert.include(answer.headers.get("link") ?? "", "</api/v2/documents/z>; rel=\"successor-version\"")
        assert.strictEqual(answer.headers.get("api-supported-versions"), "v2")
        assert.strictEqual((yield* call(`${gone.url}/api/v2/whoami`, { headers: A })).status, 200)
      }),
    { timeout: 60_000 }
  )

  it.live("the config file's apiVersions, under the environment", () =>
    Effect.gen(function*() {
      const dir = yield* Testing.tempDir
      const file = Path.join(dir, "config.json")
      Fs.writeFileSync(
        file,
        JSON.stringify({ apiVersions: { default: "v1", versions: { v1: { deprecated: "2026-01-01" } } } })
      )
      const server = yield* Testing.start({ OUROBOROS_CONFIG: file })
      const answer = yield* call(`${server.url}/api/whoami`, { headers: A })
      assert.strictEqual(answer.headers.get("api-version"), "v1")
      assert.isNotNull(answer.headers.get("deprecation"))
      const overridden = yield* Testing.start({ OUROBOROS_CONFIG: file, API_VERSIONS_DEFAULT: "v2" })
      assert.strictEqual((yield* call(`${overridden.url}/api/whoami`, { headers: A })).headers.get("api-version"), "v2")
      // A lifecycle that does not fit the versions stops startup.
      Fs.writeFileSync(file, JSON.stringify({ apiVersions: { versions: { v3: { preview: true } } } }))
      const refused = yield* Effect.flip(Testing.start({ OUROBOROS_CONFIG: file }))
      assert.include(String((refused as { message?: string }).message), "v3")
    }), { timeout: 60_000 })

  it.live(
    "one OpenAPI document per version, the newest at /openapi.json, Swagger UI switching between them",
    () =>
      Effect.gen(function*() {
        const server = yield* Testing.start()
        const newest = yield* call(`${server.url}/openapi.json`)
        // `info.version` is the server's version in every document; the paths tell the API versions apart.
        assert.strictEqual(newest.body.info.version, "0.1.0")
        const paths = Object.keys(newest.body.paths)
        assert.include(paths, "/api/v2/documents")
        assert.include(paths, "/admin/tenants")
        assert.include(paths, "/health/ready")
        assert.isFalse(paths.some((p) => p.startsWith("/api/v1")))
        const v1 = yield* call(`${server.url}/api/v1/openapi.json`)
        assert.strictEqual(v1.body.info.version, "0.1.0")
        assert.include(Object.keys(v1.body.paths), "/api/v1/documents")
        assert.notInclude(Object.keys(v1.body.paths), "/api/v2/documents")
        assert.deepStrictEqual((yield* call(`${server.url}/api/v2/openapi.json`)).body, newest.body)
        // Errors are declared as problems, the quota ones included.
        assert.include(JSON.stringify(newest.body.paths["/api/v2/documents"].post.responses), "403")
        const docs = yield* call(`${server.url}/docs`)
        assert.strictEqual(docs.status, 200)
        assert.include(docs.text, "/api/v1/openapi.json")
        assert.include(docs.text, "/api/v2/openapi.json")
      }),
    { timeout: 60_000 }
  )

  it.live("requests are counted by version and by tenant", () =>
    Effect.gen(function*() {
      const server = yield* Testing.start()
      // Metrics are the process's: the other tests of this file count too, so the test reads differences.
      const read = Effect.map(
        call(`${server.url}/metrics`),
        (reply) => (name: string, labels: Record<string, string>) => {
          const line = reply.text.split("\n").find((l) =>
            l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`))
          )
          return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1))
        }
      )
      const before = yield* read
      yield* call(`${server.url}/api/v1/whoami`, { headers: A })
      yield* call(`${server.url}/api/v1/whoami`, { headers: B })
      yield* call(`${server.url}/api/v2/whoami`, { headers: A })
      yield* call(`${server.url}/api/v9/whoami`, { headers: A })
      const after = yield* read
      const delta = (name: string, labels: Record<string, string>) => after(name, labels) - before(name, labels)
      assert.strictEqual(delta("api_version_requests_total", { version: "v1", outcome: "served" }), 2)
      assert.strictEqual(delta("api_version_requests_total", { version: "v2", outcome: "served" }), 1)
      assert.strictEqual(delta("api_version_requests_total", { version: "unknown", outcome: "unsupported" }), 1)
      // Callers are counted by their tenant's tier: /metrics never names a tenant.
      assert.strictEqual(delta("api_version_caller_requests_total", { version: "v1", caller: "standard" }), 2)
      assert.strictEqual(delta("api_version_caller_requests_total", { version: "v2", caller: "standard" }), 1)
      const text = (yield* call(`${server.url}/metrics`)).text
      assert.notInclude(text, "tenant-a")
      assert.notInclude(text, "tenant-b")
      assert.strictEqual((yield* call(`${server.url}/admin/tenants`, { headers: admin })).status, 200)
    }), { timeout: 60_000 })
})
