/**
 * How deeply a JSON text nests, found by one scan over its characters (or bytes), with no parsing and no recursion:
 * cheap enough to run on every JSON body before it is parsed and decoded.
 *
 * Schema decoders and issue formatters recurse once (or more) per level of a value, so a body of a few kilobytes that
 * nests a thousand levels deep overflows the stack and answers 500. Refusing a body that nests deeper than a limit
 * before anything else reads it keeps every later step shallow.
 *
 * @since 0.1.0
 */

const quote = 0x22
const backslash = 0x5c
const openBracket = 0x5b
const closeBracket = 0x5d
const openBrace = 0x7b
const closeBrace = 0x7d

/**
 * The deepest nesting of arrays and objects in a JSON text (`1` for `[]`, `2` for `{"a":[]}`, `0` for a scalar),
 * counting brackets outside strings. The scan stops as soon as the depth goes over `stopAbove`, and returns that
 * depth. A text that is not valid JSON gets a number too (the parser refuses it afterwards).
 *
 * The bytes of UTF-8 are scanned as they are: no byte of a multi-byte character is an ASCII bracket, quote or
 * backslash.
 *
 * @since 0.1.0
 * @category measuring
 * @example
 * import { JsonDepth } from "@ouroboros/kernel"
 *
 * JsonDepth.depth('{"a":[1,"]]]"]}') // 2
 * JsonDepth.depth("[".repeat(5000) + "]".repeat(5000), 64) // 65: stopped at the first level over 64
 */
export const depth = (json: string | Uint8Array, stopAbove: number = Number.POSITIVE_INFINITY): number =>
  typeof json === "string" ? depthOfText(json, stopAbove) : depthOfBytes(json, stopAbove)

// Inside a string the scan jumps to the next quote (`indexOf`, a native search) and counts the backslashes before it:
// an odd number escapes it. Each backslash is counted once, so the scan stays linear.
const depthOfBytes = (json: Uint8Array, stopAbove: number): number => {
  let current = 0
  let deepest = 0
  const length = json.length
  for (let i = 0; i < length; i++) {
    const c = json[i]!
    if (c === quote) {
      let end = json.indexOf(quote, i + 1)
      while (end !== -1) {
        let backslashes = 0
        for (let k = end - 1; k > i && json[k] === backslash; k--) backslashes++
        if (backslashes % 2 === 0) break
        end = json.indexOf(quote, end + 1)
      }
      if (end === -1) return deepest
      i = end
    } else if (c === openBracket || c === openBrace) {
      if (++current > deepest) {
        deepest = current
        if (deepest > stopAbove) return deepest
      }
    } else if (c === closeBracket || c === closeBrace) {
      current--
    }
  }
  return deepest
}

const depthOfText = (json: string, stopAbove: number): number => {
  let current = 0
  let deepest = 0
  const length = json.length
  for (let i = 0; i < length; i++) {
    const c = json.charCodeAt(i)
    if (c === quote) {
      let end = json.indexOf("\"", i + 1)
      while (end !== -1) {
        let backslashes = 0
        for (let k = end - 1; k > i && json.charCodeAt(k) === backslash; k--) backslashes++
        if (backslashes % 2 === 0) break
        end = json.indexOf("\"", end + 1)
      }
      if (end === -1) return deepest
      i = end
    } else if (c === openBracket || c === openBrace) {
      if (++current > deepest) {
        deepest = current
        if (deepest > stopAbove) return deepest
      }
    } else if (c === closeBracket || c === closeBrace) {
      current--
    }
  }
  return deepest
}

/**
 * Whether a JSON text nests deeper than `maxDepth`.
 *
 * @since 0.1.0
 * @category measuring
 */
export const exceeds = (json: string | Uint8Array, maxDepth: number): boolean => depth(json, maxDepth) > maxDepth
