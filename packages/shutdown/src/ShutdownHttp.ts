/**
 * The HTTP side of graceful shutdown: a middleware that tracks every request fiber, and a Node HTTP server layer
 * whose server handle the shutdown controls (answer with `Connection: close` once draining, stop accepting, close
 * idle keep-alive connections, close the rest at the end).
 *
 * @since 0.1.0
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Layer } from "effect"
import type { HttpServer, HttpServerError } from "effect/http"
import { HttpServerRequest, type HttpServerResponse } from "effect/http"
import * as Http from "node:http"
import * as Net from "node:net"
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
 * import { Shutdown, ShutdownHttp } from "@ouroboros/shutdown"
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
> =>
  Effect.withFiber((fiber) => {
    const request = Context.getUnsafe(fiber.context, HttpServerRequest.HttpServerRequest)
    const inFlight = Context.getUnsafe(fiber.context, InFlight.InFlight)
    return inFlight.track(
      {
        method: request.method,
        route: pathOf(request.url),
        correlationId: request.headers["x-correlation-id"]
      },
      Effect.interruptible(app)
    )
  })

/**
 * The Node server under a layer built by {@link layerServer}, for what the layer does not cover.
 *
 * @since 0.1.0
 * @category services
 */
export class NodeServer extends Context.Service<NodeServer, Http.Server>()("@ouroboros/shutdown/NodeServer") {}

/**
 * @since 0.1.0
 * @category models
 */
export interface ServerOptions {
  readonly port: number
  readonly host?: string | undefined
  /** Node's `keepAliveTimeout` in milliseconds (default 5000). */
  readonly keepAliveTimeout?: number | undefined
  /**
   * Once the server stops listening, how long (ms) connections accepted just before have to send their first request
   * before idle connections are closed (default 500).
   */
  readonly idleGrace?: number | undefined
}

/** Node's own defaults, set explicitly: Effect 4 leaves the timeouts to the server it is given. */
const requestTimeout = 300_000
const headersTimeout = 60_000
const keepAliveTimeout = 5_000

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

/**
 * A Node server whose responses say `Connection: close` once `draining` holds (Node writes it for a response whose
 * `shouldKeepAlive` is false), so clients move their keep-alive connections to other replicas. The flag is read when
 * a response's headers are written: no request listener, no closure per request.
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
      return Reflect.apply(super.writeHead, this, [statusCode, ...rest])
    }
  }
  return Http.createServer<typeof IncomingMessage, typeof ServerResponse>({
    IncomingMessage,
    ServerResponse,
    requestTimeout,
    headersTimeout,
    keepAliveTimeout: options.keepAliveTimeout ?? keepAliveTimeout
  })
}

/**
 * `NodeHttpServer.layer` on a server this layer creates and hands to the shutdown: once draining, every response
 * carries `Connection: close`; when the drain period ends it stops accepting connections and, after `idleGrace` (so a
 * request already on the wire of a fresh connection is served, not reset), closes idle keep-alive connections; when
 * the application's scope closes (after in-flight requests are done or cut) it closes every connection that is left,
 * so closing the server cannot hang. A request whose body the application stops reading (over
 * `HttpIncomingMessage.MaxBodySize`, say) still gets its response, with `Connection: close`, instead of a reset or a
 * connection left waiting for the rest of the body.
 *
 * The server keeps Node's timeouts (`requestTimeout` 300 s, `headersTimeout` 60 s, `keepAliveTimeout` 5 s unless
 * given). The platform's own graceful shutdown (`gracefulShutdownTimeout`) is off: the drain has already waited for
 * the requests when the server's scope closes.
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
    return Context.add(context, NodeServer, server)
  }))
