/**
 * The domain errors of the retrieval pipeline. None of them is an HTTP error: `RetrievalHttp` maps them to kernel
 * problems at the edge. Each has a `message` that says what went wrong, for logs and for startup failures.
 *
 * Unavailability errors carry `retryAfter` (milliseconds) when it is known: the remaining break of the dependency's
 * circuit breaker, taken from the breaker's own `CircuitOpen` (or from its state when the failing call opened it).
 *
 * @since 0.1.0
 */
import { Filter } from "@ouroboros/vector-store"
import { Schema } from "effect"

const seconds = (millis: number): string => `${Math.max(1, Math.ceil(millis / 1000))} s`

/**
 * The tenant has no document with this id (another tenant's document is not found either).
 *
 * @since 0.1.0
 * @category errors
 */
export class DocumentNotFound extends Schema.TaggedError<DocumentNotFound>()(
  "DocumentNotFound",
  { id: Schema.String },
  { httpApiStatus: 404, description: "No such document" }
) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `no document ${this.id}`
  }
}

/**
 * The document's stream moved on between reading it and writing to it (another request changed it): retry.
 *
 * @since 0.1.0
 * @category errors
 */
export class DocumentConflict extends Schema.TaggedError<DocumentConflict>()(
  "DocumentConflict",
  {
    id: Schema.String,
    /** What the event store found (expected and actual versions). */
    reason: Schema.String
  },
  { httpApiStatus: 409, description: "The document changed concurrently" }
) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `the document changed concurrently (${this.reason}); retry`
  }
}

/**
 * The text has nothing to index (no chunk came out of it).
 *
 * @since 0.1.0
 * @category errors
 */
export class EmptyDocument extends Schema.TaggedError<EmptyDocument>()(
  "EmptyDocument",
  { id: Schema.String },
  { httpApiStatus: 422, description: "The text has no content to index" }
) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return "the text has no content to index"
  }
}

/**
 * A model (the embedding model, or the language model) failed or its circuit breaker is open. `retryAfter` is the
 * remaining break of the breaker in milliseconds, when it is open.
 *
 * @since 0.1.0
 * @category errors
 */
export class ModelUnavailable extends Schema.TaggedError<ModelUnavailable>()(
  "ModelUnavailable",
  {
    /** The model's id (`ollama:nomic-embed-text`, `local:fh-384`, …). */
    model: Schema.String,
    /** What the model was asked to do. */
    purpose: Schema.Literals(["embedding", "generation"]),
    /** Why the call failed (the underlying error's message). */
    reason: Schema.String,
    retryAfter: Schema.optional(Schema.Finite)
  },
  { httpApiStatus: 503, description: "A model is unavailable" }
) {
  /**
   * The short sentence clients see: `the embedding model is unavailable`.
   *
   * @since 0.1.0
   */
  get detail(): string {
    return this.purpose === "embedding" ? "the embedding model is unavailable" : "the language model is unavailable"
  }

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.detail} (${this.model}: ${this.reason})` +
      (this.retryAfter !== undefined ? `; retry in ${seconds(this.retryAfter)}` : "")
  }
}

/**
 * The vector store failed or its circuit breaker is open. `retryAfter` is the remaining break of the breaker in
 * milliseconds, when it is open.
 *
 * @since 0.1.0
 * @category errors
 */
export class VectorStoreUnavailable extends Schema.TaggedError<VectorStoreUnavailable>()(
  "VectorStoreUnavailable",
  {
    /** Why the call failed (the underlying error's message). */
    reason: Schema.String,
    retryAfter: Schema.optional(Schema.Finite)
  },
  { httpApiStatus: 503, description: "The vector store is unavailable" }
) {
  /**
   * The short sentence clients see: `the vector store is unavailable`.
   *
   * @since 0.1.0
   */
  get detail(): string {
    return "the vector store is unavailable"
  }

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.detail} (${this.reason})` +
      (this.retryAfter !== undefined ? `; retry in ${seconds(this.retryAfter)}` : "")
  }
}

/**
 * A write was recorded, but the vector projection did not apply it in time (it is catching up): the write is not
 * lost, and becomes searchable once the projection reaches it.
 *
 * @since 0.1.0
 * @category errors
 */
export class ProjectionBehind extends Schema.TaggedError<ProjectionBehind>()(
  "ProjectionBehind",
  {
    /** The event sequence the request waited for. */
    awaited: Schema.Int,
    /** The last sequence the projection had applied. */
    applied: Schema.Int
  },
  { httpApiStatus: 503, description: "The vector index is catching up" }
) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `the vector index is catching up (applied ${this.applied} of ${this.awaited})`
  }
}

/**
 * A vector collection that the configured embedder cannot fill (its vectors have another size, or another embedder
 * built it): retrieval does not start, and says why in one line.
 *
 * @since 0.1.0
 * @category errors
 */
export class IncompatibleCollection extends Schema.TaggedError<IncompatibleCollection>()(
  "IncompatibleCollection",
  { collection: Schema.String, reason: Schema.String }
) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return this.reason
  }
}

/**
 * A list cursor that this service did not issue (malformed, or tampered with).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidCursor extends Schema.TaggedError<InvalidCursor>()(
  "InvalidCursor",
  { cursor: Schema.String },
  { httpApiStatus: 400, description: "The cursor was not issued by this service" }
) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return "the cursor is not one this service issued: start again without a cursor"
  }
}

/**
 * Every error of the `Retrieval` service (`InvalidFilter` is `@ouroboros/vector-store`'s: a search filter that
 * cannot be used, whose `detail` names the offending field).
 *
 * @since 0.1.0
 * @category errors
 */
export type RetrievalError =
  | DocumentNotFound
  | DocumentConflict
  | EmptyDocument
  | ModelUnavailable
  | VectorStoreUnavailable
  | ProjectionBehind
  | IncompatibleCollection
  | InvalidCursor
  | Filter.InvalidFilter
