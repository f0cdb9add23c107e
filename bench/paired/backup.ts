/**
 * The backup benchmark's rounds, shared by our Effect 4 worker and the Effect 3 adapter. The tree under test supplies
 * the Backup service's operations; the timing, the split into phases and the peer (`pg_dump` / `pg_restore` of the
 * same events table) are here.
 *
 * A full backup holds the events and a snapshot of the vector collection; `pg_dump` dumps the events table only. So
 * each operation is split into its phases by the progress the service reports (the time from the end of one phase to
 * the last report of the next): events/s is the events phase alone, vectors/s the vector phase alone, and only the
 * events phase is set beside `pg_dump` / `pg_restore`.
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"

/** What the tree under test supplies. `onProgress` receives each progress report's phase. */
export interface Ops {
  /** A full backup; resolves to its id and the bytes of its events file and of all its files. */
  readonly create: (
    onProgress: (phase: string) => void
  ) => Promise<{ readonly id: string; readonly eventBytes: number; readonly bytes: number }>
  readonly verify: (id: string, tier: "checksums" | "restore") => Promise<void>
  /** Restores the backup (vectors from the snapshot); resolves to the count of events restored. */
  readonly restore: (id: string, onProgress: (phase: string) => void) => Promise<number>
  readonly truncate: () => Promise<void>
  /** The schema holding `event_store_events`, and the database's URL. */
  readonly schema: string
  readonly postgresUrl: string
  /** Where backups are written (the peer's dump goes there too). */
  readonly directory: string
}

/** Seconds of each phase: a phase runs from the previous phase's last report to its own last report. */
const phases = async (run: (onProgress: (phase: string) => void) => Promise<unknown>) => {
  const start = performance.now()
  const last = new Map<string, number>()
  const order: Array<string> = []
  await run((phase) => {
    if (!last.has(phase)) order.push(phase)
    last.set(phase, performance.now())
  })
  const end = performance.now()
  const spans: Record<string, number> = {}
  let from = start
  for (const phase of order) {
    spans[phase] = (last.get(phase)! - from) / 1000
    from = last.get(phase)!
  }
  return { total: (end - start) / 1000, spans, tail: (end - from) / 1000 }
}

export interface Round {
  /** Seconds. */
  readonly create: number
  readonly createEvents: number
  readonly createVectors: number
  readonly verifyChecksums: number
  readonly verifyRestore: number
  readonly restore: number
  readonly restoreChecks: number
  readonly restoreEvents: number
  readonly restoreVectors: number
  readonly pgDump: number
  readonly pgRestore: number
  readonly eventBytes: number
  readonly bytes: number
  readonly dumpBytes: number
}

/** The round runner of one worker over `events` events and `vectors` vectors (already in the stores). */
export const backupRounds = (ops: Ops, events: number) => ({
  round: async (): Promise<Round> => {
    let created: { id: string; eventBytes: number; bytes: number } | undefined
    // Create: vector snapshots first, then the events (then the manifest: counted with the events).
    const create = await phases(async (onProgress) => (created = await ops.create(onProgress)))
    const { id, eventBytes, bytes } = created!
    const t0 = performance.now()
    await ops.verify(id, "checksums")
    const t1 = performance.now()
    await ops.verify(id, "restore")
    const t2 = performance.now()
    // Restore: the checksums of the chain ("checking"), then the events, then the vector snapshots.
    let restored = 0
    const restore = await phases(async (onProgress) => (restored = await ops.restore(id, onProgress)))
    if (restored !== events) throw new Error(`restored ${restored} events, expected ${events}`)

    // The peer: pg_dump / pg_restore of the same events table (custom format, uncompressed, data only).
    const dump = Path.join(ops.directory, `events-${Date.now()}.pgdump`)
    const url = new URL(ops.postgresUrl)
    const args = ["-h", url.hostname, "-p", url.port || "5432", "-U", url.username || "postgres"]
    const db = url.pathname.slice(1)
    const d0 = performance.now()
    execFileSync("pg_dump", [
      ...args,
      ...["-d", db, "-Fc", "-Z", "0", "--data-only", "-t", `${ops.schema}.event_store_events`, "-f", dump]
    ])
    const d1 = performance.now()
    const dumpBytes = Fs.statSync(dump).size
    await ops.truncate()
    const r0 = performance.now()
    execFileSync("pg_restore", [...args, "-d", db, "--data-only", dump])
    const r1 = performance.now()
    Fs.rmSync(dump, { force: true })
    return {
      create: create.total,
      createVectors: create.spans.vectors ?? 0,
      createEvents: (create.spans.events ?? 0) + create.tail,
      verifyChecksums: (t1 - t0) / 1000,
      verifyRestore: (t2 - t1) / 1000,
      restore: restore.total,
      restoreChecks: restore.spans.checking ?? 0,
      restoreEvents: (restore.spans.events ?? 0) + (restore.spans.replay ?? 0),
      restoreVectors: restore.spans.vectors ?? 0,
      pgDump: (d1 - d0) / 1000,
      pgRestore: (r1 - r0) / 1000,
      eventBytes,
      bytes,
      dumpBytes
    }
  }
})
