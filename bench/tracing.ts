/**
 * Correlation and tracing: HTTP requests per second of a minimal HttpApi server with the correlation + tracing
 * middleware on beside off. "On" means the OpenTelemetry SDK configured with a BatchSpanProcessor (to a no-op
 * exporter, so the network is not measured), sampling 100%, every request continuing an incoming `traceparent` and
 * carrying an `X-Correlation-ID`. Three rows give context: the platform's own server span with Effect's tracer and
 * with the same SDK, and the correlation middleware when no `OTEL_EXPORTER_OTLP_ENDPOINT` is set (Effect's in-process
 * tracer, nothing exported).
 *
 * Out of process: every round starts one server process per mode (and per tree, with `BENCH_E3_TREE`: the same
 * servers on Effect 3), warms them up together, then loads them one after another with autocannon from this process,
 * in an order that rotates by round. Each mode is compared with "off" of the same tree and round; the medians of those
 * paired ratios are printed with their spread.
 *
 * Run: `npm run bench -- tracing`. `TRACING_BENCH_ROUNDS` (default 5), `TRACING_BENCH_SECONDS` (per server and round,
 * default 2), `TRACING_BENCH_MODES` (e.g. `off,on`).
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
import { constTrue } from "effect/Function"
import { HttpMiddleware, HttpRouter } from "effect/http"
import { PingApp, startPingServer } from "./internal/ping.js"
import { cpuMicros } from "./internal/process.js"
import { show, showPercent } from "./paired/stats.js"
import {
  envInt,
  machineWatch,
  nodeArgs,
  noE3Note,
  type ServerChild,
  sides,
  startServerChild
} from "./paired/workers.js"

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

const modes: ReadonlyArray<Mode> = ["off", "vanilla", "native", "platform", "on"]

const labels: Record<Mode, string> = {
  off: "off (no tracing, no correlation)",
  vanilla: "platform server span, Effect tracer (Effect's default)",
  native: "correlation on, no OTel endpoint (Effect tracer)",
  platform: "platform server span + OTel SDK",
  on: "correlation + tracing on (OTel SDK)"
}

// The router's request logger is off in every mode (Effect 3's HttpApiBuilder.serve had none): it is not what is
// measured here.
const options = { disableLogger: true, disableListenLog: true } as const

/**
 * The server of one mode, in a child process: prints `PORT=n`, and on SIGTERM the count of spans exported
 * (`SPANS=n`) after flushing.
 */
export const serveTracing = async (mode: Mode): Promise<void> => {
  const exporter = new CountingExporter()
  const processor = new BatchSpanProcessor(exporter, { maxQueueSize: 65_536, maxExportBatchSize: 2048 })
  const serve = (app: typeof PingApp) =>
    mode === "on" || mode === "native"
      ? CorrelationHttp.withServerSpan(HttpRouter.serve(app, { ...options, middleware: CorrelationHttp.middleware }))
      : mode === "platform" || mode === "vanilla"
      ? HttpRouter.serve(app, options)
      : HttpRouter.serve(app, options).pipe(Layer.provide(Layer.succeed(HttpMiddleware.TracerDisabledWhen, constTrue)))
  const tracing = mode === "off" || mode === "native" || mode === "vanilla" ? Layer.empty : Tracing.layerWith({
    serviceName: "bench",
    spanProcessor: processor,
    sampler: new AlwaysOnSampler()
  })
  const server = await startPingServer(serve, tracing)
  process.once("SIGTERM", () =>
    void processor.forceFlush().finally(() => {
      process.stdout.write(`SPANS=${exporter.count}\n`, () => process.exit(0))
    }))
  console.log(`PORT=${server.port}`)
}

const request = {
  connections: 50,
  headers: {
    "x-correlation-id": "bench-request-0001",
    traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    tracestate: "vendor=bench"
  }
}

const cannon = (port: number, seconds: number, connections = request.connections) =>
  autocannon({ ...request, connections, url: `http://127.0.0.1:${port}/api/v1/ping`, duration: seconds })

interface Sample {
  readonly rps: number
  readonly p99: number
  readonly non2xx: number
  readonly cpu: number
  /** Spans exported per request the server answered (warm-up included). */
  readonly spans: number
}

export default async function run(): Promise<void> {
  const watch = await machineWatch()
  const rounds = envInt("TRACING_BENCH_ROUNDS", 5)
  const seconds = envInt("TRACING_BENCH_SECONDS", 2)
  const wanted = (process.env.TRACING_BENCH_MODES ?? modes.join(",")).split(",")
  const chosen = modes.filter((m) => m === "off" || wanted.includes(m))
  const trees = await sides(import.meta.url, "tracing")
  const targets = trees.flatMap((side) => chosen.map((mode) => ({ side: side.label, url: side.url, mode })))
  const samples = new Map(targets.map((t) => [t, [] as Array<Sample>]))
  for (let round = 0; round < rounds; round++) {
    const servers: Array<ServerChild> = await Promise.all(
      targets.map((t) => startServerChild(nodeArgs(t.url, "serveTracing", t.mode)))
    )
    const results: Array<Omit<Sample, "spans">> = []
    let served: Array<number> = []
    try {
      // Warmed up together (10 connections each), then loaded one at a time.
      served = (await Promise.all(servers.map((s) => cannon(s.port, 2, 10)))).map((r) => r.requests.total)
      const order = targets.map((_, i) => (i + round) % targets.length)
      for (const i of order) {
        const server = servers[i]!
        const before = await cpuMicros(server.pid)
        const result = await cannon(server.port, seconds)
        const after = await cpuMicros(server.pid)
        served[i]! += result.requests.total
        results[i] = {
          rps: result.requests.average,
          p99: result.latency.p99,
          non2xx: result.non2xx,
          cpu: (after.user + after.system - before.user - before.system) / Math.max(1, result.requests.total)
        }
      }
    } finally {
      await Promise.all(servers.map((s) => s.stop()))
    }
    targets.forEach((t, i) => {
      const spans = Number(/SPANS=(\d+)/.exec(servers[i]!.output())?.[1] ?? NaN)
      samples.get(t)!.push({ ...results[i]!, spans: spans / Math.max(1, served[i]!) })
    })
  }
  const of = (side: string, mode: Mode) => samples.get(targets.find((t) => t.side === side && t.mode === mode)!)!
  console.log(
    `\nHTTP: minimal HttpApi server, GET /api/v1/ping; one server process per mode and round, autocannon 50 ` +
      `connections from this process, ${rounds} rounds × ${seconds} s per server; median (min–max) of the rounds`
  )
  console.log("OTel: BatchSpanProcessor to a no-op exporter, AlwaysOnSampler (100%)")
  console.table(targets.map((t) => {
    const xs = samples.get(t)!
    const off = of(t.side, "off")
    return {
      mode: labels[t.mode],
      tree: t.side,
      "req/s": show(xs.map((x) => x.rps)),
      "p99 ms": show(xs.map((x) => x.p99)),
      "CPU µs/request": show(xs.map((x) => x.cpu), 1),
      "req/s vs off (paired rounds)": t.mode === "off" ? "-" : showPercent(xs.map((x, i) => x.rps / off[i]!.rps - 1)),
      // What a saturated server's req/s becomes by the CPU each request costs (off / this − 1): on a shared machine
      // steadier than req/s, which swings with the CPU the server was given.
      "by CPU/request vs off": t.mode === "off" ? "-" : showPercent(xs.map((x, i) => off[i]!.cpu / x.cpu - 1)),
      "spans exported per request": show(xs.map((x) => x.spans), 2),
      non2xx: xs.reduce((a, x) => a + x.non2xx, 0)
    }
  }))
  if (trees.length === 2) {
    console.log("Effect 4 against Effect 3, same mode and round")
    console.table(chosen.map((mode) => ({
      mode: labels[mode],
      "req/s Effect 4 / Effect 3": show(of("Effect 4", mode).map((x, i) => x.rps / of("Effect 3", mode)[i]!.rps), 2),
      "CPU/request Effect 4 / Effect 3": show(
        of("Effect 4", mode).map((x, i) => x.cpu / of("Effect 3", mode)[i]!.cpu),
        2
      )
    })))
  } else {
    console.log(noE3Note)
  }
  console.log(await watch())
}
