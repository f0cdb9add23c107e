import { assert, describe, it } from "@effect/vitest"
import { Testing } from "@ouroboros/server"
import { OllamaStandIn, QdrantStandIn } from "@ouroboros/testkit"
import { Effect } from "effect"
import { admin, call, tenantA, tenantB } from "./helpers.js"

const zebras = "Zebras are African equines with distinctive black-and-white striped coats. " +
  "Each zebra has its own pattern of stripes."
const tea = "Green tea is made from the leaves of Camellia sinensis. It is steamed or pan-fired to stop oxidation."

const scenario = (env: () => Effect.Effect<Record<string, string>, never, import("effect").Scope.Scope>) =>
  Effect.gen(function*() {
    const server = yield* Testing.start(yield* env())
    const api = `${server.url}/api/v1`
    const created = yield* call(`${api}/documents`, {
      headers: tenantA,
      body: { id: "zebras", text: zebras, metadata: { topic: "animals", lang: "en" } }
    })
    assert.strictEqual(created.status, 201, JSON.stringify(created.body))
    assert.strictEqual(created.body.id, "zebras")
    assert.isAtLeast(created.body.chunks, 1)
    const again = yield* call(`${api}/documents`, {
      headers: tenantA,
      body: { id: "zebras", text: zebras, metadata: { topic: "animals", lang: "en" } }
    })
    assert.strictEqual(again.body.version, created.body.version, "re-ingesting the same content is idempotent")
    assert.strictEqual(
      (yield* call(`${api}/documents`, {
        headers: tenantA,
        body: { id: "tea", text: tea, metadata: { topic: "drinks" } }
      })).status,
      201
    )

    const search = yield* call(`${api}/search`, {
      headers: tenantA,
      body: { query: "striped animals from Africa", limit: 5 }
    })
    assert.strictEqual(search.status, 200)
    assert.strictEqual(search.body.results[0].documentId, "zebras")
    const filtered = yield* call(`${api}/search`, {
      headers: tenantA,
      body: { query: "striped animals", filter: { must: [{ key: "topic", match: { value: "drinks" } }] } }
    })
    assert.deepStrictEqual(filtered.body.results.map((r: { documentId: string }) => r.documentId), ["tea"])
    const badFilter = yield* call(`${api}/search`, {
      headers: tenantA,
      body: { query: "x", filter: { must: [{ key: 3 }] } }
    })
    assert.strictEqual(badFilter.status, 400)
    assert.strictEqual(badFilter.headers.get("content-type"), "application/problem+json")

    // Tenants are isolated: another tenant sees nothing and gets 404 for the document.
    const other = yield* call(`${api}/search`, { headers: tenantB, body: { query: "zebras" } })
    assert.deepStrictEqual(other.body.results, [])
    assert.strictEqual((yield* call(`${api}/documents/zebras`, { headers: tenantB })).status, 404)

    const ask = yield* call(`${api}/ask`, { headers: tenantA, body: { question: "What do zebras look like?" } })
    assert.strictEqual(ask.status, 200)
    assert.strictEqual(ask.body.sources[0].documentId, "zebras")
    assert.isString(ask.body.answer)

    const fetched = yield* call(`${api}/documents/zebras`, { headers: tenantA })
    assert.strictEqual(fetched.status, 200)
    assert.strictEqual(fetched.body.text, zebras)

    // A rebuild from the events alone gives the same search results.
    const before = yield* call(`${api}/search`, { headers: tenantA, body: { query: "leaves of a plant", limit: 5 } })
    const rebuilt = yield* call(`${server.url}/admin/projections/vectors/rebuild`, { headers: admin, method: "POST" })
    assert.strictEqual(rebuilt.status, 200)
    assert.strictEqual(rebuilt.body.appliedSequence, rebuilt.body.lastSequence)
    const after = yield* call(`${api}/search`, { headers: tenantA, body: { query: "leaves of a plant", limit: 5 } })
    assert.deepStrictEqual(after.body, before.body)

    assert.strictEqual((yield* call(`${api}/documents/zebras`, { headers: tenantA, method: "DELETE" })).status, 204)
    assert.strictEqual((yield* call(`${api}/documents/zebras`, { headers: tenantA })).status, 404)
    const gone = yield* call(`${api}/search`, { headers: tenantA, body: { query: "striped animals from Africa" } })
    assert.notInclude(gone.body.results.map((r: { documentId: string }) => r.documentId), "zebras")
    return { ask }
  })

describe("retrieval end to end", () => {
  it.live("on the embedded defaults", () =>
    Effect.gen(function*() {
      const { ask } = yield* scenario(() => Effect.succeed({}))
      assert.isTrue(ask.body.degraded, "the local extractive answerer marks its answers degraded")
      assert.include(ask.body.answer, "striped")
    }), { timeout: 120_000 })

  it.live("against the Qdrant and Ollama stand-ins", () =>
    Effect.gen(function*() {
      const qdrant = yield* QdrantStandIn.scoped()
      const ollama = yield* OllamaStandIn.scoped()
      const { ask } = yield* scenario(() =>
        Effect.succeed({ QDRANT_URL: qdrant.url, OLLAMA_URL: ollama.url, OLLAMA_EMBED_DIMENSIONS: "768" })
      )
      assert.isFalse(ask.body.degraded)
      assert.include(ask.body.answer, "You asked")
      assert.isTrue(qdrant.requests.some((r) => r.path.endsWith("/points/query")))
      assert.isTrue(ollama.requests.some((r) => r.path === "/api/chat"))
      // Outgoing calls carry the correlation id of the request.
      assert.isTrue(ollama.requests.some((r) => typeof r.headers["x-correlation-id"] === "string"))
    }), { timeout: 120_000 })
})

describe("bad input", () => {
  it.live("answers 400, 401, 403, 404 and 413 with problems", () =>
    Effect.gen(function*() {
      const server = yield* Testing.start({ MAX_BODY_BYTES: "2048" })
      const api = `${server.url}/api/v1`
      const empty = yield* call(`${api}/documents`, { headers: tenantA, body: { text: "   " } })
      assert.strictEqual(empty.status, 400)
      assert.strictEqual(empty.body.status, 400)
      assert.isString(empty.body.correlationId)
      assert.strictEqual(empty.headers.get("x-correlation-id"), empty.body.correlationId)
      assert.isString(empty.body.correlationId)
      const malformed = yield* call(`${api}/documents`, { headers: tenantA, body: "{ not json" })
      assert.strictEqual(malformed.status, 400)
      const big = yield* call(`${api}/documents`, { headers: tenantA, body: { text: "x".repeat(5000) } })
      assert.strictEqual(big.status, 413)
      assert.strictEqual(big.headers.get("content-type"), "application/problem+json")
      const noKey = yield* call(`${api}/search`, { body: { query: "x" } })
      assert.strictEqual(noKey.status, 401)
      const badKey = yield* call(`${api}/search`, {
        headers: { "x-api-key": "wrong-key-0123456789" },
        body: { query: "x" }
      })
      assert.strictEqual(badKey.status, 401)
      const tenantOnAdmin = yield* call(`${server.url}/admin/projections/vectors`, { headers: tenantA })
      assert.strictEqual(tenantOnAdmin.status, 403)
      const adminOnApi = yield* call(`${api}/search`, { headers: admin, body: { query: "x" } })
      assert.strictEqual(adminOnApi.status, 403)
      const badId = yield* call(`${api}/documents/bad%24id`, { headers: tenantA })
      assert.strictEqual(badId.status, 400)
    }), { timeout: 60_000 })
})

describe("reasoning pipelines, end to end", () => {
  it.live("runs the original pipe syntax and reads the branch back", () =>
    Effect.gen(function*() {
      const server = yield* Testing.start()
      const api = `${server.url}/api/v1`
      yield* call(`${api}/documents`, { headers: tenantA, body: { id: "zebras", text: zebras } })
      const run = yield* call(`${api}/pipelines`, {
        headers: tenantA,
        body: { script: "SetTopic('zebras') | UseRetrieval | UseDraft | UseCritique | UseImprove" }
      })
      assert.strictEqual(run.status, 201, JSON.stringify(run.body))
      assert.deepStrictEqual(run.body.steps.map((s: { kind: string }) => s.kind), [
        "retrieve",
        "draft",
        "critique",
        "improve"
      ])
      assert.strictEqual(run.body.status, "completed")
      const read = yield* call(`${api}/pipelines/${run.body.id}`, { headers: tenantA })
      assert.strictEqual(read.status, 200)
      assert.strictEqual(read.body.answer, run.body.answer)
      assert.strictEqual((yield* call(`${api}/pipelines/${run.body.id}`, { headers: tenantB })).status, 404)
      const bad = yield* call(`${api}/pipelines`, { headers: tenantA, body: { script: "SetTopic('x') | UseDarft" } })
      assert.strictEqual(bad.status, 400)
      assert.strictEqual(bad.body.column, 17)
      assert.include(bad.body.detail, "UseDraft")
    }), { timeout: 60_000 })
})
