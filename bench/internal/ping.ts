/**
 * The minimal HttpApi the middleware benchmarks serve (`GET /api/v1/ping` → `"pong"`), started on a free port of
 * 127.0.0.1.
 */
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, type HttpRouter, type HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer, Logger, LogLevel, ManagedRuntime, Schema } from "effect"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"

class Api extends HttpApi.make("bench").add(
  HttpApiGroup.make("ping").add(HttpApiEndpoint.get("ping", "/api/v1/ping").addSuccess(Schema.String))
) {}

const ApiLive = HttpApiBuilder.api(Api).pipe(
  Layer.provide(HttpApiBuilder.group(Api, "ping", (handlers) => handlers.handle("ping", () => Effect.succeed("pong"))))
)

/**
 * Serves the API through `served` (an `HttpApiBuilder.serve(...)` layer) with `extra` provided (e.g. a tracer), and
 * returns the port and a stop function.
 */
export const startPingServer = async (
  served: Layer.Layer<
    never,
    never,
    HttpServer.HttpServer | HttpRouter.HttpRouter.DefaultServices | HttpApi.Api
  >,
  extra: Layer.Layer<never> = Layer.empty
): Promise<{ readonly port: number; readonly stop: () => Promise<void> }> => {
  let server: Server | undefined
  const runtime = ManagedRuntime.make(
    served.pipe(
      Layer.provide(ApiLive),
      Layer.provide(NodeHttpServer.layer(() => (server = createServer()), { port: 0, host: "127.0.0.1" })),
      Layer.provide(extra),
      Layer.provide(Logger.minimumLogLevel(LogLevel.Warning))
    )
  )
  await runtime.runPromise(Effect.void)
  return { port: (server!.address() as AddressInfo).port, stop: () => runtime.dispose() }
}
