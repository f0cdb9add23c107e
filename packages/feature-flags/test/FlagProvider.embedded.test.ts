import { assert, describe, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { FeatureFlags } from "../src/index.js"
import { contract, replicas, sqlReplicas } from "./contract.js"
import { layerEmbedded } from "./layers.js"

describe("flag providers: embedded PostgreSQL (PGlite)", () => {
  contract("PGlite", FeatureFlags.layerSql().pipe(Layer.provide(layerEmbedded)), { source: "sql" })

  // One process owns an embedded database: the replicas share its one connection, and with a single connection
  // `listen: "auto"` does not LISTEN, so the poll alone carries changes across.
  replicas(
    "two providers on one embedded database, poll only",
    Effect.gen(function*() {
      const client = Context.get(yield* Layer.build(layerEmbedded), SqlClient.SqlClient)
      const shared = Layer.succeed(SqlClient.SqlClient, client)
      return yield* sqlReplicas(shared, shared, {})
    })
  )

  layer(FeatureFlags.layerSql().pipe(Layer.provideMerge(layerEmbedded)), { timeout: "60 seconds" })(
    "rows edited by hand",
    (it) => {
      it.effect("a row that is not a flag is skipped and reported; the others load", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const flags = yield* FeatureFlags.FeatureFlags
          yield* flags.put("good", { state: "ENABLED", variants: { on: true, off: false }, defaultVariant: "on" }, {
            actor: "ops"
          })
          yield* sql`INSERT INTO feature_flags (key, definition) VALUES ('bad', '{"state": "ON"}'::jsonb)`
          yield* sql`UPDATE feature_flags_revision SET revision = revision + 1`
          yield* flags.refresh
          const [status] = yield* flags.status
          assert.strictEqual(status?.status, "stale")
          assert.include(status?.detail, "flag bad in the database is invalid")
          assert.isTrue(yield* FeatureFlags.value(FeatureFlags.boolean("good", false)))
          assert.strictEqual(
            (yield* FeatureFlags.details(FeatureFlags.boolean("bad", false))).errorCode,
            "FLAG_NOT_FOUND"
          )
          yield* sql`DELETE FROM feature_flags WHERE key = 'bad'`
          yield* sql`UPDATE feature_flags_revision SET revision = revision + 1`
          yield* flags.refresh
          assert.strictEqual((yield* flags.status)[0]?.status, "ready")
        }))
    }
  )
})
