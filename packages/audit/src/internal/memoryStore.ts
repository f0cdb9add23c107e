/**
 * The audit store in memory: the same contract as the SQL store, its authorization rules for pruning and key
 * destruction included.
 */
import { Effect } from "effect"
import type * as AuditStore from "../AuditStore.js"
import { AuditStoreError } from "./errors.js"

const refKey = (subjectRef: Uint8Array, tenantId: string) => `${Buffer.from(subjectRef).toString("hex")}|${tenantId}`

const refused = (operation: string, message: string) => new AuditStoreError({ operation, message })

const protectedTypes = new Set(["retention.prune", "retention.erasure"])

/** @internal */
export const make = (): AuditStore.AuditStore["Service"] => {
  const leaves: Array<Uint8Array> = []
  const entries: Array<AuditStore.StoredEntry | undefined> = []
  const byId = new Map<string, number>()
  const checkpoints: Array<AuditStore.StoredCheckpoint> = []
  const keys = new Map<string, AuditStore.SubjectKey>()
  const keysByRef = new Map<string, string>()
  const prunes: Array<{ readonly pruneIndex: number; readonly from: number; readonly to: number }> = []
  const erasures = new Map<string, number>()

  const copyBytes = (bytes: Uint8Array) => new Uint8Array(bytes)

  const append: AuditStore.AuditStore["Service"]["append"] = (batch) =>
    Effect.suspend((): Effect.Effect<AuditStore.AppendOutcome, AuditStoreError> => {
      if (batch.expectedSize !== leaves.length) {
        return Effect.succeed({ _tag: "Behind", size: leaves.length } as const)
      }
      const ids = new Set<string>()
      for (const entry of batch.entries) {
        if (byId.has(entry.id) || ids.has(entry.id)) {
          return Effect.fail(refused("append", `duplicate entry id ${entry.id}`))
        }
        ids.add(entry.id)
      }
      batch.entries.forEach((entry, i) => {
        const index = batch.expectedSize + i
        const { leafHash, ...stored } = entry
        leaves.push(copyBytes(leafHash))
        entries[index] = { ...stored, index }
        byId.set(entry.id, index)
      })
      const checkpoint = batch.checkpoint
      if (checkpoint !== undefined && !checkpoints.some((c) => c.size === checkpoint.size)) {
        checkpoints.push({ ...checkpoint, rootHash: copyBytes(checkpoint.rootHash) })
        checkpoints.sort((a, b) => a.size - b.size)
      }
      return Effect.succeed({ _tag: "Appended" } as const)
    })

  const matches = (entry: AuditStore.StoredEntry, query: AuditStore.StoreQuery, keyIds: Set<string> | undefined) =>
    (query.tenantId === undefined || entry.tenantId === query.tenantId) &&
    (keyIds === undefined || (entry.keyId !== null && keyIds.has(entry.keyId))) &&
    (query.type === undefined || entry.type === query.type) &&
    (query.resourceType === undefined || entry.resourceType === query.resourceType) &&
    (query.resourceId === undefined || entry.resourceId === query.resourceId) &&
    (query.correlationId === undefined || entry.correlationId === query.correlationId) &&
    (query.from === undefined || entry.time >= query.from) &&
    (query.to === undefined || entry.time < query.to)

  const query: AuditStore.AuditStore["Service"]["query"] = (q) =>
    Effect.sync(() => {
      const keyIds = q.keyIds === undefined ? undefined : new Set(q.keyIds)
      const out: Array<AuditStore.StoredEntry> = []
      for (let i = Math.min(q.before ?? entries.length, entries.length) - 1; i >= 0 && out.length < q.limit; i--) {
        const entry = entries[i]
        if (entry !== undefined && matches(entry, q, keyIds)) out.push(entry)
      }
      return out
    })

  const pruneCandidates: AuditStore.AuditStore["Service"]["pruneCandidates"] = (selector) =>
    Effect.sync(() => {
      const excludeTypes = new Set(selector.excludeTypes)
      const excludeTenants = new Set(selector.excludeTenants)
      const out: Array<number> = []
      for (let i = 0; i < entries.length && out.length < selector.limit; i++) {
        const entry = entries[i]
        if (entry === undefined || entry.time >= selector.before || protectedTypes.has(entry.type)) continue
        if (selector.tenantId !== undefined && entry.tenantId !== selector.tenantId) continue
        if (selector.type !== undefined && entry.type !== selector.type) continue
        if (excludeTypes.has(entry.type)) continue
        if (entry.tenantId !== null && excludeTenants.has(entry.tenantId)) continue
        if (selector.excludePairs.some(([t, type]) => entry.tenantId === t && entry.type === type)) continue
        out.push(i)
      }
      return out
    })

  const prune: AuditStore.AuditStore["Service"]["prune"] = (pruneIndex, ranges) =>
    Effect.suspend(() => {
      const announcing = entries[pruneIndex]
      if (announcing?.type !== "retention.prune") {
        return Effect.fail(refused("prune", `entry ${pruneIndex} is not a retention.prune entry`))
      }
      const listed = new Set(listedRanges(announcing.content).map(([from, to]) => `${from}:${to}`))
      for (const [from, to] of ranges) {
        if (!listed.has(`${from}:${to}`)) {
          return Effect.fail(refused("prune", `the range [${from}, ${to}] is not listed by entry ${pruneIndex}`))
        }
        if (!(Number.isSafeInteger(from) && Number.isSafeInteger(to) && from <= to && to < pruneIndex)) {
          return Effect.fail(refused("prune", `invalid range [${from}, ${to}]`))
        }
        for (let i = from; i <= to; i++) {
          const entry = entries[i]
          if (entry !== undefined && protectedTypes.has(entry.type)) {
            return Effect.fail(refused("prune", `entry ${i} is a ${entry.type} entry, which is never pruned`))
          }
        }
      }
      let removed = 0
      for (const [from, to] of ranges) {
        prunes.push({ pruneIndex, from, to })
        for (let i = from; i <= to; i++) {
          const entry = entries[i]
          if (entry === undefined) continue
          entries[i] = undefined
          byId.delete(entry.id)
          removed++
        }
      }
      return Effect.succeed(removed)
    })

  const listedRanges = (content: string): ReadonlyArray<readonly [number, number]> => {
    try {
      const ranges = JSON.parse(content)?.details?.ranges
      return Array.isArray(ranges) ? ranges.filter((r) => Array.isArray(r) && r.length === 2) : []
    } catch {
      return []
    }
  }

  const namesKey = (entry: AuditStore.StoredEntry | undefined, keyId: string): boolean => {
    if (entry?.type !== "retention.erasure") return false
    try {
      const keyIds = JSON.parse(entry.content)?.details?.keyIds
      return Array.isArray(keyIds) && keyIds.includes(keyId)
    } catch {
      return false
    }
  }

  const destroyKey: AuditStore.AuditStore["Service"]["destroyKey"] = (keyId, erasureIndex) =>
    Effect.suspend(() => {
      if (!namesKey(entries[erasureIndex], keyId)) {
        return Effect.fail(refused("destroyKey", `entry ${erasureIndex} is not an erasure of key ${keyId}`))
      }
      if (!erasures.has(keyId)) erasures.set(keyId, erasureIndex)
      const key = keys.get(keyId)
      if (key === undefined) return Effect.succeed(false)
      keys.delete(keyId)
      keysByRef.delete(refKey(key.subjectRef, key.tenantId))
      return Effect.succeed(true)
    })

  return {
    append,
    size: Effect.sync(() => leaves.length),
    leafHashes: (from, to) => Effect.sync(() => leaves.slice(Math.max(0, from), Math.max(from, to)).map(copyBytes)),
    window: (from, to) =>
      Effect.sync(() => ({
        leaves: leaves.slice(Math.max(0, from), Math.max(from, to)).map((hash, i) => ({
          index: Math.max(0, from) + i,
          hash: copyBytes(hash)
        })),
        entries: entries.slice(Math.max(0, from), Math.max(from, to)).filter((e) => e !== undefined),
        checkpoints: checkpoints.filter((c) => c.size > from && c.size <= to)
      })),
    extent: Effect.sync(() => ({ from: 0, to: Math.max(leaves.length, entries.length) })),
    entryById: (id) =>
      Effect.sync(() => {
        const index = byId.get(id)
        return index === undefined ? undefined : entries[index]
      }),
    entryAt: (index) => Effect.sync(() => entries[index]),
    query,
    checkpoints: (from = 0, to = Number.MAX_SAFE_INTEGER) =>
      Effect.sync(() => checkpoints.filter((c) => c.size >= from && c.size <= to)),
    latestCheckpoint: Effect.sync(() => checkpoints[checkpoints.length - 1]),
    ensureKeys: (candidates) =>
      Effect.sync(() =>
        candidates.map((candidate) => {
          const ref = refKey(candidate.subjectRef, candidate.tenantId)
          const existing = keysByRef.get(ref)
          if (existing !== undefined) return keys.get(existing)!
          const stored = {
            ...candidate,
            subjectRef: copyBytes(candidate.subjectRef),
            wrappedKey: copyBytes(candidate.wrappedKey)
          }
          keys.set(candidate.keyId, stored)
          keysByRef.set(ref, candidate.keyId)
          return stored
        })
      ),
    findKeys: (subjectRef, tenantId) =>
      Effect.sync(() => {
        const hex = Buffer.from(subjectRef).toString("hex")
        return Array.from(keys.values()).filter((k) =>
          Buffer.from(k.subjectRef).toString("hex") === hex && (tenantId === undefined || k.tenantId === tenantId)
        )
      }),
    keysById: (keyIds) =>
      Effect.sync(() =>
        keyIds.flatMap((id) => {
          const key = keys.get(id)
          return key === undefined ? [] : [key]
        })
      ),
    destroyKey,
    pruneCandidates,
    prune
  }
}
