/**
 * The handlers of API v1 and of the admin projection endpoints.
 *
 * @since 0.1.0
 */
import { HttpApiBuilder } from "@effect/platform"
import { EventStore } from "@ouroboros/event-store"
import { Principal } from "@ouroboros/kernel"
import { Filter } from "@ouroboros/vector-store"
import { Effect, Layer } from "effect"
import { Api } from "./Api.js"
import { Retrieval } from "./Retrieval.js"

/**
 * @since 0.1.0
 * @category layers
 */
export const layerDocuments = HttpApiBuilder.group(Api, "documents", (handlers) =>
  Effect.gen(function*() {
    const retrieval = yield* Retrieval
    return handlers
      .handle("whoami", () =>
        Effect.map(Principal.CurrentPrincipal, (p) => ({ tenantId: p.tenantId, subject: p.subject, roles: p.roles })))
      .handle("ingest", ({ payload }) =>
        Effect.flatMap(Principal.CurrentPrincipal, (principal) => retrieval.ingest(principal, payload)))
      .handle("get", ({ path }) =>
        Effect.flatMap(Principal.CurrentPrincipal, (principal) => retrieval.get(principal, path.id)))
      .handle("delete", ({ path }) =>
        Effect.flatMap(Principal.CurrentPrincipal, (principal) => retrieval.remove(principal, path.id)))
      .handle("search", ({ payload }) =>
        Effect.gen(function*() {
          const principal = yield* Principal.CurrentPrincipal
          const filter = payload.filter === undefined ? undefined : yield* Filter.decodeUnknown(payload.filter)
          const results = yield* retrieval.search(principal, { query: payload.query, limit: payload.limit, filter })
          return { results }
        }))
      .handle("ask", ({ payload }) =>
        Effect.flatMap(Principal.CurrentPrincipal, (principal) => retrieval.ask(principal, payload)))
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
      .handle("rebuild", () => Effect.zipRight(retrieval.rebuild, status))
  }))

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = Layer.mergeAll(layerDocuments, layerProjections)
