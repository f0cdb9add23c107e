/**
 * The contract every VectorStore backend satisfies, run against the embedded store and against Qdrant (stand-in).
 */
import { assert, layer } from "@effect/vitest"
import * as TenantId from "@ouroboros/kernel/TenantId"
import { Arbitrary, Effect, Layer, Option, Result, Schema } from "effect"
import { createHash, randomBytes } from "node:crypto"
import * as Filter from "../src/Filter.js"
import { type Point, VectorStore, type VectorStoreError } from "../src/VectorStore.js"

export const acme = TenantId.make("acme")
export const globex = TenantId.make("globex")

export const fresh = (prefix = "c") => `${prefix}_${randomBytes(6).toString("hex")}`

/** A unit vector along `axis` tilted by `tilt` towards the next axis: its cosine with axis `axis` is known. */
export const tilted = (dimensions: number, axis: number, tilt: number): Array<number> => {
  const v = new Array<number>(dimensions).fill(0)
  v[axis % dimensions] = Math.cos(tilt)
  v[(axis + 1) % dimensions] = Math.sin(tilt)
  return v
}

const cosine = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) => {
  let dot = 0, na = 0, nb = 0
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!
    na += a[i]! * a[i]!
    nb += b[i]! * b[i]!
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb)
}

const close = (actual: number, expected: number, message?: string) =>
  assert.isTrue(Math.abs(actual - expected) < 1e-4, `${message ?? "score"}: ${actual} vs ${expected}`)

const docs: ReadonlyArray<Point> = [
  {
    id: "a",
    vector: tilted(4, 0, 0.1),
    payload: { lang: "en", year: 2020, tags: ["x", "y"], meta: { source: "web" } }
  },
  { id: "b", vector: tilted(4, 0, 0.3), payload: { lang: "fr", year: 2021, tags: ["y"], meta: { source: "pdf" } } },
  { id: "c", vector: tilted(4, 0, 0.6), payload: { lang: "en", year: 2022, tags: ["z"], meta: { source: "pdf" } } },
  { id: "d", vector: tilted(4, 0, 1.0), payload: { lang: "de", year: 2023, tags: [], meta: { source: "web" } } },
  { id: "e", vector: tilted(4, 2, 0.2), payload: { lang: "en", year: 2024, tags: ["x"], meta: { source: "web" } } }
]
const query = tilted(4, 0, 0)

const seed = (name: string) =>
  Effect.gen(function*() {
    const store = yield* VectorStore
    yield* store.ensureCollection({ name, dimensions: 4, embedder: "test-4" })
    yield* store.upsert(name, acme, docs)
    return store
  })

const ids = (hits: ReadonlyArray<{ readonly id: string }>) => hits.map((h) => h.id)

export const contract = <E>(name: string, storeLayer: Layer.Layer<VectorStore, E>) =>
  layer(storeLayer, { excludeTestServices: true, timeout: "60 seconds" })(`VectorStore contract: ${name}`, (it) => {
    it.effect("ensureCollection creates, is idempotent, and reports a size mismatch naming both sizes", () =>
      Effect.gen(function*() {
        const store = yield* VectorStore
        const name = fresh()
        assert.isTrue(Option.isNone(yield* store.collectionInfo(name)))
        const created = yield* store.ensureCollection({ name, dimensions: 4, embedder: "m1" })
        assert.deepStrictEqual([created.name, created.dimensions, created.distance, created.count], [
          name,
          4,
          "Cosine",
          0
        ])
        const again = yield* store.ensureCollection({ name, dimensions: 4 })
        assert.strictEqual(again.dimensions, 4)
        const info = yield* store.collectionInfo(name)
        assert.isTrue(Option.isSome(info))
        const mismatch = yield* Effect.flip(store.ensureCollection({ name, dimensions: 8 }))
        assert.strictEqual(mismatch._tag, "DimensionMismatch")
        if (mismatch._tag === "DimensionMismatch") {
          assert.strictEqual(mismatch.expected, 4)
          assert.strictEqual(mismatch.actual, 8)
          assert.match(mismatch.detail, /4 dimensions/)
          assert.match(mismatch.detail, /8/)
        }
        const listed = yield* store.listCollections
        assert.isTrue(listed.some((c) => c.name === name))
        yield* store.drop(name)
        assert.isTrue(Option.isNone(yield* store.collectionInfo(name)))
        yield* store.drop(name) // dropping a missing collection is fine
      }))

    it.effect("search orders by cosine similarity and returns ids, scores and payloads", () =>
      Effect.gen(function*() {
        const name = fresh()
        const store = yield* seed(name)
        const hits = yield* store.search(name, acme, { vector: query, limit: 3 })
        assert.deepStrictEqual(ids(hits), ["a", "b", "c"])
        close(hits[0]!.score, Math.cos(0.1))
        close(hits[1]!.score, Math.cos(0.3))
        close(hits[2]!.score, Math.cos(0.6))
        assert.deepStrictEqual(hits[0]!.payload, docs[0]!.payload)
        const all = yield* store.search(name, acme, { vector: query, limit: 100 })
        assert.deepStrictEqual(ids(all), ["a", "b", "c", "d", "e"])
        const threshold = yield* store.search(name, acme, { vector: query, limit: 10, scoreThreshold: Math.cos(0.45) })
        assert.deepStrictEqual(ids(threshold), ["a", "b"])
        assert.deepStrictEqual(yield* store.search(name, acme, { vector: query, limit: 0 }), [])
        // Vectors are compared by direction only.
        const scaled = yield* store.search(name, acme, { vector: query.map((x) => x * 42), limit: 1 })
        close(scaled[0]!.score, Math.cos(0.1))
        assert.strictEqual(yield* store.count(name, acme), 5)
        assert.strictEqual(yield* store.count(name, undefined), 5)
        yield* store.drop(name)
      }))

    it.effect("filters: match value and any, range, nested keys, arrays, should and must_not", () =>
      Effect.gen(function*() {
        const name = fresh()
        const store = yield* seed(name)
        const search = (filter: Filter.Filter) =>
          Effect.map(store.search(name, acme, { vector: query, limit: 10, filter }), ids)
        assert.deepStrictEqual(yield* search({ must: [{ key: "lang", match: { value: "en" } }] }), ["a", "c", "e"])
        assert.deepStrictEqual(yield* search({ must: [{ key: "lang", match: { any: ["fr", "de"] } }] }), ["b", "d"])
        assert.deepStrictEqual(yield* search({ must: [{ key: "year", range: { gte: 2021, lt: 2023 } }] }), ["b", "c"])
        assert.deepStrictEqual(yield* search({ must: [{ key: "meta.source", match: { value: "pdf" } }] }), ["b", "c"])
        assert.deepStrictEqual(yield* search({ must: [{ key: "tags", match: { value: "x" } }] }), ["a", "e"])
        assert.deepStrictEqual(yield* search({ must_not: [{ key: "lang", match: { value: "en" } }] }), ["b", "d"])
        assert.deepStrictEqual(
          yield* search({ should: [{ key: "year", range: { lte: 2020 } }, { key: "year", range: { gte: 2024 } }] }),
          ["a", "e"]
        )
        assert.deepStrictEqual(
          yield* search({
            must: [{ key: "lang", match: { value: "en" } }],
            must_not: [{
              should: [{ key: "year", range: { gt: 2023 } }, { key: "meta.source", match: { value: "pdf" } }]
            }]
          }),
          ["a"]
        )
        assert.strictEqual(yield* store.count(name, acme, { must: [{ key: "lang", match: { value: "en" } }] }), 3)
        yield* store.drop(name)
      }))

    it.effect("rejects invalid filters with InvalidFilter naming the field", () =>
      Effect.gen(function*() {
        const name = fresh()
        const store = yield* seed(name)
        const reserved = yield* Effect.flip(
          store.search(name, acme, {
            vector: query,
            limit: 1,
            filter: { must: [{ key: "tenant_id", match: { value: "globex" } }] }
          })
        )
        assert.strictEqual(reserved._tag, "InvalidFilter")
        if (reserved._tag === "InvalidFilter") assert.match(reserved.detail, /filter\.must\[0\]\.key/)
        const empty = yield* Effect.flip(store.count(name, acme, { must: [{ key: "year", range: {} }] }))
        assert.strictEqual(empty._tag, "InvalidFilter")
        const decoded = yield* Effect.flip(Filter.decodeUnknown({ must: [{ key: "lang", match: { nope: 1 } }] }))
        assert.match(decoded.detail, /^filter\.must\.0/)
        yield* store.drop(name)
      }))

    it.effect("isolates tenants: same ids, searches, counts, deletes and filters stay within the tenant", () =>
      Effect.gen(function*() {
        const name = fresh()
        const store = yield* seed(name)
        yield* store.upsert(name, globex, [{ id: "a", vector: query, payload: { lang: "en", owner: "globex" } }])
        assert.strictEqual(yield* store.count(name, acme), 5)
        assert.strictEqual(yield* store.count(name, globex), 1)
        assert.strictEqual(yield* store.count(name, undefined), 6)
        const g = yield* store.search(name, globex, { vector: query, limit: 10 })
        assert.deepStrictEqual(ids(g), ["a"])
        assert.strictEqual(g[0]!.payload.owner, "globex")
        const a = yield* store.search(name, acme, { vector: query, limit: 10 })
        assert.isFalse(a.some((hit) => hit.payload.owner === "globex"))
        // A `should` cannot widen the search beyond the tenant.
        const widened = yield* store.search(name, globex, {
          vector: query,
          limit: 10,
          filter: { should: [{ key: "lang", match: { any: ["en", "fr", "de"] } }] }
        })
        assert.deepStrictEqual(ids(widened), ["a"])
        // Deleting globex's "a" leaves acme's "a".
        yield* store.delete(name, globex, { ids: ["a"] })
        assert.strictEqual(yield* store.count(name, globex), 0)
        assert.strictEqual(yield* store.count(name, acme), 5)
        // Deleting by a filter touches only the tenant's points.
        yield* store.upsert(name, globex, [{ id: "z", vector: query, payload: { lang: "en" } }])
        yield* store.delete(name, globex, { filter: { must: [{ key: "lang", match: { value: "en" } }] } })
        assert.strictEqual(yield* store.count(name, globex), 0)
        assert.strictEqual(yield* store.count(name, acme, { must: [{ key: "lang", match: { value: "en" } }] }), 3)
        yield* store.drop(name)
      }))

    it.effect("upsert replaces by id; delete by ids and by filter", () =>
      Effect.gen(function*() {
        const name = fresh()
        const store = yield* seed(name)
        yield* store.upsert(name, acme, [{ id: "d", vector: query, payload: { lang: "en", year: 1999 } }])
        assert.strictEqual(yield* store.count(name, acme), 5)
        const top = yield* store.search(name, acme, { vector: query, limit: 1 })
        assert.strictEqual(top[0]!.id, "d")
        assert.deepStrictEqual(top[0]!.payload, { lang: "en", year: 1999 })
        yield* store.delete(name, acme, { ids: ["a", "missing"] })
        assert.strictEqual(yield* store.count(name, acme), 4)
        yield* store.delete(name, acme, { filter: { must: [{ key: "lang", match: { value: "en" } }] } })
        assert.deepStrictEqual(ids(yield* store.search(name, acme, { vector: query, limit: 10 })), ["b"])
        yield* store.upsert(name, acme, []) // a no-op
        yield* store.drop(name)
      }))

    it.effect("wrong-size vectors and unknown collections are typed errors", () =>
      Effect.gen(function*() {
        const name = fresh()
        const store = yield* seed(name)
        const up = yield* Effect.flip(store.upsert(name, acme, [{ id: "x", vector: [1, 2, 3], payload: {} }]))
        assert.strictEqual(up._tag, "DimensionMismatch")
        const se = yield* Effect.flip(store.search(name, acme, { vector: [1, 2], limit: 1 }))
        assert.strictEqual(se._tag, "DimensionMismatch")
        assert.strictEqual(yield* store.count(name, acme), 5, "a rejected batch writes nothing")
        const missing = yield* Effect.flip(store.search(fresh("missing"), acme, { vector: query, limit: 1 }))
        assert.strictEqual(missing._tag, "VectorStoreError")
        if (missing._tag === "VectorStoreError") assert.strictEqual(missing.reason, "NotFound")
        const badName = yield* Effect.flip(store.ensureCollection({ name: "../etc", dimensions: 4 }))
        assert.strictEqual(badName._tag, "VectorStoreError")
        yield* store.drop(name)
      }))

    it.effect("snapshot → drop → restore round trip keeps points, scores, tenants and payloads", () =>
      Effect.gen(function*() {
        const name = fresh()
        const store = yield* seed(name)
        yield* store.upsert(name, globex, [{ id: "g", vector: query, payload: { owner: "globex" } }])
        const before = yield* store.search(name, acme, { vector: query, limit: 10 })
        const snapshot = yield* store.snapshot(name)
        assert.strictEqual(snapshot.count, 6)
        assert.strictEqual(snapshot.dimensions, 4)
        assert.strictEqual(snapshot.sha256, createHash("sha256").update(snapshot.bytes).digest("hex"))
        assert.instanceOf(snapshot.bytes, Uint8Array)
        yield* store.drop(name)
        const restored = yield* store.restore(name, snapshot.bytes)
        assert.strictEqual(restored.count, 6)
        assert.strictEqual(restored.dimensions, 4)
        const after = yield* store.search(name, acme, { vector: query, limit: 10 })
        assert.deepStrictEqual(ids(after), ids(before))
        after.forEach((hit, i) => close(hit.score, before[i]!.score))
        assert.deepStrictEqual(after.map((h) => h.payload), before.map((h) => h.payload))
        assert.strictEqual(yield* store.count(name, globex), 1)
        // Restore over an existing collection replaces its content.
        yield* store.upsert(name, acme, [{ id: "new", vector: query, payload: {} }])
        yield* store.restore(name, snapshot.bytes)
        assert.strictEqual(yield* store.count(name, acme), 5)
        // Restore into another name.
        const copy = fresh("copy")
        yield* store.restore(copy, snapshot.bytes)
        assert.strictEqual(yield* store.count(copy, undefined), 6)
        // Garbage is refused.
        const bad = yield* Effect.result(
          store.restore(fresh("bad"), new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]))
        )
        assert.isTrue(Result.isFailure(bad))
        yield* store.drop(name)
        yield* store.drop(copy)
      }))

    it.effect("search agrees with a brute-force cosine reference (property)", () =>
      Effect.gen(function*() {
        const store = yield* VectorStore
        const name = fresh()
        yield* store.ensureCollection({ name, dimensions: 8 })
        // Components on a 1e-3 grid: vectors are stored as float32 (as in Qdrant), where 1e-50 is 0.
        const integer = (minimum: number, maximum: number) =>
          Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum, maximum })))
        const component = integer(-1000, 1000).pipe(Arbitrary.map((n) => n / 1000))
        const vector = Arbitrary.array(component, { minLength: 8, maxLength: 8 })
        const samples = yield* Arbitrary.sampleEffect(
          Arbitrary.all({
            points: Arbitrary.array(vector, { minLength: 1, maxLength: 40 }),
            query: vector,
            limit: integer(1, 10)
          }),
          // size 40: point lists of every length up to the maximum, as fast-check generated them.
          { count: 15, seed: 42, size: 40 }
        )
        for (const [run, sample] of samples.entries()) {
          const tenant = TenantId.make(`t${run}`)
          const points = sample.points.map((v, i) => ({ id: `p${i}`, vector: v, payload: { i } }))
          yield* store.upsert(name, tenant, points)
          const hits = yield* store.search(name, tenant, { vector: sample.query, limit: sample.limit })
          const reference = points.map((p) => cosine(p.vector, sample.query)).sort((a, b) => b - a)
          assert.strictEqual(hits.length, Math.min(sample.limit, points.length))
          hits.forEach((hit, i) => {
            close(hit.score, reference[i]!, `rank ${i}`)
            close(hit.score, cosine(points[Number(hit.id.slice(1))]!.vector, sample.query), `hit ${hit.id}`)
          })
        }
        yield* store.drop(name)
      }))
  })

export type { VectorStoreError }
