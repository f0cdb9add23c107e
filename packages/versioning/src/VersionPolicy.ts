/**
 * The lifecycle of the API versions a service declares: which are served, which is the default, which are previews,
 * deprecated or past their sunset, and the negotiation that picks the version of a request. It knows nothing of
 * HTTP: `VersioningHttp` reads the URL segment and the header, and writes the answer.
 *
 * The versions themselves are declared in code (the `VersionedApi` bundle); their lifecycle is configuration, from
 * the config file section ({@link Settings}) or the environment ({@link config}):
 *
 * | Variable | Example | Meaning |
 * | --- | --- | --- |
 * | `API_VERSIONS_DEFAULT` | `v2` | the version of a request that names none (default: the newest stable one) |
 * | `API_VERSIONS_PREVIEW` | `v3` | served only when asked for by name, never the default |
 * | `API_VERSIONS_DISABLED` | `v0` | declared but not served (an unknown version to clients) |
 * | `API_VERSIONS_DEPRECATED` | `v1@2027-01-01` | deprecated since (or from) that date: `Deprecation` header |
 * | `API_VERSIONS_SUNSET` | `v1@2027-07-01` | `Sunset` header until that date, then 410 Gone |
 * | `API_VERSIONS_LINKS` | `v1@https://example.com/migrate-v1` | the migration notes of `Link: rel="deprecation"` |
 *
 * Lists are comma-separated; dates are ISO 8601 (`2027-01-01` is midnight UTC).
 *
 * @since 0.1.0
 */
import { Config, Context, Effect, Layer, Schema, SchemaTransformation } from "effect"
import * as ApiVersion from "./ApiVersion.js"

// -----------------------------------------------------------------------------
// Settings
// -----------------------------------------------------------------------------

const isoDate = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/

/**
 * An ISO 8601 date (`2027-01-01`, midnight UTC) or date-time with a zone (`2027-01-01T12:00:00Z`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const DateString = Schema.String.check(
  Schema.makeFilter((s: string) =>
    (isoDate.test(s) && !Number.isNaN(Date.parse(s))) ||
    "expected an ISO 8601 date (2027-01-01) or date-time with a zone (2027-01-01T00:00:00Z)"
  )
).annotate({ identifier: "DateString" })

/**
 * A link to migration notes: an absolute `http(s)` URL or a path on this service.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Link = Schema.String.check(
  Schema.makeFilter((s: string) =>
    (/^(?:https?:\/\/|\/)[^\s<>"]*$/.test(s)) || "expected an absolute http(s) URL or a path starting with /"
  )
).annotate({ identifier: "Link" })

/**
 * The lifecycle settings of one version.
 *
 * @since 0.1.0
 * @category schemas
 */
export const VersionSettings = Schema.Struct({
  /** Served only when asked for by name (URL segment or header), never the default. */
  preview: Schema.optionalKey(Schema.Boolean),
  /** Declared but not served: clients get the 400 of an unknown version. */
  disabled: Schema.optionalKey(Schema.Boolean),
  /** Deprecated since (or from) this date: responses carry `Deprecation`. */
  deprecated: Schema.optionalKey(DateString),
  /** Responses carry `Sunset` until this date; from it on, the version answers 410 Gone. */
  sunset: Schema.optionalKey(DateString),
  /** The migration notes a deprecated version's `Link: rel="deprecation"` points to. */
  link: Schema.optionalKey(Link)
}).annotate({ identifier: "VersionSettings" })

/**
 * @since 0.1.0
 * @category models
 */
export type VersionSettings = typeof VersionSettings.Type

/**
 * The `apiVersions` section of the config file.
 *
 * @since 0.1.0
 * @category schemas
 * @example
 * import { VersionPolicy } from "@ouroboros/versioning"
 * import { Schema } from "effect"
 *
 * const settings = Schema.decodeUnknownSync(VersionPolicy.Settings)({
 *   default: "v2",
 *   versions: { v1: { deprecated: "2027-01-01", sunset: "2027-07-01", link: "https://example.com/migrate-v1" } }
 * })
 */
export const Settings = Schema.Struct({
  default: Schema.optionalKey(ApiVersion.ApiVersion),
  // Keys are checked rather than typed by `ApiVersion`: a record drops the keys its key schema refuses, and a
  // misspelt version (`V1`) must be an error that names it, not a setting silently ignored.
  versions: Schema.optionalKey(
    Schema.Record(Schema.String, VersionSettings).check(Schema.makeFilter((versions) => {
      const wrong = Object.keys(versions).find((key) => !ApiVersion.isCanonical(key))
      return wrong === undefined ||
        { path: [wrong], issue: `"${wrong}" is not an API version: v followed by a positive integer, e.g. v2` }
    }))
  )
}).annotate({ identifier: "ApiVersionSettings" })

/**
 * @since 0.1.0
 * @category models
 */
export type Settings = typeof Settings.Type

// `v1@2027-01-01, v2@2028-01-01` → [["v1", "2027-01-01"], ["v2", "2028-01-01"]], each side then validated.
const pairs = (value: Schema.String) =>
  Schema.String.pipe(Schema.decodeTo(
    Schema.Array(Schema.Tuple([ApiVersion.ApiVersion, value])),
    SchemaTransformation.transform({
      decode: (input: string): ReadonlyArray<readonly [string, string]> =>
        input.split(",").map((entry) => entry.trim()).filter((entry) => entry.length > 0).map((entry) => {
          const at = entry.indexOf("@")
          return at === -1 ? [entry, ""] as const : [entry.slice(0, at).trim(), entry.slice(at + 1).trim()] as const
        }),
      encode: (entries: ReadonlyArray<readonly [string, string]>) =>
        entries.map(([version, value]) => `${version}@${value}`).join(",")
    })
  ))

const list = Schema.String.pipe(Schema.decodeTo(
  Schema.Array(ApiVersion.ApiVersion),
  SchemaTransformation.transform({
    decode: (input: string): ReadonlyArray<string> =>
      input.split(",").map((entry) => entry.trim()).filter((entry) => entry.length > 0),
    encode: (entries: ReadonlyArray<string>) => entries.join(",")
  })
))

const optional = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.withDefault(config as Config.Config<A | undefined>, undefined)

/**
 * The settings from the environment (see the module's table). Every variable is optional; a malformed one fails with
 * an error that names it.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Settings> = Config.all({
  default: optional(Config.schema(ApiVersion.ApiVersion, "API_VERSIONS_DEFAULT")),
  preview: optional(Config.schema(list, "API_VERSIONS_PREVIEW")),
  disabled: optional(Config.schema(list, "API_VERSIONS_DISABLED")),
  deprecated: optional(Config.schema(pairs(DateString), "API_VERSIONS_DEPRECATED")),
  sunset: optional(Config.schema(pairs(DateString), "API_VERSIONS_SUNSET")),
  links: optional(Config.schema(pairs(Link), "API_VERSIONS_LINKS"))
}).pipe(Config.map((env): Settings => {
  const versions: Record<string, { -readonly [K in keyof VersionSettings]?: VersionSettings[K] }> = {}
  const at = (version: string) => (versions[version] ??= {})
  for (const version of env.preview ?? []) at(version).preview = true
  for (const version of env.disabled ?? []) at(version).disabled = true
  for (const [version, date] of env.deprecated ?? []) at(version).deprecated = date
  for (const [version, date] of env.sunset ?? []) at(version).sunset = date
  for (const [version, link] of env.links ?? []) at(version).link = link
  return {
    ...(env.default !== undefined ? { default: env.default } : {}),
    ...(Object.keys(versions).length > 0 ? { versions } : {})
  }
}))

/**
 * Settings from two sources, field by field: `override` (the environment, say) over `base` (the config file).
 *
 * @since 0.1.0
 * @category combinators
 */
export const merge = (base: Settings, override: Settings): Settings => {
  const versions: Record<string, VersionSettings> = { ...base.versions }
  for (const [version, settings] of Object.entries(override.versions ?? {})) {
    versions[version] = { ...versions[version], ...settings }
  }
  const preferred = override.default ?? base.default
  return {
    ...(preferred !== undefined ? { default: preferred } : {}),
    ...(Object.keys(versions).length > 0 ? { versions } : {})
  }
}

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

/**
 * 400: the request names a version that is malformed, unknown, disabled, or not enabled for its caller. The answer
 * lists the versions the service supports.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnsupportedApiVersion extends Schema.TaggedError<UnsupportedApiVersion>()(
  "UnsupportedApiVersion",
  {
    detail: Schema.String,
    /** The version as the request wrote it. */
    requested: Schema.String,
    /** The versions the service serves, newest first. */
    supportedVersions: Schema.Array(Schema.String)
  },
  { httpApiStatus: 400, description: "The requested API version is malformed or not supported" }
) {}

/**
 * 410: the version was sunset; the answer names the version to move to.
 *
 * @since 0.1.0
 * @category errors
 */
export class ApiVersionGone extends Schema.TaggedError<ApiVersionGone>()(
  "ApiVersionGone",
  {
    detail: Schema.String,
    version: Schema.String,
    /** When the version was sunset (ISO 8601). */
    sunset: Schema.String,
    /** The version to use instead: the newest stable one. */
    successor: Schema.String,
    supportedVersions: Schema.Array(Schema.String)
  },
  { httpApiStatus: 410, description: "The API version was sunset" }
) {}

/**
 * The settings do not fit the declared versions (a setting for an undeclared version, a default that is not served,
 * a sunset before its deprecation).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidSettings extends Schema.TaggedError<InvalidSettings>()("InvalidSettings", {
  detail: Schema.String
}) {
  /**
   * The explanation (`detail`): a `Schema.TaggedError` without a `message` field has an empty message, and a server
   * that stops on this error prints its message.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return this.detail
  }
}

// -----------------------------------------------------------------------------
// Policy
// -----------------------------------------------------------------------------

/**
 * The lifecycle of one served version.
 *
 * @since 0.1.0
 * @category models
 */
export interface Lifecycle {
  readonly version: ApiVersion.ApiVersion
  readonly preview: boolean
  /** Epoch milliseconds. */
  readonly deprecatedAt: number | undefined
  /** Epoch milliseconds. */
  readonly sunsetAt: number | undefined
  readonly link: string | undefined
}

/**
 * What the versions look like at one moment: sunsets move versions out of `supported` as time passes. A state holds
 * from `validFrom` until just before `validUntil` (the next sunset).
 *
 * @since 0.1.0
 * @category models
 */
export interface State {
  /** Served versions, newest first (previews included). */
  readonly supported: ReadonlyArray<ApiVersion.ApiVersion>
  /** The version of a request that names none, and the successor of sunset versions. */
  readonly defaultVersion: ApiVersion.ApiVersion
  readonly validFrom: number
  readonly validUntil: number
}

/**
 * Where the version of a request came from.
 *
 * @since 0.1.0
 * @category models
 */
export type Source = "url" | "header" | "default"

/**
 * The outcome of negotiation.
 *
 * @since 0.1.0
 * @category models
 */
export type Negotiation =
  | {
    readonly _tag: "Served"
    readonly version: ApiVersion.ApiVersion
    readonly source: Source
    readonly lifecycle: Lifecycle
    readonly state: State
  }
  | { readonly _tag: "Unsupported"; readonly error: UnsupportedApiVersion; readonly state: State }
  | {
    readonly _tag: "Gone"
    readonly error: ApiVersionGone
    readonly lifecycle: Lifecycle
    readonly state: State
  }

/**
 * What the request says about its version: the URL segment (when the path has one, well-formed or not) and the
 * `api-version` header.
 *
 * @since 0.1.0
 * @category models
 */
export interface Request {
  readonly segment?: string | undefined
  readonly header?: string | undefined
}

/**
 * The lifecycle of the declared versions, and negotiation.
 *
 * @since 0.1.0
 * @category services
 */
export class VersionPolicy extends Context.Service<VersionPolicy, {
  /** Every declared version that is not disabled, newest first, with its lifecycle. */
  readonly versions: ReadonlyArray<Lifecycle>
  /** The lifecycle of a served (not disabled) version, sunset or not. */
  readonly lifecycle: (version: ApiVersion.ApiVersion) => Lifecycle | undefined
  /** The versions at `now` (epoch milliseconds). */
  readonly state: (now: number) => State
  /** Picks the version of a request: the URL segment, else the header, else the default. */
  readonly negotiate: (request: Request, now: number) => Negotiation
}>()("@ouroboros/versioning/VersionPolicy") {}

const dateOf = (date: string | undefined): number | undefined => date === undefined ? undefined : Date.parse(date)

/**
 * Builds the policy of `declared` versions with `settings`. Fails when the settings name a version that is not
 * declared, when no stable version is served, when the default is not served or when a sunset comes before its
 * deprecation.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  declared: ReadonlyArray<ApiVersion.ApiVersion>,
  settings: Settings = {}
): Effect.Effect<VersionPolicy["Service"], InvalidSettings> =>
  Effect.suspend(() => {
    const fail = (detail: string) => Effect.fail(new InvalidSettings({ detail }))
    for (const version of declared) {
      if (!ApiVersion.isCanonical(version)) return fail(`"${version}" is not a version (v1, v2, …)`)
    }
    const known = new Set(declared)
    const configured = settings.versions ?? {}
    for (const version of Object.keys(configured)) {
      if (!known.has(version)) {
        return fail(`apiVersions.versions.${version}: no such version (declared: ${[...known].join(", ")})`)
      }
    }
    const versions: Array<Lifecycle> = []
    for (const version of [...declared].sort(ApiVersion.compare).reverse()) {
      const own = configured[version] ?? {}
      if (own.disabled === true) continue
      const lifecycle: Lifecycle = {
        version,
        preview: own.preview === true,
        deprecatedAt: dateOf(own.deprecated),
        sunsetAt: dateOf(own.sunset),
        link: own.link
      }
      if (
        lifecycle.deprecatedAt !== undefined && lifecycle.sunsetAt !== undefined &&
        lifecycle.sunsetAt < lifecycle.deprecatedAt
      ) {
        return fail(
          `apiVersions.versions.${version}.sunset: ${own.sunset} is before its deprecation (${own.deprecated})`
        )
      }
      versions.push(lifecycle)
    }
    if (versions.length === 0) return fail("no API version is served")
    const preferred = settings.default
    if (preferred !== undefined && !versions.some((v) => v.version === preferred)) {
      return fail(`apiVersions.default: ${preferred} is not a served version`)
    }
    if (!versions.some((v) => !v.preview)) return fail("every served API version is a preview: none can be the default")
    return Effect.succeed(makeUnsafe(versions, preferred))
  })

/**
 * The state at `now`: the versions whose sunset has not come, and the default among them.
 */
const stateAt = (
  versions: ReadonlyArray<Lifecycle>,
  preferred: ApiVersion.ApiVersion | undefined,
  now: number
): State => {
  const live = versions.filter((v) => v.sunsetAt === undefined || now < v.sunsetAt)
  let validFrom = Number.NEGATIVE_INFINITY
  let validUntil = Number.POSITIVE_INFINITY
  for (const v of versions) {
    if (v.sunsetAt === undefined) continue
    if (v.sunsetAt > now) validUntil = Math.min(validUntil, v.sunsetAt)
    else validFrom = Math.max(validFrom, v.sunsetAt)
  }
  const stable = live.filter((v) => !v.preview)
  // A configured default past its sunset gives way to the newest stable version; with every stable version sunset,
  // the newest one stays the successor that 410s point to.
  const defaultVersion = (preferred !== undefined && live.some((v) => v.version === preferred))
    ? preferred
    : (stable[0] ?? versions.find((v) => !v.preview)!).version
  return { supported: live.map((v) => v.version), defaultVersion, validFrom, validUntil }
}

const isoOf = (ms: number): string => new Date(ms).toISOString()

/**
 * The policy of versions whose settings are already checked (see {@link make}), newest first.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeUnsafe = (
  versions: ReadonlyArray<Lifecycle>,
  preferred?: ApiVersion.ApiVersion | undefined
): VersionPolicy["Service"] => {
  const byVersion = new Map(versions.map((v) => [v.version, v]))
  let cached = stateAt(versions, preferred, 0)
  const state = (now: number): State => {
    if (now >= cached.validFrom && now < cached.validUntil) return cached
    return cached = stateAt(versions, preferred, now)
  }
  const unsupported = (requested: string, current: State, why: string): Negotiation => ({
    _tag: "Unsupported",
    state: current,
    error: new UnsupportedApiVersion({
      detail: `${why}; supported versions: ${current.supported.join(", ")}`,
      requested,
      supportedVersions: current.supported
    })
  })
  const negotiate = (request: Request, now: number): Negotiation => {
    const current = state(now)
    let version: ApiVersion.ApiVersion
    let source: Source
    if (request.segment !== undefined) {
      if (!ApiVersion.isCanonical(request.segment)) {
        return unsupported(request.segment, current, `"${request.segment}" is not an API version (v1, v2, …)`)
      }
      version = request.segment
      source = "url"
    } else if (request.header !== undefined && request.header.length > 0) {
      const parsed = ApiVersion.parse(request.header)
      if (parsed === undefined) {
        return unsupported(request.header, current, `"${request.header}" is not an API version (v1, v2, …)`)
      }
      version = parsed
      source = "header"
    } else {
      version = current.defaultVersion
      source = "default"
    }
    const lifecycle = byVersion.get(version)
    if (lifecycle === undefined) return unsupported(version, current, `API version ${version} is not supported`)
    if (lifecycle.sunsetAt !== undefined && now >= lifecycle.sunsetAt) {
      const sunset = isoOf(lifecycle.sunsetAt)
      return {
        _tag: "Gone",
        state: current,
        lifecycle,
        error: new ApiVersionGone({
          detail: `API version ${version} was sunset on ${sunset}; use ${current.defaultVersion}`,
          version,
          sunset,
          successor: current.defaultVersion,
          supportedVersions: current.supported
        })
      }
    }
    return { _tag: "Served", version, source, lifecycle, state: current }
  }
  return {
    versions,
    lifecycle: (version) => byVersion.get(version),
    state,
    negotiate
  }
}

/**
 * The policy of `declared` versions with `settings`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  declared: ReadonlyArray<ApiVersion.ApiVersion>,
  settings?: Settings
): Layer.Layer<VersionPolicy, InvalidSettings> => Layer.effect(VersionPolicy, make(declared, settings))

/**
 * The policy of `declared` versions with the settings of the config file (`file`, already decoded with
 * {@link Settings}) under those of the environment ({@link config}).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  declared: ReadonlyArray<ApiVersion.ApiVersion>,
  file: Settings = {}
): Layer.Layer<VersionPolicy, InvalidSettings | Config.ConfigError> =>
  Layer.effect(
    VersionPolicy,
    Effect.flatMap(config, (env) => make(declared, merge(file, env)))
  )
