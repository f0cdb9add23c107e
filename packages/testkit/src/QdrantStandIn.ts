/**
 * An in-memory stand-in for the subset of Qdrant's REST API that the vector-store adapter uses, with Qdrant's paths,
 * bodies, `{ result, status: "ok", time }` envelope and `{ status: { error }, time }` errors, so the adapter can be
 * tested through the real `@qdrant/js-client-rest`. Every request is recorded, and faults (latency, error rate,
 * hang, refused connections) can be injected. A test fixture, never production code.
 *
 * Supported: `GET /`, `/healthz`, `/livez`, `/readyz`; collections (list, get, create, update, delete, exists);
 * payload indexes; points (upsert, retrieve, get one, delete by ids or filter, set/overwrite/delete/clear payload,
 * batch update, query, legacy search, scroll, count); collection snapshots (create, list, download, delete, upload,
 * recover from a `file://` or `http(s)://` location). One unnamed dense vector per collection; distances Cosine
 * (vectors normalised on upsert, like Qdrant), Dot, Euclid and Manhattan.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { readFile } from "node:fs/promises"
import { fileURLToPath } from "node:url"
import * as Multipart from "./internal/multipart.js"
import * as Q from "./internal/qdrant.js"
import * as Server from "./internal/server.js"
import type { StandIn } from "./StandIn.js"

/**
 * @since 0.1.0
 * @category models
 */
export type { RecordedRequest, StandIn } from "./StandIn.js"

/**
 * - `port`: 0 (any free port) by default.
 * - `apiKey`: when set, every request but `/`, `/healthz`, `/livez` and `/readyz` needs it in the `api-key` header
 *   (or `Authorization: Bearer`), else 401 with Qdrant's plain-text message.
 * - `version`: the version `GET /` reports ({@link defaultVersion} by default).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly port?: number | undefined
  readonly apiKey?: string | undefined
  readonly version?: string | undefined
}

/**
 * The server version `GET /` reports by default, compatible with `@qdrant/js-client-rest` 1.19.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultVersion = "1.19.0"

const PEER_ID = 5_218_643_937_183_201

/**
 * Starts a Qdrant stand-in on 127.0.0.1.
 *
 * @example
 * ```ts
 * import { QdrantClient } from "@qdrant/js-client-rest"
 * import * as QdrantStandIn from "@ouroboros/testkit/QdrantStandIn"
 *
 * const qdrant = await QdrantStandIn.start()
 * const client = new QdrantClient({ url: qdrant.url, checkCompatibility: false })
 * await client.createCollection("docs", { vectors: { size: 4, distance: "Cosine" } })
 * await qdrant.close()
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = (options: Options = {}): Promise<StandIn> => {
  const collections = new Map<string, Q.Collection>()
  const snapshots = new Map<string, Map<string, { readonly bytes: Buffer; readonly creation_time: string }>>()
  const version = options.version ?? defaultVersion

  // Injected and unexpected errors: 5xx read like Qdrant's internal errors, and a 429 carries the `retry-after`
  // header Qdrant's rate limiter sends (the client turns it into QdrantClientResourceExhaustedError).
  const errorReply = (status: number, message: string) =>
    status === 429
      ? Server.json(429, { status: { error: `Rate limiting exceeded: ${message}` }, time: 0 }, { "retry-after": "1" })
      : Server.json(status, {
        status: { error: status >= 500 ? `Service internal error: ${message}` : message },
        time: 0
      })

  const handle = async (request: Server.Incoming, self: { readonly url: string }): Promise<Server.Reply> => {
    const begin = process.hrtime.bigint()
    const elapsed = () => Number(process.hrtime.bigint() - begin) / 1e9
    const ok = (result: unknown) => Server.json(200, { result, status: "ok", time: elapsed() })
    try {
      return await route(request, self, ok)
    } catch (error) {
      if (error instanceof Q.QdrantError) {
        return Server.json(error.status, { status: { error: error.message }, time: elapsed() })
      }
      throw error
    }
  }

  const body = (request: Server.Incoming): Record<string, unknown> => {
    if (request.raw.length === 0) return {}
    let parsed: unknown
    try {
      parsed = JSON.parse(request.raw.toString("utf8"))
    } catch (error) {
      throw new Q.QdrantError(400, `Json deserialize error: ${error instanceof Error ? error.message : String(error)}`)
    }
    if (!Q.isRecord(parsed)) throw new Q.QdrantError(400, "Json deserialize error: invalid type: expected a map")
    return parsed
  }

  const collection = (name: string): Q.Collection => {
    const found = collections.get(name)
    if (found === undefined) throw Q.collectionNotFound(name)
    return found
  }

  const updateResult = (request: Server.Incoming, c: Q.Collection) => ({
    operation_id: c.operationId,
    status: request.query.get("wait") === "false" ? "acknowledged" : "completed"
  })

  const setting = (c: Q.Collection, key: string): Record<string, unknown> => {
    const value = c.settings[key]
    return Q.isRecord(value) ? value : {}
  }

  const collectionInfo = (c: Q.Collection) => {
    const payloadSchema: Record<string, unknown> = {}
    for (const [field, index] of c.payloadSchema) {
      const points = [...c.points.values()].filter((p) => Q.valuesAt(p.payload, field).length > 0).length
      payloadSchema[field] = { ...index, points }
    }
    return {
      status: "green",
      optimizer_status: "ok",
      indexed_vectors_count: 0,
      points_count: c.points.size,
      segments_count: 1,
      config: {
        params: {
          vectors: { size: c.size, distance: c.distance },
          shard_number: c.settings.shard_number ?? 1,
          replication_factor: c.settings.replication_factor ?? 1,
          write_consistency_factor: c.settings.write_consistency_factor ?? 1,
          on_disk_payload: c.settings.on_disk_payload ?? true
        },
        hnsw_config: {
          m: 16,
          ef_construct: 100,
          full_scan_threshold: 10_000,
          max_indexing_threads: 0,
          on_disk: false,
          ...setting(c, "hnsw_config")
        },
        optimizer_config: {
          deleted_threshold: 0.2,
          vacuum_min_vector_number: 1000,
          default_segment_number: 0,
          max_segment_size: null,
          memmap_threshold: null,
          indexing_threshold: 10_000,
          flush_interval_sec: 5,
          max_optimization_threads: null,
          ...setting(c, "optimizers_config")
        },
        wal_config: { wal_capacity_mb: 32, wal_segments_ahead: 0, ...setting(c, "wal_config") },
        quantization_config: c.settings.quantization_config ?? null,
        strict_mode_config: { enabled: false, ...setting(c, "strict_mode_config") }
      },
      payload_schema: payloadSchema
    }
  }

  const SETTINGS = ["hnsw_config", "optimizers_config", "wal_config", "quantization_config", "strict_mode_config"]

  const settingsOf = (b: Record<string, unknown>, previous: Record<string, unknown>): Record<string, unknown> => {
    const out: Record<string, unknown> = structuredClone(previous)
    for (const key of SETTINGS) {
      const value = b[key]
      if (Q.isRecord(value)) out[key] = { ...(Q.isRecord(out[key]) ? out[key] : {}), ...value }
    }
    for (const key of ["on_disk_payload", "shard_number", "replication_factor", "write_consistency_factor"]) {
      if (b[key] !== undefined && b[key] !== null) out[key] = b[key]
    }
    if (Q.isRecord(b.params)) Object.assign(out, settingsOf(b.params, {}))
    return out
  }

  const createCollection = (name: string, b: Record<string, unknown>) => {
    if (collections.has(name)) throw new Q.QdrantError(409, `Wrong input: Collection \`${name}\` already exists!`)
    const vectors = b.vectors
    if (!Q.isRecord(vectors) || !("size" in vectors)) {
      throw Q.wrongInput("the stand-in supports a single unnamed vector: `vectors: { size, distance }`")
    }
    const size = vectors.size
    if (typeof size !== "number" || !Number.isInteger(size) || size < 1 || size > 65_536) {
      throw new Q.QdrantError(
        400,
        `Validation error in JSON body: [vectors.size: value ${size} invalid, must be from 1 to 65536]`
      )
    }
    const distance = vectors.distance
    if (distance !== "Cosine" && distance !== "Dot" && distance !== "Euclid" && distance !== "Manhattan") {
      throw new Q.QdrantError(
        400,
        `Json deserialize error: unknown variant \`${String(distance)}\`, ` +
          "expected one of `Cosine`, `Euclid`, `Dot`, `Manhattan`"
      )
    }
    collections.set(name, {
      name,
      size,
      distance,
      points: new Map(),
      payloadSchema: new Map(),
      settings: settingsOf(b, {}),
      operationId: 0
    })
  }

  const parsePoint = (c: Q.Collection, u: unknown, version: number): Q.StoredPoint => {
    if (!Q.isRecord(u)) throw Q.formatError("invalid type: expected struct PointStruct")
    const payload = u.payload === undefined || u.payload === null ? {} : u.payload
    if (!Q.isRecord(payload)) throw Q.formatError("invalid type: expected a map for `payload`")
    return { id: Q.parseId(u.id), vector: Q.parseVector(u.vector, c), payload: structuredClone(payload), version }
  }

  const upsert = (c: Q.Collection, b: Record<string, unknown>) => {
    const version = c.operationId + 1
    let points: Array<Q.StoredPoint>
    if (Array.isArray(b.points)) {
      points = b.points.map((p) => parsePoint(c, p, version))
    } else if (Q.isRecord(b.batch)) {
      const { ids, payloads, vectors } = b.batch
      if (!Array.isArray(ids) || !Array.isArray(vectors) || ids.length !== vectors.length) {
        throw Q.wrongInput("number of ids and vectors must be equal")
      }
      points = ids.map((id, i) =>
        parsePoint(c, { id, vector: vectors[i], payload: Array.isArray(payloads) ? payloads[i] : undefined }, version)
      )
    } else {
      throw Q.formatError("data did not match any variant of untagged enum PointInsertOperations")
    }
    c.operationId = version
    for (const point of points) c.points.set(Q.idKey(point.id), point)
  }

  const selected = (c: Q.Collection, b: Record<string, unknown>): Array<Q.StoredPoint> => {
    if (Array.isArray(b.points)) {
      return b.points.map(Q.parseId).flatMap((id) => {
        const p = c.points.get(Q.idKey(id))
        return p === undefined ? [] : [p]
      })
    }
    if ("filter" in b) {
      Q.validateFilter(b.filter)
      return [...c.points.values()].filter((p) => Q.checkFilter(b.filter, p))
    }
    throw Q.formatError("data did not match any variant of untagged enum PointsSelector")
  }

  const OPERATIONS = [
    "upsert",
    "delete",
    "set_payload",
    "overwrite_payload",
    "delete_payload",
    "clear_payload"
  ] as const
  type Operation = typeof OPERATIONS[number]
  const isOperation = (u: string): u is Operation => (OPERATIONS as ReadonlyArray<string>).includes(u)

  /** One update operation, as in `PUT points`, `POST points/delete`, the payload endpoints and `points/batch`. */
  const update = (request: Server.Incoming, c: Q.Collection, operation: Operation, b: Record<string, unknown>) => {
    switch (operation) {
      case "upsert":
        upsert(c, b)
        break
      case "delete": {
        const doomed = selected(c, b)
        c.operationId += 1
        for (const p of doomed) c.points.delete(Q.idKey(p.id))
        break
      }
      case "set_payload":
      case "overwrite_payload": {
        if (!Q.isRecord(b.payload)) throw Q.formatError("missing field `payload`")
        const values = b.payload
        const key = typeof b.key === "string" ? b.key : undefined
        const targets = selected(c, b)
        c.operationId += 1
        for (const p of targets) {
          const payload = operation === "overwrite_payload"
            ? structuredClone(values)
            : Q.setPayloadAt(p.payload, values, key)
          c.points.set(Q.idKey(p.id), { ...p, payload, version: c.operationId })
        }
        break
      }
      case "delete_payload":
      case "clear_payload": {
        const keys = operation === "delete_payload" && Array.isArray(b.keys) ? b.keys.map(String) : undefined
        const targets = selected(c, b)
        c.operationId += 1
        for (const p of targets) {
          const payload = keys === undefined ? {} : Q.selectPayload(p.payload, { exclude: keys }) ?? {}
          c.points.set(Q.idKey(p.id), { ...p, payload, version: c.operationId })
        }
        break
      }
    }
    return updateResult(request, c)
  }

  const sortedMatching = (c: Q.Collection, filter: unknown) => {
    Q.validateFilter(filter)
    return [...c.points.values()].filter((p) => Q.checkFilter(filter, p)).sort((a, b) => Q.compareIds(a.id, b.id))
  }

  const optionalNumber = (u: unknown, name: string, fallback: number): number => {
    if (u === undefined || u === null) return fallback
    if (typeof u !== "number" || !Number.isInteger(u) || u < 0) {
      throw Q.formatError(`invalid value: ${JSON.stringify(u)} for \`${name}\`, expected an unsigned integer`)
    }
    return u
  }

  const search = (
    c: Q.Collection,
    vector: ReadonlyArray<number> | undefined,
    b: Record<string, unknown>,
    limit: number
  ) => {
    const offset = optionalNumber(b.offset, "offset", 0)
    const threshold = typeof b.score_threshold === "number" ? b.score_threshold : undefined
    const candidates = sortedMatching(c, b.filter)
    let scored: Array<{ readonly point: Q.StoredPoint; readonly score: number }>
    if (vector === undefined) {
      scored = candidates.map((point) => ({ point, score: 0 }))
    } else {
      const higher = Q.higherIsBetter(c.distance)
      scored = candidates
        .map((point) => ({ point, score: Q.score(c.distance, vector, point.vector) }))
        .filter(({ score }) => threshold === undefined || (higher ? score >= threshold : score <= threshold))
        .sort((x, y) => (higher ? y.score - x.score : x.score - y.score) || Q.compareIds(x.point.id, y.point.id))
    }
    return scored.slice(offset, offset + limit).map(({ point, score }) => ({
      ...Q.record(point, b.with_payload, b.with_vector),
      version: point.version,
      score: Q.shortestF32(score)
    }))
  }

  const queryVector = (c: Q.Collection, query: unknown): ReadonlyArray<number> | undefined => {
    if (query === undefined || query === null) return undefined
    if (Array.isArray(query)) return Q.parseVector(query, c)
    if (typeof query === "number" || typeof query === "string") {
      const point = c.points.get(Q.idKey(Q.parseId(query)))
      if (point === undefined) throw Q.notFound(`No point with id ${String(query)} found`)
      return point.vector
    }
    if (Q.isRecord(query) && "nearest" in query) return queryVector(c, query.nearest)
    throw Q.wrongInput("the stand-in supports only nearest queries (a vector, a point id or `{ nearest }`)")
  }

  const snapshotsOf = (name: string) => {
    let found = snapshots.get(name)
    if (found === undefined) snapshots.set(name, found = new Map())
    return found
  }

  const snapshotDescription = (name: string, s: { readonly bytes: Buffer; readonly creation_time: string }) => ({
    name,
    creation_time: s.creation_time,
    size: s.bytes.length,
    checksum: Q.sha256(s.bytes)
  })

  const createSnapshot = (c: Q.Collection) => {
    const bytes = Q.encodeSnapshot(c)
    const existing = snapshotsOf(c.name)
    let at = new Date()
    const stamp = (d: Date) => d.toISOString().slice(0, 19)
    let name = `${c.name}-${PEER_ID}-${stamp(at).replaceAll(":", "-").replace("T", "-")}.snapshot`
    while (existing.has(name)) {
      at = new Date(at.getTime() + 1000)
      name = `${c.name}-${PEER_ID}-${stamp(at).replaceAll(":", "-").replace("T", "-")}.snapshot`
    }
    const stored = { bytes, creation_time: stamp(at) }
    existing.set(name, stored)
    return snapshotDescription(name, stored)
  }

  const restore = (name: string, bytes: Uint8Array, checksum: string | null | undefined) => {
    if (checksum !== undefined && checksum !== null) {
      const actual = Q.sha256(bytes)
      if (actual !== checksum) {
        throw Q.wrongInput(`Snapshot checksum mismatch: expected ${checksum}, got ${actual}`)
      }
    }
    collections.set(name, Q.decodeSnapshot(bytes, name))
  }

  const fetchLocation = async (location: string, self: { readonly url: string }): Promise<Uint8Array> => {
    let url: URL
    try {
      url = new URL(location)
    } catch {
      throw Q.wrongInput(`Invalid snapshot location: ${location}`)
    }
    if (url.protocol === "file:") {
      try {
        return await readFile(fileURLToPath(url))
      } catch {
        throw Q.notFound(`Snapshot file \`${url.pathname}\` does not exist`)
      }
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw Q.wrongInput(`Unsupported snapshot location scheme: ${url.protocol}`)
    }
    // A location on the stand-in itself is read directly (no api-key round trip, no self-deadlock on hang faults).
    const own = /^\/collections\/([^/]+)\/snapshots\/([^/]+)$/.exec(url.pathname)
    if (url.origin === self.url && own !== null) {
      const stored = snapshots.get(decodeURIComponent(own[1]!))?.get(decodeURIComponent(own[2]!))
      if (stored === undefined) throw Q.notFound(`Snapshot ${decodeURIComponent(own[2]!)} not found`)
      return stored.bytes
    }
    let response: Response
    try {
      response = await fetch(url)
    } catch (error) {
      throw new Q.QdrantError(
        500,
        `Service internal error: failed to download snapshot from ${location}: ${String(error)}`
      )
    }
    if (!response.ok) {
      throw new Q.QdrantError(
        400,
        `Bad request: failed to download snapshot from ${location}: status ${response.status}`
      )
    }
    return new Uint8Array(await response.arrayBuffer())
  }

  const authorised = (request: Server.Incoming) => {
    if (options.apiKey === undefined) return true
    if (["/", "/healthz", "/livez", "/readyz"].includes(request.path)) return true
    const bearer = /^Bearer (.+)$/i.exec(request.headers["authorization"] ?? "")?.[1]
    return request.headers["api-key"] === options.apiKey || bearer === options.apiKey
  }

  const route = async (
    request: Server.Incoming,
    self: { readonly url: string },
    ok: (result: unknown) => Server.Reply
  ): Promise<Server.Reply> => {
    const { method, path } = request
    if (!authorised(request)) {
      const given = request.headers["api-key"] !== undefined || request.headers["authorization"] !== undefined
      return Server.text(
        401,
        given ? "Invalid API key or JWT" : "Must provide an API key or an Authorization bearer token"
      )
    }
    if (path === "/" && method === "GET") {
      return Server.json(200, { title: "qdrant - vector search engine", version, commit: "stand-in" })
    }
    if (path === "/healthz" || path === "/livez") return Server.text(200, "healthz check passed")
    if (path === "/readyz") return Server.text(200, "all shards are ready")
    if (path === "/collections" && method === "GET") {
      return ok({ collections: [...collections.keys()].map((name) => ({ name })) })
    }
    const segments = path.split("/").slice(1).map(decodeURIComponent)
    if (segments[0] !== "collections" || segments[1] === undefined || segments[1] === "") {
      return Server.text(404, "", "text/plain")
    }
    const name = segments[1]
    const rest = segments.slice(2).join("/")
    const key = `${method} ${rest}`

    switch (key) {
      case "GET ":
        return ok(collectionInfo(collection(name)))
      case "PUT ":
        createCollection(name, body(request))
        return ok(true)
      case "PATCH ": {
        const c = collection(name)
        collections.set(name, { ...c, settings: settingsOf(body(request), c.settings) })
        return ok(true)
      }
      case "DELETE ": {
        const existed = collections.delete(name)
        return ok(existed)
      }
      case "GET exists":
        return ok({ exists: collections.has(name) })
      case "PUT index": {
        const c = collection(name)
        const b = body(request)
        if (typeof b.field_name !== "string") throw Q.formatError("missing field `field_name`")
        const schema = b.field_schema
        const type = typeof schema === "string" ? schema : Q.isRecord(schema) ? schema.type : undefined
        const types = ["keyword", "integer", "float", "geo", "text", "bool", "datetime", "uuid"]
        if (typeof type !== "string" || !types.includes(type)) {
          throw Q.formatError("data did not match any variant of untagged enum PayloadFieldSchema")
        }
        c.operationId += 1
        c.payloadSchema.set(
          b.field_name,
          Q.isRecord(schema) ? { data_type: type, params: schema } : { data_type: type }
        )
        return ok(updateResult(request, c))
      }
      case "PUT points":
        return ok(update(request, collection(name), "upsert", body(request)))
      case "POST points": {
        const c = collection(name)
        const b = body(request)
        if (!Array.isArray(b.ids)) throw Q.formatError("missing field `ids`")
        const withPayload = b.with_payload ?? true
        const points = b.ids.map(Q.parseId).flatMap((id) => {
          const p = c.points.get(Q.idKey(id))
          return p === undefined ? [] : [Q.record(p, withPayload, b.with_vector)]
        })
        return ok(points)
      }
      case "POST points/delete":
        return ok(update(request, collection(name), "delete", body(request)))
      case "POST points/payload":
        return ok(update(request, collection(name), "set_payload", body(request)))
      case "PUT points/payload":
        return ok(update(request, collection(name), "overwrite_payload", body(request)))
      case "POST points/payload/delete":
        return ok(update(request, collection(name), "delete_payload", body(request)))
      case "POST points/payload/clear":
        return ok(update(request, collection(name), "clear_payload", body(request)))
      case "POST points/batch": {
        const c = collection(name)
        const b = body(request)
        if (!Array.isArray(b.operations)) throw Q.formatError("missing field `operations`")
        const results = b.operations.map((operation: unknown) => {
          const entries = Q.isRecord(operation) ? Object.entries(operation) : []
          const [kind, args] = entries[0] ?? []
          if (entries.length !== 1 || kind === undefined || !Q.isRecord(args) || !isOperation(kind)) {
            throw Q.formatError("data did not match any variant of untagged enum UpdateOperation")
          }
          return update(request, c, kind, args)
        })
        return ok(results)
      }
      case "POST points/query": {
        const c = collection(name)
        const b = body(request)
        if (b.prefetch !== undefined && b.prefetch !== null) {
          throw Q.wrongInput("the stand-in does not support prefetch")
        }
        const points = search(c, queryVector(c, b.query), b, optionalNumber(b.limit, "limit", 10))
        return ok({ points })
      }
      case "POST points/search": {
        const c = collection(name)
        const b = body(request)
        if (b.vector === undefined) throw Q.formatError("missing field `vector`")
        if (b.limit === undefined) throw Q.formatError("missing field `limit`")
        return ok(search(c, Q.parseVector(b.vector, c), b, optionalNumber(b.limit, "limit", 10)))
      }
      case "POST points/scroll": {
        const c = collection(name)
        const b = body(request)
        const limit = optionalNumber(b.limit, "limit", 10)
        const from = b.offset === undefined || b.offset === null ? undefined : Q.parseId(b.offset)
        const all = sortedMatching(c, b.filter).filter((p) => from === undefined || Q.compareIds(p.id, from) >= 0)
        const page = all.slice(0, limit)
        return ok({
          points: page.map((p) => Q.record(p, b.with_payload ?? true, b.with_vector)),
          next_page_offset: all[limit]?.id ?? null
        })
      }
      case "POST points/count": {
        const c = collection(name)
        const b = body(request)
        return ok({ count: sortedMatching(c, b.filter).length })
      }
      case "GET snapshots":
        collection(name)
        return ok([...snapshotsOf(name)].map(([n, s]) => snapshotDescription(n, s)))
      case "POST snapshots":
        return ok(createSnapshot(collection(name)))
      case "POST snapshots/upload": {
        const parts = Multipart.parse(request.raw, request.headers["content-type"])
        const part = parts.find((p) => p.name === "snapshot")
        if (part === undefined) throw new Q.QdrantError(400, "Bad request: missing multipart field `snapshot`")
        restore(name, part.data, request.query.get("checksum"))
        return ok(true)
      }
      case "PUT snapshots/recover": {
        const b = body(request)
        if (typeof b.location !== "string") throw Q.formatError("missing field `location`")
        const bytes = await fetchLocation(b.location, self)
        restore(name, bytes, typeof b.checksum === "string" ? b.checksum : undefined)
        return ok(true)
      }
    }
    const point = /^(GET) points\/(.+)$/.exec(key)
    if (point !== null) {
      const c = collection(name)
      let id: Q.PointId
      try {
        id = Q.parseId(/^\d+$/.test(point[2]!) ? Number(point[2]) : point[2])
      } catch {
        throw Q.notFound(`No point with id ${point[2]} found`)
      }
      const p = c.points.get(Q.idKey(id))
      if (p === undefined) throw Q.notFound(`No point with id ${point[2]} found`)
      return ok(Q.record(p, true, true))
    }
    const snapshot = /^(GET|DELETE) snapshots\/([^/]+)$/.exec(key)
    if (snapshot !== null) {
      const snapshotName = snapshot[2]!
      const stored = snapshots.get(name)?.get(snapshotName)
      if (stored === undefined) throw Q.notFound(`Snapshot file \`${snapshotName}\` does not exist`)
      if (snapshot[1] === "DELETE") {
        snapshots.get(name)?.delete(snapshotName)
        return ok(true)
      }
      return {
        status: 200,
        headers: {
          "content-type": "application/octet-stream",
          "content-disposition": `attachment; filename="${snapshotName}"`
        },
        body: stored.bytes
      }
    }
    const index = /^DELETE index\/(.+)$/.exec(key)
    if (index !== null) {
      const c = collection(name)
      c.operationId += 1
      c.payloadSchema.delete(index[1]!)
      return ok(updateResult(request, c))
    }
    return Server.text(404, "", "text/plain")
  }

  return Server.start({ port: options.port, handle, errorReply })
}

/**
 * A Qdrant stand-in for the lifetime of a scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const scoped = (options?: Options): Effect.Effect<StandIn, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => start(options)),
    (standIn) => Effect.promise(() => standIn.close())
  )
