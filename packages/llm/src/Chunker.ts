/**
 * Splits a document into overlapping chunks for embedding, cutting at paragraph, then sentence, then word boundaries.
 *
 * The result is deterministic and every non-white-space character of the document lies in at least one chunk; chunks
 * come in document order, each at most `maxChars` long, and each (after the first) starts at most `overlap`
 * characters before the end of the previous one, at a sentence or word boundary when there is one.
 *
 * @since 0.1.0
 */
import { type Effect, Schema } from "effect"
import { defaultMaxBlockingMillis, runSliced, runSync, type Steps } from "./internal/slice.js"
import { isSpaceAt, trimSpan } from "./internal/text.js"

/**
 * A piece of a document: `text === document.slice(start, end)`, trimmed of white space.
 *
 * @since 0.1.0
 * @category models
 */
export const Chunk = Schema.Struct({
  index: Schema.Int,
  text: Schema.String,
  start: Schema.Int,
  end: Schema.Int
}).annotate({ identifier: "Chunk" })

/**
 * @since 0.1.0
 * @category models
 */
export type Chunk = typeof Chunk.Type

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The largest chunk, in UTF-16 code units (JavaScript string length). Default 1000. */
  readonly maxChars?: number | undefined
  /** How much of the end of a chunk the next one repeats, at most. Default 100, capped at half of `maxChars`. */
  readonly overlap?: number | undefined
}

/**
 * The defaults: chunks of up to 1000 characters overlapping by up to 100.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults = { maxChars: 1000, overlap: 100 } as const

const paragraphBreak = /\n[ \t]*\n/g
const sentenceEnd = /[.!?\u3002\uff01\uff1f][)"'\]\u00bb\u201d\u2019]*(?=\s|$)/gu

/** The largest element of the sorted `xs` in (lo, hi], if any. */
const largestIn = (xs: ReadonlyArray<number>, lo: number, hi: number): number | undefined => {
  // First index with xs[i] > hi.
  let a = 0
  let b = xs.length
  while (a < b) {
    const mid = (a + b) >>> 1
    if (xs[mid]! > hi) b = mid
    else a = mid + 1
  }
  const candidate = xs[a - 1]
  return candidate !== undefined && candidate > lo ? candidate : undefined
}

/** The smallest element of the sorted `xs` in [lo, hi), if any. */
const smallestIn = (xs: ReadonlyArray<number>, lo: number, hi: number): number | undefined => {
  let a = 0
  let b = xs.length
  while (a < b) {
    const mid = (a + b) >>> 1
    if (xs[mid]! < lo) a = mid + 1
    else b = mid
  }
  const candidate = xs[a]
  return candidate !== undefined && candidate < hi ? candidate : undefined
}

const isHighSurrogate = (text: string, index: number): boolean => {
  const code = text.charCodeAt(index)
  return code >= 0xd800 && code <= 0xdbff
}

const normalise = (options: Options | undefined): { readonly maxChars: number; readonly overlap: number } => {
  const maxChars = Math.max(1, Math.floor(options?.maxChars ?? defaults.maxChars))
  const overlap = Math.max(0, Math.min(Math.floor(options?.overlap ?? defaults.overlap), Math.floor(maxChars / 2)))
  return { maxChars: Number.isFinite(maxChars) ? maxChars : defaults.maxChars, overlap }
}

/**
 * Splits `text` into chunks. An empty or blank text has no chunks.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * import { Chunker } from "@ouroboros/llm"
 * const chunks = Chunker.chunk("First paragraph.\n\nSecond one. It has two sentences.", { maxChars: 40 })
 * // [{ index: 0, text: "First paragraph.\n\nSecond one.", start: 0, end: 29 },
 * //  { index: 1, text: "Second one. It has two sentences.", start: 18, end: 51 }]  (overlap: "Second one.")
 */
export const chunk = (text: string, options?: Options): Array<Chunk> => runSync(steps(text, options))

/**
 * Options of {@link chunkEffect}.
 *
 * @since 0.1.0
 * @category models
 */
export interface SliceOptions {
  /**
   * The longest the chunker computes before it gives the event loop back (default 10 ms): chunking an 8 MiB
   * document takes over 100 ms, which would stall every other request of the process.
   */
  readonly maxBlockingMillis?: number | undefined
}

/**
 * {@link chunk} as an Effect that yields to the event loop every `maxBlockingMillis`: the same chunks, without
 * stalling other requests while a large document is cut.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * import { Chunker } from "@ouroboros/llm"
 * import { Effect } from "effect"
 * const program = Effect.map(Chunker.chunkEffect("A long document…"), (chunks) => chunks.length)
 */
export const chunkEffect = (
  text: string,
  options?: Options & SliceOptions
): Effect.Effect<Array<Chunk>> =>
  runSliced(() => steps(text, options), options?.maxBlockingMillis ?? defaultMaxBlockingMillis)

// Checkpoints: every `scanBatch` regex matches or merged positions, and after every chunk.
const scanBatch = 1024

/** Every match position of a global regex (`position` of each match), in order, with checkpoints. */
function* scan(text: string, pattern: RegExp, position: (match: RegExpExecArray) => number): Steps<Array<number>> {
  // A private copy: `lastIndex` is state, and the same results as `matchAll` (neither pattern can match empty).
  const regex = new RegExp(pattern.source, pattern.flags)
  const out: Array<number> = []
  for (let match = regex.exec(text); match !== null; match = regex.exec(text)) {
    out.push(position(match))
    if (out.length % scanBatch === 0) yield
  }
  return out
}

/** The union of two ascending arrays, ascending, without duplicates. */
function* merge(a: ReadonlyArray<number>, b: ReadonlyArray<number>): Steps<Array<number>> {
  const out: Array<number> = []
  let i = 0
  let j = 0
  while (i < a.length || j < b.length) {
    const next = j >= b.length || (i < a.length && a[i]! <= b[j]!) ? a[i++]! : b[j++]!
    if (out.length === 0 || out[out.length - 1]! !== next) out.push(next)
    if ((i + j) % scanBatch === 0) yield
  }
  return out
}

function* steps(text: string, options: Options | undefined): Steps<Array<Chunk>> {
  const { maxChars, overlap } = normalise(options)
  const n = text.length
  const paragraphs = yield* scan(text, paragraphBreak, (m) => m.index)
  // Sentence ends and paragraph breaks, ascending (both scans yield ascending positions).
  const sentences = yield* merge(paragraphs, yield* scan(text, sentenceEnd, (m) => m.index + m[0].length))

  const chunks: Array<Chunk> = []
  let start = 0
  let previousEnd = 0
  while (true) {
    yield
    while (start < n && isSpaceAt(text, start)) start++
    if (start >= n) break
    const limit = start + maxChars
    let end: number
    if (limit >= n) {
      end = n
    } else {
      // A paragraph or sentence break only counts when the chunk is at least half full; every break must move past
      // the end of the previous chunk so that each chunk adds new text.
      const low = Math.max(previousEnd, start + Math.floor(maxChars / 2))
      end = largestIn(paragraphs, low, limit) ?? largestIn(sentences, low, limit) ??
        wordBreak(text, Math.max(previousEnd, start), limit) ?? hardBreak(text, Math.max(previousEnd, start), limit)
    }
    const span = trimSpan(text, start, end)
    // A span that ends where the previous chunk ended only repeats it (what it added was white space).
    if (span !== undefined && span.end > (chunks[chunks.length - 1]?.end ?? 0)) {
      chunks.push({ index: chunks.length, text: span.text, start: span.start, end: span.end })
    }
    if (end >= n) break
    previousEnd = end
    let next = end
    if (overlap > 0) {
      const from = Math.max(end - overlap, start + 1)
      next = smallestIn(sentences, from, end) ?? wordStart(text, from, end) ?? end
    }
    start = next
  }
  return chunks
}

/** The last position b in (low, high] where a white-space run begins, if any. */
const wordBreak = (text: string, low: number, high: number): number | undefined => {
  for (let b = high; b > low; b--) {
    if (isSpaceAt(text, b) && !isSpaceAt(text, b - 1)) return b
  }
  return undefined
}

/** The first position b in [low, high) where a word begins after white space, if any. */
const wordStart = (text: string, low: number, high: number): number | undefined => {
  for (let b = Math.max(low, 1); b < high; b++) {
    if (!isSpaceAt(text, b) && isSpaceAt(text, b - 1)) return b
  }
  return undefined
}

/** `high`, moved back one when it would cut a surrogate pair in two and that still makes progress. */
const hardBreak = (text: string, low: number, high: number): number =>
  isHighSurrogate(text, high - 1) && high - 1 > low ? high - 1 : high
