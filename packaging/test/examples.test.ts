/**
 * The `@example` blocks of the TSDoc in the packages' sources type-check as a consumer's modules
 * (packaging/examples.mjs, `npm run check:examples`): one TypeScript program over all of them, each error reported at
 * its place in the source comment. The checker itself is tried on a scratch source with one good and three broken
 * examples (bare, fenced, imports without code), so that a checker that finds nothing cannot pass.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { checkExamples, formatFailure } from "../examples.mjs"

describe("TSDoc examples", () => {
  it("every @example of the packages type-checks", () => {
    const { examples, failures, millis } = checkExamples()
    console.log(`${examples.length} TSDoc examples type-checked in ${millis} ms`)
    assert.isAbove(examples.length, 0)
    assert.deepStrictEqual(failures.map(formatFailure), [], "failing @example blocks (npm run check:examples)")
  }, 180_000)

  it("reports a broken example at its line and column in the source comment", () => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-examples-"))
    try {
      const src = Path.join(dir, "src")
      Fs.mkdirSync(src)
      Fs.writeFileSync(
        Path.join(src, "Module.ts"),
        [
          "/**",
          " * Doubles.",
          " *",
          " * @example",
          " * const four: number = 2 * 2",
          " * @since 0.1.0",
          " */",
          "export const double = (n: number): number => n * 2",
          "",
          "/**",
          " * Halves.",
          " *",
          " * @example",
          " * const two: string = 4 / 2",
          " */",
          "export const half = (n: number): number => n / 2",
          "",
          "export const Box = {",
          "  /**",
          "   * @example",
          "   * ```ts",
          "   *   const one: number = Math.min(1, 2)",
          "   *   one.toUpperCase()",
          "   * ```",
          "   */",
          "  unbox: (n: number) => n",
          "}",
          "",
          "/**",
          " * @example",
          " * import { readFileSync } from \"node:fs\"",
          " * // quadruple(1) is 4",
          " */",
          "export const quadruple = (n: number): number => n * 4",
          ""
        ].join("\n")
      )
      const { examples, failures } = checkExamples({
        dir: Path.join(dir, "scratch"),
        roots: [{ name: "fixture", src }]
      })
      assert.deepStrictEqual(
        examples.map((example) => example.declaration),
        ["double", "half", "Box.unbox", "quadruple"]
      )
      assert.deepStrictEqual(
        failures.map(({ column, example, line }) => [example.declaration, line + 1, column + 1]),
        [["half", 14, 10], ["Box.unbox", 23, 12], ["quadruple", 31, 4], ["quadruple", 31, 4]]
      )
      assert.match(failures[0]!.message, /TS2322/)
      assert.match(failures[1]!.message, /toUpperCase/)
      // An example shows a call, and imports only what it uses.
      assert.match(failures[2]!.message, /no code/)
      assert.match(failures[3]!.message, /TS6133/)
      assert.isTrue(Fs.existsSync(Path.join(dir, "scratch", "fixture", "Module.Box.unbox.ts")))
    } finally {
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
