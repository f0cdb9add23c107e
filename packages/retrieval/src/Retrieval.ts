/**
 * The retrieval pipeline: documents are events in the event store; their chunks' vectors are a projection in the
 * vector store, kept by one projector fiber that applies events in sequence order and records its checkpoint.
 *
 * A request embeds (so a failing embedder fails with `ModelUnavailable` before anything is recorded), appends the
 * event, hands the vectors to the projector and waits until the projection has applied it (read-your-writes). After
 * a crash the projector catches up from its checkpoint and re-embeds what it did not apply, so nothing is lost; a
 * rebuild drops the collections and replays every event.
 *
 * With several replicas on one database, one projects at a time: the projector runs while its replica holds the
 * `ProjectorLease` (a PostgreSQL advisory lock), and the checkpoint is global, so the replica that takes the lease over
 * continues where the last holder stopped. The others follow the checkpoint in the database (their writes wait for
 * it, their `status` reports it). The checkpoint's epoch fences a holder: taking the lease over, a restore and a
 * rebuild bump it, after which the previous holder's progress is refused and it resets rather than resumes. A reset
 * to sequence 0 drops the collections first, so vectors of events that no longer exist do not survive it. Startup
 * does not wait for the catch-up: `lag` tells how far behind the projection is.
 *
 * Each tenant's vectors are isolated: one shared collection partitioned by tenant, and a collection of its own for a
 * tenant that asks for it (`dedicatedTenants`). Calls to the models and the vector store run through their guards
 * (`Resilient`); failures are domain errors (`RetrievalError`), never HTTP ones.
 *
 * @since 0.1.0
 */
import { Checkpoints, EventStore } from "@ouroboros/event-store"
import { type Principal, TenantId } from "@ouroboros/kernel"
import { Chunker, Embedder, Llm, type LlmError, Prompts } from "@ouroboros/llm"
import { Filter, VectorStore } from "@ouroboros/vector-store"
import {
  type Cause,
  Context,
  Data,
  Deferred,
  Duration,
  Effect,
  Layer,
  Option,
  Ref,
  Schema,
  Semaphore,
  Stream,
  SubscriptionRef
} from "effect"
import { createHash, randomUUID } from "node:crypto"
import * as ProjectorLease from "./ProjectorLease.js"
import * as Resilient from "./Resilient.js"
import {
  DocumentConflict,
  DocumentNotFound,
  EmptyDocument,
  IncompatibleCollection,
  InvalidCursor,
  type ModelUnavailable,
  ProjectionBehind,
  VectorStoreUnavailable
} from "./RetrievalError.js"

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * A document id: 1 to 100 (the router matches path parameters of up to 100 characters) of `[A-Za-z0-9._:-]`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const DocumentId = Schema.String.check(
  Schema.isPattern(/^[A-Za-z0-9._:-]{1,100}$/, { message: "a document id is 1 to 100 of A-Z a-z 0-9 . _ : -" })
).annotate({ identifier: "DocumentId" })

const Scalar = Schema.Union([Schema.String, Schema.Finite, Schema.Boolean])

/**
 * Metadata: a JSON object of scalars and arrays of scalars, searchable with a filter.
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
 * @category models
 */
export type Metadata = typeof Metadata.Type

/**
 * A document as the event store knows it: its text and metadata, how many chunks it was cut into, the version of
 * its stream and the embedder that indexed it.
 *
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
 * A chunk that a search found, best first.
 *
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
 * An answer: the text, the chunks it was drawn from, the model that wrote it, and whether that was the local
 * extractive answerer standing in (`degraded`).
 *
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

/**
 * How far the vector projection has applied the event store.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ProjectionStatus = Schema.Struct({
  appliedSequence: Schema.Int,
  lastSequence: Schema.Int
}).annotate({ identifier: "ProjectionStatus" })

/**
 * @since 0.1.0
 * @category models
 */
export type ProjectionStatus = typeof ProjectionStatus.Type

// -----------------------------------------------------------------------------
// events
// -----------------------------------------------------------------------------

/**
 * The events of a document stream (`tenant/<tenant>/document/<id>`).
 *
 * @since 0.1.0
 * @category events
 */
export const DocumentIngested = Schema.Struct({
  documentId: Schema.String,
  text: Schema.String,
  metadata: Metadata,
  contentHash: Schema.String,
  chunks: Schema.Int,
  embedder: Schema.String
})

/**
 * @since 0.1.0
 * @category events
 */
export const DocumentDeleted = Schema.Struct({ documentId: Schema.String })

/**
 * The stream of a tenant's document.
 *
 * @since 0.1.0
 * @category utils
 */
export const streamOf = (tenant: TenantId.TenantId, id: string): string => `tenant/${tenant}/document/${id}`

/**
 * The name of the projection's checkpoint: setting it to 0 makes the next start rebuild the vectors.
 *
 * @since 0.1.0
 * @category constants
 */
export const checkpointName = "vector-projection"

// -----------------------------------------------------------------------------
// service
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The shared collection, partitioned by tenant. Default `documents`. */
  readonly collection?: string | undefined
  /**
   * Tenants whose vectors live in a collection of their own (`<collection>_<tenant>`), known at startup: their
   * collections are checked (and rebuilt when missing) before the service starts.
   */
  readonly dedicatedTenants?: ReadonlySet<string> | undefined
  /**
   * Whether a tenant has a collection of its own, asked when a tenant's vectors are written or searched (e.g. from
   * the tenant's record); default: membership of `dedicatedTenants`. A collection is created the first time it is
   * used. When a tenant's answer changes, {@link Retrieval.reindexTenant} moves its vectors.
   */
  readonly isDedicated?: ((tenant: TenantId.TenantId) => Effect.Effect<boolean>) | undefined
  readonly chunking?: Chunker.Options | undefined
  /** How long a write waits for the projection to apply it before failing with `ProjectionBehind`. Default 30 s. */
  readonly applyTimeout?: Duration.Input | undefined
  /**
   * How often the projector looks for events appended elsewhere (another replica, a restore), and checks its
   * checkpoint's epoch. Default 1 s.
   */
  readonly pollInterval?: Duration.Input | undefined
  /** How often a replica without the lease reads the global checkpoint while a write waits for it. Default 100 ms. */
  readonly followInterval?: Duration.Input | undefined
}

/**
 * What to ingest. Ingesting the same text and metadata under the same id again changes nothing.
 *
 * @since 0.1.0
 * @category models
 */
export interface IngestRequest {
  /** Default: a new UUID. */
  readonly id?: string | undefined
  readonly text: string
  readonly metadata?: Metadata | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface SearchRequest {
  readonly query: string
  /** Default {@link defaultSearchLimit}. */
  readonly limit?: number | undefined
  /** Over metadata keys (`Filter.decodeUnknown` decodes one from untrusted input). */
  readonly filter?: Filter.Filter | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface AskRequest {
  readonly question: string
  /** Passages to retrieve. Default {@link defaultTopK}. */
  readonly topK?: number | undefined
  /** Retrieve passages first (default true). */
  readonly useRag?: boolean | undefined
  /** The language model, when not the default one. */
  readonly model?: string | undefined
  /**
   * Answer with the local extractive model even when a language model is configured (an operator switched the
   * remote model off): the answer is `degraded`.
   */
  readonly local?: boolean | undefined
}

/**
 * What an answer cost: the characters embedded for the retrieval, and the language model's tokens (prompt and
 * completion) as the model server counted them, or estimated (about four characters a token) for a local model.
 *
 * @since 0.1.0
 * @category models
 */
export interface Usage {
  readonly embeddedCharacters: number
  readonly llmTokens: number
  /** Whether `llmTokens` is an estimate (the model did not count). */
  readonly estimated: boolean
}

/**
 * An answer and its cost.
 *
 * @since 0.1.0
 * @category models
 */
export interface Answered {
  readonly response: AskResponse
  readonly usage: Usage
}

/**
 * A page of a tenant's documents: in the order of their ids, and the cursor of the next page when there may be one.
 *
 * @since 0.1.0
 * @category models
 */
export interface DocumentPage {
  readonly documents: ReadonlyArray<Document>
  /** Opaque; give it back as `cursor` for the next page. None on the last page. */
  readonly nextCursor: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ListRequest {
  /** A `nextCursor` of an earlier page; none for the first page. */
  readonly cursor?: string | undefined
  /** Documents per page (default {@link defaultPageSize}, at most {@link maxPageSize}). */
  readonly limit?: number | undefined
}

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultPageSize = 20

/**
 * @since 0.1.0
 * @category constants
 */
export const maxPageSize = 100

/**
 * An estimate of a text's tokens for a model that does not count them: about four characters a token.
 *
 * @since 0.1.0
 * @category utils
 */
export const estimateTokens = (characters: number): number => Math.ceil(characters / 4)

const CursorJson = Schema.fromJsonString(Schema.Struct({ v: Schema.Literal(1), after: DocumentId }))
const decodeCursorJson = Schema.decodeUnknownOption(CursorJson)
const encodeCursorJson = Schema.encodeSync(CursorJson)

/**
 * The opaque cursor of a page that ends with document `after`: a base64url token that only this service reads.
 *
 * @since 0.1.0
 * @category utils
 */
export const encodeCursor = (after: string): string =>
  Buffer.from(encodeCursorJson({ v: 1, after }), "utf8").toString("base64url")

/**
 * The document a cursor continues after, or `InvalidCursor`.
 *
 * @since 0.1.0
 * @category utils
 */
export const decodeCursor = (cursor: string): Effect.Effect<string, InvalidCursor> => {
  const text = /^[A-Za-z0-9_-]{1,400}$/.test(cursor) ? Buffer.from(cursor, "base64url").toString("utf8") : ""
  return Option.match(decodeCursorJson(text), {
    onNone: () => Effect.fail(new InvalidCursor({ cursor })),
    onSome: (decoded) => Effect.succeed(decoded.after)
  })
}

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultSearchLimit = 10

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultTopK = 4

/**
 * The retrieval service: every method acts in the principal's tenant.
 *
 * @since 0.1.0
 * @category services
 */
export class Retrieval extends Context.Service<Retrieval, {
  /** Chunks, embeds, records `DocumentIngested` and waits until the vectors are searchable. */
  readonly ingest: (
    principal: Principal.Principal,
    request: IngestRequest
  ) => Effect.Effect<Document, DocumentConflict | EmptyDocument | ModelUnavailable | ProjectionBehind>
  readonly get: (principal: Principal.Principal, id: string) => Effect.Effect<Document, DocumentNotFound>
  /** Records `DocumentDeleted` and waits until its vectors are gone. */
  readonly remove: (
    principal: Principal.Principal,
    id: string
  ) => Effect.Effect<void, DocumentNotFound | DocumentConflict | ProjectionBehind>
  readonly search: (
    principal: Principal.Principal,
    request: SearchRequest
  ) => Effect.Effect<ReadonlyArray<Hit>, Filter.InvalidFilter | ModelUnavailable | VectorStoreUnavailable>
  /**
   * Retrieves, then answers with the language model. It does not fail: without a retriever (the embedding model or
   * the vector store is down) or a language model, the local extractive answerer stands in (`degraded`).
   */
  readonly ask: (principal: Principal.Principal, request: AskRequest) => Effect.Effect<AskResponse>
  /** `ask`, with what the answer cost (for metering and quotas). */
  readonly answer: (principal: Principal.Principal, request: AskRequest) => Effect.Effect<Answered>
  /**
   * A page of the tenant's documents in the order of their ids (keyset pagination: a document that exists from the
   * first page to the last is listed once, whatever is ingested or deleted in between).
   */
  readonly list: (principal: Principal.Principal, request: ListRequest) => Effect.Effect<DocumentPage, InvalidCursor>
  /**
   * Erases a tenant: every event of it (documents and pipelines) and every vector, in the shared collection and its
   * own. The vectors go once the projector (on whichever replica holds the lease) can no longer write vectors of
   * events it read before the deletion: a new epoch fences it, and it takes the projection over again first.
   */
  readonly purgeTenant: (
    tenant: TenantId.TenantId
  ) => Effect.Effect<{ readonly events: number }, VectorStoreUnavailable>
  /**
   * Moves a tenant's vectors to the collection it now belongs in (its `isDedicated` answer changed): its points are
   * deleted from both collections and its documents re-indexed from the events, between two batches of the projector.
   */
  readonly reindexTenant: (
    tenant: TenantId.TenantId
  ) => Effect.Effect<{ readonly documents: number }, ModelUnavailable | VectorStoreUnavailable | IncompatibleCollection>
  /**
   * Drops the vectors and replays every event into fresh collections. Any replica may ask: the checkpoint is reset
   * to 0 (a new epoch), the lease holder drops the collections and replays, and this waits until it has caught up.
   */
  readonly rebuild: Effect.Effect<{ readonly events: number }, VectorStoreUnavailable | ProjectionBehind>
  /**
   * Restarts the projection from `checkpoint`: the vectors already hold the effect of every event up to it (they
   * were restored from snapshots taken at it). Records it as the global checkpoint in a new epoch, so the lease
   * holder, wherever it runs, drops what it holds in memory and continues from there (0: from nothing, the
   * collections dropped).
   */
  readonly resume: (checkpoint: number) => Effect.Effect<void>
  /** The sequence of the last event the projection applied (the global checkpoint, on a replica without the lease). */
  readonly applied: Effect.Effect<number>
  /** The projection's position against the event store's. */
  readonly status: Effect.Effect<ProjectionStatus>
  /** How many events the projection is behind the event store (0 when it is caught up): for readiness. */
  readonly lag: Effect.Effect<number>
  /** Whether this replica runs the projector (holds the `ProjectorLease`). */
  readonly projecting: Effect.Effect<boolean>
}>()("@ouroboros/retrieval/Retrieval") {}

// A reset or a takeover moved the checkpoint's epoch: the projector's progress is refused until it resets.
class Superseded extends Data.TaggedError("Superseded")<{}> {}

const decodeIngested = Schema.decodeUnknownEffect(DocumentIngested)
const decodeIngestedSync = Schema.decodeUnknownSync(DocumentIngested)
const decodeDeleted = Schema.decodeUnknownEffect(DocumentDeleted)

const pointId = (tenant: string, documentId: string, chunk: number): string => {
  const hex = createHash("sha256").update(`${tenant}\u0000${documentId}\u0000${chunk}`).digest("hex")
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`
}

const hashContent = (text: string, metadata: Metadata) =>
  createHash("sha256").update(text).update("\u0000").update(JSON.stringify(metadata)).digest("hex")

interface DocumentState {
  readonly document: Document | undefined
  readonly version: number
}

// A document from its stream: the state after its last event (a deleted document is none).
const fold = (id: string, recorded: ReadonlyArray<EventStore.RecordedEvent>): DocumentState => {
  let document: Document | undefined
  let version = -1
  for (const event of recorded) {
    version = event.version
    if (event.type === "DocumentIngested") {
      const data = decodeIngestedSync(event.data)
      document = {
        id,
        text: data.text,
        metadata: data.metadata,
        chunks: data.chunks,
        version: event.version,
        contentHash: data.contentHash,
        embedder: data.embedder,
        createdAt: document?.createdAt ?? event.recordedAt.toISOString(),
        updatedAt: event.recordedAt.toISOString()
      }
    } else if (event.type === "DocumentDeleted") {
      document = undefined
    }
  }
  return { document, version }
}

// Metadata filters name metadata keys; in the store they live under `metadata.`.
const scopeFilter = (filter: Filter.Filter): Filter.Filter => {
  const condition = (c: Filter.Condition): Filter.Condition =>
    "key" in c ? { ...c, key: `metadata.${c.key}` } : scopeFilter(c as Filter.Filter)
  return {
    ...(filter.must ? { must: filter.must.map(condition) } : {}),
    ...(filter.should ? { should: filter.should.map(condition) } : {}),
    ...(filter.must_not ? { must_not: filter.must_not.map(condition) } : {})
  }
}

/**
 * Builds the service: checks that the collections fit the embedder (else `IncompatibleCollection`), catches the
 * projection up from its checkpoint (rebuilding a collection that is missing), and forks the projector into the
 * scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}) =>
  Effect.gen(function*() {
    const events = yield* EventStore.EventStore
    const checkpoints = yield* Checkpoints.Checkpoints
    const vectors = yield* VectorStore.VectorStore
    const embedder = yield* Embedder.Embedder
    const llm = yield* Llm.Llm
    const modelGuard = yield* Resilient.ModelGuard
    const vectorGuard = yield* Resilient.VectorStoreGuard
    const localLlm = Llm.makeLocal()
    const remoteLlm = llm.id !== Llm.localModel
    const collection = options.collection ?? "documents"
    const dedicatedTenants = options.dedicatedTenants ?? new Set<string>()
    const isDedicated = options.isDedicated ??
      ((tenant: TenantId.TenantId) => Effect.succeed(dedicatedTenants.has(tenant)))
    const applyTimeout = options.applyTimeout ?? Duration.seconds(30)
    const pollInterval = options.pollInterval ?? Duration.seconds(1)
    const followInterval = options.followInterval ?? Duration.millis(100)
    // Without a lease in the context this is the only process: it always projects.
    const lease = Option.getOrElse(
      yield* Effect.serviceOption(ProjectorLease.ProjectorLease),
      () => ProjectorLease.local
    )

    // Every vector store failure but a bad filter means the store is unavailable (a vector of the wrong size too: the
    // store no longer holds what this embedder made).
    type VectorError<E> = VectorStoreUnavailable | Extract<E, Filter.InvalidFilter>
    const vectorCall = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, VectorError<E>> =>
      Effect.catch(vectorGuard.run(effect), (error): Effect.Effect<never, VectorError<E>> =>
        error instanceof Filter.InvalidFilter
          ? Effect.fail(error as Extract<E, Filter.InvalidFilter>)
          : Resilient.vectorStoreUnavailable(vectorGuard, error))
    // A dependency that fails is worth a warning; a caller's bad filter is not.
    const warn = <A, E extends { readonly _tag: string; readonly message: string }, R>(
      effect: Effect.Effect<A, E, R>
    ) =>
      Effect.tapError(effect, (error) =>
        error._tag === "InvalidFilter"
          ? Effect.void
          : Effect.logWarning(error.message).pipe(Effect.annotateLogs({ service: "retrieval" })))

    const dedicatedName = (tenant: string) =>
      `${collection}_${tenant}`
    const isOurs = (name: string) =>
      name === collection || name.startsWith(`${collection}_`)
    const ensure = (name: string) =>
      vectorGuard.run(vectors.ensureCollection({ name, dimensions: embedder.dimensions, embedder: embedder.id })).pipe(
        Effect.catch((error): Effect.Effect<never, IncompatibleCollection | VectorStoreUnavailable> =>
          error instanceof VectorStore.DimensionMismatch
            ? Effect.fail(new IncompatibleCollection({ collection: name, reason: error.detail }))
            : Resilient.vectorStoreUnavailable(vectorGuard, error)
        ),
        Effect.flatMap((info) =>
          info.embedder === undefined || info.embedder === embedder.id
            ? Effect.succeed(info)
            : Effect.fail(
              new IncompatibleCollection({
                collection: name,
                reason: `the vector collection ${name} was built with the embedder ${info.embedder}, but ` +
                  `${embedder.id} is configured, and their vectors are not comparable: configure the same embedder, ` +
                  "or delete the collection so that it is rebuilt from the events at startup"
              })
            )
        )
      )
    // Collections known to exist and fit the embedder: a dedicated one is created the first time it is needed.
    const ensured = new Set<string>()
    const ensureOnce = (name: string): Effect.Effect<void, IncompatibleCollection | VectorStoreUnavailable> =>
      ensured.has(name)
        ? Effect.void
        : Effect.asVoid(Effect.tap(ensure(name), () => Effect.sync(() => ensured.add(name))))
    const collectionOf = (tenant: TenantId.TenantId) =>
      Effect.flatMap(isDedicated(tenant), (dedicated) => {
        if (!dedicated) return Effect.succeed(collection)
        const name = dedicatedName(tenant)
        return Effect.as(ensureOnce(name), name)
      })

    const collections = [collection, ...[...dedicatedTenants].map(dedicatedName)]
    // A collection that does not exist yet (new, or deleted by an operator) is rebuilt from the events.
    let missing = false
    for (const name of collections) {
      if (Option.isNone(yield* vectorCall(vectors.collectionInfo(name)))) missing = true
      yield* ensureOnce(name)
    }
    // A new epoch at 0: the projector drops the collections and replays every event.
    if (missing) yield* checkpoints.set(checkpointName, 0)

    // Only the embedder that built the collections can embed for them (checked above), so there is no stand-in: a
    // failing embedder is a `ModelUnavailable` with the breaker's remaining break.
    const embed = (texts: ReadonlyArray<string>, purpose: Embedder.Purpose) =>
      warn(Resilient.callModel(modelGuard, embedder.id, "embedding", embedder.embed(texts, { purpose })))

    // --- projection ---------------------------------------------------------------------------------------------
    // The vectors an ingest on this replica embedded, for the projector to use rather than embed again: by stream,
    // version and content (known before the append, so the projector never misses them; a concurrent ingest of other
    // content for the same version cannot lend its vectors).
    const pending = new Map<string, ReadonlyArray<Float32Array>>()
    const pendingKey = (streamId: string, version: number, contentHash: string) =>
      `${streamId}\u0000${version}\u0000${contentHash}`
    // What this replica knows of the projection: its own progress while it holds the lease, else the global
    // checkpoint as last read.
    const applied = yield* SubscriptionRef.make(yield* checkpoints.get(checkpointName))
    // The epoch this replica projects in, and whether it holds the lease.
    const epoch = yield* SubscriptionRef.make(0)
    const holding = yield* Ref.make(false)
    const wake = yield* Deferred.make<void>().pipe(Effect.map((d) => ({ current: d })))
    // One writer of the vectors at a time in this process: the projector's catch-ups and resets, and an operator's
    // move or erasure of a tenant. Across replicas, the lease.
    const projector = yield* Semaphore.make(1)

    const byDocument = (documentId: string): VectorStore.Selector => ({
      filter: { must: [{ key: "document_id", match: { value: documentId } }] }
    })
    const everything: VectorStore.Selector = { filter: {} }

    const apply = (event: EventStore.RecordedEvent) =>
      Effect.gen(function*() {
        const tenant = event.tenantId
        if (tenant === undefined || tenant === null) return
        const tenantId = TenantId.make(tenant)
        const target = yield* collectionOf(tenantId)
        if (event.type === "DocumentIngested") {
          const data = yield* decodeIngested(event.data)
          const chunks = Chunker.chunk(data.text, options.chunking)
          const vectorsOf = pending.get(pendingKey(event.streamId, event.version, data.contentHash)) ??
            (yield* embed(chunks.map((c) => c.text), "document"))
          yield* vectorCall(vectors.delete(target, tenantId, byDocument(data.documentId)))
          yield* vectorCall(vectors.upsert(
            target,
            tenantId,
            chunks.map((chunk, i) => ({
              id: pointId(tenant, data.documentId, chunk.index),
              vector: vectorsOf[i]!,
              payload: { document_id: data.documentId, chunk: chunk.index, text: chunk.text, metadata: data.metadata }
            }))
          ))
        } else if (event.type === "DocumentDeleted") {
          const data = yield* decodeDeleted(event.data)
          yield* vectorCall(vectors.delete(target, tenantId, byDocument(data.documentId)))
        }
      })

    // Every collection of this service that exists, the shared one first.
    const existing = Effect.map(
      vectorCall(vectors.listCollections),
      (all) => all.map((c) => c.name).filter(isOurs).sort((a, b) => a === collection ? -1 : b === collection ? 1 : 0)
    )

    // Drops every collection of this service that holds points and creates the configured ones again, empty. Empty
    // ones stay (a first start has nothing to drop, and searches meanwhile find the collections).
    const clearCollections = Effect.gen(function*() {
      const filled = (yield* vectorCall(vectors.listCollections)).filter((c) => isOurs(c.name) && c.count > 0)
      // Also forgets collections that someone else dropped: they are created again when used.
      ensured.clear()
      for (const { name } of filled) yield* vectorCall(vectors.drop(name))
      for (const name of collections) {
        yield* ensureOnce(name).pipe(
          // A fresh collection fits the embedder: anything else is the store's trouble.
          Effect.catchTag(
            "IncompatibleCollection",
            (error) => Effect.fail(new VectorStoreUnavailable({ reason: error.message }))
          )
        )
      }
    })

    // Takes the projection over (a new epoch) from the global checkpoint. From 0 the collections are dropped first:
    // they may hold vectors of events that a restore or a rebuild removed.
    const reset = Effect.gen(function*() {
      const position = yield* checkpoints.claim(checkpointName)
      if (position.sequence === 0) yield* clearCollections
      yield* SubscriptionRef.set(epoch, position.epoch)
      yield* SubscriptionRef.set(applied, position.sequence)
      yield* Effect.logInfo("vector projection catching up").pipe(
        Effect.annotateLogs({ from: position.sequence, epoch: position.epoch })
      )
    }).pipe(Semaphore.withPermits(projector, 1))

    // Saves the projector's progress, only in its epoch.
    const advance = (sequence: number) =>
      Effect.flatMap(SubscriptionRef.get(epoch), (mine) =>
        Effect.flatMap(
          checkpoints.advance(checkpointName, sequence, mine),
          (saved) => saved ? SubscriptionRef.set(applied, sequence) : Effect.fail(new Superseded())
        ))

    const catchUp = Effect.gen(function*() {
      // A reset from outside (a restore, a rebuild asked elsewhere) or another holder shows as a new epoch.
      const position = yield* checkpoints.position(checkpointName)
      if (position.epoch !== (yield* SubscriptionRef.get(epoch))) return yield* new Superseded()
      const from = yield* SubscriptionRef.get(applied)
      // Read before the events: every event up to it is readable below, so none is skipped by advancing to it.
      const last = yield* events.lastSequence
      yield* events.readAll({ fromSequence: from + 1, batchSize: 256 }).pipe(
        Stream.filter((event) => event.streamId.includes("/document/")),
        Stream.runForEach((event) => Effect.andThen(apply(event), advance(event.sequence)))
      )
      // Events of other streams advance the checkpoint too, so waiting requests are released.
      if (last > (yield* SubscriptionRef.get(applied))) yield* advance(last)
    }).pipe(Semaphore.withPermits(projector, 1))

    const retryLater = (message: string) => (cause: Cause.Cause<unknown>) =>
      Effect.logWarning(message, cause).pipe(Effect.andThen(Effect.sleep(pollInterval)), Effect.as(false))

    // The projector while this replica holds the lease: take the projection over, then catch up at each wake-up or
    // poll. A new epoch means a reset from outside (take it over again) or another holder (this replica lost the
    // lease: end, and wait for it again).
    const project = Effect.gen(function*() {
      let current = false
      while (true) {
        if (!current) {
          current = yield* reset.pipe(Effect.as(true), Effect.catchCause(retryLater("vector projection reset failed")))
          continue
        }
        const caughtUp = yield* catchUp.pipe(
          Effect.as(true),
          Effect.catchTag("Superseded", () => Effect.succeed(false)),
          Effect.catchCause(retryLater("vector projection failed; it retries"))
        )
        if (!caughtUp && (yield* checkpoints.position(checkpointName)).epoch !== (yield* SubscriptionRef.get(epoch))) {
          if (!(yield* lease.held)) return
          current = false
          continue
        }
        const signal = wake.current
        yield* Effect.race(Deferred.await(signal), Effect.sleep(pollInterval))
        wake.current = yield* Deferred.make<void>()
      }
    }).pipe(
      (body) => Effect.andThen(Ref.set(holding, true), body),
      Effect.ensuring(Ref.set(holding, false))
    )

    // Startup does not wait for the catch-up (or for the lease): `lag` says how far behind the projection is.
    yield* lease.whileHeld(project).pipe(
      // Whatever happens (the database lost while reading the epoch, say), the projector waits and starts over.
      Effect.catchCause(retryLater("vector projection stopped; it starts over")),
      Effect.forever,
      Effect.annotateLogs({ service: "retrieval" }),
      Effect.forkScoped,
      Effect.interruptible
    )

    // The global checkpoint, on a replica that does not project.
    const refresh = Effect.gen(function*() {
      if (yield* Ref.get(holding)) return
      yield* SubscriptionRef.set(applied, yield* checkpoints.get(checkpointName))
    })

    // Waits (without a bound) until the projection has applied `sequence`.
    const reached = (sequence: number) =>
      Effect.gen(function*() {
        while (true) {
          yield* refresh
          if ((yield* SubscriptionRef.get(applied)) >= sequence) return
          yield* Effect.raceFirst(
            SubscriptionRef.changes(applied).pipe(Stream.takeUntil((n) => n >= sequence), Stream.runDrain),
            Effect.sleep(followInterval)
          )
        }
      })

    // Returns once no batch of events read before it began can write vectors any more, wherever the projector runs:
    // a new epoch refuses the holder's progress, so its batch ends at its next event, and the holder takes the
    // projection over again (another new epoch) before it reads on.
    const fence = Effect.gen(function*() {
      const fenced = (yield* checkpoints.claim(checkpointName)).epoch
      yield* Deferred.succeed(wake.current, undefined)
      while ((yield* checkpoints.position(checkpointName)).epoch === fenced) {
        yield* Effect.raceFirst(
          SubscriptionRef.changes(epoch).pipe(Stream.takeUntil((e) => e > fenced), Stream.runDrain),
          Effect.sleep(followInterval)
        )
      }
    })

    const awaitApplied = (sequence: number) =>
      Effect.andThen(Deferred.succeed(wake.current, undefined), reached(sequence)).pipe(
        Effect.timeoutOrElse({
          duration: applyTimeout,
          orElse: () =>
            Effect.flatMap(
              SubscriptionRef.get(applied),
              (current) => Effect.fail(new ProjectionBehind({ awaited: sequence, applied: current }))
            )
        })
      )

    // --- documents ----------------------------------------------------------------------------------------------
    // Every read and write of a tenant's streams runs in the tenant's scope: on SQL, under row-level security.
    const load = (tenant: TenantId.TenantId, id: string): Effect.Effect<DocumentState> =>
      Effect.map(events.readStream(streamOf(tenant, id)), (recorded) => fold(id, recorded)).pipe(
        EventStore.forTenant(tenant)
      )

    const conflict = (id: string) => (error: EventStore.WrongExpectedVersion) =>
      Effect.fail(new DocumentConflict({ id, reason: error.detail }))

    const ingest: Retrieval["Service"]["ingest"] = Effect.fn("Retrieval.ingest")(
      function*(principal, request) {
        const tenant = principal.tenantId
        const id = request.id ?? randomUUID()
        const metadata = request.metadata ?? {}
        const contentHash = hashContent(request.text, metadata)
        const current = yield* load(tenant, id)
        if (current.document !== undefined && current.document.contentHash === contentHash) {
          return current.document
        }
        const chunks = Chunker.chunk(request.text, options.chunking)
        if (chunks.length === 0) return yield* new EmptyDocument({ id })
        const embedded = yield* embed(chunks.map((c) => c.text), "document")
        const stream = streamOf(tenant, id)
        // For this replica's projector, if it is the one that applies the event; the ingest forgets them once it is
        // done, whatever happened.
        const key = pendingKey(stream, current.version + 1, contentHash)
        pending.set(key, embedded)
        const result = yield* events.append(stream, [{
          type: "DocumentIngested",
          data: {
            documentId: id,
            text: request.text,
            metadata,
            contentHash,
            chunks: chunks.length,
            embedder: embedder.id
          },
          metadata: { tenantId: tenant, subject: principal.subject }
        }], { expectedVersion: current.version < 0 ? "no-stream" : current.version }).pipe(
          EventStore.forTenant(tenant),
          Effect.catchTag("WrongExpectedVersion", conflict(id)),
          Effect.tap((result) => awaitApplied(result.lastSequence)),
          Effect.ensuring(Effect.sync(() => {
            if (pending.get(key) === embedded) pending.delete(key)
          }))
        )
        const now = new Date().toISOString()
        return {
          id,
          text: request.text,
          metadata,
          chunks: chunks.length,
          version: result.version,
          contentHash,
          embedder: embedder.id,
          createdAt: current.document?.createdAt ?? now,
          updatedAt: now
        }
      },
      Effect.annotateLogs({ service: "retrieval" })
    )

    const get: Retrieval["Service"]["get"] = (principal, id) =>
      Effect.flatMap(load(principal.tenantId, id), ({ document }) =>
        document === undefined
          ? Effect.fail(new DocumentNotFound({ id }))
          : Effect.succeed(document))

    const remove: Retrieval["Service"]["remove"] = Effect.fn("Retrieval.remove")(function*(principal, id) {
      const current = yield* load(principal.tenantId, id)
      if (current.document === undefined) return yield* new DocumentNotFound({ id })
      const result = yield* events.append(streamOf(principal.tenantId, id), [{
        type: "DocumentDeleted",
        data: { documentId: id },
        metadata: { tenantId: principal.tenantId, subject: principal.subject }
      }], { expectedVersion: current.version }).pipe(
        EventStore.forTenant(principal.tenantId),
        Effect.catchTag("WrongExpectedVersion", conflict(id))
      )
      yield* awaitApplied(result.lastSequence)
    })

    const list: Retrieval["Service"]["list"] = Effect.fn("Retrieval.list")(function*(principal, request) {
      const tenant = principal.tenantId
      const limit = Math.max(1, Math.min(maxPageSize, Math.trunc(request.limit ?? defaultPageSize)))
      const after = request.cursor === undefined ? undefined : yield* decodeCursor(request.cursor)
      const prefix = streamOf(tenant, "")
      // One more than the page: whether a next page exists is known without an empty last page.
      const streams = yield* events.listStreams({
        prefix,
        after: after === undefined ? undefined : streamOf(tenant, after),
        limit: limit + 1,
        skipWhenLast: ["DocumentDeleted"]
      }).pipe(EventStore.forTenant(tenant))
      const documents: Array<Document> = []
      for (const recorded of streams.slice(0, limit)) {
        const { document } = fold(recorded[0]!.streamId.slice(prefix.length), recorded)
        if (document !== undefined) documents.push(document)
      }
      const lastStream = streams[Math.min(limit, streams.length) - 1]
      return {
        documents,
        nextCursor: streams.length > limit && lastStream !== undefined
          ? encodeCursor(lastStream[0]!.streamId.slice(prefix.length))
          : undefined
      }
    })

    const searchHits = (
      tenant: TenantId.TenantId,
      query: string,
      limit: number,
      filter: Filter.Filter | undefined
    ) =>
      Effect.gen(function*() {
        const [vector] = yield* embed([query], "query")
        const target = yield* warn(
          collectionOf(tenant).pipe(
            // A dedicated collection that cannot be created is the store's trouble.
            Effect.catchTag(
              "IncompatibleCollection",
              (error) => Effect.fail(new VectorStoreUnavailable({ reason: error.message }))
            )
          )
        )
        const points = yield* warn(vectorCall(vectors.search(target, tenant, {
          vector: vector!,
          limit,
          ...(filter !== undefined ? { filter: scopeFilter(filter) } : {})
        })))
        return points.map((point): Hit => ({
          documentId: String(point.payload.document_id),
          chunk: Number(point.payload.chunk),
          text: String(point.payload.text ?? ""),
          score: point.score,
          metadata: (point.payload.metadata ?? {}) as Metadata
        }))
      })

    const search: Retrieval["Service"]["search"] = Effect.fn("Retrieval.search")(
      function*(principal, request) {
        return yield* searchHits(principal.tenantId, request.query, request.limit ?? defaultSearchLimit, request.filter)
      }
    )

    // The language model's answer with the tokens it counted (Ollama reports them), or the local answerer's with an
    // estimate.
    const generate = (
      question: string,
      passages: ReadonlyArray<Prompts.Passage>,
      generation: Llm.GenerateOptions | undefined
    ): Effect.Effect<{ readonly answer: Llm.Answer; readonly tokens: number | undefined }, LlmError.LlmError> =>
      passages.length === 0
        ? Effect.map(llm.answer(question, passages, generation), (answer) => ({ answer, tokens: 0 }))
        : Effect.map(llm.chat(Llm.toRequest(Prompts.answer(question, passages), generation)), (reply) => ({
          answer: {
            answer: reply.content,
            degraded: reply.degraded,
            model: reply.model,
            citations: Llm.citedPassages(reply.content, passages)
          },
          tokens: reply.usage === undefined ? undefined : reply.usage.promptTokens + reply.usage.completionTokens
        }))

    const answer: Retrieval["Service"]["answer"] = Effect.fn("Retrieval.ask")(function*(principal, request) {
      const useRag = request.useRag ?? true
      // Without a retriever (the embedding model or the vector store is down) the answer degrades, it does not fail.
      const retrieved = useRag
        ? yield* searchHits(principal.tenantId, request.question, request.topK ?? defaultTopK, undefined).pipe(
          Effect.map((hits) => ({ hits, ok: true })),
          Effect.catchTags({
            InvalidFilter: Effect.die,
            ModelUnavailable: () => Effect.succeed({ hits: [] as ReadonlyArray<Hit>, ok: false }),
            VectorStoreUnavailable: () => Effect.succeed({ hits: [] as ReadonlyArray<Hit>, ok: false })
          })
        )
        : { hits: [] as ReadonlyArray<Hit>, ok: true }
      const sources = retrieved.hits
      const passages = sources.map((hit) => ({
        id: `${hit.documentId}#${hit.chunk}`,
        documentId: hit.documentId,
        text: hit.text,
        score: hit.score
      }))
      const generation = request.model !== undefined ? { model: request.model } : undefined
      const local = Effect.map(localLlm.answer(request.question, passages), (answer) => ({
        answer,
        tokens: undefined as number | undefined
      }))
      const generated: Effect.Effect<
        { readonly answer: Llm.Answer; readonly tokens: number | undefined },
        ModelUnavailable | LlmError.LlmError
      > = retrieved.ok && request.local !== true
        ? remoteLlm
          ? Resilient.callModel(modelGuard, llm.id, "generation", generate(request.question, passages, generation))
          : Effect.map(llm.answer(request.question, passages, generation), (answer) => ({ answer, tokens: undefined }))
        : local
      const { answer: reply, tokens } = yield* generated.pipe(
        Effect.catch((error) =>
          Effect.logWarning("the language model failed; answering extractively").pipe(
            Effect.annotateLogs({ service: "retrieval", error: error.message }),
            Effect.andThen(local),
            Effect.orDie
          )
        )
      )
      const promptCharacters = request.question.length + passages.reduce((n, p) => n + p.text.length, 0)
      return {
        response: { answer: reply.answer, sources, degraded: reply.degraded, model: reply.model },
        usage: {
          embeddedCharacters: useRag ? request.question.length : 0,
          llmTokens: tokens ?? estimateTokens(promptCharacters + reply.answer.length),
          estimated: tokens === undefined
        }
      }
    })

    const ask: Retrieval["Service"]["ask"] = (principal, request) =>
      Effect.map(answer(principal, request), (answered) => answered.response)

    const rebuild: Retrieval["Service"]["rebuild"] = Effect.gen(function*() {
      // A new epoch at 0: the holder, here or on another replica, drops the collections and replays every event.
      yield* checkpoints.set(checkpointName, 0)
      yield* SubscriptionRef.set(applied, 0)
      const last = yield* events.lastSequence
      yield* awaitApplied(last)
      return { events: last }
    }).pipe(warn)

    const resume: Retrieval["Service"]["resume"] = Effect.fn("Retrieval.resume")(function*(checkpoint) {
      yield* checkpoints.set(checkpointName, checkpoint)
      yield* SubscriptionRef.set(applied, checkpoint)
      yield* Deferred.succeed(wake.current, undefined)
    })

    // A tenant's points, wherever they are: the shared collection and its own.
    const dropTenantVectors = (tenant: TenantId.TenantId): Effect.Effect<void, VectorStoreUnavailable> =>
      Effect.gen(function*() {
        const names = yield* existing
        if (names.includes(collection)) yield* vectorCall(vectors.delete(collection, tenant, everything))
        const own = dedicatedName(tenant)
        if (names.includes(own)) {
          yield* vectorCall(vectors.drop(own))
          ensured.delete(own)
        }
      }).pipe(Effect.catchTag("InvalidFilter", Effect.die))

    const purgeTenant: Retrieval["Service"]["purgeTenant"] = Effect.fn("Retrieval.purgeTenant")(function*(tenant) {
      const deleted = yield* events.deleteTenant(tenant)
      // No batch that read the tenant's events before they were deleted (here or on the replica that holds the
      // lease) writes vectors after they are dropped.
      yield* fence
      yield* dropTenantVectors(tenant).pipe(Semaphore.withPermits(projector, 1))
      return { events: deleted }
    }, warn)

    const reindexTenant: Retrieval["Service"]["reindexTenant"] = Effect.fn("Retrieval.reindexTenant")(
      function*(tenant) {
        return yield* Effect.gen(function*() {
          yield* dropTenantVectors(tenant)
          yield* collectionOf(tenant)
          const upTo = yield* SubscriptionRef.get(applied)
          let documents = 0
          yield* events.readAll({ tenantId: tenant, toSequence: upTo, batchSize: 256 }).pipe(
            Stream.filter((event) => event.streamId.includes("/document/")),
            Stream.runForEach((event) =>
              Effect.tap(
                apply(event).pipe(Effect.catchTags({ InvalidFilter: Effect.die, SchemaError: Effect.die })),
                () =>
                  Effect.sync(() => {
                    if (event.type === "DocumentIngested") documents++
                  })
              )
            )
          )
          return { documents }
        }).pipe(Semaphore.withPermits(projector, 1))
      },
      warn
    )

    const appliedNow = Effect.andThen(refresh, SubscriptionRef.get(applied))

    const status: Retrieval["Service"]["status"] = Effect.all({
      appliedSequence: appliedNow,
      lastSequence: events.lastSequence
    })

    return Retrieval.of({
      ingest,
      get,
      remove,
      list,
      search,
      ask,
      answer,
      rebuild,
      resume,
      purgeTenant,
      reindexTenant,
      applied: appliedNow,
      status,
      lag: Effect.map(status, (s) => Math.max(0, s.lastSequence - s.appliedSequence)),
      projecting: Ref.get(holding)
    })
  })

/**
 * The service over the event store (`EventStore`, `Checkpoints`), the vector store and the models; the projector
 * runs as long as the layer's scope. Guards (`Resilient.ModelGuard`, `Resilient.VectorStoreGuard`) are read from the
 * context when given.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<
  Retrieval,
  IncompatibleCollection | VectorStoreUnavailable,
  EventStore.EventStore | Checkpoints.Checkpoints | VectorStore.VectorStore | Embedder.Embedder | Llm.Llm
> => Layer.effect(Retrieval, make(options))
