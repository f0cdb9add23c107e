/**
 * How long entries are kept, per event type and tenant. An entry is governed by the most specific rule that matches
 * it: tenant and type, then tenant, then type, then the default (`*`); with no matching rule it is kept for ever.
 * The log's own `retention.prune` and `retention.erasure` entries are always kept.
 *
 * Written in configuration as comma-separated `[<tenant>/]<type or *>=<age>`, for example
 * `data.read=90d, acme/data.read=30d, *=7y` (units `s`, `m`, `h`, `d`, `w`, `y` = 365 days, or any Effect duration
 * such as `90 days`).
 *
 * @since 0.1.0
 */
import { Duration, Effect, Option, Result, Schema, SchemaIssue, SchemaTransformation } from "effect"
import * as AuditEvent from "./AuditEvent.js"
import type * as AuditStore from "./AuditStore.js"

/**
 * One rule: entries of `tenantId` (any tenant when absent) and `type` (any type when absent) older than `maxAge` may
 * be pruned.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Rule = Schema.Struct({
  tenantId: Schema.optionalKey(Schema.String),
  type: Schema.optionalKey(AuditEvent.EventType),
  maxAge: Schema.Duration
}).annotate({ identifier: "RetentionRule" })

/**
 * @since 0.1.0
 * @category models
 */
export type Rule = typeof Rule.Type

const units: Record<string, number> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
  y: 365 * 86_400_000
}

const parseAge = (text: string): Duration.Duration | undefined => {
  const short = /^(\d+)\s*([smhdwy])$/.exec(text)
  if (short !== null) return Duration.millis(Number(short[1]) * units[short[2]!]!)
  return Option.getOrUndefined(Duration.fromInput(text as Duration.Input))
}

/**
 * Reads rules from their configuration text (empty: no rule).
 *
 * @since 0.1.0
 * @category constructors
 */
export const parse = (text: string): Result.Result<ReadonlyArray<Rule>, string> => {
  const rules: Array<Rule> = []
  const seen = new Set<string>()
  for (const part of text.split(",").map((p) => p.trim()).filter((p) => p.length > 0)) {
    const match = /^(?:([a-z0-9][a-z0-9_-]{0,63})\/)?([a-z.]+|\*)\s*=\s*(.+)$/.exec(part)
    if (match === null) return Result.fail(`"${part}" is not [<tenant>/]<type or *>=<age>`)
    const [, tenantId, type, age] = match as unknown as [string, string | undefined, string, string]
    if (type !== "*" && !AuditEvent.eventTypes.includes(type as AuditEvent.EventType)) {
      return Result.fail(`"${type}" is not an event type (${AuditEvent.eventTypes.join(", ")})`)
    }
    if (type === "retention.prune" || type === "retention.erasure") {
      return Result.fail(`${type} entries are always kept`)
    }
    const maxAge = parseAge(age.trim())
    if (maxAge === undefined) return Result.fail(`"${age}" is not an age (e.g. 90d, 12h, 7y, "90 days")`)
    const key = `${tenantId ?? "*"}/${type}`
    if (seen.has(key)) return Result.fail(`two rules for ${key}`)
    seen.add(key)
    rules.push({
      ...(tenantId === undefined ? {} : { tenantId }),
      ...(type === "*" ? {} : { type: type as AuditEvent.EventType }),
      maxAge
    })
  }
  return Result.succeed(rules)
}

/**
 * Rules from their configuration text, as a Schema (for `Config.schema`: a bad rule fails with its key's name).
 *
 * @since 0.1.0
 * @category schemas
 */
export const RulesFromString = Schema.String.pipe(
  Schema.decodeTo(
    Schema.Array(Rule),
    SchemaTransformation.transformEffect({
      decode: (text: string, options) =>
        Result.match(parse(text), {
          onFailure: (message) => Effect.fail(new SchemaIssue.InvalidValue({ message }, text, options)),
          onSuccess: (rules) => Effect.succeed(rules)
        }),
      encode: (rules: ReadonlyArray<Rule>) => Effect.succeed(format(rules))
    })
  )
)

/**
 * The configuration text of rules.
 *
 * @since 0.1.0
 * @category utils
 */
export const format = (rules: ReadonlyArray<Rule>): string =>
  rules.map((rule) =>
    `${rule.tenantId === undefined ? "" : `${rule.tenantId}/`}${rule.type ?? "*"}=` +
    `${Duration.toMillis(rule.maxAge) / 1000}s`
  ).join(",")

const specificity = (rule: Rule) => (rule.tenantId === undefined ? 0 : 2) + (rule.type === undefined ? 0 : 1)

/**
 * The rule that governs entries of a tenant and type, if any.
 *
 * @since 0.1.0
 * @category utils
 */
export const ruleFor = (
  rules: ReadonlyArray<Rule>,
  tenantId: string | undefined,
  type: AuditEvent.EventType
): Rule | undefined =>
  rules
    .filter((r) => (r.tenantId === undefined || r.tenantId === tenantId) && (r.type === undefined || r.type === type))
    .sort((a, b) => specificity(b) - specificity(a))[0]

/**
 * One selection per rule, most specific first, each leaving out what a more specific rule governs.
 *
 * @since 0.1.0
 * @category utils
 */
export const selectors = (
  rules: ReadonlyArray<Rule>,
  now: number,
  limit: number
): ReadonlyArray<{ readonly rule: Rule; readonly selector: AuditStore.PruneSelector }> =>
  [...rules].sort((a, b) => specificity(b) - specificity(a)).map((rule) => {
    const excludeTypes: Array<string> = []
    const excludeTenants: Array<string> = []
    const excludePairs: Array<readonly [string, string]> = []
    for (const other of rules) {
      if (specificity(other) <= specificity(rule) || other === rule) continue
      // `other` is more specific; it takes the entries both match.
      if (rule.tenantId !== undefined && other.tenantId !== rule.tenantId) continue
      if (rule.type !== undefined && other.type !== rule.type) continue
      if (other.tenantId !== undefined && other.type !== undefined) excludePairs.push([other.tenantId, other.type])
      else if (other.tenantId !== undefined) excludeTenants.push(other.tenantId)
      else if (other.type !== undefined) excludeTypes.push(other.type)
    }
    return {
      rule,
      selector: {
        tenantId: rule.tenantId,
        type: rule.type,
        before: now - Duration.toMillis(rule.maxAge),
        excludeTypes,
        excludeTenants,
        excludePairs,
        limit
      }
    }
  })
