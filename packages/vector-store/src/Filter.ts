/**
 * The payload filter both vector store backends understand: a subset of Qdrant's filter language (`must`, `should`,
 * `must_not` of field conditions and nested filters), decoded with Schema and evaluated identically by the embedded
 * store and by Qdrant.
 *
 * @since 0.1.0
 */
import { Effect, Schema, SchemaIssue } from "effect"

/**
 * The payload keys the store keeps for itself. A filter may not name them: the tenant condition is always added by
 * the store.
 *
 * @since 0.1.0
 * @category constants
 */
export const reservedKeys: ReadonlySet<string> = new Set(["tenant_id", "point_id"])

/**
 * The deepest nesting of filters accepted.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxDepth = 4

/**
 * The most conditions one clause (`must`, `should`, `must_not`) accepts.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxConditions = 64

/**
 * A scalar a `match` can compare with (numbers are finite).
 *
 * @since 0.1.0
 * @category schemas
 */
export const MatchValue = Schema.Union([Schema.String, Schema.Finite, Schema.Boolean])

/**
 * @since 0.1.0
 * @category models
 */
export type MatchValue = typeof MatchValue.Type

/**
 * `{ value }` matches one value, `{ any }` one of several (use `must_not` for "none of"). An array payload matches when
 * one of its elements does (as in Qdrant).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Match = Schema.Union([
  Schema.Struct({ value: MatchValue }),
  Schema.Struct({
    any: Schema.Array(Schema.Union([Schema.String, Schema.Finite])).check(Schema.isMinLength(1))
  })
])

/**
 * @since 0.1.0
 * @category models
 */
export type Match = typeof Match.Type

/**
 * Numeric bounds; at least one must be given.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Range = Schema.Struct({
  gt: Schema.optional(Schema.Finite),
  gte: Schema.optional(Schema.Finite),
  lt: Schema.optional(Schema.Finite),
  lte: Schema.optional(Schema.Finite)
}).annotate({ description: "Numeric bounds; at least one of gt, gte, lt, lte" })

/**
 * @since 0.1.0
 * @category models
 */
export type Range = typeof Range.Type

/**
 * A payload key: 1 to 256 characters, a dotted path into nested objects. `validate` also rejects reserved keys and
 * empty path segments.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Key = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(256))

/**
 * A condition on one payload field (`key` may be a dotted path into nested objects): a `match` or a `range`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const FieldCondition = Schema.Union([
  Schema.Struct({ key: Key, match: Match }),
  Schema.Struct({ key: Key, range: Range })
])

/**
 * @since 0.1.0
 * @category models
 */
export type FieldCondition = typeof FieldCondition.Type

/**
 * A filter: every `must` condition holds, at least one `should` condition holds (when there are any), no `must_not`
 * condition holds. Conditions are field conditions or nested filters.
 *
 * @since 0.1.0
 * @category models
 */
export interface Filter {
  readonly must?: ReadonlyArray<Condition> | undefined
  readonly should?: ReadonlyArray<Condition> | undefined
  readonly must_not?: ReadonlyArray<Condition> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export type Condition = FieldCondition | Filter

// The conditions of a clause: at most `maxConditions`.
const Conditions = () =>
  Schema.Array(Schema.suspend((): Schema.Codec<Condition> => Condition)).check(Schema.isMaxLength(maxConditions))

/**
 * @since 0.1.0
 * @category schemas
 */
export const Filter: Schema.Codec<Filter> = Schema.Struct({
  must: Schema.optional(Conditions()),
  should: Schema.optional(Conditions()),
  must_not: Schema.optional(Conditions())
}).annotate({
  identifier: "Filter",
  description: `Every must condition holds, at least one should condition holds (when there are any), no must_not ` +
    `condition holds. Nested at most ${maxDepth} deep; keys name metadata fields (a dotted path into nested objects).`
})

/**
 * @since 0.1.0
 * @category schemas
 */
export const Condition: Schema.Codec<Condition> = Schema.Union([FieldCondition, Filter])

/**
 * A filter that cannot be used: `detail` names the offending field. A 400 at HTTP.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidFilter extends Schema.TaggedError<InvalidFilter>()(
  "InvalidFilter",
  { detail: Schema.String },
  { httpApiStatus: 400, description: "The filter is invalid" }
) {
  /**
   * The explanation (`detail`, which names the offending field), so logs and causes say what is wrong.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return this.detail
  }
}

const isFieldCondition = (condition: Condition): condition is FieldCondition => "key" in condition

const checkKey = (key: string, path: string): string | undefined => {
  if (key.length === 0 || key.length > 256) return `${path}.key must be 1 to 256 characters`
  if (reservedKeys.has(key.split(".")[0]!)) return `${path}.key "${key}" is reserved by the store`
  if (key.split(".").some((part) => part.length === 0)) return `${path}.key "${key}" has an empty path segment`
  return undefined
}

const checkCondition = (condition: Condition, path: string, depth: number): string | undefined => {
  if (!isFieldCondition(condition)) return checkFilter(condition, path, depth + 1)
  const keyProblem = checkKey(condition.key, path)
  if (keyProblem !== undefined) return keyProblem
  if ("range" in condition) {
    const { gt, gte, lt, lte } = condition.range
    const bounds = [gt, gte, lt, lte].filter((bound) => bound !== undefined)
    if (bounds.length === 0) return `${path}.range needs at least one of gt, gte, lt, lte`
    if (bounds.some((bound) => !Number.isFinite(bound))) return `${path}.range bounds must be finite numbers`
    return undefined
  }
  const match = condition.match
  if ("any" in match && match.any.length === 0) return `${path}.match.any must not be empty`
  if ("value" in match && typeof match.value === "number" && !Number.isFinite(match.value)) {
    return `${path}.match.value must be a finite number`
  }
  return undefined
}

const checkFilter = (filter: Filter, path: string, depth: number): string | undefined => {
  if (depth > maxDepth) return `${path} nests filters deeper than ${maxDepth}`
  for (const clause of ["must", "should", "must_not"] as const) {
    const conditions = filter[clause]
    if (conditions === undefined) continue
    if (conditions.length > maxConditions) return `${path}.${clause} has more than ${maxConditions} conditions`
    for (let i = 0; i < conditions.length; i++) {
      const problem = checkCondition(conditions[i]!, `${path}.${clause}[${i}]`, depth)
      if (problem !== undefined) return problem
    }
  }
  return undefined
}

/**
 * Checks what the schema cannot: keys (not reserved, no empty segments), ranges with bounds, non-empty `any`, depth.
 *
 * @since 0.1.0
 * @category validation
 */
export const validate = (filter: Filter): Effect.Effect<Filter, InvalidFilter> => {
  const problem = checkFilter(filter, "filter", 1)
  return problem === undefined ? Effect.succeed(filter) : Effect.fail(new InvalidFilter({ detail: problem }))
}

/**
 * Decodes a filter from untrusted input (an HTTP body, say) and validates it; the error names the offending field.
 *
 * @since 0.1.0
 * @category decoding
 * @example
 * import { Filter } from "@ouroboros/vector-store"
 * const filter = Filter.decodeUnknown({ must: [{ key: "lang", match: { value: "en" } }] })
 */
export const decodeUnknown = (input: unknown): Effect.Effect<Filter, InvalidFilter> =>
  decodeFilter(input).pipe(
    Effect.mapError((error) => {
      const issue = formatIssues(error.issue).issues[0]
      const path = issue === undefined ? "filter" : ["filter", ...(issue.path ?? []).map(pathSegment)].join(".")
      return new InvalidFilter({ detail: `${path}: ${issue?.message ?? "invalid"}` })
    }),
    Effect.flatMap(validate)
  )

// Decoded as JSON, as an HTTP body's other fields are (a `null` field is an absent one), with no excess property.
// `reportInput`: the message shows the offending value, as Effect 3's did ("Expected string, got 3").
const decodeFilter = Schema.decodeUnknownEffect(Schema.toCodecJson(Filter), {
  onExcessProperty: "error",
  reportInput: true
})

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

const pathSegment = (segment: PropertyKey | { readonly key: PropertyKey }): string =>
  String(typeof segment === "object" ? segment.key : segment)

/** The values at a dotted path; arrays met on the way and at the end are flattened (as in Qdrant). */
const valuesAt = (payload: Readonly<Record<string, unknown>>, key: string): ReadonlyArray<unknown> => {
  let current: Array<unknown> = [payload]
  for (const part of key.split(".")) {
    const next: Array<unknown> = []
    for (const value of current) {
      for (const item of Array.isArray(value) ? value : [value]) {
        if (typeof item === "object" && item !== null && !Array.isArray(item) && part in item) {
          next.push((item as Record<string, unknown>)[part])
        }
      }
    }
    current = next
  }
  return current.flatMap((value) => (Array.isArray(value) ? value : [value]))
}

const matchOne = (match: Match, value: unknown): boolean => {
  if ("value" in match) return value === match.value
  return (match.any as ReadonlyArray<unknown>).includes(value)
}

const inRange = (range: Range, value: unknown): boolean =>
  typeof value === "number" &&
  (range.gt === undefined || value > range.gt) &&
  (range.gte === undefined || value >= range.gte) &&
  (range.lt === undefined || value < range.lt) &&
  (range.lte === undefined || value <= range.lte)

const holds = (condition: Condition, payload: Readonly<Record<string, unknown>>): boolean => {
  if (!isFieldCondition(condition)) return matches(condition, payload)
  const found = valuesAt(payload, condition.key)
  if ("range" in condition) return found.some((value) => inRange(condition.range, value))
  return found.some((value) => matchOne(condition.match, value))
}

/**
 * Whether a payload satisfies a filter, with Qdrant's semantics. Used by the embedded store.
 *
 * @since 0.1.0
 * @category evaluation
 */
export const matches = (filter: Filter, payload: Readonly<Record<string, unknown>>): boolean => {
  if (filter.must !== undefined && !filter.must.every((condition) => holds(condition, payload))) return false
  if (filter.must_not !== undefined && filter.must_not.some((condition) => holds(condition, payload))) return false
  if (filter.should !== undefined && filter.should.length > 0) {
    return filter.should.some((condition) => holds(condition, payload))
  }
  return true
}
