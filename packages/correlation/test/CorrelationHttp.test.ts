import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { SpanKind } from "@opentelemetry/api"
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { Problem, ProblemHttp } from "@ouroboros/kernel"
import { Context, Effect, Layer, Logger, Option, Schema } from "effect"
import { FetchHttpClient, HttpClient, HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup } from "effect/http-api"
import { createServer, type IncomingHttpHeaders } from "node:http"
import { Correlation, CorrelationHttp, Logging, Tracing } from "../src/index.js"

const incomingTraceId = "4bf92f3577b34da6a3ce929d0e0e4736"
const incomingParent = "00f067aa0ba902b7"

/** A tiny dependency that records the headers of every request it gets. */
const standIn = Effect.acquireRelease(
  Effect.callback<{ readonly url: string; readonly seen: Array<IncomingHttpHeaders>; readonly close: () => void }>(
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

const NodeServer = NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })

/** Serves a layer over Node on a free port, for the life of the test's scope, and returns its base URL. */
const listen = <E>(
  served: Layer.Layer<never, E, Layer.Success<typeof NodeServer>>,
  extra: Layer.Layer<never> = Layer.empty
) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(served.pipe(Layer.provideMerge(NodeServer), Layer.provide(extra)))
    return HttpServer.formatAddress(Context.get(context, HttpServer.HttpServer).address)
  })

/**
 * The correlation middleware in `serve`'s position runs outside the router's middlewares, `ProblemHttp.layer` among
 * them, so problem bodies carry the id.
 */
const serve = <E, R>(
  routes: Layer.Layer<never, E, R>,
  options: { readonly strict: boolean; readonly extra?: Layer.Layer<never> }
) => {
  const served = HttpRouter.serve(Layer.mergeAll(routes, ProblemHttp.layer), {
    middleware: CorrelationHttp.middleware,
    disableLogger: true,
    disableListenLog: true
  })
  return listen(
    (options.strict ? CorrelationHttp.withServerSpan(served) : served) as Layer.Layer<never, E, HttpServer.HttpServer>,
    options.extra
  )
}

/**
 * The server spans the exporter holds once there are `count` of them: a request's server span ends after its
 * response is sent. The deadline only bounds the test.
 */
const serverSpans = (exporter: InMemorySpanExporter, count: number) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 10_000
    while (true) {
      const spans = exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER)
      if (spans.length >= count || Date.now() > deadline) return spans
      yield* Effect.sleep("5 millis")
    }
  })

const routes = Layer.mergeAll(
  HttpRouter.add("GET", "/ok", Effect.as(Effect.log("handling"), HttpServerResponse.text("ok"))),
  HttpRouter.add("GET", "/boom", Effect.die(new Error("secret internals")))
)

describe("CorrelationHttp.middleware", () => {
  it.live("echoes a valid id on 200, 404 and 500, and problem bodies carry it", () =>
    Effect.gen(function*() {
      const base = yield* serve(routes, { strict: true })
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
    }))

  it.live("replaces an invalid id with a fresh one, echoed and in the problem body", () =>
    Effect.gen(function*() {
      const base = yield* serve(routes, { strict: true })
      const response = yield* Effect.promise(() =>
        fetch(base + "/nowhere", { headers: { "x-correlation-id": "no spaces allowed" } })
      )
      const echoed = response.headers.get("x-correlation-id") ?? ""
      assert.notStrictEqual(echoed, "no spaces allowed")
      assert.isTrue(Correlation.isValid(echoed))
      const body = (yield* Effect.promise(() => response.json())) as Record<string, unknown>
      assert.strictEqual(body.correlationId, echoed)
    }))

  it.live("log lines carry correlationId, traceId and spanId", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const capture = Logger.layer([Logger.map(Logging.jsonLogger, (line) => void lines.push(line))])
      const base = yield* serve(routes, { strict: true, extra: capture })
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
    }))
})

const askRoutes = (dependency: string) =>
  HttpRouter.add(
    "POST",
    "/ask",
    Effect.gen(function*() {
      const client = CorrelationHttp.propagate(yield* HttpClient.HttpClient)
      const response = yield* client.post(dependency + "/api/generate").pipe(Effect.orDie)
      return yield* HttpServerResponse.json(yield* response.json.pipe(Effect.orDie)).pipe(Effect.orDie)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

describe("tracing with the in-memory exporter", () => {
  for (const strict of [true, false]) {
    const which = strict ? "own" : "platform"
    it.live(`one /ask request is one connected trace, seen by the dependency (${which} span)`, () =>
      Effect.gen(function*() {
        const exporter = new InMemorySpanExporter()
        const dependency = yield* standIn
        const base = yield* serve(askRoutes(dependency.url), { strict, extra: Tracing.layerTest(exporter) })
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
        const servers = yield* serverSpans(exporter, 1)
        const spans = exporter.getFinishedSpans()
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
        assert.strictEqual(server.attributes["correlation.id"], "ask-1")
        const client = spans.find((s) => s.kind === SpanKind.CLIENT)
        assert.isDefined(client)
        assert.strictEqual(client!.spanContext().traceId, incomingTraceId)
        // the client span descends from the server span
        const byId = new Map<string, ReadableSpan>(spans.map((s) => [s.spanContext().spanId, s]))
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
      }))
  }

  it.live("a later traceparent version: continued by withServerSpan's own span, a new trace on the platform's", () =>
    Effect.gen(function*() {
      for (const strict of [true, false]) {
        const exporter = new InMemorySpanExporter()
        const dependency = yield* standIn
        const base = yield* serve(askRoutes(dependency.url), { strict, extra: Tracing.layerTest(exporter) })
        const response = yield* Effect.promise(() =>
          fetch(base + "/ask", {
            method: "POST",
            headers: { traceparent: `cc-${incomingTraceId}-${incomingParent}-01-later`, tracestate: "vendor=abc" }
          })
        )
        yield* Effect.promise(() => response.text())
        const servers = yield* serverSpans(exporter, 1)
        assert.strictEqual(servers.length, 1)
        const seen = dependency.seen[0]!
        const traceparent = Option.getOrThrow(Correlation.parseTraceParent(seen["traceparent"] as string))
        if (strict) {
          assert.strictEqual(servers[0]!.spanContext().traceId, incomingTraceId)
          assert.strictEqual(servers[0]!.parentSpanContext?.spanId, incomingParent)
          assert.strictEqual(traceparent.traceId, incomingTraceId)
          assert.strictEqual(seen["tracestate"], "vendor=abc")
        } else {
          // The platform reads version 00 only: a new trace, to which the incoming tracestate does not belong.
          assert.notStrictEqual(servers[0]!.spanContext().traceId, incomingTraceId)
          assert.isUndefined(servers[0]!.parentSpanContext)
          assert.strictEqual(traceparent.traceId, servers[0]!.spanContext().traceId)
          assert.isUndefined(seen["tracestate"])
        }
      }
    }))

  it.live("a 5xx server span carries its status, error.type and the correlation id (own and platform span)", () =>
    Effect.gen(function*() {
      for (const strict of [true, false]) {
        const exporter = new InMemorySpanExporter()
        const base = yield* serve(routes, { strict, extra: Tracing.layerTest(exporter) })
        const response = yield* Effect.promise(() => fetch(base + "/boom", { headers: { "x-correlation-id": "e-1" } }))
        yield* Effect.promise(() => response.text())
        const server = (yield* serverSpans(exporter, 1))[0]
        assert.isDefined(server)
        assert.strictEqual(server!.attributes["http.response.status_code"], 500)
        assert.strictEqual(server!.attributes["error.type"], "500")
        assert.strictEqual(server!.attributes["correlation.id"], "e-1")
      }
    }))

  it.live("an invalid traceparent starts a new trace", () =>
    Effect.gen(function*() {
      const exporter = new InMemorySpanExporter()
      const base = yield* serve(routes, { strict: true, extra: Tracing.layerTest(exporter) })
      const response = yield* Effect.promise(() =>
        fetch(base + "/ok", { headers: { traceparent: `00-${"0".repeat(32)}-${incomingParent}-01` } })
      )
      yield* Effect.promise(() => response.text())
      const server = (yield* serverSpans(exporter, 1))[0]
      assert.isDefined(server)
      assert.notStrictEqual(server!.spanContext().traceId, "0".repeat(32))
      assert.isUndefined(server!.parentSpanContext)
    }))
})

class Api extends HttpApi.make("test").add(
  HttpApiGroup.make("docs").add(
    HttpApiEndpoint.get("get", "/api/v1/documents/:id", {
      params: { id: Schema.String },
      success: Schema.String,
      error: Problem.NotFound
    })
  )
) {}

const DocsLive = HttpApiBuilder.group(
  Api,
  "docs",
  (handlers) =>
    handlers.handle(
      "get",
      ({ params }) =>
        params.id === "known" ? Effect.succeed("doc") : Effect.fail(new Problem.NotFound({ detail: `no ${params.id}` }))
    )
)

describe("wired around an HttpApi as the README shows", () => {
  it.live("problem bodies, echoed ids and one server span with http.route", () =>
    Effect.gen(function*() {
      const exporter = new InMemorySpanExporter()
      const Served = CorrelationHttp.withServerSpan(
        HttpRouter.serve(
          HttpApiBuilder.layer(Api).pipe(Layer.provide(DocsLive), Layer.provide(ProblemHttp.layer)),
          { middleware: CorrelationHttp.middleware, disableLogger: true, disableListenLog: true }
        )
      )
      const base = yield* listen(Served, Tracing.layerTest(exporter))
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
      const servers = yield* serverSpans(exporter, 3)
      assert.strictEqual(servers.length, 3)
      assert.strictEqual(servers[0]!.attributes["http.route"], "/api/v1/documents/:id")
      assert.strictEqual(servers[1]!.attributes["http.response.status_code"], 404)
    }))
})
