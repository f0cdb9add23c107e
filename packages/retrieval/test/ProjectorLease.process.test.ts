/**
 * Two replica processes (`fixture/replica.ts`) on one PostgreSQL schema and one Qdrant (the stand-in): one projects;
 * after `kill -9` of the holder the other takes over, and every event reaches the vector store exactly once.
 */
import { assert, describe, it } from "@effect/vitest"
import { Checkpoints, EventStore } from "@ouroboros/event-store"
import { Embedder } from "@ouroboros/llm"
import { PgSchema, QdrantStandIn, Services } from "@ouroboros/testkit"
import { Context, Effect, Layer } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import * as Retrieval from "../src/Retrieval.js"
import { eventually, tenantA } from "./layers.js"

const fixture = fileURLToPath(new URL("fixture/replica.ts", import.meta.url))

interface Replica {
  readonly child: ChildProcess
  readonly output: () => string
  readonly exited: Promise<unknown>
}

const embeddedBy = (replica: Replica) =>
  [...replica.output().matchAll(/EMBEDDED (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0)
const projecting = (replica: Replica) => {
  const states = [...replica.output().matchAll(/PROJECTING (true|false)/g)]
  return states[states.length - 1]?.[1] === "true"
}

const ingested = (i: number) => ({
  type: "DocumentIngested",
  data: {
    documentId: `doc-${i}`,
    text: `Document number ${i} is about topic ${i}.`,
    metadata: {},
    contentHash: `hash-${i}`,
    chunks: 1,
    embedder: Embedder.localId(384)
  },
  metadata: { tenantId: tenantA.tenantId, subject: "test" }
})

describe.runIf(await Services.postgres())("the projector lease across processes", () => {
  it.live(
    "kill -9 of the holder: the other process continues; every event is upserted once",
    () =>
      Effect.gen(function*() {
        const schema = `retrieval_proc_${Math.random().toString(36).slice(2, 10)}`
        const sqlLayer = PgSchema.layer({ schema, maxConnections: 2 })
        const context = yield* Layer.build(
          Layer.mergeAll(EventStore.layer, Checkpoints.layer).pipe(Layer.provideMerge(sqlLayer), Layer.orDie)
        )
        const events = Context.get(context, EventStore.EventStore)
        const checkpoints = Context.get(context, Checkpoints.Checkpoints)
        const qdrant = yield* QdrantStandIn.scoped()
        const key = Math.floor(Math.random() * 0x7fffffff)

        const start = Effect.acquireRelease(
          Effect.sync((): Replica => {
            const child = spawn(process.execPath, ["--import", "tsx", fixture], {
              env: {
                ...process.env,
                PG_URL: PgSchema.withSearchPath(Services.postgresUrl, schema),
                QDRANT_URL: qdrant.url,
                LEASE_KEY_1: String(0x4f55524f),
                LEASE_KEY_2: String(key)
              },
              stdio: ["ignore", "pipe", "pipe"]
            })
            let output = ""
            child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()))
            child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()))
            const exited = new Promise((done) => child.once("close", done))
            return { child, output: () => output, exited }
          }),
          (replica) =>
            Effect.promise(() => {
              if (replica.child.exitCode === null && replica.child.signalCode === null) replica.child.kill("SIGKILL")
              return replica.exited
            })
        )
        const first = yield* start
        const second = yield* start
        const both = Effect.sync(() => `first:\n${first.output()}\nsecond:\n${second.output()}`)
        // A wait that gave up says what the processes printed.
        const waitFor = (what: string, condition: Effect.Effect<boolean, unknown>, checks?: number) =>
          eventually(what, condition, checks).pipe(
            Effect.catchDefect((defect) =>
              Effect.flatMap(both, (output) => Effect.die(new Error(`${defect}\n${output}`)))
            )
          )

        // tsx compiles the fixture at start: that takes seconds on a busy machine. The bounds of the waits only end a
        // test that would otherwise hang.
        yield* waitFor("one process projects", Effect.sync(() => projecting(first) || projecting(second)), 9000)
        const [holder, other] = projecting(first) ? [first, second] : [second, first]

        for (let i = 0; i < 5; i++) {
          yield* events.append(Retrieval.streamOf(tenantA.tenantId, `doc-${i}`), [ingested(i)])
        }
        const checkpointIs = (n: number) => Effect.map(checkpoints.get(Retrieval.checkpointName), (c) => c === n)
        yield* waitFor("the holder applied them", checkpointIs(5))
        assert.strictEqual(embeddedBy(holder), 5, yield* both)
        assert.strictEqual(embeddedBy(other), 0, yield* both)
        assert.isFalse(projecting(other))

        holder.child.kill("SIGKILL")
        yield* Effect.promise(() => holder.exited)
        yield* waitFor("the other process takes over", Effect.sync(() => projecting(other)), 9000)

        for (let i = 5; i < 8; i++) {
          yield* events.append(Retrieval.streamOf(tenantA.tenantId, `doc-${i}`), [ingested(i)])
        }
        yield* waitFor("the new holder applied them", checkpointIs(8))
        assert.strictEqual(embeddedBy(other), 3, yield* both)

        // The vector store saw each document's points written once: none lost, none applied twice.
        const upserted = qdrant.requests
          .filter((r) => r.method === "PUT" && /\/points(\?|$)/.test(r.path))
          .flatMap((r) => ((r.body as { points?: ReadonlyArray<{ payload?: { document_id?: string } }> }).points ?? []))
          .map((p) => p.payload?.document_id)
        assert.deepStrictEqual([...upserted].sort(), Array.from({ length: 8 }, (_, i) => `doc-${i}`), yield* both)
      }).pipe(Effect.scoped),
    { timeout: 300_000 }
  )
})
