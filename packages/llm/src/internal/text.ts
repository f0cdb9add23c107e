/**
 * Text primitives shared by the local embedder, the extractive answerer and the chunker. Everything here is pure and
 * deterministic: same input, same output, on every platform (no locale, no randomness, no floating point that depends
 * on evaluation order beyond IEEE 754 doubles).
 *
 * @internal
 */

/**
 * MurmurHash3 (x86, 32-bit) of the UTF-16 code units of `input`, two units per 32-bit block (little-endian). UTF-16 is
 * what every JavaScript engine stores, so the hash is the same on every platform, and no encoding step is needed.
 *
 * @internal
 */
export const murmur3 = (input: string, seed: number): number => {
  let h = seed >>> 0
  const c1 = 0xcc9e2d51
  const c2 = 0x1b873593
  const length = input.length
  const pairs = length & ~1
  for (let i = 0; i < pairs; i += 2) {
    let k = (input.charCodeAt(i) | (input.charCodeAt(i + 1) << 16)) >>> 0
    k = Math.imul(k, c1)
    k = (k << 15) | (k >>> 17)
    k = Math.imul(k, c2)
    h ^= k
    h = (h << 13) | (h >>> 19)
    h = (Math.imul(h, 5) + 0xe6546b64) | 0
  }
  if ((length & 1) === 1) {
    let k = input.charCodeAt(length - 1)
    k = Math.imul(k, c1)
    k = (k << 15) | (k >>> 17)
    k = Math.imul(k, c2)
    h ^= k
  }
  h ^= length * 2
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

const wordPattern = /[\p{L}\p{N}\p{M}]+/gu

/**
 * Lower-cased Unicode words (letters, digits and combining marks), NFKC-normalised. `toLowerCase` (not
 * `toLocaleLowerCase`) keeps the result independent of the host locale.
 *
 * @internal
 */
export const words = (text: string): Array<string> => text.normalize("NFKC").toLowerCase().match(wordPattern) ?? []

/**
 * A small English stop-word list: these words carry little meaning and would otherwise dominate the similarity of
 * unrelated texts.
 *
 * @internal
 */
export const stopWords: ReadonlySet<string> = new Set(
  (
    "a an and are as at be been being but by can could did do does doing for from had has have having he her " +
    "here hers " +
    "him his how i if in into is it its itself me more most my no nor not of off on once only or other our ours out " +
    "over own same she should so some such than that the their theirs them then there these they this those through " +
    "to too under until up very was we were what when where which while who whom why will with would you your yours " +
    "s t d ll m re ve about above after again against all any because before below between both down during each few " +
    "further just"
  ).split(" ")
)

/**
 * The content words of a text: its words without stop words, or all its words when it has nothing else (so "to be or
 * not to be" still means something).
 *
 * @internal
 */
export const contentWords = (text: string): Array<string> => {
  const all = words(text)
  const content = all.filter((word) => !stopWords.has(word))
  return content.length > 0 ? content : all
}

/**
 * A sentence of a text with its position: `text === source.slice(start, end)`.
 *
 * @internal
 */
export interface Span {
  readonly text: string
  readonly start: number
  readonly end: number
}

// A sentence ends at ., !, ? (and their CJK forms) plus closing quotes/brackets, followed by white space or the end.
const sentenceEnd = /[.!?\u3002\uff01\uff1f][)"'\]\u00bb\u201d\u2019]*(?=\s|$)/gu
const paragraphBreak = /\n[ \t]*\n/g

/**
 * Splits text into trimmed sentences (a paragraph break also ends a sentence), in order.
 *
 * @internal
 */
export const sentences = (text: string): Array<Span> => {
  const cuts = new Set<number>([0, text.length])
  for (const match of text.matchAll(sentenceEnd)) cuts.add(match.index + match[0].length)
  for (const match of text.matchAll(paragraphBreak)) cuts.add(match.index)
  const sorted = Array.from(cuts).sort((a, b) => a - b)
  const out: Array<Span> = []
  for (let i = 0; i + 1 < sorted.length; i++) {
    const span = trimSpan(text, sorted[i]!, sorted[i + 1]!)
    if (span !== undefined) out.push(span)
  }
  return out
}

const isSpace = (code: number): boolean =>
  code === 32 || (code >= 9 && code <= 13) || code === 0xa0 || code === 0x2028 || code === 0x2029 ||
  code === 0x3000 || code === 0xfeff || (code >= 0x2000 && code <= 0x200a) || code === 0x1680 || code === 0x202f ||
  code === 0x205f || code === 0x85

/**
 * `source.slice(start, end)` without leading and trailing white space, or `undefined` when nothing is left.
 *
 * @internal
 */
export const trimSpan = (source: string, start: number, end: number): Span | undefined => {
  let s = start
  let e = end
  while (s < e && isSpace(source.charCodeAt(s))) s++
  while (e > s && isSpace(source.charCodeAt(e - 1))) e--
  return s < e ? { text: source.slice(s, e), start: s, end: e } : undefined
}

/**
 * Whether the UTF-16 code unit at `index` is white space.
 *
 * @internal
 */
export const isSpaceAt = (source: string, index: number): boolean => isSpace(source.charCodeAt(index))
