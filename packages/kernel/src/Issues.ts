/**
 * Schema issues as a client reads them, in bounded time and space: each issue names the path and what was expected,
 * any value it quotes is cut at a limit (with an ellipsis and the original length), and the list stops at a limit
 * (with a count of the rest).
 *
 * Effect's formatters (`SchemaError.message`, `SchemaIssue.makeFormatterStandardSchemaV1`) quote a value reported with
 * `reportInput` in full, once per branch of a union and again in the tree text, and recurse once per level of the
 * issue tree: a 7 MB value came back as an 84 MB answer, and an issue nested a few thousand levels deep overflowed the
 * stack. {@link format} walks the issue tree with an explicit stack, visits at most `maxNodes` nodes, and never
 * formats a value beyond `maxValueLength` characters.
 *
 * @since 0.1.0
 */
import type { SchemaAST } from "effect"
import { SchemaIssue } from "effect"

/**
 * The bounds of {@link format}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Limits {
  /** Issues listed; the rest are counted (default 20). */
  readonly maxIssues: number
  /** Characters of a quoted value or of a path segment (default 100). */
  readonly maxValueLength: number
  /** Segments of a path; a longer one ends with `"…"` (default 32). */
  readonly maxPathLength: number
  /** Characters of a message (default 300). */
  readonly maxMessageLength: number
  /** Nodes of the issue tree visited; past it the count of the rest is a lower bound (default 10,000). */
  readonly maxNodes: number
}

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultLimits: Limits = {
  maxIssues: 20,
  maxValueLength: 100,
  maxPathLength: 32,
  maxMessageLength: 300,
  maxNodes: 10_000
}

/**
 * One issue: where (the keys and indexes from the root of the decoded value) and what was expected.
 *
 * @since 0.1.0
 * @category models
 */
export interface Issue {
  readonly path: ReadonlyArray<string | number>
  readonly message: string
}

/**
 * The issues of one failure.
 *
 * @since 0.1.0
 * @category models
 */
export interface Formatted {
  /** At most `maxIssues`, in the order of the schema (depth first, as Effect's formatters list them). */
  readonly issues: ReadonlyArray<Issue>
  /** Issues found beyond `maxIssues`. */
  readonly omitted: number
  /** The walk stopped at `maxNodes` before it saw every issue: `omitted` is then a lower bound. */
  readonly incomplete: boolean
}

const ellipsis = "…"

const cut = (text: string, max: number): string => text.length <= max ? text : text.slice(0, max) + ellipsis

/**
 * A short rendering of a value for a message: a string is JSON-quoted and cut at `maxLength` characters with an
 * ellipsis and its length (`"xxxx…" (7340032 characters)`); arrays and objects show their first members up to
 * `maxLength` characters and three levels, then an ellipsis (an array also says how many items it has). The work is
 * bounded by `maxLength`, whatever the size of the value.
 *
 * @since 0.1.0
 * @category formatting
 */
export const quote = (value: unknown, maxLength: number = defaultLimits.maxValueLength): string => {
  if (typeof value === "string") {
    return value.length <= maxLength
      ? JSON.stringify(value)
      : `${JSON.stringify(value.slice(0, maxLength)).slice(0, -1)}${ellipsis}" (${value.length} characters)`
  }
  if (typeof value !== "object" || value === null) return scalar(value)
  const out = { text: "", full: false }
  preview(value, 0, maxLength, out)
  if (!out.full) return out.text
  return Array.isArray(value) ? `${out.text} (an array of ${value.length} items)` : out.text
}

const scalar = (value: unknown): string => {
  switch (typeof value) {
    case "bigint":
      return `${value}n`
    case "symbol":
      return cut(String(value), 100)
    case "function":
      return "a function"
    case "undefined":
      return "undefined"
    default:
      return String(value)
  }
}

// Appends `value` to `out.text` until `budget` characters; `out.full` says that the budget ran out. Below three levels
// a value is `[…]` or `{…}`: the recursion is bounded whatever the value.
const preview = (value: unknown, level: number, budget: number, out: { text: string; full: boolean }): void => {
  const add = (text: string): boolean => {
    if (out.text.length + text.length > budget) {
      out.text += text.slice(0, Math.max(0, budget - out.text.length)) + ellipsis
      out.full = true
      return false
    }
    out.text += text
    return true
  }
  if (typeof value === "string") {
    add(value.length <= budget ? JSON.stringify(value) : JSON.stringify(value.slice(0, budget)))
    return
  }
  if (typeof value !== "object" || value === null) {
    add(scalar(value))
    return
  }
  if (Array.isArray(value)) {
    if (level >= 3) {
      add(value.length === 0 ? "[]" : `[${ellipsis}]`)
      return
    }
    if (!add("[")) return
    for (let i = 0; i < value.length; i++) {
      if (i > 0 && !add(",")) return
      preview(value[i], level + 1, budget, out)
      if (out.full) return
    }
    add("]")
    return
  }
  const prototype = Object.getPrototypeOf(value)
  if (prototype !== Object.prototype && prototype !== null) {
    const name = (value as { constructor?: { name?: unknown } }).constructor?.name
    add(value instanceof Date ? safeDate(value) : `${typeof name === "string" ? cut(name, 40) : "an object"}(…)`)
    return
  }
  if (level >= 3) {
    add(`{${ellipsis}}`)
    return
  }
  if (!add("{")) return
  let first = true
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue
    if (!first && !add(",")) return
    first = false
    if (!add(`${JSON.stringify(cut(key, budget))}:`)) return
    preview((value as Record<string, unknown>)[key], level + 1, budget, out)
    if (out.full) return
  }
  add("}")
}

const safeDate = (date: Date): string => {
  try {
    return date.toISOString()
  } catch {
    return "Invalid Date"
  }
}

/**
 * A path as Effect's formatters print it (`["metadata"]["a"][0]`).
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatPath = (path: ReadonlyArray<string | number>): string =>
  path.map((segment) => `[${typeof segment === "number" ? segment : JSON.stringify(segment)}]`).join("")

// A path as a list from the leaf to the root: extending it costs one node, not a copy.
interface PathNode {
  readonly parent: PathNode | undefined
  readonly segment: PropertyKey
}

interface Frame {
  readonly issue: SchemaIssue.Issue
  readonly path: PathNode | undefined
  /** The message of the outermost filter above, which stands for every leaf below it (as in Effect's formatters). */
  readonly override: string | undefined
}

const segmentOf = (key: PropertyKey, limits: Limits): string | number =>
  typeof key === "number" ? key : cut(typeof key === "string" ? key : String(key), limits.maxValueLength)

const materialize = (path: PathNode | undefined, limits: Limits): Array<string | number> => {
  const reversed: Array<PropertyKey> = []
  for (let node = path; node !== undefined; node = node.parent) reversed.push(node.segment)
  const out: Array<string | number> = []
  for (let i = reversed.length - 1; i >= 0 && out.length < limits.maxPathLength; i--) {
    out.push(segmentOf(reversed[i]!, limits))
  }
  if (reversed.length > limits.maxPathLength) out.push(ellipsis)
  return out
}

type Leaf = SchemaIssue.Leaf | SchemaIssue.AnyOf

// The message annotation an issue carries, as Effect's formatters find it.
const findMessage = (issue: SchemaIssue.Issue): string | undefined => {
  let current = issue
  while (current._tag === "Encoding") current = current.issue
  if (current._tag === "Pointer" || current._tag === "Composite") return undefined
  const annotations: Record<string, unknown> | undefined = current._tag === "Filter"
    ? current.filter.annotations
    : "annotations" in current
    ? current.annotations
    : current.ast.annotations
  const key = current._tag === "MissingKey"
    ? "messageMissingKey"
    : current._tag === "UnexpectedKey"
    ? "messageUnexpectedKey"
    : "message"
  const message = annotations?.[key]
  return typeof message === "string" ? message : undefined
}

// The same issue without its reported input, for Effect's own wording of what was expected (which would otherwise
// quote the whole input).
const withoutInput = (issue: Leaf): SchemaIssue.Issue => {
  switch (issue._tag) {
    case "InvalidType":
      return new SchemaIssue.InvalidType(issue.ast)
    case "InvalidValue":
      return new SchemaIssue.InvalidValue(issue.annotations)
    case "UnexpectedKey":
      return new SchemaIssue.UnexpectedKey(issue.ast)
    case "Forbidden":
      return new SchemaIssue.Forbidden(issue.annotations)
    case "OneOf":
      return new SchemaIssue.OneOf(issue.ast, issue.successes)
    case "AnyOf":
      return new SchemaIssue.InvalidType(issue.ast)
    case "MissingKey":
      return issue
  }
}

const got = (issue: SchemaIssue.Issue, limits: Limits): string =>
  SchemaIssue.hasInput(issue) ? `, got ${quote(issue.input, limits.maxValueLength)}` : ""

const leafMessage = (issue: Leaf, limits: Limits): string => {
  const custom = findMessage(issue)
  if (custom !== undefined) return custom
  const expected = SchemaIssue.defaultLeafHook(withoutInput(issue) as SchemaIssue.Leaf)
  switch (issue._tag) {
    case "InvalidType":
    case "InvalidValue":
    case "OneOf":
    case "AnyOf":
      return expected + got(issue, limits)
    default:
      return expected
  }
}

const formatCheck = (check: SchemaAST.Check<unknown>): string => {
  const expected = check.annotations?.expected
  if (typeof expected === "string") return expected
  return check._tag === "Filter" ? "<filter>" : check.checks.map(formatCheck).join(" & ")
}

// Effect's message of a failed filter: its annotation, or the filter's expectation when the filter itself refused the
// value; undefined when the leaves below speak for themselves.
const filterMessage = (issue: SchemaIssue.Filter, limits: Limits): string | undefined => {
  const custom = findMessage(issue) ?? findMessage(issue.issue)
  if (custom !== undefined) return custom
  if (issue.issue._tag !== "InvalidValue") return undefined
  const annotated = issue.issue.annotations?.expected
  const expected = typeof annotated === "string" ? annotated : formatCheck(issue.filter)
  return `Expected ${expected}${got(SchemaIssue.hasInput(issue) ? issue : issue.issue, limits)}`
}

/**
 * Lists the issues of a failure with bounds ({@link Limits}): paths and messages in the order Effect's standard
 * formatter gives them, without its unbounded quoting and recursion.
 *
 * @since 0.1.0
 * @category formatting
 * @example
 * import { Issues } from "@ouroboros/kernel"
 * import { Result, Schema } from "effect"
 *
 * const result = Schema.decodeUnknownResult(Schema.Struct({ n: Schema.Number }))({ n: "x".repeat(10_000_000) }, {
 *   reportInput: true
 * })
 * if (Result.isFailure(result)) console.log(Issues.format(result.failure.issue))
 * // { issues: [{ path: ["n"], message: 'Expected number, got "xxxx…" (10000000 characters)' }], omitted: 0, … }
 */
export const format = (issue: SchemaIssue.Issue, limits?: Partial<Limits>): Formatted => {
  const bounds: Limits = limits === undefined ? defaultLimits : { ...defaultLimits, ...limits }
  const issues: Array<Issue> = []
  let omitted = 0
  let visited = 0
  const stack: Array<Frame> = [{ issue, path: undefined, override: undefined }]
  const emit = (frame: Frame, leaf: Leaf) => {
    if (issues.length >= bounds.maxIssues) {
      omitted++
      return
    }
    issues.push({
      path: materialize(frame.path, bounds),
      message: cut(frame.override ?? leafMessage(leaf, bounds), bounds.maxMessageLength)
    })
  }
  while (stack.length > 0) {
    if (visited >= bounds.maxNodes) {
      return { issues, omitted, incomplete: true }
    }
    visited++
    const frame = stack.pop()!
    const current = frame.issue
    switch (current._tag) {
      case "Filter":
        stack.push({
          issue: current.issue,
          path: frame.path,
          // Only listed issues need their wording.
          override: frame.override ??
            (issues.length < bounds.maxIssues ? filterMessage(current, bounds) : undefined)
        })
        break
      case "Encoding":
        stack.push({ issue: current.issue, path: frame.path, override: frame.override })
        break
      case "Pointer": {
        let path = frame.path
        for (const segment of current.path) path = { parent: path, segment }
        stack.push({ issue: current.issue, path, override: frame.override })
        break
      }
      case "Composite":
      case "AnyOf":
        if (current._tag === "AnyOf" && current.issues.length === 0) {
          emit(frame, current)
          break
        }
        // Children in reverse, so that they are visited in order.
        for (let i = current.issues.length - 1; i >= 0; i--) {
          stack.push({ issue: current.issues[i]!, path: frame.path, override: frame.override })
        }
        break
      default:
        emit(frame, current)
    }
  }
  return { issues, omitted, incomplete: false }
}

/**
 * One line that sums up the issues for a problem's `detail`: the first `lines` issues with their paths, and how many
 * more there are.
 *
 * @since 0.1.0
 * @category formatting
 */
export const summary = (formatted: Formatted, lines = 3): string => {
  const shown = formatted.issues.slice(0, lines).map((issue) =>
    issue.path.length === 0 ? issue.message : `${issue.message} at ${formatPath(issue.path)}`
  )
  if (shown.length === 0) return "The value is invalid"
  const rest = formatted.issues.length - shown.length + formatted.omitted
  const more = formatted.incomplete
    ? `; and ${rest > 0 ? `at least ${rest} ` : ""}more issues`
    : rest > 0
    ? `; and ${rest} more issue${rest === 1 ? "" : "s"}`
    : ""
  return shown.join("; ") + more
}
