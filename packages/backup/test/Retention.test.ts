import { assert, describe, it } from "@effect/vitest"
import { Retention } from "../src/index.js"

const day = 86_400_000
// Wednesday 2026-11-25 12:00 UTC.
const now = new Date(Date.UTC(2026, 10, 25, 12))
const at = (daysAgo: number, hour = 3) => new Date(Date.UTC(2026, 10, 25 - daysAgo, hour))
const backup = (id: string, createdAt: Date, verified = false, parent?: string): Retention.Candidate => ({
  id,
  createdAt,
  verified,
  parent
})

describe("Retention", () => {
  it("keeps the last N", () => {
    const backups = [0, 1, 2, 3, 4].map((d) => backup(`b${d}`, at(d)))
    const decision = Retention.decide(backups, { keepLast: 3, keepDaily: 0, keepWeekly: 0 }, now)
    assert.deepStrictEqual(decision.keep, ["b0", "b1", "b2"])
    assert.deepStrictEqual(decision.remove, ["b3", "b4"])
  })

  it("keeps the newest of each of the last D days, and of each of the last W ISO weeks", () => {
    const backups = [
      backup("today-late", at(0, 10)),
      backup("today-early", at(0, 1)),
      backup("yesterday", at(1)),
      backup("3-days", at(3)), // Sunday 22nd: last week
      backup("4-days", at(4)), // Saturday 21st: last week
      backup("10-days", at(10)), // Sunday 15th: two weeks ago
      backup("30-days", at(30))
    ]
    const daily = Retention.decide(backups, { keepLast: 0, keepDaily: 2, keepWeekly: 0 }, now)
    assert.deepStrictEqual(daily.keep, ["today-late", "yesterday"])
    const weekly = Retention.decide(backups, { keepLast: 0, keepDaily: 0, keepWeekly: 3 }, now)
    assert.deepStrictEqual(weekly.keep, ["today-late", "3-days", "10-days"])
    const both = Retention.decide(backups, { keepLast: 1, keepDaily: 4, keepWeekly: 2 }, now)
    assert.deepStrictEqual(both.keep, ["today-late", "yesterday", "3-days"])
    assert.deepStrictEqual(both.remove, ["today-early", "4-days", "10-days", "30-days"])
  })

  it("never deletes the newest verified backup, nor what a kept incremental builds on", () => {
    const backups = [
      backup("incr-2", at(0), false, "incr-1"),
      backup("incr-1", at(1), false, "full"),
      backup("full", at(2)),
      backup("old-verified", at(20), true),
      backup("older-verified", at(40), true)
    ]
    const decision = Retention.decide(backups, { keepLast: 1, keepDaily: 0, keepWeekly: 0 }, now)
    assert.deepStrictEqual(decision.keep, ["incr-2", "incr-1", "full", "old-verified"])
    assert.deepStrictEqual(decision.remove, ["older-verified"])
    assert.deepStrictEqual(decision.reasons.get("old-verified"), ["newest verified"])
    // Everything off: only the newest verified survives.
    const none = Retention.decide(backups, { keepLast: 0, keepDaily: 0, keepWeekly: 0 }, now)
    assert.deepStrictEqual(none.keep, ["old-verified"])
  })

  it("keeps nothing extra for empty input and ignores future-dated backups in day buckets", () => {
    assert.deepStrictEqual(Retention.decide([], { keepLast: 3, keepDaily: 3, keepWeekly: 3 }, now).keep, [])
    const future = Retention.decide([backup("f", new Date(now.getTime() + 2 * day))], {
      keepLast: 0,
      keepDaily: 7,
      keepWeekly: 0
    }, now)
    assert.deepStrictEqual(future.remove, ["f"])
  })
})
