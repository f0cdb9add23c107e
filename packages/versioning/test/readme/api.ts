/**
 * The two apis and the store of the README's example.
 */
import { Context, Effect, Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup } from "effect/http-api"

const params = { id: Schema.String }

export class ApiV1 extends HttpApi.make("readme-v1").add(
  HttpApiGroup.make("documents").add(
    HttpApiEndpoint.get("get", "/documents/:id", {
      params,
      success: Schema.Struct({ id: Schema.String, text: Schema.String })
    })
  ).prefix("/api/v1")
) {}

export class ApiV2 extends HttpApi.make("readme-v2").add(
  HttpApiGroup.make("documents").add(
    HttpApiEndpoint.get("get", "/documents/:id", {
      params,
      success: Schema.Struct({ data: Schema.Struct({ id: Schema.String, content: Schema.String }) })
    })
  ).prefix("/api/v2")
) {}

export class Store extends Context.Service<Store, {
  readonly get: (id: string) => Effect.Effect<{ readonly data: { readonly id: string; readonly content: string } }>
}>()("readme/Store") {}
