/**
 * The server's own configuration: where it listens, how it logs, its credentials and the optional config file.
 *
 * Every value comes from the environment (names in DESIGN.md) and is decoded: a bad value stops startup with one
 * line that names the variable and what is wrong.
 *
 * @since 0.1.0
 */
import { ConsoleHttp } from "@ouroboros/console"
import { RateLimiter } from "@ouroboros/rate-limit"
import { Quotas, TenantConfig } from "@ouroboros/tenancy"
import { VersionPolicy } from "@ouroboros/versioning"
import { Config, Effect, Option, Schema, SchemaIssue } from "effect"
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
  /** `NODE_ENV` is `production` (any case): demo keys are refused. */
  readonly production: boolean
  /** `NODE_ENV` is `development` (any case) or unset: with no key configured, demo tenants are created. */
  readonly development: boolean
  readonly maxBodyBytes: number
  readonly logLevel: "all" | "trace" | "debug" | "info" | "warning" | "error" | "fatal" | "none"
  readonly logFormat: "json" | "pretty"
  readonly configFile: Option.Option<string>
}

// `Config.Port` refuses 0, which asks the system for a free port (the tests use it).
const port = Config.schema(
  Schema.Int.check(
    Schema.isBetween({ minimum: 0, maximum: 65535 }, { message: "must be a port number between 0 and 65535" })
  ),
  "PORT"
).pipe(Config.withDefault(8080))

// `Production` and ` production ` are production too: an odd spelling must not start the demo setup.
const nodeEnv = Config.String("NODE_ENV").pipe(
  Config.withDefault("development"),
  Config.map((s) => s.trim().toLowerCase())
)

/**
 * The variables (defaults in parentheses): `PORT` (8080) TCP port of the HTTP server, `HOST` (0.0.0.0) interface to
 * listen on, `DATA_DIR` (./data) embedded data, `NODE_ENV` (development; compared without case: `production`
 * refuses the demo keys, `development` creates them when no key is configured, any other value does neither), `MAX_BODY_BYTES`
 * (8 MiB) largest request body accepted (413 above), `LOG_LEVEL` (info), `LOG_FORMAT` (json|pretty) and
 * `OUROBOROS_CONFIG` (the config file). The credentials (`OUROBOROS_ADMIN_API_KEY`, `OUROBOROS_API_KEYS`, `JWT_*`,
 * `API_KEY_*`) are `@ouroboros/tenancy`'s (`TenantConfig.variables`, `Tenants.config`, `Jwt.config`).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<ServerConfig> = Config.all({
  port,
  host: Config.String("HOST").pipe(Config.withDefault("0.0.0.0")),
  dataDir: Config.String("DATA_DIR").pipe(Config.withDefault("./data")),
  production: nodeEnv.pipe(Config.map((s) => s === "production")),
  development: nodeEnv.pipe(Config.map((s) => s === "development")),
  maxBodyBytes: Config.schema(
    Schema.Int.check(Schema.isGreaterThan(0, { message: "must be a positive number of bytes" })),
    "MAX_BODY_BYTES"
  ).pipe(Config.withDefault(8 * 1024 * 1024)),
  logLevel: Config.Literals(["all", "trace", "debug", "info", "warning", "error", "fatal", "none"], "LOG_LEVEL").pipe(
    Config.withDefault("info" as const)
  ),
  logFormat: Config.Literals(["json", "pretty"], "LOG_FORMAT").pipe(Config.withDefault("json" as const)),
  configFile: Config.option(Config.String("OUROBOROS_CONFIG"))
})

/**
 * Where the operator console is served: `CONSOLE_PATH` (`/console`; a path of its own, not the root nor under
 * `/api`, `/admin`, `/health`, `/metrics`, `/openapi.json` or `/docs`) from the build in `CONSOLE_DIR` (default:
 * `apps/console/dist`, found beside the bundle or the package). The page is public; its API calls carry the
 * operator's `X-API-Key`.
 *
 * @since 0.1.0
 * @category config
 */
export const consoleConfig = Config.all({
  path: Config.schema(ConsoleHttp.MountPath, "CONSOLE_PATH").pipe(Config.withDefault("/console")),
  directory: Config.option(Config.String("CONSOLE_DIR"))
})

/**
 * The config file (`OUROBOROS_CONFIG`, JSON or YAML). Sections belong to the features that read them; unknown keys
 * are rejected (see {@link loadFile}) so a typo is not silently ignored.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ConfigFile = Schema.Struct({
  /** Tenants (`@ouroboros/tenancy`'s `TenantConfig.TenantsSection`): created at startup when missing. */
  tenants: TenantConfig.TenantsSection.pipe(Schema.withDecodingDefaultType(Effect.succeed([]))),
  /** Quota defaults per tier, over the built-in ones (`Quotas.QuotasSection`). */
  quotas: Schema.optionalKey(Quotas.QuotasSection),
  /** Rate-limit policies (`RateLimiter.PolicySet`), after `RATE_LIMIT_POLICIES`. */
  rateLimit: Schema.optional(RateLimiter.PolicySet),
  /** The lifecycle of the API versions (`VersionPolicy.Settings`): `API_VERSIONS_*` win over it, field by field. */
  apiVersions: Schema.optionalKey(VersionPolicy.Settings)
})

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

const decodeFile = Schema.decodeUnknownEffect(ConfigFile)

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
        return yield* decodeFile(raw ?? {}, { errors: "all", onExcessProperty: "error" }).pipe(
          Effect.mapError((error) =>
            new ConfigFileError({ message: `OUROBOROS_CONFIG: ${file}: ${describeIssues(error.issue)}` })
          )
        )
      })
  })

// Our wording for the structural issues (the file is ours to describe); Schema's for the rest.
const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1({
  leafHook: (issue) =>
    issue._tag === "UnexpectedKey"
      ? "is unexpected"
      : issue._tag === "MissingKey"
      ? "is missing"
      : SchemaIssue.defaultLeafHook(issue)
})

const renderPath = (path: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }>): string =>
  path.map((segment, i) => {
    const key = typeof segment === "object" ? segment.key : segment
    return typeof key === "number" ? `[${key}]` : i === 0 ? String(key) : `.${String(key)}`
  }).join("")

// "tenants[0].id: Expected …; extra: is unexpected": every issue, each with the path of its field.
const describeIssues = (issue: SchemaIssue.Issue): string =>
  formatIssues(issue).issues
    .map((each) => {
      const path = renderPath(each.path ?? [])
      return `${path === "" ? "(root)" : path}: ${each.message}`
    })
    .join("; ")

// Schema's wording; a secret's checks carry messages of their own, so no secret is ever echoed.
const formatConfigIssues = SchemaIssue.makeFormatterStandardSchemaV1()

/**
 * Renders a configuration failure as one line naming the variable, for the process's last words, e.g.
 * `PORT: must be a port number between 0 and 65535`.
 *
 * @since 0.1.0
 * @category utils
 */
export const describeConfigError = (error: Config.ConfigError): string => {
  const cause = error.cause
  if (!Schema.isSchemaError(cause)) return cause.message
  const lines = formatConfigIssues(cause.issue).issues.map((issue) => {
    const path = (issue.path ?? []).map((segment) => String(typeof segment === "object" ? segment.key : segment))
    return `${path.join("_") || "value"}: ${issue.message}`
  })
  return lines.length === 0 ? "invalid configuration" : lines.join("; ")
}
