import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import * as PgSchema from "../src/PgSchema.js"
import * as Services from "../src/Services.js"

const schemaCount = (name: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ readonly n: number }>`
      SELECT count(*)::int AS n FROM information_schema.schemata WHERE schema_name = ${name}`
    return rows[0]?.n
  })

const postgres = await Services.postgres()

describe("PgSchema", () => {
  it("withSearchPath adds the startup option to a URL with or without a query", () => {
    assert.strictEqual(
      PgSchema.withSearchPath("postgres://u@h:5432/db", "s1"),
      "postgres://u@h:5432/db?options=-c%20search_path%3Ds1"
    )
    assert.strictEqual(
      PgSchema.withSearchPath("postgres://u@h:5432/db?sslmode=disable", "s1"),
      "postgres://u@h:5432/db?sslmode=disable&options=-c%20search_path%3Ds1"
    )
  })

  describe.runIf(postgres)("on PostgreSQL", () => {
    it.effect("works in a schema of its own, dropped when the layer is released", () =>
      Effect.gen(function*() {
        const name = `testkit_${Math.random().toString(36).slice(2, 10)}`
        yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const [current] = yield* sql<{ readonly schema: string }>`SELECT current_schema() AS schema`
          assert.strictEqual(current?.schema, name)
          assert.strictEqual(yield* schemaCount(name), 1)
          yield* sql`CREATE TABLE items (id int PRIMARY KEY)`
          yield* sql`INSERT INTO items VALUES (1), (2)`
          const tables = yield* sql<{ readonly table_schema: string }>`
            SELECT table_schema FROM information_schema.tables WHERE table_name = 'items'`
          assert.include(tables.map((t) => t.table_schema), name)
        }).pipe(Effect.provide(PgSchema.layer({ schema: name })))
        const left = yield* schemaCount(name).pipe(
          Effect.provide(PgSchema.layer({ prefix: "testkit_probe", maxConnections: 1 }))
        )
        assert.strictEqual(left, 0)
      }))

    it.effect("gives two layers two schemas that do not see each other's tables", () =>
      Effect.gen(function*() {
        const seenFromB = yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql`CREATE TABLE shared_name (v text)`
          yield* sql`INSERT INTO shared_name VALUES ('a')`
          return yield* Effect.gen(function*() {
            const other = yield* SqlClient.SqlClient
            yield* other`CREATE TABLE shared_name (v text)`
            return yield* other<{ readonly v: string }>`SELECT v FROM shared_name`
          }).pipe(Effect.provide(PgSchema.layer({ prefix: "testkit_b" })))
        }).pipe(Effect.provide(PgSchema.layer({ prefix: "testkit_a" })))
        assert.deepStrictEqual(seenFromB, [])
      }))
  })
})
