/**
 * The audit store on `effect/sql` (PostgreSQL 15+, or PGlite through `@ouroboros/sql`).
 *
 * Appends go through one function, `audit_append`, called as one statement: it takes a transaction-level advisory
 * lock, checks that the log still ends where the writer thinks it does, and inserts the leaves, the entries and the
 * checkpoint; the statement's commit is the append's. One round trip per group of appends, and commit order is index
 * order because the lock is held until commit.
 *
 * Triggers keep the tables append-only: UPDATE, DELETE and TRUNCATE are refused, except DELETE of entries inside index
 * ranges that a `retention.prune` entry lists (pruning) and DELETE of subject keys that a `retention.erasure` entry
 * names (erasure), both recorded first in tables of their own that are append-only too.
 */
import { PgTypes } from "@effect/sql-pg"
import { Migrations } from "@ouroboros/sql"
import { Effect, Result } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import type * as AuditStore from "../AuditStore.js"
import { AuditStoreError } from "./errors.js"

const refuse = (table: string) => [
  `CREATE TRIGGER ${table}_no_change BEFORE UPDATE ON ${table} FOR EACH ROW EXECUTE FUNCTION audit_refuse()`,
  `CREATE TRIGGER ${table}_no_truncate BEFORE TRUNCATE ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse()`
]

const statements: ReadonlyArray<string> = [
  `CREATE TABLE audit_leaves (
    idx bigint PRIMARY KEY CHECK (idx >= 0),
    leaf_hash bytea NOT NULL CHECK (octet_length(leaf_hash) = 32)
  )`,
  `CREATE TABLE audit_entries (
    idx bigint PRIMARY KEY,
    id uuid NOT NULL CONSTRAINT audit_entries_id_key UNIQUE,
    time timestamptz NOT NULL,
    type text NOT NULL,
    tenant_id text,
    key_id uuid,
    action text NOT NULL,
    resource_type text NOT NULL,
    resource_id text,
    outcome text NOT NULL,
    correlation_id text,
    content text NOT NULL
  )`,
  `CREATE INDEX audit_entries_tenant_idx ON audit_entries (tenant_id, idx)`,
  `CREATE INDEX audit_entries_type_idx ON audit_entries (type, idx)`,
  `CREATE INDEX audit_entries_key_idx ON audit_entries (key_id, idx) WHERE key_id IS NOT NULL`,
  `CREATE INDEX audit_entries_resource_idx ON audit_entries (resource_type, resource_id, idx)`,
  `CREATE INDEX audit_entries_correlation_idx ON audit_entries (correlation_id) WHERE correlation_id IS NOT NULL`,
  `CREATE INDEX audit_entries_time_idx ON audit_entries (time)`,
  `CREATE TABLE audit_checkpoints (
    size bigint PRIMARY KEY CHECK (size >= 0),
    root_hash bytea NOT NULL CHECK (octet_length(root_hash) = 32),
    note text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
  )`,
  `CREATE TABLE audit_subject_keys (
    key_id uuid PRIMARY KEY,
    tenant_id text NOT NULL,
    subject_ref bytea NOT NULL,
    wrapped_key bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_subject_keys_subject_key UNIQUE (subject_ref, tenant_id)
  )`,
  `CREATE TABLE audit_prunes (
    prune_idx bigint NOT NULL,
    from_idx bigint NOT NULL,
    to_idx bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (from_idx <= to_idx AND to_idx < prune_idx)
  )`,
  `CREATE INDEX audit_prunes_range_idx ON audit_prunes USING gist (int8range(from_idx, to_idx, '[]'))`,
  `CREATE TABLE audit_erasures (
    key_id uuid PRIMARY KEY,
    erasure_idx bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
  )`,
  // Refuses the statement: the one trigger function for every forbidden change.
  `CREATE FUNCTION audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
      USING ERRCODE = 'insufficient_privilege';
  END $$`,
  ...refuse("audit_leaves"),
  `CREATE TRIGGER audit_leaves_no_delete BEFORE DELETE ON audit_leaves FOR EACH ROW EXECUTE FUNCTION audit_refuse()`,
  ...refuse("audit_entries"),
  // Content is removed only inside ranges a prune entry announced, and the log's own retention entries never.
  `CREATE FUNCTION audit_entries_check_delete() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF EXISTS (
      SELECT 1 FROM removed r
      WHERE r.type IN ('retention.prune', 'retention.erasure')
        OR NOT EXISTS (SELECT 1 FROM audit_prunes p WHERE int8range(p.from_idx, p.to_idx, '[]') @> r.idx)
    ) THEN
      RAISE EXCEPTION 'the audit log is append-only: an entry is removed only by a pruning the log announced'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
  END $$`,
  `CREATE TRIGGER audit_entries_delete AFTER DELETE ON audit_entries REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_check_delete()`,
  ...refuse("audit_checkpoints"),
  `CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_refuse()`,
  ...refuse("audit_prunes"),
  `CREATE TRIGGER audit_prunes_no_delete BEFORE DELETE ON audit_prunes FOR EACH ROW EXECUTE FUNCTION audit_refuse()`,
  // A pruning range must be listed in the content of the retention.prune entry it names (parsed once per entry).
  `CREATE FUNCTION audit_prunes_check_insert() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF EXISTS (
      WITH announced AS MATERIALIZED (
        SELECT e.idx, (r.value ->> 0)::bigint AS from_idx, (r.value ->> 1)::bigint AS to_idx
        FROM audit_entries e, jsonb_array_elements(e.content::jsonb -> 'details' -> 'ranges') AS r(value)
        WHERE e.idx IN (SELECT DISTINCT prune_idx FROM added) AND e.type = 'retention.prune'
      )
      SELECT 1 FROM added a
      WHERE NOT EXISTS (
        SELECT 1 FROM announced n WHERE n.idx = a.prune_idx AND n.from_idx = a.from_idx AND n.to_idx = a.to_idx
      )
    ) THEN
      RAISE EXCEPTION 'a pruning range must be listed by the retention.prune entry it names'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
  END $$`,
  `CREATE TRIGGER audit_prunes_insert AFTER INSERT ON audit_prunes REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION audit_prunes_check_insert()`,
  ...refuse("audit_erasures"),
  `CREATE TRIGGER audit_erasures_no_delete BEFORE DELETE ON audit_erasures
    FOR EACH ROW EXECUTE FUNCTION audit_refuse()`,
  `CREATE FUNCTION audit_erasures_check_insert() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF NOT EXISTS (
      SELECT 1 FROM audit_entries e
      WHERE e.idx = NEW.erasure_idx AND e.type = 'retention.erasure'
        AND (e.content::jsonb -> 'details' -> 'keyIds') ? NEW.key_id::text
    ) THEN
      RAISE EXCEPTION 'a key is destroyed only under the retention.erasure entry that names it'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
  END $$`,
  `CREATE TRIGGER audit_erasures_insert BEFORE INSERT ON audit_erasures
    FOR EACH ROW EXECUTE FUNCTION audit_erasures_check_insert()`,
  ...refuse("audit_subject_keys"),
  `CREATE FUNCTION audit_subject_keys_check_delete() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF NOT EXISTS (SELECT 1 FROM audit_erasures x WHERE x.key_id = OLD.key_id) THEN
      RAISE EXCEPTION 'a subject key is destroyed only by an erasure the log recorded'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN OLD;
  END $$`,
  `CREATE TRIGGER audit_subject_keys_delete BEFORE DELETE ON audit_subject_keys
    FOR EACH ROW EXECUTE FUNCTION audit_subject_keys_check_delete()`,
  // One statement per group of appends. In READ COMMITTED every statement of a volatile function takes a fresh
  // snapshot, so the size read after the lock sees the commit of whoever held it before.
  `CREATE FUNCTION audit_append(
    expected bigint, ids uuid[], times timestamptz[], types text[], tenants text[], key_ids uuid[], actions text[],
    resource_types text[], resource_ids text[], outcomes text[], correlation_ids text[], contents text[],
    hashes bytea[], checkpoint_size bigint, checkpoint_root bytea, checkpoint_note text
  ) RETURNS bigint LANGUAGE plpgsql AS $$
  DECLARE
    current_size bigint;
  BEGIN
    PERFORM pg_advisory_xact_lock(1096107092, ('audit_leaves'::regclass::oid::bigint % 2147483647)::int);
    SELECT coalesce(max(idx) + 1, 0) INTO current_size FROM audit_leaves;
    IF current_size <> expected THEN
      RETURN current_size;
    END IF;
    INSERT INTO audit_leaves (idx, leaf_hash)
      SELECT expected + n - 1, h FROM unnest(hashes) WITH ORDINALITY AS u(h, n);
    INSERT INTO audit_entries (idx, id, time, type, tenant_id, key_id, action, resource_type, resource_id, outcome,
        correlation_id, content)
      SELECT expected + n - 1, u.id, u.time, u.type, u.tenant_id, u.key_id, u.action, u.resource_type, u.resource_id,
        u.outcome, u.correlation_id, u.content
      FROM unnest(ids, times, types, tenants, key_ids, actions, resource_types, resource_ids, outcomes,
        correlation_ids, contents) WITH ORDINALITY
        AS u(id, time, type, tenant_id, key_id, action, resource_type, resource_id, outcome, correlation_id, content,
          n);
    IF checkpoint_size IS NOT NULL THEN
      INSERT INTO audit_checkpoints (size, root_hash, note) VALUES (checkpoint_size, checkpoint_root, checkpoint_note)
        ON CONFLICT (size) DO NOTHING;
    END IF;
    RETURN expected;
  END $$`
]

const migrations: Migrations.Migrations = {
  "0001_create_audit_log": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    for (const statement of statements) yield* sql.unsafe(statement)
  })
}

/** @internal */
export const migrate = Migrations.run({ name: "audit", migrations })

const toNumber = (value: unknown): number => typeof value === "bigint" ? Number(value) : Number(value)

const toTime = (value: unknown): number => value instanceof Date ? value.getTime() : new Date(String(value)).getTime()

const toBytes = (value: unknown): Uint8Array => {
  if (value instanceof Uint8Array) return value
  if (typeof value === "string" && value.startsWith("\\x")) return new Uint8Array(Buffer.from(value.slice(2), "hex"))
  throw new TypeError("expected a bytea column")
}

const entryColumns = `idx, id::text AS id, time, type, tenant_id, key_id::text AS key_id, action, resource_type,
  resource_id, outcome, correlation_id, content`

const toEntry = (row: Record<string, unknown>): AuditStore.StoredEntry => ({
  index: toNumber(row.idx),
  id: String(row.id),
  time: toTime(row.time),
  type: String(row.type),
  tenantId: row.tenant_id === null ? null : String(row.tenant_id),
  keyId: row.key_id === null ? null : String(row.key_id),
  action: String(row.action),
  resourceType: String(row.resource_type),
  resourceId: row.resource_id === null ? null : String(row.resource_id),
  outcome: String(row.outcome),
  correlationId: row.correlation_id === null ? null : String(row.correlation_id),
  content: String(row.content)
})

const toKey = (row: Record<string, unknown>): AuditStore.SubjectKey => ({
  keyId: String(row.key_id),
  tenantId: String(row.tenant_id),
  subjectRef: toBytes(row.subject_ref),
  wrappedKey: toBytes(row.wrapped_key)
})

const toCheckpoint = (row: Record<string, unknown>): AuditStore.StoredCheckpoint => ({
  size: toNumber(row.size),
  rootHash: toBytes(row.root_hash),
  note: String(row.note)
})

// Typed array parameters: the driver infers the type of an array from its elements (an object per element, a few
// thousand per append), and cannot for all-null ones. Uuids, times and hashes go in binary form.
const typedArray = (values: ReadonlyArray<unknown>, oid: number) => Result.getOrThrow(PgTypes.array(values, oid))
const textArray = (values: ReadonlyArray<string | null>) => typedArray(values, PgTypes.OID.text)

const failed = (operation: string) => (cause: SqlError.SqlError) =>
  new AuditStoreError({ operation, message: cause.message, cause })

/** @internal */
export const make = Effect.gen(function*() {
  // Column names are ours: a client configured with name transforms must not rewrite them.
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()

  const append: AuditStore.AuditStore["Service"]["append"] = (batch) => {
    const e = batch.entries
    const checkpoint = batch.checkpoint
    return sql<{ readonly size: unknown }>`SELECT audit_append(
      ${batch.expectedSize},
      ${typedArray(e.map((x) => x.id), PgTypes.OID.uuid)}::uuid[],
      ${typedArray(e.map((x) => x.time), PgTypes.OID.timestamptz)}::timestamptz[],
      ${textArray(e.map((x) => x.type))}::text[],
      ${textArray(e.map((x) => x.tenantId))}::text[],
      ${typedArray(e.map((x) => x.keyId), PgTypes.OID.uuid)}::uuid[],
      ${textArray(e.map((x) => x.action))}::text[],
      ${textArray(e.map((x) => x.resourceType))}::text[],
      ${textArray(e.map((x) => x.resourceId))}::text[],
      ${textArray(e.map((x) => x.outcome))}::text[],
      ${textArray(e.map((x) => x.correlationId))}::text[],
      ${textArray(e.map((x) => x.content))}::text[],
      ${typedArray(e.map((x) => x.leafHash), PgTypes.OID.bytea)}::bytea[],
      ${checkpoint?.size ?? null}::bigint,
      ${checkpoint?.rootHash ?? null}::bytea,
      ${checkpoint?.note ?? null}::text
    ) AS size`.pipe(
      Effect.map((rows) => {
        const size = toNumber(rows[0]?.size)
        return size === batch.expectedSize
          ? { _tag: "Appended" as const }
          : { _tag: "Behind" as const, size }
      }),
      Effect.mapError(failed("append"))
    )
  }

  const size = sql<{ readonly n: unknown }>`SELECT coalesce(max(idx) + 1, 0) AS n FROM audit_leaves`.pipe(
    Effect.map((rows) => toNumber(rows[0]?.n ?? 0)),
    Effect.mapError(failed("size"))
  )

  const leafHashes: AuditStore.AuditStore["Service"]["leafHashes"] = (from, to) =>
    sql<{ readonly leaf_hash: unknown }>`SELECT leaf_hash FROM audit_leaves
      WHERE idx >= ${from} AND idx < ${to} ORDER BY idx`.pipe(
      Effect.map((rows) => rows.map((row) => toBytes(row.leaf_hash))),
      Effect.mapError(failed("leafHashes"))
    )

  const window: AuditStore.AuditStore["Service"]["window"] = (from, to) =>
    Effect.all({
      leaves: sql<Record<string, unknown>>`SELECT idx, leaf_hash FROM audit_leaves
        WHERE idx >= ${from} AND idx < ${to} ORDER BY idx`.pipe(
        Effect.map((rows) => rows.map((row) => ({ index: toNumber(row.idx), hash: toBytes(row.leaf_hash) })))
      ),
      entries: sql<Record<string, unknown>>`SELECT ${sql.literal(entryColumns)} FROM audit_entries
        WHERE idx >= ${from} AND idx < ${to} ORDER BY idx`.pipe(Effect.map((rows) => rows.map(toEntry))),
      checkpoints: sql<Record<string, unknown>>`SELECT size, root_hash, note FROM audit_checkpoints
        WHERE size > ${from} AND size <= ${to} ORDER BY size`.pipe(Effect.map((rows) => rows.map(toCheckpoint)))
    }).pipe(Effect.mapError(failed("window")))

  const extent = sql<{ readonly lo: unknown; readonly hi: unknown }>`SELECT
      least(0, (SELECT min(idx) FROM audit_leaves), (SELECT min(idx) FROM audit_entries)) AS lo,
      greatest(0, (SELECT max(idx) + 1 FROM audit_leaves), (SELECT max(idx) + 1 FROM audit_entries)) AS hi`.pipe(
    Effect.map((rows) => ({ from: toNumber(rows[0]?.lo ?? 0), to: toNumber(rows[0]?.hi ?? 0) })),
    Effect.mapError(failed("extent"))
  )

  const one = (operation: string, rows: Effect.Effect<ReadonlyArray<Record<string, unknown>>, SqlError.SqlError>) =>
    rows.pipe(
      Effect.map((rows) => rows[0] === undefined ? undefined : toEntry(rows[0])),
      Effect.mapError(failed(operation))
    )

  const isUuid = (id: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)

  const query: AuditStore.AuditStore["Service"]["query"] = (q) => {
    const conditions = [
      ...(q.tenantId === undefined ? [] : [sql`tenant_id = ${q.tenantId}`]),
      ...(q.keyIds === undefined ? [] : [sql`key_id = ANY(${q.keyIds}::uuid[])`]),
      ...(q.type === undefined ? [] : [sql`type = ${q.type}`]),
      ...(q.resourceType === undefined ? [] : [sql`resource_type = ${q.resourceType}`]),
      ...(q.resourceId === undefined ? [] : [sql`resource_id = ${q.resourceId}`]),
      ...(q.correlationId === undefined ? [] : [sql`correlation_id = ${q.correlationId}`]),
      ...(q.from === undefined ? [] : [sql`time >= ${new Date(q.from)}`]),
      ...(q.to === undefined ? [] : [sql`time < ${new Date(q.to)}`]),
      ...(q.before === undefined ? [] : [sql`idx < ${q.before}`])
    ]
    return sql<Record<string, unknown>>`SELECT ${sql.literal(entryColumns)} FROM audit_entries
      ${conditions.length === 0 ? sql.literal("") : sql`WHERE ${sql.and(conditions)}`}
      ORDER BY idx DESC LIMIT ${q.limit}`.pipe(
      Effect.map((rows) => rows.map(toEntry)),
      Effect.mapError(failed("query"))
    )
  }

  const checkpoints: AuditStore.AuditStore["Service"]["checkpoints"] = (from = 0, to = Number.MAX_SAFE_INTEGER) =>
    sql<Record<string, unknown>>`SELECT size, root_hash, note FROM audit_checkpoints
      WHERE size >= ${from} AND size <= ${to} ORDER BY size`.pipe(
      Effect.map((rows) => rows.map(toCheckpoint)),
      Effect.mapError(failed("checkpoints"))
    )

  const latestCheckpoint = sql<Record<string, unknown>>`SELECT size, root_hash, note FROM audit_checkpoints
    ORDER BY size DESC LIMIT 1`.pipe(
    Effect.map((rows) => rows[0] === undefined ? undefined : toCheckpoint(rows[0])),
    Effect.mapError(failed("latestCheckpoint"))
  )

  const ensureKeys: AuditStore.AuditStore["Service"]["ensureKeys"] = (keys) =>
    keys.length === 0 ? Effect.succeed([]) : Effect.gen(function*() {
      yield* sql`INSERT INTO audit_subject_keys (key_id, tenant_id, subject_ref, wrapped_key)
        SELECT * FROM unnest(${keys.map((k) => k.keyId)}::uuid[], ${keys.map((k) => k.tenantId)}::text[],
          ${keys.map((k) => k.subjectRef)}::bytea[], ${keys.map((k) => k.wrappedKey)}::bytea[])
        ON CONFLICT (subject_ref, tenant_id) DO NOTHING`
      const rows = yield* sql<Record<string, unknown>>`SELECT key_id::text AS key_id, tenant_id, subject_ref,
          wrapped_key
        FROM audit_subject_keys
        WHERE (subject_ref, tenant_id) IN (
          SELECT * FROM unnest(${keys.map((k) => k.subjectRef)}::bytea[], ${keys.map((k) => k.tenantId)}::text[])
        )`
      const nameOf = (k: { subjectRef: Uint8Array; tenantId: string }) =>
        `${Buffer.from(k.subjectRef).toString("hex")}|${k.tenantId}`
      const stored = new Map(rows.map(toKey).map((k) => [nameOf(k), k]))
      return keys.flatMap((k) => {
        const found = stored.get(nameOf(k))
        return found === undefined ? [] : [found]
      })
    }).pipe(Effect.mapError(failed("ensureKeys")))

  const findKeys: AuditStore.AuditStore["Service"]["findKeys"] = (subjectRef, tenantId) =>
    sql<Record<string, unknown>>`SELECT key_id::text AS key_id, tenant_id, subject_ref, wrapped_key
      FROM audit_subject_keys WHERE subject_ref = ${subjectRef}
      ${tenantId === undefined ? sql.literal("") : sql`AND tenant_id = ${tenantId}`}
      ORDER BY tenant_id`.pipe(
      Effect.map((rows) => rows.map(toKey)),
      Effect.mapError(failed("findKeys"))
    )

  const keysById: AuditStore.AuditStore["Service"]["keysById"] = (keyIds) => {
    const valid = keyIds.filter(isUuid)
    return valid.length === 0 ? Effect.succeed([]) : sql<Record<string, unknown>>`SELECT key_id::text AS key_id,
        tenant_id, subject_ref, wrapped_key
      FROM audit_subject_keys WHERE key_id = ANY(${valid}::uuid[])`.pipe(
      Effect.map((rows) => rows.map(toKey)),
      Effect.mapError(failed("keysById"))
    )
  }

  const destroyKey: AuditStore.AuditStore["Service"]["destroyKey"] = (keyId, erasureIndex) =>
    Effect.gen(function*() {
      yield* sql`INSERT INTO audit_erasures (key_id, erasure_idx) VALUES (${keyId}::uuid, ${erasureIndex})
        ON CONFLICT (key_id) DO NOTHING`
      const rows = yield* sql`DELETE FROM audit_subject_keys WHERE key_id = ${keyId}::uuid RETURNING key_id`
      return rows.length > 0
    }).pipe(sql.withTransaction, Effect.mapError(failed("destroyKey")))

  const pruneCandidates: AuditStore.AuditStore["Service"]["pruneCandidates"] = (selector) => {
    const conditions = [
      sql`time < ${new Date(selector.before)}`,
      sql`type NOT IN ('retention.prune', 'retention.erasure')`,
      ...(selector.tenantId === undefined ? [] : [sql`tenant_id = ${selector.tenantId}`]),
      ...(selector.type === undefined ? [] : [sql`type = ${selector.type}`]),
      ...(selector.excludeTypes.length === 0 ? [] : [sql`type <> ALL(${selector.excludeTypes}::text[])`]),
      ...(selector.excludeTenants.length === 0
        ? []
        : [sql`(tenant_id IS NULL OR tenant_id <> ALL(${selector.excludeTenants}::text[]))`]),
      ...(selector.excludePairs.length === 0 ? [] : [sql`NOT EXISTS (
        SELECT 1 FROM unnest(${selector.excludePairs.map(([t]) => t)}::text[],
          ${selector.excludePairs.map(([, type]) => type)}::text[]) AS p(tenant_id, type)
        WHERE p.tenant_id = audit_entries.tenant_id AND p.type = audit_entries.type)`])
    ]
    return sql<{ readonly idx: unknown }>`SELECT idx FROM audit_entries WHERE ${sql.and(conditions)}
      ORDER BY idx LIMIT ${selector.limit}`.pipe(
      Effect.map((rows) => rows.map((row) => toNumber(row.idx))),
      Effect.mapError(failed("pruneCandidates"))
    )
  }

  const prune: AuditStore.AuditStore["Service"]["prune"] = (pruneIndex, ranges) =>
    ranges.length === 0 ? Effect.succeed(0) : Effect.gen(function*() {
      const from = ranges.map(([a]) => a)
      const to = ranges.map(([, b]) => b)
      yield* sql`INSERT INTO audit_prunes (prune_idx, from_idx, to_idx)
        SELECT ${pruneIndex}, f, t FROM unnest(${from}::int8[], ${to}::int8[]) AS r(f, t)`
      const removed = yield* sql`DELETE FROM audit_entries e
        USING unnest(${from}::int8[], ${to}::int8[]) AS r(f, t)
        WHERE e.idx BETWEEN r.f AND r.t RETURNING e.idx`
      return removed.length
    }).pipe(sql.withTransaction, Effect.mapError(failed("prune")))

  return {
    append,
    size,
    leafHashes,
    window,
    extent,
    entryById: (id) =>
      isUuid(id)
        ? one("entryById", sql`SELECT ${sql.literal(entryColumns)} FROM audit_entries WHERE id = ${id}::uuid`)
        : Effect.succeed(undefined),
    entryAt: (index) =>
      one("entryAt", sql`SELECT ${sql.literal(entryColumns)} FROM audit_entries WHERE idx = ${index}`),
    query,
    checkpoints,
    latestCheckpoint,
    ensureKeys,
    findKeys,
    keysById,
    destroyKey,
    pruneCandidates,
    prune
  } satisfies AuditStore.AuditStore["Service"]
})
