/**
 * The pipe syntax of reasoning pipelines, as the original Ouroboros wrote them:
 * `SetTopic('zebras') | UseRetrieval(4) | UseDraft | UseCritique | UseImprove`.
 *
 * Steps are separated by `|`; each is `Name` or `Name(args)` where args are single- or double-quoted strings (escapes
 * `\\ \' \" \n \r \t \uXXXX`) or integers. Names are case-sensitive; a misspelt one is answered with the closest known
 * name. Every error carries the 1-based line and column of the offending token, so a client can underline it.
 *
 * @since 0.1.0
 */
import { Result, Schema } from "effect"

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * One parsed instruction of a script.
 *
 * @since 0.1.0
 * @category models
 */
export type Instruction =
  | { readonly _tag: "SetTopic"; readonly topic: string }
  | { readonly _tag: "UseRetrieval"; readonly limit: number | undefined }
  | { readonly _tag: "UseDraft" }
  | { readonly _tag: "UseCritique" }
  | { readonly _tag: "UseImprove" }

/**
 * The names a script may use, as the original spelt them.
 *
 * @since 0.1.0
 * @category constants
 */
export const names = ["SetTopic", "UseRetrieval", "UseDraft", "UseCritique", "UseImprove"] as const

/**
 * Other spellings the original accepted for a known step.
 *
 * @since 0.1.0
 * @category constants
 */
export const aliases: Readonly<Record<string, typeof names[number]>> = { UseRag: "UseRetrieval" }

/**
 * Where a token starts (1-based) and its text.
 *
 * @since 0.1.0
 * @category models
 */
export interface Position {
  readonly offset: number
  readonly line: number
  readonly column: number
  readonly token: string
}

/**
 * A parsed script: its instructions, each with the position of its name.
 *
 * @since 0.1.0
 * @category models
 */
export interface Script {
  readonly instructions: ReadonlyArray<Instruction>
  readonly positions: ReadonlyArray<Position>
}

/**
 * A step of an executable plan. `retrieve` pulls `limit` passages about the topic from the tenant's documents and
 * hands them as context to the steps after it.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Step = Schema.Union([
  Schema.Struct({ kind: Schema.Literal("retrieve"), limit: Schema.Int }),
  Schema.Struct({ kind: Schema.Literals(["draft", "critique", "improve"]) })
]).annotate({ identifier: "PipelineStep" })

/**
 * @since 0.1.0
 * @category models
 */
export type Step = typeof Step.Type

/**
 * What to run: a topic and the steps in order.
 *
 * @since 0.1.0
 * @category models
 */
export interface Plan {
  readonly topic: string
  readonly steps: ReadonlyArray<Step>
}

/**
 * The passages a retrieval step takes when the script gives no count, and the most it may ask for.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultRetrievalLimit = 4

/**
 * @since 0.1.0
 * @category constants
 */
export const maxRetrievalLimit = 20

/**
 * The most steps a pipeline may have (the topic not counted).
 *
 * @since 0.1.0
 * @category constants
 */
export const maxSteps = 32

/**
 * The longest topic, in characters.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxTopicLength = 2_000

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/**
 * A script that does not parse or does not make a runnable pipeline. `line` and `column` are 1-based and point at
 * `token`, the offending text (empty at the end of the input).
 *
 * @since 0.1.0
 * @category errors
 */
export class PipelineSyntaxError extends Schema.TaggedError<PipelineSyntaxError>()(
  "PipelineSyntaxError",
  {
    detail: Schema.String,
    line: Schema.Int,
    column: Schema.Int,
    token: Schema.String
  },
  { httpApiStatus: 400, description: "The pipeline script is not valid" }
) {
  override get message(): string {
    return `${this.line}:${this.column}: ${this.detail}`
  }
}

/**
 * A plan that cannot run (e.g. a critique before any draft), found at step `index` of the list. Scripts report it as
 * a `PipelineSyntaxError` at the step's position.
 *
 * @since 0.1.0
 * @category errors
 */
export interface PlanError {
  readonly index: number
  readonly detail: string
}

// -----------------------------------------------------------------------------
// lexer
// -----------------------------------------------------------------------------

type Token =
  | { readonly kind: "name"; readonly value: string; readonly at: number; readonly end: number }
  | { readonly kind: "string"; readonly value: string; readonly at: number; readonly end: number }
  | { readonly kind: "int"; readonly value: number; readonly at: number; readonly end: number }
  | { readonly kind: "(" | ")" | "," | "|" | "eof"; readonly at: number; readonly end: number }

class Failure {
  constructor(readonly at: number, readonly end: number, readonly detail: string) {}
}

const isNameStart = (c: string) => /[A-Za-z_]/.test(c)
const isNamePart = (c: string) => /[A-Za-z0-9_]/.test(c)
const isDigit = (c: string) => c >= "0" && c <= "9"
const isSpace = (c: string) => c === " " || c === "\t" || c === "\n" || c === "\r"

const describeChar = (c: string) => c === "\n" ? "a line break" : JSON.stringify(c)

const lex = (source: string): Array<Token> => {
  const tokens: Array<Token> = []
  let i = 0
  while (i < source.length) {
    const c = source[i]!
    if (isSpace(c)) {
      i++
      continue
    }
    const at = i
    if (c === "(" || c === ")" || c === "," || c === "|") {
      tokens.push({ kind: c, at, end: ++i })
    } else if (isNameStart(c)) {
      while (i < source.length && isNamePart(source[i]!)) i++
      tokens.push({ kind: "name", value: source.slice(at, i), at, end: i })
    } else if (isDigit(c) || (c === "-" && isDigit(source[i + 1] ?? ""))) {
      i++
      while (i < source.length && isDigit(source[i]!)) i++
      if (i < source.length && isNamePart(source[i]!)) {
        let end = i
        while (end < source.length && isNamePart(source[end]!)) end++
        throw new Failure(at, end, "an integer must be followed by a separator")
      }
      const text = source.slice(at, i)
      const value = Number(text)
      if (!Number.isSafeInteger(value)) throw new Failure(at, i, "the integer is too large")
      tokens.push({ kind: "int", value, at, end: i })
    } else if (c === "'" || c === "\"") {
      i++
      let value = ""
      for (;;) {
        if (i >= source.length) throw new Failure(at, i, "the string is not closed")
        const d = source[i]!
        if (d === c) {
          i++
          break
        }
        if (d === "\n" || d === "\r") throw new Failure(at, i, "the string is not closed before the end of the line")
        if (d === "\\") {
          const e = source[i + 1]
          if (e === undefined) throw new Failure(at, i + 1, "the string is not closed")
          if (e === "\\" || e === "'" || e === "\"") value += e
          else if (e === "n") value += "\n"
          else if (e === "r") value += "\r"
          else if (e === "t") value += "\t"
          else if (e === "u") {
            const hex = source.slice(i + 2, i + 6)
            if (!/^[0-9A-Fa-f]{4}$/.test(hex)) throw new Failure(i, i + 2, "\\u needs four hexadecimal digits")
            value += String.fromCharCode(parseInt(hex, 16))
            i += 4
          } else throw new Failure(i, i + 2, `unknown escape \\${e}`)
          i += 2
          continue
        }
        value += d
        i++
      }
      tokens.push({ kind: "string", value, at, end: i })
    } else {
      throw new Failure(at, at + 1, `unexpected character ${describeChar(c)}`)
    }
  }
  tokens.push({ kind: "eof", at: source.length, end: source.length })
  return tokens
}

// -----------------------------------------------------------------------------
// suggestions
// -----------------------------------------------------------------------------

const distance = (a: string, b: string): number => {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1))
      previous = current
    }
  }
  return row[b.length]!
}

/**
 * The known step name closest to `name`, if one is close enough to be a likely typo.
 *
 * @since 0.1.0
 * @category utils
 */
export const suggest = (name: string): string | undefined => {
  let best: string | undefined
  let bestDistance = Number.POSITIVE_INFINITY
  for (const known of [...names, ...Object.keys(aliases)]) {
    const d = known.toLowerCase() === name.toLowerCase() ? 0 : distance(name.toLowerCase(), known.toLowerCase())
    if (d < bestDistance) {
      best = aliases[known] ?? known
      bestDistance = d
    }
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined
}

// -----------------------------------------------------------------------------
// parser
// -----------------------------------------------------------------------------

const describeToken = (token: Token, source: string): string =>
  token.kind === "eof" ? "the end of the script" : JSON.stringify(source.slice(token.at, token.end))

type Arg = Extract<Token, { kind: "string" | "int" }>

const instructionOf = (name: string, nameToken: Token, args: ReadonlyArray<Arg>, close: Token): Instruction => {
  const known = aliases[name] ?? name
  const noArgs = (tag: "UseDraft" | "UseCritique" | "UseImprove"): Instruction => {
    if (args.length > 0) throw new Failure(args[0]!.at, args[0]!.end, `${name} takes no arguments`)
    return { _tag: tag }
  }
  switch (known) {
    case "SetTopic": {
      const [topic, extra] = args
      if (topic === undefined) {
        throw new Failure(close.at, close.end, "SetTopic needs the topic, e.g. SetTopic('zebras')")
      }
      if (topic.kind !== "string") throw new Failure(topic.at, topic.end, "the topic must be a quoted string")
      if (extra !== undefined) throw new Failure(extra.at, extra.end, "SetTopic takes one argument")
      if (topic.value.trim().length === 0) throw new Failure(topic.at, topic.end, "the topic must not be empty")
      if (topic.value.length > maxTopicLength) {
        throw new Failure(topic.at, topic.end, `the topic is longer than ${maxTopicLength} characters`)
      }
      return { _tag: "SetTopic", topic: topic.value }
    }
    case "UseRetrieval": {
      const [limit, extra] = args
      if (extra !== undefined) throw new Failure(extra.at, extra.end, `${name} takes at most one argument`)
      if (limit === undefined) return { _tag: "UseRetrieval", limit: undefined }
      if (limit.kind !== "int" || limit.value < 1 || limit.value > maxRetrievalLimit) {
        throw new Failure(
          limit.at,
          limit.end,
          `the number of passages must be an integer from 1 to ${maxRetrievalLimit}`
        )
      }
      return { _tag: "UseRetrieval", limit: limit.value }
    }
    case "UseDraft":
    case "UseCritique":
    case "UseImprove":
      return noArgs(known)
    default: {
      const suggestion = suggest(name)
      throw new Failure(
        nameToken.at,
        nameToken.end,
        `unknown step ${name}` + (suggestion !== undefined ? `; did you mean ${suggestion}?` : "") +
          ` (known steps: ${names.join(", ")})`
      )
    }
  }
}

const parseTokens = (source: string, tokens: ReadonlyArray<Token>): Script => {
  let i = 0
  const peek = () => tokens[i]!
  const expected = (what: string): never => {
    const token = peek()
    throw new Failure(token.at, token.end, `expected ${what}, found ${describeToken(token, source)}`)
  }
  const instructions: Array<Instruction> = []
  const positions: Array<number> = []
  for (;;) {
    const name = peek()
    if (name.kind !== "name") expected(instructions.length === 0 ? "a step name such as SetTopic" : "a step name")
    const nameValue = (name as Extract<Token, { kind: "name" }>).value
    i++
    const args: Array<Arg> = []
    let close: Token = name
    if (peek().kind === "(") {
      i++
      if (peek().kind !== ")") {
        for (;;) {
          const arg = peek()
          if (arg.kind !== "string" && arg.kind !== "int") expected("a quoted string or an integer")
          args.push(arg as Arg)
          i++
          if (peek().kind === ",") {
            i++
            continue
          }
          if (peek().kind === ")") break
          expected("\",\" or \")\"")
        }
      }
      close = peek()
      i++
    }
    instructions.push(instructionOf(nameValue, name, args, close))
    positions.push(name.at)
    if (peek().kind === "eof") break
    if (peek().kind !== "|") expected("\"|\" between steps")
    i++
  }
  return { instructions, positions: positions.map((at) => locate(source, at, nameAt(source, at))) }
}

const nameAt = (source: string, at: number): number => {
  let end = at
  while (end < source.length && isNamePart(source[end]!)) end++
  return end
}

const locate = (source: string, at: number, end: number): Position => {
  let line = 1
  let lineStart = 0
  for (let i = 0; i < at && i < source.length; i++) {
    if (source[i] === "\n") {
      line++
      lineStart = i + 1
    }
  }
  return { offset: at, line, column: at - lineStart + 1, token: source.slice(at, end) }
}

const syntaxError = (source: string, at: number, end: number, detail: string) => {
  const position = locate(source, at, end)
  return new PipelineSyntaxError({ detail, line: position.line, column: position.column, token: position.token })
}

/**
 * Parses a script into instructions, without checking that they make a runnable pipeline (see `compile`).
 *
 * @since 0.1.0
 * @category parsing
 */
export const parse = (source: string): Result.Result<Script, PipelineSyntaxError> => {
  try {
    return Result.succeed(parseTokens(source, lex(source)))
  } catch (error) {
    if (error instanceof Failure) return Result.fail(syntaxError(source, error.at, error.end, error.detail))
    throw error
  }
}

// -----------------------------------------------------------------------------
// validation
// -----------------------------------------------------------------------------

/**
 * Checks that steps can run in order: at most `maxSteps`, a critique needs a draft before it, an improvement needs a
 * draft and a critique of it, and there is at least one draft (its latest version is the answer). An improvement
 * becomes the new draft, so `UseCritique | UseImprove` may repeat.
 *
 * @since 0.1.0
 * @category validation
 */
export const validateSteps = (steps: ReadonlyArray<Step>): Result.Result<ReadonlyArray<Step>, PlanError> => {
  if (steps.length > maxSteps) {
    return Result.fail({ index: maxSteps, detail: `a pipeline has at most ${maxSteps} steps` })
  }
  let drafted = false
  let critiqued = false
  for (let index = 0; index < steps.length; index++) {
    const step = steps[index]!
    switch (step.kind) {
      case "retrieve":
        if (step.limit < 1 || step.limit > maxRetrievalLimit) {
          return Result.fail({ index, detail: `the number of passages must be from 1 to ${maxRetrievalLimit}` })
        }
        break
      case "draft":
        drafted = true
        critiqued = false
        break
      case "critique":
        if (!drafted) return Result.fail({ index, detail: "a critique needs a draft before it (add UseDraft)" })
        critiqued = true
        break
      case "improve":
        if (!drafted) return Result.fail({ index, detail: "an improvement needs a draft before it (add UseDraft)" })
        if (!critiqued) {
          return Result.fail({
            index,
            detail: "an improvement needs a critique of the draft before it (add UseCritique)"
          })
        }
        critiqued = false
        break
    }
  }
  if (!drafted) return Result.fail({ index: steps.length, detail: "a pipeline needs at least one draft (UseDraft)" })
  return Result.succeed(steps)
}

const stepOf = (instruction: Exclude<Instruction, { _tag: "SetTopic" }>): Step => {
  switch (instruction._tag) {
    case "UseRetrieval":
      return { kind: "retrieve", limit: instruction.limit ?? defaultRetrievalLimit }
    case "UseDraft":
      return { kind: "draft" }
    case "UseCritique":
      return { kind: "critique" }
    case "UseImprove":
      return { kind: "improve" }
  }
}

/**
 * Parses and validates a script into a plan. The topic comes from a leading `SetTopic(…)` or, when the script has
 * none, from `options.topic` (the request body); giving both, or neither, is an error.
 *
 * @since 0.1.0
 * @category parsing
 */
export const compile = (
  source: string,
  options?: { readonly topic?: string | undefined }
): Result.Result<Plan, PipelineSyntaxError> =>
  Result.flatMap(parse(source), ({ instructions, positions }) => {
    const at = (index: number, detail: string) => {
      const position = positions[index]
      return position === undefined
        ? syntaxError(source, source.length, source.length, detail)
        : new PipelineSyntaxError({ detail, line: position.line, column: position.column, token: position.token })
    }
    let topic = options?.topic
    let first = 0
    const head = instructions[0]
    if (head?._tag === "SetTopic") {
      if (options?.topic !== undefined) {
        return Result.fail(at(0, "the topic is given twice: in the script and in the request's topic field"))
      }
      topic = head.topic
      first = 1
    }
    const steps: Array<Step> = []
    for (let index = first; index < instructions.length; index++) {
      const instruction = instructions[index]!
      if (instruction._tag === "SetTopic") {
        return Result.fail(at(
          index,
          head?._tag === "SetTopic" ? "SetTopic may appear only once" : "SetTopic must be the first step"
        ))
      }
      steps.push(stepOf(instruction))
    }
    if (topic === undefined) {
      return Result.fail(at(0, "the script must start with SetTopic('…') or the request give a topic"))
    }
    if (topic.trim().length === 0) return Result.fail(at(0, "the topic must not be empty"))
    return Result.match(validateSteps(steps), {
      onFailure: (error) => Result.fail(at(error.index + first, error.detail)),
      onSuccess: (steps) => Result.succeed({ topic: topic!, steps })
    })
  })

// -----------------------------------------------------------------------------
// printing
// -----------------------------------------------------------------------------

/**
 * Quotes a string as a script literal (single quotes, with escapes), so that `parse` reads back the same value.
 *
 * @since 0.1.0
 * @category printing
 */
export const quote = (value: string): string =>
  "'" + value.replace(/[\\'\n\r]/g, (c) => c === "\n" ? "\\n" : c === "\r" ? "\\r" : "\\" + c) + "'"

/**
 * Prints instructions in the canonical syntax.
 *
 * @since 0.1.0
 * @category printing
 */
export const print = (instructions: ReadonlyArray<Instruction>): string =>
  instructions.map((instruction) => {
    switch (instruction._tag) {
      case "SetTopic":
        return `SetTopic(${quote(instruction.topic)})`
      case "UseRetrieval":
        return instruction.limit === undefined ? "UseRetrieval" : `UseRetrieval(${instruction.limit})`
      default:
        return instruction._tag
    }
  }).join(" | ")

/**
 * Prints a plan as a script.
 *
 * @since 0.1.0
 * @category printing
 */
export const printPlan = (plan: Plan): string =>
  print([
    { _tag: "SetTopic", topic: plan.topic },
    ...plan.steps.map((step): Instruction =>
      step.kind === "retrieve"
        ? { _tag: "UseRetrieval", limit: step.limit }
        : { _tag: step.kind === "draft" ? "UseDraft" : step.kind === "critique" ? "UseCritique" : "UseImprove" }
    )
  ])
