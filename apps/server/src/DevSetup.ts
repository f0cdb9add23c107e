/**
 * The credentials the server starts with: what `@ouroboros/tenancy` reads from the environment and the config file
 * (`OUROBOROS_ADMIN_API_KEY`, `OUROBOROS_API_KEYS`, the file's `tenants`), or, in development with nothing
 * configured, two demo tenants and an admin key created once under DATA_DIR and printed at startup, so `npm start` is
 * usable at once. Production refuses the demo keys.
 *
 * @since 0.1.0
 */
import { TenantConfig } from "@ouroboros/tenancy"
import { type Config, Effect, Option, Redacted, Schema } from "effect"
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import type { ConfigFile, ServerConfig } from "./ServerConfig.js"

const DevCredentials = Schema.Struct({
  admin: Schema.String,
  tenants: Schema.Array(Schema.Struct({ tenant: Schema.String, key: Schema.String }))
})

/**
 * A startup refusal: the configuration is not acceptable as it is.
 *
 * @since 0.1.0
 * @category errors
 */
export class StartupRefused extends Schema.TaggedError<StartupRefused>()("StartupRefused", {
  message: Schema.String
}) {}

/**
 * The prefix of the demo keys (production refuses keys that carry it).
 *
 * @since 0.1.0
 * @category constants
 */
export const demoPrefix = "ouro_demo_"

const fresh = () => `${demoPrefix}${randomBytes(18).toString("base64url")}`

/**
 * The credentials to start with, and whether they are the development setup's demo ones.
 *
 * @since 0.1.0
 * @category models
 */
export interface Credentials {
  readonly bootstrap: TenantConfig.Bootstrap
  readonly demo: boolean
}

/**
 * The bootstrap from the variables and the file's `tenants` section; in development (`NODE_ENV` unset or
 * `development`, in any case) with neither an admin key nor a tenant key, the demo setup (kept in `DATA_DIR/dev-credentials.json` across restarts). A key listed twice or equal
 * to the admin key is a `BootstrapError` whose message is the one line to print.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolveCredentials = (
  config: ServerConfig,
  file: ConfigFile
): Effect.Effect<Credentials, StartupRefused | TenantConfig.BootstrapError | Config.ConfigError> =>
  Effect.gen(function*() {
    const vars = yield* TenantConfig.variables
    const bootstrap = yield* TenantConfig.make(vars, file.tenants)
    const configured = bootstrap.keys.length > 0 || Option.isSome(bootstrap.adminKey)
    if (config.production) {
      const demo = bootstrap.keys.some((k) => Redacted.value(k.key).startsWith(demoPrefix)) ||
        Option.exists(bootstrap.adminKey, (k) => Redacted.value(k).startsWith(demoPrefix))
      if (demo) {
        return yield* new StartupRefused({ message: "NODE_ENV=production refuses the demo keys; configure real keys" })
      }
      if (Option.isNone(bootstrap.adminKey)) {
        yield* Effect.logWarning(
          "OUROBOROS_ADMIN_API_KEY is not set: only JWTs with the admin role can use the admin API"
        )
      }
      return { bootstrap, demo: false }
    }
    // Demo keys (printed below) only in development mode, and only when nothing is configured.
    if (configured || !config.development) return { bootstrap, demo: false }
    const file_ = Path.join(config.dataDir, "dev-credentials.json")
    const credentials = yield* Effect.try({
      try: () => {
        if (Fs.existsSync(file_)) {
          return Schema.decodeUnknownSync(DevCredentials)(JSON.parse(Fs.readFileSync(file_, "utf8")))
        }
        const created = {
          admin: fresh(),
          tenants: [{ tenant: "demo-a", key: fresh() }, { tenant: "demo-b", key: fresh() }]
        }
        Fs.mkdirSync(config.dataDir, { recursive: true })
        Fs.writeFileSync(file_, JSON.stringify(created, null, 2), { mode: 0o600 })
        return created
      },
      catch: (cause) => new StartupRefused({ message: `DATA_DIR: cannot keep ${file_}: ${String(cause)}` })
    })
    yield* Effect.logWarning(
      "development setup: no keys configured, so demo tenants are enabled (NODE_ENV=production refuses them)"
    ).pipe(Effect.annotateLogs({
      adminKey: credentials.admin,
      ...Object.fromEntries(credentials.tenants.map((t) => [`key:${t.tenant}`, t.key])),
      file: file_
    }))
    const demo = yield* TenantConfig.make({
      adminKey: Option.some(Redacted.make(credentials.admin)),
      apiKeys: Redacted.make(credentials.tenants.map((t) => `${t.tenant}:${t.key}`).join(","))
    }, file.tenants)
    return { bootstrap: demo, demo: true }
  })
