import { assert, describe, it } from "@effect/vitest"
import { Cause, Exit, Schema, SchemaIssue } from "effect"
import * as fc from "fast-check"
import { Issues, JsonDepth } from "../src/index.js"

const failure = (
  schema: Schema.Top,
  input: unknown,
  options: { readonly errors?: "all" | "first"; readonly reportInput?: boolean } = { errors: "all", reportInput: true }
): SchemaIssue.Issue => {
  const exit = Schema.decodeUnknownExit(schema as Schema.Codec<unknown, unknown>)(input, options)
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  return (Cause.squash(exit.cause) as Schema.SchemaError).issue
}

const standard = SchemaIssue.makeFormatterStandardSchemaV1()
const pathsOf = (issues: ReadonlyArray<{ readonly path?: ReadonlyArray<unknown> | undefined }>) =>
  issues.map((issue) =>
    (issue.path ?? []).map((segment) => typeof segment === "object" ? (segment as any).key : segment)
  )

const Scalar = Schema.Union([Schema.String, Schema.Finite, Schema.Boolean])
// The shape of the retrieval API's metadata: a union of five members per value.
const Metadata = Schema.Record(
  Schema.String,
  Schema.Union([Schema.String, Schema.Finite, Schema.Boolean, Schema.Null, Schema.Array(Scalar)])
)
const Payload = Schema.Struct({
  text: Schema.String.check(Schema.makeFilter((s: string) => s.trim().length > 0 || "text must not be empty")),
  limit: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 100 })),
  tags: Schema.optional(Schema.Array(Schema.String)),
  metadata: Schema.optional(Metadata)
})

describe("Issues.format", () => {
  it("lists the same paths and messages as Effect's standard formatter on small failures", () => {
    const issue = failure(Payload, { text: "  ", limit: 0, tags: [1, "a", 2], metadata: { a: { b: 1 }, c: [{}] } })
    const ours = Issues.format(issue)
    assert.deepStrictEqual(
      ours.issues,
      standard(issue).issues.map((i, n) => ({ path: pathsOf([i])[0]!, message: ours.issues[n]!.message }))
    )
    assert.deepStrictEqual(ours.issues.map((i) => i.message), standard(issue).issues.map((i) => i.message))
    assert.strictEqual(ours.omitted, 0)
    assert.isFalse(ours.incomplete)
    assert.strictEqual(ours.issues[0]!.message, "text must not be empty")
  })

  it("agrees with Effect's paths on arbitrary inputs (property)", () => {
    fc.assert(
      fc.property(fc.anything({ maxDepth: 3 }), fc.boolean(), (input, all) => {
        const exit = Schema.decodeUnknownExit(Payload)(input, { errors: all ? "all" : "first" })
        if (Exit.isSuccess(exit)) return
        const issue = (Cause.squash(exit.cause) as Schema.SchemaError).issue
        const expected = pathsOf(standard(issue).issues).slice(0, Issues.defaultLimits.maxIssues)
        assert.deepStrictEqual(Issues.format(issue).issues.map((i) => i.path), expected)
      }),
      { numRuns: 300 }
    )
  })

  it("quotes a multi-megabyte value in a union once per issue, cut at 100 characters with its length", () => {
    const huge = "x".repeat(7 * 1024 * 1024)
    const issue = failure(Payload, { text: "ok", limit: 1, metadata: { big: { value: huge } } })
    // Effect's own message quotes it whole.
    assert.isAbove(new Schema.SchemaError(issue).message.length, huge.length)
    const formatted = Issues.format(issue)
    assert.deepStrictEqual(formatted.issues.map((i) => i.path), [["metadata", "big"]])
    const message = formatted.issues[0]!.message
    assert.isBelow(message.length, Issues.defaultLimits.maxMessageLength + 2)
    assert.include(message, "Expected string | number | boolean | null | array")
    assert.isBelow(JSON.stringify(formatted).length, 1000)
    const stringIssue = failure(Schema.Struct({ n: Schema.Number }), { n: huge })
    assert.strictEqual(
      Issues.format(stringIssue).issues[0]!.message,
      `Expected number, got "${"x".repeat(100)}…" (${huge.length} characters)`
    )
  })

  it("lists at most maxIssues and counts the rest; stops at maxNodes and says the count is a lower bound", () => {
    const Many = Schema.Array(Schema.String)
    const issue = failure(Many, Array.from({ length: 4000 }, (_, i) => i))
    const formatted = Issues.format(issue)
    assert.strictEqual(formatted.issues.length, 20)
    assert.deepStrictEqual(formatted.issues[19]!.path, [19])
    assert.strictEqual(formatted.omitted, 3980)
    assert.isFalse(formatted.incomplete)
    assert.include(Issues.summary(formatted), "and 3997 more issues")
    const cut = Issues.format(issue, { maxNodes: 1000, maxIssues: 5 })
    assert.isTrue(cut.incomplete)
    assert.strictEqual(cut.issues.length, 5)
    assert.isBelow(cut.omitted, 3995)
    assert.include(Issues.summary(cut), "at least")
  })

  it("walks an issue tree of any depth without recursion, cutting long paths and keys", () => {
    // 100,000 levels: Effect's formatters recurse once per level (and overflow the stack).
    let issue: SchemaIssue.Issue = new SchemaIssue.InvalidType(Schema.String.ast, 5, { reportInput: true })
    for (let i = 0; i < 100_000; i++) issue = new SchemaIssue.Pointer([i % 2 === 0 ? 0 : "k"], issue)
    assert.throws(() => standard(issue), RangeError)
    // Every level is a node: past maxNodes the walk stops.
    assert.deepStrictEqual(Issues.format(issue), { issues: [], omitted: 0, incomplete: true })
    const formatted = Issues.format(issue, { maxNodes: 200_000 })
    assert.strictEqual(formatted.issues.length, 1)
    const path = formatted.issues[0]!.path
    assert.strictEqual(path.length, Issues.defaultLimits.maxPathLength + 1)
    assert.strictEqual(path.at(-1), "…")
    assert.strictEqual(formatted.issues[0]!.message, "Expected string, got 5")
    const key = "k".repeat(10_000)
    const longKey = Issues.format(new SchemaIssue.Pointer([key], new SchemaIssue.MissingKey(undefined)))
    assert.deepStrictEqual(longKey.issues[0]!.path, ["k".repeat(100) + "…"])
    assert.strictEqual(longKey.issues[0]!.message, "Missing key")
  })

  it("summarizes for a detail", () => {
    assert.strictEqual(Issues.summary({ issues: [], omitted: 0, incomplete: false }), "The value is invalid")
    const one = Issues.format(failure(Schema.Struct({ a: Schema.Number }), { a: "x" }))
    assert.strictEqual(Issues.summary(one), `Expected number, got "x" at ["a"]`)
  })
})

describe("Issues.quote", () => {
  it("renders values within the limit", () => {
    assert.strictEqual(Issues.quote("abc"), `"abc"`)
    assert.strictEqual(Issues.quote(3), "3")
    assert.strictEqual(Issues.quote(null), "null")
    assert.strictEqual(Issues.quote({ a: [1, 2] }), `{"a":[1,2]}`)
    const array = Array.from({ length: 1_000_000 }, (_, i) => i)
    const quoted = Issues.quote(array)
    assert.isBelow(quoted.length, 150)
    assert.include(quoted, "(an array of 1000000 items)")
    const wide: Record<string, number> = {}
    for (let i = 0; i < 100_000; i++) wide[`key${i}`] = i
    assert.isBelow(Issues.quote(wide).length, 110)
    let deep: unknown = 1
    for (let i = 0; i < 100_000; i++) deep = [deep]
    assert.strictEqual(Issues.quote(deep), "[[[[…]]]]")
    assert.strictEqual(Issues.quote([[[[1]], [[2]]]]), "[[[[…]],[[…]]]]")
    assert.strictEqual(Issues.quote(new Date(0)), "1970-01-01T00:00:00.000Z")
  })
})

describe("JsonDepth", () => {
  const reference = (value: unknown): number => {
    let deepest = 0
    const stack: Array<[unknown, number]> = [[value, 0]]
    while (stack.length > 0) {
      const [v, d] = stack.pop()!
      if (typeof v === "object" && v !== null) {
        deepest = Math.max(deepest, d + 1)
        for (const child of Object.values(v)) stack.push([child, d + 1])
      }
    }
    return deepest
  }

  it("measures nesting outside strings, from text and from UTF-8 bytes alike (property)", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), (value) => {
        const text = JSON.stringify(value)
        const expected = reference(value)
        assert.strictEqual(JsonDepth.depth(text), expected)
        assert.strictEqual(JsonDepth.depth(new TextEncoder().encode(text)), expected)
      }),
      { numRuns: 500 }
    )
    assert.strictEqual(JsonDepth.depth(`{"a":"[[[{\\"]]","b":["é]["]}`), 2)
    assert.strictEqual(JsonDepth.depth("3"), 0)
    // Escaped backslashes before a closing quote, escaped quotes inside a string.
    for (const text of [String.raw`["\\",["\""]]`, String.raw`{"a\\\\":[["\\\"]"]]}`, `["unterminated [[[`]) {
      assert.strictEqual(
        JsonDepth.depth(text),
        text.startsWith(`["u`) ? 1 : JsonDepth.depth(JSON.stringify(JSON.parse(text)))
      )
      assert.strictEqual(JsonDepth.depth(new TextEncoder().encode(text)), JsonDepth.depth(text))
    }
  })

  it("stops as soon as the depth goes over the limit", () => {
    const deep = "[".repeat(100_000) + "]".repeat(100_000)
    assert.strictEqual(JsonDepth.depth(deep, 64), 65)
    assert.isTrue(JsonDepth.exceeds(deep, 64))
    assert.isFalse(JsonDepth.exceeds("[[]]", 2))
    assert.isTrue(JsonDepth.exceeds("[[[]]]", 2))
  })
})
