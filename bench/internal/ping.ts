/**
 * The minimal HttpApi the middleware benchmarks serve (`GET /api/v1/ping` → `"pong"`), started on a free port of
 * 127.0.0.1.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer, ManagedRuntime, References, Schema } from "effect"
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup } from "effect/http-api"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"

class Api extends HttpApi.make("bench").add(
  HttpApiGroup.make("ping").add(HttpApiEndpoint.get("ping", "/api/v1/ping", { success: Schema.String }))
) {}

/** The ping API's routes: the app layer to give `HttpRouter.serve`. */
export const PingApp = HttpApiBuilder.layer(Api).pipe(
  Layer.provide(HttpApiBuilder.group(Api, "ping", (handlers) => handlers.handle("ping", () => Effect.succeed("pong"))))
)

const NodeServer = (evaluate: () => Server) =>
  Layer.orDie(NodeHttpServer.layer(evaluate, { port: 0, host: "127.0.0.1" }))

/** What the Node HTTP server layer provides to the app it serves (`HttpServer`, the platform, the file system…). */
type NodeServices = Layer.Success<ReturnType<typeof NodeServer>>

/**
 * Serves {@link PingApp} through `serve` (e.g. `(app) => HttpRouter.serve(app, { disableLogger: true })`) with `extra`
 * provided (e.g. a tracer), and returns the port and a stop function.
 */
export const startPingServer = async (
  serve: (app: typeof PingApp) => Layer.Layer<never, never, NodeServices>,
  extra: Layer.Layer<never> = Layer.empty
): Promise<{ readonly port: number; readonly stop: () => Promise<void> }> => {
  let server: Server | undefined
  const runtime = ManagedRuntime.make(
    serve(PingApp).pipe(
      Layer.provide(NodeServer(() => (server = createServer()))),
      Layer.provide(extra),
      Layer.provide(Layer.succeed(References.MinimumLogLevel, "Warn"))
    )
  )
  await runtime.runPromise(Effect.void)
  return { port: (server!.address() as AddressInfo).port, stop: () => runtime.dispose() }
}
