/**
 * Recomputes everything the log claims and names the first entry that is not what it should be. It works from a
 * store (the database) or from an export (NDJSON, {@link exportLines}), so a copy can be checked offline, away from
 * the server that wrote it.
 *
 * For every position, in order: the leaf hash is there and well-formed; the entry's content (when not pruned) hashes
 * to that leaf (`SHA-256(0x00 ‖ content)`), is canonical JSON (RFC 8785), names its own position, and agrees with the
 * columns queries use. Every stored checkpoint's signature is checked against the pinned verifier key and its root
 * against the root recomputed over the leaves; so are the roots the caller trusts (the running log's own). Content
 * may be missing only inside ranges a `retention.prune` entry of the log announced; a subject key may be missing only
 * when a `retention.erasure` entry names it.
 *
 * What it cannot do: name the exact entry of a change that rewrote a leaf hash consistently with its content (and
 * every later position), since the leaves are then self-consistent. Such a change still breaks the root of every
 * checkpoint signed after it, and is reported as a range: from the last checkpoint that still matches to the first
 * that does not.
 *
 * @since 0.1.0
 */
import canonicalize from "canonicalize"
import { Effect, Option, Predicate, Result, Schema, Stream } from "effect"
import * as Os from "node:os"
import type * as AuditEvent from "./AuditEvent.js"
import type * as AuditStore from "./AuditStore.js"
import * as Checkpoint from "./Checkpoint.js"
import * as Canonical from "./internal/canonical.js"
import * as HashWorker from "./internal/hashWorker.js"
import { Frontier } from "./internal/tree.js"
import * as Merkle from "./Merkle.js"

// -----------------------------------------------------------------------------
// result
// -----------------------------------------------------------------------------

/**
 * What can be wrong.
 *
 * - `LeafMissing`, `LeafMalformed`: a position has no leaf hash, or one that is not 32 bytes.
 * - `EntryWithoutLeaf`: content at a position outside the tree.
 * - `EntryHashMismatch`: the content does not hash to the leaf (the entry was changed).
 * - `EntryMalformed`, `EntryNotCanonical`: the content is not an entry, or not its canonical JSON.
 * - `EntryIndexMismatch`: the content names another position (moved, inserted or deleted rows).
 * - `EntryColumnsMismatch`: a query column disagrees with the content.
 * - `ContentMissing`: content removed outside any announced pruning.
 * - `CheckpointMalformed`, `CheckpointBadSignature`: a stored checkpoint that is not one, or not signed by the key.
 * - `CheckpointMismatch`, `RootMismatch`: the tree recomputed from the leaves does not have the root of a signed
 *   checkpoint, or of a root the caller trusts: something in `range` was changed.
 * - `CheckpointBeyondLog`: a checkpoint signs more entries than the log holds (entries removed at the end).
 * - `KeyDestroyedWithoutErasure`: a subject key is gone although no erasure entry names it.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ProblemKind = Schema.Literals([
  "LeafMissing",
  "LeafMalformed",
  "EntryWithoutLeaf",
  "EntryHashMismatch",
  "EntryMalformed",
  "EntryNotCanonical",
  "EntryIndexMismatch",
  "EntryColumnsMismatch",
  "ContentMissing",
  "CheckpointMalformed",
  "CheckpointBadSignature",
  "CheckpointMismatch",
  "RootMismatch",
  "CheckpointBeyondLog",
  "KeyDestroyedWithoutErasure"
])

/**
 * @since 0.1.0
 * @category models
 */
export type ProblemKind = typeof ProblemKind.Type

/**
 * One thing found wrong: at an `index`, or somewhere in a `range` `[start, end)`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Problem = Schema.Struct({
  kind: ProblemKind,
  index: Schema.optionalKey(Schema.Int),
  range: Schema.optionalKey(Schema.Tuple([Schema.Int, Schema.Int])),
  detail: Schema.String
}).annotate({ identifier: "AuditVerifyProblem" })

/**
 * @since 0.1.0
 * @category models
 */
export type Problem = typeof Problem.Type

/**
 * The outcome of a verification: plain JSON.
 *
 * @since 0.1.0
 * @category schemas
 */
export const VerifyResult = Schema.Struct({
  ok: Schema.Boolean,
  origin: Schema.String,
  /** The verifier key the signatures were checked against. */
  verifierKey: Schema.String,
  /** Positions examined (the tree size). */
  size: Schema.Int,
  /** The root recomputed over every leaf, base64. */
  rootHash: Schema.String,
  /** Entries whose content was checked. */
  entries: Schema.Int,
  /** Positions whose content was pruned by an announced pruning. */
  pruned: Schema.Int,
  /** Signed checkpoints checked. */
  checkpoints: Schema.Int,
  /** The largest checkpoint that verified. */
  latestCheckpoint: Schema.optionalKey(Schema.Struct({ size: Schema.Int, rootHash: Schema.String })),
  /** Entries after the latest verified checkpoint: internally consistent, not yet covered by a signature. */
  unsignedEntries: Schema.Int,
  /** Where the log first differs from what it should be (for a range, its start); null when nothing is wrong. */
  firstBadIndex: Schema.NullOr(Schema.Int),
  problemCount: Schema.Int,
  /** The first problems found (at most 100), by position. */
  problems: Schema.Array(Problem)
}).annotate({ identifier: "AuditVerifyResult" })

/**
 * @since 0.1.0
 * @category models
 */
export type VerifyResult = typeof VerifyResult.Type

/**
 * Progress of a verification: `done` of `total` positions.
 *
 * @since 0.1.0
 * @category models
 */
export interface Progress {
  readonly phase: "entries" | "keys" | "done"
  readonly done: number
  readonly total: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The pinned key that must have signed the checkpoints. */
  readonly verifier: Checkpoint.Verifier
  /** The verifier key string (reported in the result). */
  readonly verifierKey: string
  /** The log's origin: checkpoints of another log are malformed here. */
  readonly origin: string
  /** Roots known good from elsewhere (the running log's tree, a witness's copy). */
  readonly trustedRoots?: ReadonlyArray<{ readonly size: number; readonly rootHash: Uint8Array }> | undefined
  readonly onProgress?: ((progress: Progress) => Effect.Effect<void>) | undefined
  /** Positions per read from a store (default 10,000). */
  readonly windowSize?: number | undefined
  /**
   * Hash on a worker thread while this one parses (`verifyStore` only). Default: when the log has at least
   * {@link parallelFrom} positions and the machine more than one core. The result is the same either way.
   */
  readonly parallel?: boolean | undefined
}

/**
 * The size from which `verifyStore` hashes on a worker thread by default (starting one costs a few milliseconds).
 *
 * @since 0.1.0
 * @category constants
 */
export const parallelFrom = 50_000

// -----------------------------------------------------------------------------
// the check itself
// -----------------------------------------------------------------------------

const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64")
const maxProblems = 100

const equalBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

const isRanges = (u: unknown): u is ReadonlyArray<readonly [number, number]> =>
  Array.isArray(u) &&
  u.every((r) => Array.isArray(r) && r.length === 2 && Number.isSafeInteger(r[0]) && Number.isSafeInteger(r[1]))

/** One position as a source gives it. */
interface Slot {
  readonly index: number
  readonly leafHash: Uint8Array | undefined
  readonly content: string | undefined
  /** The query columns, when the source is a store. */
  readonly columns?: AuditStore.StoredEntry | undefined
}

/** What the parsing half found at a position, held until its leaf is settled (see `Verification.settle`). */
interface Inspected {
  /** The parsing half's problems, reported after the leaf's own, as one pass reports them. */
  readonly problems: ReadonlyArray<Problem>
  /** What the entry may vouch for, if it hashes to its leaf. */
  readonly prunes: ReadonlyArray<readonly [number, number]> | undefined
  readonly erasedKeys: ReadonlyArray<string> | undefined
}

const noProblems: ReadonlyArray<Problem> = []
/** What nearly every entry inspects to: one object for all of them. */
const clean: Inspected = { problems: noProblems, prunes: undefined, erasedKeys: undefined }

/**
 * The tree the verification folds the leaves into: its own ({@link Frontier}), or, when a worker hashes, the roots the
 * worker computed at the sizes asked for.
 */
class VerifiedTree {
  private readonly frontier = new Frontier()
  private readonly roots = new Map<number, Uint8Array>()
  private remote = false
  size = 0

  /** From now on the leaves are folded elsewhere, and the roots given by {@link provide}. */
  useRemote(): void {
    this.remote = true
  }

  provide(size: number, root: Uint8Array): void {
    this.roots.set(size, root)
  }

  push(leaf: Uint8Array): void {
    if (!this.remote) this.frontier.push(leaf)
    this.size++
  }

  root(): Uint8Array {
    if (!this.remote) return this.frontier.root()
    if (this.size === 0) return Merkle.emptyRoot
    const root = this.roots.get(this.size)
    if (root === undefined) throw new Error(`audit verification: no root computed at ${this.size}`)
    return root
  }
}

const zeroHash = new Uint8Array(Merkle.hashSize)

class Verification {
  readonly tree = new VerifiedTree()
  private readonly problems: Array<Problem> = []
  private problemCount = 0
  private firstBad: number | null = null
  private entries = 0
  private checkpointsChecked = 0
  private lastGood: { size: number; rootHash: Uint8Array } | undefined
  private lastGoodSize = 0
  private readonly missing: Array<[number, number]> = []
  private readonly authorized: Array<[number, number]> = []
  readonly erasedKeys = new Set<string>()
  readonly keyFirstUse = new Map<string, number>()
  readonly trusted: Map<number, Uint8Array>

  constructor(private readonly options: Options) {
    this.trusted = new Map((options.trustedRoots ?? []).map((r) => [r.size, r.rootHash]))
  }

  get size() {
    return this.tree.size
  }

  problem(problem: Problem): void {
    this.problemCount++
    const at = problem.index ?? problem.range?.[0]
    if (at !== undefined && (this.firstBad === null || at < this.firstBad)) this.firstBad = at
    this.problems.push(problem)
  }

  /** One position, both halves on this thread. */
  slot(slot: Slot): void {
    while (this.tree.size < slot.index) {
      // A gap: positions no source row names at all.
      this.problem({ kind: "LeafMissing", index: this.tree.size, detail: "no leaf hash and no entry" })
      this.tree.push(zeroHash)
      this.afterLeaf()
    }
    const leaf = slot.leafHash
    const inspected = slot.content === undefined ? undefined : this.inspect(slot.index, slot.content, slot.columns)
    const hashOk = slot.content !== undefined && leaf !== undefined && leaf.length === Merkle.hashSize &&
      equalBytes(Merkle.leafHashOfText(slot.content), leaf)
    this.settle(slot.index, leaf, slot.content !== undefined, hashOk, inspected)
  }

  /**
   * The parsing half of a position with content: everything that does not depend on hashes. Positions are inspected
   * in order (the first use of a key is the first position inspected), each before it is settled.
   */
  inspect(index: number, content: string, columns: AuditStore.StoredEntry | undefined): Inspected {
    this.entries++
    let parsed: unknown
    try {
      parsed = JSON.parse(content)
    } catch {
      return {
        problems: [{ kind: "EntryMalformed", index, detail: "the content is not JSON" }],
        prunes: undefined,
        erasedKeys: undefined
      }
    }
    const entry = parsed as Record<string, any>
    if (
      !Predicate.isObject(parsed) || entry.v !== 1 || typeof entry.id !== "string" || typeof entry.type !== "string" ||
      typeof entry.time !== "string" || !Predicate.isObject(entry.sealed) || typeof entry.sealed.keyId !== "string" ||
      !Predicate.isObject(entry.resource)
    ) {
      return {
        problems: [{ kind: "EntryMalformed", index, detail: "the content is not an audit entry" }],
        prunes: undefined,
        erasedKeys: undefined
      }
    }
    // No closure per entry: this runs a million times in a verification.
    let problems = noProblems
    if (entry.index !== index) {
      problems = [{ kind: "EntryIndexMismatch", index, detail: `the entry says it is at ${String(entry.index)}` }]
    }
    if (!isCanonical(parsed, content)) {
      problems = [...problems, {
        kind: "EntryNotCanonical",
        index,
        detail: "the content is not canonical JSON (RFC 8785)"
      }]
    }
    const mismatch = columns === undefined ? undefined : columnMismatch(entry, columns)
    if (mismatch !== undefined) {
      problems = [...problems, {
        kind: "EntryColumnsMismatch",
        index,
        detail: `the ${mismatch} column disagrees with the content`
      }]
    }
    const keyId: string = entry.sealed.keyId
    if (!this.keyFirstUse.has(keyId)) this.keyFirstUse.set(keyId, index)
    const prunes = entry.type === "retention.prune" && isRanges(entry.details?.ranges)
      ? entry.details.ranges as ReadonlyArray<readonly [number, number]>
      : undefined
    const erasedKeys = entry.type === "retention.erasure" && Array.isArray(entry.details?.keyIds)
      ? (entry.details.keyIds as ReadonlyArray<unknown>).filter(Predicate.isString)
      : undefined
    return problems === noProblems && prunes === undefined && erasedKeys === undefined
      ? clean
      : { problems, prunes, erasedKeys }
  }

  /**
   * The hashing half of the next position: its leaf joins the tree. `hashOk`: the content hashes to the leaf (false
   * without content or a well-formed leaf).
   */
  settle(
    index: number,
    leaf: Uint8Array | undefined,
    hasContent: boolean,
    hashOk: boolean,
    inspected: Inspected | undefined
  ): void {
    const leafValid = leaf !== undefined && leaf.length === Merkle.hashSize
    if (leaf === undefined) {
      this.problem({ kind: "LeafMissing", index, detail: "no leaf hash at this position" })
    } else if (!leafValid) {
      this.problem({ kind: "LeafMalformed", index, detail: `a leaf hash of ${leaf.length} bytes` })
    }
    this.tree.push(leafValid ? leaf : zeroHash)
    if (!hasContent) {
      if (leaf !== undefined) this.addMissing(index)
    } else {
      if (leafValid && !hashOk) {
        this.problem({ kind: "EntryHashMismatch", index, detail: "the content does not hash to the leaf" })
      }
      if (inspected !== undefined) {
        for (const problem of inspected.problems) this.problem(problem)
        // Only entries that hash to their leaf can vouch for pruned content or destroyed keys.
        if (hashOk) {
          for (const [from, to] of inspected.prunes ?? []) {
            if (from <= to && to < index) this.authorized.push([from, to])
          }
          for (const id of inspected.erasedKeys ?? []) this.erasedKeys.add(id)
        }
      }
    }
    this.afterLeaf()
  }

  private addMissing(index: number) {
    const last = this.missing[this.missing.length - 1]
    if (last !== undefined && last[1] === index - 1) last[1] = index
    else this.missing.push([index, index])
  }

  private afterLeaf() {
    const size = this.tree.size
    const trusted = this.trusted.get(size)
    if (trusted !== undefined && !equalBytes(trusted, this.tree.root())) {
      this.problem({
        kind: "RootMismatch",
        range: [this.lastGoodSize, size],
        detail: `the tree of ${size} entries does not have the root the running log holds`
      })
    }
  }

  checkpoint(note: string): void {
    this.checkpointsChecked++
    const opened = Checkpoint.openCheckpoint(note, this.options.verifier, this.options.origin)
    if (Result.isFailure(opened)) {
      const bad = opened.failure.reason === "BadSignature" || opened.failure.reason === "UnknownKey"
      // The size is unsigned here, so the problem gets no position.
      this.problem({
        kind: bad ? "CheckpointBadSignature" : "CheckpointMalformed",
        detail: opened.failure.message
      })
      return
    }
    const checkpoint = opened.success
    if (checkpoint.size > this.tree.size) {
      this.problem({
        kind: "CheckpointBeyondLog",
        range: [this.tree.size, checkpoint.size],
        detail: `a checkpoint signs ${checkpoint.size} entries; the log has ${this.tree.size}`
      })
      return
    }
    if (checkpoint.size !== this.tree.size) {
      this.problem({ kind: "CheckpointMalformed", detail: `a checkpoint of size ${checkpoint.size} is out of order` })
      return
    }
    if (!equalBytes(checkpoint.rootHash, this.tree.root())) {
      this.problem({
        kind: "CheckpointMismatch",
        range: [this.lastGoodSize, checkpoint.size],
        detail: `the tree of ${checkpoint.size} entries does not have the signed root: changed between ` +
          `${this.lastGoodSize} and ${checkpoint.size - 1}`
      })
      return
    }
    if (checkpoint.size >= this.lastGoodSize) {
      this.lastGoodSize = checkpoint.size
      this.lastGood = { size: checkpoint.size, rootHash: checkpoint.rootHash }
    }
  }

  /** Content missing outside every announced pruning. */
  private unauthorizedMissing(): Array<[number, number]> {
    const allowed = this.authorized.slice().sort((a, b) => a[0] - b[0])
    const merged: Array<[number, number]> = []
    for (const [from, to] of allowed) {
      const last = merged[merged.length - 1]
      if (last !== undefined && from <= last[1] + 1) last[1] = Math.max(last[1], to)
      else merged.push([from, to])
    }
    const out: Array<[number, number]> = []
    let j = 0
    for (const [from, to] of this.missing) {
      let pos = from
      while (pos <= to) {
        while (j < merged.length && merged[j]![1] < pos) j++
        const cover = merged[j]
        if (cover === undefined || cover[0] > pos) {
          const end = cover === undefined ? to : Math.min(to, cover[0] - 1)
          out.push([pos, end])
          pos = end + 1
        } else {
          pos = cover[1] + 1
        }
      }
    }
    return out
  }

  result(missingKeys: ReadonlyArray<string>): VerifyResult {
    for (const [size] of this.trusted) {
      if (size > this.tree.size) {
        this.problem({
          kind: "RootMismatch",
          range: [this.tree.size, size],
          detail: `the running log holds ${size} entries; the store has ${this.tree.size}`
        })
      }
    }
    const uncovered = this.unauthorizedMissing()
    let pruned = 0
    for (const [from, to] of this.missing) pruned += to - from + 1
    for (const [from, to] of uncovered) {
      pruned -= to - from + 1
      this.problem({
        kind: "ContentMissing",
        ...(from === to ? { index: from } : { range: [from, to + 1] as const }),
        detail: from === to
          ? "the entry was removed, and no pruning announced it"
          : `entries ${from} to ${to} were removed, and no pruning announced them`
      })
    }
    for (const keyId of missingKeys) {
      this.problem({
        kind: "KeyDestroyedWithoutErasure",
        ...(this.keyFirstUse.has(keyId) ? { index: this.keyFirstUse.get(keyId)! } : {}),
        detail: `the subject key ${keyId} is gone, and no erasure names it`
      })
    }
    const sorted = this.problems
      .slice()
      .sort((a, b) => (a.index ?? a.range?.[0] ?? -1) - (b.index ?? b.range?.[0] ?? -1))
      .slice(0, maxProblems)
    return {
      ok: this.problemCount === 0,
      origin: this.options.origin,
      verifierKey: this.options.verifierKey,
      size: this.tree.size,
      rootHash: base64(this.tree.root()),
      entries: this.entries,
      pruned,
      checkpoints: this.checkpointsChecked,
      ...(this.lastGood === undefined
        ? {}
        : { latestCheckpoint: { size: this.lastGood.size, rootHash: base64(this.lastGood.rootHash) } }),
      unsignedEntries: this.tree.size - this.lastGoodSize,
      firstBadIndex: this.firstBad,
      problemCount: this.problemCount,
      problems: sorted
    }
  }
}

const isCanonical = (parsed: Record<string, any>, content: string): boolean => {
  try {
    // The fast path: serialize the shape the writer produces, by hand (as the writer does), and compare. An entry of
    // another shape (extra members, say) is checked by the general serializer.
    const details = parsed.details === undefined ? undefined : canonicalize(parsed.details)
    if (Canonical.entry(parsed as AuditEvent.Entry, details) === content) return true
    return canonicalize(parsed) === content
  } catch {
    // A value RFC 8785 cannot encode (a lone surrogate escaped in the text), or not the writer's shape.
    return false
  }
}

const columnMismatch = (entry: Record<string, any>, columns: AuditStore.StoredEntry): string | undefined => {
  if (columns.id !== entry.id) return "id"
  if (columns.time !== Date.parse(entry.time)) return "time"
  if (columns.type !== entry.type) return "type"
  if (columns.tenantId !== (entry.tenantId ?? null)) return "tenant_id"
  if (columns.keyId !== entry.sealed.keyId) return "key_id"
  if (columns.action !== entry.action) return "action"
  if (columns.resourceType !== entry.resource.type) return "resource_type"
  if (columns.resourceId !== (entry.resource.id ?? null)) return "resource_id"
  if (columns.outcome !== entry.outcome) return "outcome"
  if (columns.correlationId !== (entry.correlationId ?? null)) return "correlation_id"
  return undefined
}

const report = (options: Options, progress: Progress) =>
  options.onProgress === undefined ? Effect.void : options.onProgress(progress)

// -----------------------------------------------------------------------------
// sources
// -----------------------------------------------------------------------------

/**
 * Verifies the log in a store. Reads it in windows of positions (one query each for leaves, entries and
 * checkpoints), so memory stays flat whatever the size.
 *
 * @since 0.1.0
 * @category verification
 */
export const verifyStore = (
  store: AuditStore.AuditStore["Service"],
  options: Options
): Effect.Effect<VerifyResult, AuditStore.AuditStoreError> =>
  Effect.gen(function*() {
    const check = new Verification(options)
    const windowSize = Math.max(1, options.windowSize ?? 10_000)
    // The latest checkpoint first: whatever is appended while this runs is beyond both it and the extent.
    const latest = yield* store.latestCheckpoint
    const extent = yield* store.extent
    for (const checkpoint of yield* store.checkpoints(0, 0)) check.checkpoint(checkpoint.note)
    if (extent.from < 0) {
      const stray = yield* store.window(extent.from, 0)
      for (const entry of stray.entries) {
        check.problem({ kind: "EntryWithoutLeaf", index: entry.index, detail: "an entry at a negative position" })
      }
    }
    const worker = (options.parallel ?? (extent.to >= parallelFrom && Os.availableParallelism() > 1))
      ? yield* HashWorker.make
      : undefined
    if (worker !== undefined) check.tree.useRemote()
    for (let from = 0; from < extent.to; from += windowSize) {
      const to = Math.min(extent.to, from + windowSize)
      const window = yield* store.window(from, to)
      // Both lists are in index order: walked side by side.
      const leaves = window.leaves
      const entries = window.entries
      const checkpoints = window.checkpoints
      const leafAt: Array<Uint8Array | undefined> = new Array(to - from)
      const entryAt: Array<AuditStore.StoredEntry | undefined> = new Array(to - from)
      let l = 0
      let e = 0
      for (let index = from; index < to; index++) {
        while (l < leaves.length && leaves[l]!.index < index) l++
        while (e < entries.length && entries[e]!.index < index) e++
        leafAt[index - from] = leaves[l]?.index === index ? leaves[l]!.hash : undefined
        entryAt[index - from] = entries[e]?.index === index ? entries[e] : undefined
      }
      let c = 0
      // Every position, even one with neither leaf nor entry (a gap), before the checkpoints that end there.
      const checkpointsAt = (index: number) => {
        while (c < checkpoints.length && checkpoints[c]!.size <= index + 1) {
          if (checkpoints[c]!.size === index + 1) check.checkpoint(checkpoints[c]!.note)
          c++
        }
      }
      if (worker === undefined) {
        for (let index = from; index < to; index++) {
          const entry = entryAt[index - from]
          check.slot({ index, leafHash: leafAt[index - from], content: entry?.content, columns: entry })
          checkpointsAt(index)
        }
      } else {
        // The worker hashes this window while this thread parses it; then both halves are settled in order.
        const count = to - from
        const packedLeaves = new Uint8Array(count * Merkle.hashSize)
        const leafValid = new Uint8Array(count)
        for (let i = 0; i < count; i++) {
          const leaf = leafAt[i]
          if (leaf !== undefined && leaf.length === Merkle.hashSize) {
            packedLeaves.set(leaf, i * Merkle.hashSize)
            leafValid[i] = 1
          }
        }
        const rootsAt = new Set<number>([to])
        for (const checkpoint of checkpoints) {
          if (checkpoint.size > from && checkpoint.size <= to) rootsAt.add(checkpoint.size)
        }
        for (const size of check.trusted.keys()) if (size > from && size <= to) rootsAt.add(size)
        const sizes = Array.from(rootsAt).sort((a, b) => a - b)
        const { offsets, text } = HashWorker.packContents(entryAt.map((entry) => entry?.content))
        const hashed = worker.submit({ from, count, leaves: packedLeaves, leafValid, text, offsets, rootsAt: sizes })
        const inspected = entryAt.map((entry, i) =>
          entry === undefined ? undefined : check.inspect(from + i, entry.content, entry)
        )
        const { hashOk, roots } = yield* Effect.promise(() => hashed)
        sizes.forEach((size, k) => check.tree.provide(size, roots[k]!))
        for (let i = 0; i < count; i++) {
          check.settle(from + i, leafAt[i], entryAt[i] !== undefined, hashOk[i] === 1, inspected[i])
          checkpointsAt(from + i)
        }
      }
      yield* report(options, { phase: "entries", done: to, total: extent.to })
    }
    // Checkpoints of a larger log than the one stored: entries were removed at the end.
    if (latest !== undefined && latest.size > check.size) {
      for (const checkpoint of yield* store.checkpoints(check.size + 1, latest.size)) check.checkpoint(checkpoint.note)
    }
    yield* report(options, { phase: "keys", done: 0, total: check.keyFirstUse.size })
    const keyIds = Array.from(check.keyFirstUse.keys())
    const existing = new Set<string>()
    for (let i = 0; i < keyIds.length; i += 1000) {
      for (const key of yield* store.keysById(keyIds.slice(i, i + 1000))) existing.add(key.keyId)
    }
    const missingKeys = keyIds.filter((id) => !existing.has(id) && !check.erasedKeys.has(id))
    yield* report(options, { phase: "done", done: extent.to, total: extent.to })
    return check.result(missingKeys)
  }).pipe(Effect.scoped, Effect.withSpan("Verifier.verifyStore"))

/**
 * The header line of an export.
 *
 * @since 0.1.0
 * @category export
 */
export const ExportHeader = Schema.Struct({
  format: Schema.Literal("ouroboros-audit-export"),
  version: Schema.Literal(1),
  origin: Schema.String,
  verifierKey: Schema.String,
  size: Schema.Int
})

/**
 * The log as NDJSON lines, for a copy that {@link verifyExport} checks offline: a header
 * (`{"format":"ouroboros-audit-export","version":1,"origin",…}`), then one line per position
 * (`{"index","leafHash","content"}`, no `content` when pruned) with each stored checkpoint (`{"checkpoint": note}`)
 * right after the position that completes it. Subject keys are not exported: a copy verifies without them.
 *
 * @since 0.1.0
 * @category export
 */
export const exportLines = (
  store: AuditStore.AuditStore["Service"],
  options: { readonly origin: string; readonly verifierKey: string; readonly windowSize?: number | undefined }
): Stream.Stream<string, AuditStore.AuditStoreError> => {
  const windowSize = Math.max(1, options.windowSize ?? 10_000)
  return Stream.unwrap(Effect.gen(function*() {
    const extent = yield* store.extent
    const first = yield* store.checkpoints(0, 0)
    const header = JSON.stringify({
      format: "ouroboros-audit-export",
      version: 1,
      origin: options.origin,
      verifierKey: options.verifierKey,
      size: extent.to
    })
    const head = [header, ...first.map((c) => JSON.stringify({ checkpoint: c.note }))]
    const body = Stream.paginate(0, (from: number) =>
      from >= extent.to
        ? Effect.succeed([[], Option.none<number>()] as const)
        : Effect.map(store.window(from, Math.min(extent.to, from + windowSize)), (window) => {
          const to = Math.min(extent.to, from + windowSize)
          const leaves = new Map(window.leaves.map((l) => [l.index, l.hash]))
          const entries = new Map(window.entries.map((e) => [e.index, e.content]))
          const bySize = new Map<number, Array<string>>()
          for (const c of window.checkpoints) bySize.set(c.size, [...(bySize.get(c.size) ?? []), c.note])
          const lines: Array<string> = []
          for (let index = from; index < to; index++) {
            const leaf = leaves.get(index)
            const content = entries.get(index)
            if (leaf !== undefined || content !== undefined) {
              lines.push(JSON.stringify({
                index,
                ...(leaf === undefined ? {} : { leafHash: base64(leaf) }),
                ...(content === undefined ? {} : { content })
              }))
            }
            for (const note of bySize.get(index + 1) ?? []) lines.push(JSON.stringify({ checkpoint: note }))
          }
          return [lines, to >= extent.to ? Option.none<number>() : Option.some(to)] as const
        }))
    return Stream.concat(Stream.fromIterable(head), body)
  }))
}

/**
 * An export that cannot be read as one (a line that is not JSON of the export's shapes).
 *
 * @since 0.1.0
 * @category errors
 */
export class ExportMalformed extends Schema.TaggedError<ExportMalformed>()("ExportMalformed", {
  line: Schema.Int,
  detail: Schema.String
}) {}

/**
 * Verifies an export ({@link exportLines}) line by line. The verifier key is the pinned one from `options`, never the
 * one the export's header names.
 *
 * @since 0.1.0
 * @category verification
 */
export const verifyExport = <E, R>(
  lines: Stream.Stream<string, E, R>,
  options: Options
): Effect.Effect<VerifyResult, E | ExportMalformed, R> =>
  Effect.gen(function*() {
    const check = new Verification(options)
    let lineNumber = 0
    let total = 0
    yield* Stream.runForEach(Stream.filter(lines, (line) => line.trim().length > 0), (line) =>
      Effect.suspend(() => {
        lineNumber++
        let value: any
        try {
          value = JSON.parse(line)
        } catch {
          return Effect.fail(new ExportMalformed({ line: lineNumber, detail: "not JSON" }))
        }
        if (lineNumber === 1) {
          if (value?.format !== "ouroboros-audit-export" || value?.version !== 1) {
            return Effect.fail(new ExportMalformed({ line: 1, detail: "not an audit export header" }))
          }
          total = Number.isSafeInteger(value.size) ? value.size : 0
          return Effect.void
        }
        if (typeof value?.checkpoint === "string") {
          check.checkpoint(value.checkpoint)
          return Effect.void
        }
        if (!Number.isSafeInteger(value?.index) || value.index < check.size) {
          return Effect.fail(new ExportMalformed({ line: lineNumber, detail: "a position out of order" }))
        }
        const leafHash = typeof value.leafHash === "string"
          ? new Uint8Array(Buffer.from(value.leafHash, "base64"))
          : undefined
        const content = typeof value.content === "string" ? value.content : undefined
        check.slot({ index: value.index, leafHash, content })
        return check.size % 10_000 === 0 ? report(options, { phase: "entries", done: check.size, total }) : Effect.void
      }))
    yield* report(options, { phase: "done", done: check.size, total })
    return check.result([])
  }).pipe(Effect.withSpan("Verifier.verifyExport"))
