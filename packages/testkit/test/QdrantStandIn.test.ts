import { assert, describe, it } from "@effect/vitest"
import { QdrantClient } from "@qdrant/js-client-rest"
import * as Effect from "effect/Effect"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import * as QdrantStandIn from "../src/QdrantStandIn.js"

const client = (standIn: QdrantStandIn.StandIn, options: { apiKey?: string; timeout?: number } = {}) =>
  new QdrantClient({ url: standIn.url, checkCompatibility: false, ...options })

const use = <A>(f: () => Promise<A>) => Effect.promise(f)

const getJson = <A>(url: string, init?: RequestInit) =>
  Effect.promise(() => fetch(url, init).then((r) => r.json() as Promise<A>))

const failure = (f: () => Promise<unknown>) =>
  Effect.promise(async () => {
    try {
      await f()
    } catch (error) {
      return error as { readonly status?: number; readonly data?: unknown; readonly message: string }
    }
    throw new Error("expected a failure")
  })

const TENANT_A = "8d0f1c1e-5b4a-4c39-9f0e-2b1f4a7b6c01"

const seed = async (qdrant: QdrantClient, name = "docs") => {
  await qdrant.createCollection(name, {
    vectors: { size: 4, distance: "Cosine" },
    hnsw_config: { m: 0, payload_m: 16 }
  })
  await qdrant.createPayloadIndex(name, {
    field_name: "tenant_id",
    field_schema: { type: "keyword", is_tenant: true },
    wait: true
  })
  await qdrant.upsert(name, {
    wait: true,
    points: [
      { id: 1, vector: [1, 0, 0, 0], payload: { tenant_id: "a", doc: { title: "alpha", year: 2020 }, tags: ["x"] } },
      { id: 2, vector: [0.9, 0.1, 0, 0], payload: { tenant_id: "a", doc: { title: "beta", year: 2022 }, tags: ["y"] } },
      { id: 3, vector: [0, 1, 0, 0], payload: { tenant_id: "b", doc: { title: "gamma", year: 2024 }, tags: [] } },
      { id: TENANT_A, vector: [0, 0, 1, 0], payload: { tenant_id: "a", doc: { title: "delta", year: 2021 } } }
    ]
  })
}

describe("QdrantStandIn", () => {
  it.effect("answers the health, version and root endpoints like Qdrant", () =>
    Effect.gen(function*() {
      const standIn = yield* QdrantStandIn.scoped()
      const root = yield* getJson<{ version: string }>(`${standIn.url}/`)
      assert.strictEqual(root.version, QdrantStandIn.defaultVersion)
      const healthz = yield* use(() => fetch(`${standIn.url}/healthz`).then((r) => r.text()))
      assert.strictEqual(healthz, "healthz check passed")
      const readyz = yield* use(() => fetch(`${standIn.url}/readyz`).then((r) => r.status))
      assert.strictEqual(readyz, 200)
      const version = yield* use(() => client(standIn).versionInfo())
      assert.strictEqual(version.version, QdrantStandIn.defaultVersion)
    }))

  it.effect("creates collections, indexes a tenant field and reports them", () =>
    Effect.gen(function*() {
      const standIn = yield* QdrantStandIn.scoped()
      const qdrant = client(standIn)
      yield* use(() => seed(qdrant))
      const exists = yield* use(() => qdrant.collectionExists("docs"))
      assert.isTrue(exists.exists)
      assert.isFalse((yield* use(() => qdrant.collectionExists("nope"))).exists)
      const info = yield* use(() => qdrant.getCollection("docs"))
      assert.strictEqual(info.points_count, 4)
      assert.deepStrictEqual(info.config.params.vectors, { size: 4, distance: "Cosine" })
      assert.strictEqual(info.config.hnsw_config.m, 0) // echoes the multitenancy advice: no global index
      assert.strictEqual(info.config.hnsw_config.payload_m, 16)
      assert.deepStrictEqual(info.payload_schema["tenant_id"], {
        data_type: "keyword",
        params: { type: "keyword", is_tenant: true },
        points: 4
      })
      const list = yield* use(() => qdrant.getCollections())
      assert.deepStrictEqual(list.collections, [{ name: "docs" }])
      const conflict = yield* failure(() => qdrant.createCollection("docs", { vectors: { size: 4, distance: "Dot" } }))
      assert.strictEqual(conflict.status, 409)
    }))

  it.effect("queries by cosine similarity with filters, thresholds and payload selection", () =>
    Effect.gen(function*() {
      const standIn = yield* QdrantStandIn.scoped()
      const qdrant = client(standIn)
      yield* use(() => seed(qdrant))
      const all = yield* use(() => qdrant.query("docs", { query: [1, 0, 0, 0], limit: 10, with_payload: true }))
      assert.deepStrictEqual(all.points.map((p) => p.id), [1, 2, 3, TENANT_A])
      assert.closeTo(all.points[0]!.score, 1, 1e-6)
      assert.closeTo(all.points[1]!.score, 0.9 / Math.sqrt(0.82), 1e-6)
      assert.isNumber(all.points[0]!.version)

      const tenant = yield* use(() =>
        qdrant.query("docs", {
          query: [0, 0.2, 1, 0],
          filter: { must: [{ key: "tenant_id", match: { value: "a" } }] },
          limit: 2,
          with_payload: ["doc.title"]
        })
      )
      assert.deepStrictEqual(tenant.points.map((p) => p.id), [TENANT_A, 2])
      assert.deepStrictEqual(tenant.points[0]!.payload, { doc: { title: "delta" } })

      const ranged = yield* use(() =>
        qdrant.query("docs", {
          query: { nearest: [1, 0, 0, 0] },
          filter: {
            must: [{ key: "doc.year", range: { gte: 2021 } }],
            must_not: [{ has_id: [TENANT_A] }],
            should: [{ key: "tenant_id", match: { any: ["a", "b"] } }]
          },
          score_threshold: 0.5,
          with_vector: true
        })
      )
      assert.deepStrictEqual(ranged.points.map((p) => p.id), [2])
      assert.isUndefined(ranged.points[0]!.payload)
      const vector = ranged.points[0]!.vector as Array<number>
      assert.closeTo(Math.hypot(...vector), 1, 1e-6) // normalised on upsert, like Qdrant

      const nested = yield* use(() =>
        qdrant.query("docs", {
          query: [1, 0, 0, 0],
          filter: { should: [{ must: [{ key: "tags", match: { value: "y" } }] }, { is_empty: { key: "tags" } }] },
          offset: 1
        })
      )
      assert.deepStrictEqual(nested.points.map((p) => p.id), [3, TENANT_A])

      yield* use(() =>
        qdrant.setPayload("docs", { payload: { at: "2024-05-01T00:00:00Z" }, points: [1, 2], wait: true })
      )
      yield* use(() => qdrant.setPayload("docs", { payload: { at: "2025-05-01T00:00:00Z" }, points: [2], wait: true }))
      const since = yield* use(() =>
        qdrant.count("docs", { filter: { must: [{ key: "at", range: { gte: "2025-01-01T00:00:00Z" } }] } })
      )
      assert.strictEqual(since.count, 1)
      const legacy = yield* getJson<{ result: Array<{ id: number; score: number }> }>(
        `${standIn.url}/collections/docs/points/search`,
        {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ vector: [0, 1, 0, 0], limit: 1 })
        }
      )
      assert.deepStrictEqual(legacy.result.map((p) => p.id), [3])
      assert.closeTo(legacy.result[0]!.score, 1, 1e-6)
    }))

  it.effect("scrolls in id order with pages, counts and deletes by filter", () =>
    Effect.gen(function*() {
      const standIn = yield* QdrantStandIn.scoped()
      const qdrant = client(standIn)
      yield* use(() => seed(qdrant))
      const first = yield* use(() => qdrant.scroll("docs", { limit: 2 }))
      assert.deepStrictEqual(first.points.map((p) => p.id), [1, 2])
      assert.strictEqual(first.next_page_offset, 3)
      assert.deepStrictEqual(first.points[0]!.payload?.["doc"], { title: "alpha", year: 2020 })
      const second = yield* use(() => qdrant.scroll("docs", { limit: 2, offset: 3 }))
      assert.deepStrictEqual(second.points.map((p) => p.id), [3, TENANT_A])
      assert.isNull(second.next_page_offset)

      assert.strictEqual((yield* use(() => qdrant.count("docs"))).count, 4)
      const tenantA = { must: [{ key: "tenant_id", match: { value: "a" } }] }
      assert.strictEqual((yield* use(() => qdrant.count("docs", { filter: tenantA }))).count, 3)
      const deleted = yield* use(() => qdrant.delete("docs", { wait: true, filter: tenantA }))
      assert.strictEqual(deleted.status, "completed")
      assert.strictEqual((yield* use(() => qdrant.count("docs"))).count, 1)
      yield* use(() => qdrant.delete("docs", { wait: true, points: [3] }))
      assert.strictEqual((yield* use(() => qdrant.count("docs"))).count, 0)
    }))

  it.effect("retrieves points and updates payloads", () =>
    Effect.gen(function*() {
      const standIn = yield* QdrantStandIn.scoped()
      const qdrant = client(standIn)
      yield* use(() => seed(qdrant))
      yield* use(() => qdrant.setPayload("docs", { payload: { reviewed: true }, points: [1], wait: true }))
      const points = yield* use(() => qdrant.retrieve("docs", { ids: [1, 99, TENANT_A.toUpperCase()] }))
      assert.deepStrictEqual(points.map((p) => p.id), [1, TENANT_A])
      assert.strictEqual(points[0]!.payload?.["reviewed"], true)
      yield* use(() => qdrant.overwritePayload("docs", { payload: { only: 1 }, points: [2], wait: true }))
      yield* use(() => qdrant.deletePayload("docs", { keys: ["tags"], points: [1], wait: true }))
      const after = yield* use(() => qdrant.retrieve("docs", { ids: [1, 2] }))
      assert.deepStrictEqual(after[1]!.payload, { only: 1 })
      assert.isFalse("tags" in after[0]!.payload!)
      const one = yield* getJson<{ result: { payload: unknown } }>(`${standIn.url}/collections/docs/points/2`)
      assert.deepStrictEqual(one.result.payload, { only: 1 })
    }))

  it.effect("answers errors in Qdrant's envelope", () =>
    Effect.gen(function*() {
      const standIn = yield* QdrantStandIn.scoped()
      const qdrant = client(standIn)
      yield* use(() => seed(qdrant))
      const wrongDim = yield* failure(() =>
        qdrant.upsert("docs", { wait: true, points: [{ id: 9, vector: [1, 2, 3] }] })
      )
      assert.strictEqual(wrongDim.status, 400)
      assert.deepInclude(wrongDim.data as object, {
        status: { error: "Wrong input: Vector dimension error: expected dim: 4, got 3" }
      })
      const missing = yield* failure(() => qdrant.getCollection("missing"))
      assert.strictEqual(missing.status, 404)
      assert.strictEqual(
        (missing.data as { status: { error: string } }).status.error,
        "Not found: Collection `missing` doesn't exist!"
      )
      assert.isNumber((missing.data as { time: number }).time)
      const badId = yield* failure(() =>
        qdrant.upsert("docs", { points: [{ id: "not-a-uuid", vector: [1, 0, 0, 0] }] })
      )
      assert.strictEqual(badId.status, 400)
      const badJson = yield* use(() =>
        fetch(`${standIn.url}/collections/docs/points/scroll`, {
          method: "POST",
          body: "{",
          headers: { "content-type": "application/json" }
        })
      )
      assert.strictEqual(badJson.status, 400)
      const badJsonBody = (yield* use(() => badJson.json())) as { status: { error: string } }
      assert.match(badJsonBody.status.error, /^Json deserialize error/)
      assert.strictEqual((yield* use(() => fetch(`${standIn.url}/nowhere`))).status, 404)
    }))

  it.effect("supports the rest of the filter language", () =>
    Effect.gen(function*() {
      const standIn = yield* QdrantStandIn.scoped()
      const qdrant = client(standIn)
      yield* use(() => qdrant.createCollection("f", { vectors: { size: 2, distance: "Euclid" } }))
      yield* use(() =>
        qdrant.upsert("f", {
          batch: {
            ids: [10, 11, 12],
            vectors: [[0, 0], [3, 4], [6, 8]],
            payloads: [
              { kind: "note", body: "hello world", parts: [{ n: 1 }, { n: 2 }], gone: null },
              { kind: "mail", body: "goodbye", parts: [{ n: 3 }] },
              { kind: "page", body: "hello again" }
            ]
          }
        })
      )
      const ids = (filter: Record<string, unknown>) =>
        use(() => qdrant.scroll("f", { filter, limit: 10 }).then((r) => r.points.map((p) => p.id)))
      assert.deepStrictEqual(yield* ids({ must: [{ key: "kind", match: { except: ["note", "page"] } }] }), [11])
      assert.deepStrictEqual(yield* ids({ must: [{ key: "body", match: { text: "hello" } }] }), [10, 12])
      assert.deepStrictEqual(yield* ids({ must: [{ key: "parts", values_count: { gte: 2 } }] }), [10])
      assert.deepStrictEqual(yield* ids({ must: [{ is_null: { key: "gone" } }] }), [10])
      assert.deepStrictEqual(yield* ids({ must: [{ key: "parts[].n", match: { value: 3 } }] }), [11])
      assert.deepStrictEqual(
        yield* ids({ must: [{ nested: { key: "parts", filter: { must: [{ key: "n", range: { gt: 1 } }] } } }] }),
        [10, 11]
      )
      assert.deepStrictEqual(
        yield* ids({
          min_should: {
            conditions: [
              { has_id: [10, 12] },
              { key: "body", match: { text: "again" } },
              { key: "kind", match: { value: "page" } }
            ],
            min_count: 2
          }
        }),
        [12]
      )
      // values are float32 but read back as written, like Qdrant's JSON
      yield* use(() => qdrant.upsert("f", { points: [{ id: 13, vector: [0.6, 0.1], payload: {} }] }))
      const written = yield* use(() => qdrant.retrieve("f", { ids: [13], with_vector: true }))
      assert.deepStrictEqual(written[0]!.vector, [0.6, 0.1])
      yield* use(() => qdrant.delete("f", { points: [13] }))
      // Euclid: the score is the distance, smaller first; a point id can stand for its vector
      const near = yield* use(() => qdrant.query("f", { query: 11, limit: 3 }))
      assert.deepStrictEqual(near.points.map((p) => [p.id, p.score]), [[11, 0], [10, 5], [12, 5]])
      const within = yield* use(() => qdrant.query("f", { query: [0, 0], score_threshold: 5 }))
      assert.deepStrictEqual(within.points.map((p) => p.id), [10, 11])

      const batch = yield* use(() =>
        qdrant.batchUpdate("f", {
          operations: [
            { upsert: { points: [{ id: 20, vector: [1, 1], payload: { kind: "tmp" } }] } },
            { set_payload: { payload: { seen: true }, points: [20] } },
            { delete: { filter: { must: [{ key: "kind", match: { value: "tmp" } }] } } }
          ]
        })
      )
      assert.deepStrictEqual(batch.map((r) => r.status), ["completed", "completed", "completed"])
      assert.strictEqual((yield* use(() => qdrant.count("f"))).count, 3)

      yield* use(() => qdrant.clearPayload("f", { points: [10] }))
      const cleared = yield* use(() => qdrant.retrieve("f", { ids: [10] }))
      assert.deepStrictEqual(cleared[0]!.payload, {})
      yield* use(() => qdrant.createPayloadIndex("f", { field_name: "kind", field_schema: "keyword" }))
      yield* use(() => qdrant.deletePayloadIndex("f", "kind"))
      assert.deepStrictEqual((yield* use(() => qdrant.getCollection("f"))).payload_schema, {})
      assert.isTrue(yield* use(() => qdrant.deleteCollection("f")))
      assert.isFalse(yield* use(() => qdrant.deleteCollection("f")))
    }))

  it.effect("rejects invalid requests like Qdrant", () =>
    Effect.gen(function*() {
      const standIn = yield* QdrantStandIn.scoped()
      const qdrant = client(standIn)
      const badSize = yield* failure(() => qdrant.createCollection("x", { vectors: { size: 0, distance: "Cosine" } }))
      assert.strictEqual(badSize.status, 400)
      const badDistance = yield* failure(() =>
        qdrant.createCollection("x", { vectors: { size: 2, distance: "Hamming" as "Dot" } })
      )
      assert.strictEqual(badDistance.status, 400)
      yield* use(() => qdrant.createCollection("x", { vectors: { size: 2, distance: "Dot" } }))
      const prefetch = yield* failure(() => qdrant.query("x", { prefetch: { query: [1, 0] }, query: [1, 0] }))
      assert.strictEqual(prefetch.status, 400)
      const badFilter = yield* failure(() => qdrant.count("x", { filter: { must: [{ nonsense: true } as never] } }))
      assert.strictEqual(badFilter.status, 400)
      const missingPoint = yield* failure(() => qdrant.query("x", { query: 42 }))
      assert.strictEqual(missingPoint.status, 404)
      const noPoint = yield* use(() => fetch(`${standIn.url}/collections/x/points/7`))
      assert.strictEqual(noPoint.status, 404)
      const badIndex = yield* failure(() =>
        qdrant.createPayloadIndex("x", { field_name: "a", field_schema: "nonsense" as "keyword" })
      )
      assert.strictEqual(badIndex.status, 400)
    }))

  it.effect("requires the api key when one is configured", () =>
    Effect.gen(function*() {
      const standIn = yield* QdrantStandIn.scoped({ apiKey: "secret" })
      const denied = yield* failure(() => client(standIn).getCollections())
      assert.strictEqual(denied.status, 401)
      const wrong = yield* failure(() => client(standIn, { apiKey: "nope" }).getCollections())
      assert.strictEqual(wrong.status, 401)
      const allowed = yield* use(() => client(standIn, { apiKey: "secret" }).getCollections())
      assert.deepStrictEqual(allowed.collections, [])
      assert.strictEqual(standIn.requests.at(-1)?.headers["api-key"], "secret")
      assert.strictEqual((yield* use(() => fetch(`${standIn.url}/healthz`))).status, 200)
    }))

  it.effect("snapshots round-trip through download, upload and recover", () =>
    Effect.gen(function*() {
      const standIn = yield* QdrantStandIn.scoped()
      const qdrant = client(standIn)
      yield* use(() => seed(qdrant))
      const before = yield* use(() => qdrant.scroll("docs", { limit: 100, with_vector: true }))
      const snapshot = yield* use(() => qdrant.createSnapshot("docs"))
      assert.isNotNull(snapshot)
      const { checksum, name, size } = snapshot!
      const listed = yield* use(() => qdrant.listSnapshots("docs"))
      assert.deepStrictEqual(listed.map((s) => s.name), [name])

      const download = yield* use(() => fetch(`${standIn.url}/collections/docs/snapshots/${name}`))
      assert.strictEqual(download.headers.get("content-type"), "application/octet-stream")
      const bytes = new Uint8Array(yield* use(() => download.arrayBuffer()))
      assert.strictEqual(bytes.length, size)

      // upload into a fresh stand-in
      const other = yield* QdrantStandIn.scoped()
      const form = new FormData()
      form.append("snapshot", new Blob([bytes]), name)
      const uploaded = yield* getJson<{ result: boolean }>(
        `${other.url}/collections/restored/snapshots/upload?priority=snapshot&checksum=${checksum}`,
        { method: "POST", body: form }
      )
      assert.strictEqual(uploaded.result, true)
      const restored = yield* use(() => client(other).scroll("restored", { limit: 100, with_vector: true }))
      assert.deepStrictEqual(restored, before)
      const info = yield* use(() => client(other).getCollection("restored"))
      assert.strictEqual(info.payload_schema["tenant_id"]?.data_type, "keyword")
      assert.strictEqual(info.config.hnsw_config.payload_m, 16)

      // recover from a file:// location, then from the stand-in's own URL after the collection is gone
      const dir = yield* Effect.acquireRelease(
        use(() => mkdtemp(join(tmpdir(), "qdrant-stand-in-"))),
        (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
      )
      const file = join(dir, name)
      yield* use(() => writeFile(file, bytes))
      yield* use(() => client(other).recoverSnapshot("from-file", { location: pathToFileURL(file).href }))
      const fromFile = yield* use(() => client(other).scroll("from-file", { limit: 100, with_vector: true }))
      assert.deepStrictEqual(fromFile, before)

      yield* use(() => qdrant.deleteCollection("docs"))
      yield* use(() =>
        qdrant.recoverSnapshot("docs", {
          location: `${standIn.url}/collections/docs/snapshots/${name}`,
          checksum: checksum ?? null
        })
      )
      assert.deepStrictEqual(yield* use(() => qdrant.scroll("docs", { limit: 100, with_vector: true })), before)

      // recover over HTTP from another stand-in
      yield* use(() =>
        client(other).recoverSnapshot("from-http", { location: `${standIn.url}/collections/docs/snapshots/${name}` })
      )
      const fromHttp = yield* use(() => client(other).scroll("from-http", { limit: 100, with_vector: true }))
      assert.deepStrictEqual(fromHttp, before)
      const missingFile = yield* failure(() =>
        client(other).recoverSnapshot("x", { location: pathToFileURL(join(dir, "missing.snapshot")).href })
      )
      assert.strictEqual(missingFile.status, 404)

      const mismatch = yield* failure(() =>
        qdrant.recoverSnapshot("docs", { location: `${standIn.url}/collections/docs/snapshots/${name}`, checksum: "0" })
      )
      assert.strictEqual(mismatch.status, 400)
      assert.isTrue(yield* use(() => qdrant.deleteSnapshot("docs", name)))
      assert.deepStrictEqual(yield* use(() => qdrant.listSnapshots("docs")), [])
      const gone = yield* use(() => fetch(`${standIn.url}/collections/docs/snapshots/${name}`))
      assert.strictEqual(gone.status, 404)
    }))
})
