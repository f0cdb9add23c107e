/**
 * The development setup: with no keys configured and outside production, two demo tenants and an admin key are
 * created once under DATA_DIR and printed at startup, so `npm start` is usable at once. Production refuses them.
 *
 * @since 0.1.0
 */
import { Effect, Option, Redacted, Schema } from "effect"
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import type { KeyRingOptions } from "./Authentication.js"
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

const demoPrefix = "ouro_demo_"

const fresh = () => `${demoPrefix}${randomBytes(18).toString("base64url")}`

/**
 * The keys the server accepts: configured ones, config-file tenants, or (development only) the demo setup.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolveKeys = (
  config: ServerConfig,
  file: ConfigFile
): Effect.Effect<KeyRingOptions & { readonly demo: boolean }, StartupRefused> =>
  Effect.gen(function*() {
    const tenantKeys = [
      ...config.apiKeys,
      ...file.tenants.flatMap((t) => t.apiKeys.map((key) => ({ tenant: t.id, key: Redacted.make(key) })))
    ]
    const configured = tenantKeys.length > 0 || Option.isSome(config.adminApiKey)
    if (config.production) {
      const demo = tenantKeys.find((k) => Redacted.value(k.key).startsWith(demoPrefix))
      if (demo !== undefined || Option.exists(config.adminApiKey, (k) => Redacted.value(k).startsWith(demoPrefix))) {
        return yield* new StartupRefused({ message: "NODE_ENV=production refuses the demo keys; configure real keys" })
      }
      if (Option.isNone(config.adminApiKey)) {
        yield* Effect.logWarning("OUROBOROS_ADMIN_API_KEY is not set: the admin API refuses every request")
      }
      return { adminKey: config.adminApiKey, tenantKeys, demo: false }
    }
    if (configured) return { adminKey: config.adminApiKey, tenantKeys, demo: false }
    const file_ = Path.join(config.dataDir, "dev-credentials.json")
    const credentials = yield* Effect.try({
      try: () => {
        if (Fs.existsSync(file_)) return Schema.decodeUnknownSync(DevCredentials)(JSON.parse(Fs.readFileSync(file_, "utf8")))
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
    return {
      adminKey: Option.some(Redacted.make(credentials.admin)),
      tenantKeys: credentials.tenants.map((t) => ({ tenant: t.tenant, key: Redacted.make(t.key) })),
      demo: true
    }
  })
