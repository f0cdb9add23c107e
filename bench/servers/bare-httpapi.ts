// Baseline: a bare @effect/platform HttpApi serving GET /api/v1/whoami with an API-key security middleware, no
// other middleware (the platform's default server span included, as any HttpApi app has it).
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, HttpApiSchema, HttpApiSecurity } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Context, Effect, Layer, Redacted, Schema } from "effect"
import { createServer } from "node:http"

class Principal extends Context.Tag("Principal")<Principal, { tenantId: string; subject: string; roles: Array<string> }>() {}
class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", { detail: Schema.String }, HttpApiSchema.annotations({ status: 401 })) {}
class Auth extends HttpApiMiddleware.Tag<Auth>()("Auth", {
  failure: Unauthorized,
  provides: Principal,
  security: { key: HttpApiSecurity.apiKey({ key: "x-api-key", in: "header" }) }
}) {}
const WhoAmI = Schema.Struct({ tenantId: Schema.String, subject: Schema.String, roles: Schema.Array(Schema.String) })
class Api extends HttpApi.make("bare").add(
  HttpApiGroup.make("v1").add(HttpApiEndpoint.get("whoami", "/whoami").addSuccess(WhoAmI)).middleware(Auth).prefix("/api/v1")
) {}
const AuthLive = Layer.succeed(Auth, {
  key: (key) =>
    Redacted.value(key) === process.env.BENCH_KEY
      ? Effect.succeed({ tenantId: "bench", subject: "key:bench", roles: ["writer", "reader"] })
      : Effect.fail(new Unauthorized({ detail: "bad key" }))
})
const V1 = HttpApiBuilder.group(Api, "v1", (h) => h.handle("whoami", () => Principal))
const server = createServer()
const Main = HttpApiBuilder.serve().pipe(
  Layer.provide(HttpApiBuilder.api(Api).pipe(Layer.provide(V1), Layer.provide(AuthLive))),
  Layer.provide(NodeHttpServer.layer(() => server, { port: 0, host: "127.0.0.1" })),
  Layer.tap(() => Effect.sync(() => console.log(`PORT=${(server.address() as { port: number }).port}`)))
)
NodeRuntime.runMain(Layer.launch(Main), { disablePrettyLogger: true })
