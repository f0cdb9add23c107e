/**
 * The VectorStore service: collections of embedding vectors with JSON payloads, partitioned by tenant, searched by
 * exact or approximate cosine similarity with a payload filter. Two backends implement it: the embedded store
 * (`VectorStore/Embedded`, the default: files under the data directory) and Qdrant (`VectorStore/Qdrant`).
 *
 * Every call that touches points takes the caller's tenant; the store adds the tenant condition itself, so a caller
 * can never reach another tenant's points. Point ids are the caller's strings and are scoped to the tenant: two
 * tenants may use the same id in one collection without touching each other.
 *
 * @since 0.1.0
 */
import type { TenantId } from "@ouroboros/kernel/TenantId"
import { Context, Data, Effect, type Option, Schema } from "effect"
import { createHash } from "node:crypto"
import type { Filter, InvalidFilter } from "./Filter.js"

/**
 * A point to store: the caller's id (unique per tenant and collection), its vector and a JSON payload.
 *
 * @since 0.1.0
 * @category models
 */
export interface Point {
  readonly id: string
  readonly vector: ReadonlyArray<number> | Float32Array
  readonly payload: Readonly<Record<string, unknown>>
}

/**
 * A search hit: cosine similarity in [-1, 1], higher is closer.
 *
 * @since 0.1.0
 * @category models
 */
export interface ScoredPoint {
  readonly id: string
  readonly score: number
  readonly payload: Record<string, unknown>
}

/**
 * The distance functions supported (cosine only: vectors are L2-normalised when stored).
 *
 * @since 0.1.0
 * @category models
 */
export type Distance = "Cosine"

/**
 * What a collection must look like. `embedder` (a model id) is recorded with the collection so the server can tell
 * which embedder built it.
 *
 * @since 0.1.0
 * @category models
 */
export interface CollectionSpec {
  readonly name: string
  readonly dimensions: number
  readonly distance?: Distance | undefined
  readonly embedder?: string | undefined
}

/**
 * What a collection is: its vector size, distance, embedder and number of points (all tenants).
 *
 * @since 0.1.0
 * @category models
 */
export interface CollectionInfo {
  readonly name: string
  readonly dimensions: number
  readonly distance: Distance
  readonly embedder: string | undefined
  readonly count: number
}

/**
 * A search: the query vector, how many hits at most, an optional payload filter and minimum score.
 *
 * @since 0.1.0
 * @category models
 */
export interface SearchRequest {
  readonly vector: ReadonlyArray<number> | Float32Array
  readonly limit: number
  readonly filter?: Filter | undefined
  readonly scoreThreshold?: number | undefined
}

/**
 * Which points to delete: by id, or all of the tenant's points that match a filter.
 *
 * @since 0.1.0
 * @category models
 */
export type Selector = { readonly ids: ReadonlyArray<string> } | { readonly filter: Filter }

/**
 * The format of snapshot bytes. A snapshot restores only into a store of the same format.
 *
 * @since 0.1.0
 * @category models
 */
export type SnapshotFormat = "ouroboros-embedded/1" | "qdrant"

/**
 * A snapshot of a whole collection (every tenant): opaque bytes with their SHA-256 (hex), for backups.
 *
 * @since 0.1.0
 * @category models
 */
export interface Snapshot {
  readonly collection: string
  readonly format: SnapshotFormat
  readonly bytes: Uint8Array
  readonly sha256: string
  readonly count: number
  readonly dimensions: number
}

/**
 * Why the infrastructure failed.
 *
 * @since 0.1.0
 * @category errors
 */
export type Reason = "NotFound" | "Unavailable" | "Timeout" | "Corrupt" | "InvalidInput" | "Unexpected"

/**
 * The store could not do its job (I/O error, Qdrant down or timing out, unknown collection, corrupt snapshot).
 *
 * @since 0.1.0
 * @category errors
 */
export class VectorStoreError extends Data.TaggedError("VectorStoreError")<{
  readonly reason: Reason
  readonly message: string
  readonly cause?: unknown
}> {}

/**
 * A vector's size does not match its collection's: raised by `ensureCollection` when the collection exists with
 * another size (a configuration error to report at startup) and by `upsert`/`search` for a wrong-size vector.
 *
 * @since 0.1.0
 * @category errors
 */
export class DimensionMismatch extends Schema.TaggedError<DimensionMismatch>()(
  "DimensionMismatch",
  { collection: Schema.String, expected: Schema.Number, actual: Schema.Number, detail: Schema.String },
  { httpApiStatus: 422, description: "The vector size does not match the collection" }
) {
  /**
   * The explanation (`detail`, which names the collection and both sizes). Effect 4 gives a `Schema.TaggedError`
   * without a `message` field an empty message: logs, `Cause.pretty` and startup failures would say nothing.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return this.detail
  }

  /**
   * @since 0.1.0
   */
  static of(collection: string, expected: number, actual: number, context = "a vector"): DimensionMismatch {
    return new DimensionMismatch({
      collection,
      expected,
      actual,
      detail: `Collection "${collection}" holds vectors of ${expected} dimensions but ${context} has ${actual}` +
        (context === "the embedder" ?
          ": the embedding model changed; drop and rebuild the collection, or configure a model of that size" :
          "")
    })
  }
}

/**
 * Every error of the VectorStore service.
 *
 * @since 0.1.0
 * @category errors
 */
export type VectorStoreErrors = VectorStoreError | DimensionMismatch | InvalidFilter

/**
 * The VectorStore service.
 *
 * @since 0.1.0
 * @category tags
 */
export class VectorStore extends Context.Service<VectorStore, {
  /** Creates the collection if missing; fails with `DimensionMismatch` when it exists with another size. */
  readonly ensureCollection: (
    spec: CollectionSpec
  ) => Effect.Effect<CollectionInfo, DimensionMismatch | VectorStoreError>
  /** The collection's description, or none when it does not exist. */
  readonly collectionInfo: (name: string) => Effect.Effect<Option.Option<CollectionInfo>, VectorStoreError>
  /** Every collection. */
  readonly listCollections: Effect.Effect<ReadonlyArray<CollectionInfo>, VectorStoreError>
  /** Inserts or replaces the tenant's points (by id). Durable when it succeeds. */
  readonly upsert: (
    collection: string,
    tenantId: TenantId,
    points: ReadonlyArray<Point>
  ) => Effect.Effect<void, DimensionMismatch | VectorStoreError>
  /** Deletes the tenant's points selected by id or filter. */
  readonly delete: (
    collection: string,
    tenantId: TenantId,
    selector: Selector
  ) => Effect.Effect<void, InvalidFilter | VectorStoreError>
  /** The tenant's nearest points, best first. */
  readonly search: (
    collection: string,
    tenantId: TenantId,
    request: SearchRequest
  ) => Effect.Effect<ReadonlyArray<ScoredPoint>, DimensionMismatch | InvalidFilter | VectorStoreError>
  /** How many points the tenant has (every tenant's when `tenantId` is undefined), optionally matching a filter. */
  readonly count: (
    collection: string,
    tenantId: TenantId | undefined,
    filter?: Filter
  ) => Effect.Effect<number, InvalidFilter | VectorStoreError>
  /** A consistent copy of the whole collection as bytes with their SHA-256. */
  readonly snapshot: (collection: string) => Effect.Effect<Snapshot, VectorStoreError>
  /** Replaces (or creates) the collection with the content of snapshot bytes of this store's format. */
  readonly restore: (collection: string, bytes: Uint8Array) => Effect.Effect<CollectionInfo, VectorStoreError>
  /** Deletes the collection and its points; does nothing when it does not exist. */
  readonly drop: (collection: string) => Effect.Effect<void, VectorStoreError>
}>()("@ouroboros/vector-store/VectorStore") {}

const namePattern = /^[A-Za-z0-9_-]{1,128}$/

/**
 * A collection name: 1 to 128 of letters, digits, `_` and `-` (safe as a directory and a Qdrant collection name).
 *
 * @since 0.1.0
 * @category schemas
 */
export const CollectionName = Schema.String.check(
  Schema.isPattern(namePattern, { message: "a collection name is 1 to 128 of A-Z, a-z, 0-9, '_' and '-'" })
).annotate({ identifier: "CollectionName" })

/**
 * Checks a collection name.
 *
 * @since 0.1.0
 * @category validation
 */
export const validateName = (name: string): Effect.Effect<string, VectorStoreError> =>
  namePattern.test(name)
    ? Effect.succeed(name)
    : Effect.fail(
      new VectorStoreError({
        reason: "InvalidInput",
        message: `Invalid collection name ${JSON.stringify(name)}: use 1 to 128 of A-Z, a-z, 0-9, '_' and '-'`
      })
    )

/**
 * Checks a vector's size and values, and returns it L2-normalised as a Float32Array.
 *
 * @since 0.1.0
 * @category utils
 */
export const normalize = (
  collection: string,
  dimensions: number,
  vector: ReadonlyArray<number> | Float32Array,
  context?: string
): Effect.Effect<Float32Array, DimensionMismatch | VectorStoreError> => {
  if (vector.length !== dimensions) {
    return Effect.fail(DimensionMismatch.of(collection, dimensions, vector.length, context))
  }
  const out = new Float32Array(dimensions)
  let sum = 0
  for (let i = 0; i < dimensions; i++) {
    const value = vector[i]!
    if (!Number.isFinite(value)) {
      return Effect.fail(
        new VectorStoreError({ reason: "InvalidInput", message: `A vector of "${collection}" has a non-finite value` })
      )
    }
    out[i] = value
    sum += value * value
  }
  if (sum > 0) {
    const scale = 1 / Math.sqrt(sum)
    for (let i = 0; i < dimensions; i++) out[i] = out[i]! * scale
  }
  return Effect.succeed(out)
}

/**
 * Builds a snapshot record, hashing its bytes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeSnapshot = (options: Omit<Snapshot, "sha256">): Snapshot => ({
  ...options,
  sha256: createHash("sha256").update(options.bytes).digest("hex")
})

/**
 * Ensures the collection and reports a clear startup error when it was built for another vector size.
 *
 * @since 0.1.0
 * @category accessors
 * @example
 * import { VectorStore } from "@ouroboros/vector-store"
 * const ensure = VectorStore.ensureCollection({ name: "chunks", dimensions: 384, embedder: "hash-384" })
 */
export const ensureCollection = (
  spec: CollectionSpec
): Effect.Effect<CollectionInfo, DimensionMismatch | VectorStoreError, VectorStore> =>
  VectorStore.use((store) => store.ensureCollection(spec))
