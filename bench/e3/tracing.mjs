// The tracing benchmark's servers on the Effect 3 tree (bundled by bench/paired/workers.ts against that tree's
// packages), one mode per process as in bench/tracing.ts, built as the Effect 3 tree's bench/tracing.ts built them.
import { HttpApiBuilder, HttpMiddleware } from "@effect/platform"
import { AlwaysOnSampler, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { CorrelationHttp, Tracing } from "@ouroboros/correlation"
import { startPingServer } from "e3-tree/bench/internal/ping.ts"
import { Layer } from "effect"
import { constTrue } from "effect/Function"

class CountingExporter {
  count = 0
  export(spans, done) {
    this.count += spans.length
    done({ code: 0 })
  }
  shutdown() {
    return Promise.resolve()
  }
}

export const serveTracing = async (mode) => {
  const exporter = new CountingExporter()
  const processor = new BatchSpanProcessor(exporter, { maxQueueSize: 65_536, maxExportBatchSize: 2048 })
  const served = mode === "on" || mode === "native"
    ? CorrelationHttp.withServerSpan(HttpApiBuilder.serve((app) => CorrelationHttp.middleware(app)))
    : mode === "platform" || mode === "vanilla"
    ? HttpApiBuilder.serve()
    : HttpMiddleware.withTracerDisabledWhen(HttpApiBuilder.serve(), constTrue)
  const tracing = mode === "off" || mode === "native" || mode === "vanilla" ? Layer.empty : Tracing.layerWith({
    serviceName: "bench",
    spanProcessor: processor,
    sampler: new AlwaysOnSampler()
  })
  const server = await startPingServer(served, tracing)
  process.once("SIGTERM", () =>
    void processor.forceFlush().finally(() => {
      process.stdout.write(`SPANS=${exporter.count}\n`, () => process.exit(0))
    }))
  console.log(`PORT=${server.port}`)
}
