/**
 * The HTTP side of graceful shutdown: a middleware that tracks every request fiber, and a Node HTTP server layer
 * whose server handle the shutdown controls (answer with `Connection: close` once draining, stop accepting, close
 * idle keep-alive connections, close the rest at the end).
 *
 * @since 0.1.0
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Problem } from "@ouroboros/kernel"
import { Config, Context, Effect, Layer, Schema, SchemaIssue } from "effect"
import type { HttpServerError } from "effect/http"
import { HttpServer, HttpServerRequest, type HttpServerResponse } from "effect/http"
import * as Http from "node:http"
import * as Net from "node:net"
import type * as Stream from "node:stream"
import * as InFlight from "./InFlight.js"
import * as Shutdown from "./Shutdown.js"

const pathOf = (url: string): string => {
  const query = url.indexOf("?")
  return query === -1 ? url : url.slice(0, query)
}

/**
 * Tracks the request in `InFlight` (method, path, correlation id) for as long as it runs, and makes its handling
 * interruptible so a shutdown can cut it past the timeout (the server then answers 503).
 *
 * Put it outermost: the `middleware` option of `HttpRouter.serve` (or the middleware of `HttpServer.serve`) is
 * right, it then also covers the writing of the response.
 *
 * @since 0.1.0
 * @category middleware
 * @example
 * import { ShutdownHttp } from "@ouroboros/shutdown"
 * import { HttpRouter, HttpServerResponse } from "effect/http"
 *
 * const Routes = HttpRouter.add("GET", "/", HttpServerResponse.text("hi"))
 * const Serve = HttpRouter.serve(Routes, { middleware: ShutdownHttp.middleware, disableLogger: true })
 */
export const middleware = <E, R>(
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
): Effect.Effect<
  HttpServerResponse.HttpServerResponse,
  E,
  R | HttpServerRequest.HttpServerRequest | InFlight.InFlight
> => {
  // Made interruptible once per app, not per request.
  const interruptible = Effect.interruptible(app)
  return Effect.withFiber((fiber) => {
    const request = Context.getUnsafe(fiber.context, HttpServerRequest.HttpServerRequest)
    return Context.getUnsafe(fiber.context, InFlight.InFlight).track(new RequestInfoOf(request), interruptible)
  })
}

// What the tracker knows of a request, read from the request when it reports one (a shutdown that cuts it), not on
// every request.
class RequestInfoOf implements InFlight.RequestInfo {
  constructor(private readonly request: HttpServerRequest.HttpServerRequest) {}
  get method(): string {
    return this.request.method
  }
  get route(): string {
    return pathOf(this.request.url)
  }
  get correlationId(): string | undefined {
    return this.request.headers["x-correlation-id"]
  }
}

/**
 * The Node server under a layer built by {@link layerServer}, for what the layer does not cover.
 *
 * @since 0.1.0
 * @category services
 */
export class NodeServer extends Context.Service<NodeServer, Http.Server>()("@ouroboros/shutdown/NodeServer") {}

/**
 * The limits of the Node server: how long a client may take to send a request, how long an idle keep-alive
 * connection stays open, how many connections are open at once. Every field is optional; the defaults
 * ({@link defaultLimits}) suit a service behind a load balancer.
 *
 * @since 0.1.0
 * @category models
 */
export interface Limits {
  /**
   * Milliseconds a client has to send the request line and headers, from their first byte (Node's
   * `headersTimeout`; default 10 000). A slow-headers client (slowloris) is answered 408 and disconnected after it.
   * Must not exceed `requestTimeout` (when that is not 0).
   */
  readonly headersTimeout?: number | undefined
  /**
   * Milliseconds a client has to send the whole request, headers and body, from its first byte (Node's
   * `requestTimeout`; default 30 000; 0 turns it off). It bounds *receiving* the request only: once the body is
   * read, a response may take as long as it needs (a streamed `ask` answer is not cut). The largest upload must fit
   * in it at the slowest client rate you accept: 8 MiB in 30 s is 280 KB/s.
   */
  readonly requestTimeout?: number | undefined
  /**
   * Milliseconds an idle keep-alive connection stays open between two requests (Node's `keepAliveTimeout`; default
   * 65 000). Behind a load balancer it must be LONGER than the balancer's idle timeout for its connections to the
   * service: the balancer then always closes an idle connection first. The other way round, the service may close a
   * connection at the moment the balancer sends a request on it, and the client gets a 502. AWS ALB's idle timeout
   * is 60 s by default (so 65 s), nginx ingress keeps upstream connections 60 s, Google's external Application Load
   * Balancer keeps its backend connections 600 s (so more than 600 000 here).
   */
  readonly keepAliveTimeout?: number | undefined
  /**
   * The most connections open at once (`server.maxConnections`; default 4096). A connection over it is closed at
   * once, before a byte is read (Node cannot answer it; a load balancer retries it on another replica). Size it
   * below the process' file-descriptor limit minus what the database, Redis and Qdrant pools hold.
   */
  readonly maxConnections?: number | undefined
  /**
   * The most bytes of request line and headers a request may send (Node's `maxHeaderSize`; default 32 768, Node's
   * own is 16 384). Above it Node answers 431, as problem+json ({@link onClientError}). Large enough for a JWT with many
   * claims and a `traceparent`/`tracestate` pair; raise it only if a proxy in front adds large headers.
   */
  readonly maxHeaderSize?: number | undefined
  /**
   * How often (ms) Node checks the header and request timeouts (`connectionsCheckingInterval`). Node's 30 s default
   * lets a timeout fire up to 30 s late (slow headers were dropped after 84 s instead of 60 s): the default here is a
   * quarter of the smaller timeout, between 10 ms and 1 s.
   */
  readonly connectionsCheckingInterval?: number | undefined
}

/**
 * The default {@link Limits}.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultLimits = {
  headersTimeout: 10_000,
  requestTimeout: 30_000,
  keepAliveTimeout: 65_000,
  maxConnections: 4096,
  maxHeaderSize: 32_768
} as const

const nonNegative = (name: string) =>
  Config.schema(
    Schema.Int.check(Schema.isGreaterThanOrEqualTo(0, { message: `${name} must be an integer >= 0` })),
    name
  )
const positive = (name: string) =>
  Config.schema(Schema.Int.check(Schema.isGreaterThan(0, { message: `${name} must be an integer > 0` })), name)

/**
 * The server limits from the environment:
 *
 * | Variable | Default | Meaning |
 * | --- | --- | --- |
 * | `HTTP_HEADERS_TIMEOUT_MS` | 10000 | time to receive the request line and headers (408 after it) |
 * | `HTTP_REQUEST_TIMEOUT_MS` | 30000 | time to receive the whole request, body included (408); 0 = off |
 * | `HTTP_KEEP_ALIVE_TIMEOUT_MS` | 65000 | idle keep-alive connections close after it: above the LB's idle timeout |
 * | `HTTP_MAX_CONNECTIONS` | 4096 | connections open at once; more are closed at once |
 * | `HTTP_MAX_HEADER_SIZE` | 32768 | bytes of request line and headers (431 above it) |
 *
 * The headers timeout may not exceed a non-zero request timeout (Node refuses such a server).
 *
 * @since 0.1.0
 * @category config
 */
export const limitsConfig: Config.Config<Required<Omit<Limits, "connectionsCheckingInterval">>> = Config.all({
  headersTimeout: positive("HTTP_HEADERS_TIMEOUT_MS").pipe(Config.withDefault(defaultLimits.headersTimeout)),
  requestTimeout: nonNegative("HTTP_REQUEST_TIMEOUT_MS").pipe(Config.withDefault(defaultLimits.requestTimeout)),
  keepAliveTimeout: positive("HTTP_KEEP_ALIVE_TIMEOUT_MS").pipe(Config.withDefault(defaultLimits.keepAliveTimeout)),
  maxConnections: positive("HTTP_MAX_CONNECTIONS").pipe(Config.withDefault(defaultLimits.maxConnections)),
  maxHeaderSize: positive("HTTP_MAX_HEADER_SIZE").pipe(Config.withDefault(defaultLimits.maxHeaderSize))
}).pipe(
  Config.mapEffect((limits) =>
    limits.requestTimeout > 0 && limits.headersTimeout > limits.requestTimeout
      ? Effect.fail(
        new Config.ConfigError(
          new Schema.SchemaError(
            new SchemaIssue.InvalidValue({
              message: `HTTP_HEADERS_TIMEOUT_MS (${limits.headersTimeout}) must not exceed HTTP_REQUEST_TIMEOUT_MS ` +
                `(${limits.requestTimeout})`
            })
          )
        )
      )
      : Effect.succeed(limits)
  )
)

/**
 * @since 0.1.0
 * @category models
 */
export interface ServerOptions extends Limits {
  readonly port: number
  readonly host?: string | undefined
  /**
   * Once the server stops listening, how long (ms) connections accepted just before have to send their first request
   * before idle connections are closed (default 500).
   */
  readonly idleGrace?: number | undefined
  /**
   * How many services a request's context keeps as overlays on the server's context before it is copied into one map
   * (default 32; Effect's default is 8): fewer copies of the context per request.
   */
  readonly requestContextDepth?: number | undefined
}

// The server's `serve` with request contexts that keep `depth` added services as overlays (`Context.makeUnsafe`'s
// `maxDepth`) instead of Effect's default 8.
//
// Every request's context starts as the server's context, which holds every service of the application (about 60 in
// the bundled server), and each step of the request path adds one service to it: the request, its scope and state, the
// span, the correlation id, the API version, the authentication, the client address, the route and its parameters. At
// the ninth, Effect copies the whole context into a new map: one copy of some 60 entries per request, and the garbage
// it leaves. Kept as overlays, the additions cost one small object each, and reading a service walks at most `depth`
// of them before the shared map. Measured on the bundled server: about 5% less CPU per request.
const withRequestContextDepth = (
  server: HttpServer.HttpServer["Service"],
  depth: number
): HttpServer.HttpServer["Service"] => {
  const deepen = (context: Context.Context<any>): Context.Context<any> =>
    Context.makeUnsafe(context.mapUnsafe, { maxDepth: depth })
  return {
    address: server.address,
    serve: ((effect: Parameters<typeof server.serve>[0], middleware?: Parameters<typeof server.serve>[1]) =>
      // The platform's handler captures the context `serve` runs in: every request's context derives from it.
      Effect.updateContext(
        middleware === undefined ? server.serve(effect) : server.serve(effect, middleware),
        deepen
      )) as HttpServer.HttpServer["Service"]["serve"]
  }
}

/** The limits with their defaults, checked as Node checks them (it throws for a headers timeout over the request's). */
const resolveLimits = (options: Limits) => {
  const headersTimeout = options.headersTimeout ?? defaultLimits.headersTimeout
  const requestTimeout = options.requestTimeout ?? defaultLimits.requestTimeout
  const keepAliveTimeout = options.keepAliveTimeout ?? defaultLimits.keepAliveTimeout
  const maxConnections = options.maxConnections ?? defaultLimits.maxConnections
  const maxHeaderSize = options.maxHeaderSize ?? defaultLimits.maxHeaderSize
  const smallest = requestTimeout > 0 ? Math.min(headersTimeout, requestTimeout) : headersTimeout
  const connectionsCheckingInterval = options.connectionsCheckingInterval ??
    Math.max(10, Math.min(1000, Math.floor(smallest / 4)))
  if (requestTimeout > 0 && headersTimeout > requestTimeout) {
    throw new RangeError(`headersTimeout (${headersTimeout}) must not exceed requestTimeout (${requestTimeout})`)
  }
  return {
    headersTimeout,
    requestTimeout,
    keepAliveTimeout,
    maxConnections,
    maxHeaderSize,
    connectionsCheckingInterval
  }
}

/** A problem the server answers itself, outside any application: `about:blank`, no correlation id. */
const problem = (status: number, title: string, detail: string): Problem.ProblemDetails => ({
  type: "about:blank",
  title,
  status,
  detail
})

/**
 * The problem a request gets when Node's HTTP parser or its timers reject it before the application sees it, by
 * Node's error code: `HPE_HEADER_OVERFLOW` (headers over `maxHeaderSize`, 32 KiB by default) → 431,
 * `HPE_CHUNK_EXTENSIONS_OVERFLOW` → 413, `ERR_HTTP_REQUEST_TIMEOUT` (headers or request timeout) → 408, any other
 * parse error (bad header bytes, a malformed request line, an invalid method or version) → 400. Undefined for errors
 * of the connection itself (`ECONNRESET`…), which cannot be answered.
 *
 * It has no `correlationId`: the request was never parsed, so no `X-Correlation-ID` was read or minted (the
 * correlation middleware runs on requests, and there is none).
 *
 * @since 0.1.0
 * @category utils
 */
export const clientErrorProblem = (
  error: Error & { readonly code?: string | undefined; readonly reason?: string | undefined }
): Problem.ProblemDetails | undefined => {
  switch (error.code) {
    case "HPE_HEADER_OVERFLOW":
      return problem(431, "Request Header Fields Too Large", "the request's headers are larger than the server accepts")
    case "HPE_CHUNK_EXTENSIONS_OVERFLOW":
      return problem(413, Problem.title(413), "the request's chunk extensions are larger than the server accepts")
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return problem(408, Problem.title(408), "the request was not received in time")
  }
  if (error.code?.startsWith("HPE_") === true) {
    // Node's parser reason ("Invalid header value char") names the rule broken, never the bytes sent.
    const reason = typeof error.reason === "string" && error.reason.length > 0 ? error.reason : "malformed request"
    return problem(400, Problem.title(400), `the request is not valid HTTP/1.1: ${reason.toLowerCase()}`)
  }
  return undefined
}

/** A problem as a complete HTTP/1.1 response that closes the connection. */
const rawResponse = (problem: Problem.ProblemDetails): string => {
  const body = JSON.stringify(problem)
  return `HTTP/1.1 ${problem.status} ${problem.title}\r\n` +
    `Content-Type: ${Problem.contentType}\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    "Cache-Control: no-store\r\n" +
    "Connection: close\r\n" +
    "\r\n" +
    body
}

/**
 * The `clientError` listener of the servers {@link layerServer} creates: answers what Node's parser or timers
 * rejected with a problem+json response ({@link clientErrorProblem}) and `Connection: close`, then destroys the
 * socket. It writes nothing when the socket cannot take it: not writable (the client is gone), or a response of this
 * connection has already started (the bytes would corrupt it); the socket is destroyed either way. Node's own
 * listener answers the same cases with bodiless `400`/`408`/`431` responses.
 *
 * @since 0.1.0
 * @category utils
 */
export const onClientError = (
  error: Error & { readonly code?: string | undefined },
  socket: Stream.Duplex
): void => {
  const inFlight = (socket as Stream.Duplex & { readonly _httpMessage?: { readonly headersSent?: boolean } | null })
    ._httpMessage
  const problem = clientErrorProblem(error)
  if (problem !== undefined && socket.writable && inFlight?.headersSent !== true) {
    socket.write(rawResponse(problem))
  }
  socket.destroy()
}

/**
 * A request of the servers that {@link layerServer} creates, with its response (set as Node constructs the
 * response).
 *
 * A request whose body the application gives up on keeps its connection until its response is sent, then the
 * connection closes:
 *
 * - The platform's body reader stops at `HttpIncomingMessage.MaxBodySize` (a chunked body: a declared length can be
 *   refused before reading) and discards the rest (`resume` with no reader). The client may stop sending once it has
 *   an answer, so the rest may never come: the connection cannot serve another request. The 413 that follows says
 *   `Connection: close`, or, when its headers were already sent, the connection ends after it.
 * - A reader that is interrupted destroys the request, and Node's `IncomingMessage._destroy` destroys the socket
 *   when the body was not read to the end: the response that follows could never be written, the client saw an empty
 *   reply, and the request fiber, waiting for its response to finish, stayed in flight. Such a request leaves the
 *   socket to the response instead: the destroyed stream takes no more data (Node then stops reading the socket) and
 *   the response is the connection's last.
 */
class IncomingMessage extends Http.IncomingMessage {
  /** Set as the server constructs the response; a request without one (an upgrade) keeps Node's behaviour. */
  response: Http.ServerResponse | undefined = undefined
  private abandoned = false

  /** Whether a response still needs the socket: Node's own behaviour otherwise. */
  private get responsePending(): boolean {
    const response = this.response
    return response !== undefined && !response.writableFinished && !this.socket.destroyed &&
      !(this.complete && this.readableEnded)
  }

  /** Makes the pending response the connection's last. */
  private lastResponse(): void {
    const response = this.response!
    if (response.headersSent) {
      // Too late to say `Connection: close`: end the connection after the response, as Node does for a last one.
      response.once("finish", () => this.socket.destroySoon())
    } else {
      response.shouldKeepAlive = false
    }
  }

  override resume(): this {
    // A reader registers its `data` listener before resuming; resuming without one discards the body (Node's own
    // `_dump` only runs once the response is finished).
    if (!this.abandoned && !this.complete && this.listenerCount("data") === 0 && this.responsePending) {
      this.abandoned = true
      this.lastResponse()
    }
    return super.resume()
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.responsePending) return super._destroy(error, callback)
    if (!this.abandoned) {
      this.abandoned = true
      this.lastResponse()
    }
    // As Node does, an error that nothing listens for is not emitted.
    callback(this.listenerCount("error") === 0 ? null : error)
  }
}

// What platform-node's server answers while no application serves it (its `unavailable` request listener).
const platformUnavailableText = "service unavailable"
const isPlatformUnavailable = (headers: unknown): boolean => {
  if (typeof headers !== "object" || headers === null || Array.isArray(headers)) return false
  const names = Object.keys(headers)
  return names.length === 2 && names.includes("retry-after") && names.includes("cache-control")
}
const unavailableBody = JSON.stringify(
  problem(503, Problem.title(503), "the server is not serving requests: it is starting or stopping")
)
// The responses whose head `writeHead` turned into a problem's, for `end` to send the problem's body.
const unavailableAnswered = new WeakSet<Http.ServerResponse>()

/**
 * A Node server whose responses say `Connection: close` once `draining` holds (Node writes it for a response whose
 * `shouldKeepAlive` is false), so clients move their keep-alive connections to other replicas. The flag is read when
 * a response's headers are written: no request listener, no closure per request. Its responses also turn
 * platform-node's plain-text 503 into a problem.
 */
const makeServer = (options: ServerOptions, draining: { value: boolean }): Http.Server => {
  class ServerResponse extends Http.ServerResponse<IncomingMessage> {
    constructor(...args: ConstructorParameters<typeof Http.ServerResponse<IncomingMessage>>) {
      // Node passes options after the request: forwarded as they come.
      super(...args)
      args[0].response = this
    }

    override writeHead(statusCode: number, ...rest: Array<any>): this {
      if (draining.value) this.shouldKeepAlive = false
      if (statusCode === 503 && rest.length === 1 && isPlatformUnavailable(rest[0])) {
        // platform-node answers a request that arrives while nothing serves the server (listening, not serving yet;
        // or after the application stopped) with a plain-text 503: the same answer, as a problem.
        unavailableAnswered.add(this)
        return super.writeHead(statusCode, {
          ...rest[0],
          "content-type": Problem.contentType,
          "content-length": Buffer.byteLength(unavailableBody)
        })
      }
      return Reflect.apply(super.writeHead, this, [statusCode, ...rest])
    }

    override end(...args: Array<any>): this {
      if (args[0] === platformUnavailableText && unavailableAnswered.has(this)) return super.end(unavailableBody)
      return Reflect.apply(super.end, this, args)
    }
  }
  const limits = resolveLimits(options)
  const server = Http.createServer<typeof IncomingMessage, typeof ServerResponse>({
    IncomingMessage,
    ServerResponse,
    requestTimeout: limits.requestTimeout,
    headersTimeout: limits.headersTimeout,
    keepAliveTimeout: limits.keepAliveTimeout,
    maxHeaderSize: limits.maxHeaderSize,
    connectionsCheckingInterval: limits.connectionsCheckingInterval
  })
  server.maxConnections = limits.maxConnections
  server.on("clientError", onClientError)
  return server
}

/**
 * `NodeHttpServer.layer` on a server this layer creates and hands to the shutdown: once draining, every response
 * carries `Connection: close`; when the drain period ends it stops accepting connections and, after `idleGrace` (so a
 * request already on the wire of a fresh connection is served, not reset), closes idle keep-alive connections; when
 * the application's scope closes (after in-flight requests are done or cut) it closes every connection that is left,
 * so closing the server cannot hang. A request whose body the application stops reading (over
 * `HttpIncomingMessage.MaxBodySize`, say) still gets its response, with `Connection: close`, instead of a reset or a
 * connection left waiting for the rest of the body. A request that arrives while no application serves the server
 * (listening, not serving yet; or after the application stopped) is a 503 problem with `Retry-After: 1`, where
 * platform-node answers in plain text.
 *
 * The server's {@link Limits} (headers 10 s, request 30 s, keep-alive 65 s, 4096 connections, 32 KiB of headers
 * unless given; read
 * them from the environment with {@link limitsConfig} or use {@link layerServerConfig}) bound slow clients and the
 * number of connections, and what Node rejects itself (bad header bytes, headers over `maxHeaderSize`, a malformed request
 * line, a timeout) is answered as problem+json ({@link onClientError}). The platform's own graceful shutdown
 * (`gracefulShutdownTimeout`) is off: the drain has already waited for the requests when the server's scope closes.
 * A request's context keeps up to `requestContextDepth` (32) added services as overlays before Effect copies it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerServer = (
  options: ServerOptions
): Layer.Layer<
  | HttpServer.HttpServer
  | NodeServer
  | Layer.Success<typeof NodeHttpServer.layerHttpServices>,
  HttpServerError.ServeError,
  Shutdown.Shutdown
> =>
  Layer.effectContext(Effect.gen(function*() {
    const shutdown = yield* Shutdown.Shutdown
    const draining = { value: false }
    const server = makeServer(options, draining)
    const context = yield* Layer.build(
      NodeHttpServer.layer(() => server, {
        port: options.port,
        ...(options.host !== undefined ? { host: options.host } : {}),
        disablePreemptiveShutdown: true
      })
    )
    yield* shutdown.onDrain(Effect.sync(() => (draining.value = true)))
    const idleGrace = options.idleGrace ?? 500
    yield* shutdown.onStop(
      "stop accepting connections",
      Effect.gen(function*() {
        // `http.Server.close` also closes idle connections at once, and "idle" includes a connection accepted a moment
        // ago whose first request is still on the wire: that request would be reset. So: let one poll phase accept
        // what the kernel already queued, stop listening (net.Server's close), give fresh connections `idleGrace` to
        // send their request (it is then in flight, and answered with `Connection: close`), then close the idle ones.
        yield* Effect.callback<void>((resume) => {
          setImmediate(() => {
            Net.Server.prototype.close.call(server)
            resume(Effect.void)
          })
        })
        yield* Effect.sleep(idleGrace)
        server.closeIdleConnections()
      })
    )
    // Added after the server's own finalizer, so it runs first: `server.close` then has nothing left to wait for.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        server.closeAllConnections()
        // http.Server's own close also stops its request-timeout timer; the server no longer listens, hence the no-op
        // callback for the "not running" error.
        server.close(() => {})
      })
    )
    const http = Context.get(context, HttpServer.HttpServer)
    return Context.add(
      Context.add(context, HttpServer.HttpServer, withRequestContextDepth(http, options.requestContextDepth ?? 32)),
      NodeServer,
      server
    )
  }))

/**
 * {@link layerServer} with its {@link Limits} read from the environment ({@link limitsConfig}:
 * `HTTP_HEADERS_TIMEOUT_MS`, `HTTP_REQUEST_TIMEOUT_MS`, `HTTP_KEEP_ALIVE_TIMEOUT_MS`, `HTTP_MAX_CONNECTIONS`,
 * `HTTP_MAX_HEADER_SIZE`);
 * `options` override them.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { ShutdownHttp } from "@ouroboros/shutdown"
 * const ServerLive = ShutdownHttp.layerServerConfig({ port: 8080, host: "0.0.0.0" })
 */
export const layerServerConfig = (
  options: ServerOptions
): Layer.Layer<
  | HttpServer.HttpServer
  | NodeServer
  | Layer.Success<typeof NodeHttpServer.layerHttpServices>,
  HttpServerError.ServeError | Config.ConfigError,
  Shutdown.Shutdown
> =>
  Layer.unwrap(Effect.map(limitsConfig, (limits) => {
    const given = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined))
    return layerServer({ ...limits, ...given } as ServerOptions)
  }))
