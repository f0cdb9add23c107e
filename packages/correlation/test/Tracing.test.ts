import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, type Tracer } from "effect"
import { createServer } from "node:http"
import { Tracing } from "../src/index.js"

/** A collector stand-in: records the path and size of every OTLP request. */
interface Collector {
  readonly url: string
  readonly received: Array<{ path: string; bytes: number }>
  readonly close: () => void
}

const collector = Effect.acquireRelease(
  Effect.callback<Collector>(
    (resume) => {
      const received: Array<{ path: string; bytes: number }> = []
      const server = createServer((req, res) => {
        let bytes = 0
        req.on("data", (chunk: Buffer) => (bytes += chunk.length))
        req.on("end", () => {
          received.push({ path: req.url ?? "", bytes })
          res.writeHead(200, { "content-type": "application/json" }).end("{}")
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, received, close: () => server.close() }))
      })
    }
  ),
  (c) => Effect.sync(() => c.close())
)

/** An `@effect/opentelemetry` span wraps the SDK span it records into. */
const isOtel = (span: Tracer.Span): boolean => typeof (span as { readonly span?: unknown }).span === "object"

describe("Tracing.layer", () => {
  it.live("exports spans over OTLP/HTTP to <OTEL_EXPORTER_OTLP_ENDPOINT>/v1/traces, flushed on release", () =>
    Effect.gen(function*() {
      const otlp = yield* collector
      const provider = ConfigProvider.fromEnv({
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url + "/", OTEL_SERVICE_NAME: "tracing-test" }
      })
      const span = yield* Effect.withSpan(Effect.currentSpan, "work").pipe(
        Effect.provide(Tracing.layer), // released (and flushed) when this effect ends
        Effect.provide(ConfigProvider.layer(provider)),
        Effect.orDie
      )
      assert.isTrue(isOtel(span), "the OpenTelemetry tracer is installed")
      const traced = span.traceId
      assert.match(traced, /^[0-9a-f]{32}$/)
      // The batch processor flushes when the layer is released, and the release waits for the export: the collector
      // has the spans now (it records a request before it answers), long before the processor's own 5 s schedule.
      assert.isAbove(otlp.received.length, 0)
      assert.isTrue(otlp.received.every((r) => r.path === "/v1/traces"))
      assert.isAbove(otlp.received[0]!.bytes, 0)
    }))

  it.effect("without an endpoint nothing is installed: Effect's own tracer still gives ids", () =>
    Effect.gen(function*() {
      const span = yield* Effect.withSpan(Effect.currentSpan, "work").pipe(
        Effect.provide(Tracing.layer),
        Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env: {} }))),
        Effect.orDie
      )
      assert.match(span.traceId, /^[0-9a-f]{32}$/)
      assert.isFalse(isOtel(span))
    }))

  it("understands every OTEL_TRACES_SAMPLER name", () => {
    const names: ReadonlyArray<Tracing.SamplerName> = [
      "always_on",
      "always_off",
      "traceidratio",
      "parentbased_always_on",
      "parentbased_always_off",
      "parentbased_traceidratio"
    ]
    for (const name of names) {
      const sampler = Tracing.makeSampler(name, 0.5)
      assert.isString(sampler.toString())
    }
    assert.include(Tracing.makeSampler("traceidratio", 7).toString(), "1")
  })
})
