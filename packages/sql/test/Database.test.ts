import { assert, describe, it } from "@effect/vitest"
import { PgSchema, Services } from "@ouroboros/testkit"
import { Effect, Exit, Layer, Logger, Option, Redacted } from "effect"
import { SqlClient, SqlError, Statement } from "effect/sql"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Database, Migrations } from "../src/index.js"

const tmp = () => Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-sql-"))

/** Records the statements an effect runs and the lines it logs. */
const observe = () => {
  const statements: Array<string> = []
  const logs: Array<string> = []
  const record: Statement.Transformer = (statement) =>
    Effect.sync(() => {
      statements.push(statement.compile()[0])
      return statement
    })
  const logger = Logger.make(({ logLevel, message }) => {
    logs.push(`${logLevel.toUpperCase()} ${Array.isArray(message) ? message.map(String).join(" ") : String(message)}`)
  })
  const watch = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    effect.pipe(Effect.provideService(Statement.CurrentTransformer, record), Effect.provide(Logger.layer([logger])))
  return { statements, logs, watch }
}

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

    it.effect("checks an up-to-date set in one statement, without a transaction or a lock", () =>
      Effect.gen(function*() {
        yield* Migrations.run({ name: "fast_test", migrations })
        const { logs, statements, watch } = observe()
        const again = yield* Migrations.run({ name: "fast_test", migrations }).pipe(watch)
        assert.strictEqual(again.length, 0)
        assert.strictEqual(statements.length, 1, statements.join("; "))
        assert.isFalse(statements.some((s) => /\b(LOCK|BEGIN|INSERT|CREATE)\b/i.test(s)), statements.join("; "))
        assert.deepStrictEqual(logs.filter((l) => l.startsWith("WARN")), [])
        // A newer migration in the set is run by the migrator, and only it.
        const more = yield* Migrations.run({
          name: "fast_test",
          migrations: {
            ...migrations,
            "0003_add_note": Effect.flatMap(SqlClient.SqlClient, (sql) => sql`INSERT INTO notes (body) VALUES ('n')`)
          }
        })
        assert.deepStrictEqual(more.map(([id]) => id), [3])
      }).pipe(Effect.provide(makeLayer())), { timeout: 60_000 })

    it.effect("does not take a changed set for an up-to-date one", () =>
      Effect.gen(function*() {
        yield* Migrations.run({ name: "changed_test", migrations })
        // The second migration renamed, and one slipped in below the newest recorded: the migrator runs neither (it
        // only runs newer ids), so the fast path must not hide them either: both are reported.
        const { logs, statements, watch } = observe()
        const { "0002_add_tag": tag, ...rest } = migrations
        const changed: Migrations.Migrations = {
          ...rest,
          "0002_add_tags": tag!,
          "0001_create_notes": migrations["0001_create_notes"]!,
          "0000_extension": Effect.void
        }
        const ran = yield* Migrations.run({ name: "changed_test", migrations: changed }).pipe(watch)
        assert.deepStrictEqual(ran, [])
        const warnings = logs.filter((l) => l.startsWith("WARN"))
        assert.strictEqual(warnings.length, 1, logs.join("\n"))
        assert.include(warnings[0], "2_add_tags (recorded as 2_add_tag)")
        assert.include(warnings[0], "0_extension (not recorded")
        // It went past the fast path, to the migrator (which locks its table).
        assert.isTrue(statements.some((s) => /\bLOCK\b/i.test(s)), statements.join("; "))
      }).pipe(Effect.provide(makeLayer())), { timeout: 60_000 })

    it.effect("leaves a set with duplicate ids to the migrator, which refuses it", () =>
      Effect.gen(function*() {
        yield* Migrations.run({ name: "duplicate_test", migrations })
        const exit = yield* Effect.exit(Migrations.run({
          name: "duplicate_test",
          migrations: { ...migrations, "0002_add_tag_again": Effect.void }
        }))
        assert.include(String(Exit.isFailure(exit) ? exit.cause : ""), "duplicate")
      }).pipe(Effect.provide(makeLayer())), { timeout: 60_000 })
  })

contract("embedded (PGlite)", () => Database.layerEmbedded({ dataDir: tmp() }))

describe.runIf(await Services.postgres())("PostgreSQL", () => {
  contract("server", () => PgSchema.layer({ prefix: "sql_test", maxConnections: 2 }))
})

describe("Database", () => {
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
