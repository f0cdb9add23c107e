/**
 * The in-memory model behind the Qdrant stand-in: point ids, filters, scoring, payload selection and the snapshot
 * byte format. Errors are thrown as `QdrantError` and turned into Qdrant's envelope by the router.
 */
import { createHash } from "node:crypto"
import { gunzipSync, gzipSync } from "node:zlib"

/** @internal */
export class QdrantError extends Error {
  constructor(readonly status: number, message: string) {
    super(message)
  }
}

/** @internal */
export const wrongInput = (message: string) => new QdrantError(400, `Wrong input: ${message}`)
/** @internal */
export const formatError = (message: string) => new QdrantError(400, `Format error in JSON body: ${message}`)
/** @internal */
export const notFound = (message: string) => new QdrantError(404, `Not found: ${message}`)
/** @internal */
export const collectionNotFound = (name: string) => notFound(`Collection \`${name}\` doesn't exist!`)

/** @internal */
export type PointId = number | string

/** @internal */
export type Distance = "Cosine" | "Dot" | "Euclid" | "Manhattan"

/** @internal */
export interface StoredPoint {
  readonly id: PointId
  readonly vector: ReadonlyArray<number>
  readonly payload: Record<string, unknown>
  readonly version: number
}

interface PayloadIndex {
  readonly data_type: string
  readonly params?: Record<string, unknown>
}

/** @internal */
export interface Collection {
  readonly name: string
  readonly size: number
  readonly distance: Distance
  readonly points: Map<string, StoredPoint>
  readonly payloadSchema: Map<string, PayloadIndex>
  /** `hnsw_config`, `optimizers_config`, `on_disk_payload`… as given at creation or update, echoed by `GET`. */
  readonly settings: Record<string, unknown>
  operationId: number
}

// ---------------------------------------------------------------------------------------------------------------
// values
// ---------------------------------------------------------------------------------------------------------------

/** @internal */
export const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i

/** Parses an ExtendedPointId: an unsigned integer or a UUID (normalised to lower-case hyphenated form). @internal */
export const parseId = (u: unknown): PointId => {
  if (typeof u === "number" && Number.isSafeInteger(u) && u >= 0) return u
  if (typeof u === "string" && UUID.test(u)) {
    const hex = u.replaceAll("-", "").toLowerCase()
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
  }
  throw formatError(
    `value ${JSON.stringify(u)} is not a valid point ID, valid values are either an unsigned integer or a UUID`
  )
}

/** @internal */
export const idKey = (id: PointId): string => (typeof id === "number" ? `n:${id}` : `u:${id}`)

/** Qdrant orders numeric ids before UUIDs. @internal */
export const compareIds = (a: PointId, b: PointId): number => {
  if (typeof a === "number") return typeof b === "number" ? a - b : -1
  if (typeof b === "number") return 1
  return a < b ? -1 : a > b ? 1 : 0
}

const f32 = (n: number) => Math.fround(n)

/**
 * The number Qdrant's JSON shows for a float32: the shortest decimal that reads back as the same float32 (what
 * serde's ryu writes), so `0.6` stored comes back as `0.6`, not `0.6000000238418579`.
 *
 * @internal
 */
export const shortestF32 = (x: number): number => {
  for (let precision = 1; precision < 10; precision++) {
    const candidate = Number(x.toPrecision(precision))
    if (Math.fround(candidate) === x) return candidate
  }
  return x
}

/** @internal */
export const parseVector = (u: unknown, collection: Collection): Array<number> => {
  if (!Array.isArray(u) || !u.every((x) => typeof x === "number" && Number.isFinite(x))) {
    if (isRecord(u)) {
      throw wrongInput(`Not existing vector name error: ${Object.keys(u).join(", ")}`)
    }
    throw formatError("data did not match any variant of untagged enum VectorStruct")
  }
  if (u.length !== collection.size) {
    throw wrongInput(`Vector dimension error: expected dim: ${collection.size}, got ${u.length}`)
  }
  const vector = (u as Array<number>).map(f32)
  return collection.distance === "Cosine" ? normalise(vector) : vector
}

const normalise = (vector: Array<number>): Array<number> => {
  const norm = Math.sqrt(vector.reduce((sum, x) => sum + x * x, 0))
  return norm === 0 ? vector : vector.map((x) => f32(x / norm))
}

/** Higher is better for Cosine/Dot, lower for the distances. @internal */
export const score = (distance: Distance, a: ReadonlyArray<number>, b: ReadonlyArray<number>): number => {
  let acc = 0
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!
    const y = b[i]!
    if (distance === "Euclid") acc += (x - y) * (x - y)
    else if (distance === "Manhattan") acc += Math.abs(x - y)
    else acc += x * y
  }
  return f32(distance === "Euclid" ? Math.sqrt(acc) : acc)
}

/** @internal */
export const higherIsBetter = (distance: Distance) => distance === "Cosine" || distance === "Dot"

// ---------------------------------------------------------------------------------------------------------------
// filters
// ---------------------------------------------------------------------------------------------------------------

/** Values at a payload path; `a.b` walks objects, `a[]` and arrays on the way are flattened. @internal */
export const valuesAt = (payload: unknown, key: string): Array<unknown> => {
  let current: Array<unknown> = [payload]
  for (const rawPart of key.split(".")) {
    const part = rawPart.endsWith("[]") ? rawPart.slice(0, -2) : rawPart
    const next: Array<unknown> = []
    for (const value of current) {
      for (const item of Array.isArray(value) ? value : [value]) {
        if (isRecord(item) && part in item) next.push(item[part])
      }
    }
    current = next
  }
  return current.flatMap((value) => (Array.isArray(value) ? value : [value]))
}

const asArray = (u: unknown): Array<unknown> => (u === undefined || u === null ? [] : Array.isArray(u) ? u : [u])

const matchOne = (match: Record<string, unknown>, value: unknown): boolean => {
  if ("value" in match) return value === match.value
  if ("any" in match) return asArray(match.any).some((candidate) => candidate === value)
  if ("except" in match) return !asArray(match.except).some((candidate) => candidate === value)
  if ("text" in match) return typeof value === "string" && typeof match.text === "string" && value.includes(match.text)
  throw formatError("data did not match any variant of untagged enum Match")
}

/** Numbers compare as numbers; RFC 3339 strings (Qdrant's DatetimeRange) compare as instants. */
const comparable = (u: unknown): number | undefined => {
  if (typeof u === "number") return u
  if (typeof u === "string") {
    const instant = Date.parse(u)
    return Number.isNaN(instant) ? undefined : instant
  }
  return undefined
}

const inRange = (range: Record<string, unknown>, raw: unknown): boolean => {
  const value = comparable(raw)
  if (value === undefined) return false
  const bound = (name: string) => comparable(range[name])
  const gt = bound("gt")
  const gte = bound("gte")
  const lt = bound("lt")
  const lte = bound("lte")
  return (gt === undefined || value > gt) && (gte === undefined || value >= gte) &&
    (lt === undefined || value < lt) && (lte === undefined || value <= lte)
}

const isFilterShape = (u: Record<string, unknown>) =>
  "must" in u || "should" in u || "must_not" in u || "min_should" in u

const checkCondition = (condition: unknown, point: StoredPoint, payload: unknown): boolean => {
  if (!isRecord(condition)) throw formatError("data did not match any variant of untagged enum Condition")
  if ("has_id" in condition) {
    const ids = asArray(condition.has_id).map(parseId).map(idKey)
    return ids.includes(idKey(point.id))
  }
  if ("is_empty" in condition) {
    const key = isRecord(condition.is_empty) ? condition.is_empty.key : undefined
    const values = valuesAt(payload, String(key)).filter((v) => v !== null)
    return values.length === 0
  }
  if ("is_null" in condition) {
    const key = isRecord(condition.is_null) ? condition.is_null.key : undefined
    return valuesAt(payload, String(key)).some((v) => v === null)
  }
  if ("nested" in condition) {
    const nested = condition.nested
    if (!isRecord(nested) || typeof nested.key !== "string") {
      throw formatError("data did not match any variant of untagged enum Condition")
    }
    return valuesAt(payload, nested.key).some((element) => checkFilter(nested.filter, point, element))
  }
  if ("filter" in condition && Object.keys(condition).length === 1) {
    return checkFilter(condition.filter, point, payload)
  }
  if (isFilterShape(condition)) return checkFilter(condition, point, payload)
  if (typeof condition.key === "string") {
    const values = valuesAt(payload, condition.key)
    if (isRecord(condition.match)) {
      const match = condition.match
      if ("except" in match) return values.length > 0 && values.every((v) => matchOne(match, v))
      return values.some((v) => matchOne(match, v))
    }
    if (isRecord(condition.range)) {
      const range = condition.range
      return values.some((v) => inRange(range, v))
    }
    if (isRecord(condition.values_count)) {
      return inRange(condition.values_count, values.length)
    }
    if (condition.is_empty === true) return values.length === 0
    if (condition.is_null === true) return values.some((v) => v === null)
  }
  throw formatError("data did not match any variant of untagged enum Condition")
}

const CONDITION_KINDS = ["has_id", "is_empty", "is_null", "nested"]

const validateCondition = (condition: unknown): void => {
  if (!isRecord(condition)) throw formatError("data did not match any variant of untagged enum Condition")
  if ("has_id" in condition) {
    asArray(condition.has_id).forEach(parseId)
    return
  }
  if (CONDITION_KINDS.some((kind) => kind in condition)) {
    if ("nested" in condition && isRecord(condition.nested)) validateFilter(condition.nested.filter)
    return
  }
  if ("filter" in condition && Object.keys(condition).length === 1) return validateFilter(condition.filter)
  if (isFilterShape(condition)) return validateFilter(condition)
  if (typeof condition.key === "string") {
    if (isRecord(condition.match)) {
      const match = condition.match
      if (!["value", "any", "except", "text"].some((kind) => kind in match)) {
        throw formatError("data did not match any variant of untagged enum Match")
      }
      return
    }
    if (isRecord(condition.range) || isRecord(condition.values_count)) return
    if (condition.is_empty === true || condition.is_null === true) return
  }
  throw formatError("data did not match any variant of untagged enum Condition")
}

/** Checks a filter's shape up front, as Qdrant rejects a malformed filter even on an empty collection. @internal */
export const validateFilter = (filter: unknown): void => {
  if (filter === undefined || filter === null) return
  if (!isRecord(filter)) throw formatError("invalid type: expected struct Filter")
  for (const c of [...asArray(filter.must), ...asArray(filter.should), ...asArray(filter.must_not)]) {
    validateCondition(c)
  }
  if (isRecord(filter.min_should)) asArray(filter.min_should.conditions).forEach(validateCondition)
}

/** Whether a point (or a nested payload element) satisfies a Qdrant filter. @internal */
export const checkFilter = (filter: unknown, point: StoredPoint, payload: unknown = point.payload): boolean => {
  if (filter === undefined || filter === null) return true
  if (!isRecord(filter)) throw formatError("invalid type: expected struct Filter")
  const must = asArray(filter.must)
  const should = asArray(filter.should)
  const mustNot = asArray(filter.must_not)
  if (!must.every((c) => checkCondition(c, point, payload))) return false
  if (mustNot.some((c) => checkCondition(c, point, payload))) return false
  if (should.length > 0 && !should.some((c) => checkCondition(c, point, payload))) return false
  if (isRecord(filter.min_should)) {
    const conditions = asArray(filter.min_should.conditions)
    const minCount = typeof filter.min_should.min_count === "number" ? filter.min_should.min_count : 0
    if (conditions.filter((c) => checkCondition(c, point, payload)).length < minCount) return false
  }
  return true
}

// ---------------------------------------------------------------------------------------------------------------
// output
// ---------------------------------------------------------------------------------------------------------------

const pickPath = (payload: Record<string, unknown>, key: string, into: Record<string, unknown>) => {
  const parts = key.split(".")
  let source: unknown = payload
  let target = into
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!
    if (!isRecord(source) || !(part in source)) return
    if (i === parts.length - 1) {
      target[part] = source[part]
      return
    }
    source = source[part]
    const existing = target[part]
    target = isRecord(existing) ? existing : (target[part] = {}) as Record<string, unknown>
  }
}

const dropPath = (payload: Record<string, unknown>, key: string) => {
  const parts = key.split(".")
  let target: unknown = payload
  for (let i = 0; i < parts.length - 1; i++) target = isRecord(target) ? target[parts[i]!] : undefined
  if (isRecord(target)) delete target[parts[parts.length - 1]!]
}

/** Applies `with_payload` (boolean, list of keys, `{ include }` or `{ exclude }`). @internal */
export const selectPayload = (
  payload: Record<string, unknown>,
  selector: unknown
): Record<string, unknown> | undefined => {
  if (selector === undefined || selector === null || selector === false) return undefined
  if (selector === true) return structuredClone(payload)
  const include = Array.isArray(selector) ? selector : isRecord(selector) ? selector.include : undefined
  if (Array.isArray(include)) {
    const out: Record<string, unknown> = {}
    for (const key of include) pickPath(payload, String(key), out)
    return structuredClone(out)
  }
  if (isRecord(selector) && Array.isArray(selector.exclude)) {
    const out = structuredClone(payload)
    for (const key of selector.exclude) dropPath(out, String(key))
    return out
  }
  throw formatError("data did not match any variant of untagged enum WithPayloadInterface")
}

/** @internal */
export const record = (point: StoredPoint, withPayload: unknown, withVector: unknown): Record<string, unknown> => {
  const out: Record<string, unknown> = { id: point.id }
  const payload = selectPayload(point.payload, withPayload)
  if (payload !== undefined) out.payload = payload
  if (withVector === true || (Array.isArray(withVector) && withVector.length > 0)) {
    out.vector = point.vector.map(shortestF32)
  }
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// payload updates
// ---------------------------------------------------------------------------------------------------------------

/** Sets `values` at the top level of the payload, or inside the object at `key` (a dotted path). @internal */
export const setPayloadAt = (
  payload: Record<string, unknown>,
  values: Record<string, unknown>,
  key: string | undefined
): Record<string, unknown> => {
  const out = structuredClone(payload)
  if (key === undefined) return Object.assign(out, structuredClone(values))
  let target = out
  for (const part of key.split(".")) {
    const existing = target[part]
    target = isRecord(existing) ? existing : (target[part] = {}) as Record<string, unknown>
  }
  Object.assign(target, structuredClone(values))
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// snapshots
// ---------------------------------------------------------------------------------------------------------------

const SNAPSHOT_FORMAT = "ouroboros-qdrant-stand-in/1"

/** A snapshot is gzip'd JSON of the collection's configuration and points (vectors, payloads, versions). @internal */
export const encodeSnapshot = (collection: Collection): Buffer =>
  gzipSync(JSON.stringify({
    format: SNAPSHOT_FORMAT,
    collection: collection.name,
    vectors: { size: collection.size, distance: collection.distance },
    operation_id: collection.operationId,
    settings: collection.settings,
    payload_schema: Object.fromEntries(collection.payloadSchema),
    points: [...collection.points.values()].sort((a, b) => compareIds(a.id, b.id))
  }))

/** @internal */
export const decodeSnapshot = (bytes: Uint8Array, name: string): Collection => {
  let decoded: unknown
  try {
    decoded = JSON.parse(gunzipSync(bytes).toString("utf8"))
  } catch {
    throw wrongInput("Snapshot is not a valid archive")
  }
  if (!isRecord(decoded) || decoded.format !== SNAPSHOT_FORMAT || !isRecord(decoded.vectors)) {
    throw wrongInput("Snapshot is not a valid archive")
  }
  const points = new Map<string, StoredPoint>()
  for (const point of asArray(decoded.points) as Array<StoredPoint>) points.set(idKey(point.id), point)
  return {
    name,
    size: Number(decoded.vectors.size),
    distance: decoded.vectors.distance as Distance,
    points,
    payloadSchema: new Map(Object.entries(isRecord(decoded.payload_schema) ? decoded.payload_schema : {})) as Map<
      string,
      PayloadIndex
    >,
    settings: isRecord(decoded.settings) ? decoded.settings : {},
    operationId: Number(decoded.operation_id ?? 0)
  }
}

/** @internal */
export const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex")
