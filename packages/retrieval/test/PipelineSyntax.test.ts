import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import * as fc from "fast-check"
import * as PipelineSyntax from "../src/PipelineSyntax.js"

const parseOk = (source: string) => {
  const result = PipelineSyntax.parse(source)
  if (Result.isFailure(result)) assert.fail(`expected ${JSON.stringify(source)} to parse: ${result.failure.message}`)
  return result.success.instructions
}

const parseErr = (source: string) => {
  const result = PipelineSyntax.parse(source)
  if (Result.isSuccess(result)) return assert.fail(`expected ${JSON.stringify(source)} not to parse`)
  return result.failure
}

const compileOk = (source: string, topic?: string) => {
  const result = PipelineSyntax.compile(source, { topic })
  if (Result.isFailure(result)) {
    return assert.fail(`expected ${JSON.stringify(source)} to compile: ${result.failure.message}`)
  }
  return result.success
}

const compileErr = (source: string, topic?: string) => {
  const result = PipelineSyntax.compile(source, { topic })
  if (Result.isSuccess(result)) return assert.fail(`expected ${JSON.stringify(source)} not to compile`)
  return result.failure
}

// The offset of a 1-based line and column in `source`.
const offsetOf = (source: string, line: number, column: number): number => {
  let offset = 0
  for (let l = 1; l < line; l++) offset = source.indexOf("\n", offset) + 1
  return offset + column - 1
}

describe("PipelineSyntax.parse", () => {
  it("parses the original's example", () => {
    assert.deepStrictEqual(parseOk("SetTopic('zebras') | UseDraft | UseCritique | UseImprove"), [
      { _tag: "SetTopic", topic: "zebras" },
      { _tag: "UseDraft" },
      { _tag: "UseCritique" },
      { _tag: "UseImprove" }
    ])
  })

  it("reads double quotes, escapes, integers, empty parentheses, line breaks and the UseRag alias", () => {
    assert.deepStrictEqual(
      parseOk("SetTopic(\"it's \\\"striped\\\"\\n\\u00e9\\\\\")\n  | UseRetrieval(8)\n  | UseRag | UseDraft()"),
      [
        { _tag: "SetTopic", topic: "it's \"striped\"\n\u00e9\\" },
        { _tag: "UseRetrieval", limit: 8 },
        { _tag: "UseRetrieval", limit: undefined },
        { _tag: "UseDraft" }
      ]
    )
    assert.deepStrictEqual(parseOk("SetTopic('a\\'b')"), [{ _tag: "SetTopic", topic: "a'b" }])
  })

  it("points at a misspelt step and suggests the closest name", () => {
    const error = parseErr("SetTopic('zebras') | UseDraf | UseCritique")
    assert.strictEqual(error._tag, "PipelineSyntaxError")
    assert.strictEqual(error.line, 1)
    assert.strictEqual(error.column, 22)
    assert.strictEqual(error.token, "UseDraf")
    assert.include(error.detail, "did you mean UseDraft?")
    assert.include(parseErr("SetTopic('z') | usecritique").detail, "did you mean UseCritique?")
    assert.include(parseErr("SetTopic('z') | UseRAG").detail, "did you mean UseRetrieval?")
    assert.notInclude(parseErr("SetTopic('z') | Frobnicate").detail, "did you mean")
  })

  it("names are case-sensitive", () => {
    const error = parseErr("setTopic('zebras')")
    assert.strictEqual(error.column, 1)
    assert.include(error.detail, "did you mean SetTopic?")
  })

  it("reports the line and column on later lines", () => {
    const error = parseErr("SetTopic('zebras')\n| UseDraft\n| UseCritique UseImprove")
    assert.strictEqual(error.line, 3)
    assert.strictEqual(error.column, 15)
    assert.strictEqual(error.token, "UseImprove")
    assert.include(error.detail, "expected \"|\" between steps")
  })

  it("reports unclosed strings at their opening quote and bad escapes at the backslash", () => {
    const unclosed = parseErr("SetTopic('zebras) | UseDraft")
    assert.strictEqual(unclosed.column, 10)
    assert.include(unclosed.detail, "not closed")
    const escape = parseErr("SetTopic('ze\\qbras')")
    assert.strictEqual(escape.column, 13)
    assert.strictEqual(escape.token, "\\q")
    assert.include(parseErr("SetTopic('a\\u12')").detail, "four hexadecimal digits")
  })

  it("reports a missing step at the end of the script", () => {
    const source = "SetTopic('zebras') | UseDraft |"
    const error = parseErr(source)
    assert.strictEqual(error.column, source.length + 1)
    assert.strictEqual(error.token, "")
    assert.include(error.detail, "the end of the script")
    assert.strictEqual(parseErr("").column, 1)
  })

  it("checks arguments", () => {
    assert.strictEqual(parseErr("UseRetrieval(0)").column, 14)
    assert.strictEqual(parseErr("UseRetrieval(21)").token, "21")
    assert.include(parseErr("UseRetrieval('x')").detail, "integer from 1 to 20")
    assert.strictEqual(parseErr("UseDraft('x')").column, 10)
    assert.include(parseErr("SetTopic(3)").detail, "quoted string")
    assert.include(parseErr("SetTopic()").detail, "needs the topic")
    assert.include(parseErr("SetTopic('  ')").detail, "must not be empty")
    assert.strictEqual(parseErr("SetTopic('a', 'b')").column, 15)
    assert.strictEqual(parseErr("SetTopic('a' 'b')").column, 14)
    assert.include(parseErr("UseRetrieval(3x)").detail, "followed by a separator")
  })

  it("reports unexpected characters where they are", () => {
    const error = parseErr("SetTopic('z') | UseDraft # comment")
    assert.strictEqual(error.column, 26)
    assert.strictEqual(error.token, "#")
  })
})

describe("PipelineSyntax.compile", () => {
  it("makes a plan, with the default number of passages", () => {
    assert.deepStrictEqual(compileOk("SetTopic('zebras') | UseRetrieval | UseDraft | UseCritique | UseImprove"), {
      topic: "zebras",
      steps: [
        { kind: "retrieve", limit: PipelineSyntax.defaultRetrievalLimit },
        { kind: "draft" },
        { kind: "critique" },
        { kind: "improve" }
      ]
    })
  })

  it("takes the topic from the request when the script has none", () => {
    assert.deepStrictEqual(compileOk("UseDraft", "zebras"), { topic: "zebras", steps: [{ kind: "draft" }] })
    assert.include(compileErr("SetTopic('a') | UseDraft", "b").detail, "given twice")
    assert.include(compileErr("UseDraft").detail, "must start with SetTopic")
  })

  it("allows repeated critique and improvement rounds", () => {
    assert.strictEqual(
      compileOk("SetTopic('z') | UseDraft | UseCritique | UseImprove | UseCritique | UseImprove")
        .steps.length,
      5
    )
  })

  it("points at the step that cannot run", () => {
    const critique = compileErr("SetTopic('zebras') | UseCritique | UseDraft")
    assert.strictEqual(critique.column, 22)
    assert.strictEqual(critique.token, "UseCritique")
    assert.include(critique.detail, "a critique needs a draft")

    const improve = compileErr("SetTopic('zebras') | UseDraft | UseImprove")
    assert.strictEqual(improve.column, 33)
    assert.include(improve.detail, "needs a critique")

    const twice = compileErr("SetTopic('a') | UseDraft | SetTopic('b')")
    assert.strictEqual(twice.column, 28)
    assert.include(twice.detail, "only once")

    const late = compileErr("UseDraft | SetTopic('b')", "a")
    assert.strictEqual(late.column, 12)
    assert.include(late.detail, "must be the first step")

    assert.include(compileErr("SetTopic('a') | UseRetrieval").detail, "at least one draft")
  })

  it("limits the number of steps", () => {
    const source = "SetTopic('a') | " + Array.from({ length: 40 }, () => "UseDraft").join(" | ")
    const error = compileErr(source)
    assert.include(error.detail, "at most 32 steps")
    assert.strictEqual(error.column, offsetOf(source, 1, 1) + 16 + 32 * 11 + 1)
  })
})

// -----------------------------------------------------------------------------
// properties
// -----------------------------------------------------------------------------

// Characters the syntax gives a meaning to are drawn often; any other code point now and then.
const topic = fc.string({
  unit: fc.oneof(
    fc.constantFrom("'", "\"", "\\", "\n", "\r", "|", "(", ")", ",", " ", "u"),
    fc.string({ unit: "binary", minLength: 1, maxLength: 1 })
  ),
  maxLength: 40
}).filter((s) => s.trim().length > 0)

const instruction: fc.Arbitrary<PipelineSyntax.Instruction> = fc.oneof(
  topic.map((topic) => ({ _tag: "SetTopic" as const, topic })),
  fc.option(fc.integer({ min: 1, max: 20 }), { nil: undefined }).map((limit) => ({
    _tag: "UseRetrieval" as const,
    limit
  })),
  fc.constantFrom<PipelineSyntax.Instruction>({ _tag: "UseDraft" }, { _tag: "UseCritique" }, { _tag: "UseImprove" })
)

const instructions = fc.array(instruction, { minLength: 1, maxLength: 8 })

const space = fc.constantFrom("", " ", "  ", "\n", "\t", " \n  ")

// A literal in either quote style, with some characters written as escapes.
const literal = (value: string, double: boolean, unicode: ReadonlyArray<boolean>) => {
  const q = double ? "\"" : "'"
  let out = q
  Array.from(value).forEach((c, i) => {
    if (unicode[i % Math.max(1, unicode.length)] && c.length === 1) {
      out += "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0")
    } else if (c === q || c === "\\") out += "\\" + c
    else if (c === "\n") out += "\\n"
    else if (c === "\r") out += "\\r"
    else out += c
  })
  return out + q
}

const formatted = fc.tuple(
  instructions,
  fc.array(space, { minLength: 40, maxLength: 40 }),
  fc.boolean(),
  fc.array(fc.boolean(), { maxLength: 5 })
).map(([instructions, spaces, double, unicode]) => {
  let s = 0
  const ws = () => spaces[s++ % spaces.length]!
  const text = instructions.map((i) => {
    switch (i._tag) {
      case "SetTopic":
        return `${ws()}SetTopic${ws()}(${ws()}${literal(i.topic, double, unicode)}${ws()})${ws()}`
      case "UseRetrieval":
        return i.limit === undefined
          ? `${ws()}UseRetrieval${ws()}`
          : `${ws()}UseRetrieval(${ws()}${i.limit}${ws()})${ws()}`
      default:
        return `${ws()}${i._tag}${ws()}`
    }
  }).join("|")
  return { instructions, text }
})

// A property over fast-check arbitraries (Effect 4's `it.prop` takes Effect's own `Arbitrary` and Schemas).
const prop = <T extends Record<string, unknown>>(
  name: string,
  arbitraries: { [K in keyof T]: fc.Arbitrary<T[K]> },
  property: (values: T) => void
) => it(name, () => fc.assert(fc.property(fc.record(arbitraries), property)))

describe("PipelineSyntax properties", () => {
  prop("print then parse is the identity", { instructions }, ({ instructions }) => {
    assert.deepStrictEqual(parseOk(PipelineSyntax.print(instructions)), instructions)
  })

  prop("any spacing, quote style and escapes parse to the same instructions", { formatted }, ({ formatted }) => {
    assert.deepStrictEqual(parseOk(formatted.text), formatted.instructions)
  })

  prop(
    "a corrupted script either parses or reports a position inside it, at the offending token",
    {
      instructions,
      at: fc.nat(),
      edit: fc.oneof(
        fc.record({
          kind: fc.constant("insert" as const),
          text: fc.constantFrom("@", "(", ")", ",", "|", "'", "\"", "\\", "\n", "9", "x", "-")
        }),
        fc.record({ kind: fc.constant("delete" as const), count: fc.integer({ min: 1, max: 4 }) })
      )
    },
    ({ at, edit, instructions }) => {
      const source = PipelineSyntax.print(instructions)
      const i = at % (source.length + 1)
      const corrupted = edit.kind === "insert"
        ? source.slice(0, i) + edit.text + source.slice(i)
        : source.slice(0, i) + source.slice(i + edit.count)
      const result = PipelineSyntax.parse(corrupted)
      if (Result.isSuccess(result)) return
      const { column, line, token } = result.failure
      const lines = corrupted.split("\n")
      assert.isAtLeast(line, 1)
      assert.isAtMost(line, lines.length)
      assert.isAtLeast(column, 1)
      assert.isAtMost(column, lines[line - 1]!.length + 1)
      assert.strictEqual(corrupted.slice(offsetOf(corrupted, line, column)).slice(0, token.length), token)
    }
  )

  prop(
    "a stray character before a step is reported at its exact column",
    { instructions, pick: fc.nat() },
    ({ instructions, pick }) => {
      const j = pick % instructions.length
      const before = PipelineSyntax.print(instructions.slice(0, j))
      const prefix = j === 0 ? "" : before + " | "
      const source = prefix + "@" + PipelineSyntax.print(instructions.slice(j))
      const error = parseErr(source)
      assert.strictEqual(error.line, 1)
      assert.strictEqual(error.column, prefix.length + 1)
      assert.strictEqual(error.token, "@")
    }
  )
})
