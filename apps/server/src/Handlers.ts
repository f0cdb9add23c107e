/**
 * The handlers of the tenant API, written once for the newest version (v2) with `@ouroboros/versioning`: every older
 * version is served by them through its version changes (see `Versions`). They shape the answers of the server's
 * `Documents` service as v2's envelopes `{ data, meta }`. Also the handlers of `@ouroboros/retrieval`'s projections
 * group (admin).
 *
 * @since 0.1.0
 */
import { Principal, RequestContext } from "@ouroboros/kernel"
import { Retrieval, RetrievalHttp } from "@ouroboros/retrieval"
import { ApiVersion, VersionedApi } from "@ouroboros/versioning"
import { Effect, Layer, Option } from "effect"
import { Api } from "./Api.js"
import { Documents } from "./Documents.js"
import { Versions } from "./Versions.js"

/**
 * The `meta` of an answer: the version that answered, and the request's correlation id.
 *
 * @since 0.1.0
 * @category utils
 */
export const meta = Effect.gen(function*() {
  const apiVersion = (yield* ApiVersion.current) ?? Versions.versions[0]!.version
  const correlationId = yield* RequestContext.currentCorrelationId
  return Option.isSome(correlationId) ? { apiVersion, correlationId: correlationId.value } : { apiVersion }
})

const enveloped = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(effect, (data) => Effect.map(meta, (meta) => ({ data, meta })))

const whoami = Effect.map(
  Principal.CurrentPrincipal,
  (p) => ({ tenantId: p.tenantId, subject: p.subject, roles: p.roles })
)

/**
 * `/api/<version>/whoami`, `/documents`, `/search`, `/ask`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerDocuments = VersionedApi.group(
  Versions,
  "documents",
  (handlers) =>
    Effect.map(Effect.service(Documents), (documents) =>
      handlers
        .handle("whoami", () => enveloped(whoami))
        .handle("list", ({ query }) =>
          Effect.gen(function*() {
            const limit = query.limit ?? Retrieval.defaultPageSize
            const page = yield* documents.list({ cursor: query.cursor, limit })
            return {
              data: page.documents,
              meta: {
                ...(yield* meta),
                limit,
                ...(page.nextCursor === undefined ? {} : { nextCursor: page.nextCursor })
              }
            }
          }))
        .handle("ingest", ({ payload }) => enveloped(documents.ingest(payload)))
        .handle("get", ({ params }) => enveloped(documents.get(params.id)))
        .handle("delete", ({ params }) => documents.remove(params.id))
        .handle("search", ({ payload }) => enveloped(documents.search(payload)))
        .handle("ask", ({ payload }) => enveloped(documents.ask(payload))))
)

/**
 * `/api/<version>/pipelines`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerPipelines = VersionedApi.group(
  Versions,
  "pipelines",
  (handlers) =>
    Effect.map(Effect.service(Documents), (documents) =>
      handlers
        .handle("run", ({ payload }) => enveloped(documents.runPipeline(payload)))
        .handle("get", ({ params }) => enveloped(documents.getPipeline(params.id))))
)

/**
 * The versioned groups, and the projections group of the unversioned `Api`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = Layer.mergeAll(layerDocuments, layerPipelines, RetrievalHttp.layerProjections(Api))
