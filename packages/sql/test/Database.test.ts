import { assert, describe, it } from "@effect/vitest"
import { PgSchema, Services } from "@ouroboros/testkit"
import { Effect, Exit, Layer, Option, Redacted } from "effect"
import { SqlClient, SqlError } from "effect/sql"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Database, Migrations } from "../src/index.js"

const tmp = () => Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-sql-"))

const migrations: Migrations.Migrations = {
  "0001_create_notes": Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`CREATE TABLE notes (id serial primary key, body text not null unique)`
  ),
  "0002_add_tag": Effect.flatMap(SqlClient.SqlClient, (sql) => sql`ALTER TABLE notes ADD COLUMN tag text`)
}

// The same migrations and queries run on both backends.
const contract = (name: string, makeLayer: () => Layer.Layer<SqlClient.SqlClient, unknown>) =>
  describe(name, () => {
    it.effect("runs migrations once and keeps PostgreSQL semantics", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const first = yield* Migrations.run({ name: "notes_test", migrations })
        assert.deepStrictEqual(first.map(([id]) => id), [1, 2])
        const again = yield* Migrations.run({ name: "notes_test", migrations })
        assert.strictEqual(again.length, 0)
        yield* sql`INSERT INTO notes (body, tag) VALUES ('a', 'x'), ('b', 'y')`
        const rows = yield* sql<{ body: string }>`SELECT body FROM notes WHERE tag = ${"y"}`
        assert.deepStrictEqual(rows.map((r) => r.body), ["b"])
        // A unique violation is reported as an error with the production error code, not as a success.
        const duplicate = yield* Effect.exit(sql`INSERT INTO notes (body) VALUES ('a')`)
        assert.isTrue(Exit.isFailure(duplicate))
        // Callers (the event store) tell it apart by reason, constraint and SQLSTATE.
        const error = Exit.findErrorOption(duplicate)
        assert.isTrue(Option.isSome(error) && SqlError.isSqlError(error.value))
        const reason = Option.getOrUndefined(error)?.reason
        assert.strictEqual(reason?._tag, "UniqueViolation")
        assert.strictEqual(reason?._tag === "UniqueViolation" ? reason.constraint : undefined, "notes_body_key")
        assert.strictEqual((reason?.cause as { readonly code?: unknown } | undefined)?.code, "23505")
        const counted = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM notes`
        assert.strictEqual(counted[0]?.n, 2)
        // Transactions roll back on failure.
        const failed = yield* Effect.exit(sql.withTransaction(
          Effect.andThen(sql`INSERT INTO notes (body) VALUES ('c')`, Effect.fail("boom" as const))
        ))
        assert.isTrue(Exit.isFailure(failed))
        const after = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM notes`
        assert.strictEqual(after[0]?.n, 2)
      }).pipe(Effect.provide(makeLayer())), { timeout: 60_000 })
  })

contract("embedded (PGlite)", () => Database.layerEmbedded({ dataDir: tmp() }))

describe.runIf(await Services.postgres())("PostgreSQL", () => {
  contract("server", () => PgSchema.layer({ prefix: "sql_test", maxConnections: 2 }))
})

describe("Database", () => {
  it.effect("locks the data directory against a second opener", () =>
    Effect.gen(function*() {
      const dir = tmp()
      Fs.writeFileSync(Path.join(dir, "ouroboros.lock"), "1") // pid 1 is always alive
      const exit = yield* Effect.exit(Database.lockDirectory(dir))
      assert.isTrue(Exit.isFailure(exit))
      assert.include(String(Exit.isFailure(exit) ? exit.cause : ""), "in use by process 1")
      // A stale lock (a process that no longer runs) is taken over.
      Fs.writeFileSync(Path.join(dir, "ouroboros.lock"), "999999999")
      const file = yield* Database.lockDirectory(dir)
      assert.strictEqual(Fs.readFileSync(file, "utf8"), String(process.pid))
    }))

  it.effect("names an unreachable DATABASE_URL", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Effect.scoped(Layer.build(Database.layer({
        url: Option.some(Redacted.make("postgres://postgres@127.0.0.1:1/nope")),
        dataDir: tmp()
      }))))
      assert.isTrue(Exit.isFailure(exit))
      assert.include(
        String(Exit.isFailure(exit) ? exit.cause : ""),
        "cannot connect to DATABASE_URL (127.0.0.1:1/nope)"
      )
    }))
})
