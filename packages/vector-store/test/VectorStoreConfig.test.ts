import { assert, describe, it } from "@effect/vitest"
import { TenantId } from "@ouroboros/kernel"
import * as QdrantStandIn from "@ouroboros/testkit/QdrantStandIn"
import { Cause, ConfigProvider, Effect, Layer, Option, Schema } from "effect"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { vi } from "vitest"
import * as Filter from "../src/Filter.js"
import { DimensionMismatch, VectorStore } from "../src/VectorStore.js"
import * as VectorStoreConfig from "../src/VectorStoreConfig.js"

const withEnv = (env: Record<string, string>) => ConfigProvider.layer(ConfigProvider.fromEnv({ env }))

describe("VectorStoreConfig", () => {
  it.effect("without QDRANT_URL: the embedded store under DATA_DIR/vectors", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "ouroboros-vs-cfg-"))),
        (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
      )
      yield* Effect.scoped(
        Effect.gen(function*() {
          const store = yield* VectorStore
          yield* store.ensureCollection({ name: "chunks", dimensions: 3 })
        }).pipe(Effect.provide(VectorStoreConfig.layerConfig().pipe(Layer.provide(withEnv({ DATA_DIR: dir })))))
      )
      const files = yield* Effect.promise(() => fs.readdir(path.join(dir, "vectors", "chunks")))
      assert.include(files, "snapshot")
    }))

  it.live("with QDRANT_URL: the Qdrant adapter, with the API key", () =>
    Effect.gen(function*() {
      const standIn = yield* QdrantStandIn.scoped({ apiKey: "k" })
      const info = yield* Effect.gen(function*() {
        const store = yield* VectorStore
        yield* store.ensureCollection({ name: "chunks", dimensions: 3 })
        return yield* store.collectionInfo("chunks")
      }).pipe(
        Effect.provide(
          VectorStoreConfig.layerConfig().pipe(Layer.provide(withEnv({ QDRANT_URL: standIn.url, QDRANT_API_KEY: "k" })))
        )
      )
      assert.isTrue(Option.isSome(info))
      assert.isTrue(standIn.requests.some((r) => r.path === "/collections/chunks" && r.method === "PUT"))
    }))

  it.live("QDRANT_TIMEOUT_MS bounds each Qdrant call, and `qdrant` wraps the Qdrant layer", () =>
    Effect.gen(function*() {
      const standIn = yield* QdrantStandIn.scoped({})
      standIn.faults.set({ hang: true })
      let wrapped = 0
      const layer = VectorStoreConfig.layerConfig({
        qdrant: (inner) => {
          wrapped++
          return inner
        }
      }).pipe(Layer.provide(withEnv({ QDRANT_URL: standIn.url, QDRANT_TIMEOUT_MS: "150" })))
      const error = yield* Effect.flip(
        Effect.flatMap(VectorStore, (store) => store.ensureCollection({ name: "chunks", dimensions: 3 })).pipe(
          Effect.provide(layer),
          // Only bounds the test: the call must end by the configured deadline, long before this one.
          Effect.timeoutOrElse({ duration: "20 seconds", orElse: () => Effect.die("QDRANT_TIMEOUT_MS was ignored") })
        )
      )
      assert.strictEqual(error._tag, "VectorStoreError")
      assert.strictEqual(error._tag === "VectorStoreError" && error.reason, "Timeout")
      assert.include(error.message, "150")
      assert.strictEqual(wrapped, 1)
    }))

  it.effect("VECTOR_STORE_FSYNC=false turns off the embedded store's fsyncs; `directory` places it", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "ouroboros-vs-cfg-"))),
        (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
      )
      // Every fsync goes through a FileHandle: count them.
      const probe = yield* Effect.promise(() => fs.open(path.join(dir, "probe"), "w"))
      const proto = Object.getPrototypeOf(probe) as { sync: () => Promise<void>; datasync: () => Promise<void> }
      yield* Effect.promise(() => probe.close())
      const sync = vi.spyOn(proto, "sync")
      const datasync = vi.spyOn(proto, "datasync")
      yield* Effect.addFinalizer(() => Effect.sync(() => vi.restoreAllMocks()))
      const fsyncs = (env: Record<string, string>, directory: string) =>
        Effect.gen(function*() {
          sync.mockClear()
          datasync.mockClear()
          yield* Effect.scoped(
            Effect.gen(function*() {
              const store = yield* VectorStore
              yield* store.ensureCollection({ name: "chunks", dimensions: 3 })
              yield* store.upsert("chunks", TenantId.make("acme"), [{ id: "a", vector: [1, 0, 0], payload: {} }])
            }).pipe(
              Effect.provide(VectorStoreConfig.layerConfig({ directory }).pipe(Layer.provide(withEnv(env))))
            )
          )
          return sync.mock.calls.length + datasync.mock.calls.length
        })
      assert.isAbove(yield* fsyncs({ DATA_DIR: dir }, path.join(dir, "on")), 0, "fsync by default")
      assert.strictEqual(yield* fsyncs({ DATA_DIR: dir, VECTOR_STORE_FSYNC: "false" }, path.join(dir, "off")), 0)
      const placed = yield* Effect.promise(() => fs.readdir(dir))
      assert.deepStrictEqual(placed.filter((f) => f !== "probe").sort(), ["off", "on"], "not DATA_DIR/vectors")
    }))

  it.effect("a bad QDRANT_TIMEOUT_MS is a ConfigError", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        VectorStoreConfig.config.parse(ConfigProvider.fromEnv({ env: { QDRANT_TIMEOUT_MS: "-5" } }))
      )
      // Invalid data (a SchemaError), not missing data or a source failure.
      assert.strictEqual(error._tag, "ConfigError")
      assert.isTrue(Schema.isSchemaError(error.cause))
      assert.include(error.message, "QDRANT_TIMEOUT_MS must be positive")
    }))
})

describe("errors explain themselves (Effect 4: a TaggedError without a message field has an empty message)", () => {
  it("DimensionMismatch names the collection and both sizes", () => {
    const error = DimensionMismatch.of("chunks", 384, 768, "the embedder")
    assert.include(error.message, "chunks")
    assert.include(error.message, "384")
    assert.include(error.message, "768")
    assert.include(Cause.pretty(Cause.fail(error)), "holds vectors of 384 dimensions")
    assert.strictEqual(error.message, error.detail)
  })

  it("InvalidFilter says which field", () => {
    const error = new Filter.InvalidFilter({ detail: "filter.must[0].key is empty" })
    assert.strictEqual(error.message, "filter.must[0].key is empty")
    assert.include(String(error), "filter.must[0].key is empty")
  })
})

describe("Filter", () => {
  const payload = { lang: "en", tags: ["a", "b"], meta: { source: "web", n: 3 }, items: [{ k: 1 }, { k: 2 }] }

  it("evaluates like Qdrant: arrays, dotted keys through arrays, empty should", () => {
    assert.isTrue(Filter.matches({ must: [{ key: "tags", match: { value: "b" } }] }, payload))
    assert.isTrue(Filter.matches({ must: [{ key: "items.k", range: { gte: 2 } }] }, payload))
    assert.isFalse(Filter.matches({ must: [{ key: "meta.n", range: { gt: 3 } }] }, payload))
    assert.isTrue(Filter.matches({ should: [] }, payload))
    assert.isFalse(Filter.matches({ must: [{ key: "missing", match: { any: ["x"] } }] }, payload))
    assert.isTrue(Filter.matches({ must_not: [{ key: "missing", match: { value: "x" } }] }, payload))
    assert.isFalse(Filter.matches({ must: [{ key: "lang", range: { gte: 0 } }] }, payload), "a range needs a number")
  })

  it.effect("decodeUnknown names the offending field", () =>
    Effect.gen(function*() {
      const e1 = yield* Effect.flip(Filter.decodeUnknown({ must: "nope" }))
      assert.match(e1.detail, /^filter\.must/)
      const e2 = yield* Effect.flip(Filter.decodeUnknown({ must: [{ key: "point_id", match: { value: "x" } }] }))
      assert.match(e2.detail, /filter\.must\[0\]\.key "point_id" is reserved/)
      const e3 = yield* Effect.flip(Filter.decodeUnknown({ must: [{ key: "a..b", match: { value: 1 } }] }))
      assert.match(e3.detail, /empty path segment/)
      const deep = { must: [{ must: [{ must: [{ must: [{ must: [] }] }] }] }] }
      const e4 = yield* Effect.flip(Filter.decodeUnknown(deep))
      assert.match(e4.detail, /deeper than 4/)
      const ok = yield* Filter.decodeUnknown({ should: [{ key: "lang", match: { any: ["en", "fr"] } }] })
      assert.deepStrictEqual(ok, { should: [{ key: "lang", match: { any: ["en", "fr"] } }] })
    }))

  it.effect("decodeUnknown reads JSON as an HTTP body's fields are read, and what the schema says it refuses", () =>
    Effect.gen(function*() {
      // A null clause is an absent one, as for every optional field of a JSON body (and as the OpenAPI schema says).
      const ok = yield* Filter.decodeUnknown({ must: [{ key: "n", range: { gt: 1, lte: null } }], should: null })
      assert.strictEqual(ok.should, undefined)
      assert.strictEqual(Filter.matches(ok, { n: 2 }), true)
      const refused = [
        [{ must: [{ key: "n", range: { gt: "1" } }] }, /^filter\.must\.0/],
        [{ must: [{ key: "lang", match: { any: [] } }] }, /^filter\.must\.0/],
        [{ must: [{ key: "", match: { value: 1 } }] }, /^filter\.must\.0/],
        [{ must: [{ key: "x".repeat(257), match: { value: 1 } }] }, /^filter\.must\.0/],
        [
          { must: Array.from({ length: Filter.maxConditions + 1 }, () => ({ key: "k", match: { value: 1 } })) },
          /^filter\.must/
        ],
        [{ must: [{ key: "lang", match: { value: "en" }, extra: 1 }] }, /^filter\.must\.0/],
        [
          { must: [{ key: "n", match: { value: "NaN" } }], should: [{ key: "n", range: { gt: "Infinity" } }] },
          /^filter\.should\.0/
        ]
      ] as const
      for (const [input, detail] of refused) {
        const error = yield* Effect.flip(Filter.decodeUnknown(input))
        assert.match(error.detail, detail, JSON.stringify(input).slice(0, 80))
      }
    }))
})
