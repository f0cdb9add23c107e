/**
 * Which backups to keep: the last N, the newest of each of the last D calendar days (UTC), the newest of each of the
 * last W ISO weeks (UTC, Monday first), and always the newest verified backup. A kept incremental backup keeps the
 * backups it builds on, so everything kept stays restorable. A pure function: the Backup service deletes the rest.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * The retention policy. Zero turns a rule off.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Policy = Schema.Struct({
  keepLast: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  keepDaily: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  keepWeekly: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
}).annotate({ identifier: "RetentionPolicy" })

/**
 * @since 0.1.0
 * @category models
 */
export type Policy = typeof Policy.Type

/**
 * What the policy needs to know of a backup.
 *
 * @since 0.1.0
 * @category models
 */
export interface Candidate {
  readonly id: string
  readonly createdAt: Date
  readonly verified: boolean
  /** The backup this one builds on (incremental). */
  readonly parent?: string | undefined
}

/**
 * The decision: ids to keep (with why) and ids to delete, both newest first.
 *
 * @since 0.1.0
 * @category models
 */
export interface Decision {
  readonly keep: ReadonlyArray<string>
  readonly remove: ReadonlyArray<string>
  readonly reasons: ReadonlyMap<string, ReadonlyArray<string>>
}

const dayMs = 86_400_000

const dayIndex = (date: Date): number => Math.floor(date.getTime() / dayMs)

// Days since the epoch (a Thursday) shifted so that weeks start on Monday.
const weekIndex = (date: Date): number => Math.floor((dayIndex(date) + 3) / 7)

/**
 * Applies the policy at the instant `now`.
 *
 * @since 0.1.0
 * @category utils
 * @example
 * import { Retention } from "@ouroboros/backup"
 *
 * const backups: ReadonlyArray<Retention.Candidate> = [
 *   { id: "b2", createdAt: new Date("2026-01-02T03:00:00Z"), verified: false, parent: "b1" },
 *   { id: "b1", createdAt: new Date("2026-01-01T03:00:00Z"), verified: true }
 * ]
 * const { remove } = Retention.decide(backups, { keepLast: 7, keepDaily: 14, keepWeekly: 8 }, new Date())
 */
export const decide = (backups: ReadonlyArray<Candidate>, policy: Policy, now: Date): Decision => {
  const sorted = [...backups].sort((a, b) =>
    b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)
  )
  const reasons = new Map<string, Array<string>>()
  const mark = (id: string, reason: string) => {
    const list = reasons.get(id)
    if (list === undefined) reasons.set(id, [reason])
    else if (!list.includes(reason)) list.push(reason)
  }
  sorted.slice(0, policy.keepLast).forEach((b, i) => mark(b.id, `last ${i + 1}`))
  const bucketed = (count: number, index: (date: Date) => number, label: string) => {
    if (count === 0) return
    const current = index(now)
    const seen = new Set<number>()
    for (const backup of sorted) {
      const bucket = index(backup.createdAt)
      const age = current - bucket
      if (age < 0 || age >= count || seen.has(bucket)) continue
      seen.add(bucket)
      mark(backup.id, `${label} ${age}`)
    }
  }
  bucketed(policy.keepDaily, dayIndex, "daily")
  bucketed(policy.keepWeekly, weekIndex, "weekly")
  const newestVerified = sorted.find((b) => b.verified)
  if (newestVerified !== undefined) mark(newestVerified.id, "newest verified")
  // A kept incremental needs its ancestors.
  const byId = new Map(sorted.map((b) => [b.id, b]))
  for (const id of [...reasons.keys()]) {
    let parent = byId.get(id)?.parent
    while (parent !== undefined && byId.has(parent)) {
      mark(parent, `parent of ${id}`)
      parent = byId.get(parent)?.parent
    }
  }
  return {
    keep: sorted.filter((b) => reasons.has(b.id)).map((b) => b.id),
    remove: sorted.filter((b) => !reasons.has(b.id)).map((b) => b.id),
    reasons
  }
}
