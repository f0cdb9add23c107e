/**
 * The event-store benchmark's rounds, shared by our Effect 4 worker and the Effect 3 adapter. The tree under test
 * supplies the operations (each a Promise that runs one Effect in its runtime, as a request handler's fiber would);
 * the loops, the timing and the grouped bare INSERT are here.
 *
 * The fair peer of group commit is a bare INSERT grouped the same way: concurrent writers hand their row to one
 * writer, which inserts all the rows waiting (up to 256, the store's default group) in one multi-row INSERT and one
 * commit, with no lock and no version check. Beside it, the bare INSERT with one commit each (what the store's own
 * "own transaction" row pays), which is not what group commit competes with.
 */

/** What the tree under test supplies. */
export interface Ops {
  /** `store.append` of one event (stream `bench/<n % 64>`). */
  readonly append1: () => Promise<void>
  /** `store.append` of 100 events to one stream. */
  readonly append100: () => Promise<void>
  /** One append inside a caller's `sql.withTransaction` (no grouping: one lock hold and one commit each). */
  readonly appendInOwnTransaction: () => Promise<void>
  /** `rows` bare rows in one multi-row INSERT, in one transaction (no lock, no version check). */
  readonly bareInsert: (rows: number) => Promise<void>
  /** `store.readAll` from the start in pages of 1000, the first `events` events; resolves to how many were read. */
  readonly readAll: (events: number) => Promise<number>
  /** The same rows by a bare `SELECT *` per page of 1000 (no decoding). */
  readonly bareSelect: (events: number) => Promise<number>
  readonly close: () => Promise<void>
}

export const CONCURRENCY = 16
const MAX_GROUP = 256
const READ_EVENTS = 20_000

export type Operation =
  | "append, batch 1, 1 writer"
  | "bare INSERT, 1 writer"
  | "append, batch 100, 1 writer"
  | "append, batch 1, 16 fibers (group commit)"
  | "bare INSERT grouped like ours, 16 fibers"
  | "bare INSERT, one commit each, 16 fibers"
  | "append in caller's tx, 16 fibers (no grouping)"
  | "readAll, pages of 1000"
  | "bare SELECT pages (no decoding)"

export const operations: ReadonlyArray<Operation> = [
  "append, batch 1, 1 writer",
  "bare INSERT, 1 writer",
  "append, batch 100, 1 writer",
  "append, batch 1, 16 fibers (group commit)",
  "bare INSERT grouped like ours, 16 fibers",
  "bare INSERT, one commit each, 16 fibers",
  "append in caller's tx, 16 fibers (no grouping)",
  "readAll, pages of 1000",
  "bare SELECT pages (no decoding)"
]

/** Group commit for bare INSERTs: callers wait while one writer inserts everything queued in one statement. */
const groupedInsert = (insert: (rows: number) => Promise<void>) => {
  let waiting: Array<{ resolve: () => void; reject: (e: unknown) => void }> = []
  let writing = false
  const drain = async () => {
    writing = true
    while (waiting.length > 0) {
      const group = waiting.slice(0, MAX_GROUP)
      waiting = waiting.slice(group.length)
      try {
        await insert(group.length)
        for (const w of group) w.resolve()
      } catch (error) {
        for (const w of group) w.reject(error)
      }
    }
    writing = false
  }
  return () =>
    new Promise<void>((resolve, reject) => {
      waiting.push({ resolve, reject })
      if (!writing) void drain()
    })
}

/** Events per second of `concurrency` loops of `op` (each resolving to its event count) for `millis`. */
const measure = async (concurrency: number, millis: number, op: () => Promise<number>) => {
  const start = performance.now()
  const deadline = start + millis
  let events = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < deadline) {
      // Not `events += await op()`: that reads `events` before the await, and concurrent loops would overwrite each
      // other's counts.
      const n = await op()
      events += n
    }
  }))
  return (events * 1000) / (performance.now() - start)
}

/** The round runner of one worker: `round(i)` returns events/s per operation. */
export const eventStoreRounds = (ops: Ops, millis: number) => {
  const grouped = groupedInsert(ops.bareInsert)
  const one = (f: () => Promise<void>, n = 1) => () => f().then(() => n)
  const runners: Record<Operation, () => Promise<number>> = {
    "append, batch 1, 1 writer": () => measure(1, millis, one(ops.append1)),
    "bare INSERT, 1 writer": () => measure(1, millis, one(() => ops.bareInsert(1))),
    "append, batch 100, 1 writer": () => measure(1, millis, one(ops.append100, 100)),
    "append, batch 1, 16 fibers (group commit)": () => measure(CONCURRENCY, millis, one(ops.append1)),
    "bare INSERT grouped like ours, 16 fibers": () => measure(CONCURRENCY, millis, one(grouped)),
    "bare INSERT, one commit each, 16 fibers": () => measure(CONCURRENCY, millis, one(() => ops.bareInsert(1))),
    "append in caller's tx, 16 fibers (no grouping)": () =>
      measure(CONCURRENCY, millis, one(ops.appendInOwnTransaction)),
    "readAll, pages of 1000": async () => {
      const start = performance.now()
      const read = await ops.readAll(READ_EVENTS)
      return (read * 1000) / (performance.now() - start)
    },
    "bare SELECT pages (no decoding)": async () => {
      const start = performance.now()
      const read = await ops.bareSelect(READ_EVENTS)
      return (read * 1000) / (performance.now() - start)
    }
  }
  const runAll = async (index: number) => {
    const out: Partial<Record<Operation, number>> = {}
    // The writes in a rotating order, then the reads (of the first events, there from the warm-up on), then the
    // appends in callers' transactions: right after a burst of those (16 fibers, each holding the store's lock for
    // its own commit) the next operations on PostgreSQL ran several times slower for a few seconds, a cost that
    // would land on whichever operation came next. Its cause was not found.
    const writes: ReadonlyArray<Operation> = [
      "append, batch 1, 1 writer",
      "bare INSERT, 1 writer",
      "append, batch 100, 1 writer",
      "append, batch 1, 16 fibers (group commit)",
      "bare INSERT grouped like ours, 16 fibers",
      "bare INSERT, one commit each, 16 fibers"
    ]
    for (let k = 0; k < writes.length; k++) {
      const op = writes[(k + index) % writes.length]!
      out[op] = await runners[op]()
    }
    out["readAll, pages of 1000"] = await runners["readAll, pages of 1000"]()
    out["bare SELECT pages (no decoding)"] = await runners["bare SELECT pages (no decoding)"]()
    out["append in caller's tx, 16 fibers (no grouping)"] = await runners
      ["append in caller's tx, 16 fibers (no grouping)"]()
    return out
  }
  return {
    /** The first statements of a fresh database (and PGlite's wasm) are much slower than the rest; and the reads need
     * their events. */
    warmUp: async () => {
      for (let i = 0; i < 30; i++) {
        await ops.append1()
        await ops.bareInsert(1)
      }
      // The pool opens its connections on demand: open them all before anything is timed.
      await measure(CONCURRENCY, 1000, one(() => ops.bareInsert(1)))
      await measure(CONCURRENCY, 1000, one(ops.append1))
      const present = await ops.bareSelect(READ_EVENTS)
      for (let i = present; i < READ_EVENTS; i += 100) await ops.append100()
      await ops.readAll(READ_EVENTS)
    },
    round: runAll
  }
}
