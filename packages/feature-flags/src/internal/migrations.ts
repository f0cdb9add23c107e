/**
 * The tables of the SQL flag provider. One row per flag, kill switch and tenant override, plus a single revision
 * counter that every change increments in the same transaction: replicas poll that one row, and load everything
 * only when it moved.
 */
import { Migrations } from "@ouroboros/sql"
import { Effect } from "effect"
import { SqlClient, type SqlError } from "effect/sql"

const migrations: Record<string, Effect.Effect<void, SqlError.SqlError, SqlClient.SqlClient>> = {
  "0001_create_feature_flags": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE feature_flags (
      key text PRIMARY KEY,
      definition jsonb NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`
    yield* sql`CREATE TABLE feature_flag_kills (
      key text PRIMARY KEY,
      variant text,
      reason text NOT NULL,
      actor text NOT NULL,
      at timestamptz NOT NULL
    )`
    yield* sql`CREATE TABLE feature_flag_overrides (
      key text NOT NULL,
      tenant_id text NOT NULL,
      variant text NOT NULL,
      actor text NOT NULL,
      reason text,
      at timestamptz NOT NULL,
      PRIMARY KEY (key, tenant_id)
    )`
    yield* sql`CREATE TABLE feature_flags_revision (
      id boolean PRIMARY KEY DEFAULT true CHECK (id),
      revision bigint NOT NULL
    )`
    yield* sql`INSERT INTO feature_flags_revision (id, revision) VALUES (true, 0)`
  })
}

/**
 * Applies the pending migrations (recorded in `feature_flags_migrations`).
 *
 * @internal
 */
export const run = Migrations.run({ name: "feature_flags", migrations })
