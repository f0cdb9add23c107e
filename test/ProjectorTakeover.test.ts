/**
 * Two bundled server processes (`apps/server/dist/main.js`) on one PostgreSQL database and one Qdrant (the stand-in):
 * one of them holds the projector lease and writes the vectors; after `kill -9` of the holder the other takes over,
 * and every document ingested through either of them reaches the vector store exactly once — none lost, none twice.
 *
 * The database is a fresh one, dropped at the end: the lease is an advisory lock, scoped to a database, and a server
 * of another test on the shared `test` database would otherwise compete for it.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Testing } from "@ouroboros/server"
import { Ports, QdrantStandIn, Services } from "@ouroboros/testkit"
import { Context, Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { call, eventually, tenantA } from "./helpers.js"

const main = Path.resolve(import.meta.dirname, "../apps/server/dist/main.js")

interface Replica {
  readonly name: string
  readonly url: string
  readonly child: ChildProcess
  readonly logs: () => string
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

// The line the lease logs when this process takes it.
const holds = (replica: Replica) =>
  replica.logs().split("\n").filter((line) => line.includes("holds the projector lease"))

const freePort = Effect.promise(() => Ports.freePort())

// The projection's lag as the replica's readiness reports it (undefined while it does not answer).
const lag = (replica: Replica) =>
  Effect.map(
    Effect.promise(() => fetch(`${replica.url}/health/ready`).then((r) => r.json(), () => undefined)),
    (body) =>
      (body as { checks?: Record<string, Array<{ observedValue?: unknown }>> } | undefined)
        ?.checks?.["vector-projection:lag"]?.[0]?.observedValue
  )

const text = (i: number) => `Document number ${i} is about the ${i}th heron of the marsh.`

describe.runIf(Fs.existsSync(main) && await Services.postgres())("the projector lease across server processes", () => {
  it.live(
    "kill -9 of the holder: the other server takes over; every document's points are upserted exactly once",
    () =>
      Effect.gen(function*() {
        const qdrant = yield* QdrantStandIn.scoped()
        // A fresh database for the two servers.
        const database = `ouro_takeover_${Math.random().toString(36).slice(2, 10)}`
        const admin = Context.get(
          yield* Layer.build(PgClient.layer({ url: Redacted.make(Services.postgresUrl), maxConnections: 1 })),
          SqlClient.SqlClient
        )
        yield* Effect.acquireRelease(
          admin`CREATE DATABASE ${admin(database)}`,
          () => Effect.orDie(admin`DROP DATABASE IF EXISTS ${admin(database)} WITH (FORCE)`)
        )
        const databaseUrl = new URL(Services.postgresUrl)
        databaseUrl.pathname = `/${database}`

        const start = (name: string) =>
          Effect.gen(function*() {
            const port = yield* freePort
            const dataDir = yield* Effect.acquireRelease(
              Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), `ouroboros-takeover-${name}-`))),
              (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
            )
            return yield* Effect.acquireRelease(
              Effect.sync((): Replica => {
                const child = spawn(process.execPath, [main], {
                  env: {
                    ...process.env,
                    PORT: String(port),
                    HOST: "127.0.0.1",
                    DATA_DIR: dataDir,
                    DATABASE_URL: databaseUrl.toString(),
                    DATABASE_MAX_CONNECTIONS: "4",
                    QDRANT_URL: qdrant.url,
                    LOG_LEVEL: "info",
                    LOG_FORMAT: "json",
                    OUROBOROS_API_KEYS: `tenant-a:${Testing.keys.tenantA}`,
                    OUROBOROS_ADMIN_API_KEY: Testing.keys.admin,
                    RATE_LIMIT_DEFAULT: "off",
                    RATE_LIMIT_DOCS: "100000/1m",
                    SHUTDOWN_DRAIN_MS: "0",
                    // The replica without the lease tries again often: the takeover is quick, not only bounded.
                    PROJECTOR_LEASE_RETRY_INTERVAL: "300 millis",
                    PROJECTOR_LEASE_CHECK_INTERVAL: "300 millis"
                  },
                  stdio: ["ignore", "pipe", "pipe"]
                })
                let logs = ""
                child.stdout!.on("data", (chunk: Buffer) => (logs += chunk.toString()))
                child.stderr!.on("data", (chunk: Buffer) => (logs += chunk.toString()))
                const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
                  child.once("exit", (code, signal) => resolve({ code, signal }))
                )
                return { name, url: `http://127.0.0.1:${port}`, child, logs: () => logs, exited }
              }),
              (replica) =>
                Effect.promise(() => {
                  if (replica.child.exitCode === null && replica.child.signalCode === null) {
                    replica.child.kill("SIGKILL")
                  }
                  return replica.exited
                })
            )
          })

        const replicas: Array<Replica> = []
        const output = () => replicas.map((r) => `--- ${r.name}:\n${r.logs()}`).join("\n")
        // A wait that gave up says what the processes printed. The deadlines only end a test that would otherwise hang.
        const waitFor = <A>(what: string, effect: Effect.Effect<A>, until: (a: A) => boolean) =>
          eventually(what, effect, until, { every: "50 millis", deadline: "90 seconds" }).pipe(
            Effect.catchDefect((defect) => Effect.die(new Error(`${defect}\n${output()}`)))
          )
        const ready = (replica: Replica) =>
          waitFor(
            `${replica.name} to answer ready`,
            Effect.promise(() => fetch(`${replica.url}/health/ready`).then((r) => r.status, () => 0)),
            (status) => status === 200
          )

        // One after the other: the first applies the migrations and creates the bootstrap tenant.
        const first = yield* start("first")
        replicas.push(first)
        yield* ready(first)
        const second = yield* start("second")
        replicas.push(second)
        yield* ready(second)

        yield* waitFor(
          "one server to take the projector lease",
          Effect.sync(() => holds(first).length + holds(second).length),
          (n) => n > 0
        )
        const [holder, survivor] = holds(first).length > 0 ? [first, second] : [second, first]

        const ingest = (replica: Replica, i: number) =>
          Effect.gen(function*() {
            const reply = yield* call(`${replica.url}/api/v1/documents`, {
              headers: tenantA,
              body: { id: `doc-${i}`, text: text(i) }
            })
            assert.strictEqual(reply.status, 201, `doc-${i} through ${replica.name}: ${JSON.stringify(reply.body)}`)
          })
        // The points of every upsert the stand-in received, with when it received them.
        type Upserted = { readonly id: string | number; readonly payload?: { readonly document_id?: string } }
        const upserts = () =>
          qdrant.requests
            .filter((r) => r.method === "PUT" && /\/points(\?|$)/.test(r.path))
            .flatMap((r) =>
              ((r.body as { points?: ReadonlyArray<Upserted> }).points ?? []).map((point) => ({ ...point, at: r.at }))
            )
        const documentsUpserted = () => new Set(upserts().map((p) => p.payload?.document_id))

        // N documents through both servers, alternately: the holder projects them all.
        const n = 6
        for (let i = 0; i < n; i++) yield* ingest(i % 2 === 0 ? holder : survivor, i)
        yield* waitFor("the first documents' points", Effect.sync(() => documentsUpserted().size), (size) => size === n)
        // The holder's checkpoint is past them before it is killed: a replay of an event whose checkpoint was not yet
        // written is the at-least-once case, not this test's.
        yield* waitFor("the holder's projection to catch up", lag(holder), (value) => value === 0)
        assert.strictEqual(holds(survivor).length, 0, `only one server holds the lease\n${output()}`)

        const killedAt = Date.now()
        holder.child.kill("SIGKILL")
        const exit = yield* Effect.promise(() => holder.exited)
        assert.deepStrictEqual(exit, { code: null, signal: "SIGKILL" }, "the holder was killed")

        // M more through the survivor: they are recorded at once, and applied when it has taken over.
        const m = 4
        for (let i = n; i < n + m; i++) yield* ingest(survivor, i)
        yield* waitFor("the survivor to take the lease", Effect.sync(() => holds(survivor).length), (k) => k > 0)
        yield* waitFor(
          "every document's points",
          Effect.sync(() => documentsUpserted().size),
          (size) => size === n + m
        )
        yield* waitFor("the survivor's projection to catch up", lag(survivor), (value) => value === 0)

        // None lost, none applied twice: each point was upserted once, and every document has its points.
        const points = upserts()
        const ids = points.map((p) => String(p.id))
        const twice = ids.filter((id, i) => ids.indexOf(id) !== i)
        assert.deepStrictEqual(twice, [], `points upserted more than once\n${output()}`)
        assert.deepStrictEqual(
          [...documentsUpserted()].sort(),
          Array.from({ length: n + m }, (_, i) => `doc-${i}`).sort()
        )
        assert.strictEqual(points.length, n + m, "one chunk, so one point, per document")
        // The later documents were written after the holder was gone: by the survivor.
        assert.deepStrictEqual(
          points.filter((p) => p.at > killedAt).map((p) => p.payload?.document_id).sort(),
          Array.from({ length: m }, (_, i) => `doc-${n + i}`).sort()
        )
        // The survivor is still serving, and answers from the vectors the two servers wrote.
        const found = yield* call(`${survivor.url}/api/v1/search`, {
          headers: tenantA,
          body: { query: text(n + m - 1), limit: 1 }
        })
        assert.strictEqual(found.status, 200, JSON.stringify(found.body))
        const best = (found.body as { results: ReadonlyArray<{ documentId: string }> }).results[0]
        assert.strictEqual(best?.documentId, `doc-${n + m - 1}`)
      }).pipe(Effect.scoped),
    { timeout: 300_000 }
  )
})
