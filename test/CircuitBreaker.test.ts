import { assert, describe, it } from "@effect/vitest"
import { Testing } from "@ouroboros/server"
import { OllamaStandIn, QdrantStandIn } from "@ouroboros/testkit"
import { Effect } from "effect"
import { admin, call, eventually, tenantA } from "./helpers.js"

describe("circuit breaker around Ollama, end to end", () => {
  it.live(
    "opens at its threshold, answers degraded without calling Ollama, and one trial closes it",
    () =>
      Effect.gen(function*() {
        const ollama = yield* OllamaStandIn.scoped()
        const server = yield* Testing.start({
          OLLAMA_URL: ollama.url,
          OLLAMA_EMBED_DIMENSIONS: "768",
          RESILIENCE_OLLAMA_FAILURE_THRESHOLD: "3",
          RESILIENCE_OLLAMA_OPEN_DURATION: "1 second",
          RESILIENCE_OLLAMA_RETRY_TIMES: "0"
        })
        const api = `${server.url}/api/v1`
        const ingest = yield* call(`${api}/documents`, {
          headers: tenantA,
          body: { id: "zebras", text: "Zebras have black and white stripes." }
        })
        assert.strictEqual(ingest.status, 201)
        const healthy = yield* call(`${api}/ask`, {
          headers: tenantA,
          body: { question: "What stripes do zebras have?" }
        })
        assert.isFalse(healthy.body.degraded)

        ollama.faults.set({ errorRate: 1, errorStatus: 500 })
        // Each failing ask makes one call (embedding the question fails, so the answer is local): three reach the threshold.
        for (let i = 0; i < 3; i++) {
          const failing = yield* call(`${api}/ask`, { headers: tenantA, body: { question: "zebras?" } })
          assert.strictEqual(failing.status, 200)
          assert.isTrue(failing.body.degraded)
        }
        const breakers = yield* call(`${server.url}/admin/circuit-breakers`, { headers: admin })
        const state = breakers.body.find((b: { name: string }) => b.name === "ollama")
        assert.strictEqual(state.state, "open")
        const health = yield* call(`${server.url}/health/ready`)
        assert.strictEqual(health.status, 200)
        assert.strictEqual(health.body.status, "warn")

        ollama.clearRequests()
        // Ollama now accepts requests and never answers them: the degraded answer can only come back (within the
        // test's deadline) if it did not wait on Ollama.
        ollama.faults.set({ hang: true })
        const degraded = yield* call(`${api}/ask`, { headers: tenantA, body: { question: "zebras?" } })
        assert.strictEqual(degraded.status, 200)
        assert.isTrue(degraded.body.degraded)
        assert.strictEqual(ollama.requests.length, 0, "no call reaches Ollama while the breaker is open")
        // Search cannot stand in for the Ollama embedder (the collection was built with it): 503 with Retry-After.
        const search = yield* call(`${api}/search`, { headers: tenantA, body: { query: "zebras" } })
        assert.strictEqual(search.status, 503)
        assert.match(search.headers.get("retry-after") ?? "", /^[1-9][0-9]*$/)
        // The breaker's remaining break (at most its 1 second), carried by its own CircuitOpen to the header.
        assert.strictEqual(search.headers.get("retry-after"), "1")
        assert.strictEqual(search.body.retryAfter, 1)
        assert.strictEqual(search.body.detail, "the embedding model is unavailable")

        ollama.faults.reset()
        // The break (1 second) is over when the breaker reports no remaining break.
        yield* eventually(
          "the break of the ollama breaker to end",
          call(`${server.url}/admin/circuit-breakers`, { headers: admin }),
          (reply) => {
            const ollamaBreaker = reply.body.find((b: { name: string }) => b.name === "ollama")
            return ollamaBreaker.state !== "open" || ollamaBreaker.retryAfter === 0
          }
        )
        const recovered = yield* call(`${api}/ask`, {
          headers: tenantA,
          body: { question: "What stripes do zebras have?" }
        })
        assert.isFalse(recovered.body.degraded)
        const after = yield* call(`${server.url}/admin/circuit-breakers`, { headers: admin })
        assert.strictEqual(after.body.find((b: { name: string }) => b.name === "ollama").state, "closed")
      }),
    { timeout: 60_000 }
  )
})

describe("circuit breaker around Qdrant, end to end", () => {
  it.live(
    "opens at its threshold: search is a 503 whose Retry-After is the remaining break, ask degrades",
    () =>
      Effect.gen(function*() {
        const qdrant = yield* QdrantStandIn.scoped()
        const server = yield* Testing.start({
          QDRANT_URL: qdrant.url,
          RESILIENCE_QDRANT_FAILURE_THRESHOLD: "2",
          RESILIENCE_QDRANT_OPEN_DURATION: "30 seconds",
          RESILIENCE_QDRANT_RETRY_TIMES: "0"
        })
        const api = `${server.url}/api/v1`
        const ingest = yield* call(`${api}/documents`, {
          headers: tenantA,
          body: { id: "zebras", text: "Zebras have black and white stripes." }
        })
        assert.strictEqual(ingest.status, 201)

        qdrant.faults.set({ errorRate: 1, errorStatus: 503 })
        // The first failure leaves the breaker closed: no time to wait for is known.
        const first = yield* call(`${api}/search`, { headers: tenantA, body: { query: "zebras" } })
        assert.strictEqual(first.status, 503)
        assert.strictEqual(first.body.detail, "the vector store is unavailable")
        assert.isNull(first.headers.get("retry-after"))
        // The second opens it: the break is read from the breaker that rejected nothing yet.
        const opening = yield* call(`${api}/search`, { headers: tenantA, body: { query: "zebras" } })
        assert.strictEqual(opening.status, 503)
        const breakOf = (reply: { readonly headers: Headers }) => Number(reply.headers.get("retry-after"))
        assert.isAtLeast(breakOf(opening), 1)
        assert.isAtMost(breakOf(opening), 30)
        const breakers = yield* call(`${server.url}/admin/circuit-breakers`, { headers: admin })
        assert.strictEqual(breakers.body.find((b: { name: string }) => b.name === "qdrant").state, "open")

        qdrant.clearRequests()
        // Rejected by the open breaker without a call to Qdrant; its CircuitOpen carries the rest of the break.
        const rejected = yield* call(`${api}/search`, { headers: tenantA, body: { query: "zebras" } })
        assert.strictEqual(rejected.status, 503)
        assert.strictEqual(rejected.body.retryAfter, breakOf(rejected))
        assert.isAtLeast(breakOf(rejected), 1)
        assert.isAtMost(breakOf(rejected), breakOf(opening))
        const ask = yield* call(`${api}/ask`, { headers: tenantA, body: { question: "What stripes do zebras have?" } })
        assert.strictEqual(ask.status, 200)
        assert.isTrue(ask.body.degraded)
        assert.deepStrictEqual(ask.body.sources, [])
        assert.isFalse(qdrant.requests.some((r) => r.path.includes("/points")), "no search reached Qdrant")
      }),
    { timeout: 60_000 }
  )
})
