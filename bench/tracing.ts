/**
 * Correlation and tracing: HTTP requests per second of a minimal HttpApi server with the correlation + tracing
 * middleware on beside off. "On" means the OpenTelemetry SDK configured with a BatchSpanProcessor (to a no-op
 * exporter, so the network is not measured), sampling 100%, every request continuing an incoming `traceparent` and
 * carrying an `X-Correlation-ID`. Two rows give context: the platform's own server span with the same SDK, and the
 * correlation middleware when no `OTEL_EXPORTER_OTLP_ENDPOINT` is set (Effect's in-process tracer, nothing exported).
 *
 * Run: `npm run bench -- tracing` (from source:
 * `node --import tsx --input-type=module -e 'import("./bench/tracing.ts").then(m => m.default())'`).
 */
import {
  AlwaysOnSampler,
  BatchSpanProcessor,
  type ReadableSpan,
  type SpanExporter
} from "@opentelemetry/sdk-trace-base"
import { CorrelationHttp, Tracing } from "@ouroboros/correlation"
import autocannon from "autocannon"
import { Layer } from "effect"
import { HttpMiddleware, HttpRouter } from "effect/http"
import { constTrue } from "effect/Function"
import { PingApp, startPingServer } from "./internal/ping.js"

const fmt = (n: number) => n.toLocaleString("en-US")

/** Counts spans and drops them: the cost of building and batching spans without the network. */
class CountingExporter implements SpanExporter {
  count = 0
  export(spans: Array<ReadableSpan>, done: Parameters<SpanExporter["export"]>[1]): void {
    this.count += spans.length
    done({ code: 0 }) // ExportResultCode.SUCCESS
  }
  shutdown(): Promise<void> {
    return Promise.resolve()
  }
}

type Mode = "off" | "vanilla" | "native" | "platform" | "on"

// The router's request logger is off in every mode (Effect 3's HttpApiBuilder.serve had none): it is not what is
// measured here.
const options = { disableLogger: true, disableListenLog: true } as const

const startServer = (mode: Mode, exporter: CountingExporter) => {
  const serve = (app: typeof PingApp) =>
    mode === "on" || mode === "native"
      ? CorrelationHttp.withServerSpan(HttpRouter.serve(app, { ...options, middleware: CorrelationHttp.middleware }))
      : mode === "platform" || mode === "vanilla"
      ? HttpRouter.serve(app, options)
      : HttpRouter.serve(app, options).pipe(Layer.provide(Layer.succeed(HttpMiddleware.TracerDisabledWhen, constTrue)))
  const tracing = mode === "off" || mode === "native" || mode === "vanilla" ? Layer.empty : Tracing.layerWith({
    serviceName: "bench",
    spanProcessor: new BatchSpanProcessor(exporter, { maxQueueSize: 65_536, maxExportBatchSize: 2048 }),
    sampler: new AlwaysOnSampler()
  })
  return startPingServer(serve, tracing)
}

const cannon = (port: number, seconds: number) =>
  autocannon({
    url: `http://127.0.0.1:${port}/api/v1/ping`,
    connections: 50,
    duration: seconds,
    headers: {
      "x-correlation-id": "bench-request-0001",
      traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      tracestate: "vendor=bench"
    }
  })

export default async function run(): Promise<void> {
  const results: Partial<Record<Mode, { rps: number; p99: number; non2xx: number; spans: number }>> = {}
  // Alternate the modes twice to even out the noise of a shared machine; keep the best of each.
  for (const round of [0, 1]) {
    for (const mode of ["off", "vanilla", "native", "platform", "on"] as const) {
      const exporter = new CountingExporter()
      const server = await startServer(mode, exporter)
      try {
        await cannon(server.port, 1)
        const result = await cannon(server.port, round === 0 ? 5 : 4)
        const previous = results[mode]
        if (previous === undefined || result.requests.average > previous.rps) {
          results[mode] = { rps: result.requests.average, p99: result.latency.p99, non2xx: result.non2xx, spans: 0 }
        }
      } finally {
        await server.stop()
      }
      results[mode]!.spans = Math.max(results[mode]!.spans, exporter.count)
    }
  }
  const off = results.off!
  const labels: Record<Mode, string> = {
    off: "off (no tracing, no correlation)",
    vanilla: "platform server span, Effect tracer (Effect's default)",
    native: "correlation on, no OTel endpoint (Effect tracer)",
    platform: "platform server span + OTel SDK",
    on: "correlation + tracing on (OTel SDK)"
  }
  console.log("\nHTTP: minimal HttpApi server, autocannon 50 connections, 127.0.0.1 (same process)")
  console.log("OTel: BatchSpanProcessor to a no-op exporter, AlwaysOnSampler (100%)")
  console.table((["off", "vanilla", "native", "platform", "on"] as const).map((mode) => {
    const r = results[mode]!
    return {
      mode: labels[mode],
      "req/s": fmt(Math.round(r.rps)),
      "p99 ms": r.p99,
      non2xx: r.non2xx,
      "spans exported": fmt(r.spans),
      "vs off": `${(((r.rps - off.rps) / off.rps) * 100).toFixed(1)}%`
    }
  }))
}
