import { assert, describe, it } from "@effect/vitest"
import { Context, Duration, Effect, Fiber, Layer, Metric } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { PrometheusMetrics } from "effect/observability"
import { spawnSync } from "node:child_process"
import { HttpMetrics, Prometheus } from "../src/index.js"

const contextOf = (registry: Metric.MetricRegistry) => Context.make(Metric.MetricRegistry, registry)

/**
 * A registry like the server's: the families of every package (the same ids, types, descriptions and labels), the
 * HTTP server's RED metrics, and what Effect itself can add — its fiber runtime metrics (counters named without
 * `_total`), a `Metric.timer` (a histogram in milliseconds), a frequency, a summary — plus the mistakes a new metric
 * could make (a counter without `_total` or description, a gauge named `…_total`, a camelCase name).
 */
const realistic = Effect.gen(function*() {
  const registry: Metric.MetricRegistry = new Map()
  const context = contextOf(registry)
  const counter = (id: string, description: string | undefined, attributes: Record<string, string>, n: number) =>
    Metric.counter(id, { ...(description === undefined ? {} : { description }), incremental: true, attributes })
      .updateUnsafe(n, context)
  const gauge = (id: string, description: string | undefined, attributes: Record<string, string>, n: number) =>
    Metric.gauge(id, { ...(description === undefined ? {} : { description }), attributes }).updateUnsafe(n, context)

  // Packages.
  for (const outcome of ["allowed", "limited"]) {
    counter(
      "ratelimit_decisions_total",
      "Rate-limit decisions by policy and outcome",
      { policy: "default", outcome },
      3
    )
  }
  gauge("circuit_breaker_state", "State of a circuit breaker: 0 closed, 1 open", { breaker: "ollama" }, 0)
  counter("circuit_breaker_calls_total", "Calls a circuit breaker let through", { breaker: "ollama" }, 7)
  counter("circuit_breaker_transitions_total", "State transitions", { breaker: "ollama", state: "open" }, 1)
  counter("audit_events_appended_total", "Audit events appended", {}, 4)
  gauge("audit_log_entries", "Entries in the audit log", {}, 4)
  counter("feature_flag_evaluations_total", "Flag evaluations", { flag: "api-v2", variant: "on" }, 2)
  counter("api_version_requests_total", "API requests by version", { version: "v1", outcome: "served" }, 9)
  counter("api_version_caller_requests_total", "API requests by caller", { version: "v1", caller: "tenant-a" }, 9)
  gauge("http_server_active_requests", "HTTP requests being served right now", {}, 1)
  // The HTTP server.
  const http = HttpMetrics.makeUnsafe(context)
  http.record("GET", { path: "/api/v1/documents/:id" }, 200, 0.0004)
  http.record("GET", { path: "/api/v1/documents/:id" }, 200, 0.02)
  http.record("POST", { path: "/api/v1/ask" }, 503, 2.5)
  http.record("GET", { path: "unmatched" }, 404, 0.0001)
  // Effect's fiber runtime metrics, with fibers started and ended.
  yield* Effect.gen(function*() {
    const fibers = yield* Effect.forEach([1, 2, 3], (n) => Effect.forkChild(Effect.as(Effect.yieldNow, n)))
    yield* Effect.forkChild(Effect.fail("no"))
    yield* Fiber.joinAll(fibers)
  }).pipe(Metric.enableRuntimeMetrics, Effect.provideService(Metric.MetricRegistry, registry))
  // Other shapes.
  const timer = Metric.timer("job_duration", { description: "Job durations" })
  timer.updateUnsafe(Duration.millis(250), context)
  timer.updateUnsafe(Duration.seconds(3), context)
  const models = Metric.frequency("llm_models", { description: "Models asked" })
  models.updateUnsafe("llama3", context)
  models.updateUnsafe("phi3", context)
  Metric.summary("payload_bytes", {
    description: "Payload sizes",
    maxAge: "1 minute",
    maxSize: 100,
    quantiles: [0.5, 0.99]
  })
    .updateUnsafe(512, context)
  counter("jobs_done", undefined, {}, 1)
  gauge("queue_total", "Items queued", {}, 5)
  counter("cacheHits", "Cache hits", {}, 3)
  return context
})

type Check = { readonly ok: boolean; readonly output: string } | "missing"

const promtool = (text: string): Check => {
  const result = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" })
  if (result.error !== undefined && (result.error as NodeJS.ErrnoException).code === "ENOENT") return "missing"
  return {
    ok: result.status === 0 && result.stdout.trim() === "" && result.stderr.trim() === "",
    output: result.stdout + result.stderr
  }
}

const available = promtool("") !== "missing"
if (!available) {
  if (process.env.CI === "true") throw new Error("promtool is not installed: /metrics cannot be checked (CI=true)")
  console.warn("promtool is not installed: the promtool checks of /metrics are skipped")
}

describe("Prometheus", () => {
  it.effect.runIf(available)(
    "the output for a realistic registry passes promtool check metrics",
    () =>
      Effect.gen(function*() {
        const context = yield* realistic
        const text = Prometheus.formatUnsafe(context)
        const check = promtool(text) as Exclude<Check, "missing">
        assert.isTrue(check.ok, `${check.output}\n${text}`)
        // Every family is there, the corrected ones under their conforming names.
        for (
          const family of [
            "# TYPE ratelimit_decisions_total counter",
            "# TYPE http_server_request_duration_seconds histogram",
            "# TYPE http_server_requests_total counter",
            "# TYPE child_fibers_started_total counter",
            "# TYPE child_fibers_active gauge",
            "# TYPE job_duration_seconds histogram",
            "# TYPE llm_models_total counter",
            "# TYPE payload_bytes summary",
            "# TYPE jobs_done_total counter",
            "# TYPE queue gauge",
            "# TYPE cache_hits_total counter",
            "# HELP jobs_done_total jobs_done_total"
          ]
        ) assert.include(text, family)
      })
  )

  it.effect.runIf(available)(
    "Effect's own rendering of the same registry does not pass (what this module corrects)",
    () =>
      Effect.gen(function*() {
        const context = yield* realistic
        const check = promtool(PrometheusMetrics.formatUnsafe(context)) as Exclude<Check, "missing">
        assert.isFalse(check.ok)
        assert.include(check.output, "child_fibers_started")
      })
  )

  it.effect("conform: counters end in _total, gauges do not, timers are in seconds, frequencies are counters", () =>
    Effect.gen(function*() {
      const context = yield* realistic
      const text = Prometheus.formatUnsafe(context)
      // A timer's 250 ms and 3 s: the sum in seconds, the bucket bounds too.
      assert.match(text, /^job_duration_seconds_sum 3\.25$/m)
      assert.match(text, /^job_duration_seconds_count 2$/m)
      assert.match(text, /^job_duration_seconds_bucket\{le="0\.256"\} 1$/m)
      assert.notInclude(text, "time_unit")
      assert.match(text, /^llm_models_total\{key="llama3"\} 1$/m)
      assert.match(text, /^queue 5$/m)
      assert.match(text, /^child_fiber_failures_total 1$/m)
      assert.match(text, /^ratelimit_decisions_total\{policy="default",outcome="limited"\} 3$/m)
      assert.match(
        text,
        /^http_server_request_duration_seconds_bucket\{method="GET",route="\/api\/v1\/documents\/:id",status="200",le="0\.0005"\} 1$/m
      )
      // Every family has help.
      const families = text.split("\n").filter((l) => l.startsWith("# TYPE ")).map((l) => l.split(" ")[2])
      for (const family of families) assert.include(text, `# HELP ${family} `)
    }))

  it.effect("overrides drop, rename, retype and describe a metric", () =>
    Effect.gen(function*() {
      const context = yield* realistic
      const text = Prometheus.formatUnsafe(context, {
        overrides: {
          child_fibers_started: "drop",
          queue_total: { name: "work_queue_items", help: "Items waiting" },
          jobs_done: { type: "gauge" }
        }
      })
      assert.notInclude(text, "child_fibers_started")
      assert.include(text, "# HELP work_queue_items Items waiting")
      assert.match(text, /^work_queue_items 5$/m)
      assert.include(text, "# TYPE jobs_done gauge")
    }))

  it("a series repeated, or of another type in the same family, is written once", () => {
    const snapshot = Prometheus.conform([
      {
        id: "x_total",
        type: "Counter",
        description: "x",
        attributes: { a: "1" },
        state: { count: 1, incremental: true }
      },
      {
        id: "x_total",
        type: "Counter",
        description: "x",
        attributes: { a: "1" },
        state: { count: 2, incremental: true }
      },
      { id: "y", type: "Gauge", description: "y", attributes: undefined, state: { value: 1 } },
      { id: "y_total", type: "Gauge", description: "y", attributes: undefined, state: { value: 2 } },
      { id: "s", type: "Gauge", description: "s", attributes: undefined, state: { value: 1 } },
      {
        id: "s",
        type: "Summary",
        description: "s",
        attributes: { a: "1" },
        state: { quantiles: [], count: 0, min: 0, max: 0, sum: 0 }
      }
    ] as ReadonlyArray<Metric.Metric.Snapshot>)
    assert.deepStrictEqual(snapshot.map((s) => [s.id, s.type]), [["x_total", "Counter"], ["y", "Gauge"], [
      "s",
      "Gauge"
    ]])
  })

  it.effect("layerHttp serves the registry as text at /metrics", () =>
    Effect.gen(function*() {
      const registry: Metric.MetricRegistry = new Map()
      Metric.counter("served", { description: "Served" }).updateUnsafe(2, contextOf(registry))
      const context = yield* Layer.build(Prometheus.layerHttp().pipe(Layer.provideMerge(HttpRouter.layer)))
      const app = Context.get(context, HttpRouter.HttpRouter).asHttpEffect()
      const response = yield* app.pipe(
        Effect.provideService(
          HttpServerRequest.HttpServerRequest,
          HttpServerRequest.fromWeb(new Request("http://x/metrics"))
        ),
        Effect.provideService(Metric.MetricRegistry, registry)
      )
      assert.strictEqual(response.headers["content-type"], Prometheus.contentType)
      const body = response.body as { readonly body: Uint8Array }
      assert.include(new TextDecoder().decode(body.body), "served_total 2")
      assert.isTrue(HttpServerResponse.isHttpServerResponse(response))
    }).pipe(Effect.scoped))
})
