import { assert, describe, it } from "@effect/vitest"
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base"
import { Tracing } from "@ouroboros/correlation"
import { Testing } from "@ouroboros/server"
import { OllamaStandIn, QdrantStandIn } from "@ouroboros/testkit"
import { Effect } from "effect"
import { admin, call, eventually, tenantA } from "./helpers.js"

describe("distributed tracing, end to end", () => {
  it.live(
    "one /ask is one connected trace from the server span to the calls the stand-ins see",
    () =>
      Effect.gen(function*() {
        const exporter = new InMemorySpanExporter()
        const ollama = yield* OllamaStandIn.scoped()
        const qdrant = yield* QdrantStandIn.scoped()
        const server = yield* Testing.start(
          { OLLAMA_URL: ollama.url, OLLAMA_EMBED_DIMENSIONS: "768", QDRANT_URL: qdrant.url },
          { runtime: Tracing.layerTest(exporter) }
        )
        const api = `${server.url}/api/v1`
        assert.strictEqual(
          (yield* call(`${api}/documents`, { headers: tenantA, body: { id: "d", text: "Owls hunt at night." } }))
            .status,
          201
        )
        ollama.clearRequests()
        qdrant.clearRequests()
        exporter.reset()
        const traceId = "4bf92f3577b34da6a3ce929d0e0e4736"
        const ask = yield* call(`${api}/ask`, {
          headers: {
            ...tenantA,
            traceparent: `00-${traceId}-00f067aa0ba902b7-01`,
            "x-correlation-id": "trace-test-1"
          },
          body: { question: "When do owls hunt?" }
        })
        assert.strictEqual(ask.status, 200)
        assert.strictEqual(ask.headers.get("x-correlation-id"), "trace-test-1")
        const seen = [...ollama.requests, ...qdrant.requests]
        assert.isAtLeast(seen.length, 2)
        for (const request of seen) {
          assert.strictEqual(String(request.headers.traceparent).split("-")[1], traceId, request.path)
          assert.strictEqual(request.headers["x-correlation-id"], "trace-test-1", request.path)
        }
        // The server span ends once the response is written, which may be just after the client has read it.
        const spans = yield* eventually(
          "the server span of the request",
          Effect.sync(() => exporter.getFinishedSpans()),
          (finished) => finished.some((s) => s.kind === 1 /* SERVER */ && s.spanContext().traceId === traceId)
        )
        const server_ = spans.find((s) => s.kind === 1 /* SERVER */)
        assert.isDefined(server_)
        assert.strictEqual(server_!.spanContext().traceId, traceId)
        // Background work (health checks, the projector) has traces of its own; the request's spans are all in its trace.
        const names = spans.filter((s) => s.spanContext().traceId === traceId).map((s) => s.name)
        for (const name of ["Retrieval.ask", "Ollama.embed", "Ollama.chat", "VectorStore.search"]) {
          assert.include(names, name)
        }
        assert.isAtLeast(names.filter((n) => n.startsWith("http.client")).length, 2)
        assert.strictEqual(
          server_!.parentSpanContext?.spanId ?? (server_ as unknown as { parentSpanId?: string }).parentSpanId,
          "00f067aa0ba902b7"
        )
      }),
    { timeout: 60_000 }
  )

  it.live("every breaker transition is a span", () =>
    Effect.gen(function*() {
      const exporter = new InMemorySpanExporter()
      const ollama = yield* OllamaStandIn.scoped()
      const server = yield* Testing.start(
        { OLLAMA_URL: ollama.url, OLLAMA_EMBED_DIMENSIONS: "768" },
        { runtime: Tracing.layerTest(exporter) }
      )
      const forced = yield* call(`${server.url}/admin/circuit-breakers/ollama/force-open`, {
        headers: admin,
        method: "POST"
      })
      assert.strictEqual(forced.status, 200, JSON.stringify(forced.body))
      const transition = (yield* eventually(
        "the span of the transition",
        Effect.sync(() => exporter.getFinishedSpans()),
        (finished) => finished.some((s) => s.name === "CircuitBreaker.transition")
      )).find((s) => s.name === "CircuitBreaker.transition")
      assert.isDefined(transition)
      assert.strictEqual(transition!.attributes["circuit_breaker.name"], "ollama")
      assert.strictEqual(transition!.attributes["circuit_breaker.to"], "forced-open")
    }), { timeout: 60_000 })
})
