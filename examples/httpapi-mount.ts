/**
 * Ouroboros inside another application's HttpApi: the app declares its own group next to Ouroboros's health group
 * (`/health/live`, `/health/ready`, `/health/startup`, answered by the health registry with the app's own check), and
 * puts Ouroboros's rate limiter in front of every route (IETF RateLimit headers, 429 problem+json). It serves on a
 * free port, calls itself, and prints one JSON line with the statuses it got.
 *
 *   node --conditions=@ouroboros/source --import tsx examples/httpapi-mount.ts   (in this repository)
 */
import { NodeHttpServer } from "@effect/platform-node"
import { HealthCheck, HealthHttp } from "@ouroboros/health"
import { RateLimiter, RateLimiterHttp } from "@ouroboros/rate-limit"
import { Effect, Layer, Schema } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup } from "effect/http-api"
import { createServer } from "node:http"

// The application's own group.
class Greetings extends HttpApiGroup.make("greetings").add(
  HttpApiEndpoint.get("hello", "/api/hello", { success: Schema.Struct({ greeting: Schema.String }) })
) {}

// One api: the app's group and Ouroboros's health group.
class ShopApi extends HttpApi.make("shop").add(Greetings).add(HealthHttp.HealthGroup) {}

const GreetingsLive = HttpApiBuilder.group(
  ShopApi,
  "greetings",
  (handlers) => handlers.handle("hello", () => Effect.succeed({ greeting: "hello from the shop" }))
)

const Health = HealthCheck.layerCheck({ name: "shop:stock", critical: true, run: Effect.succeed(HealthCheck.pass()) })
  .pipe(Layer.provideMerge(HealthCheck.layer()))

const Limiter = RateLimiter.layerMemory({
  policies: [RateLimiter.Policy.make({ name: "per-client", limit: 2, window: 60_000, scope: ["client"] })]
})

const Served = HttpRouter.serve(
  Layer.mergeAll(
    HttpApiBuilder.layer(ShopApi).pipe(Layer.provide([GreetingsLive, HealthHttp.layer(ShopApi)])),
    RateLimiterHttp.layer()
  ),
  { disableLogger: true, disableListenLog: true }
).pipe(
  Layer.provideMerge(Health),
  Layer.provide(Limiter),
  Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
)

// Readiness turns on once the server listens (and off, "draining", before it stops).
const App = HealthCheck.layerServing.pipe(Layer.provideMerge(Served))

const program = Effect.gen(function*() {
  const address = yield* HttpServer.HttpServer.useSync((server) => server.address)
  const base = address._tag === "UnixPathAddress" ? "" : `http://127.0.0.1:${address.port}`
  const get = (path: string) =>
    Effect.promise(async () => {
      const response = await fetch(base + path)
      return {
        status: response.status,
        policy: response.headers.get("ratelimit-policy"),
        body: (await response.json()) as unknown
      }
    })
  const hellos = [yield* get("/api/hello"), yield* get("/api/hello"), yield* get("/api/hello")]
  const health = yield* get("/health/ready")
  return {
    hello: hellos.map((response) => response.status),
    greeting: hellos[0]!.body,
    limitedPolicy: hellos[2]!.policy,
    health: { status: health.status, body: health.body }
  }
})

const result = await Effect.runPromise(program.pipe(Effect.provide(App)))
console.log(JSON.stringify(result))
