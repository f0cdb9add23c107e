/**
 * The HTTP side of correlation: a server middleware that reads or mints `X-Correlation-ID`, continues the W3C trace,
 * completes (or opens) the server span, annotates logs and echoes the id on every response; and an `HttpClient`
 * wrapper that propagates them on outgoing calls.
 *
 * Effect 4's server already opens a `server` span per request (`HttpMiddleware.tracer`, run by `HttpServer.serve`
 * and `HttpRouter.serve`) with the OpenTelemetry HTTP attributes and `http.route`; this middleware completes that
 * span rather than opening a second one. {@link withServerSpan} hands the span to this middleware instead, for strict
 * W3C continuation.
 *
 * @since 0.1.0
 */
import { RequestContext, ResponseHeaders } from "@ouroboros/kernel"
import { Context, Effect, type Fiber, Layer, Option, Tracer } from "effect"
import { constTrue } from "effect/Function"
import {
  HttpClient,
  HttpClientRequest,
  HttpMiddleware,
  HttpServerError,
  HttpServerRequest,
  type HttpServerResponse
} from "effect/http"
import * as Correlation from "./Correlation.js"

// The OpenTelemetry HTTP server attributes, for the span this middleware opens itself (with `withServerSpan`); the
// platform's span sets the same ones on its own.
const setAttributes = (span: Tracer.Span, request: HttpServerRequest.HttpServerRequest): void => {
  span.attribute("http.request.method", request.method)
  // request.url is the request target (origin form): split it rather than parse a URL on every request
  const query = request.url.indexOf("?")
  span.attribute("url.path", query === -1 ? request.url : request.url.slice(0, query))
  if (query !== -1 && query < request.url.length - 1) span.attribute("url.query", request.url.slice(query + 1))
  span.attribute("url.scheme", request.headers["x-forwarded-proto"] === "https" ? "https" : "http")
  const host = request.headers["host"]
  if (host !== undefined) {
    const colon = host.lastIndexOf(":")
    const bracket = host.lastIndexOf("]")
    if (colon > bracket && colon > 0) {
      span.attribute("server.address", host.slice(0, colon))
      const port = Number(host.slice(colon + 1))
      if (Number.isInteger(port)) span.attribute("server.port", port)
    } else {
      span.attribute("server.address", host)
    }
  }
  const userAgent = request.headers["user-agent"]
  if (userAgent !== undefined) span.attribute("user_agent.original", userAgent)
  if (Option.isSome(request.remoteAddress)) span.attribute("client.address", request.remoteAddress.value)
}

// OpenTelemetry HTTP conventions: a server span is an error for 5xx only, and `error.type` names it. (The platform's
// span is failed for a 5xx, but carries no `error.type`.)
const recordError = (span: Tracer.Span, status: number): void => {
  if (status >= 500) span.attribute("error.type", String(status))
}

// The incoming `tracestate` belongs to the span's parent only when that parent is the incoming `traceparent`: the
// platform reads B3 headers too, and rejects versions of `traceparent` other than 00.
const continuedTraceState = (
  span: Tracer.Span,
  incoming: Option.Option<Correlation.IncomingTrace>
): Option.Option<string> => {
  if (Option.isNone(incoming) || Option.isNone(span.parent)) return Option.none()
  const parent = span.parent.value
  const remote = incoming.value.parent
  return parent.spanId === remote.spanId && parent.traceId === remote.traceId
    ? incoming.value.traceState
    : Option.none()
}

// The correlation id lives in a context reference (not in the log annotations): the loggers of `Logging`, problem
// bodies, in-flight tracking and outgoing calls read it there, and it costs one context entry per request where
// copying the annotations costs more on this hot path. The request's entries (and the span, when this middleware
// opens it) are added in one context update: each update is a context write, and its restoring finalizer, per request.
const withRequest = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  correlationId: string,
  traceState: Option.Option<string>,
  span: Tracer.Span | undefined
): Effect.Effect<A, E, R> =>
  Effect.updateContext(effect, (context: Context.Context<R>) => {
    // The span is the parent of what the request runs, as `Effect.withParentSpan` makes it, without the call-site
    // stack trace that `withParentSpan` captures (a stack walk per request) for a span that names no code of ours.
    let next = span === undefined ? context : Context.add(context, Tracer.ParentSpan, span)
    next = Context.add(next, RequestContext.currentCorrelationId, Option.some(correlationId))
    return Option.isSome(traceState) ? Context.add(next, Correlation.currentTraceState, traceState) : next
  })

// Spans of Effect's own tracer are not exported anywhere: their attributes would never be read (the platform's tracer
// skips them for the same reason). Ids are still made, for logs and outgoing calls.
const isRecorded = (fiber: Fiber.Fiber<unknown, unknown>, span: Tracer.Span): boolean =>
  span.sampled && fiber.getRef(Tracer.Tracer) !== Tracer.nativeTracer

const ownSpanRoot: Tracer.SpanOptionsNoTrace = { kind: "server", root: true }

/**
 * The correlation and tracing middleware. For each request it:
 *
 * - reads `X-Correlation-ID` (kept when it is 1 to 128 of `[A-Za-z0-9._:-]`, replaced by a fresh UUID otherwise),
 *   sets `RequestContext.currentCorrelationId` (read by `ProblemHttp`, the loggers of `Logging`, audit records and
 *   outgoing calls), and echoes the header on every response, errors included (`ResponseHeaders`);
 * - keeps the incoming `tracestate` for outgoing calls (`Correlation.currentTraceState`), when the request's span
 *   continues its `traceparent`;
 * - completes the platform's `server` span (Effect 4's `HttpMiddleware.tracer`, which parses `traceparent` and sets
 *   the HTTP semantic-convention attributes) with `correlation.id` and, for a 5xx, `error.type`. When no server span
 *   is open (the serving layer is wrapped in {@link withServerSpan}), it opens one itself: strict W3C continuation of
 *   `traceparent` (an invalid one starts a new trace) and the same attributes. Attributes are set on spans that a
 *   tracer records (a sampled span of an OpenTelemetry tracer, say): Effect's own tracer exports nothing, and the
 *   platform's span skips them there too; its spans still give logs and outgoing calls their trace and span ids.
 *
 * Give it to `HttpRouter.serve` as its `middleware` (or wrap the app with it): it then runs outside the router's
 * middlewares, so `ProblemHttp.layer` puts the id in problem bodies.
 *
 * @since 0.1.0
 * @category middleware
 * @example
 * import { CorrelationHttp } from "@ouroboros/correlation"
 * import { ProblemHttp } from "@ouroboros/kernel"
 * import { Layer } from "effect"
 * import { HttpRouter } from "effect/http"
 * import { HttpApiBuilder } from "effect/http-api"
 * declare const Api: Parameters<typeof HttpApiBuilder.layer>[0]
 * const Served = HttpRouter.serve(HttpApiBuilder.layer(Api).pipe(Layer.provide(ProblemHttp.layer)), {
 *   middleware: CorrelationHttp.middleware,
 *   disableLogger: true
 * })
 */
export const middleware = <E, R>(
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest> =>
  Effect.withFiber((fiber) => {
    const request = Context.getUnsafe(fiber.context, HttpServerRequest.HttpServerRequest)
    const correlationId = Correlation.fromHeader(request.headers[Correlation.headerName])
    const incoming = Correlation.fromHeaders(request.headers)
    // On every response, errors included (see `ResponseHeaders`).
    ResponseHeaders.setUnsafe(fiber.context, Correlation.headerName, correlationId)

    const current = fiber.cache.span
    if (current !== undefined && current._tag === "Span" && current.kind === "server") {
      // The platform's tracer already opened the server span: complete it rather than nest a second one.
      const traced = withRequest(app, correlationId, continuedTraceState(current, incoming), undefined)
      if (!isRecorded(fiber, current)) return traced
      current.attribute("correlation.id", correlationId)
      return Effect.onExit(
        traced,
        (exit) => Effect.sync(() => recordError(current, HttpServerError.exitResponse(exit).status))
      )
    }
    return Effect.useSpan(
      fiber.getRef(HttpMiddleware.SpanNameGenerator)(request),
      Option.isSome(incoming) ? { kind: "server", parent: incoming.value.parent } : ownSpanRoot,
      (span) => {
        const traced = withRequest(app, correlationId, Option.flatMap(incoming, (trace) => trace.traceState), span)
        if (!isRecorded(fiber, span)) return traced
        setAttributes(span, request)
        span.attribute("correlation.id", correlationId)
        return Effect.onExit(traced, (exit) =>
          Effect.sync(() => {
            const status = HttpServerError.exitResponse(exit).status
            span.attribute("http.response.status_code", status)
            recordError(span, status)
          }))
      }
    )
  })

/**
 * Turns off the platform's own server span (`HttpMiddleware.TracerDisabledWhen`) for the requests a serving layer
 * handles, so that {@link middleware} opens the one server span itself: strict W3C validation of `traceparent` (a
 * later version is continued by its version-00 prefix, as the specification asks; B3 headers are not read).
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { CorrelationHttp } from "@ouroboros/correlation"
 * import { HttpRouter } from "effect/http"
 * declare const App: Parameters<typeof HttpRouter.serve>[0]
 * const Served = CorrelationHttp.withServerSpan(HttpRouter.serve(App, { middleware: CorrelationHttp.middleware }))
 */
export const withServerSpan = <A, E, R>(layer: Layer.Layer<A, E, R>): Layer.Layer<A, E, R> =>
  Layer.provide(layer, Layer.succeed(HttpMiddleware.TracerDisabledWhen, constTrue))

/**
 * Adds `traceparent`, `tracestate` and `x-correlation-id` of the current request to every request a client sends.
 * (The platform client also opens a `client` span and names it as the parent in `traceparent`.)
 *
 * @since 0.1.0
 * @category outgoing
 */
export const propagate = (client: HttpClient.HttpClient): HttpClient.HttpClient =>
  HttpClient.mapRequestEffect(client, (request) =>
    Effect.map(Correlation.outgoingHeaders, (headers) =>
      // the client span's own `traceparent`, set later by the platform client, takes precedence
      HttpClientRequest.setHeaders(request, headers)))
