/**
 * The event store's schema and the runner that applies it.
 *
 * `json` (not `jsonb`) keeps event payloads byte-for-byte: key order, number spelling and `\u0000` escapes survive a
 * round trip, and nothing queries inside payloads (the tenant id has its own column).
 */
import { Migrations } from "@ouroboros/sql"
import * as Rls from "@ouroboros/tenancy/Rls"
import { Effect } from "effect"
import { SqlClient, type SqlError } from "effect/sql"

/** @internal */
export const eventsTable = "event_store_events"

/** @internal */
export const streamVersionConstraint = "event_store_events_stream_version_key"

const migrations: Record<string, Effect.Effect<void, SqlError.SqlError, SqlClient.SqlClient>> = {
  "0001_create_events": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE event_store_events (
      sequence bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      stream_id text NOT NULL,
      version integer NOT NULL CHECK (version >= 0),
      type text NOT NULL,
      data json NOT NULL,
      metadata json NOT NULL,
      tenant_id text,
      recorded_at timestamptz NOT NULL,
      CONSTRAINT event_store_events_stream_version_key UNIQUE (stream_id, version)
    )`
    yield* sql`CREATE INDEX event_store_events_tenant_idx ON event_store_events (tenant_id, sequence)
      WHERE tenant_id IS NOT NULL`
    yield* sql`CREATE INDEX event_store_events_recorded_at_idx ON event_store_events (recorded_at, sequence)`
  }),
  "0002_create_checkpoints": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE event_store_checkpoints (
      name text PRIMARY KEY,
      sequence bigint NOT NULL CHECK (sequence >= 0),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`
  }),
  // Row-level security by tenant on the events: a transaction scoped to a tenant (`EventStore.forTenant`) sees and
  // writes only that tenant's rows. Work that spans tenants (the projector, backups, rebuilds) runs as the owner,
  // which the policy does not bind. Events without a tenant are invisible under the role.
  "0003_row_level_security": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* Rls.createRole()
    yield* Rls.enable({ table: eventsTable })
    // Inserts under the role draw from the table's identity sequence.
    yield* sql.unsafe(
      `DO $$ BEGIN EXECUTE format('GRANT USAGE ON SEQUENCE %s TO %I', ` +
        `pg_get_serial_sequence('${eventsTable}', 'sequence'), '${Rls.defaultRole}'); END $$`
    )
  }),
  // The epoch of a checkpoint: bumped by every outside reset (`Checkpoints.set`: a restore, a rebuild) and by a new
  // holder of a projection's lease (`Checkpoints.claim`), so that a projector's own writes (`Checkpoints.advance`)
  // only land while nobody reset or took over the projection since it read it.
  "0004_checkpoint_epochs": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`ALTER TABLE event_store_checkpoints ADD COLUMN epoch bigint NOT NULL DEFAULT 0`
  })
}

/**
 * Applies the pending migrations (the table `event_store_migrations` records them).
 *
 * @internal
 */
export const run = Migrations.run({ name: "event_store", migrations })
