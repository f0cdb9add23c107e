/**
 * The Qdrant backend, through `@qdrant/js-client-rest` (1.19: `query` for search, `scroll`, `count`, payload
 * indexes, snapshots).
 *
 * Tenancy follows Qdrant's multitenancy guide: one collection partitioned by a `tenant_id` keyword field indexed
 * with `is_tenant: true`, and a tenant condition the adapter adds to every filter. Qdrant point ids must be UUIDs or
 * integers, so the point id is a UUIDv5 of (tenant, caller id) and the caller's id travels in the `point_id` payload
 * field; two tenants never collide and a tenant can never address another tenant's point.
 *
 * Cancellation: the client's own `timeout` option replaces any `signal` a call passes (its timeout middleware
 * overwrites `init.signal`), so the client is built without a timeout and every call goes through the generated
 * low-level API with an `AbortSignal` owned by the Effect: interruption, `Effect.timeout` and this layer's `timeout`
 * all abort the HTTP request. Snapshots are downloaded as bytes (`arrayBuffer`), never as text.
 *
 * @since 0.1.0
 */
import type { TenantId } from "@ouroboros/kernel/TenantId"
import { QdrantClient } from "@qdrant/js-client-rest"
import { Duration, Effect, Layer, Option, Redacted } from "effect"
import { createHash } from "node:crypto"
import * as Filter from "../Filter.js"
import {
  type CollectionInfo,
  type CollectionSpec,
  DimensionMismatch,
  makeSnapshot,
  normalize,
  type Point,
  type Reason,
  type ScoredPoint,
  type SearchRequest,
  type Selector,
  validateName,
  VectorStore,
  VectorStoreError
} from "../VectorStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Qdrant's REST URL, e.g. `http://qdrant:6333`. */
  readonly url: string
  readonly apiKey?: Redacted.Redacted<string> | undefined
  /** Deadline of each HTTP call (default 30 seconds); on expiry the request is aborted. */
  readonly timeout?: Duration.Input | undefined
  /** Deadline of snapshot downloads and uploads (default 10 minutes). */
  readonly snapshotTimeout?: Duration.Input | undefined
  /** Extra headers read before every call (e.g. `traceparent`, `X-Correlation-ID` from the current fiber). */
  readonly headers?: Effect.Effect<Record<string, string>> | undefined
  /** Upper bound of open connections (default 25). */
  readonly maxConnections?: number | undefined
  /** Points per upsert request (default 256). */
  readonly batchSize?: number | undefined
}

/**
 * The payload field that partitions a collection by tenant.
 *
 * @since 0.1.0
 * @category constants
 */
export const tenantField = "tenant_id"

/**
 * The payload field carrying the caller's point id.
 *
 * @since 0.1.0
 * @category constants
 */
export const pointIdField = "point_id"

const NAMESPACE = Buffer.from("6f1c2a5e0b7d4c3e9a8f1d2c3b4a5968", "hex")

/**
 * The Qdrant point id of a caller's point: a UUIDv5 (RFC 9562) of the tenant and the caller's id.
 *
 * @since 0.1.0
 * @category utils
 */
export const pointUuid = (tenantId: string, id: string): string => {
  const hash = createHash("sha1").update(NAMESPACE).update(`${tenantId}\u0000${id}`, "utf8").digest()
  hash[6] = (hash[6]! & 0x0f) | 0x50
  hash[8] = (hash[8]! & 0x3f) | 0x80
  const hex = hash.subarray(0, 16).toString("hex")
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

const tenantCondition = (tenantId: string) => ({ key: tenantField, match: { value: tenantId } })

/** The caller's filter with the tenant condition added to `must` (so `should`/`must_not` cannot widen it). */
const withTenant = (tenantId: string, filter: Filter.Filter | undefined): Record<string, unknown> => ({
  must: [tenantCondition(tenantId), ...(filter?.must ?? [])],
  ...(filter?.should !== undefined ? { should: filter.should } : {}),
  ...(filter?.must_not !== undefined ? { must_not: filter.must_not } : {})
})

const stripReserved = (payload: Record<string, unknown> | null | undefined): Record<string, unknown> => {
  const { [tenantField]: _tenant, [pointIdField]: _id, ...rest } = payload ?? {}
  return rest
}

const describe = (error: unknown): { status: number | undefined; message: string } => {
  if (typeof error === "object" && error !== null) {
    const e = error as { status?: unknown; data?: unknown; message?: unknown }
    const status = typeof e.status === "number" ? e.status : undefined
    const data = e.data as { status?: { error?: unknown } } | string | undefined
    const detail = typeof data === "string"
      ? data
      : typeof data?.status?.error === "string"
      ? data.status.error
      : typeof e.message === "string"
      ? e.message
      : String(error)
    return { status, message: detail }
  }
  return { status: undefined, message: String(error) }
}

/**
 * A create that failed because the collection exists: Qdrant answers 409 Conflict since 1.8 (400 Bad Request before),
 * "Wrong input: Collection `name` already exists!". Two replicas that start together both see no collection and both
 * create it; the one that loses must go on with the one that won.
 */
const isAlreadyExists = (error: VectorStoreError): boolean => {
  const status = describe(error.cause).status
  return (status === 409 || status === 400) && /already exists/i.test(error.message)
}

const reasonOf = (status: number | undefined): Reason =>
  status === undefined
    ? "Unavailable"
    : status === 404
    ? "NotFound"
    : status === 400 || status === 422
    ? "InvalidInput"
    : status === 408 || status === 504
    ? "Timeout"
    : status === 429 || status >= 500
    ? "Unavailable"
    : "Unexpected"

/**
 * Builds a Qdrant-backed store.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fn("VectorStore/Qdrant.make")(function*(options: Options) {
  const baseUrl = options.url.replace(/\/+$/, "")
  const baseHeaders: Record<string, string> = options.apiKey !== undefined
    ? { "api-key": Redacted.value(options.apiKey) }
    : {}
  const client = yield* Effect.try({
    try: () =>
      new QdrantClient({
        url: baseUrl,
        // No client timeout: it would replace our AbortSignal. Deadlines are Effect timeouts that abort the request.
        timeout: Number.POSITIVE_INFINITY,
        checkCompatibility: false,
        headers: baseHeaders,
        ...(options.maxConnections !== undefined ? { maxConnections: options.maxConnections } : {})
      }),
    catch: (cause) => new VectorStoreError({ reason: "InvalidInput", message: `Invalid Qdrant URL ${baseUrl}`, cause })
  })
  const api = client.api()
  const timeout = Duration.fromInputUnsafe(options.timeout ?? "30 seconds")
  const snapshotTimeout = Duration.fromInputUnsafe(options.snapshotTimeout ?? "10 minutes")
  const extraHeaders = options.headers ?? Effect.succeed({})
  const batchSize = Math.max(1, options.batchSize ?? 256)
  const dimensions = new Map<string, number>()

  /** One HTTP call, aborted when the fiber is interrupted or the deadline passes. */
  const call = <A>(
    what: string,
    run: (init: { signal: AbortSignal; headers: Record<string, string> }) => Promise<A>,
    deadline: Duration.Duration = timeout
  ): Effect.Effect<A, VectorStoreError> =>
    Effect.flatMap(extraHeaders, (headers) =>
      Effect.tryPromise({
        try: (signal) => run({ signal, headers }),
        catch: (error) => {
          const { message, status } = describe(error)
          return new VectorStoreError({ reason: reasonOf(status), message: `Qdrant ${what}: ${message}`, cause: error })
        }
      })).pipe(
        Effect.timeoutOrElse({
          duration: deadline,
          orElse: () =>
            Effect.fail(
              new VectorStoreError({
                reason: "Timeout",
                message: `Qdrant ${what}: no answer within ${Duration.format(deadline)}`
              })
            )
        })
      )

  const fetchInfo = (name: string): Effect.Effect<Option.Option<CollectionInfo>, VectorStoreError> =>
    Effect.gen(function*() {
      const found = yield* call(
        `get collection "${name}"`,
        (init) => api.getCollection({ collection_name: name }, init)
      )
        .pipe(
          Effect.map((response) => Option.fromNullishOr(response.data.result)),
          Effect.catchIf((e) => e.reason === "NotFound", () => Effect.succeed(Option.none()))
        )
      if (Option.isNone(found)) {
        dimensions.delete(name)
        return Option.none()
      }
      const config = found.value.config
      const vectors = config.params.vectors as { size?: unknown } | undefined
      if (vectors === undefined || typeof vectors.size !== "number") {
        return yield* new VectorStoreError({
          reason: "Unexpected",
          message: `Qdrant collection "${name}" does not have a single unnamed vector`
        })
      }
      const metadata = config.metadata as Record<string, unknown> | null | undefined
      const count = yield* countPoints(name, undefined)
      dimensions.set(name, vectors.size)
      return Option.some<CollectionInfo>({
        name,
        dimensions: vectors.size,
        distance: "Cosine",
        embedder: typeof metadata?.embedder === "string" ? metadata.embedder : undefined,
        count
      })
    })

  const countPoints = (name: string, filter: Record<string, unknown> | undefined) =>
    call(
      `count "${name}"`,
      (init) =>
        api.countPoints({ collection_name: name, exact: true, ...(filter !== undefined ? { filter } : {}) }, init)
    ).pipe(
      Effect.map((response) => response.data.result?.count ?? 0)
    )

  const dimensionsOf = (name: string): Effect.Effect<number, VectorStoreError> => {
    const known = dimensions.get(name)
    if (known !== undefined) return Effect.succeed(known)
    return Effect.flatMap(fetchInfo(name), (info) =>
      Option.match(info, {
        onNone: () => Effect.fail(new VectorStoreError({ reason: "NotFound", message: `No collection "${name}"` })),
        onSome: (info) => Effect.succeed(info.dimensions)
      }))
  }

  const create = (spec: CollectionSpec) =>
    Effect.gen(function*() {
      yield* call(`create collection "${spec.name}"`, (init) =>
        api.createCollection({
          collection_name: spec.name,
          vectors: { size: spec.dimensions, distance: "Cosine" },
          ...(spec.embedder !== undefined ? { metadata: { embedder: spec.embedder } } : {})
        }, init))
      yield* call(`create the tenant index of "${spec.name}"`, (init) =>
        api.createFieldIndex({
          collection_name: spec.name,
          wait: true,
          field_name: tenantField,
          field_schema: { type: "keyword", is_tenant: true }
        }, init))
    })

  const snapshotUrl = (name: string, snapshot: string) =>
    `${baseUrl}/collections/${encodeURIComponent(name)}/snapshots/${encodeURIComponent(snapshot)}`

  const httpFailure = async (what: string, response: Response): Promise<never> => {
    const body = await response.text().catch(() => "")
    throw Object.assign(new Error(`${what}: HTTP ${response.status} ${body.slice(0, 200)}`), {
      status: response.status,
      data: (() => {
        try {
          return JSON.parse(body) as unknown
        } catch {
          return body
        }
      })()
    })
  }

  return VectorStore.of({
    ensureCollection: Effect.fn("VectorStore.ensureCollection")(function*(spec: CollectionSpec) {
      const name = yield* validateName(spec.name)
      if (!Number.isInteger(spec.dimensions) || spec.dimensions < 1 || spec.dimensions > 65536) {
        return yield* new VectorStoreError({
          reason: "InvalidInput",
          message: `Invalid vector size ${spec.dimensions} for collection "${name}"`
        })
      }
      const existing = yield* fetchInfo(name)
      if (Option.isSome(existing)) {
        if (existing.value.dimensions !== spec.dimensions) {
          return yield* DimensionMismatch.of(name, existing.value.dimensions, spec.dimensions, "the embedder")
        }
        return existing.value
      }
      yield* create({ ...spec, name }).pipe(
        // Another replica may have created it meanwhile: what it created is checked below.
        Effect.catchIf(isAlreadyExists, () => Effect.void)
      )
      const created = yield* fetchInfo(name)
      if (Option.isNone(created)) {
        return yield* new VectorStoreError({
          reason: "Unexpected",
          message: `Collection "${name}" vanished after creation`
        })
      }
      if (created.value.dimensions !== spec.dimensions) {
        return yield* DimensionMismatch.of(name, created.value.dimensions, spec.dimensions, "the embedder")
      }
      return created.value
    }),

    collectionInfo: (name) => Effect.flatMap(validateName(name), fetchInfo),

    listCollections: Effect.gen(function*() {
      const response = yield* call("list collections", (init) => api.getCollections({}, init))
      const names = (response.data.result?.collections ?? []).map((c) => c.name)
      const infos = yield* Effect.forEach(names, fetchInfo, { concurrency: 4 })
      return infos.flatMap((info) => Option.toArray(info))
    }).pipe(Effect.withSpan("VectorStore.listCollections")),

    upsert: Effect.fn("VectorStore.upsert")(
      function*(collection: string, tenantId: TenantId, points: ReadonlyArray<Point>) {
        if (points.length === 0) return
        const name = yield* validateName(collection)
        const size = yield* dimensionsOf(name)
        const prepared = yield* Effect.forEach(
          points,
          (point) =>
            Effect.map(normalize(name, size, point.vector), (vector) => ({
              id: pointUuid(tenantId, point.id),
              vector: Array.from(vector),
              payload: { ...point.payload, [tenantField]: tenantId, [pointIdField]: point.id }
            }))
        )
        for (let start = 0; start < prepared.length; start += batchSize) {
          const batch = prepared.slice(start, start + batchSize)
          yield* call(
            `upsert into "${name}"`,
            (init) => api.upsertPoints({ collection_name: name, wait: true, points: batch }, init)
          ).pipe(
            Effect.catchIf(
              (e) => e.reason === "InvalidInput" && /dimension/i.test(e.message),
              () =>
                Effect.flatMap(
                  fetchInfo(name),
                  () => Effect.fail(DimensionMismatch.of(name, dimensions.get(name) ?? size, size))
                )
            )
          )
        }
      }
    ),

    delete: Effect.fn("VectorStore.delete")(function*(collection: string, tenantId: TenantId, selector: Selector) {
      const name = yield* validateName(collection)
      if ("ids" in selector) {
        if (selector.ids.length === 0) return
        const ids = selector.ids.map((id) => pointUuid(tenantId, id))
        yield* call(
          `delete from "${name}"`,
          (init) => api.deletePoints({ collection_name: name, wait: true, points: ids }, init)
        )
        return
      }
      const filter = yield* Filter.validate(selector.filter)
      yield* call(
        `delete from "${name}"`,
        (init) => api.deletePoints({ collection_name: name, wait: true, filter: withTenant(tenantId, filter) }, init)
      )
    }),

    search: Effect.fn("VectorStore.search")(function*(collection: string, tenantId: TenantId, request: SearchRequest) {
      const filter = request.filter === undefined ? undefined : yield* Filter.validate(request.filter)
      const name = yield* validateName(collection)
      const size = yield* dimensionsOf(name)
      const vector = yield* normalize(name, size, request.vector, "the query vector")
      const limit = Math.min(Math.max(0, Math.floor(request.limit)), 10_000)
      if (limit === 0) return []
      const response = yield* call(`query "${name}"`, (init) =>
        api.queryPoints({
          collection_name: name,
          query: Array.from(vector),
          filter: withTenant(tenantId, filter),
          limit,
          with_payload: true,
          with_vector: false,
          ...(request.scoreThreshold !== undefined ? { score_threshold: request.scoreThreshold } : {})
        }, init))
      return (response.data.result?.points ?? []).map((point): ScoredPoint => {
        const payload = (point.payload ?? {}) as Record<string, unknown>
        const id = payload[pointIdField]
        return {
          id: typeof id === "string" ? id : String(point.id),
          score: point.score,
          payload: stripReserved(payload)
        }
      })
    }),

    count: Effect.fn("VectorStore.count")(
      function*(collection: string, tenantId: TenantId | undefined, filter?: Filter.Filter) {
        const valid = filter === undefined ? undefined : yield* Filter.validate(filter)
        const name = yield* validateName(collection)
        return yield* countPoints(
          name,
          tenantId === undefined ? (valid as Record<string, unknown> | undefined) : withTenant(tenantId, valid)
        )
      }
    ),

    snapshot: Effect.fn("VectorStore.snapshot")(function*(collection: string) {
      const name = yield* validateName(collection)
      const info = yield* fetchInfo(name)
      if (Option.isNone(info)) {
        return yield* new VectorStoreError({ reason: "NotFound", message: `No collection "${name}"` })
      }
      const created = yield* call(
        `create a snapshot of "${name}"`,
        (init) => api.createSnapshot({ collection_name: name, wait: true }, init),
        snapshotTimeout
      )
      const description = created.data.result
      if (description === undefined || description === null) {
        return yield* new VectorStoreError({
          reason: "Unexpected",
          message: `Qdrant returned no snapshot for "${name}"`
        })
      }
      const bytes = yield* call(`download snapshot ${description.name}`, async (init) => {
        const response = await fetch(snapshotUrl(name, description.name), {
          signal: init.signal,
          headers: { ...baseHeaders, ...init.headers, accept: "application/octet-stream" }
        })
        if (!response.ok) return httpFailure("download", response)
        return new Uint8Array(await response.arrayBuffer())
      }, snapshotTimeout).pipe(
        Effect.ensuring(
          call(
            `delete snapshot ${description.name}`,
            (init) => api.deleteSnapshot({ collection_name: name, snapshot_name: description.name, wait: true }, init)
          ).pipe(
            Effect.ignore
          )
        )
      )
      const snapshot = makeSnapshot({
        collection: name,
        format: "qdrant",
        bytes,
        count: info.value.count,
        dimensions: info.value.dimensions
      })
      if (typeof description.checksum === "string" && description.checksum !== snapshot.sha256) {
        return yield* new VectorStoreError({
          reason: "Corrupt",
          message: `Snapshot ${description.name} of "${name}" does not match its SHA-256 checksum`
        })
      }
      return snapshot
    }),

    restore: Effect.fn("VectorStore.restore")(function*(collection: string, bytes: Uint8Array) {
      const name = yield* validateName(collection)
      const checksum = createHash("sha256").update(bytes).digest("hex")
      yield* call(`upload a snapshot to "${name}"`, async (init) => {
        const form = new FormData()
        form.append("snapshot", new Blob([bytes]), `${name}.snapshot`)
        const url = `${baseUrl}/collections/${encodeURIComponent(name)}/snapshots/upload` +
          `?priority=snapshot&wait=true&checksum=${checksum}`
        const response = await fetch(url, {
          method: "POST",
          body: form,
          signal: init.signal,
          headers: { ...baseHeaders, ...init.headers }
        })
        if (!response.ok) return httpFailure("upload", response)
        await response.arrayBuffer()
      }, snapshotTimeout).pipe(
        Effect.mapError((e) =>
          e.reason === "InvalidInput"
            ? new VectorStoreError({ reason: "Corrupt", message: e.message, cause: e.cause })
            : e
        )
      )
      dimensions.delete(name)
      const info = yield* fetchInfo(name)
      if (Option.isNone(info)) {
        return yield* new VectorStoreError({
          reason: "Unexpected",
          message: `Collection "${name}" missing after restore`
        })
      }
      return info.value
    }),

    drop: Effect.fn("VectorStore.drop")(function*(collection: string) {
      const name = yield* validateName(collection)
      dimensions.delete(name)
      yield* call(`delete collection "${name}"`, (init) => api.deleteCollection({ collection_name: name }, init)).pipe(
        Effect.catchIf((e) => e.reason === "NotFound", () => Effect.void)
      )
    })
  })
})

/**
 * The Qdrant store as a layer.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { Qdrant } from "@ouroboros/vector-store"
 * import { Redacted } from "effect"
 * const live = Qdrant.layer({ url: "http://qdrant:6333", apiKey: Redacted.make("secret"), timeout: "5 seconds" })
 */
export const layer = (options: Options): Layer.Layer<VectorStore, VectorStoreError> =>
  Layer.effect(VectorStore, make(options))
