/**
 * What retrieval offers an HTTP server: the documents group (ingest, read, delete, search, ask), the operator group of
 * the vector projection, and {@link toProblem}, the one mapping of the package's domain errors to kernel problems
 * (`PipelinesHttp` uses it too).
 *
 * The groups carry no authentication: handlers read the caller from kernel's `Principal.CurrentPrincipal`, which the
 * server's own security middleware provides per request (`.middleware(Authentication)`). The documents group has no
 * version prefix: the server mounts it (`.prefix("/api/v1")`). The projections group's paths are under `/admin`, as
 * every operator group's.
 *
 * The schemas of the bodies are the HTTP contract: they decode every input (a bad one is a 400 problem from kernel's
 * `ProblemHttp` before a handler runs).
 *
 * @since 0.1.0
 */
import { HttpGroup, Principal, Problem } from "@ouroboros/kernel"
import { Filter } from "@ouroboros/vector-store"
import { Effect, Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import type { InvalidPipeline, PipelineConflict, PipelineError, PipelineNotFound } from "./Pipeline.js"
import type { PipelineSyntaxError } from "./PipelineSyntax.js"
import * as Retrieval from "./Retrieval.js"
import type {
  DocumentConflict,
  DocumentNotFound,
  EmptyDocument,
  IncompatibleCollection,
  InvalidCursor,
  ModelUnavailable,
  ProjectionBehind,
  RetrievalError,
  VectorStoreUnavailable
} from "./RetrievalError.js"

// -----------------------------------------------------------------------------
// problems
// -----------------------------------------------------------------------------

/**
 * The kernel problem of each domain error. A bad filter and a bad script are answered as they are (400s whose
 * bodies name the field, or the line and column).
 *
 * @since 0.1.0
 * @category models
 */
export type ProblemOf<E> = E extends DocumentNotFound | PipelineNotFound ? Problem.NotFound
  : E extends DocumentConflict | PipelineConflict ? Problem.Conflict
  : E extends EmptyDocument ? Problem.UnprocessableEntity
  : E extends ModelUnavailable | VectorStoreUnavailable | ProjectionBehind | IncompatibleCollection
    ? Problem.ServiceUnavailable
  : E extends InvalidPipeline | InvalidCursor ? Problem.BadRequest
  : E extends Filter.InvalidFilter | PipelineSyntaxError ? E
  : never

/** A breaker's remaining break (ms) as a `Retry-After` in whole seconds, at least 1. */
const retryAfterSeconds = (millis: number | undefined): { readonly retryAfter?: number } =>
  millis === undefined ? {} : { retryAfter: Math.max(1, Math.ceil(millis / 1000)) }

/**
 * Maps a domain error of the package to its kernel problem: not found 404, conflicts 409, an empty document 422, an
 * invalid pipeline 400, and every unavailability 503 with the breaker's remaining break as `retryAfter` (the
 * `Retry-After` header) when it is known.
 *
 * @since 0.1.0
 * @category problems
 */
export const toProblem = <E extends RetrievalError | PipelineError>(error: E): ProblemOf<E> => {
  const e = error as RetrievalError | PipelineError
  switch (e._tag) {
    case "DocumentNotFound":
    case "PipelineNotFound":
      return new Problem.NotFound({ detail: e.message }) as ProblemOf<E>
    case "DocumentConflict":
    case "PipelineConflict":
      return new Problem.Conflict({ detail: e.message }) as ProblemOf<E>
    case "EmptyDocument":
      return new Problem.UnprocessableEntity({ detail: e.message }) as ProblemOf<E>
    case "ModelUnavailable":
    case "VectorStoreUnavailable":
      return new Problem.ServiceUnavailable({ detail: e.detail, ...retryAfterSeconds(e.retryAfter) }) as ProblemOf<E>
    case "ProjectionBehind":
      // The projector retries every second.
      return new Problem.ServiceUnavailable({
        detail: "the vector index is catching up",
        retryAfter: 1
      }) as ProblemOf<E>
    case "IncompatibleCollection":
      return new Problem.ServiceUnavailable({ detail: e.message }) as ProblemOf<E>
    case "InvalidPipeline":
      return new Problem.BadRequest({ detail: e.detail }) as ProblemOf<E>
    case "InvalidCursor":
      return new Problem.BadRequest({ detail: e.message }) as ProblemOf<E>
    case "InvalidFilter":
    case "PipelineSyntaxError":
      return e as ProblemOf<E>
  }
}

/**
 * Maps the domain errors an effect can fail with (and only those) to kernel problems (see {@link toProblem}).
 *
 * @since 0.1.0
 * @category problems
 */
export const toProblems = <A, E extends RetrievalError | PipelineError, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, ProblemOf<E>, R> => Effect.mapError(effect, toProblem)

// -----------------------------------------------------------------------------
// schemas
// -----------------------------------------------------------------------------

const NonBlank = (what: string) =>
  Schema.String.check(Schema.makeFilter((s: string) => s.trim().length > 0 || `${what} must not be empty`))

/**
 * The body of `POST /documents`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const IngestRequest = Schema.Struct({
  id: Schema.optional(Retrieval.DocumentId),
  text: NonBlank("text"),
  metadata: Schema.optional(Retrieval.Metadata)
}).annotate({ identifier: "IngestRequest" })

// The search filter: documented as the filter schema (`Filter.Filter`, a metadata filter), decoded by the handler with
// `Filter.decodeUnknown`, whose `invalid-filter` 400 names the offending field and also checks what the schema cannot
// (reserved keys, depth).
const FilterBody: Schema.Codec<unknown> = Schema.Any.check(Schema.makeFilter(() => true, {
  representation: { id: "@ouroboros/retrieval/SearchFilter", payload: null, schemas: [Filter.Filter.ast] },
  toJsonSchema: ({ schemas }) => schemas[0]!
}))

/**
 * The body of `POST /search`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const SearchRequest = Schema.Struct({
  query: NonBlank("query"),
  limit: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 100 })).pipe(
    Schema.withDecodingDefaultType(Effect.succeed(Retrieval.defaultSearchLimit))
  ),
  filter: Schema.optional(FilterBody)
}).annotate({ identifier: "SearchRequest" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const SearchResponse = Schema.Struct({ results: Schema.Array(Retrieval.Hit) }).annotate({
  identifier: "SearchResponse"
})

/**
 * The body of `POST /ask`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const AskRequest = Schema.Struct({
  question: NonBlank("question"),
  topK: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 20 })).pipe(
    Schema.withDecodingDefaultType(Effect.succeed(Retrieval.defaultTopK))
  ),
  useRag: Schema.Boolean.pipe(Schema.withDecodingDefaultType(Effect.succeed(true))),
  model: Schema.optional(Schema.String.check(Schema.isPattern(/^[A-Za-z0-9._:/-]{1,128}$/)))
}).annotate({ identifier: "AskRequest" })

/**
 * Who the caller is, as the service sees it: the tenant, subject and roles of the request's principal.
 *
 * @since 0.1.0
 * @category schemas
 */
export const WhoAmI = Schema.Struct({
  tenantId: Schema.String,
  subject: Schema.String,
  roles: Schema.Array(Schema.String)
}).annotate({ identifier: "WhoAmI" })

// -----------------------------------------------------------------------------
// groups
// -----------------------------------------------------------------------------

const params = { id: Retrieval.DocumentId }

/**
 * Documents, search and ask, in the caller's tenant: `GET /whoami` (the tenant and roles of the presented
 * credentials), `POST /documents`, `GET` / `DELETE /documents/:id`, `POST /search`, `POST /ask`. No authentication and
 * no version prefix: the server adds both.
 *
 * @since 0.1.0
 * @category groups
 */
export class DocumentsGroup extends HttpApiGroup.make("documents")
  .add(
    HttpApiEndpoint.get("whoami", "/whoami", { success: WhoAmI })
      .annotate(OpenApi.Summary, "The tenant and roles of the presented credentials"),
    HttpApiEndpoint.post("ingest", "/documents", {
      payload: IngestRequest,
      success: Retrieval.Document.pipe(HttpApiSchema.status(201)),
      error: [Problem.Conflict, Problem.UnprocessableEntity, Problem.ServiceUnavailable]
    }).annotate(OpenApi.Summary, "Ingest a document (idempotent by id): chunk, embed, index, record the event"),
    HttpApiEndpoint.get("get", "/documents/:id", { params, success: Retrieval.Document, error: Problem.NotFound })
      .annotate(OpenApi.Summary, "Read a document"),
    HttpApiEndpoint.delete("delete", "/documents/:id", {
      params,
      success: HttpApiSchema.NoContent,
      error: [Problem.NotFound, Problem.Conflict, Problem.ServiceUnavailable]
    }).annotate(OpenApi.Summary, "Delete a document and its vectors"),
    HttpApiEndpoint.post("search", "/search", {
      payload: SearchRequest,
      success: SearchResponse,
      error: [Filter.InvalidFilter, Problem.ServiceUnavailable]
    }).annotate(OpenApi.Summary, "Semantic search over the tenant's documents"),
    HttpApiEndpoint.post("ask", "/ask", {
      payload: AskRequest,
      success: Retrieval.AskResponse,
      error: Problem.ServiceUnavailable
    })
      .annotate(OpenApi.Summary, "Answer a question from the tenant's documents (retrieve, then generate)")
  )
  .annotate(OpenApi.Title, "Documents")
{}

/**
 * The vector projection, for operators: `GET /admin/projections/vectors` (how far it has applied the event store)
 * and `POST /admin/projections/vectors/rebuild` (drop the vectors and rebuild them from the events alone). No
 * authentication: the server adds its admin middleware.
 *
 * @since 0.1.0
 * @category groups
 */
export class ProjectionsGroup extends HttpApiGroup.make("projections")
  .add(
    HttpApiEndpoint.get("status", "/admin/projections/vectors", { success: Retrieval.ProjectionStatus })
      .annotate(OpenApi.Summary, "How far the vector projection has applied the event store"),
    HttpApiEndpoint.post("rebuild", "/admin/projections/vectors/rebuild", {
      success: Retrieval.ProjectionStatus,
      error: Problem.ServiceUnavailable
    }).annotate(OpenApi.Summary, "Drop the vectors and rebuild them from the events alone")
  )
  .annotate(OpenApi.Title, "Admin: projections")
{}

// -----------------------------------------------------------------------------
// handlers
// -----------------------------------------------------------------------------

/**
 * Implements {@link DocumentsGroup} for any api that contains it, over the `Retrieval` service. The caller is the
 * request's `Principal.CurrentPrincipal`: the api must add a middleware to the group that provides it.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { Principal } from "@ouroboros/kernel"
 * import { RetrievalHttp } from "@ouroboros/retrieval"
 * import { HttpApi, HttpApiMiddleware } from "effect/http-api"
 *
 * // the server's authentication: a middleware that provides the caller
 * class Authentication extends HttpApiMiddleware.Service<Authentication, {
 *   provides: Principal.CurrentPrincipal
 * }>()("app/Authentication") {}
 * class Api extends HttpApi.make("api").add(
 *   RetrievalHttp.DocumentsGroup.middleware(Authentication).prefix("/api/v1")
 * ) {}
 * const DocumentsLive = RetrievalHttp.layerDocuments(Api) // needs Retrieval and Authentication
 */
export const layerDocuments = HttpGroup.implement(
  DocumentsGroup,
  (handlers) =>
    Retrieval.Retrieval.useSync((retrieval) =>
      handlers
        .handle(
          "whoami",
          () =>
            Effect.map(
              Principal.CurrentPrincipal,
              (p) => ({ tenantId: p.tenantId, subject: p.subject, roles: p.roles })
            )
        )
        .handle(
          "ingest",
          ({ payload }) =>
            Effect.flatMap(Principal.CurrentPrincipal, (principal) => toProblems(retrieval.ingest(principal, payload)))
        )
        .handle(
          "get",
          ({ params }) =>
            Effect.flatMap(Principal.CurrentPrincipal, (principal) => toProblems(retrieval.get(principal, params.id)))
        )
        .handle(
          "delete",
          ({ params }) =>
            Effect.flatMap(
              Principal.CurrentPrincipal,
              (principal) => toProblems(retrieval.remove(principal, params.id))
            )
        )
        .handle("search", ({ payload }) =>
          Effect.gen(function*() {
            const principal = yield* Principal.CurrentPrincipal
            const filter = payload.filter === undefined ? undefined : yield* Filter.decodeUnknown(payload.filter)
            const results = yield* toProblems(
              retrieval.search(principal, { query: payload.query, limit: payload.limit, filter })
            )
            return { results }
          }))
        .handle(
          "ask",
          ({ payload }) => Effect.flatMap(Principal.CurrentPrincipal, (principal) => retrieval.ask(principal, payload))
        )
    )
)

/**
 * Implements {@link ProjectionsGroup} for any api that contains it, over the `Retrieval` service.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerProjections = HttpGroup.implement(
  ProjectionsGroup,
  (handlers) =>
    Retrieval.Retrieval.useSync((retrieval) =>
      handlers
        .handle("status", () => retrieval.status)
        .handle("rebuild", () => toProblems(Effect.andThen(retrieval.rebuild, retrieval.status)))
    )
)
