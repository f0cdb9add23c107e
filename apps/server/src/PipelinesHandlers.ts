/**
 * The handlers of the pipelines group, for any api that contains `PipelinesApi`.
 *
 * @since 0.1.0
 */
import { HttpGroup, Principal } from "@ouroboros/kernel"
import { Effect } from "effect"
import { Pipelines } from "./Pipeline.js"
import { PipelinesApi } from "./PipelinesApi.js"

const principal = Effect.service(Principal.CurrentPrincipal)

/**
 * Implements the pipelines group of `api` (which must contain `PipelinesApi`). Requires the `Pipelines` service and
 * the group's `Authentication` middleware.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { HttpApi } from "effect/http-api"
 * import { PipelinesApi } from "./PipelinesApi.js"

const principal = Effect.service(Principal.CurrentPrincipal)
 * class Api extends HttpApi.make("api").add(PipelinesApi) {}
 * const PipelinesLive = make(Api) // Layer<HttpApiGroup.Service<"api", "pipelines">, never, Pipelines | Authentication>
 */
export const make = HttpGroup.implement(PipelinesApi, (handlers) =>
  Effect.map(Effect.service(Pipelines), (pipelines) =>
    handlers
      .handle("run", ({ payload }) => Effect.flatMap(principal, (p) => pipelines.run(p, payload)))
      .handle("get", ({ params }) => Effect.flatMap(principal, (p) => pipelines.get(p, params.id)))))
