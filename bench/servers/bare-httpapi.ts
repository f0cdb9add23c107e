// Baseline: a bare Effect HttpApi serving GET /api/v1/whoami with an API-key security middleware, no other
// middleware (the platform's default server span included, as any HttpApi app has it; the router's request logger
// left out, as Effect 3's HttpApiBuilder.serve had none).
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Context, Effect, Layer, Redacted, Schema } from "effect"
import { HttpRouter } from "effect/http"
import {
  HttpApi,
  HttpApiBuilder,
  HttpApiEndpoint,
  HttpApiGroup,
  HttpApiMiddleware,
  HttpApiSecurity
} from "effect/http-api"
import { createServer } from "node:http"

class Principal extends Context.Service<Principal, { tenantId: string; subject: string; roles: Array<string> }>()(
  "Principal"
) {}
class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", { detail: Schema.String }, {
  httpApiStatus: 401
}) {}
class Auth extends HttpApiMiddleware.Service<Auth, { provides: Principal }>()("Auth", {
  error: Unauthorized,
  security: { key: HttpApiSecurity.apiKey({ key: "x-api-key", in: "header" }) }
}) {}
const WhoAmI = Schema.Struct({ tenantId: Schema.String, subject: Schema.String, roles: Schema.Array(Schema.String) })
class Api extends HttpApi.make("bare").add(
  HttpApiGroup.make("v1").add(HttpApiEndpoint.get("whoami", "/whoami", { success: WhoAmI })).middleware(Auth).prefix(
    "/api/v1"
  )
) {}
const principal = { tenantId: "bench", subject: "key:bench", roles: ["writer", "reader"] }
const AuthLive = Layer.succeed(Auth, {
  key: (effect, { credential }) =>
    Redacted.value(credential) === process.env.BENCH_KEY
      ? Effect.provideService(effect, Principal, principal)
      : Effect.fail(new Unauthorized({ detail: "bad key" }))
})
const V1 = HttpApiBuilder.group(Api, "v1", (h) => h.handle("whoami", () => Effect.service(Principal)))
const server = createServer()
const Main = HttpRouter.serve(
  HttpApiBuilder.layer(Api).pipe(Layer.provide(V1), Layer.provide(AuthLive)),
  { disableLogger: true, disableListenLog: true }
).pipe(
  Layer.provide(NodeHttpServer.layer(() => server, { port: 0, host: "127.0.0.1" })),
  Layer.tap(() => Effect.sync(() => console.log(`PORT=${(server.address() as { port: number }).port}`)))
)
NodeRuntime.runMain(Layer.launch(Main))
