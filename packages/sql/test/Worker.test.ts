import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Scope } from "effect"
import { SqlClient } from "effect/sql"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { Database } from "../src/index.js"
import * as Embedded from "../src/internal/embedded.js"

const tmp = () => Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-worker-"))
const script = new URL("../src/pglite-worker.mjs", import.meta.url)

/** PostgreSQL's `DBState` in `global/pg_control` (after the system id and two versions): 1 is "shut down". */
const controlState = (directory: string): number =>
  Fs.readFileSync(Path.join(directory, "global", "pg_control")).readUInt32LE(16)
const shutDown = 1
const inProduction = 6

describe("the embedded database's worker", () => {
  it.effect(
    "reports a data directory PostgreSQL cannot open as a typed failure, with PostgreSQL's reason",
    () =>
      Effect.gen(function*() {
        const dir = tmp()
        Fs.mkdirSync(Path.join(dir, "pg"))
        Fs.writeFileSync(Path.join(dir, "pg", "PG_VERSION"), "99\n") // a data directory, but not a whole one
        const exit = yield* Effect.exit(Effect.scoped(Layer.build(Database.layerEmbedded({ dataDir: dir }))))
        assert.isTrue(Exit.isFailure(exit))
        const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
        const failure = error?._tag === "Fail" ? error.error : undefined
        assert.instanceOf(failure, Database.DatabaseError)
        assert.strictEqual(failure?.reason, "EmbeddedFailed")
        assert.include(failure?.message, `cannot open the data directory ${Path.resolve(dir, "pg")}`)
        assert.include(failure?.message, "postgresql.conf", "PostgreSQL's own words")
        assert.isFalse(Fs.existsSync(Path.join(dir, "ouroboros.lock")), "the lock is released")
      }),
    { timeout: 60_000 }
  )

  it.effect("closes the database with a shutdown checkpoint when the layer ends", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const pg = Path.join(dir, "pg")
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(Database.layerEmbedded({ dataDir: dir }), scope)
      yield* Effect.flatMap(
        SqlClient.SqlClient,
        (sql) => Effect.andThen(sql`CREATE TABLE kept (n int)`, sql`INSERT INTO kept VALUES (7)`)
      ).pipe(Effect.provide(context))
      assert.strictEqual(controlState(pg), inProduction, "open: not shut down")
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(controlState(pg), shutDown)
      const reopened = yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ n: number }>`SELECT n FROM kept`).pipe(
        Effect.provide(Database.layerEmbedded({ dataDir: dir }))
      )
      assert.deepStrictEqual(reopened.map((r) => r.n), [7])
    }), { timeout: 60_000 })

  it.live("closes the database whole when told to stop while it is still starting", () =>
    Effect.promise(async () => {
      const dir = tmp()
      const handle = Embedded.spawn(dir, script)
      const error = await handle.stop(60_000) // at once: the worker is still loading PGlite
      assert.isUndefined(error)
      assert.strictEqual(controlState(dir), shutDown)
      // It never said it was ready: nobody is left waiting on a database that is closed.
      const ready = await handle.ready.then(() => "ready", (failure: Embedded.WorkerFailure) => failure.stage)
      assert.strictEqual(ready, "thread")
    }), { timeout: 60_000 })

  // The driver replaces a connection whose statement was interrupted (a client that went away, a timeout): a cancel
  // request on a side connection, and the replacement opened while the old statement still runs. The socket server
  // refused both (it serves one session), and every statement failed until the old connection closed: a page whose
  // request was cut made the next ones answer 500.
  it.live("answers the next statement after one was interrupted while it ran", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`SELECT 1`
      let landed = 0
      for (let attempt = 0; attempt < 5 && landed < 2; attempt++) {
        const fiber = yield* Effect.forkChild(sql`SELECT pg_sleep(0.4)`)
        yield* Effect.sleep(100)
        const before = performance.now()
        yield* Fiber.interrupt(fiber)
        // An interrupt that lands while the statement runs waits for it to drain (PGlite cannot cancel it); one that
        // lands before the statement went out does not test anything.
        if (performance.now() - before >= 150) landed++
        const rows = yield* sql<{ n: number }>`SELECT 7 AS n`
        assert.deepStrictEqual(rows.map((r) => r.n), [7], `attempt ${attempt}`)
      }
      assert.isAtLeast(landed, 2, "the interrupts landed while the statement ran")
    }).pipe(Effect.provide(Database.layerEmbedded({ dataDir: tmp() }))), { timeout: 60_000 })

  it.live(
    "closes a cancel request at once, and lets a second session wait for the first to close",
    () =>
      Effect.promise(async () => {
        const handle = Embedded.spawn(tmp(), script)
        const { port } = await handle.ready
        const startup = () => {
          const body = Buffer.from("user\0postgres\0database\0postgres\0\0")
          const head = Buffer.alloc(8)
          head.writeInt32BE(8 + body.length, 0)
          head.writeInt32BE(196608, 4) // protocol 3.0
          return Buffer.concat([head, body])
        }
        const open = (first: Buffer) => {
          const socket = Net.connect(port, "127.0.0.1")
          const received: Array<Buffer> = []
          socket.on("data", (chunk) => received.push(chunk))
          socket.on("error", () => {})
          const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()))
          socket.write(first)
          return { socket, received, closed }
        }
        const answered = async (session: ReturnType<typeof open>) => {
          while (!session.received.some((chunk) => chunk.includes(Buffer.from("Z\0\0\0\x05")))) {
            if (session.socket.destroyed) throw new Error("the session was closed")
            await new Promise((resolve) => setTimeout(resolve, 10))
          }
        }
        try {
          const first = open(startup())
          await answered(first) // ReadyForQuery: the first session is open
          const cancel = Buffer.alloc(16)
          cancel.writeInt32BE(16, 0)
          cancel.writeInt32BE(80877102, 4)
          const cancelled = open(cancel)
          await cancelled.closed // closed by the server, while the first session is still open
          assert.isFalse(first.socket.destroyed)
          const second = open(startup())
          first.socket.end()
          await answered(second)
          second.socket.end()
        } finally {
          await handle.stop(10_000)
        }
      }),
    { timeout: 60_000 }
  )

  describe("a thread that ends on its own", () => {
    const fixture = new URL("./fixtures/exiting-worker.mjs", import.meta.url)
    // The fixture reads when to end from its data directory's name.
    const spawn = (when: "starting" | "serving") => Embedded.spawn(Path.join(tmp(), when), fixture)

    it.live("fails the start", () =>
      Effect.promise(async () => {
        const handle = spawn("starting")
        const failure = await handle.ready.then(() => undefined, (failure: Embedded.WorkerFailure) => failure)
        assert.strictEqual(failure?.stage, "thread")
        assert.include(failure?.message, "exited with code 3")
      }))

    it.live("is reported as lost when it ends while serving", () =>
      Effect.promise(async () => {
        const handle = spawn("serving")
        assert.strictEqual((await handle.ready).version, "fixture")
        const lost = await handle.lost
        assert.include(lost.message, "exited with code 3")
        assert.include(await handle.stop(1_000), "exited with code 3", "stop says it was not closed cleanly")
      }))
  })
})
