/**
 * The handlers of API v1 and of the admin projection endpoints.
 *
 * @since 0.1.0
 */
import { EventStore } from "@ouroboros/event-store"
import { Principal } from "@ouroboros/kernel"
import { Filter } from "@ouroboros/vector-store"
import { Effect, Layer } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { Api } from "./Api.js"
import { Retrieval } from "./Retrieval.js"

const principal = Effect.service(Principal.CurrentPrincipal)

/**
 * @since 0.1.0
 * @category layers
 */
export const layerDocuments = HttpApiBuilder.group(Api, "documents", (handlers) =>
  Effect.gen(function*() {
    const retrieval = yield* Retrieval
    return handlers
      .handle("whoami", () =>
        Effect.map(principal, (p) => ({ tenantId: p.tenantId, subject: p.subject, roles: p.roles })))
      .handle("ingest", ({ payload }) => Effect.flatMap(principal, (p) => retrieval.ingest(p, payload)))
      .handle("get", ({ params }) => Effect.flatMap(principal, (p) => retrieval.get(p, params.id)))
      .handle("delete", ({ params }) => Effect.flatMap(principal, (p) => retrieval.remove(p, params.id)))
      .handle("search", ({ payload }) =>
        Effect.gen(function*() {
          const p = yield* principal
          const filter = payload.filter === undefined ? undefined : yield* Filter.decodeUnknown(payload.filter)
          const results = yield* retrieval.search(p, { query: payload.query, limit: payload.limit, filter })
          return { results }
        }))
      .handle("ask", ({ payload }) => Effect.flatMap(principal, (p) => retrieval.ask(p, payload)))
  }))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerProjections = HttpApiBuilder.group(Api, "projections", (handlers) =>
  Effect.gen(function*() {
    const retrieval = yield* Retrieval
    const events = yield* EventStore.EventStore
    const status = Effect.all({ appliedSequence: retrieval.applied, lastSequence: events.lastSequence })
    return handlers
      .handle("status", () => status)
      .handle("rebuild", () => Effect.andThen(retrieval.rebuild, status))
  }))

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = Layer.mergeAll(layerDocuments, layerProjections)
