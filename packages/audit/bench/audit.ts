/**
 * Audit log benchmarks, standalone: `npx tsx packages/audit/bench/audit.ts` (`--quick` for a short run).
 *
 * 1. Appends per second to PostgreSQL through `AuditLog.append` (group commit, canonical JSON, sealing, hashing, tree
 *    updates, the signed checkpoints of the default interval) from concurrent fibers, beside a raw multi-row INSERT of
 *    the same rows (the entries and leaves just written, with fresh ids) into copies of the same tables, in batches of
 *    the group size the log formed, one transaction per batch; and beside the same log committing one group at a time
 *    (`commitsInFlight: 1`, on a store of its own), which shows what sending the next group while one commits gives.
 *    Paired rounds rotate the order; the goal ("at least the raw rate") is judged on the worse half of the rounds.
 *    Besides rates: client CPU per event (all threads, and the main thread alone) and the database's CPU per event
 *    (every `postgres` process, from `/proc`), to tell which side a rate waits for.
 * 2. Verification of 1M entries, in memory (the memory store), and of an NDJSON export of them.
 * 3. Inclusion and consistency proofs at 1M: size and time.
 *
 * 4. Only with `--only verify-pg`: verification of 1M entries that the log wrote to PostgreSQL.
 *
 * Every section is bounded: a fixed number of events per round, a fixed number of proofs. `--only appends` or
 * `--only verify` runs one section (sections 2 and 3 are one), e.g. under `npx tsx --cpu-prof`.
 */
import { AuditEvent, AuditKeys, AuditLog, AuditStore, Checkpoint, Merkle, Verifier } from "@ouroboros/audit"
import { PgSchema, Services } from "@ouroboros/testkit"
import { type Array as Arr, Context, Effect, Layer, Redacted, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { randomUUID } from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Readline from "node:readline"
import * as Canonical from "../src/internal/canonical.js"
import * as Sealing from "../src/internal/sealing.js"
import { Tree } from "../src/internal/tree.js"

const quick = process.argv.includes("--quick")
// `--only appends` or `--only verify`: one section (for profiling one path).
const only = process.argv.includes("--only") ? process.argv[process.argv.indexOf("--only") + 1] : undefined
const origin = "bench.example/audit"
const keys = AuditKeys.generate(origin)

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}
const fmt = (n: number) => Math.round(n).toLocaleString("en-US")
/**
 * CPU seconds of this process (every thread) since `since`: on a shared machine, wall time also counts other
 * processes' turns.
 */
const cpuOf = (since: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(since)
  return (used.user + used.system) / 1e6
}

/**
 * CPU seconds of every PostgreSQL process on this machine (Linux; 0 elsewhere): the database's side of a round, to
 * tell whether the client or the server is what a rate waits for.
 */
const postgresCpu = (): number => {
  if (process.platform !== "linux") return 0
  let ticks = 0
  for (const pid of Fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue
    try {
      const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
      if (!stat.includes("(postgres)")) continue
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      ticks += Number(fields[11]) + Number(fields[12])
    } catch {
      // gone meanwhile
    }
  }
  return ticks / 100
}

/** CPU seconds of this thread alone (the event loop's), since `since`. */
const mainCpuOf = (since: NodeJS.CpuUsage) => {
  const used = process.threadCpuUsage(since)
  return (used.user + used.system) / 1e6
}

const actors = Array.from({ length: 200 }, (_, i) =>
  AuditEvent.actorOf(
    { tenantId: `tenant-${i % 10}`, subject: `user-${i}`, roles: ["writer"] },
    { clientAddress: `10.0.${i % 250}.${i % 7}`, userAgent: "bench/1.0" }
  ))

const eventOf = (i: number): AuditEvent.AuditEvent => ({
  type: i % 5 === 0 ? "data.update" : "data.create",
  actor: actors[i % actors.length]!,
  action: "documents.write",
  resource: { type: "document", id: `doc-${i}` },
  outcome: "success",
  correlationId: `req-${i}`
})

// -----------------------------------------------------------------------------
// 1. appends to PostgreSQL, beside a raw multi-row INSERT of the same rows
// -----------------------------------------------------------------------------

const appends = Effect.gen(function*() {
  const rounds = quick ? 3 : 5
  const perRound = quick ? 5_000 : 20_000
  const concurrency = 256
  console.log(
    `\n## 1. appends to PostgreSQL (${rounds} paired rounds of ${fmt(perRound)} events, ${concurrency} fibers)`
  )
  if (!(yield* Effect.promise(() => Services.postgres()))) {
    console.log("PostgreSQL does not answer: section skipped")
    return
  }
  /**
   * A log on a store of its own (a fresh schema), counting its commits (one store append each, to give the raw
   * inserts the same batches) and the wall time spent inside the store's append (the statement's round trip and the
   * server's work, summed over the commits, so it includes waiting for the lock behind a commit in flight).
   */
  const arm = (commitsInFlight: number) =>
    Effect.gen(function*() {
      const counters = { commits: 0, storeMs: 0 }
      const CountingStore = Layer.effect(
        AuditStore.AuditStore,
        Effect.gen(function*() {
          const store = yield* AuditStore.AuditStore
          return AuditStore.AuditStore.of({
            ...store,
            append: (batch) =>
              Effect.suspend(() => {
                const start = performance.now()
                return Effect.tap(store.append(batch), () =>
                  Effect.sync(() => {
                    counters.storeMs += performance.now() - start
                    if (batch.entries.length > 0) counters.commits++
                  }))
              })
          })
        })
      ).pipe(Layer.provide(AuditStore.layerSql))
      const context = yield* Layer.build(
        AuditLog.layer({ keys, origin, commitsInFlight }).pipe(
          Layer.provideMerge(CountingStore),
          Layer.provideMerge(PgSchema.layer({ prefix: "audit_bench", maxConnections: 4 })),
          Layer.orDie
        )
      )
      const audit = Context.get(context, AuditLog.AuditLog)
      let next = 0
      const run = Effect.gen(function*() {
        const from = yield* audit.size
        counters.commits = 0
        counters.storeMs = 0
        const cpu = process.cpuUsage()
        const main = process.threadCpuUsage()
        const db = postgresCpu()
        const start = performance.now()
        yield* Effect.forEach(
          Array.from({ length: perRound }, () => next++),
          (i) => audit.append(eventOf(i)),
          { concurrency, discard: true }
        )
        const seconds = (performance.now() - start) / 1000
        return {
          rate: perRound / seconds,
          from,
          groups: counters.commits,
          cpu: cpuOf(cpu) * 1e6 / perRound,
          main: mainCpuOf(main) * 1e6 / perRound,
          db: (postgresCpu() - db) * 1e6 / perRound,
          storeMs: counters.storeMs / counters.commits
        }
      })
      return { audit, sql: Context.get(context, SqlClient.SqlClient), run }
    })
  // The log as configured by default (two commits in flight), and the same log committing one group at a time.
  const ours = yield* arm(2)
  const serial = yield* arm(1)
  const sql = ours.sql
  yield* sql.unsafe("CREATE TABLE raw_entries (LIKE audit_entries INCLUDING ALL)")
  yield* sql.unsafe("CREATE TABLE raw_leaves (LIKE audit_leaves INCLUDING ALL)")
  let rawOffset = 0
  const raw = (from: number, batch: number) =>
    Effect.gen(function*() {
      const entries = yield* sql<Record<string, unknown>>`SELECT * FROM audit_entries
        WHERE idx >= ${from} AND idx < ${from + perRound} ORDER BY idx`
      const leaves = yield* sql<Record<string, unknown>>`SELECT * FROM audit_leaves
        WHERE idx >= ${from} AND idx < ${from + perRound} ORDER BY idx`
      // The same rows, at new positions and with new ids (the copies keep the unique indexes).
      const base = rawOffset
      rawOffset += entries.length
      const rows = entries.map((row, i) => ({ ...row, idx: base + i, id: randomUUID() }))
      const leafRows = leaves.map((row, i) => ({ ...row, idx: base + i }))
      const cpu = process.cpuUsage()
      const main = process.threadCpuUsage()
      const db = postgresCpu()
      const start = performance.now()
      for (let k = 0; k < rows.length; k += batch) {
        const chunk = rows.slice(k, k + batch) as unknown as Arr.NonEmptyReadonlyArray<Record<string, unknown>>
        const leafChunk = leafRows.slice(k, k + batch) as unknown as Arr.NonEmptyReadonlyArray<
          Record<string, unknown>
        >
        yield* Effect.gen(function*() {
          yield* sql`INSERT INTO raw_entries ${sql.insert(chunk)}`
          yield* sql`INSERT INTO raw_leaves ${sql.insert(leafChunk)}`
        }).pipe(sql.withTransaction)
      }
      const ms = performance.now() - start
      return {
        rate: rows.length / (ms / 1000),
        cpu: cpuOf(cpu) * 1e6 / rows.length,
        main: mainCpuOf(main) * 1e6 / rows.length,
        db: (postgresCpu() - db) * 1e6 / rows.length,
        msPerBatch: ms / Math.ceil(rows.length / batch)
      }
    })
  type Run = Effect.Success<typeof ours.run>
  type RawRun = Effect.Success<ReturnType<typeof raw>>
  const groupOf = (run: Run) => Math.ceil(perRound / Math.max(1, run.groups))
  // Warm-up: every path once, unmeasured.
  const warm = yield* ours.run
  yield* serial.run
  yield* raw(warm.from, groupOf(warm))
  const results: Array<{ ours: Run; serial: Run; raw: RawRun }> = []
  for (let r = 0; r < rounds; r++) {
    // Order rotates: ours, serial, raw on even rounds; raw, serial, ours on odd ones (raw then inserts the rows of the
    // previous round of ours, in its batches).
    let oursRun: Run
    let serialRun: Run
    let rawRun: RawRun
    if (r % 2 === 0) {
      oursRun = yield* ours.run
      serialRun = yield* serial.run
      rawRun = yield* raw(oursRun.from, groupOf(oursRun))
    } else {
      rawRun = yield* raw((yield* ours.audit.size) - perRound, groupOf(results[results.length - 1]!.ours))
      serialRun = yield* serial.run
      oursRun = yield* ours.run
    }
    results.push({ ours: oursRun, serial: serialRun, raw: rawRun })
    const describe = (run: Run) =>
      `${fmt(run.rate)}/s, ${run.groups} commits (about ${groupOf(run)} per commit), client CPU ${
        run.cpu.toFixed(1)
      } µs per event (${run.main.toFixed(1)} on the main thread), database CPU ${run.db.toFixed(1)} µs, ${
        run.storeMs.toFixed(1)
      } ms per commit in the store's append`
    console.log(
      `round ${r + 1} (${r % 2 === 0 ? "ours first" : "raw first"}): ratio ${
        (oursRun.rate / rawRun.rate).toFixed(2)
      } (one commit at a time: ${(serialRun.rate / rawRun.rate).toFixed(2)})\n` +
        `  audit:                       ${describe(oursRun)}\n` +
        `  audit, one commit at a time: ${describe(serialRun)}\n` +
        `  raw:                         ${fmt(rawRun.rate)}/s, client CPU ${rawRun.cpu.toFixed(1)} µs per row (${
          rawRun.main.toFixed(1)
        } on the main thread), database CPU ${rawRun.db.toFixed(1)} µs, ${
          rawRun.msPerBatch.toFixed(1)
        } ms per transaction`
    )
  }
  const spread = (xs: ReadonlyArray<number>) =>
    `median ${fmt(median(xs))}/s (spread ${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`
  const worseHalf = (ratios: ReadonlyArray<number>) =>
    [...ratios].sort((a, b) => a - b).slice(0, Math.ceil(ratios.length / 2))
  const ratios = results.map((x) => x.ours.rate / x.raw.rate)
  const serialRatios = results.map((x) => x.serial.rate / x.raw.rate)
  const gains = results.map((x) => x.ours.rate / x.serial.rate)
  console.log(`audit append:                       ${spread(results.map((x) => x.ours.rate))}`)
  console.log(`audit append, one commit at a time: ${spread(results.map((x) => x.serial.rate))}`)
  console.log(`raw INSERT:                         ${spread(results.map((x) => x.raw.rate))}`)
  console.log(
    `ratio audit/raw: median ${median(ratios).toFixed(2)}, worse half ${
      worseHalf(ratios).map((x) => x.toFixed(2)).join(", ")
    }: goal "at least the raw rate" ${median(worseHalf(ratios)) >= 1 ? "met" : "not met"}`
  )
  console.log(
    `one commit at a time against raw: median ${median(serialRatios).toFixed(2)}, worse half ${
      worseHalf(serialRatios).map((x) => x.toFixed(2)).join(", ")
    }; two commits in flight against one: median ${median(gains).toFixed(2)}, worse half ${
      worseHalf(gains).map((x) => x.toFixed(2)).join(", ")
    }`
  )
})

// -----------------------------------------------------------------------------
// 2 and 3. a log of 1M entries in memory: verification, proofs
// -----------------------------------------------------------------------------

/** Fills a memory store with `n` entries as the log writes them (sealed, canonical), with a checkpoint every 10,000. */
const fill = (store: AuditStore.AuditStore["Service"], n: number) =>
  Effect.gen(function*() {
    const ring = Sealing.keyRing(Redacted.value(keys.encryptionKey))
    const subjectKeys = actors.map((actor) => {
      const created = Sealing.newSubjectKey(ring)
      return {
        key: created.key,
        stored: {
          keyId: created.keyId,
          tenantId: actor.tenantId ?? "",
          subjectRef: Sealing.subjectRef(ring, actor.subject),
          wrappedKey: created.wrapped
        }
      }
    })
    yield* store.ensureKeys(subjectKeys.map((k) => k.stored))
    const sealedBlocks: Array<AuditEvent.Sealed> = []
    const tree = new Tree()
    const batch = 10_000
    const start = Date.UTC(2026, 0, 1)
    for (let base = 0; base < n; base += batch) {
      const entries: Array<AuditStore.NewEntry> = []
      for (let index = base; index < Math.min(n, base + batch); index++) {
        const event = eventOf(index)
        const subject = subjectKeys[index % actors.length]!
        const id = randomUUID()
        const time = start + index * 10
        const plaintext = Canonical.personal({
          subject: event.actor.subject,
          clientAddress: event.actor.clientAddress,
          userAgent: event.actor.userAgent
        })
        // As the writer does: the same subject from the same client reuses its sealed block.
        const sealed = sealedBlocks[index % actors.length] ??= {
          keyId: subject.stored.keyId,
          ...Sealing.sealPersonal(subject.key, subject.stored.keyId, plaintext)
        }
        const content = Canonical.entry({
          v: 1,
          index,
          id,
          time: new Date(time).toISOString(),
          type: event.type,
          tenantId: event.actor.tenantId,
          actor: { tenantId: event.actor.tenantId, roles: event.actor.roles },
          action: event.action,
          resource: event.resource,
          outcome: event.outcome,
          correlationId: event.correlationId,
          sealed
        } as Omit<AuditEvent.Entry, "details">)
        entries.push({
          index,
          id,
          time,
          type: event.type,
          tenantId: event.actor.tenantId ?? null,
          keyId: sealed.keyId,
          action: event.action,
          resourceType: event.resource.type,
          resourceId: event.resource.id ?? null,
          outcome: event.outcome,
          correlationId: event.correlationId ?? null,
          content,
          leafHash: Merkle.leafHashOfText(content)
        })
      }
      const hashes = entries.map((e) => e.leafHash)
      tree.append(hashes)
      const rootHash = tree.root()
      yield* store.append({
        expectedSize: base,
        entries,
        checkpoint: {
          size: tree.size,
          rootHash,
          note: Checkpoint.signCheckpoint({ origin, size: tree.size, rootHash }, keys.signer)
        }
      })
    }
  })

const million = Effect.gen(function*() {
  const n = quick ? 200_000 : 1_000_000
  console.log(`\n## 2. verification of ${fmt(n)} entries (memory store)`)
  const store = yield* AuditStore.AuditStore
  const filled = performance.now()
  yield* fill(store, n)
  console.log(`(filled in ${((performance.now() - filled) / 1000).toFixed(1)} s)`)
  const verifier = Checkpoint.verifierOf(keys.signer)
  const options = { verifier, verifierKey: keys.signer.verifierKey, origin }
  // Paired rounds: the default (hashing on a worker thread at this size) beside the single-threaded path, alternating
  // which runs first. The goal is judged on the worse half of the default's rounds.
  const rounds = quick ? 1 : 5
  const runs: Array<{ parallel: boolean; seconds: number; cpu: number; main: number }> = []
  let result: Verifier.VerifyResult | undefined
  for (let r = 0; r < rounds; r++) {
    for (const parallel of r % 2 === 0 ? [true, false] : [false, true]) {
      const cpu = process.cpuUsage()
      const mainCpu = process.threadCpuUsage()
      const start = performance.now()
      const verified = yield* Verifier.verifyStore(store, { ...options, parallel })
      const seconds = (performance.now() - start) / 1000
      const main = process.threadCpuUsage(mainCpu)
      runs.push({ parallel, seconds, cpu: cpuOf(cpu), main: (main.user + main.system) / 1e6 })
      if (!verified.ok) throw new Error("the bench log does not verify")
      if (parallel) result = verified
      console.log(
        `round ${r + 1}, ${parallel ? "worker thread (default)" : "single thread"}: ${seconds.toFixed(2)} s (${
          fmt(n / seconds)
        } entries/s; ${runs[runs.length - 1]!.cpu.toFixed(2)} s of CPU, ${
          runs[runs.length - 1]!.main.toFixed(2)
        } s of it on the main thread)`
      )
    }
  }
  const defaults = runs.filter((x) => x.parallel).map((x) => x.seconds).sort((a, b) => b - a)
  const singles = runs.filter((x) => !x.parallel).map((x) => x.seconds)
  const worseHalf = defaults.slice(0, Math.ceil(defaults.length / 2))
  console.log(
    `verify from the store: median ${median(defaults).toFixed(2)} s (single thread ${median(singles).toFixed(2)} s), ` +
      `worse half ${worseHalf.map((x) => x.toFixed(2)).join(", ")} s; ok=${result?.ok}, ${result?.checkpoints} ` +
      `checkpoints: goal "under 10 s" ${median(worseHalf) < 10 && result?.ok ? "met" : "not met"}`
  )
  // The offline path: the export written to a file, read back line by line and verified.
  const file = Path.join(Os.tmpdir(), `audit-bench-${process.pid}.ndjson`)
  yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(file, { force: true })))
  const writeStart = performance.now()
  yield* Effect.promise(async () => {
    const out = Fs.createWriteStream(file)
    await Effect.runPromise(
      Stream.runForEachArray(
        Verifier.exportLines(store, { origin, verifierKey: keys.signer.verifierKey }),
        (lines) =>
          Effect.promise(() =>
            out.write(lines.join("\n") + "\n")
              ? Promise.resolve()
              : new Promise<void>((resolve) => out.once("drain", () => resolve()))
          )
      )
    )
    await new Promise<void>((resolve) => out.end(() => resolve()))
  })
  const bytes = Fs.statSync(file).size
  console.log(
    `export written: ${(bytes / 1e6).toFixed(0)} MB of NDJSON in ${
      ((performance.now() - writeStart) / 1000).toFixed(1)
    } s`
  )
  const exportCpu = process.cpuUsage()
  const exportStart = performance.now()
  const lines = Stream.fromAsyncIterable(
    Readline.createInterface({ input: Fs.createReadStream(file), crlfDelay: Infinity }),
    (error) => error
  )
  const offline = yield* Effect.orDie(Verifier.verifyExport(lines, options))
  const exportSeconds = (performance.now() - exportStart) / 1000
  console.log(
    `verify the export file offline (read + verify): ${exportSeconds.toFixed(2)} s (${
      fmt(n / exportSeconds)
    } entries/s; ` +
      `${cpuOf(exportCpu).toFixed(2)} s of CPU), ok=${offline.ok}`
  )

  console.log(`\n## 3. proofs at ${fmt(n)} entries`)
  const openStart = performance.now()
  const log = yield* AuditLog.make({ keys, origin })
  console.log(
    `log opened (tree of ${fmt(n)} leaves loaded) in ${((performance.now() - openStart) / 1000).toFixed(2)} s`
  )
  const proofs = 1000
  const ids: Array<number> = Array.from({ length: proofs }, (_, i) => Math.floor((i * 7919 * 104729) % n))
  let inclusionBytes = 0
  let inclusionHashes = 0
  const inclusionStart = performance.now()
  for (const index of ids) {
    const proof = yield* log.proveInclusion({ index })
    inclusionHashes += proof.proof.length
    inclusionBytes += JSON.stringify(proof).length
  }
  const inclusionMs = (performance.now() - inclusionStart) / proofs
  let consistencyBytes = 0
  let consistencyHashes = 0
  const consistencyStart = performance.now()
  for (const index of ids) {
    const proof = yield* log.proveConsistency(Math.max(1, index))
    consistencyHashes += proof.proof.length
    consistencyBytes += JSON.stringify(proof).length
  }
  const consistencyMs = (performance.now() - consistencyStart) / proofs
  console.log(
    `inclusion: ${(inclusionHashes / proofs).toFixed(1)} hashes (${
      (inclusionHashes / proofs * 32).toFixed(0)
    } bytes) per proof, ` +
      `${(inclusionBytes / proofs / 1024).toFixed(2)} KiB as JSON with its signed checkpoint; ${
        inclusionMs.toFixed(3)
      } ms each ` +
      `(${proofs} proofs)`
  )
  console.log(
    `consistency: ${(consistencyHashes / proofs).toFixed(1)} hashes (${
      (consistencyHashes / proofs * 32).toFixed(0)
    } bytes) ` +
      `per proof, ${(consistencyBytes / proofs / 1024).toFixed(2)} KiB as JSON; ${consistencyMs.toFixed(3)} ms each`
  )
}).pipe(Effect.provide(AuditStore.layerMemory))

// -----------------------------------------------------------------------------
// 4. (only with `--only verify-pg`) verification of 1M entries from PostgreSQL, as the log wrote them
// -----------------------------------------------------------------------------

const fromPostgres = Effect.gen(function*() {
  const n = quick ? 200_000 : 1_000_000
  const rounds = quick ? 1 : 3
  console.log(`\n## 4. verification of ${fmt(n)} entries from PostgreSQL (${rounds} paired rounds)`)
  if (!(yield* Effect.promise(() => Services.postgres()))) {
    console.log("PostgreSQL does not answer: section skipped")
    return
  }
  const Live = AuditLog.layer({ keys, origin }).pipe(
    Layer.provideMerge(AuditStore.layerSql),
    Layer.provideMerge(PgSchema.layer({ prefix: "audit_bench", maxConnections: 4 })),
    Layer.orDie
  )
  yield* Effect.gen(function*() {
    const audit = yield* AuditLog.AuditLog
    const store = yield* AuditStore.AuditStore
    const filled = performance.now()
    yield* Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) => audit.append(eventOf(i)), {
      concurrency: 256,
      discard: true
    })
    yield* audit.checkpoint
    console.log(`(appended in ${((performance.now() - filled) / 1000).toFixed(1)} s)`)
    const options = { verifier: Checkpoint.verifierOf(keys.signer), verifierKey: keys.signer.verifierKey, origin }
    for (let r = 0; r < rounds; r++) {
      for (const parallel of r % 2 === 0 ? [true, false] : [false, true]) {
        const mainCpu = process.threadCpuUsage()
        const start = performance.now()
        const result = yield* Verifier.verifyStore(store, { ...options, parallel })
        const seconds = (performance.now() - start) / 1000
        const main = process.threadCpuUsage(mainCpu)
        console.log(
          `round ${r + 1}, ${parallel ? "worker thread" : "single thread"}: ${seconds.toFixed(2)} s, ${
            ((main.user + main.system) / 1e6).toFixed(2)
          } s of CPU on the main thread, ok=${result.ok}`
        )
      }
    }
  }).pipe(Effect.provide(Live))
})

const program = Effect.gen(function*() {
  console.log(`# audit log benchmark (node ${process.version}${quick ? ", quick" : ""})`)
  if (only === undefined || only === "appends") yield* appends
  if (only === undefined || only === "verify") yield* million
  if (only === "verify-pg") yield* fromPostgres
}).pipe(Effect.scoped)

Effect.runPromise(program).catch((error) => {
  console.error(error)
  process.exit(1)
})
