// The README's example, kept compiling and tested (README.test.ts).
import { Principal, ProblemHttp } from "@ouroboros/kernel"
import { Effect, Layer, Schema } from "effect"
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup } from "effect/http-api"
import { Jwt, TenancyHttp, Tenants, TenantStoreMemory } from "../src/index.js"

class Notes extends HttpApiGroup.make("notes").add(
  HttpApiEndpoint.get("mine", "/notes", { success: Schema.String })
).middleware(TenancyHttp.Authentication) {}
class Api extends HttpApi.make("api").add(Notes) {}

const NotesLive = HttpApiBuilder.group(
  Api,
  "notes",
  (handlers) =>
    handlers.handle(
      "mine",
      () => Effect.map(Effect.service(Principal.CurrentPrincipal), (p) => `notes of ${p.tenantId}`)
    )
)

export const App = HttpApiBuilder.layer(Api).pipe(
  Layer.provide(NotesLive),
  Layer.provide(TenancyHttp.layerSecurity), // 401 / 403, provides CurrentPrincipal
  Layer.provide(TenancyHttp.layer), // resolves X-API-Key or Bearer once per request
  Layer.provide(ProblemHttp.layer),
  Layer.provide(Tenants.layerConfig()), // OUROBOROS_API_KEYS, OUROBOROS_ADMIN_API_KEY, API_KEY_*
  Layer.provide(Layer.mergeAll(TenantStoreMemory.layer, Jwt.layerConfig())) // or TenantStoreSql.layer; JWT_*
)
