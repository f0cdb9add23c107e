/**
 * The tables of the tenancy package, one migration set (`tenancy_migrations`) shared by its SQL stores.
 *
 * @internal
 */
import { Migrations } from "@ouroboros/sql"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import * as Rls from "../Rls.js"

const migrations: Migrations.Migrations = {
  "0001_tenants_and_keys": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE tenancy_tenants (
      id text PRIMARY KEY,
      name text NOT NULL,
      tier text NOT NULL,
      quotas jsonb NOT NULL DEFAULT '{}'::jsonb,
      rate_limit_tier text,
      model text,
      dedicated_collection boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL
    )`
    yield* sql`CREATE TABLE tenancy_api_keys (
      id text PRIMARY KEY,
      tenant_id text NOT NULL REFERENCES tenancy_tenants (id) ON DELETE CASCADE,
      digest text NOT NULL,
      name text,
      roles jsonb NOT NULL,
      created_at timestamptz NOT NULL,
      expires_at timestamptz,
      revoked_at timestamptz,
      replaced_by text
    )`
    yield* sql`CREATE INDEX tenancy_api_keys_tenant_idx ON tenancy_api_keys (tenant_id)`
  }),
  "0002_quotas": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // One row per tenant, quota and period ('total' for gauges, '2025-01-31' for a day, '2025-01' for a month).
    yield* sql`CREATE TABLE tenancy_quota_counters (
      tenant_id text NOT NULL,
      quota text NOT NULL,
      period text NOT NULL,
      used bigint NOT NULL,
      PRIMARY KEY (tenant_id, quota, period)
    )`
  }),
  "0003_usage": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // A batch id is recorded in the transaction that applies the batch: a retried batch is a no-op.
    yield* sql`CREATE TABLE tenancy_usage_batches (
      id text PRIMARY KEY,
      applied_at timestamptz NOT NULL
    )`
    // The CloudEvents themselves (what a meter such as OpenMeter or Stripe ingests), and their daily sums.
    yield* sql`CREATE TABLE tenancy_usage_events (
      id text PRIMARY KEY,
      tenant_id text NOT NULL,
      type text NOT NULL,
      time timestamptz NOT NULL,
      event jsonb NOT NULL
    )`
    yield* sql`CREATE INDEX tenancy_usage_events_tenant_idx ON tenancy_usage_events (tenant_id, time)`
    yield* sql`CREATE TABLE tenancy_usage_daily (
      tenant_id text NOT NULL,
      day date NOT NULL,
      kind text NOT NULL,
      amount bigint NOT NULL,
      PRIMARY KEY (tenant_id, day, kind)
    )`
  }),
  "0004_row_level_security": Effect.gen(function*() {
    yield* Rls.createRole()
    for (const table of ["tenancy_api_keys", "tenancy_quota_counters", "tenancy_usage_events", "tenancy_usage_daily"]) {
      yield* Rls.enable({ table })
    }
  }),
  "0005_last_used_and_retention": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // When a key was last used, written in coalesced batches (never once per request).
    yield* sql`ALTER TABLE tenancy_api_keys ADD COLUMN last_used_at timestamptz`
    // Pruning by age (usage retention) reads these.
    yield* sql`CREATE INDEX tenancy_usage_events_time_idx ON tenancy_usage_events (time)`
    yield* sql`CREATE INDEX tenancy_usage_daily_day_idx ON tenancy_usage_daily (day)`
    yield* sql`CREATE INDEX tenancy_usage_batches_applied_idx ON tenancy_usage_batches (applied_at)`
  })
}

/**
 * Runs the package's migrations (each SQL store runs them; the migrator locks its table, so concurrent replicas wait).
 *
 * @internal
 */
export const run = Migrations.run({ name: "tenancy", migrations }).pipe(Effect.asVoid)
