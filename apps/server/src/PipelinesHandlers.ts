/**
 * The handlers of the pipelines group, for any api that contains `PipelinesApi`.
 *
 * @since 0.1.0
 */
import type { HttpApi, HttpApiGroup } from "@effect/platform"
import { HttpApiBuilder } from "@effect/platform"
import { Principal } from "@ouroboros/kernel"
import type { Layer } from "effect"
import { Effect } from "effect"
import type { Authentication } from "./Authentication.js"
import { Pipelines } from "./Pipeline.js"
import type { PipelinesApi } from "./PipelinesApi.js"

/**
 * Implements the pipelines group of `api` (which must contain `PipelinesApi`). Requires the `Pipelines` service and
 * the group's `Authentication` middleware.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { HttpApi } from "@effect/platform"
 * import { PipelinesApi } from "./PipelinesApi.js"
 * class Api extends HttpApi.make("api").add(PipelinesApi) {}
 * const PipelinesLive = make(Api) // Layer<ApiGroup<"api", "pipelines">, never, Pipelines | Authentication>
 */
export const make = <ApiId extends string, Groups extends HttpApiGroup.HttpApiGroup.Any, E, R>(
  api: HttpApi.HttpApi<ApiId, Groups, E, R> & ("pipelines" extends HttpApiGroup.HttpApiGroup.Name<Groups> ? unknown
    : { readonly "the api must contain PipelinesApi": never })
): Layer.Layer<
  HttpApiGroup.ApiGroup<ApiId, "pipelines">,
  never,
  Pipelines | Authentication | HttpApiGroup.HttpApiGroup.MiddlewareWithName<Groups, "pipelines">
> =>
  // The handlers only fail with the group's own errors, so the api's errors do not change their types.
  HttpApiBuilder.group(
    api as unknown as HttpApi.HttpApi<ApiId, typeof PipelinesApi>,
    "pipelines",
    (handlers) =>
      Effect.map(Pipelines, (pipelines) =>
        handlers
          .handle("run", ({ payload }) =>
            Effect.flatMap(Principal.CurrentPrincipal, (principal) => pipelines.run(principal, payload)))
          .handle("get", ({ path }) =>
            Effect.flatMap(Principal.CurrentPrincipal, (principal) => pipelines.get(principal, path.id))))
  )
