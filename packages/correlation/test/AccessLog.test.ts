import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Context, Duration, Effect, Layer, Logger, Metric, References } from "effect"
import { HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"
import * as Http from "node:http"
import { AccessLog, CorrelationHttp, HttpMetrics, Logging, Prometheus, RouteTable } from "../src/index.js"

// A stand-in for the tenancy middleware: it records the request's tenant by its underlying request, as
// `TenancyHttp.authenticationOf` lets a server read it after the response.
const tenants = new WeakMap<object, string>()
const tenantOf: AccessLog.Annotate = (request, _, { route }) => {
  const tenant = tenants.get(request.source as object)
  // The API version, as a server reads it from the route that served the request.
  const apiVersion = /^\/api\/(v\d+)\//.exec(route.path)?.[1]
  return tenant === undefined ? { apiVersion } : { tenant, apiVersion }
}

const Authenticate = HttpRouter.middleware(
  (effect) =>
    Effect.withFiber((fiber) => {
      const request = Context.getUnsafe(fiber.context, HttpServerRequest.HttpServerRequest)
      if (request.headers["x-api-key"] === "acme-key") tenants.set(request.source as object, "acme")
      // A limiter that answers before the router matches a route.
      if (request.headers["x-limit"] !== undefined) {
        return Effect.succeed(HttpServerResponse.text("slow down", { status: 429 }))
      }
      // Version negotiation: an unversioned URL is served by the default version's route.
      if (request.url.startsWith("/api/documents/")) {
        return Effect.provideService(
          AccessLog.recordRoutedUrl(effect),
          HttpServerRequest.HttpServerRequest,
          request.modify({ url: "/api/v1" + request.url.slice(4) })
        )
      }
      return AccessLog.recordRoutedUrl(effect)
    }),
  { global: true }
)

const appLines: Array<string> = []

const Routes = Layer.mergeAll(
  HttpRouter.add(
    "GET",
    "/api/v1/documents/:id",
    Effect.as(Effect.logInfo("inside the handler"), HttpServerResponse.jsonUnsafe({ id: "doc", text: "hello" }))
  ),
  HttpRouter.add("GET", "/boom", Effect.die("boom")),
  Authenticate
)

interface Setup {
  readonly lines: Array<string>
  readonly registry: Metric.MetricRegistry
  readonly ended: Array<boolean>
}

const serve = (options: Partial<AccessLog.Options> = {}, minimumLevel: "Info" | "Warn" = "Info") => {
  const setup: Setup = { lines: [], registry: new Map(), ended: [] }
  const routes = RouteTable.make()
  const layer = Layer.unwrap(Effect.gen(function*() {
    const metrics = yield* HttpMetrics.make
    const observe = AccessLog.make({
      routes,
      metrics,
      sink: (line) => setup.lines.push(line),
      annotate: (request, context, answered) => {
        // Whether the response had been written when the line was made.
        const source = request as unknown as { readonly response: Http.ServerResponse | (() => Http.ServerResponse) }
        const response = typeof source.response === "function" ? source.response() : source.response
        setup.ended.push(response.writableEnded)
        return tenantOf(request, context, answered)
      },
      ...options
    })
    return HttpRouter.serve(Routes.pipe(Layer.provide(RouteTable.layer(routes))), {
      disableLogger: true,
      disableListenLog: true,
      middleware: (app) => CorrelationHttp.middleware(observe(app))
    })
  })).pipe(
    Layer.provideMerge(NodeHttpServer.layerTest),
    Layer.provide(Logger.layer([Logger.map(Logging.jsonLogger, (line) => void appLines.push(line))])),
    Layer.provide(Layer.succeed(References.MinimumLogLevel, minimumLevel)),
    Layer.provide(Layer.succeed(Metric.MetricRegistry, setup.registry))
  )
  return { setup, layer }
}

interface Reply {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  readonly body: string
}

const raw = (method: string, path: string, headers: Record<string, string> = {}) =>
  Effect.flatMap(Effect.service(HttpServer.HttpServer), (server) =>
    Effect.callback<Reply>((resume) => {
      const port = "port" in server.address ? server.address.port : 0
      const request = Http.request({ host: "127.0.0.1", port, method, path, headers, agent: false }, (response) => {
        let body = ""
        response.on("data", (chunk) => (body += String(chunk)))
        response.on("end", () =>
          resume(Effect.succeed({ status: response.statusCode ?? 0, headers: response.headers, body })))
      })
      request.on("error", (error) =>
        resume(Effect.die(error)))
      request.end()
    }))

/** Polls until `n` lines are there; the deadline only bounds the test. */
const awaitLines = (setup: Setup, n: number) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 10_000
    while (setup.lines.length < n) {
      if (Date.now() > deadline) return yield* Effect.die(`only ${setup.lines.length} of ${n} lines`)
      yield* Effect.sleep(Duration.millis(2))
    }
    return setup.lines.map((line) => JSON.parse(line) as Record<string, unknown>)
  })

const traceId = "4bf92f3577b34da6a3ce929d0e0e4736"

describe("AccessLog", () => {
  const one = serve()
  it.live("one line per request after its response is written: route template, status, duration, bytes, ids, tenant", () =>
    Effect.gen(function*() {
      const doc = yield* raw("GET", "/api/v1/documents/abc?x=1", {
        "x-api-key": "acme-key",
        "x-correlation-id": "req-1",
        traceparent: `00-${traceId}-00f067aa0ba902b7-01`
      })
      assert.strictEqual(doc.status, 200)
      const notFound = yield* raw("GET", "/nowhere")
      const boom = yield* raw("GET", "/boom")
      const limited = yield* raw("GET", "/API/v1/documents/xyz/", { "x-limit": "1" })
      const head = yield* raw("HEAD", "/api/v1/documents/abc")
      assert.strictEqual(head.status, 200)
      const rewritten = yield* raw("GET", "/api/documents/abc")
      assert.strictEqual(rewritten.status, 200)
      const lines = yield* awaitLines(one.setup, 6)
      assert.deepStrictEqual(one.setup.ended, [true, true, true, true, true, true])
      const [first, second, third, fourth, fifth, sixth] = lines as [any, any, any, any, any, any]
      assert.deepStrictEqual(
        [first.level, first.message, first.method, first.route, first.status, first.bytes, first.tenant],
        ["INFO", "request", "GET", "/api/v1/documents/:id", 200, Buffer.byteLength(doc.body), "acme"]
      )
      assert.strictEqual(first.apiVersion, "v1")
      assert.strictEqual(first.correlationId, "req-1")
      // The client's address (the request's remote address here: no proxy in front).
      assert.strictEqual(first.client, "127.0.0.1")
      assert.strictEqual(first.traceId, traceId)
      assert.match(first.spanId, /^[0-9a-f]{16}$/)
      assert.isAtLeast(first.durationMs, 0)
      assert.match(first.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
      assert.deepStrictEqual([second.route, second.status, second.tenant], ["unmatched", 404, undefined])
      assert.strictEqual(second.correlationId, notFound.headers["x-correlation-id"])
      assert.deepStrictEqual([third.route, third.status], ["/boom", boom.status])
      assert.strictEqual(boom.status, 500)
      // Answered before the router matched it: still named by the route it was for.
      assert.deepStrictEqual([fourth.route, fourth.status, limited.status], ["/api/v1/documents/:id", 429, 429])
      assert.deepStrictEqual([fifth.method, fifth.route, fifth.bytes], ["HEAD", "/api/v1/documents/:id", 0])
      // Served by the route its rewritten URL matched (recordRoutedUrl), not `unmatched`.
      assert.deepStrictEqual([sixth.route, sixth.status, sixth.apiVersion], ["/api/v1/documents/:id", 200, "v1"])
      assert.isUndefined(second.apiVersion)
    }).pipe(Effect.provide(one.layer)))

  const shape = serve()
  it.live("a line has the shape and the ids of Logging's JSON lines", () =>
    Effect.gen(function*() {
      appLines.length = 0
      yield* raw("GET", "/api/v1/documents/abc", { "x-correlation-id": "req-shape" })
      const [line] = (yield* awaitLines(shape.setup, 1)) as [Record<string, unknown>]
      const app = appLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) =>
        l.message === "inside the handler"
      )!
      const head = ["timestamp", "level", "message", "traceId", "spanId", "correlationId"]
      assert.deepStrictEqual(Object.keys(line).slice(0, 6), head)
      assert.deepStrictEqual(Object.keys(app).slice(0, 6), head)
      assert.strictEqual(Object.keys(line).at(-1), "fiberId")
      assert.strictEqual(Object.keys(app).at(-1), "fiberId")
      assert.strictEqual(line.traceId, app.traceId)
      assert.strictEqual(line.correlationId, app.correlationId)
      assert.strictEqual(line.correlationId, "req-shape")
    }).pipe(Effect.provide(shape.layer)))

  const secrets = serve()
  it.live("never writes a header, a query string or the path as sent: no credential reaches the log", () =>
    Effect.gen(function*() {
      yield* raw("GET", "/api/v1/documents/path-secret-1?api_key=query-secret-2&token=query-secret-3", {
        "x-api-key": "header-secret-4",
        authorization: "Bearer header-secret-5",
        cookie: "session=cookie-secret-6",
        "x-correlation-id": "req-secret"
      })
      yield* raw("GET", "/nowhere/path-secret-7", { authorization: "Basic aGVhZGVyLXNlY3JldC04" })
      yield* awaitLines(secrets.setup, 2)
      const text = secrets.setup.lines.join("\n")
      for (const secret of ["secret-1", "secret-2", "secret-3", "secret-4", "secret-5", "secret-6", "secret-7"]) {
        assert.notInclude(text, secret)
      }
      assert.notInclude(text, "aGVhZGVyLXNlY3JldC04")
      assert.notInclude(text.toLowerCase(), "authorization")
      assert.notInclude(text.toLowerCase(), "cookie")
    }).pipe(Effect.provide(secrets.layer)))

  const quiet = serve({ log: false })
  it.live("LOG_REQUESTS off: no line, the metrics are still recorded", () =>
    Effect.gen(function*() {
      const settings = yield* AccessLog.config.pipe(
        Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env: { LOG_REQUESTS: "false" } }))
      )
      assert.isFalse(settings.log)
      const defaults = yield* AccessLog.config.pipe(
        Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env: {} }))
      )
      assert.isTrue(defaults.log)
      yield* raw("GET", "/api/v1/documents/abc")
      yield* raw("GET", "/api/v1/documents/def")
      // The metrics are recorded in the same step as the line would be: poll for them.
      const deadline = Date.now() + 10_000
      let text = ""
      while (!text.includes(`http_server_requests_total{method="GET",route="/api/v1/documents/:id",status="200"} 2`)) {
        if (Date.now() > deadline) assert.fail(text)
        yield* Effect.sleep(Duration.millis(2))
        text = Prometheus.formatUnsafe(Context.make(Metric.MetricRegistry, quiet.setup.registry))
      }
      assert.deepStrictEqual(quiet.setup.lines, [])
    }).pipe(Effect.provide(quiet.layer)))

  const warn = serve({}, "Warn")
  it.live("below Info (LOG_LEVEL=Warn) no line is written", () =>
    Effect.gen(function*() {
      yield* raw("GET", "/api/v1/documents/abc")
      yield* raw("GET", "/boom")
      // The metrics show both requests were observed.
      const deadline = Date.now() + 10_000
      let text = ""
      while (!text.includes(`route="/boom",status="500"} 1`)) {
        if (Date.now() > deadline) assert.fail(text)
        yield* Effect.sleep(Duration.millis(2))
        text = Prometheus.formatUnsafe(Context.make(Metric.MetricRegistry, warn.setup.registry))
      }
      assert.deepStrictEqual(warn.setup.lines, [])
    }).pipe(Effect.provide(warn.layer)))

  const red = serve()
  it.live("RED metrics by method, route template and status, in seconds", () =>
    Effect.gen(function*() {
      for (let i = 0; i < 3; i++) yield* raw("GET", "/api/v1/documents/a" + i)
      yield* raw("GET", "/nowhere")
      yield* raw("POST", "/boom")
      yield* raw("GET", "/boom")
      yield* raw("GET", "/api/v1/documents/z", { "x-limit": "1" })
      const lines = yield* awaitLines(red.setup, 7)
      const text = Prometheus.formatUnsafe(Context.make(Metric.MetricRegistry, red.setup.registry))
      const series = (name: string, labels: string) => {
        const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}}`))
        return line === undefined ? undefined : Number(line.split(" ").at(-1))
      }
      const doc = `method="GET",route="/api/v1/documents/:id",status="200"`
      assert.strictEqual(series("http_server_requests_total", doc), 3)
      assert.strictEqual(series("http_server_request_duration_seconds_count", doc), 3)
      assert.strictEqual(series("http_server_request_duration_seconds_bucket", `${doc},le="+Inf"`), 3)
      // In seconds: the sum is the lines' milliseconds (rounded there to the microsecond) over 1000.
      const millis = lines.filter((l) => l.route === "/api/v1/documents/:id" && l.status === 200)
        .reduce((sum, l) => sum + (l.durationMs as number), 0)
      assert.isAbove(millis, 0)
      assert.closeTo(series("http_server_request_duration_seconds_sum", doc)!, millis / 1000, 3 * 0.5e-6)
      assert.strictEqual(series("http_server_requests_total", `method="GET",route="unmatched",status="404"`), 1)
      assert.strictEqual(series("http_server_requests_total", `method="POST",route="unmatched",status="404"`), 1)
      assert.strictEqual(series("http_server_requests_total", `method="GET",route="/boom",status="500"`), 1)
      assert.strictEqual(
        series("http_server_requests_total", `method="GET",route="/api/v1/documents/:id",status="429"`),
        1
      )
      assert.include(text, "# TYPE http_server_request_duration_seconds histogram")
      assert.include(text, "# TYPE http_server_requests_total counter")
    }).pipe(Effect.provide(red.layer)))
})

describe("HttpMetrics", () => {
  it("buckets by upper bound, in seconds; unknown methods are _OTHER", () => {
    const registry: Metric.MetricRegistry = new Map()
    const context = Context.make(Metric.MetricRegistry, registry)
    const metrics = HttpMetrics.makeUnsafe(context)
    const route = { path: "/x" }
    metrics.record("GET", route, 200, 0.0005)
    metrics.record("GET", route, 200, 0.0007)
    metrics.record("GET", route, 200, 120)
    metrics.record("BREW", route, 418, 0.01)
    const snapshot = Metric.snapshotUnsafe(context)
    const histogram = snapshot.find((s) => s.type === "Histogram" && s.attributes?.method === "GET")!
    const state = histogram.state as Metric.HistogramState
    assert.deepStrictEqual(state.buckets.slice(0, 2), [[0.0005, 1], [0.001, 2]])
    assert.deepStrictEqual(state.buckets.at(-1), [60, 2])
    assert.strictEqual(state.count, 3)
    assert.closeTo(state.sum, 120.0012, 1e-9)
    assert.isDefined(snapshot.find((s) => s.attributes?.method === "_OTHER" && s.attributes?.status === "418"))
  })
})

describe("AccessLog formatting and output", () => {
  it("timestamp is toISOString, made once a second", () => {
    const now = Date.now()
    for (const millis of [0, 999, 1000, now, now + 1, now + 999, now - 86_400_000, 1_700_000_000_007]) {
      assert.strictEqual(AccessLog.timestamp(millis), new Date(millis).toISOString())
    }
  })

  it("the client's address comes from the option when given, else the remote address; left out when unknown", () => {
    const lines: Array<string> = []
    const routes = RouteTable.make()
    routes.add("GET", "/a/:id")
    const run = (options: Partial<AccessLog.Options>) => {
      const observe = AccessLog.make({ routes, sink: (line) => lines.push(line), ...options })
      const request = HttpServerRequest.fromWeb(new Request("http://x/a/1"))
      Effect.runSync(
        observe(Effect.succeed(HttpServerResponse.text("hello"))).pipe(
          Effect.provideService(HttpServerRequest.HttpServerRequest, request)
        )
      )
      return JSON.parse(lines.at(-1)!) as Record<string, unknown>
    }
    assert.strictEqual(run({ client: () => "203.0.113.7" }).client, "203.0.113.7")
    assert.notProperty(run({}), "client")
  })

  it("pretty lines are one human-readable line", () => {
    const lines: Array<string> = []
    const routes = RouteTable.make()
    routes.add("GET", "/a/:id")
    const observe = AccessLog.make({ routes, format: "pretty", sink: (line) => lines.push(line) })
    const request = HttpServerRequest.fromWeb(new Request("http://x/a/1"))
    Effect.runSync(
      observe(Effect.succeed(HttpServerResponse.text("hello"))).pipe(
        Effect.provideService(HttpServerRequest.HttpServerRequest, request)
      )
    )
    assert.strictEqual(lines.length, 1)
    assert.match(lines[0]!, /^\[\d{4}-\d\d-\d\dT[\d:.]+Z\] INFO request GET \/a\/:id 200 [\d.]+ms 5B$/)
  })

  it("stdout writes the lines of a tick in one write, after the tick", async () => {
    const writes: Array<string> = []
    const write = process.stdout.write
    process.stdout.write = ((chunk: string) => {
      writes.push(chunk)
      return true
    }) as typeof process.stdout.write
    try {
      AccessLog.stdout("one")
      AccessLog.stdout("two")
      assert.deepStrictEqual(writes, [])
      await new Promise((resolve) => setImmediate(resolve))
      assert.deepStrictEqual(writes, ["one\ntwo\n"])
    } finally {
      process.stdout.write = write
    }
  })
})
