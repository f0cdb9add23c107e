/**
 * The server's own configuration: where it listens, how it logs, its credentials and the optional config file.
 *
 * Every value comes from the environment (names in DESIGN.md) and is decoded: a bad value stops startup with one
 * line that names the variable and what is wrong.
 *
 * @since 0.1.0
 */
import { RateLimiter } from "@ouroboros/rate-limit"
import { Config, ConfigError, Effect, Either, Option, ParseResult, Redacted, Schema } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { parse as parseYaml } from "yaml"

/**
 * @since 0.1.0
 * @category models
 */
export interface ServerConfig {
  readonly port: number
  readonly host: string
  readonly dataDir: string
  readonly production: boolean
  readonly maxBodyBytes: number
  readonly logLevel: "all" | "trace" | "debug" | "info" | "warning" | "error" | "fatal" | "none"
  readonly logFormat: "json" | "pretty"
  readonly adminApiKey: Option.Option<Redacted.Redacted<string>>
  readonly apiKeys: ReadonlyArray<{ readonly tenant: string; readonly key: Redacted.Redacted<string> }>
  readonly configFile: Option.Option<string>
}

const port = Config.integer("PORT").pipe(
  Config.validate({ message: "must be a port number between 0 and 65535", validation: (n) => n >= 0 && n <= 65535 }),
  Config.withDefault(8080),
  Config.withDescription("TCP port of the HTTP server")
)

const tenantKeyPair = /^([a-z0-9][a-z0-9_-]{0,63}):(.{16,})$/

/**
 * `OUROBOROS_API_KEYS`: `tenant:key,tenant:key` bootstrap keys. A key is at least 16 characters.
 *
 * @since 0.1.0
 * @category config
 */
export const apiKeys = Config.string("OUROBOROS_API_KEYS").pipe(
  Config.withDefault(""),
  Config.mapOrFail((raw) => {
    const pairs: Array<{ tenant: string; key: Redacted.Redacted<string> }> = []
    for (const [index, entry] of raw.split(",").map((s) => s.trim()).entries()) {
      if (entry === "") continue
      const match = tenantKeyPair.exec(entry)
      if (match === null) {
        return Either.left(ConfigError.InvalidData(
          [],
          `entry ${index + 1} is not tenant:key (tenant: 1-64 of a-z 0-9 - _, key: at least 16 characters)`
        ))
      }
      pairs.push({ tenant: match[1]!, key: Redacted.make(match[2]!) })
    }
    return Either.right(pairs)
  }),
  Config.withDescription("Bootstrap API keys, tenant:key,tenant:key")
)

/**
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<ServerConfig> = Config.all({
  port,
  host: Config.string("HOST").pipe(Config.withDefault("0.0.0.0"), Config.withDescription("Interface to listen on")),
  dataDir: Config.string("DATA_DIR").pipe(Config.withDefault("./data"), Config.withDescription("Embedded data")),
  production: Config.string("NODE_ENV").pipe(Config.withDefault("development"), Config.map((s) => s === "production")),
  maxBodyBytes: Config.integer("MAX_BODY_BYTES").pipe(
    Config.validate({ message: "must be a positive number of bytes", validation: (n) => n > 0 }),
    Config.withDefault(8 * 1024 * 1024),
    Config.withDescription("Largest request body accepted (413 above)")
  ),
  logLevel: Config.literal("all", "trace", "debug", "info", "warning", "error", "fatal", "none")("LOG_LEVEL").pipe(
    Config.withDefault("info" as const)
  ),
  logFormat: Config.literal("json", "pretty")("LOG_FORMAT").pipe(Config.withDefault("json" as const)),
  adminApiKey: Config.option(Config.redacted("OUROBOROS_ADMIN_API_KEY").pipe(
    Config.validate({ message: "must be at least 16 characters", validation: (k) => Redacted.value(k).length >= 16 })
  )),
  apiKeys,
  configFile: Config.option(Config.string("OUROBOROS_CONFIG"))
})

/**
 * A tenant declared in the config file.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TenantEntry = Schema.Struct({
  id: Schema.String.pipe(Schema.pattern(/^[a-z0-9][a-z0-9_-]{0,63}$/)),
  name: Schema.optional(Schema.String),
  tier: Schema.optionalWith(Schema.Literal("free", "standard", "enterprise"), { default: () => "standard" as const }),
  apiKeys: Schema.optionalWith(Schema.Array(Schema.String.pipe(Schema.minLength(16))), { default: () => [] })
})

/**
 * The config file (`OUROBOROS_CONFIG`, JSON or YAML). Sections belong to the features that read them; unknown
 * top-level keys are rejected so a typo is not silently ignored.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ConfigFile = Schema.Struct({
  tenants: Schema.optionalWith(Schema.Array(TenantEntry), { default: () => [] }),
  rateLimit: Schema.optional(RateLimiter.PolicySet)
}).annotations({ parseOptions: { onExcessProperty: "error" } })

/**
 * @since 0.1.0
 * @category models
 */
export type ConfigFile = typeof ConfigFile.Type

/**
 * A config file that cannot be read or decoded. The message names the file and the offending field.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConfigFileError extends Schema.TaggedError<ConfigFileError>()("ConfigFileError", {
  message: Schema.String
}) {}

/**
 * Reads and decodes the config file; no file is an empty config.
 *
 * @since 0.1.0
 * @category constructors
 */
export const loadFile = (path: Option.Option<string>): Effect.Effect<ConfigFile, ConfigFileError> =>
  Option.match(path, {
    onNone: () => Effect.succeed(Schema.decodeUnknownSync(ConfigFile)({})),
    onSome: (file) =>
      Effect.gen(function*() {
        const text = yield* Effect.try({
          try: () => Fs.readFileSync(file, "utf8"),
          catch: (cause) => new ConfigFileError({ message: `OUROBOROS_CONFIG: cannot read ${file}: ${String(cause)}` })
        })
        const raw = yield* Effect.try({
          try: () => /\.ya?ml$/i.test(Path.extname(file)) ? parseYaml(text) : JSON.parse(text),
          catch: (cause) => new ConfigFileError({ message: `OUROBOROS_CONFIG: ${file} is not valid: ${String(cause)}` })
        })
        return yield* Schema.decodeUnknown(ConfigFile, { errors: "all" })(raw ?? {}).pipe(
          Effect.mapError((error) =>
            new ConfigFileError({ message: `OUROBOROS_CONFIG: ${file}: ${describeIssues(error)}` })
          )
        )
      })
  })

// "tenants[0].id: Expected …; extra: is unexpected": every issue, each with the path of its field.
const describeIssues = (error: ParseResult.ParseError): string =>
  ParseResult.ArrayFormatter.formatErrorSync(error)
    .map((issue) => {
      const path = issue.path.map((key, i) => typeof key === "number" ? `[${key}]` : i === 0 ? String(key) : `.${String(key)}`)
        .join("")
      return `${path === "" ? "(root)" : path}: ${issue.message}`
    })
    .join("; ")

/**
 * Renders a configuration failure as one line naming the variable, for the process's last words.
 *
 * @since 0.1.0
 * @category utils
 */
export const describeConfigError = (error: ConfigError.ConfigError): string =>
  ConfigError.reduceWithContext(error, undefined, {
    andCase: (_, left: string | undefined, right: string | undefined) => [left, right].filter(Boolean).join("; "),
    orCase: (_, left: string | undefined, right: string | undefined) => [left, right].filter(Boolean).join("; "),
    invalidDataCase: (_, path, message) => `${path.join("_") || "value"}: ${message}`,
    missingDataCase: (_, path, message) => `${path.join("_")}: ${message}`,
    sourceUnavailableCase: (_, path, message) => `${path.join("_")}: ${message}`,
    unsupportedCase: (_, path, message) => `${path.join("_")}: ${message}`
  }) ?? "invalid configuration"
