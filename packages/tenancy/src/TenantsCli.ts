/**
 * The `tenants` and `keys` commands of a command line: `tenants create <id> | list`, `keys create <tenant> | rotate
 * <tenant> <keyId> | revoke <tenant> <keyId>`, each with `--json` for machine-readable output on stdout. A created or
 * rotated key is printed once, as the admin API shows it. They need only the `Tenants` service; the application builds
 * the layers in its CLI entry.
 *
 * @since 0.1.0
 */
import { TenantId } from "@ouroboros/kernel"
import { Console, Effect, Option, Schema } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { ApiKeyInfo, IssuedKey, KeyRole, Tenant, Tier } from "./Tenant.js"
import * as Tenants from "./Tenants.js"

const json = Flag.Boolean("json").pipe(
  Flag.withDefault(false),
  Flag.withoutNegation,
  Flag.withDescription("Print the result as JSON on stdout")
)

const print = <A>(asJson: boolean, schema: Schema.Codec<A, unknown>, value: A, human: (value: A) => string) =>
  asJson
    ? Console.log(JSON.stringify(Schema.encodeSync(Schema.toCodecJson(schema))(value), null, 2))
    : Console.log(human(value))

// Errors: a readable line on stderr (or a JSON object on stdout with --json) and a non-zero exit code.
const reportErrors = (asJson: boolean) =>
<A, E extends { readonly _tag: string; readonly message: string }, R>(
  effect: Effect.Effect<A, E, R>
) =>
  Effect.catch(effect, (error) =>
    Effect.andThen(
      asJson
        ? Console.log(JSON.stringify({ error: error._tag, detail: error.message }))
        : Console.error(`ouroboros: ${error.message}`),
      Effect.andThen(
        Effect.sync(() => {
          process.exitCode = 1
        }),
        Effect.fail(error)
      )
    ))

const decodeTenantId = Schema.decodeUnknownEffect(TenantId.TenantId)

class InvalidArgument extends Schema.TaggedError<InvalidArgument>()("InvalidArgument", { message: Schema.String }) {}

const tenantId = (raw: string) =>
  decodeTenantId(raw).pipe(
    Effect.mapError(() =>
      new InvalidArgument({
        message: `"${raw}" is not a tenant id (1 to 64 of a-z, 0-9, - and _, starting with a letter or digit)`
      })
    )
  )

const describeTenant = (t: Tenant) =>
  `${t.id}  ${t.tier.padEnd(10)}  ${t.name}${t.dedicatedCollection ? "  (own collection)" : ""}${
    t.model === undefined ? "" : `  model ${t.model}`
  }`

const describeKey = (k: ApiKeyInfo) =>
  `${k.id}  ${k.status.padEnd(8)}  ${k.roles.join(",")}${k.name === undefined ? "" : `  ${k.name}`}`

const issued = (key: IssuedKey) =>
  [
    `key ${key.info.id} of tenant ${key.info.tenantId} (${key.info.roles.join(", ")}):`,
    "",
    `  ${key.key}`,
    "",
    "It is shown this once: keep it now.",
    ...(key.previous?.expiresAt === undefined
      ? []
      : [`The key ${key.previous.id} it replaces works until ${key.previous.expiresAt.toString()}.`])
  ].join("\n")

const createTenant = Command.make(
  "create",
  {
    id: Argument.String("id").pipe(Argument.withDescription("The tenant id (a-z, 0-9, - and _)")),
    name: Flag.String("name").pipe(Flag.optional, Flag.withDescription("A display name (default: the id)")),
    tier: Flag.Literals("tier", Tier.literals).pipe(Flag.optional, Flag.withDescription("default: standard")),
    dedicatedCollection: Flag.Boolean("dedicated-collection").pipe(
      Flag.withDefault(false),
      Flag.withoutNegation,
      Flag.withDescription("Keep the tenant's vectors in a collection of their own")
    ),
    json
  },
  (options) =>
    Effect.gen(function*() {
      const tenants = yield* Tenants.Tenants
      const id = yield* tenantId(options.id)
      const tenant = yield* tenants.create({
        id,
        ...Option.match(options.name, { onNone: () => ({}), onSome: (name) => ({ name }) }),
        ...Option.match(options.tier, { onNone: () => ({}), onSome: (tier) => ({ tier }) }),
        dedicatedCollection: options.dedicatedCollection
      })
      yield* print(options.json, Tenant, tenant, (t) =>
        `created tenant ${describeTenant(t)}; its first key: ouroboros keys create ${t.id}`)
    }).pipe(reportErrors(options.json))
).pipe(Command.withDescription("Create a tenant"))

const listTenants = Command.make("list", { json }, ({ json }) =>
  Effect.gen(function*() {
    const tenants = yield* Tenants.Tenants
    const all = yield* tenants.list
    yield* print(json, Schema.Array(Tenant), all, (list) =>
      list.length === 0 ? "no tenants" : list.map(describeTenant).join("\n"))
  })).pipe(Command.withDescription("List the tenants"))

/**
 * `tenants create <id> [--name] [--tier] [--dedicated-collection]` and `tenants list`.
 *
 * @since 0.1.0
 * @category commands
 */
export const tenantsCommand = Command.make("tenants").pipe(
  Command.withDescription("Manage tenants"),
  Command.withSubcommands([createTenant, listTenants])
)

const tenantArgument = Argument.String("tenant").pipe(Argument.withDescription("The tenant id"))
const keyArgument = Argument.String("keyId").pipe(
  Argument.withDescription("The key id (see GET /admin/tenants/:id/keys)")
)

const createKey = Command.make(
  "create",
  {
    tenant: tenantArgument,
    name: Flag.String("name").pipe(Flag.optional, Flag.withDescription("A name for the key")),
    roles: Flag.Literals("role", KeyRole.literals).pipe(
      Flag.atLeast(0),
      Flag.withDescription("A role of the key (repeat for more; default: writer and reader)")
    ),
    expiresIn: Flag.Int("expires-in").pipe(Flag.optional, Flag.withDescription("Seconds until the key expires")),
    json
  },
  (options) =>
    Effect.gen(function*() {
      const tenants = yield* Tenants.Tenants
      const id = yield* tenantId(options.tenant)
      const key = yield* tenants.keys.create(id, {
        ...Option.match(options.name, { onNone: () => ({}), onSome: (name) => ({ name }) }),
        ...(options.roles.length === 0 ? {} : { roles: options.roles }),
        ...Option.match(options.expiresIn, { onNone: () => ({}), onSome: (s) => ({ expiresInSeconds: s }) })
      })
      yield* print(options.json, IssuedKey, key, issued)
    }).pipe(reportErrors(options.json))
).pipe(Command.withDescription("Create an API key for a tenant (shown once)"))

const rotateKey = Command.make(
  "rotate",
  {
    tenant: tenantArgument,
    keyId: keyArgument,
    grace: Flag.Int("grace").pipe(
      Flag.optional,
      Flag.withDescription("Seconds the old key keeps working (default API_KEY_ROTATION_GRACE)")
    ),
    json
  },
  (options) =>
    Effect.gen(function*() {
      const tenants = yield* Tenants.Tenants
      const id = yield* tenantId(options.tenant)
      const key = yield* tenants.keys.rotate(
        id,
        options.keyId,
        Option.match(options.grace, { onNone: () => ({}), onSome: (s) => ({ gracePeriodSeconds: s }) })
      )
      yield* print(options.json, IssuedKey, key, issued)
    }).pipe(reportErrors(options.json))
).pipe(Command.withDescription("Replace a key; the old one works until its grace period ends"))

const revokeKey = Command.make(
  "revoke",
  { tenant: tenantArgument, keyId: keyArgument, json },
  (options) =>
    Effect.gen(function*() {
      const tenants = yield* Tenants.Tenants
      const id = yield* tenantId(options.tenant)
      const info = yield* tenants.keys.revoke(id, options.keyId)
      yield* print(options.json, ApiKeyInfo, info, (k) => `revoked ${describeKey(k)}`)
    }).pipe(reportErrors(options.json))
).pipe(Command.withDescription("Revoke a key at once"))

const listKeys = Command.make("list", { tenant: tenantArgument, json }, (options) =>
  Effect.gen(function*() {
    const tenants = yield* Tenants.Tenants
    const id = yield* tenantId(options.tenant)
    const keys = yield* tenants.keys.list(id)
    yield* print(options.json, Schema.Array(ApiKeyInfo), keys, (all) =>
      all.length === 0 ? "no keys" : all.map(describeKey).join("\n"))
  }).pipe(reportErrors(options.json))).pipe(Command.withDescription("List a tenant's keys (ids, never the keys)"))

/**
 * `keys create <tenant> [--name] [--role …] [--expires-in]`, `keys rotate <tenant> <keyId> [--grace]`,
 * `keys revoke <tenant> <keyId>` and `keys list <tenant>`.
 *
 * @since 0.1.0
 * @category commands
 */
export const keysCommand = Command.make("keys").pipe(
  Command.withDescription("Manage API keys"),
  Command.withSubcommands([createKey, rotateKey, revokeKey, listKeys])
)
