/**
 * flagd's flag definition format, unchanged: a flag set is `{ flags, $evaluators?, metadata? }` and each flag is
 * `{ state, variants, defaultVariant, targeting?, metadata? }` with JsonLogic targeting (including flagd's
 * `fractional`, `sem_ver`, `starts_with` and `ends_with` operators and `$ref` to shared `$evaluators`). A file that
 * flagd reads, Ouroboros reads, and the other way round.
 *
 * Validation is flagd's own: `@openfeature/flagd-core` carries flagd's JSON schema (compiled) and its structural
 * checks. In `strict` mode (the default here) a definition that breaks the schema, names a default variant it does
 * not have or carries targeting that does not compile is refused. In `lenient` mode the schema only warns, as the
 * flagd daemon does; structural errors are still refused, and a flag whose targeting does not compile evaluates with
 * `PARSE_ERROR`.
 *
 * @since 0.1.0
 */
import type { Logger } from "@openfeature/core"
import { MemoryStorage } from "@openfeature/flagd-core"
import { Result, Schema } from "effect"
import * as Yaml from "yaml"

// -----------------------------------------------------------------------------
// schemas
// -----------------------------------------------------------------------------

/**
 * Flag or flag-set metadata: string, number or boolean values (flagd's schema).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Metadata = Schema.Record(Schema.String, Schema.Union([Schema.String, Schema.Finite, Schema.Boolean]))
  .annotate({ identifier: "FlagMetadata" })

/**
 * @since 0.1.0
 * @category models
 */
export type Metadata = typeof Metadata.Type

/**
 * One flag in flagd's format. The value of every variant has the same type (boolean, string, number or object);
 * `targeting` is a JsonLogic rule that returns a variant name (or null for the default variant).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Flag = Schema.Struct({
  state: Schema.Literals(["ENABLED", "DISABLED"]),
  variants: Schema.Record(Schema.String, Schema.Json),
  defaultVariant: Schema.optionalKey(Schema.NullOr(Schema.String)),
  targeting: Schema.optionalKey(Schema.Record(Schema.String, Schema.Json)),
  metadata: Schema.optionalKey(Metadata)
}).annotate({
  identifier: "FlagDefinition",
  description: "A flag in flagd's flag definition format (https://flagd.dev/reference/flag-definitions/)"
})

/**
 * @since 0.1.0
 * @category models
 */
export type Flag = typeof Flag.Type

/**
 * A flag set: flagd's file format. `$evaluators` holds shared JsonLogic fragments that targeting rules use with
 * `{ "$ref": "name" }`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const FlagSet = Schema.Struct({
  $schema: Schema.optionalKey(Schema.String),
  flags: Schema.Record(Schema.String, Flag),
  $evaluators: Schema.optionalKey(Schema.Record(Schema.String, Schema.Json)),
  metadata: Schema.optionalKey(Metadata)
}).annotate({ identifier: "FlagSet", description: "A flag set in flagd's format" })

/**
 * @since 0.1.0
 * @category models
 */
export type FlagSet = typeof FlagSet.Type

/**
 * The same shape as {@link FlagSet} with each flag left undecoded, for the lenient mode, where a flag that breaks
 * flagd's schema is still loaded (as the flagd daemon does).
 */
const LooseFlagSet = Schema.Struct({
  $schema: Schema.optionalKey(Schema.String),
  flags: Schema.Record(Schema.String, Schema.Record(Schema.String, Schema.Json)),
  $evaluators: Schema.optionalKey(Schema.Record(Schema.String, Schema.Json)),
  metadata: Schema.optionalKey(Schema.Record(Schema.String, Schema.Json))
})

/**
 * An empty flag set.
 *
 * @since 0.1.0
 * @category constructors
 */
export const empty: FlagSet = { flags: {} }

// -----------------------------------------------------------------------------
// validation
// -----------------------------------------------------------------------------

/**
 * `strict`: flagd's schema is enforced and targeting must compile. `lenient`: what the flagd daemon accepts (the
 * schema only warns).
 *
 * @since 0.1.0
 * @category models
 */
export type ValidationMode = "strict" | "lenient"

/**
 * What is wrong, and where (a JSON pointer into the flag set, e.g. `/flags/new-search/defaultVariant`).
 *
 * @since 0.1.0
 * @category models
 */
export const Issue = Schema.Struct({
  path: Schema.String,
  message: Schema.String
}).annotate({ identifier: "FlagIssue" })

/**
 * @since 0.1.0
 * @category models
 */
export type Issue = typeof Issue.Type

/**
 * A validated flag set, with the warnings of a lenient validation.
 *
 * @since 0.1.0
 * @category models
 */
export interface Validated {
  readonly flagSet: FlagSet
  readonly warnings: ReadonlyArray<Issue>
}

/**
 * The flag set does not hold: its issues say where and why.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidFlagSet extends Schema.TaggedError<InvalidFlagSet>()("InvalidFlagSet", {
  detail: Schema.String,
  issues: Schema.Array(Issue)
}) {}

/**
 * Every error of this module.
 *
 * @since 0.1.0
 * @category errors
 */
export type FlagDefinitionError = InvalidFlagSet

const schemaPrefix = "invalid flagd flag configuration: "
const maxIssues = 20

interface AjvError {
  readonly instancePath?: string
  readonly schemaPath?: string
  readonly keyword?: string
  readonly message?: string
  readonly params?: Record<string, unknown>
}

const describeAjv = (error: AjvError): Issue => {
  const params = error.params ?? {}
  const extra = typeof params.additionalProperty === "string"
    ? ` (${params.additionalProperty})`
    : Array.isArray(params.allowedValues)
    ? ` (${params.allowedValues.map((v) => JSON.stringify(v)).join(", ")})`
    : ""
  return { path: error.instancePath || "/", message: `${error.message ?? error.keyword ?? "invalid"}${extra}` }
}

/**
 * The schema errors of flagd-core, most specific first, without the repetitions its `anyOf` branches produce.
 */
const schemaIssues = (message: string): ReadonlyArray<Issue> => {
  let errors: ReadonlyArray<AjvError>
  try {
    errors = JSON.parse(message.slice(schemaPrefix.length)) as ReadonlyArray<AjvError>
  } catch {
    return [{ path: "/", message }]
  }
  const seen = new Set<string>()
  const issues: Array<Issue> = []
  // flagd's schema tries each variant type in turn (anyOf): one issue says what they have in common.
  const variantTypes = /^#\/definitions\/(boolean|number|string|object)Variants\/properties\/variants\//
  for (const error of errors) {
    if (!variantTypes.test(error.schemaPath ?? "")) continue
    const path = (error.instancePath ?? "").replace(/\/variants\/.*$/, "/variants")
    const key = `${path}\u0000types`
    if (seen.has(key)) continue
    seen.add(key)
    issues.push({ path, message: "the variants must all be booleans, all strings, all numbers or all objects" })
  }
  errors = errors.filter((error) => !variantTypes.test(error.schemaPath ?? ""))
  const ordered = [...errors].sort((a, b) => (b.instancePath ?? "").length - (a.instancePath ?? "").length)
  for (const error of ordered) {
    if (error.keyword === "anyOf" || error.keyword === "oneOf" || error.keyword === "if") continue
    const issue = describeAjv(error)
    const key = `${issue.path}\u0000${issue.message}`
    if (seen.has(key)) continue
    seen.add(key)
    issues.push(issue)
  }
  return (issues.length === 0 ? errors.map(describeAjv) : issues).slice(0, maxIssues)
}

const causeMessage = (error: unknown): string => {
  const cause = error instanceof Error ? error.cause : undefined
  if (cause instanceof Error) return cause.message
  return error instanceof Error ? error.message : String(error)
}

const structuralPath = (message: string): string => {
  const missing = /^Default variant (.*) missing from variants/.exec(message)
  return missing ? "/flags/*/defaultVariant" : "/"
}

const targetingPattern = /^Invalid targeting configuration for flag '(.*)'$/

/**
 * Collects what flagd-core logs while it parses: an invalid targeting rule is only logged there.
 */
const collectingLogger = (warnings: Array<string>): Logger => ({
  error: (...args: Array<unknown>) => warnings.push(args.map(String).join(" ")),
  warn: (...args: Array<unknown>) => warnings.push(args.map(String).join(" ")),
  info: () => {},
  debug: () => {}
})

const summary = (issues: ReadonlyArray<Issue>): string =>
  issues.length === 0
    ? "invalid flag set"
    : issues.slice(0, 3).map((i) => `${i.path}: ${i.message}`).join("; ") +
      (issues.length > 3 ? ` (and ${issues.length - 3} more)` : "")

/**
 * Makes an {@link InvalidFlagSet} from issues, with a one-line detail.
 *
 * @since 0.1.0
 * @category constructors
 */
export const invalid = (issues: ReadonlyArray<Issue>, context?: string): InvalidFlagSet =>
  new InvalidFlagSet({ detail: context === undefined ? summary(issues) : `${context}: ${summary(issues)}`, issues })

/**
 * Validates a flag set the way flagd-core loads it (see the module notes for the two modes). Returns the flag set
 * itself (decoded) and, in lenient mode, the warnings.
 *
 * @since 0.1.0
 * @category validation
 * @example
 * import { FlagDefinition } from "@ouroboros/feature-flags"
 * const result = FlagDefinition.validate({
 *   flags: { "new-search": { state: "ENABLED", variants: { on: true, off: false }, defaultVariant: "off" } }
 * })
 */
export const validate = (
  input: unknown,
  mode: ValidationMode = "strict"
): Result.Result<Validated, InvalidFlagSet> => {
  const shape = mode === "strict"
    ? Schema.decodeUnknownResult(FlagSet)(input)
    : Schema.decodeUnknownResult(LooseFlagSet)(input)
  if (Result.isFailure(shape)) {
    return Result.fail(invalid([{ path: "/", message: shape.failure.message }]))
  }
  const flagSet = shape.success as FlagSet
  const logged: Array<string> = []
  try {
    new MemoryStorage(collectingLogger(logged)).setConfigurations(JSON.stringify(flagSet), mode === "strict")
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    if (message.startsWith(schemaPrefix)) return Result.fail(invalid(schemaIssues(message)))
    const detail = causeMessage(error)
    return Result.fail(invalid([{ path: structuralPath(detail), message: detail }]))
  }
  const targeting: Array<Issue> = []
  for (const line of logged) {
    const match = targetingPattern.exec(line)
    if (match) {
      targeting.push({ path: `/flags/${match[1]}/targeting`, message: "the targeting rule does not compile" })
    }
  }
  if (mode === "strict" && targeting.length > 0) return Result.fail(invalid(targeting))
  return Result.succeed({ flagSet, warnings: targeting })
}

// -----------------------------------------------------------------------------
// parsing
// -----------------------------------------------------------------------------

/**
 * The format of a flag file: `json`, or `yaml` (flagd reads both).
 *
 * @since 0.1.0
 * @category models
 */
export type Format = "json" | "yaml"

/**
 * The format of a file from its name: `.yaml` and `.yml` are YAML, anything else JSON.
 *
 * @since 0.1.0
 * @category parsing
 */
export const formatOf = (path: string): Format => /\.ya?ml$/i.test(path) ? "yaml" : "json"

/**
 * Parses the text of a flag file (JSON or YAML) and validates it.
 *
 * @since 0.1.0
 * @category parsing
 * @example
 * import { FlagDefinition } from "@ouroboros/feature-flags"
 * const result = FlagDefinition.parse(`
 * flags:
 *   new-search:
 *     state: ENABLED
 *     variants: { on: true, off: false }
 *     defaultVariant: off
 * `, "yaml")
 */
export const parse = (
  text: string,
  format: Format,
  mode: ValidationMode = "strict"
): Result.Result<Validated, InvalidFlagSet> => {
  let input: unknown
  try {
    input = format === "yaml" ? Yaml.parse(text) : JSON.parse(text)
  } catch (error) {
    const message = error instanceof Error ? error.message.split("\n")[0]! : String(error)
    return Result.fail(
      invalid([{ path: "/", message: `not valid ${format === "yaml" ? "YAML" : "JSON"}: ${message}` }])
    )
  }
  return validate(input, mode)
}

/**
 * The variant names of a flag.
 *
 * @since 0.1.0
 * @category utils
 */
export const variantsOf = (flag: Flag): ReadonlyArray<string> => Object.keys(flag.variants)
