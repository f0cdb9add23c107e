/**
 * The configured tenants and keys: the config file's `tenants` section (`OUROBOROS_CONFIG`), the bootstrap variables
 * `OUROBOROS_API_KEYS` (`tenant:key,tenant:key`) and `OUROBOROS_ADMIN_API_KEY`, and the startup checks on them.
 *
 * The file's section keeps today's shape `{ id, name?, tier?, apiKeys? }` and adds `quotas`, `rateLimitTier`, `model`
 * and `dedicatedCollection`; an entry of `apiKeys` is a key (at least 16 characters) or `{ key, roles?, name? }`.
 *
 * A key listed twice (in the variable, the file, or both, for one tenant or two), or equal to the admin key, stops
 * startup with one line that names the problem and where the entries are, never the key.
 *
 * @since 0.1.0
 */
import { TenantId } from "@ouroboros/kernel"
import { Config, Effect, Option, Redacted, Schema } from "effect"
import * as ApiKey from "./ApiKey.js"
import {
  defaultKeyRoles,
  DisplayName,
  KeyRole,
  ModelName,
  QuotaOverrides,
  RateLimitTier,
  type TenantInput,
  Tier
} from "./Tenant.js"

const configuredKey = Schema.String.check(
  Schema.isMinLength(ApiKey.minConfiguredLength, { message: "an API key is at least 16 characters" }),
  Schema.isMaxLength(ApiKey.maxLength, { message: "an API key is at most 256 characters" })
)

/**
 * An entry of a tenant's `apiKeys` in the config file.
 *
 * @since 0.1.0
 * @category schemas
 */
export const KeyEntry = Schema.Union([
  configuredKey,
  Schema.Struct({
    key: configuredKey,
    roles: Schema.optionalKey(Schema.Array(KeyRole).check(Schema.isMinLength(1))),
    name: Schema.optionalKey(DisplayName)
  })
])

/**
 * A tenant declared in the config file.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TenantEntry = Schema.Struct({
  id: TenantId.TenantId,
  name: Schema.optionalKey(DisplayName),
  tier: Schema.optionalKey(Tier),
  apiKeys: Schema.optionalKey(Schema.Array(KeyEntry)),
  quotas: Schema.optionalKey(QuotaOverrides),
  rateLimitTier: Schema.optionalKey(RateLimitTier),
  model: Schema.optionalKey(ModelName),
  dedicatedCollection: Schema.optionalKey(Schema.Boolean)
}).annotate({ identifier: "TenantEntry" })

/**
 * @since 0.1.0
 * @category models
 */
export type TenantEntry = typeof TenantEntry.Type

/**
 * The config file's `tenants` section.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TenantsSection = Schema.Array(TenantEntry).annotate({ identifier: "TenantsSection" })

/**
 * A configured key, in memory only (it is digested when the `Tenants` service starts).
 *
 * @since 0.1.0
 * @category models
 */
export interface ConfiguredKey {
  readonly tenantId: TenantId.TenantId
  readonly key: Redacted.Redacted<string>
  readonly roles: ReadonlyArray<KeyRole>
  readonly name: string | undefined
  /** Where it was configured, for messages: `OUROBOROS_API_KEYS entry 2`, `OUROBOROS_CONFIG tenants[0].apiKeys[1]`. */
  readonly source: string
}

/**
 * Everything configured: the admin key, the keys, and the tenants to create when they do not exist (the file's, and
 * those that only the variable names).
 *
 * @since 0.1.0
 * @category models
 */
export interface Bootstrap {
  readonly adminKey: Option.Option<Redacted.Redacted<string>>
  readonly keys: ReadonlyArray<ConfiguredKey>
  readonly tenants: ReadonlyArray<TenantInput>
}

/**
 * Nothing configured.
 *
 * @since 0.1.0
 * @category constants
 */
export const empty: Bootstrap = { adminKey: Option.none(), keys: [], tenants: [] }

/**
 * The configuration cannot start a server. `message` is one line naming the variable or entry; it never contains a
 * key.
 *
 * @since 0.1.0
 * @category errors
 */
export class BootstrapError extends Schema.TaggedError<BootstrapError>()("BootstrapError", {
  message: Schema.String
}) {}

/**
 * The bootstrap variables as read from the environment.
 *
 * @since 0.1.0
 * @category models
 */
export interface Variables {
  readonly adminKey: Option.Option<Redacted.Redacted<string>>
  /** `OUROBOROS_API_KEYS` as written. */
  readonly apiKeys: Redacted.Redacted<string>
}

/**
 * `OUROBOROS_ADMIN_API_KEY` and `OUROBOROS_API_KEYS`.
 *
 * @since 0.1.0
 * @category config
 */
export const variables: Config.Config<Variables> = Config.all({
  adminKey: Config.option(Config.Redacted("OUROBOROS_ADMIN_API_KEY")),
  apiKeys: Config.Redacted("OUROBOROS_API_KEYS").pipe(Config.withDefault(Redacted.make("")))
})

const pair = /^([a-z0-9][a-z0-9_-]{0,63}):(.+)$/

/**
 * Reads the variables and the file's section, and checks them: keys of 16 to 256 characters, no key twice, none equal
 * to the admin key.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  vars: Variables,
  file: ReadonlyArray<TenantEntry> = []
): Effect.Effect<Bootstrap, BootstrapError> =>
  Effect.gen(function*() {
    const keys: Array<ConfiguredKey> = []
    const fail = (message: string) => Effect.fail(new BootstrapError({ message }))
    if (Option.isSome(vars.adminKey)) {
      const length = Redacted.value(vars.adminKey.value).length
      if (length < ApiKey.minConfiguredLength || length > ApiKey.maxLength) {
        return yield* fail("OUROBOROS_ADMIN_API_KEY: the admin key must be 16 to 256 characters")
      }
    }
    const entries = Redacted.value(vars.apiKeys).split(",").map((s) => s.trim())
    for (const [index, entry] of entries.entries()) {
      if (entry === "") continue
      const match = pair.exec(entry)
      const key = match?.[2]
      if (
        match === null || key === undefined || key.length < ApiKey.minConfiguredLength || key.length > ApiKey.maxLength
      ) {
        return yield* fail(
          `OUROBOROS_API_KEYS: entry ${index + 1} is not tenant:key ` +
            "(tenant: 1-64 of a-z 0-9 - _, key: 16 to 256 characters)"
        )
      }
      keys.push({
        tenantId: TenantId.make(match[1]!),
        key: Redacted.make(key),
        roles: defaultKeyRoles,
        name: undefined,
        source: `OUROBOROS_API_KEYS entry ${index + 1}`
      })
    }
    const tenants: Array<TenantInput> = []
    const seen = new Set<string>()
    for (const [index, entry] of file.entries()) {
      if (seen.has(entry.id)) {
        return yield* fail(`OUROBOROS_CONFIG: tenants[${index}]: tenant ${entry.id} is declared twice`)
      }
      seen.add(entry.id)
      const { apiKeys, ...input } = entry
      tenants.push(input)
      for (const [k, item] of (apiKeys ?? []).entries()) {
        const object = typeof item === "string" ? { key: item } : item
        keys.push({
          tenantId: entry.id,
          key: Redacted.make(object.key),
          roles: "roles" in object && object.roles !== undefined ? object.roles : defaultKeyRoles,
          name: "name" in object ? object.name : undefined,
          source: `OUROBOROS_CONFIG tenants[${index}].apiKeys[${k}]`
        })
      }
    }
    // Tenants that only the variable names are created with defaults.
    for (const key of keys) {
      if (!seen.has(key.tenantId)) {
        seen.add(key.tenantId)
        tenants.push({ id: key.tenantId })
      }
    }
    const bySecret = new Map<string, ConfiguredKey>()
    for (const key of keys) {
      const value = Redacted.value(key.key)
      if (Option.isSome(vars.adminKey) && Redacted.value(vars.adminKey.value) === value) {
        return yield* fail(
          `${key.source}: the key of tenant ${key.tenantId} is the admin key (OUROBOROS_ADMIN_API_KEY); ` +
            "give it another key"
        )
      }
      const earlier = bySecret.get(value)
      if (earlier !== undefined) {
        return yield* fail(
          `${earlier.source} and ${key.source}: the same API key is listed twice` +
            (earlier.tenantId === key.tenantId
              ? ` for tenant ${key.tenantId}`
              : ` (tenants ${earlier.tenantId} and ${key.tenantId})`) +
            "; every key must appear once"
        )
      }
      bySecret.set(value, key)
    }
    return { adminKey: vars.adminKey, keys, tenants }
  })

/**
 * The bootstrap from the environment and the file's `tenants` section.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromEnv = (
  file: ReadonlyArray<TenantEntry> = []
): Effect.Effect<Bootstrap, BootstrapError | Config.ConfigError> =>
  Effect.flatMap(variables, (vars) => make(vars, file))

/**
 * The line to print at startup when no tenant exists: how to create the first one (with the admin key), or, with no
 * admin key either, which variable to set.
 *
 * @since 0.1.0
 * @category utils
 */
export const firstTenantHint = (hasAdminKey: boolean): string =>
  hasAdminKey
    ? "No tenant exists yet: create one with the admin key, e.g. curl -X POST http://localhost:8080/admin/tenants " +
      `-H "X-API-Key: $OUROBOROS_ADMIN_API_KEY" -H "Content-Type: application/json" -d '{"id":"acme"}', ` +
      "then its first key with POST /admin/tenants/acme/keys (the key is shown once)"
    : "No tenant and no OUROBOROS_ADMIN_API_KEY: set OUROBOROS_ADMIN_API_KEY (16+ characters) to create tenants " +
      "through /admin/tenants, or list them in OUROBOROS_API_KEYS (tenant:key) or the config file"
