import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Effect, Fiber, Ref, Schema } from "effect"
import { Chunker } from "../src/index.js"

const isSpace = (c: string) => /\s/u.test(c)

const integer = (minimum: number, maximum: number) =>
  Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum, maximum })))
const matching = (pattern: RegExp) => Arbitrary.schema(Schema.String.check(Schema.isPattern(pattern)))
const constantFrom = <const L extends ReadonlyArray<string>>(...values: L) => Arbitrary.schema(Schema.Literals(values))

// Text made of words, sentences and paragraphs, with the odd very long word and non-BMP character: weights 8:1:1.
const plainWord = matching(/^[a-zA-Z]{1,12}$/)
// Pattern lengths stay near their minimum at small sizes: pick the length (30 to 300) explicitly.
const longWord = Arbitrary.all([integer(30, 300), matching(/^[a-z]{30}$/)]).pipe(
  Arbitrary.map(([length, letters]) => letters.repeat(10).slice(0, length))
)
const oddWord = constantFrom("東京", "😀😀", "naïve", "e\u0301")
const word = integer(0, 9).pipe(Arbitrary.flatMap((n) => n < 8 ? plainWord : n === 8 ? longWord : oddWord))
const sentence = Arbitrary.all([
  Arbitrary.array(word, { minLength: 1, maxLength: 25 }),
  constantFrom(".", "!", "?", "", ".\"")
]).pipe(Arbitrary.map(([ws, end]) => ws.join(" ") + end))
const paragraph = Arbitrary.array(sentence, { minLength: 1, maxLength: 6 }).pipe(Arbitrary.map((ss) => ss.join(" ")))
const document = Arbitrary.all([
  Arbitrary.array(paragraph, { minLength: 0, maxLength: 8 }),
  constantFrom("\n\n", "\n", " \n \n", "\n\n\n")
]).pipe(Arbitrary.map(([ps, sep]) => ps.join(sep)))
const options = Arbitrary.all({ maxChars: integer(1, 400), overlap: integer(0, 200) })

describe("Chunker", () => {
  it.prop("covers every non-space character, respects the size, keeps order", [document, options], ([text, opts]) => {
    const chunks = Chunker.chunk(text, opts)
    const covered = new Uint8Array(text.length)
    const overlap = Math.min(opts.overlap, Math.floor(opts.maxChars / 2))
    // Plain checks in the loops (chai per character would be slow), one assertion each.
    const bad = chunks.find((c, i) => {
      const previous = chunks[i - 1]
      covered.fill(1, c.start, c.end)
      return c.index !== i || c.text !== text.slice(c.start, c.end) || c.text.length > opts.maxChars ||
        c.text.length === 0 || isSpace(c.text[0]!) || isSpace(c.text[c.text.length - 1]!) ||
        (previous !== undefined &&
          (c.start <= previous.start || c.end <= previous.end || previous.end - c.start > overlap))
    })
    assert.isUndefined(bad, JSON.stringify(bad))
    const uncovered = Array.prototype.findIndex.call(text, (ch: string, j: number) => !isSpace(ch) && covered[j] === 0)
    assert.strictEqual(uncovered, -1, "a character is in no chunk")
    return true
  }, { arbitrary: { runs: 200 } })

  it.prop("is deterministic", [document, options], ([text, opts]) => {
    assert.deepStrictEqual(Chunker.chunk(text, opts), Chunker.chunk(text, opts))
    return true
  })

  it("prefers paragraph, then sentence boundaries", () => {
    const para1 = "Effect is a TypeScript library. It models programs as values."
    const para2 = "Layers build services. Scopes close resources when done."
    const text = `${para1}\n\n${para2}`
    const [first, second] = Chunker.chunk(text, { maxChars: 80, overlap: 0 })
    assert.strictEqual(first!.text, para1)
    assert.strictEqual(second!.text, para2)
    const bySentence = Chunker.chunk(para1 + " " + para2, { maxChars: 70, overlap: 0 })
    assert.strictEqual(bySentence[0]!.text, para1)
  })

  it("overlaps at a sentence boundary when one is close enough", () => {
    const text = "One two three four five. Six seven eight nine ten. Eleven twelve thirteen fourteen fifteen."
    const chunks = Chunker.chunk(text, { maxChars: 52, overlap: 30 })
    assert.isAtLeast(chunks.length, 2)
    assert.strictEqual(chunks[1]!.text.slice(0, 3), "Six")
  })

  it("has defaults and handles blank text", () => {
    assert.deepStrictEqual(Chunker.chunk(""), [])
    assert.deepStrictEqual(Chunker.chunk(" \n\n \t"), [])
    const long = "word ".repeat(1000)
    const chunks = Chunker.chunk(long)
    assert.isTrue(chunks.every((c) => c.text.length <= Chunker.defaults.maxChars))
    assert.isAbove(chunks.length, 5)
  })

  it("never cuts a surrogate pair when it can help it", () => {
    const text = "😀".repeat(20)
    for (const c of Chunker.chunk(text, { maxChars: 7, overlap: 0 })) {
      assert.isFalse(/[\uD800-\uDBFF]$/.test(c.text), JSON.stringify(c))
    }
  })

  it("pins the chunks of a fixed text (the scans feed one sorted list of break positions)", () => {
    const text = "First paragraph.\n\nSecond one. It has two sentences! \"Quoted?\" Yes.\n \nLast 東京 😀 words here"
    assert.deepStrictEqual(Chunker.chunk(text, { maxChars: 40, overlap: 15 }).map((c) => [c.start, c.end]), PINNED)
  })

  it.effect.prop("chunkEffect gives exactly the chunks of chunk", [document, options], ([text, opts]) =>
    Effect.map(
      Chunker.chunkEffect(text, { ...opts, maxBlockingMillis: 0 }),
      (sliced) => {
        assert.deepStrictEqual(sliced, Chunker.chunk(text, opts))
        return true
      }
    ), { arbitrary: { runs: 100 } })

  it.effect("chunkEffect gives the event loop back while it cuts a large document", () =>
    Effect.gen(function*() {
      const text = "A sentence of a large document. ".repeat(20_000) // 640 000 characters, about 700 chunks
      // Another fiber counts its turns while the chunker runs: each slice handing control back gives it one.
      const turns = yield* Ref.make(0)
      const other = yield* Effect.forkChild(
        Effect.forever(Effect.andThen(Effect.yieldNow, Ref.update(turns, (n) => n + 1)))
      )
      const chunks = yield* Chunker.chunkEffect(text, { maxBlockingMillis: 0 })
      const during = yield* Ref.get(turns)
      yield* Fiber.interrupt(other)
      assert.deepStrictEqual(chunks, Chunker.chunk(text))
      // 0 ms slices end at every checkpoint (one after each chunk), and the other fiber runs between them (once every
      // one or two checkpoints, as Effect's scheduler batches its tasks); one synchronous step would give it none.
      assert.isAtLeast(during, chunks.length / 4)
    }))
})

// What the chunker gave before it was cut into slices (commit 148699d).
const PINNED = [[0, 29], [18, 51], [37, 66], [52, 90]]
