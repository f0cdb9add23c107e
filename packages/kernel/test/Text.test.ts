import { assert, describe, it } from "@effect/vitest"
import { Schema } from "effect"
import { Text } from "../src/index.js"

describe("Text", () => {
  it("Storable refuses a NUL character anywhere in a string, with a message that names it", () => {
    const decode = Schema.decodeUnknownResult(Text.Storable)
    for (const ok of ["", "plain", "é 💥", "\\u0000 (escaped, not a NUL)"]) {
      assert.isTrue(Schema.is(Text.Storable)(ok), ok)
    }
    for (const bad of ["\u0000", "a\u0000", "\u0000b", "a\u0000b"]) {
      const result = decode(bad)
      assert.isTrue(result._tag === "Failure", bad)
      if (result._tag === "Failure") assert.include(result.failure.message, "NUL character (U+0000)")
    }
  })

  it("containsNul finds a NUL in any string, key or nested value, and nothing else", () => {
    assert.isFalse(Text.containsNul({ a: [1, "b", { c: null, d: true }], e: "f" }))
    assert.isFalse(Text.containsNul(42))
    assert.isTrue(Text.containsNul("\u0000"))
    assert.isTrue(Text.containsNul({ a: [1, { b: "x\u0000" }] }))
    assert.isTrue(Text.containsNul({ a: { "k\u0000": 1 } }))
    assert.isTrue(Text.containsNul([[["\u0000"]]]))
  })
})
