import {
  FetchHttpClient,
  HttpApi,
  HttpApiBuilder,
  HttpApiEndpoint,
  HttpApiGroup,
  HttpClient,
  HttpRouter,
  HttpServer,
  HttpServerResponse,
  type HttpApp
} from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { SpanKind } from "@opentelemetry/api"
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base"
import { Problem, ProblemHttp } from "@ouroboros/kernel"
import { Context, Effect, Layer, Logger, Option, Schema } from "effect"
import { createServer, type IncomingHttpHeaders } from "node:http"
import { Correlation, CorrelationHttp, Logging, Tracing } from "../src/index.js"

const incomingTraceId = "4bf92f3577b34da6a3ce929d0e0e4736"
const incomingParent = "00f067aa0ba902b7"

/** A tiny dependency that records the headers of every request it gets. */
const standIn = Effect.acquireRelease(
  Effect.async<{ readonly url: string; readonly seen: Array<IncomingHttpHeaders>; readonly close: () => void }>(
    (resume) => {
      const seen: Array<IncomingHttpHeaders> = []
      const server = createServer((req, res) => {
        seen.push(req.headers)
        res.writeHead(200, { "content-type": "application/json" }).end(`{"response":"42"}`)
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, seen, close: () => server.close() }))
      })
    }
  ),
  (s) => Effect.sync(() => s.close())
)

const serve = <E, R>(
  app: HttpApp.Default<E, R>,
  options: { readonly strict: boolean; readonly extra?: Layer.Layer<never> }
) =>
  Effect.gen(function*() {
    // Middlewares that rewrite responses wrap the app: `HttpServer.serve`'s own middleware argument runs after the
    // response is written.
    const served = HttpServer.serve(CorrelationHttp.middleware(ProblemHttp.middleware(app)))
    const layer = (options.strict ? CorrelationHttp.withServerSpan(served) : served).pipe(
      Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
      Layer.provide(options.extra ?? Layer.empty)
    )
    const context = yield* Layer.build(layer as Layer.Layer<HttpServer.HttpServer, unknown, never>)
    const address = Context.get(context, HttpServer.HttpServer).address
    return address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : ""
  })

const router = HttpRouter.empty.pipe(
  HttpRouter.get("/ok", Effect.as(Effect.log("handling"), HttpServerResponse.text("ok"))),
  HttpRouter.get("/boom", Effect.die(new Error("secret internals")))
)

describe("CorrelationHttp.middleware", () => {
  it.live("echoes a valid id on 200, 404 and 500, and problem bodies carry it", () =>
    Effect.gen(function*() {
      const base = yield* serve(router, { strict: true })
      for (const [path, status] of [["/ok", 200], ["/nowhere", 404], ["/boom", 500]] as const) {
        const response = yield* Effect.promise(() => fetch(base + path, { headers: { "x-correlation-id": "req:42" } }))
        assert.strictEqual(response.status, status, path)
        assert.strictEqual(response.headers.get("x-correlation-id"), "req:42", path)
        if (status !== 200) {
          assert.strictEqual(response.headers.get("content-type"), "application/problem+json")
          const body = (yield* Effect.promise(() => response.json())) as Record<string, unknown>
          assert.strictEqual(body.correlationId, "req:42")
          assert.notInclude(JSON.stringify(body), "secret internals")
        } else {
          yield* Effect.promise(() => response.text())
        }
      }
    }).pipe(Effect.scoped))

  it.live("replaces an invalid id with a fresh one, echoed and in the problem body", () =>
    Effect.gen(function*() {
      const base = yield* serve(router, { strict: true })
      const response = yield* Effect.promise(() =>
        fetch(base + "/nowhere", { headers: { "x-correlation-id": "no spaces allowed" } })
      )
      const echoed = response.headers.get("x-correlation-id") ?? ""
      assert.notStrictEqual(echoed, "no spaces allowed")
      assert.isTrue(Correlation.isValid(echoed))
      const body = (yield* Effect.promise(() => response.json())) as Record<string, unknown>
      assert.strictEqual(body.correlationId, echoed)
    }).pipe(Effect.scoped))

  it.live("log lines carry correlationId, traceId and spanId", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const capture = Logger.replace(
        Logger.defaultLogger,
        Logger.map(Logging.jsonLogger, (line) => void lines.push(line))
      )
      const base = yield* serve(router, { strict: true, extra: capture })
      const response = yield* Effect.promise(() =>
        fetch(base + "/ok", {
          headers: { "x-correlation-id": "log-1", traceparent: `00-${incomingTraceId}-${incomingParent}-01` }
        })
      )
      yield* Effect.promise(() => response.text())
      const line = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.message === "handling")
      assert.isDefined(line)
      assert.strictEqual(line!.correlationId, "log-1")
      assert.strictEqual(line!.traceId, incomingTraceId)
      assert.match(String(line!.spanId), /^[0-9a-f]{16}$/)
      assert.strictEqual(line!.level, "INFO")
    }).pipe(Effect.scoped))
})

const askApp = (dependency: string) =>
  HttpRouter.empty.pipe(
    HttpRouter.post(
      "/ask",
      Effect.gen(function*() {
        const client = CorrelationHttp.propagate(yield* HttpClient.HttpClient)
        const response = yield* client.post(dependency + "/api/generate").pipe(Effect.orDie)
        return yield* HttpServerResponse.json(yield* response.json.pipe(Effect.orDie))
      })
    ),
    Effect.provide(FetchHttpClient.layer)
  )

describe("tracing with the in-memory exporter", () => {
  for (const strict of [true, false]) {
    const which = strict ? "own" : "platform"
    it.live(`one /ask request is one connected trace, seen by the dependency (${which} span)`, () =>
      Effect.gen(function*() {
        const exporter = new InMemorySpanExporter()
        const dependency = yield* standIn
        const base = yield* serve(askApp(dependency.url), { strict, extra: Tracing.layerTest(exporter) })
        const response = yield* Effect.promise(() =>
          fetch(base + "/ask", {
            method: "POST",
            headers: {
              "x-correlation-id": "ask-1",
              traceparent: `00-${incomingTraceId}-${incomingParent}-01`,
              tracestate: "vendor=abc",
              "user-agent": "test-agent"
            }
          })
        )
        assert.strictEqual(response.status, 200)
        yield* Effect.promise(() => response.text())
        yield* Effect.sleep("50 millis")
        const spans = exporter.getFinishedSpans()
        const servers = spans.filter((s) => s.kind === SpanKind.SERVER)
        assert.strictEqual(servers.length, 1)
        const server = servers[0]!
        assert.strictEqual(server.spanContext().traceId, incomingTraceId)
        assert.strictEqual(server.parentSpanContext?.spanId, incomingParent)
        assert.strictEqual(server.attributes["http.request.method"], "POST")
        assert.strictEqual(server.attributes["url.path"], "/ask")
        assert.strictEqual(server.attributes["http.route"], "/ask")
        assert.strictEqual(server.attributes["http.response.status_code"], 200)
        assert.strictEqual(server.attributes["server.address"], "127.0.0.1")
        assert.strictEqual(server.attributes["user_agent.original"], "test-agent")
        const client = spans.find((s) => s.kind === SpanKind.CLIENT)
        assert.isDefined(client)
        assert.strictEqual(client!.spanContext().traceId, incomingTraceId)
        // the client span descends from the server span
        const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]))
        let cursor = client!.parentSpanContext?.spanId
        const chain: Array<string> = []
        while (cursor !== undefined && byId.has(cursor)) {
          chain.push(cursor)
          cursor = byId.get(cursor)!.parentSpanContext?.spanId
        }
        assert.include(chain, server.spanContext().spanId)
        // and the dependency saw the same trace, with the client span as parent
        assert.strictEqual(dependency.seen.length, 1)
        const seen = dependency.seen[0]!
        const traceparent = Option.getOrThrow(Correlation.parseTraceParent(seen["traceparent"] as string))
        assert.strictEqual(traceparent.traceId, incomingTraceId)
        assert.strictEqual(traceparent.parentId, client!.spanContext().spanId)
        assert.strictEqual(seen["tracestate"], "vendor=abc")
        assert.strictEqual(seen["x-correlation-id"], "ask-1")
      }).pipe(Effect.scoped))
  }

  it.live("an invalid traceparent starts a new trace", () =>
    Effect.gen(function*() {
      const exporter = new InMemorySpanExporter()
      const base = yield* serve(router, { strict: true, extra: Tracing.layerTest(exporter) })
      const response = yield* Effect.promise(() =>
        fetch(base + "/ok", { headers: { traceparent: `00-${"0".repeat(32)}-${incomingParent}-01` } })
      )
      yield* Effect.promise(() => response.text())
      const server = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.SERVER)
      assert.isDefined(server)
      assert.notStrictEqual(server!.spanContext().traceId, "0".repeat(32))
      assert.isUndefined(server!.parentSpanContext)
    }).pipe(Effect.scoped))
})

class Api extends HttpApi.make("test").add(
  HttpApiGroup.make("docs").add(
    HttpApiEndpoint.get("get", "/api/v1/documents/:id")
      .setPath(Schema.Struct({ id: Schema.String }))
      .addSuccess(Schema.String)
      .addError(Problem.NotFound)
  )
) {}

const ApiLive = HttpApiBuilder.api(Api).pipe(
  Layer.provide(HttpApiBuilder.group(Api, "docs", (handlers) =>
    handlers.handle("get", ({ path }) =>
      path.id === "known" ? Effect.succeed("doc") : Effect.fail(new Problem.NotFound({ detail: `no ${path.id}` }))
    )))
)

describe("wired around an HttpApi as the README shows", () => {
  it.live("problem bodies, echoed ids and one server span with http.route", () =>
    Effect.gen(function*() {
      const exporter = new InMemorySpanExporter()
      let server: ReturnType<typeof createServer> | undefined
      // HttpApi encodes its typed errors outside its own middlewares, and serve's middleware argument runs after the
      // response is written: so response-rewriting middlewares wrap `HttpApiBuilder.httpApp` itself.
      const served = HttpApiBuilder.httpApp.pipe(
        Effect.map((app) => HttpServer.serve(CorrelationHttp.middleware(ProblemHttp.middleware(app) as typeof app))),
        Layer.unwrapEffect,
        Layer.provide([HttpApiBuilder.Router.Live, HttpApiBuilder.Middleware.layer])
      )
      yield* Layer.build(
        CorrelationHttp.withServerSpan(served).pipe(
          Layer.provide(ApiLive),
          Layer.provide(NodeHttpServer.layer(() => (server = createServer()), { port: 0, host: "127.0.0.1" })),
          Layer.provide(Tracing.layerTest(exporter))
        )
      )
      const address = server!.address()
      const base = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`
      const cases = [["/api/v1/documents/known", 200], ["/api/v1/documents/other", 404], ["/nowhere", 404]] as const
      for (const [path, status] of cases) {
        const response = yield* Effect.promise(() => fetch(base + path, { headers: { "x-correlation-id": "api-1" } }))
        assert.strictEqual(response.status, status, path)
        assert.strictEqual(response.headers.get("x-correlation-id"), "api-1", path)
        const text = yield* Effect.promise(() => response.text())
        if (status === 404) {
          assert.strictEqual(response.headers.get("content-type"), "application/problem+json", path)
          assert.strictEqual((JSON.parse(text) as Record<string, unknown>).correlationId, "api-1", path)
        }
      }
      const servers = exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER)
      assert.strictEqual(servers.length, 3)
      assert.strictEqual(servers[0]!.attributes["http.route"], "/api/v1/documents/:id")
      assert.strictEqual(servers[1]!.attributes["http.response.status_code"], 404)
    }).pipe(Effect.scoped))
})
