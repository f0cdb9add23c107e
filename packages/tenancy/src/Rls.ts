/**
 * PostgreSQL row-level security by tenant: the building blocks for tables that hold rows of many tenants.
 *
 * - {@link createRole} (a migration step) creates a role without login, without superuser rights and without
 *   `BYPASSRLS`, and lets the connecting user switch to it.
 * - {@link enable} (a migration step) turns row-level security on for a table with one policy: a row is visible and
 *   writable only when its tenant column equals the transaction's `app.tenant_id` setting.
 * - {@link withTenant} runs an effect in a transaction that sets `app.tenant_id` (`set_config(…, true)`, i.e.
 *   `SET LOCAL`) and `SET LOCAL ROLE` to that role. Superusers and table owners bypass row-level security, and the
 *   service connects as the owner of its tables, so without the role switch the policy would not apply.
 *
 * Queries outside {@link withTenant} run as the owner and see every row (authentication looks keys up before the
 * tenant is known; operators list all tenants); the policy is a second wall under the application's own
 * `WHERE tenant_id = …` filters, not a replacement for them. With no tenant set, a query under the role sees nothing.
 * Both settings end with the transaction, so a pooled connection never carries them to the next user.
 *
 * The same statements work on PostgreSQL and on the embedded PGlite reached through its socket.
 *
 * @since 0.1.0
 */
import type { TenantId } from "@ouroboros/kernel"
import { Effect, Option } from "effect"
import { dual } from "effect/Function"
import { SqlClient, type SqlError } from "effect/sql"

/**
 * The name of the transaction-local setting that holds the current tenant.
 *
 * @since 0.1.0
 * @category constants
 */
export const setting = "app.tenant_id"

/**
 * The role tenant-scoped transactions run as, unless another is given.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultRole = "ouroboros_tenant"

const identifier = /^[a-z_][a-z0-9_]{0,62}$/

const checkIdentifier = (kind: string, name: string): string => {
  if (!identifier.test(name)) throw new Error(`Rls: ${kind} "${name}" is not a plain lower-case SQL identifier`)
  return name
}

/**
 * Creates `role` (no login, no superuser, no `BYPASSRLS`) when it does not exist, lets the current user `SET ROLE` to
 * it, and gives it the use of the current schema. Roles belong to the whole cluster: two services on one server share
 * it, and a concurrent creation by another process is tolerated.
 *
 * @since 0.1.0
 * @category migrations
 */
export const createRole = (role: string = defaultRole): Effect.Effect<void, SqlError.SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const name = checkIdentifier("role", role)
    yield* sql.unsafe(`DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${name}') THEN
    CREATE ROLE ${name} NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$`)
    // A superuser may SET ROLE to any role; anyone else needs membership.
    yield* sql.unsafe(`DO $$
BEGIN
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE format('GRANT %I TO %I', '${name}', current_user);
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$`)
    yield* sql.unsafe(
      `DO $$ BEGIN EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), '${name}'); END $$`
    )
  })

/**
 * Turns row-level security on for `table`: rows are visible and writable under `role` only when `column` equals the
 * current tenant (`app.tenant_id`), and the role may read and write the table. The table's owner is not subject to the
 * policy (no `FORCE`): the service's own cross-tenant work runs as the owner.
 *
 * @since 0.1.0
 * @category migrations
 * @example
 * import { Rls } from "@ouroboros/tenancy"
 * import { Effect } from "effect"
 * import { SqlClient } from "effect/sql"
 * const migration = Effect.gen(function*() {
 *   const sql = yield* SqlClient.SqlClient
 *   yield* sql`CREATE TABLE notes (id text primary key, tenant_id text not null, body text)`
 *   yield* Rls.createRole()
 *   yield* Rls.enable({ table: "notes" })
 * })
 */
export const enable = (options: {
  readonly table: string
  readonly column?: string | undefined
  readonly role?: string | undefined
  /** What the role may do on the table (default all four of SELECT, INSERT, UPDATE, DELETE). */
  readonly privileges?: ReadonlyArray<"SELECT" | "INSERT" | "UPDATE" | "DELETE"> | undefined
}): Effect.Effect<void, SqlError.SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const table = checkIdentifier("table", options.table)
    const column = checkIdentifier("column", options.column ?? "tenant_id")
    const role = checkIdentifier("role", options.role ?? defaultRole)
    const privileges = (options.privileges ?? ["SELECT", "INSERT", "UPDATE", "DELETE"]).join(", ")
    const condition = `${column}::text = current_setting('${setting}', true)`
    yield* sql.unsafe(`ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`)
    yield* sql.unsafe(`DROP POLICY IF EXISTS ${table}_tenant_isolation ON ${table}`)
    yield* sql.unsafe(
      `CREATE POLICY ${table}_tenant_isolation ON ${table} TO ${role} USING (${condition}) WITH CHECK (${condition})`
    )
    yield* sql.unsafe(`GRANT ${privileges} ON ${table} TO ${role}`)
  })

/**
 * Runs `effect` in a transaction scoped to `tenantId`: `app.tenant_id` is set and the role switched for that
 * transaction only, so every table with {@link enable}d row-level security shows and accepts only that tenant's rows,
 * even to a query without a `WHERE`. Inside an enclosing transaction it is a savepoint, and the enclosing transaction's
 * role and tenant are restored when it ends.
 *
 * @since 0.1.0
 * @category combinators
 * @example
 * import { Rls } from "@ouroboros/tenancy"
 * import { TenantId } from "@ouroboros/kernel"
 * import { Effect } from "effect"
 * import { SqlClient } from "effect/sql"
 * const notes = Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT * FROM notes`).pipe(
 *   Rls.withTenant(TenantId.make("acme"))
 * )
 */
export const withTenant: {
  (tenantId: TenantId.TenantId | string, options?: { readonly role?: string | undefined }): <A, E, R>(
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | SqlError.SqlError, R | SqlClient.SqlClient>
  <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    tenantId: TenantId.TenantId | string,
    options?: { readonly role?: string | undefined }
  ): Effect.Effect<A, E | SqlError.SqlError, R | SqlClient.SqlClient>
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    tenantId: string,
    options?: { readonly role?: string | undefined }
  ): Effect.Effect<A, E | SqlError.SqlError, R | SqlClient.SqlClient> =>
    Effect.flatMap(Effect.service(SqlClient.SqlClient), (sql) => {
      const role = checkIdentifier("role", options?.role ?? defaultRole)
      const scoped = sql`SELECT set_config(${setting}, ${tenantId}, true)`.pipe(
        Effect.andThen(sql.unsafe(`SET LOCAL ROLE ${role}`)),
        Effect.andThen(effect)
      )
      return Effect.flatMap(Effect.serviceOption(sql.transactionService), (outer) =>
        Option.isNone(outer)
          ? sql.withTransaction(scoped)
          // Inside a transaction this is a savepoint, and a `SET LOCAL` outlives its release: the enclosing
          // transaction's role and tenant are put back once the effect succeeds (a failure rolls them back anyway).
          : sql.withTransaction(
            Effect.flatMap(
              sql<{ readonly role: string; readonly tenant: string | null }>`SELECT current_setting('role') AS role,
                current_setting(${setting}, true) AS tenant`,
              (rows) =>
                Effect.tap(
                  scoped,
                  () =>
                    sql`SELECT set_config('role', ${rows[0]?.role ?? "none"}, true),
                      set_config(${setting}, ${rows[0]?.tenant ?? ""}, true)`
                )
            )
          ))
    })
)

/**
 * The tenant of the current transaction (`app.tenant_id`), or none outside {@link withTenant}.
 *
 * @since 0.1.0
 * @category accessors
 */
export const currentTenant: Effect.Effect<string | undefined, SqlError.SqlError, SqlClient.SqlClient> = Effect.flatMap(
  Effect.service(SqlClient.SqlClient),
  (sql) =>
    Effect.map(
      sql<{ readonly tenant: string | null }>`SELECT current_setting(${setting}, true) AS tenant`,
      (rows) => {
        const tenant = rows[0]?.tenant
        return tenant === null || tenant === undefined || tenant === "" ? undefined : tenant
      }
    )
)
