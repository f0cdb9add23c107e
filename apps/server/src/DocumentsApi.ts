/**
 * API v1 of the retrieval pipeline: documents, search and ask. Schemas here are the HTTP contract.
 *
 * @since 0.1.0
 */
import { Problem } from "@ouroboros/kernel"
import { Filter } from "@ouroboros/vector-store"
import { Effect, Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { Authentication } from "./Authentication.js"

/**
 * A document id: 1 to 100 (the router matches path parameters of up to 100 characters) of `[A-Za-z0-9._:-]`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const DocumentId = Schema.String.check(
  Schema.isPattern(/^[A-Za-z0-9._:-]{1,100}$/, { message: "a document id is 1 to 100 of A-Z a-z 0-9 . _ : -" })
).annotate({ identifier: "DocumentId" })

const NonBlank = (what: string) =>
  Schema.String.check(Schema.makeFilter((s: string) => s.trim().length > 0 || `${what} must not be empty`))

const Scalar = Schema.Union([Schema.String, Schema.Finite, Schema.Boolean])

/**
 * Metadata: a JSON object of scalars and arrays of scalars, searchable with `filter`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Metadata = Schema.Record(
  Schema.String.check(
    Schema.isPattern(/^[A-Za-z0-9_-]{1,64}$/, { message: "metadata keys are 1 to 64 of A-Z a-z 0-9 _ -" })
  ),
  Schema.Union([Schema.String, Schema.Finite, Schema.Boolean, Schema.Null, Schema.Array(Scalar)])
).annotate({ identifier: "Metadata" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const IngestRequest = Schema.Struct({
  id: Schema.optional(DocumentId),
  text: NonBlank("text"),
  metadata: Schema.optional(Metadata)
}).annotate({ identifier: "IngestRequest" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const Document = Schema.Struct({
  id: DocumentId,
  text: Schema.String,
  metadata: Metadata,
  chunks: Schema.Int,
  version: Schema.Int,
  contentHash: Schema.String,
  embedder: Schema.String,
  createdAt: Schema.String,
  updatedAt: Schema.String
}).annotate({ identifier: "Document" })

/**
 * @since 0.1.0
 * @category models
 */
export type Document = typeof Document.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const SearchRequest = Schema.Struct({
  query: NonBlank("query"),
  limit: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 100 })).pipe(
    Schema.withDecodingDefaultType(Effect.succeed(10))
  ),
  // Decoded by the handler with `Filter.decodeUnknown`, whose errors name the offending field (400).
  filter: Schema.optional(
    Schema.Unknown.annotate({
      identifier: "Filter",
      description: "A payload filter over metadata keys: { must?, should?, must_not? } of " +
        "{ key, match: { value } | { any } } or { key, range: { gt?, gte?, lt?, lte? } } or nested filters"
    })
  )
}).annotate({ identifier: "SearchRequest" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const Hit = Schema.Struct({
  documentId: DocumentId,
  chunk: Schema.Int,
  text: Schema.String,
  score: Schema.Finite,
  metadata: Metadata
}).annotate({ identifier: "Hit" })

/**
 * @since 0.1.0
 * @category models
 */
export type Hit = typeof Hit.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const SearchResponse = Schema.Struct({ results: Schema.Array(Hit) }).annotate({ identifier: "SearchResponse" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const AskRequest = Schema.Struct({
  question: NonBlank("question"),
  topK: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 20 })).pipe(
    Schema.withDecodingDefaultType(Effect.succeed(4))
  ),
  useRag: Schema.Boolean.pipe(Schema.withDecodingDefaultType(Effect.succeed(true))),
  model: Schema.optional(Schema.String.check(Schema.isPattern(/^[A-Za-z0-9._:/-]{1,128}$/)))
}).annotate({ identifier: "AskRequest" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const AskResponse = Schema.Struct({
  answer: Schema.String,
  sources: Schema.Array(Hit),
  degraded: Schema.Boolean,
  model: Schema.String
}).annotate({ identifier: "AskResponse" })

/**
 * @since 0.1.0
 * @category models
 */
export type AskResponse = typeof AskResponse.Type

const params = { id: DocumentId }

/**
 * Who the caller is, as the service sees it.
 *
 * @since 0.1.0
 * @category schemas
 */
export const WhoAmI = Schema.Struct({
  tenantId: Schema.String,
  subject: Schema.String,
  roles: Schema.Array(Schema.String)
}).annotate({ identifier: "WhoAmI" })

/**
 * The documents group of API v1, behind tenant authentication.
 *
 * @since 0.1.0
 * @category groups
 */
export class DocumentsApi extends HttpApiGroup.make("documents")
  .add(
    HttpApiEndpoint.get("whoami", "/whoami", { success: WhoAmI })
      .annotate(OpenApi.Summary, "The tenant and roles of the presented credentials"),
    HttpApiEndpoint.post("ingest", "/documents", {
      payload: IngestRequest,
      success: Document.pipe(HttpApiSchema.status(201)),
      error: [Problem.Conflict, Problem.UnprocessableEntity, Problem.ServiceUnavailable]
    }).annotate(OpenApi.Summary, "Ingest a document (idempotent by id): chunk, embed, index, record the event"),
    HttpApiEndpoint.get("get", "/documents/:id", { params, success: Document, error: Problem.NotFound })
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
      success: AskResponse,
      error: Problem.ServiceUnavailable
    })
      .annotate(OpenApi.Summary, "Answer a question from the tenant's documents (retrieve, then generate)")
  )
  .middleware(Authentication)
  .prefix("/api/v1")
  .annotate(OpenApi.Title, "Documents (v1)")
{}
