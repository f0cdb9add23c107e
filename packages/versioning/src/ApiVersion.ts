/**
 * API version identifiers (`v1`, `v2`, …), their order, and the version of the request the current fiber serves.
 *
 * A version is `v` followed by a positive integer. Clients may write it in any case and with leading zeros in the
 * `api-version` header (`V2`, `v02` and `2` all mean `v2`); the URL segment must be the canonical form.
 *
 * @since 0.1.0
 */
import { Context, Effect, Schema } from "effect"

/**
 * An API version in its canonical form: `v` and a positive integer without leading zeros.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ApiVersion = Schema.String.check(
  Schema.isPattern(/^v[1-9][0-9]{0,5}$/, { message: "an API version is v followed by a positive integer, e.g. v2" })
).annotate({ identifier: "ApiVersion", description: "An API version, e.g. v2" })

/**
 * @since 0.1.0
 * @category models
 */
export type ApiVersion = string

const canonical = /^v[1-9][0-9]{0,5}$/
const lenient = /^[vV]?0*([1-9][0-9]{0,5})$/

/**
 * Whether `input` is a version in canonical form (`v2`, never `V2` or `v02`).
 *
 * @since 0.1.0
 * @category guards
 */
export const isCanonical = (input: string): boolean => canonical.test(input)

/**
 * Reads a version as a client may write it in the `api-version` header: `v2`, `V2`, `v02` or `2` (surrounding
 * spaces ignored). `undefined` when the input is not a version at all (a malformed version).
 *
 * @since 0.1.0
 * @category parsing
 */
export const parse = (input: string): ApiVersion | undefined => {
  const match = lenient.exec(input.trim())
  return match === null ? undefined : `v${match[1]}`
}

/**
 * Whether a URL path segment names a version, well-formed or not (`v2`, `v02`, `V2`, `v2.1`, `v2-beta`): a segment
 * that starts with `v` or `V` and a digit. Such a segment is never read as a resource name.
 *
 * @since 0.1.0
 * @category guards
 */
export const isVersionSegment = (segment: string): boolean => {
  if (segment.length < 2) return false
  const first = segment.charCodeAt(0)
  const second = segment.charCodeAt(1)
  return (first === 118 || first === 86) && second >= 48 && second <= 57
}

/**
 * The number of a canonical version (`v12` is 12).
 *
 * @since 0.1.0
 * @category utils
 */
export const number = (version: ApiVersion): number => Number(version.slice(1))

/**
 * Orders versions oldest first (`v2` before `v10`).
 *
 * @since 0.1.0
 * @category utils
 */
export const compare = (a: ApiVersion, b: ApiVersion): number => number(a) - number(b)

/**
 * The API version of the request the current fiber serves, set once per request by the negotiation middleware
 * (`VersioningHttp.layer`); `undefined` outside a versioned request. Handlers, loggers, metrics and audit records
 * read it with {@link current}.
 *
 * @since 0.1.0
 * @category references
 */
export const CurrentApiVersion: Context.Reference<ApiVersion | undefined> = Context.Reference<
  ApiVersion | undefined
>("@ouroboros/versioning/ApiVersion/CurrentApiVersion", { defaultValue: () => undefined })

/**
 * The API version of the current request, if any.
 *
 * @since 0.1.0
 * @category accessors
 * @example
 * import { ApiVersion } from "@ouroboros/versioning"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const version = yield* ApiVersion.current
 *   yield* Effect.log(`served as ${version ?? "unversioned"}`)
 * })
 */
export const current: Effect.Effect<ApiVersion | undefined> = Effect.service(CurrentApiVersion)

/**
 * Runs `effect` as part of a request served as `version`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withVersion = (version: ApiVersion) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.provideService(effect, CurrentApiVersion, version)
