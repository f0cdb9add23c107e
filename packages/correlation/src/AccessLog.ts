/**
 * The access log and the HTTP server's RED metrics: after each response is written, one line at `Info` and one
 * record in `HttpMetrics`, from one hook per request.
 *
 * A line is the JSON of `Logging`'s lines (`{ timestamp, level, message, traceId?, spanId?, correlationId?, ...fields,
 * fiberId }`), with these fields:
 *
 * - `method`: the request method;
 * - `route`: the route template the router serves the request with (`/api/v1/documents/:id`, from a
 *   `RouteTable`), `unmatched` when no route does; never the path as sent (it may hold ids or secrets);
 * - `status`: the response status;
 * - `durationMs`: milliseconds, to the microsecond, from the request reaching this middleware to its response written
 *   (the metrics keep seconds, as Prometheus wants);
 * - `bytes`: the body's length as sent (after compression), `0` for `HEAD`, 204 and 304, `null` for a streamed body
 *   of unknown length;
 * - `client`: the client's address ({@link Options.client}; by default the request's `remoteAddress`, which is the
 *   client's behind `HttpMiddleware.xForwardedHeaders`), left out when unknown;
 * - whatever `annotate` adds (the server adds the tenant, the principal's subject and the API version).
 *
 * No header, query string or body is written, so no credential can be. The line is built as one string (no Effect
 * logger and no annotation per field) and written in batches: lines of the same tick are one write to stdout.
 *
 * Give the middleware to `HttpRouter.serve` inside `CorrelationHttp.middleware`: it then runs after the response is
 * written and sees the correlation and trace ids. When a router middleware rewrites URLs, add
 * {@link recordRoutedUrl} after it.
 *
 * @since 0.1.0
 */
import { RequestContext } from "@ouroboros/kernel"
import { Config, Context, Effect, type Fiber, type LogLevel, Option, References } from "effect"
import { HttpServerError, HttpServerRequest, type HttpServerResponse } from "effect/http"
import type * as HttpMetrics from "./HttpMetrics.js"
import * as RouteTable from "./RouteTable.js"

/**
 * Where lines go: one call per line, without the newline.
 *
 * @since 0.1.0
 * @category models
 */
export type Sink = (line: string) => void

let pending = ""
let scheduled = false
let hooked = false

const flush = (): void => {
  scheduled = false
  if (pending === "") return
  const out = pending
  pending = ""
  process.stdout.write(out)
}

/**
 * Standard output, in batches: the lines of one tick (or 64 KB) are written together, after the responses of that
 * tick; what is pending is written when the process exits.
 *
 * @since 0.1.0
 * @category sinks
 */
export const stdout: Sink = (line) => {
  pending += line + "\n"
  if (pending.length >= 65_536) return flush()
  if (scheduled) return
  scheduled = true
  setImmediate(flush)
  if (!hooked) {
    hooked = true
    process.once("exit", flush)
  }
}

/**
 * Fields that a server adds to each line from the request, the context the middleware runs in, and what was answered
 * (the route and the response): the tenant, the principal, the API version (the route's version segment), say. It
 * runs after the response is written. Values are written as JSON; `undefined` ones are left out. Never return a
 * credential, a header or a query string.
 *
 * @since 0.1.0
 * @category models
 */
export type Annotate = (
  request: HttpServerRequest.HttpServerRequest,
  context: Context.Context<never>,
  answered: {
    readonly route: RouteTable.Route
    readonly response: HttpServerResponse.HttpServerResponse
  }
) => Readonly<Record<string, string | number | boolean | null | undefined>> | undefined

/**
 * Options of {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The router's routes (recorded by `RouteTable.layer`). */
  readonly routes: RouteTable.RouteTable
  /** Write the access log (default true; `LOG_REQUESTS`). Lines are also left out below `Info` (`LOG_LEVEL`). */
  readonly log?: boolean | undefined
  /** `json` (default) or `pretty` (one human-readable line), as `LOG_FORMAT`. */
  readonly format?: "json" | "pretty" | undefined
  /** Record the RED metrics here (`HttpMetrics.make`); none when absent. */
  readonly metrics?: HttpMetrics.HttpMetrics | undefined
  /** Extra fields of each line. */
  readonly annotate?: Annotate | undefined
  /**
   * The client's address (default: the request's `remoteAddress`). A server behind proxies gives the address its
   * rate limiter resolves (trusted `X-Forwarded-For`), e.g. `(request) => resolve(request).client`.
   */
  readonly client?: ((request: HttpServerRequest.HttpServerRequest) => string | undefined) | undefined
  /** Where lines go (default {@link stdout}). */
  readonly sink?: Sink | undefined
}

/**
 * The access-log settings from the environment: `LOG_REQUESTS` (default `true`; `false`, `no`, `off`, `0` turn the
 * access log off, the metrics stay).
 *
 * @since 0.1.0
 * @category config
 */
export const config = Config.all({
  log: Config.Boolean("LOG_REQUESTS").pipe(Config.withDefault(true))
})

/**
 * A middleware of this module: it keeps the app's errors and requirements (plus the request).
 *
 * @since 0.1.0
 * @category models
 */
export interface Middleware {
  <E, R>(
    app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
  ): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest>
}

// The URL the router matched, per underlying request, when a middleware before the router rewrote it.
const routedUrls = new WeakMap<object, string>()

/**
 * Records the request's URL as the router will match it, for the access log and the metrics to name the route of a
 * request whose URL a router middleware rewrote (API version negotiation: `/api/documents` served as
 * `/api/v1/documents`). Put it innermost among the router's global middlewares, after every rewrite. Without it the
 * route is looked up by the URL as sent.
 *
 * @since 0.1.0
 * @category middleware
 */
export const recordRoutedUrl: Middleware = <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
  Effect.withFiber<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest>((fiber) => {
    const request = Context.getUnsafe(fiber.context, HttpServerRequest.HttpServerRequest)
    const source = request.source
    if (typeof source === "object" && source !== null) routedUrls.set(source, request.url)
    return app
  })

const routedUrlOf = (request: HttpServerRequest.HttpServerRequest): string => {
  const source = request.source
  return (typeof source === "object" && source !== null ? routedUrls.get(source) : undefined) ?? request.url
}

// The minimum levels at which an `Info` line is written.
const infoEnabled: ReadonlySet<LogLevel.LogLevel> = new Set<LogLevel.LogLevel>(["All", "Trace", "Debug", "Info"])

const bytesOf = (request: HttpServerRequest.HttpServerRequest, response: HttpServerResponse.HttpServerResponse) => {
  const status = response.status
  if (request.method === "HEAD" || status === 204 || status === 304 || status < 200) return 0
  const body = response.body
  switch (body._tag) {
    case "Empty":
      return 0
    case "Uint8Array":
      return body.contentLength
    case "Raw":
    case "Stream": {
      if (body.contentLength !== undefined) return body.contentLength
      const declared = response.headers["content-length"]
      return declared === undefined ? null : Number(declared)
    }
    default:
      return null
  }
}

const remoteAddress = (request: HttpServerRequest.HttpServerRequest): string | undefined =>
  Option.getOrUndefined(request.remoteAddress)

// `Date#toISOString` costs most of a line: the text up to the second is made once a second.
let cachedSecond = -1
let cachedPrefix = ""

/**
 * `new Date(millis).toISOString()`, made once a second and completed with the milliseconds.
 *
 * @since 0.1.0
 * @category formatting
 */
export const timestamp = (millis: number): string => {
  const second = Math.floor(millis / 1000)
  if (second !== cachedSecond) {
    cachedSecond = second
    cachedPrefix = new Date(second * 1000).toISOString().slice(0, 20)
  }
  const ms = millis - second * 1000
  return `${cachedPrefix}${ms < 10 ? "00" : ms < 100 ? "0" : ""}${ms}Z`
}

/**
 * A line in `Logging`'s JSON form: `fields` (each `,"name":value`) follow the ids, as annotations do.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatJson = (
  millis: number,
  ids: {
    readonly traceId?: string | undefined
    readonly spanId?: string | undefined
    readonly correlationId?: string | undefined
  },
  fields: string,
  fiberId: number
): string => {
  let line = `{"timestamp":"${timestamp(millis)}","level":"INFO","message":"request"`
  if (ids.traceId !== undefined) line += `,"traceId":"${ids.traceId}","spanId":"${ids.spanId}"`
  if (ids.correlationId !== undefined) line += `,"correlationId":${JSON.stringify(ids.correlationId)}`
  return `${line}${fields},"fiberId":"#${fiberId}"}`
}

// Methods and route templates are few: each is quoted once.
const quoted = new Map<string, string>()
const quote = (text: string): string => {
  let json = quoted.get(text)
  if (json === undefined) {
    json = JSON.stringify(text)
    if (quoted.size < 10_000) quoted.set(text, json)
  }
  return json
}

/**
 * Builds the middleware.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * import { AccessLog, CorrelationHttp, HttpMetrics, RouteTable } from "@ouroboros/correlation"
 * import { Effect, Layer } from "effect"
 * import { HttpRouter } from "effect/http"
 * declare const Routes: Layer.Layer<never, never, HttpRouter.HttpRouter>
 * const routes = RouteTable.make()
 * const Served = Layer.unwrap(Effect.gen(function*() {
 *   const { log } = yield* AccessLog.config
 *   const observe = AccessLog.make({ routes, log, metrics: yield* HttpMetrics.make })
 *   return HttpRouter.serve(Routes.pipe(Layer.provide(RouteTable.layer(routes))), {
 *     disableLogger: true,
 *     middleware: (app) => CorrelationHttp.middleware(observe(app))
 *   })
 * }))
 */
export const make = (options: Options): Middleware => {
  const routes = options.routes
  const log = options.log ?? true
  const pretty = options.format === "pretty"
  const metrics = options.metrics
  const annotate = options.annotate
  const sink = options.sink ?? stdout
  const clientOf = options.client ?? remoteAddress
  if (!log && metrics === undefined) return (app) => app

  const observe = (
    fiber: Fiber.Fiber<unknown, unknown>,
    request: HttpServerRequest.HttpServerRequest,
    response: HttpServerResponse.HttpServerResponse,
    started: number
  ): void => {
    const elapsed = performance.now() - started
    const route = routes.lookup(request.method, routedUrlOf(request)) ?? RouteTable.unmatched
    const status = response.status
    metrics?.record(request.method, route, status, elapsed / 1000)
    if (!log) return
    if (!infoEnabled.has(fiber.getRef(References.MinimumLogLevel))) return
    const durationMs = Math.round(elapsed * 1000) / 1000
    const bytes = bytesOf(request, response)
    const client = clientOf(request)
    let fields = `,"method":${quote(request.method)},"route":${quote(route.path)},"status":${status}` +
      `,"durationMs":${durationMs},"bytes":${bytes}`
    if (client !== undefined) fields += `,"client":${JSON.stringify(client)}`
    const extra = annotate?.(request, fiber.context, { route, response })
    if (extra !== undefined) {
      for (const key in extra) {
        const value = extra[key]
        if (value !== undefined) fields += `,${JSON.stringify(key)}:${JSON.stringify(value)}`
      }
    }
    // The ids `Logging` writes, read as it reads them.
    const span = fiber.cache.span
    const correlationId = fiber.getRef(RequestContext.currentCorrelationId)
    const ids = {
      traceId: span?.traceId,
      spanId: span?.spanId,
      correlationId: Option.getOrUndefined(correlationId)
    }
    const now = Date.now()
    sink(
      pretty
        ? prettyLine(now, request.method, route.path, status, durationMs, bytes, ids, client, extra)
        : formatJson(now, ids, fields, fiber.id)
    )
  }

  return <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
    Effect.withFiber<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest>((fiber) => {
      const started = performance.now()
      const request = Context.getUnsafe(fiber.context, HttpServerRequest.HttpServerRequest)
      return Effect.onExitPrimitive(app, (exit) => {
        try {
          observe(
            fiber,
            request,
            exit._tag === "Success" ? exit.value : HttpServerError.exitResponse(exit),
            started
          )
        } catch {
          // An access log that cannot be written is no reason to fail a request that has been answered.
        }
        return undefined
      })
    })
}

const prettyLine = (
  millis: number,
  method: string,
  route: string,
  status: number,
  durationMs: number,
  bytes: number | null,
  ids: { readonly traceId?: string | undefined; readonly correlationId?: string | undefined },
  client: string | undefined,
  extra: Readonly<Record<string, unknown>> | undefined
): string => {
  let line = `[${timestamp(millis)}] INFO request ${method} ${route} ${status} ${durationMs}ms ${bytes ?? "?"}B`
  if (client !== undefined) line += ` client=${client}`
  if (ids.correlationId !== undefined) line += ` correlationId=${ids.correlationId}`
  if (ids.traceId !== undefined) line += ` traceId=${ids.traceId}`
  if (extra !== undefined) {
    for (const key in extra) if (extra[key] !== undefined) line += ` ${key}=${String(extra[key])}`
  }
  return line
}
