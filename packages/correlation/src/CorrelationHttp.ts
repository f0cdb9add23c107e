/**
 * The HTTP side of correlation: a server middleware that reads or mints `X-Correlation-ID`, continues the W3C trace,
 * opens the server span with the OpenTelemetry HTTP semantic conventions, annotates logs and echoes the id on every
 * response; and an `HttpClient` wrapper that propagates them on outgoing calls.
 *
 * @since 0.1.0
 */
import {
  type HttpApp,
  HttpClient,
  HttpClientRequest,
  HttpMiddleware,
  HttpServerError,
  HttpServerRequest,
  type HttpServerResponse
} from "@effect/platform"
import { RequestContext, ResponseHeaders } from "@ouroboros/kernel"
import { Context, Effect, Layer, Option, Tracer } from "effect"
import { constTrue, identity } from "effect/Function"
import * as Correlation from "./Correlation.js"

const setAttributes = (
  span: Tracer.Span,
  request: HttpServerRequest.HttpServerRequest,
  correlationId: string
): void => {
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
  span.attribute("correlation.id", correlationId)
}

const recordResponse = (span: Tracer.Span, status: number): void => {
  span.attribute("http.response.status_code", status)
  // OpenTelemetry HTTP conventions: a server span is an error for 5xx only, and `error.type` names it.
  if (status >= 500) span.attribute("error.type", String(status))
}

/**
 * The correlation and tracing middleware. For each request it:
 *
 * - reads `X-Correlation-ID` (kept when it is 1 to 128 of `[A-Za-z0-9._:-]`, replaced by a fresh UUID otherwise),
 *   sets `RequestContext.currentCorrelationId` (read by `ProblemHttp`, the loggers of `Logging`, audit records and
 *   outgoing calls), and echoes the header on every response, errors included;
 * - continues the W3C trace of `traceparent`/`tracestate` (an invalid `traceparent` starts a new trace) by opening a
 *   `server` span with the HTTP semantic-convention attributes (`http.request.method`, `url.path`, `http.route`,
 *   `http.response.status_code`, `server.address`, `user_agent.original`, …). When the platform's own server span is
 *   already open (the default of `HttpServer.serve`), that span is enriched instead of opening a second one; wrap the
 *   serving layer in {@link withServerSpan} to let this middleware own the span with strict W3C validation.
 *
 * Place it outside `ProblemHttp.middleware` so problem bodies carry the id.
 *
 * @since 0.1.0
 * @category middleware
 * @example
 * import { HttpApiBuilder } from "@effect/platform"
 * import { CorrelationHttp } from "@ouroboros/correlation"
 * import { ProblemHttp } from "@ouroboros/kernel"
 * const serve = HttpApiBuilder.serve((app) => CorrelationHttp.middleware(ProblemHttp.middleware(app)))
 */
export const middleware = <E, R>(
  app: HttpApp.Default<E, R>
): HttpApp.Default<E, R> =>
  Effect.withFiberRuntime<
    HttpServerResponse.HttpServerResponse,
    E,
    R | HttpServerRequest.HttpServerRequest
  >((fiber) => {
    const request = Context.unsafeGet(fiber.currentContext, HttpServerRequest.HttpServerRequest)
    const correlationId = Correlation.fromHeader(request.headers[Correlation.headerName])
    const incoming = Correlation.fromHeaders(request.headers)
    const traceState = Option.flatMap(incoming, (trace) => trace.traceState)

    // On every response, errors included (see `ResponseHeaders`).
    const needsHandler = ResponseHeaders.unsafeSet(request, Correlation.headerName, correlationId)
    const run = (span: Tracer.Span) => {
      // The correlation id lives in a FiberRef (not the context, not log annotations): the loggers of `Logging`,
      // problem bodies, in-flight tracking and outgoing calls read it there, and it costs one FiberRef write per
      // request where copying the context and the annotations cost several times more on this hot path.
      const traced = app.pipe(
        Effect.locally(RequestContext.currentCorrelationId, Option.some(correlationId)),
        Option.isSome(traceState) ? Effect.locally(Correlation.currentTraceState, traceState) : identity,
        Effect.withParentSpan(span),
        Effect.onExit((exit) => Effect.sync(() => recordResponse(span, HttpServerError.exitResponse(exit).status)))
      )
      return needsHandler ? Effect.zipRight(ResponseHeaders.ensureHandler, traced) : traced
    }

    const current = Context.getOption(fiber.currentContext, Tracer.ParentSpan)
    if (Option.isSome(current) && current.value._tag === "Span" && current.value.kind === "server") {
      // The platform's tracer already opened the server span: complete it rather than nest a second one.
      setAttributes(current.value, request, correlationId)
      return run(current.value)
    }
    return Effect.useSpan(
      request.method,
      Option.match(incoming, {
        onNone: () => ({ kind: "server", root: true, captureStackTrace: false }) as const,
        onSome: (trace) => ({ kind: "server", parent: trace.parent, captureStackTrace: false }) as const
      }),
      (span) => {
        setAttributes(span, request, correlationId)
        return run(span)
      }
    )
  })

/**
 * Turns off the platform's own server span for the requests a serving layer handles, so that {@link middleware}
 * opens the one server span itself, with strict W3C validation of `traceparent` and `tracestate` continuation.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { HttpApiBuilder } from "@effect/platform"
 * import { CorrelationHttp } from "@ouroboros/correlation"
 * const Served = CorrelationHttp.withServerSpan(HttpApiBuilder.serve(CorrelationHttp.middleware))
 */
export const withServerSpan = <A, E, R>(layer: Layer.Layer<A, E, R>): Layer.Layer<A, E, R> =>
  HttpMiddleware.withTracerDisabledWhen(layer, constTrue)

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
