/**
 * API v1 of the retrieval pipeline: documents, search and ask. Schemas here are the HTTP contract.
 *
 * @since 0.1.0
 */
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Problem } from "@ouroboros/kernel"
import { Filter } from "@ouroboros/vector-store"
import { Schema } from "effect"
import { Authentication } from "./Authentication.js"

/**
 * A document id: 1 to 100 (the router matches path parameters of up to 100 characters) of `[A-Za-z0-9._:-]`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const DocumentId = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9._:-]{1,100}$/, { message: () => "a document id is 1 to 100 of A-Z a-z 0-9 . _ : -" })
).annotations({ identifier: "DocumentId" })

const NonBlank = (what: string) =>
  Schema.String.pipe(Schema.filter((s) => s.trim().length > 0 || `${what} must not be empty`))

/**
 * Metadata: a JSON object of scalars and arrays of scalars, searchable with `filter`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Metadata = Schema.Record({
  key: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_-]{1,64}$/, { message: () => "metadata keys are 1 to 64 of A-Z a-z 0-9 _ -" })),
  value: Schema.Union(
    Schema.String,
    Schema.Number,
    Schema.Boolean,
    Schema.Null,
    Schema.Array(Schema.Union(Schema.String, Schema.Number, Schema.Boolean))
  )
}).annotations({ identifier: "Metadata" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const IngestRequest = Schema.Struct({
  id: Schema.optional(DocumentId),
  text: NonBlank("text"),
  metadata: Schema.optional(Metadata)
}).annotations({ identifier: "IngestRequest" })

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
}).annotations({ identifier: "Document" })

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
  limit: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 100)), { default: () => 10 }),
  // Decoded by the handler with `Filter.decodeUnknown`, whose errors name the offending field (400).
  filter: Schema.optional(
    Schema.Unknown.annotations({
      identifier: "Filter",
      description: "A payload filter over metadata keys: { must?, should?, must_not? } of " +
        "{ key, match: { value } | { any } } or { key, range: { gt?, gte?, lt?, lte? } } or nested filters"
    })
  )
}).annotations({ identifier: "SearchRequest" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const Hit = Schema.Struct({
  documentId: DocumentId,
  chunk: Schema.Int,
  text: Schema.String,
  score: Schema.Number,
  metadata: Metadata
}).annotations({ identifier: "Hit" })

/**
 * @since 0.1.0
 * @category models
 */
export type Hit = typeof Hit.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const SearchResponse = Schema.Struct({ results: Schema.Array(Hit) }).annotations({ identifier: "SearchResponse" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const AskRequest = Schema.Struct({
  question: NonBlank("question"),
  topK: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 20)), { default: () => 4 }),
  useRag: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  model: Schema.optional(Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9._:/-]{1,128}$/)))
}).annotations({ identifier: "AskRequest" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const AskResponse = Schema.Struct({
  answer: Schema.String,
  sources: Schema.Array(Hit),
  degraded: Schema.Boolean,
  model: Schema.String
}).annotations({ identifier: "AskResponse" })

/**
 * @since 0.1.0
 * @category models
 */
export type AskResponse = typeof AskResponse.Type

const id = HttpApiSchema.param("id", DocumentId)

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
}).annotations({ identifier: "WhoAmI" })

/**
 * The documents group of API v1, behind tenant authentication.
 *
 * @since 0.1.0
 * @category groups
 */
export class DocumentsApi extends HttpApiGroup.make("documents")
  .add(
    HttpApiEndpoint.get("whoami", "/whoami")
      .addSuccess(WhoAmI)
      .annotate(OpenApi.Summary, "The tenant and roles of the presented credentials")
  )
  .add(
    HttpApiEndpoint.post("ingest", "/documents")
      .setPayload(IngestRequest)
      .addSuccess(Document, { status: 201 })
      .addError(Problem.Conflict)
      .addError(Problem.UnprocessableEntity)
      .addError(Problem.ServiceUnavailable)
      .annotate(OpenApi.Summary, "Ingest a document (idempotent by id): chunk, embed, index, record the event")
  )
  .add(
    HttpApiEndpoint.get("get")`/documents/${id}`
      .addSuccess(Document)
      .addError(Problem.NotFound)
      .annotate(OpenApi.Summary, "Read a document")
  )
  .add(
    HttpApiEndpoint.del("delete")`/documents/${id}`
      .addSuccess(HttpApiSchema.NoContent)
      .addError(Problem.NotFound)
      .addError(Problem.Conflict)
      .addError(Problem.ServiceUnavailable)
      .annotate(OpenApi.Summary, "Delete a document and its vectors")
  )
  .add(
    HttpApiEndpoint.post("search", "/search")
      .setPayload(SearchRequest)
      .addSuccess(SearchResponse)
      .addError(Filter.InvalidFilter)
      .addError(Problem.ServiceUnavailable)
      .annotate(OpenApi.Summary, "Semantic search over the tenant's documents")
  )
  .add(
    HttpApiEndpoint.post("ask", "/ask")
      .setPayload(AskRequest)
      .addSuccess(AskResponse)
      .addError(Problem.ServiceUnavailable)
      .annotate(OpenApi.Summary, "Answer a question from the tenant's documents (retrieve, then generate)")
  )
  .middleware(Authentication)
  .prefix("/api/v1")
  .annotate(OpenApi.Title, "Documents (v1)")
{}
