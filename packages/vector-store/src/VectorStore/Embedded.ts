/**
 * The embedded vector store, the default backend: every collection lives in memory as one contiguous Float32Array of
 * L2-normalised rows (exact cosine search by dot product, top-k with a small heap) and on disk under a directory:
 *
 * - `<dir>/<collection>/snapshot`: the compacted state (header, points, CRC32 trailer), replaced only by
 *   write-to-temp + fsync + atomic rename + directory fsync;
 * - `<dir>/<collection>/wal-<generation>.log`: an append-only write-ahead log of length-prefixed, CRC32-checked
 *   records, fsynced once per batch before the batch is applied in memory.
 *
 * On open the snapshot is loaded and the log of its generation replayed; a torn tail record (a crash mid-write) is
 * cut off. A `kill -9` at any moment therefore leaves a state made of whole batches, a prefix of the acknowledged
 * ones plus at most the one in flight. When the log outgrows the snapshot it is compacted into a new snapshot of
 * the next generation. Snapshot bytes (`snapshot`/`restore`) use the snapshot file format.
 *
 * @since 0.1.0
 */
import type { TenantId } from "@ouroboros/kernel/TenantId"
import { Effect, Layer, Option, Semaphore } from "effect"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { crc32 } from "node:zlib"
import * as Filter from "../Filter.js"
import {
  type CollectionInfo,
  type CollectionSpec,
  DimensionMismatch,
  makeSnapshot,
  normalize,
  type Point,
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
  /** Where collections are kept (one sub-directory each). Created if missing. */
  readonly directory: string
  /** Compact when the write-ahead log exceeds this many bytes and the snapshot's size. Default 64 MiB. */
  readonly compactAfterBytes?: number | undefined
  /** fsync every batch (default true). Turning it off trades durability on power loss for speed; a process crash is
   * still safe. */
  readonly fsync?: boolean | undefined
}

/**
 * The snapshot format identifier.
 *
 * @since 0.1.0
 * @category constants
 */
export const format = "ouroboros-embedded/1" as const

const MAGIC = Buffer.from("OUROVS\u0000\u0001", "latin1")
const OP_UPSERT = 1
const OP_DELETE = 2
const SNAPSHOT = "snapshot"
const walName = (generation: number) => `wal-${generation}.log`

interface Header {
  readonly format: typeof format
  readonly dimensions: number
  readonly distance: "Cosine"
  readonly embedder: string | null
  readonly generation: number
  readonly count: number
}

interface Collection {
  readonly name: string
  readonly dir: string
  readonly dimensions: number
  readonly embedder: string | undefined
  generation: number
  size: number
  capacity: number
  matrix: Float32Array
  tenants: Array<string>
  ids: Array<string>
  payloads: Array<Record<string, unknown>>
  readonly index: Map<string, number>
  wal: fs.FileHandle | undefined
  walBytes: number
  snapshotBytes: number
  /** Set when an I/O failure left the log in a state that further appends could make unreadable. */
  broken: unknown
}

// ---------------------------------------------------------------------------------------------------------------
// encoding

const keyOf = (tenant: string, id: string) => `${tenant}\u0000${id}`

const strLen = (s: string) => 4 + Buffer.byteLength(s, "utf8")

class Writer {
  offset = 0
  constructor(readonly buf: Buffer) {}
  u8(n: number) {
    this.buf[this.offset++] = n
  }
  u32(n: number) {
    this.buf.writeUInt32LE(n, this.offset)
    this.offset += 4
  }
  str(s: string) {
    const n = this.buf.write(s, this.offset + 4, "utf8")
    this.buf.writeUInt32LE(n, this.offset)
    this.offset += 4 + n
  }
  floats(values: Float32Array, start: number, length: number) {
    this.buf.set(new Uint8Array(values.buffer, values.byteOffset + start * 4, length * 4), this.offset)
    this.offset += length * 4
  }
}

class Reader {
  offset = 0
  constructor(readonly buf: Buffer, readonly end: number = buf.length) {}
  need(n: number) {
    if (this.offset + n > this.end) throw new RangeError("truncated record")
  }
  u8() {
    this.need(1)
    return this.buf[this.offset++]!
  }
  u32() {
    this.need(4)
    const n = this.buf.readUInt32LE(this.offset)
    this.offset += 4
    return n
  }
  str() {
    const n = this.u32()
    this.need(n)
    const s = this.buf.toString("utf8", this.offset, this.offset + n)
    this.offset += n
    return s
  }
  floatsInto(target: Float32Array, start: number, length: number) {
    this.need(length * 4)
    new Uint8Array(target.buffer, target.byteOffset + start * 4, length * 4).set(
      this.buf.subarray(this.offset, this.offset + length * 4)
    )
    this.offset += length * 4
  }
}

interface Prepared {
  readonly tenant: string
  readonly id: string
  readonly json: string
  readonly vector: Float32Array
}

/** One WAL record: [u32 body length][u32 crc32(body)][body]. */
const frame = (bodyLength: number, write: (w: Writer) => void): Buffer => {
  const buf = Buffer.allocUnsafe(8 + bodyLength)
  const w = new Writer(buf)
  w.offset = 8
  write(w)
  if (w.offset !== buf.length) throw new Error("record size mismatch")
  buf.writeUInt32LE(bodyLength, 0)
  buf.writeUInt32LE(crc32(buf.subarray(8)), 4)
  return buf
}

const encodeUpsert = (points: ReadonlyArray<Prepared>, dimensions: number): Buffer => {
  let size = 1 + 4
  for (const p of points) size += strLen(p.tenant) + strLen(p.id) + strLen(p.json) + dimensions * 4
  return frame(size, (w) => {
    w.u8(OP_UPSERT)
    w.u32(points.length)
    for (const p of points) {
      w.str(p.tenant)
      w.str(p.id)
      w.str(p.json)
      w.floats(p.vector, 0, dimensions)
    }
  })
}

const encodeDelete = (tenant: string, ids: ReadonlyArray<string>): Buffer => {
  let size = 1 + 4
  for (const id of ids) size += strLen(tenant) + strLen(id)
  return frame(size, (w) => {
    w.u8(OP_DELETE)
    w.u32(ids.length)
    for (const id of ids) {
      w.str(tenant)
      w.str(id)
    }
  })
}

/** Snapshot bytes in chunks: magic, header, points, then the CRC32 of everything before. */
function* encodeSnapshot(c: Collection, generation: number): Generator<Buffer> {
  const header: Header = {
    format,
    dimensions: c.dimensions,
    distance: "Cosine",
    embedder: c.embedder ?? null,
    generation,
    count: c.size
  }
  let crc = 0
  const emit = (chunk: Buffer) => {
    crc = crc32(chunk, crc)
    return chunk
  }
  const json = JSON.stringify(header)
  const head = Buffer.allocUnsafe(MAGIC.length + strLen(json))
  head.set(MAGIC, 0)
  const hw = new Writer(head)
  hw.offset = MAGIC.length
  hw.str(json)
  yield emit(head)
  const jsons: Array<string> = []
  const flushEvery = 1024
  for (let start = 0; start < c.size; start += flushEvery) {
    const end = Math.min(c.size, start + flushEvery)
    let size = 0
    jsons.length = 0
    for (let slot = start; slot < end; slot++) {
      const payloadJson = JSON.stringify(c.payloads[slot])
      jsons.push(payloadJson)
      size += strLen(c.tenants[slot]!) + strLen(c.ids[slot]!) + strLen(payloadJson) + c.dimensions * 4
    }
    const chunk = Buffer.allocUnsafe(size)
    const w = new Writer(chunk)
    for (let slot = start; slot < end; slot++) {
      w.str(c.tenants[slot]!)
      w.str(c.ids[slot]!)
      w.str(jsons[slot - start]!)
      w.floats(c.matrix, slot * c.dimensions, c.dimensions)
    }
    yield emit(chunk)
  }
  const trailer = Buffer.allocUnsafe(4)
  trailer.writeUInt32LE(crc, 0)
  yield trailer
}

const corrupt = (message: string, cause?: unknown) => new VectorStoreError({ reason: "Corrupt", message, cause })

const emptyCollection = (
  name: string,
  dir: string,
  dimensions: number,
  embedder: string | undefined,
  capacity = 16
): Collection => ({
  name,
  dir,
  dimensions,
  embedder,
  generation: 1,
  size: 0,
  capacity,
  matrix: new Float32Array(capacity * dimensions),
  tenants: [],
  ids: [],
  payloads: [],
  index: new Map(),
  wal: undefined,
  walBytes: 0,
  snapshotBytes: 0,
  broken: undefined
})

/** Parses snapshot bytes (checking magic, CRC and header) into a detached in-memory collection. */
const decodeSnapshot = (name: string, dir: string, bytes: Uint8Array): Collection => {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (buf.length < MAGIC.length + 8 || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw corrupt(`Not an embedded vector store snapshot (bad magic) for "${name}"`)
  }
  const body = buf.length - 4
  if (crc32(buf.subarray(0, body)) !== buf.readUInt32LE(body)) {
    throw corrupt(`Snapshot of "${name}" fails its CRC32 check`)
  }
  const r = new Reader(buf, body)
  r.offset = MAGIC.length
  const header = JSON.parse(r.str()) as Partial<Header>
  if (
    header.format !== format || typeof header.dimensions !== "number" || !Number.isInteger(header.dimensions) ||
    header.dimensions < 1 || typeof header.count !== "number" || typeof header.generation !== "number"
  ) {
    throw corrupt(`Snapshot of "${name}" has an invalid header`)
  }
  const c = emptyCollection(
    name,
    dir,
    header.dimensions,
    typeof header.embedder === "string" ? header.embedder : undefined,
    Math.max(16, header.count)
  )
  c.generation = header.generation
  for (let i = 0; i < header.count; i++) {
    const tenant = r.str()
    const id = r.str()
    const payload = JSON.parse(r.str()) as Record<string, unknown>
    const slot = c.size++
    c.tenants.push(tenant)
    c.ids.push(id)
    c.payloads.push(payload)
    r.floatsInto(c.matrix, slot * c.dimensions, c.dimensions)
    c.index.set(keyOf(tenant, id), slot)
  }
  if (r.offset !== body) throw corrupt(`Snapshot of "${name}" has trailing bytes`)
  c.snapshotBytes = buf.length
  return c
}

// ---------------------------------------------------------------------------------------------------------------
// in-memory operations (synchronous: nothing can interleave with them)

const grow = (c: Collection, needed: number) => {
  if (needed <= c.capacity) return
  let capacity = c.capacity
  while (capacity < needed) capacity = Math.max(16, capacity * 2)
  const matrix = new Float32Array(capacity * c.dimensions)
  matrix.set(c.matrix.subarray(0, c.size * c.dimensions))
  c.matrix = matrix
  c.capacity = capacity
}

const applyUpsert = (
  c: Collection,
  tenant: string,
  id: string,
  payload: Record<string, unknown>,
  vector: Float32Array
) => {
  const key = keyOf(tenant, id)
  let slot = c.index.get(key)
  if (slot === undefined) {
    grow(c, c.size + 1)
    slot = c.size++
    c.index.set(key, slot)
    c.tenants.push(tenant)
    c.ids.push(id)
    c.payloads.push(payload)
  } else {
    c.payloads[slot] = payload
  }
  c.matrix.set(vector, slot * c.dimensions)
}

const applyDelete = (c: Collection, tenant: string, id: string) => {
  const key = keyOf(tenant, id)
  const slot = c.index.get(key)
  if (slot === undefined) return
  c.index.delete(key)
  const last = c.size - 1
  if (slot !== last) {
    // Swap-remove: the last row takes the freed slot, keeping rows contiguous.
    c.tenants[slot] = c.tenants[last]!
    c.ids[slot] = c.ids[last]!
    c.payloads[slot] = c.payloads[last]!
    c.matrix.copyWithin(slot * c.dimensions, last * c.dimensions, (last + 1) * c.dimensions)
    c.index.set(keyOf(c.tenants[slot]!, c.ids[slot]!), slot)
  }
  c.tenants.pop()
  c.ids.pop()
  c.payloads.pop()
  c.size = last
}

/** Replays a WAL buffer; returns the length of its valid prefix (a torn or corrupt tail is ignored). */
const replay = (c: Collection, buf: Buffer): number => {
  let offset = 0
  const scratch = new Float32Array(c.dimensions)
  while (offset + 8 <= buf.length) {
    const length = buf.readUInt32LE(offset)
    const end = offset + 8 + length
    if (end > buf.length) break
    const body = buf.subarray(offset + 8, end)
    if (crc32(body) !== buf.readUInt32LE(offset + 4)) break
    const r = new Reader(body)
    const op = r.u8()
    const n = r.u32()
    if (op === OP_UPSERT) {
      for (let i = 0; i < n; i++) {
        const tenant = r.str()
        const id = r.str()
        const payload = JSON.parse(r.str()) as Record<string, unknown>
        r.floatsInto(scratch, 0, c.dimensions)
        applyUpsert(c, tenant, id, payload, scratch)
      }
    } else if (op === OP_DELETE) {
      for (let i = 0; i < n; i++) {
        const tenant = r.str()
        applyDelete(c, tenant, r.str())
      }
    } else {
      break
    }
    offset = end
  }
  return offset
}

/** A bounded min-heap keeping the `limit` best (score, slot) pairs. */
const topK = (
  c: Collection,
  query: Float32Array,
  limit: number,
  accept: (slot: number) => boolean,
  threshold: number
): Array<{ slot: number; score: number }> => {
  const scores = new Float64Array(limit)
  const slots = new Int32Array(limit)
  let n = 0
  const dims = c.dimensions
  const matrix = c.matrix
  const siftDown = (i: number) => {
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < n && scores[l]! < scores[m]!) m = l
      if (r < n && scores[r]! < scores[m]!) m = r
      if (m === i) return
      const s = scores[i]!, t = slots[i]!
      scores[i] = scores[m]!
      slots[i] = slots[m]!
      scores[m] = s
      slots[m] = t
      i = m
    }
  }
  for (let slot = 0; slot < c.size; slot++) {
    if (!accept(slot)) continue
    const base = slot * dims
    // Four accumulators: fewer dependent adds per iteration.
    let d0 = 0, d1 = 0, d2 = 0, d3 = 0
    let d = 0
    for (; d + 3 < dims; d += 4) {
      d0 += matrix[base + d]! * query[d]!
      d1 += matrix[base + d + 1]! * query[d + 1]!
      d2 += matrix[base + d + 2]! * query[d + 2]!
      d3 += matrix[base + d + 3]! * query[d + 3]!
    }
    for (; d < dims; d++) d0 += matrix[base + d]! * query[d]!
    const dot = d0 + d1 + d2 + d3
    if (dot < threshold) continue
    if (n < limit) {
      let i = n++
      scores[i] = dot
      slots[i] = slot
      while (i > 0) {
        const parent = (i - 1) >> 1
        if (scores[parent]! <= scores[i]!) break
        const s = scores[i]!, t = slots[i]!
        scores[i] = scores[parent]!
        slots[i] = slots[parent]!
        scores[parent] = s
        slots[parent] = t
        i = parent
      }
    } else if (dot > scores[0]!) {
      scores[0] = dot
      slots[0] = slot
      siftDown(0)
    }
  }
  const out: Array<{ slot: number; score: number }> = []
  for (let i = 0; i < n; i++) out.push({ slot: slots[i]!, score: scores[i]! })
  return out.sort((a, b) => b.score - a.score || (c.ids[a.slot]! < c.ids[b.slot]! ? -1 : 1))
}

// ---------------------------------------------------------------------------------------------------------------
// files

const io = (message: string) => (cause: unknown) =>
  cause instanceof VectorStoreError ? cause : new VectorStoreError({ reason: "Unavailable", message, cause })

const fsyncDir = async (dir: string) => {
  const handle = await fs.open(dir, "r")
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

const exists = (file: string) => fs.access(file).then(() => true, () => false)

/** Writes a snapshot of `c` durably as `<dir>/snapshot` (temp file, fsync, rename, fsync dir). */
const writeSnapshotFile = async (c: Collection, generation: number, sync: boolean): Promise<number> => {
  const temp = path.join(c.dir, `${SNAPSHOT}.${randomBytes(4).toString("hex")}.tmp`)
  const handle = await fs.open(temp, "w")
  let bytes = 0
  try {
    for (const chunk of encodeSnapshot(c, generation)) {
      await handle.write(chunk)
      bytes += chunk.length
    }
    if (sync) await handle.sync()
  } finally {
    await handle.close()
  }
  await fs.rename(temp, path.join(c.dir, SNAPSHOT))
  if (sync) await fsyncDir(c.dir)
  return bytes
}

/** Opens (creating) the log of `generation` for appending, durably. */
const createWal = async (dir: string, generation: number, sync: boolean) => {
  const handle = await fs.open(path.join(dir, walName(generation)), "a")
  if (sync) await fsyncDir(dir)
  return handle
}

/** Removes every log but the one of `generation`, and temp files: debris of compactions and crashes. */
const removeStale = async (dir: string, generation: number) => {
  for (const entry of await fs.readdir(dir)) {
    if ((entry.startsWith("wal-") && entry !== walName(generation)) || entry.endsWith(".tmp")) {
      await fs.rm(path.join(dir, entry), { force: true })
    }
  }
}

const openWal = async (c: Collection, sync: boolean) => {
  c.wal = await createWal(c.dir, c.generation, sync)
  await removeStale(c.dir, c.generation)
}

const loadCollection = async (directory: string, name: string, sync: boolean): Promise<Collection | undefined> => {
  const dir = path.join(directory, name)
  const snapshotFile = path.join(dir, SNAPSHOT)
  if (!(await exists(snapshotFile))) return undefined
  const c = decodeSnapshot(name, dir, await fs.readFile(snapshotFile))
  const walFile = path.join(dir, walName(c.generation))
  if (await exists(walFile)) {
    const buf = await fs.readFile(walFile)
    const valid = replay(c, buf)
    if (valid < buf.length) {
      // A torn tail: cut it so that new records follow a valid prefix.
      await fs.truncate(walFile, valid)
    }
    c.walBytes = valid
  }
  await openWal(c, sync)
  return c
}

// ---------------------------------------------------------------------------------------------------------------
// the service

/**
 * Builds an embedded store over `options.directory`, loading every collection found there. Closing the scope closes
 * the log files.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fn("VectorStore/Embedded.make")(function*(options: Options) {
  const directory = path.resolve(options.directory)
  const sync = options.fsync ?? true
  const compactAfter = options.compactAfterBytes ?? 64 * 1024 * 1024
  const collections = new Map<string, Collection>()
  // One writer at a time: writes are ordered in the log exactly as they are applied in memory.
  const lock = yield* Semaphore.make(1)
  const exclusive = <A, E>(effect: Effect.Effect<A, E>) => lock.withPermit(Effect.uninterruptible(effect))

  yield* Effect.tryPromise({
    try: async () => {
      await fs.mkdir(directory, { recursive: true })
      for (const entry of await fs.readdir(directory, { withFileTypes: true })) {
        if (!entry.isDirectory()) continue
        if (entry.name.includes(".dropped-")) {
          await fs.rm(path.join(directory, entry.name), { recursive: true, force: true })
          continue
        }
        if (!/^[A-Za-z0-9_-]{1,128}$/.test(entry.name)) continue
        const c = await loadCollection(directory, entry.name, sync)
        if (c !== undefined) collections.set(entry.name, c)
      }
    },
    catch: io(`Cannot open the vector store directory ${directory}`)
  })

  yield* Effect.addFinalizer(() =>
    Effect.promise(async () => {
      for (const c of collections.values()) await c.wal?.close().catch(() => undefined)
      collections.clear()
    })
  )

  const info = (c: Collection): CollectionInfo => ({
    name: c.name,
    dimensions: c.dimensions,
    distance: "Cosine",
    embedder: c.embedder,
    count: c.size
  })

  const get = (name: string): Effect.Effect<Collection, VectorStoreError> =>
    Effect.flatMap(validateName(name), (name) => {
      const c = collections.get(name)
      return c === undefined
        ? Effect.fail(new VectorStoreError({ reason: "NotFound", message: `No collection "${name}"` }))
        : Effect.succeed(c)
    })

  /** Appends one record durably, then applies it; on a failed write the log is cut back to its previous length. */
  const append = (c: Collection, record: Buffer, apply: () => void) =>
    Effect.tryPromise({
      try: async () => {
        if (c.broken !== undefined) {
          throw new VectorStoreError({
            reason: "Unavailable",
            message: `Collection "${c.name}" refuses writes after an I/O failure; reopen the store`,
            cause: c.broken
          })
        }
        const wal = c.wal!
        try {
          await wal.write(record)
          if (sync) await wal.datasync()
        } catch (error) {
          // Cut a partial record off, or later records would follow garbage and be lost on replay.
          await wal.truncate(c.walBytes).catch((cause) => {
            c.broken = cause
          })
          throw error
        }
        c.walBytes += record.length
        apply()
        if (c.walBytes > Math.max(compactAfter, c.snapshotBytes)) {
          // The batch is committed whatever happens here; a failed compaction is retried on a later write.
          return compact(c).then(() => undefined, (error: unknown) => error)
        }
        return undefined
      },
      catch: io(`Cannot write to collection "${c.name}"`)
    }).pipe(
      Effect.flatMap((compactionError) =>
        compactionError === undefined
          ? Effect.void
          : Effect.logWarning(`Compaction of collection "${c.name}" failed`, compactionError).pipe(
            Effect.annotateLogs({ service: "vector-store" })
          )
      )
    )

  const compact = async (c: Collection) => {
    const next = c.generation + 1
    // The rename inside is the commit point: from then on the disk state is snapshot(next) + wal-next.
    const bytes = await writeSnapshotFile(c, next, sync)
    let handle: fs.FileHandle
    try {
      handle = await createWal(c.dir, next, sync)
    } catch (error) {
      // Appending to the old log now would write where no reopen reads: refuse writes until reopened.
      c.broken = error
      throw error
    }
    const old = c.wal
    c.wal = handle
    c.generation = next
    c.walBytes = 0
    c.snapshotBytes = bytes
    await old?.close().catch(() => undefined)
    await removeStale(c.dir, next).catch(() => undefined)
  }

  const prepare = (c: Collection, tenantId: TenantId, points: ReadonlyArray<Point>) =>
    Effect.forEach(points, (point) =>
      Effect.gen(function*() {
        const vector = yield* normalize(c.name, c.dimensions, point.vector)
        let json: string
        try {
          json = JSON.stringify({ ...point.payload, tenant_id: undefined, point_id: undefined })
        } catch (cause) {
          return yield* new VectorStoreError({
            reason: "InvalidInput",
            message: `Payload of "${point.id}" is not JSON`,
            cause
          })
        }
        return { tenant: tenantId, id: point.id, json, vector } satisfies Prepared
      }))

  const selectIds = (c: Collection, tenantId: TenantId, filter: Filter.Filter | undefined): Array<string> => {
    const ids: Array<string> = []
    for (let slot = 0; slot < c.size; slot++) {
      if (c.tenants[slot] === tenantId && (filter === undefined || Filter.matches(filter, c.payloads[slot]!))) {
        ids.push(c.ids[slot]!)
      }
    }
    return ids
  }

  const createCollection = async (name: string, dimensions: number, embedder: string | undefined) => {
    const dir = path.join(directory, name)
    // Whatever is there without a snapshot is the debris of an interrupted creation.
    await fs.rm(dir, { recursive: true, force: true })
    await fs.mkdir(dir, { recursive: true })
    if (sync) await fsyncDir(directory)
    const c = emptyCollection(name, dir, dimensions, embedder)
    c.snapshotBytes = await writeSnapshotFile(c, c.generation, sync)
    await openWal(c, sync)
    return c
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
      return yield* exclusive(Effect.gen(function*() {
        const existing = collections.get(name)
        if (existing !== undefined) {
          if (existing.dimensions !== spec.dimensions) {
            return yield* DimensionMismatch.of(name, existing.dimensions, spec.dimensions, "the embedder")
          }
          return info(existing)
        }
        const c = yield* Effect.tryPromise({
          try: () => createCollection(name, spec.dimensions, spec.embedder),
          catch: io(`Cannot create collection "${name}"`)
        })
        collections.set(name, c)
        return info(c)
      }))
    }),

    collectionInfo: (name) =>
      Effect.map(validateName(name), (name) => Option.map(Option.fromUndefinedOr(collections.get(name)), info)),

    listCollections: Effect.sync(() => Array.from(collections.values(), info)),

    upsert: Effect.fn("VectorStore.upsert")(
      function*(collection: string, tenantId: TenantId, points: ReadonlyArray<Point>) {
        if (points.length === 0) return
        const c = yield* get(collection)
        const prepared = yield* prepare(c, tenantId, points)
        const record = encodeUpsert(prepared, c.dimensions)
        yield* exclusive(Effect.suspend(() => {
          const current = collections.get(c.name)
          if (current !== c) {
            return Effect.fail(new VectorStoreError({ reason: "NotFound", message: `No collection "${c.name}"` }))
          }
          return append(c, record, () => {
            for (const p of prepared) {
              applyUpsert(c, p.tenant, p.id, JSON.parse(p.json) as Record<string, unknown>, p.vector)
            }
          })
        }))
      }
    ),

    delete: Effect.fn("VectorStore.delete")(function*(collection: string, tenantId: TenantId, selector: Selector) {
      const filter = "filter" in selector ? yield* Filter.validate(selector.filter) : undefined
      yield* exclusive(Effect.gen(function*() {
        const c = yield* get(collection)
        const ids = "ids" in selector
          ? selector.ids.filter((id) => c.index.has(keyOf(tenantId, id)))
          : selectIds(c, tenantId, filter)
        if (ids.length === 0) return
        yield* append(c, encodeDelete(tenantId, ids), () => {
          for (const id of ids) applyDelete(c, tenantId, id)
        })
      }))
    }),

    search: Effect.fn("VectorStore.search")(function*(collection: string, tenantId: TenantId, request: SearchRequest) {
      const filter = request.filter === undefined ? undefined : yield* Filter.validate(request.filter)
      const c = yield* get(collection)
      const query = yield* normalize(c.name, c.dimensions, request.vector, "the query vector")
      const limit = Math.min(Math.max(0, Math.floor(request.limit)), 10_000)
      if (limit === 0) return []
      const hits = topK(
        c,
        query,
        limit,
        (slot) => c.tenants[slot] === tenantId && (filter === undefined || Filter.matches(filter, c.payloads[slot]!)),
        request.scoreThreshold ?? -Infinity
      )
      return hits.map(({ score, slot }): ScoredPoint => ({
        id: c.ids[slot]!,
        score,
        payload: structuredClone(c.payloads[slot]!)
      }))
    }),

    count: Effect.fn("VectorStore.count")(
      function*(collection: string, tenantId: TenantId | undefined, filter?: Filter.Filter) {
        const valid = filter === undefined ? undefined : yield* Filter.validate(filter)
        const c = yield* get(collection)
        if (tenantId === undefined && valid === undefined) return c.size
        let n = 0
        for (let slot = 0; slot < c.size; slot++) {
          if (
            (tenantId === undefined || c.tenants[slot] === tenantId) &&
            (valid === undefined || Filter.matches(valid, c.payloads[slot]!))
          ) n++
        }
        return n
      }
    ),

    snapshot: Effect.fn("VectorStore.snapshot")(function*(collection: string) {
      const c = yield* get(collection)
      // Synchronous: no write can interleave, so the copy is consistent.
      const bytes = Buffer.concat(Array.from(encodeSnapshot(c, 0)))
      return makeSnapshot({
        collection: c.name,
        format,
        bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
        count: c.size,
        dimensions: c.dimensions
      })
    }),

    restore: Effect.fn("VectorStore.restore")(function*(collection: string, bytes: Uint8Array) {
      const name = yield* validateName(collection)
      const dir = path.join(directory, name)
      const restored = yield* Effect.try({
        try: () => decodeSnapshot(name, dir, bytes),
        catch: (cause) =>
          cause instanceof VectorStoreError ? cause : corrupt(`Snapshot bytes for "${name}" are malformed`, cause)
      })
      return yield* exclusive(Effect.tryPromise({
        try: async () => {
          const existing = collections.get(name)
          if (existing === undefined) {
            await fs.rm(dir, { recursive: true, force: true })
            await fs.mkdir(dir, { recursive: true })
            if (sync) await fsyncDir(directory)
          }
          // A generation above the current one: the current log is never replayed over the restored state.
          restored.generation = (existing?.generation ?? 0) + 1
          restored.snapshotBytes = await writeSnapshotFile(restored, restored.generation, sync)
          await openWal(restored, sync)
          await existing?.wal?.close()
          collections.set(name, restored)
          return info(restored)
        },
        catch: io(`Cannot restore collection "${name}"`)
      }))
    }),

    drop: Effect.fn("VectorStore.drop")(function*(collection: string) {
      const name = yield* validateName(collection)
      yield* exclusive(Effect.tryPromise({
        try: async () => {
          const c = collections.get(name)
          collections.delete(name)
          await c?.wal?.close()
          const dir = path.join(directory, name)
          if (!(await exists(dir))) return
          // Rename first (atomic), then delete: a crash never leaves a half-deleted collection that loads.
          const trash = path.join(directory, `${name}.dropped-${randomBytes(4).toString("hex")}`)
          await fs.rename(dir, trash)
          if (sync) await fsyncDir(directory)
          await fs.rm(trash, { recursive: true, force: true })
        },
        catch: io(`Cannot drop collection "${name}"`)
      }))
    })
  })
})

/**
 * The embedded store as a layer.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { Embedded } from "@ouroboros/vector-store"
 * const live = Embedded.layer({ directory: "./data/vectors" })
 */
export const layer = (options: Options): Layer.Layer<VectorStore, VectorStoreError> =>
  Layer.effect(VectorStore, make(options))
