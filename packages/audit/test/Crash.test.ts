/**
 * Durability: a process killed with SIGKILL in the middle of a burst of appends loses none that it acknowledged, and
 * the log it leaves verifies.
 */
import { assert, describe, it } from "@effect/vitest"
import { AuditLog, AuditStore, Checkpoint } from "@ouroboros/audit"
import { PgSchema, Services } from "@ouroboros/testkit"
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { fileURLToPath } from "node:url"

const origin = "crash.example/audit"
const seed = randomBytes(32)
const encryptionKey = randomBytes(32)
const keys = {
  signer: Checkpoint.makeSigner(origin, new Uint8Array(seed)),
  encryptionKey: Redacted.make(new Uint8Array(encryptionKey))
}

const fibers = 32
const perFiber = 100_000

/** Runs the appender until `ackTarget` acknowledgements, kills it with SIGKILL, and reports what it said. */
const runAndKill = (url: string, ackTarget: number) =>
  Effect.promise(() =>
    new Promise<{ acked: Array<string>; signal: NodeJS.Signals | null; done: boolean }>((resolve, reject) => {
      const writer = fileURLToPath(new URL("./fixtures/crash-appender.ts", import.meta.url))
      const child = spawn(process.execPath, [
        "--import",
        "tsx",
        writer,
        url,
        origin,
        seed.toString("hex"),
        encryptionKey.toString("hex"),
        String(fibers),
        String(perFiber)
      ], { stdio: ["ignore", "pipe", "inherit"] })
      const acked: Array<string> = []
      let done = false
      let buffered = ""
      let killed = false
      child.stdout.on("data", (chunk: Buffer) => {
        buffered += chunk.toString("utf8")
        const lines = buffered.split("\n")
        buffered = lines.pop()!
        for (const line of lines) {
          if (line.startsWith("ack ")) acked.push(line.slice(4))
          else if (line === "done") done = true
        }
        if (!killed && acked.length >= ackTarget) {
          killed = true
          child.kill("SIGKILL")
        }
      })
      child.once("error", reject)
      child.once("exit", (_code, signal) => resolve({ acked, signal, done }))
    })
  )

describe.runIf(await Services.postgres())("AuditLog durability", () => {
  it.effect(
    "kill -9 in the middle of a burst: every acknowledged append is there, and the log verifies",
    () =>
      Effect.gen(function*() {
        const schema = `audit_crash_${Math.random().toString(36).slice(2, 10)}`
        const url = PgSchema.withSearchPath(Services.postgresUrl, schema)
        const Store = AuditStore.layerSql.pipe(
          Layer.provideMerge(PgSchema.layer({ schema, maxConnections: 2 })),
          Layer.orDie
        )
        yield* Effect.gen(function*() {
          let total = 0
          for (const target of [400, 900]) {
            // Each round resumes the log the previous one left.
            const run = yield* runAndKill(url, target)
            assert.strictEqual(run.signal, "SIGKILL", "the appender was killed")
            assert.isFalse(run.done, "the kill landed before the burst ended")
            assert.isAtLeast(run.acked.length, target)
            assert.isBelow(run.acked.length, fibers * perFiber, "the kill landed in the middle of the burst")
            const sql = yield* SqlClient.SqlClient
            const rows = yield* sql<{ readonly id: string }>`SELECT id::text AS id FROM audit_entries`
            const stored = new Set(rows.map((r) => r.id))
            const lost = run.acked.filter((id) => !stored.has(id))
            assert.deepStrictEqual(lost, [], `${lost.length} acknowledged appends are missing`)
            assert.isAtLeast(stored.size, total + run.acked.length)
            total = stored.size
            // The log that restarts on it finds its checkpoints consistent, and the whole log verifies.
            yield* Effect.scoped(Effect.gen(function*() {
              const log = yield* AuditLog.make({ keys, origin })
              assert.strictEqual(yield* log.size, total)
              const result = yield* log.verify()
              assert.isTrue(result.ok, JSON.stringify(result.problems))
              assert.strictEqual((yield* log.checkpoint).size, total)
            }))
          }
        }).pipe(Effect.provide(Store))
      }),
    { timeout: 120_000 }
  )
})
