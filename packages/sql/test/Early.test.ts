import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Scope } from "effect"
import { SqlClient } from "effect/sql"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Database } from "../src/index.js"
import * as Lock from "../src/internal/lock.js"

const tmp = () => Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-early-"))
const lockFile = (dir: string) => Path.join(dir, "ouroboros.lock")
const holder = (dir: string) => Lock.parse(Fs.readFileSync(lockFile(dir), "utf8"))
const pending = () =>
  (globalThis as { [key: symbol]: { early?: { directory: string } } | undefined })[Symbol.for("@ouroboros/sql/Early")]
    ?.early

/** Builds the embedded layer in a scope of its own and runs a query on it. */
const openAndQuery = (dataDir: string) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(Database.layerEmbedded({ dataDir }), scope)
    const sql = Layer.succeedContext(context)
    const rows = yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ n: number }>`SELECT 41 + 1 AS n`).pipe(
      Effect.provide(sql)
    )
    return { scope, n: rows[0]?.n }
  })

describe("Database.startEmbeddedEarly", () => {
  it("starts nothing when DATABASE_URL is set", () => {
    const dir = tmp()
    const outcome = Database.startEmbeddedEarly({ DATABASE_URL: "postgres://db/ouroboros", DATA_DIR: dir })
    assert.deepStrictEqual(outcome, { _tag: "Skipped", reason: "DATABASE_URL is set" })
    assert.isFalse(Fs.existsSync(lockFile(dir)))
    assert.isUndefined(pending())
  })

  it("starts nothing when the data directory is locked, and leaves the error to the layer", () => {
    const dir = tmp()
    Fs.writeFileSync(lockFile(dir), "1")
    const outcome = Database.startEmbeddedEarly({ DATA_DIR: dir })
    assert.strictEqual(outcome._tag, "Skipped")
    assert.isUndefined(pending())
  })

  it.effect("locks at once, and the layer adopts the running database (lock and worker)", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const outcome = Database.startEmbeddedEarly({ DATA_DIR: dir })
      assert.deepStrictEqual(outcome, { _tag: "Started", directory: Path.resolve(dir, "pg") })
      assert.strictEqual(holder(dir)?.token, Lock.currentOwner().token, "locked before any layer runs")
      // Without adoption the layer would fail: this process already holds the lock.
      const { n, scope } = yield* openAndQuery(dir)
      assert.strictEqual(n, 42)
      assert.isUndefined(pending())
      // A second opener in the same process is refused while the adopted database runs.
      const second = yield* Effect.exit(Effect.scoped(Layer.build(Database.layerEmbedded({ dataDir: dir }))))
      assert.include(String(Exit.isFailure(second) ? second.cause : ""), "already open in this process")
      yield* Scope.close(scope, Exit.void)
      assert.isFalse(Fs.existsSync(lockFile(dir)), "the adopted lock is released with the layer")
      // The database was closed cleanly: it opens again (not adopted this time) with nothing lost.
      const reopened = yield* openAndQuery(dir)
      assert.strictEqual(reopened.n, 42)
      yield* Scope.close(reopened.scope, Exit.void)
    }), { timeout: 60_000 })

  it.effect("is stopped and unlocked when the layer is configured for another directory", () =>
    Effect.gen(function*() {
      const early = tmp()
      const configured = tmp()
      assert.strictEqual(Database.startEmbeddedEarly({ DATA_DIR: early })._tag, "Started")
      const { n, scope } = yield* openAndQuery(configured)
      assert.strictEqual(n, 42)
      assert.isFalse(Fs.existsSync(lockFile(early)), "the early start's lock is released")
      assert.strictEqual(holder(configured)?.token, Lock.currentOwner().token)
      yield* Scope.close(scope, Exit.void)
    }), { timeout: 60_000 })
})
