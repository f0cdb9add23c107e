/**
 * The versions of the tenant API, each an `HttpApi` of its own, served from one set of handlers (the newest
 * version's) with `@ouroboros/versioning`:
 *
 * - **v2** (newest): every answer is an envelope `{ data, meta: { apiVersion, correlationId } }`; search answers
 *   `data` as the list of hits; `GET /api/v2/documents?cursor=&limit=` lists the tenant's documents with opaque cursors
 *   (the next one in `meta.nextCursor`). Errors are problem+json, as in every version.
 * - **v1**: today's shapes, exactly: `@ouroboros/retrieval`'s groups under `/api/v1`, served by v2's handlers through
 *   {@link V1ToV2}, which takes each answer out of its envelope.
 *
 * Both carry `@ouroboros/tenancy`'s authentication and declare the quota errors their handlers can fail with.
 *
 * @since 0.1.0
 */
import { Problem } from "@ouroboros/kernel"
import { Pipeline, PipelinesHttp, PipelineSyntax, Retrieval, RetrievalHttp } from "@ouroboros/retrieval"
import { QuotasHttp, TenancyHttp } from "@ouroboros/tenancy"
import { Filter } from "@ouroboros/vector-store"
import { VersionChange, VersionedApi } from "@ouroboros/versioning"
import { Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"

// -----------------------------------------------------------------------------
// v1: today's contract
// -----------------------------------------------------------------------------

/**
 * API v1: the documents and pipelines groups as they were before v2 existed.
 *
 * @since 0.1.0
 * @category apis
 */
export class ApiV1 extends HttpApi.make("ouroboros-v1")
  .add(
    RetrievalHttp.DocumentsGroup.middleware(QuotasHttp.Errors).middleware(TenancyHttp.Authentication).prefix("/api/v1")
      .annotate(OpenApi.Title, "Documents (v1)")
  )
  .add(
    PipelinesHttp.PipelinesGroup.middleware(QuotasHttp.Errors).middleware(TenancyHttp.Authentication).prefix("/api/v1")
      .annotate(OpenApi.Title, "Pipelines (v1)")
  )
  .annotate(OpenApi.Title, "Ouroboros API v1")
  .annotate(OpenApi.Description, "LLM retrieval pipeline service: ingest, search and ask (API v1)")
{}

// -----------------------------------------------------------------------------
// v2: envelopes and lists
// -----------------------------------------------------------------------------

/**
 * The `meta` of every v2 answer: the version that answered and the request's correlation id.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Meta = Schema.Struct({
  apiVersion: Schema.String,
  correlationId: Schema.optionalKey(Schema.String)
}).annotate({ identifier: "MetaV2" })

/**
 * @since 0.1.0
 * @category models
 */
export type Meta = typeof Meta.Type

/**
 * The `meta` of a v2 list: also the page size, and the cursor of the next page (absent on the last page).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ListMeta = Schema.Struct({
  apiVersion: Schema.String,
  correlationId: Schema.optionalKey(Schema.String),
  limit: Schema.Int,
  nextCursor: Schema.optionalKey(Schema.String)
}).annotate({ identifier: "ListMetaV2" })

/**
 * An answer of v2: `{ data, meta }`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const envelope = <S extends Schema.Top>(data: S, identifier: string) =>
  Schema.Struct({ data, meta: Meta }).annotate({ identifier })

const DocumentV2 = envelope(Retrieval.Document, "DocumentV2")
const WhoAmIV2 = envelope(RetrievalHttp.WhoAmI, "WhoAmIV2")
const SearchV2 = envelope(Schema.Array(Retrieval.Hit), "SearchResultsV2")
const AnswerV2 = envelope(Retrieval.AskResponse, "AnswerV2")
const PipelineV2 = envelope(Pipeline.Pipeline, "PipelineV2")
const DocumentListV2 = Schema.Struct({ data: Schema.Array(Retrieval.Document), meta: ListMeta }).annotate({
  identifier: "DocumentListV2"
})

const params = { id: Retrieval.DocumentId }

/**
 * The query of `GET /api/v2/documents`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ListQuery = {
  cursor: Schema.optionalKey(
    Schema.String.check(Schema.isMaxLength(400)).annotate({ description: "meta.nextCursor of the previous page" })
  ),
  limit: Schema.optionalKey(
    Schema.NumberFromString.check(
      Schema.isInt(),
      Schema.isBetween({ minimum: 1, maximum: Retrieval.maxPageSize }, {
        message: `limit is an integer from 1 to ${Retrieval.maxPageSize}`
      })
    ).annotate({ description: `Documents per page (default ${Retrieval.defaultPageSize})` })
  )
}

/**
 * v2 of the documents group: the same endpoints as v1 with enveloped answers, and the list.
 *
 * @since 0.1.0
 * @category groups
 */
export class DocumentsV2 extends HttpApiGroup.make("documents")
  .add(
    HttpApiEndpoint.get("whoami", "/whoami", { success: WhoAmIV2 })
      .annotate(OpenApi.Summary, "The tenant and roles of the presented credentials"),
    HttpApiEndpoint.get("list", "/documents", {
      query: ListQuery,
      success: DocumentListV2,
      error: Problem.BadRequest
    }).annotate(
      OpenApi.Summary,
      "The tenant's documents by id, a page at a time: give meta.nextCursor back as cursor for the next page"
    ),
    HttpApiEndpoint.post("ingest", "/documents", {
      payload: RetrievalHttp.IngestRequest,
      success: DocumentV2.pipe(HttpApiSchema.status(201)),
      error: [Problem.Conflict, Problem.UnprocessableEntity, Problem.ServiceUnavailable]
    }).annotate(OpenApi.Summary, "Ingest a document (idempotent by id): chunk, embed, index, record the event"),
    HttpApiEndpoint.get("get", "/documents/:id", { params, success: DocumentV2, error: Problem.NotFound })
      .annotate(OpenApi.Summary, "Read a document"),
    HttpApiEndpoint.delete("delete", "/documents/:id", {
      params,
      success: HttpApiSchema.NoContent,
      error: [Problem.NotFound, Problem.Conflict, Problem.ServiceUnavailable]
    }).annotate(OpenApi.Summary, "Delete a document and its vectors"),
    HttpApiEndpoint.post("search", "/search", {
      payload: RetrievalHttp.SearchRequest,
      success: SearchV2,
      error: [Filter.InvalidFilter, Problem.ServiceUnavailable]
    }).annotate(OpenApi.Summary, "Semantic search over the tenant's documents"),
    HttpApiEndpoint.post("ask", "/ask", {
      payload: RetrievalHttp.AskRequest,
      success: AnswerV2,
      error: Problem.ServiceUnavailable
    }).annotate(OpenApi.Summary, "Answer a question from the tenant's documents (retrieve, then generate)")
  )
  .middleware(QuotasHttp.Errors)
  .middleware(TenancyHttp.Authentication)
  .prefix("/api/v2")
  .annotate(OpenApi.Title, "Documents")
{}

/**
 * v2 of the pipelines group: enveloped answers.
 *
 * @since 0.1.0
 * @category groups
 */
export class PipelinesV2 extends HttpApiGroup.make("pipelines")
  .add(
    HttpApiEndpoint.post("run", "/pipelines", {
      payload: PipelinesHttp.RunPipelineRequest,
      success: PipelineV2.pipe(HttpApiSchema.status(201)),
      error: [Problem.BadRequest, Problem.Conflict, PipelineSyntax.PipelineSyntaxError]
    }).annotate(OpenApi.Summary, "Run a reasoning pipeline (draft, critique, improve; retrieval optional)"),
    HttpApiEndpoint.get("get", "/pipelines/:id", {
      params: { id: Pipeline.PipelineId },
      success: PipelineV2,
      error: Problem.NotFound
    }).annotate(OpenApi.Summary, "Read a pipeline: its steps and final answer")
  )
  .middleware(QuotasHttp.Errors)
  .middleware(TenancyHttp.Authentication)
  .prefix("/api/v2")
  .annotate(OpenApi.Title, "Pipelines")
{}

/**
 * API v2.
 *
 * @since 0.1.0
 * @category apis
 */
export class ApiV2 extends HttpApi.make("ouroboros-v2")
  .add(DocumentsV2)
  .add(PipelinesV2)
  .annotate(OpenApi.Title, "Ouroboros API v2")
  .annotate(OpenApi.Description, "LLM retrieval pipeline service: ingest, search and ask (API v2)")
{}

// -----------------------------------------------------------------------------
// the change, and the bundle
// -----------------------------------------------------------------------------

const data = <A>(answer: { readonly data: A }): A => answer.data

/**
 * What separates v1 from v2: v2 wraps every answer in `{ data, meta }` (search: `data` is the list of hits, which
 * v1 answers as `{ results }`). Requests are the same.
 *
 * @since 0.1.0
 * @category changes
 */
export const V1ToV2 = VersionChange.make(
  ApiV1,
  ApiV2,
  "Answers are enveloped as { data, meta: { apiVersion, correlationId } }; search answers data as the list of hits; " +
    "GET /api/v2/documents lists documents with cursors"
)
  .endpoint("documents", "whoami", { success: data })
  .endpoint("documents", "ingest", { success: data })
  .endpoint("documents", "get", { success: data })
  .endpoint("documents", "search", { success: (v2) => ({ results: v2.data }) })
  .endpoint("documents", "ask", { success: data })
  .endpoint("pipelines", "run", { success: data })
  .endpoint("pipelines", "get", { success: data })

/**
 * The versions, newest first: v2 has the handlers, v1 is v2 through {@link V1ToV2}.
 *
 * @since 0.1.0
 * @category apis
 */
export const Versions = VersionedApi.make("v2", ApiV2).previous("v1", ApiV1, V1ToV2)
