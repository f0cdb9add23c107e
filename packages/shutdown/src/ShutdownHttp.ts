/**
 * The HTTP side of graceful shutdown: a middleware that tracks every request fiber and answers with
 * `Connection: close` once draining, and a Node HTTP server layer whose server handle the shutdown controls (stop
 * accepting, close idle keep-alive connections, close the rest at the end).
 *
 * @since 0.1.0
 */
import { HttpApp, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import type { HttpServer, HttpServerError } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Layer, Option } from "effect"
import * as Http from "node:http"
import * as Net from "node:net"
import * as InFlight from "./InFlight.js"
import * as Shutdown from "./Shutdown.js"

const pathOf = (url: string): string => {
  const query = url.indexOf("?")
  return query === -1 ? url : url.slice(0, query)
}

/**
 * Tracks the request in `InFlight` (method, path, correlation id) for as long as it runs, makes its handling
 * interruptible so a shutdown can cut it past the timeout, and adds `Connection: close` to every response sent
 * while the service drains or stops, so clients move their keep-alive connections elsewhere.
 *
 * Put it outermost (the `middleware` argument of `HttpServer.serve` / `HttpApiBuilder.serve` is right: it then also
 * covers the writing of the response).
 *
 * @since 0.1.0
 * @category middleware
 */
export const middleware = <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
  Effect.withFiberRuntime<
    HttpServerResponse.HttpServerResponse,
    E,
    R | HttpServerRequest.HttpServerRequest
  >((fiber) => {
    const request = Context.unsafeGet(fiber.currentContext, HttpServerRequest.HttpServerRequest)
    const inFlight = Context.getOption(fiber.currentContext, InFlight.InFlight)
    const shutdown = Context.getOption(fiber.currentContext, Shutdown.Shutdown)
    if (Option.isNone(inFlight) || Option.isNone(shutdown)) {
      return Effect.dieMessage(
        "ShutdownHttp.middleware needs Shutdown and InFlight: serve under Shutdown.run or Shutdown.layer"
      )
    }
    return trackRequest(app, request, inFlight.value)
  })

const trackRequest = <E, R>(
  app: HttpApp.Default<E, R>,
  request: HttpServerRequest.HttpServerRequest,
  inFlight: InFlight.InFlight["Type"]
) =>
  inFlight.track(
    {
      method: request.method,
      route: pathOf(request.url),
      correlationId: request.headers["x-correlation-id"]
    },
    Effect.interruptible(app)
  )

/**
 * The request of the servers that {@link layerServer} creates. Node's `IncomingMessage._destroy` destroys the socket
 * when a request is destroyed before its body has been read to the end, and the platform's body reader destroys the
 * request when a body goes over `HttpIncomingMessage.MaxBodySize` (a chunked one: a declared length can be refused
 * before reading). The 413 that follows could then never be written: the client saw an empty reply, and the request
 * fiber, waiting for its response to finish, stayed in flight until the shutdown timeout cut it.
 *
 * So while its response is still to come, such a request leaves the socket to the response: the destroyed stream
 * takes no more data (Node then stops reading the socket) and the response is the connection's last, so Node closes
 * the connection once it is sent (the unread rest of the body could not be parsed as a next request anyway).
 */
class IncomingMessage extends Http.IncomingMessage {
  /** Set by the server's first "request" listener; a request without one (an upgrade) keeps Node's behaviour. */
  response: Http.ServerResponse | undefined = undefined

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const response = this.response
    // Node's own behaviour when no response needs the socket any more: none will come (an upgrade), it is sent, the
    // client is gone, or the body was read to the end (then Node leaves the socket alone).
    if (
      response === undefined || response.writableFinished || this.socket.destroyed ||
      (this.complete && this.readableEnded)
    ) {
      return super._destroy(error, callback)
    }
    if (response.headersSent) {
      // Too late to say `Connection: close`: end the connection after the response, as Node does for a last one.
      response.once("finish", () => this.socket.destroySoon())
    } else {
      response.shouldKeepAlive = false
    }
    // As Node does, an error that nothing listens for is not emitted.
    callback(this.listenerCount("error") === 0 ? null : error)
  }
}

/**
 * The Node server under a layer built by {@link layerServer}, for what the layer does not cover.
 *
 * @since 0.1.0
 * @category tags
 */
export class NodeServer extends Context.Tag("@ouroboros/shutdown/NodeServer")<NodeServer, Http.Server>() {}

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

/**
 * `NodeHttpServer.layer` on a server this layer creates and hands to the shutdown: when the drain period ends it
 * stops accepting connections and, after `idleGrace` (so a request already on the wire of a fresh connection is
 * served, not reset), closes idle keep-alive connections; when the application's scope closes (after
 * in-flight requests are done or cut) it closes every connection that is left, so closing the server cannot hang.
 * A request whose body the application stops reading (over `HttpIncomingMessage.MaxBodySize`, say) still gets its
 * response, with `Connection: close`, instead of Node resetting the connection.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerServer = (
  options: ServerOptions
): Layer.Layer<
  | HttpServer.HttpServer
  | NodeServer
  | Layer.Layer.Success<typeof NodeHttpServer.layerContext>,
  HttpServerError.ServeError,
  Shutdown.Shutdown
> =>
  Layer.scopedContext(Effect.gen(function*() {
    const shutdown = yield* Shutdown.Shutdown
    const server = Http.createServer<typeof IncomingMessage>({ IncomingMessage })
    if (options.keepAliveTimeout !== undefined) server.keepAliveTimeout = options.keepAliveTimeout
    const context = yield* Layer.build(
      NodeHttpServer.layer(() => server, {
        port: options.port,
        ...(options.host !== undefined ? { host: options.host } : {})
      })
    )
    // While draining, every response closes its connection (Node writes `Connection: close` for a response whose
    // `shouldKeepAlive` is false), so clients move to other replicas; a plain flag keeps this off the request path.
    // The same listener hands each request its response (see `IncomingMessage`): one listener, no closure per request.
    const draining = { value: false }
    yield* shutdown.onDrain(Effect.sync(() => (draining.value = true)))
    server.prependListener("request", (request, response) => {
      request.response = response
      if (draining.value) response.shouldKeepAlive = false
    })
    const idleGrace = options.idleGrace ?? 500
    yield* shutdown.onStop(
      "stop accepting connections",
      Effect.gen(function*() {
        // `http.Server.close` also closes idle connections at once, and "idle" includes a connection accepted a moment
        // ago whose first request is still on the wire: that request would be reset. So: let one poll phase accept
        // what the kernel already queued, stop listening (net.Server's close), give fresh connections `idleGrace` to
        // send their request (it is then in flight, and answered with `Connection: close`), then close the idle ones.
        yield* Effect.async<void>((resume) => {
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
