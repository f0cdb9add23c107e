/**
 * The retrieval pipeline: documents are events in the event store; their chunks' vectors are a projection in the
 * vector store, kept by one projector fiber that applies events in sequence order and records its checkpoint.
 *
 * A request embeds (so a failing embedder answers 503 before anything is recorded), appends the event, hands the
 * vectors to the projector and waits until the projection has applied it (read-your-writes). After a crash the
 * projector catches up from its checkpoint and re-embeds what it did not apply, so nothing is lost; a rebuild drops
 * the collection and replays every event.
 *
 * @since 0.1.0
 */
import { Checkpoints, EventStore } from "@ouroboros/event-store"
import { Principal, Problem, TenantId } from "@ouroboros/kernel"
import { Chunker, Embedder, Llm } from "@ouroboros/llm"
import { Filter, VectorStore } from "@ouroboros/vector-store"
import { Context, Data, Deferred, Duration, Effect, Layer, Option, Schema, Stream, SubscriptionRef } from "effect"
import { createHash, randomUUID } from "node:crypto"
import type { AskResponse, Document, Hit } from "./DocumentsApi.js"
import * as Resilient from "./Resilient.js"
import { Metadata } from "./DocumentsApi.js"

/**
 * The events of a document stream.
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
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The shared collection, partitioned by tenant. */
  readonly collection: string
  /** Tenants whose tier asks for a collection of their own. */
  readonly dedicatedTenants: ReadonlySet<string>
  readonly chunking?: Chunker.Options | undefined
}

const decodeIngested = Schema.decodeUnknownEffect(DocumentIngested)
const decodeIngestedSync = Schema.decodeUnknownSync(DocumentIngested)
const decodeDeleted = Schema.decodeUnknownEffect(DocumentDeleted)

const streamOf = (tenant: TenantId.TenantId, id: string) => `tenant/${tenant}/document/${id}`
const checkpointName = "vector-projection"

const pointId = (tenant: string, documentId: string, chunk: number): string => {
  const hex = createHash("sha256").update(`${tenant}\u0000${documentId}\u0000${chunk}`).digest("hex")
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`
}

const hashContent = (text: string, metadata: Metadata) =>
  createHash("sha256").update(text).update("\u0000").update(JSON.stringify(metadata)).digest("hex")

type Metadata = typeof Metadata.Type

interface DocumentState {
  readonly document: Document | undefined
  readonly version: number
}

/**
 * @since 0.1.0
 * @category services
 */
export class Retrieval extends Context.Service<Retrieval, {
  readonly ingest: (
    principal: Principal.Principal,
    request: { readonly id?: string | undefined; readonly text: string; readonly metadata?: Metadata | undefined }
  ) => Effect.Effect<Document, Problem.Conflict | Problem.ServiceUnavailable | Problem.UnprocessableEntity>
  readonly get: (principal: Principal.Principal, id: string) => Effect.Effect<Document, Problem.NotFound>
  readonly remove: (
    principal: Principal.Principal,
    id: string
  ) => Effect.Effect<void, Problem.NotFound | Problem.Conflict | Problem.ServiceUnavailable>
  readonly search: (
    principal: Principal.Principal,
    request: { readonly query: string; readonly limit: number; readonly filter?: Filter.Filter | undefined }
  ) => Effect.Effect<ReadonlyArray<Hit>, Filter.InvalidFilter | Problem.ServiceUnavailable>
  readonly ask: (
    principal: Principal.Principal,
    request: { readonly question: string; readonly topK: number; readonly useRag: boolean; readonly model?: string | undefined }
  ) => Effect.Effect<AskResponse, Problem.ServiceUnavailable>
  /** Drops the vectors and replays every event into a fresh collection. */
  readonly rebuild: Effect.Effect<{ readonly events: number }, Problem.ServiceUnavailable>
  /** The sequence of the last event the projection applied. */
  readonly applied: Effect.Effect<number>
}>()("@ouroboros/server/Retrieval") {}

/**
 * A vector collection that the configured embedder cannot fill (its vectors have another size): the server does not
 * start, and says why in one line.
 *
 * @since 0.1.0
 * @category errors
 */
export class IncompatibleCollection extends Data.TaggedError("IncompatibleCollection")<{ readonly message: string }> {}

const unavailable = (what: string, breaker: string) => (cause: unknown) =>
  Effect.flatMap(Resilient.retryAfterSeconds(breaker), (retryAfter) =>
    Effect.logWarning(`${what} is unavailable`, cause).pipe(
      Effect.andThen(
        Effect.fail(
          new Problem.ServiceUnavailable({
            detail: `${what} is unavailable`,
            ...(retryAfter !== undefined ? { retryAfter } : {})
          })
        )
      )
    ))

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
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options) =>
  Effect.gen(function*() {
    const events = yield* EventStore.EventStore
    const checkpoints = yield* Checkpoints.Checkpoints
    const vectors = yield* VectorStore.VectorStore
    const embedder = yield* Embedder.Embedder
    const llm = yield* Llm.Llm
    const localLlm = Llm.makeLocal()

    const collectionOf = (tenant: TenantId.TenantId) =>
      options.dedicatedTenants.has(tenant) ? `${options.collection}_${tenant}` : options.collection
    const ensure = (name: string) =>
      vectors.ensureCollection({ name, dimensions: embedder.dimensions, embedder: embedder.id }).pipe(
        Effect.flatMap((info) =>
          info.embedder === undefined || info.embedder === embedder.id
            ? Effect.succeed(info)
            : Effect.die(new Error(
              `the vector collection ${name} was built with the embedder ${info.embedder}, but ${embedder.id} is ` +
                "configured, and their vectors are not comparable: configure the same embedder, or delete the " +
                "collection so that it is rebuilt from the events at startup"
            ))
        )
      )
    const collections = [options.collection, ...[...options.dedicatedTenants].map((t) => `${options.collection}_${t}`)]
    // A collection that does not exist yet (new, or deleted by an operator) is rebuilt from the events.
    let missing = false
    for (const name of collections) {
      if (Option.isNone(yield* vectors.collectionInfo(name))) missing = true
      yield* ensure(name).pipe(
        Effect.catchTag("DimensionMismatch", (e) => Effect.fail(new IncompatibleCollection({ message: e.detail })))
      )
    }
    if (missing) yield* checkpoints.set(checkpointName, 0)

    // Only the embedder that built the collections can embed for them (checked above), so there is no stand-in: a
    // failing embedder is a 503 with the breaker's remaining break as Retry-After.
    const embed = (texts: ReadonlyArray<string>, purpose: "query" | "document") =>
      embedder.embed(texts, { purpose }).pipe(Effect.catch(unavailable("the embedding model", "ollama")))

    // --- projection ---------------------------------------------------------------------------------------------
    const pending = new Map<number, ReadonlyArray<Float32Array>>()
    const applied = yield* SubscriptionRef.make(yield* Effect.orDie(checkpoints.get(checkpointName)))
    const wake = yield* Deferred.make<void>().pipe(Effect.map((d) => ({ current: d })))

    const apply = (event: EventStore.RecordedEvent) =>
      Effect.gen(function*() {
        const tenant = event.tenantId
        if (tenant === undefined || tenant === null) return
        const tenantId = TenantId.make(tenant)
        const collection = collectionOf(tenantId)
        if (event.type === "DocumentIngested") {
          const data = yield* decodeIngested(event.data)
          const chunks = Chunker.chunk(data.text, options.chunking)
          const vectorsOf = pending.get(event.sequence) ??
            (yield* embed(chunks.map((c) => c.text), "document"))
          yield* vectors.delete(collection, tenantId, {
            filter: { must: [{ key: "document_id", match: { value: data.documentId } }] }
          })
          yield* vectors.upsert(
            collection,
            tenantId,
            chunks.map((chunk, i) => ({
              id: pointId(tenant, data.documentId, chunk.index),
              vector: vectorsOf[i]!,
              payload: { document_id: data.documentId, chunk: chunk.index, text: chunk.text, metadata: data.metadata }
            }))
          )
        } else if (event.type === "DocumentDeleted") {
          const data = yield* decodeDeleted(event.data)
          yield* vectors.delete(collection, tenantId, {
            filter: { must: [{ key: "document_id", match: { value: data.documentId } }] }
          })
        }
      })

    const catchUp = Effect.gen(function*() {
      const from = yield* SubscriptionRef.get(applied)
      yield* events.readAll({ fromSequence: from + 1, batchSize: 256 }).pipe(
        Stream.filter((event) => event.streamId.includes("/document/")),
        Stream.runForEach((event) =>
          apply(event).pipe(
            Effect.andThen(checkpoints.set(checkpointName, event.sequence)),
            Effect.andThen(SubscriptionRef.set(applied, event.sequence)),
            Effect.ensuring(Effect.sync(() => pending.delete(event.sequence)))
          )
        )
      )
      // Events of other streams advance the checkpoint too, so waiting requests are released.
      const last = yield* events.lastSequence
      if (last > (yield* SubscriptionRef.get(applied))) {
        yield* checkpoints.set(checkpointName, last)
        yield* SubscriptionRef.set(applied, last)
      }
    })

    const initial = yield* SubscriptionRef.get(applied)
    yield* Effect.logInfo("vector projection catching up").pipe(
      Effect.annotateLogs({ service: "retrieval", from: initial })
    )
    yield* catchUp.pipe(Effect.orDie)

    yield* Effect.gen(function*() {
      const signal = wake.current
      yield* Effect.race(Deferred.await(signal), Effect.sleep(Duration.seconds(1)))
      wake.current = yield* Deferred.make<void>()
      yield* catchUp.pipe(
        Effect.catchCause((cause) =>
          Effect.logWarning("vector projection failed; it retries", cause).pipe(
            Effect.andThen(Effect.sleep(Duration.seconds(1)))
          )
        )
      )
    }).pipe(Effect.forever, Effect.annotateLogs({ service: "retrieval" }), Effect.forkScoped, Effect.interruptible)

    const awaitApplied = (sequence: number) =>
      Effect.andThen(
        Deferred.succeed(wake.current, undefined),
        SubscriptionRef.changes(applied).pipe(Stream.takeUntil((n) => n >= sequence), Stream.runDrain)
      ).pipe(
        Effect.timeoutOrElse({
          duration: Duration.seconds(30),
          orElse: () =>
            Effect.fail(new Problem.ServiceUnavailable({ detail: "the vector index is catching up", retryAfter: 1 }))
        })
      )

    // --- documents ----------------------------------------------------------------------------------------------
    const load = (tenant: TenantId.TenantId, id: string): Effect.Effect<DocumentState> =>
      Effect.gen(function*() {
        const recorded = yield* events.readStream(streamOf(tenant, id))
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
      }).pipe(Effect.orDie)

    const conflict = (error: EventStore.WrongExpectedVersion) =>
      new Problem.Conflict({ detail: `the document changed concurrently (${error.detail}); retry` })

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
        if (chunks.length === 0) {
          return yield* new Problem.UnprocessableEntity({ detail: "the text has no content to index" })
        }
        const embedded = yield* embed(chunks.map((c) => c.text), "document")
        const result = yield* events.append(streamOf(tenant, id), [{
          type: "DocumentIngested",
          data: { documentId: id, text: request.text, metadata, contentHash, chunks: chunks.length, embedder: embedder.id },
          metadata: { tenantId: tenant, subject: principal.subject }
        }], { expectedVersion: current.version < 0 ? "no-stream" : current.version }).pipe(
          Effect.catchTag("WrongExpectedVersion", (e) => Effect.fail(conflict(e)))
        )
        pending.set(result.lastSequence, embedded)
        yield* awaitApplied(result.lastSequence)
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
          ? Effect.fail(new Problem.NotFound({ detail: `no document ${id}` }))
          : Effect.succeed(document))

    const remove: Retrieval["Service"]["remove"] = Effect.fn("Retrieval.remove")(function*(principal, id) {
      const current = yield* load(principal.tenantId, id)
      if (current.document === undefined) return yield* new Problem.NotFound({ detail: `no document ${id}` })
      const result = yield* events.append(streamOf(principal.tenantId, id), [{
        type: "DocumentDeleted",
        data: { documentId: id },
        metadata: { tenantId: principal.tenantId, subject: principal.subject }
      }], { expectedVersion: current.version }).pipe(
        Effect.catchTag("WrongExpectedVersion", (e) => Effect.fail(conflict(e)))
      )
      yield* awaitApplied(result.lastSequence)
    })

    const searchHits = (
      tenant: TenantId.TenantId,
      query: string,
      limit: number,
      filter: Filter.Filter | undefined
    ) =>
      Effect.gen(function*() {
        const [vector] = yield* embed([query], "query")
        const points = yield* vectors.search(collectionOf(tenant), tenant, {
          vector: vector!,
          limit,
          ...(filter !== undefined ? { filter: scopeFilter(filter) } : {})
        }).pipe(
          Effect.catchTag("VectorStoreError", unavailable("the vector store", "qdrant")),
          Effect.catchTag("DimensionMismatch", unavailable("the vector store", "qdrant"))
        )
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
        return yield* searchHits(principal.tenantId, request.query, request.limit, request.filter)
      }
    )

    const ask: Retrieval["Service"]["ask"] = Effect.fn("Retrieval.ask")(function*(principal, request) {
      // Without a retriever (the embedding model or the vector store is down) the answer degrades, it does not fail.
      const retrieved = request.useRag
        ? yield* searchHits(principal.tenantId, request.question, request.topK, undefined).pipe(
          Effect.catchTag("InvalidFilter", Effect.die),
          Effect.map((hits) => ({ hits, ok: true })),
          Effect.catchTag("ServiceUnavailable", () => Effect.succeed({ hits: [] as ReadonlyArray<Hit>, ok: false }))
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
      const answer = yield* (retrieved.ok ? llm.answer(request.question, passages, generation) : localLlm.answer(request.question, passages)).pipe(
        Effect.catch((error) =>
          Effect.logWarning("the language model failed; answering extractively").pipe(
            Effect.annotateLogs({ service: "retrieval", error: error._tag }),
            Effect.andThen(localLlm.answer(request.question, passages)),
            Effect.orDie
          )
        )
      )
      return { answer: answer.answer, sources, degraded: answer.degraded, model: answer.model }
    })

    const rebuild = Effect.gen(function*() {
      for (const name of collections) {
        yield* vectors.drop(name)
        yield* ensure(name)
      }
      yield* checkpoints.set(checkpointName, 0)
      yield* SubscriptionRef.set(applied, 0)
      const last = yield* events.lastSequence
      yield* awaitApplied(last)
      return { events: last }
    }).pipe(
      Effect.catchTags({
        VectorStoreError: unavailable("the vector store", "qdrant"),
        DimensionMismatch: unavailable("the vector store", "qdrant")
      })
    )

    return Retrieval.of({
      ingest,
      get,
      remove,
      search,
      ask,
      rebuild,
      applied: SubscriptionRef.get(applied)
    })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options) => Layer.effect(Retrieval, make(options))
