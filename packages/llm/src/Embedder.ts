/**
 * The `Embedder` service turns texts into vectors, and its local implementation: a deterministic feature-hashing
 * embedder that needs no model server.
 *
 * An embedder has a stable `id` naming the model and everything that changes its vectors (`local:fh-384`,
 * `ollama:nomic-embed-text`): vectors are only comparable between equal ids, so a collection records the id it was
 * built with and a fallback embedder may only stand in for the same id.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"
import { defaultMaxBlockingMillis, runSliced, type Steps } from "./internal/slice.js"
import { murmur3, stopWords, words } from "./internal/text.js"
import type { LlmError } from "./LlmError.js"

/**
 * What the vectors are for. Some models (nomic-embed-text) embed queries and documents with different prefixes; the
 * local embedder treats both alike.
 *
 * @since 0.1.0
 * @category models
 */
export type Purpose = "query" | "document"

/**
 * @since 0.1.0
 * @category models
 */
export interface EmbedOptions {
  readonly purpose?: Purpose | undefined
}

/**
 * Turns texts into vectors of `dimensions` numbers, one per text, in order.
 *
 * @since 0.1.0
 * @category tags
 * @example
 * import { Embedder } from "@ouroboros/llm"
 * import { Effect } from "effect"
 * const program = Effect.gen(function*() {
 *   const embedder = yield* Embedder.Embedder
 *   const [vector] = yield* embedder.embed(["hello world"])
 *   return vector?.length === embedder.dimensions
 * }).pipe(Effect.provide(Embedder.layerLocal()))
 */
export class Embedder extends Context.Service<Embedder, {
  /** Names the model and its settings: vectors are comparable only between equal ids. */
  readonly id: string
  /** The length of every vector. */
  readonly dimensions: number
  readonly embed: (
    texts: ReadonlyArray<string>,
    options?: EmbedOptions
  ) => Effect.Effect<ReadonlyArray<Float32Array>, LlmError>
}>()("@ouroboros/llm/Embedder") {}

/**
 * @since 0.1.0
 * @category models
 */
export interface LocalOptions {
  /** The vector size. Default 384. */
  readonly dimensions?: number | undefined
  /**
   * The longest the embedder computes before it gives the event loop back (default 10 ms; 0 yields after every
   * text). Embedding the 10 000 chunks of an 8 MiB document takes over a second: in one synchronous step it would
   * stall every other request of the process, liveness probes included.
   */
  readonly maxBlockingMillis?: number | undefined
}

/**
 * The default size of local vectors.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultLocalDimensions = 384

// One seed per kind of feature: the same string as a word, a bigram or a trigram lands in unrelated buckets.
const unigramSeed = 0x9747b28c
const bigramSeed = 0x5bd1e995
const trigramSeed = 0x2f0b3a49
const unigramWeight = 1
const bigramWeight = 0.5
const trigramWeight = 0.25

const count = (counts: Map<string, number>, feature: string) => counts.set(feature, (counts.get(feature) ?? 0) + 1)

const accumulate = (
  acc: Float64Array,
  counts: ReadonlyMap<string, number>,
  seed: number,
  weight: number
) => {
  const dimensions = acc.length
  for (const [feature, tf] of counts) {
    const h = murmur3(feature, seed)
    // The bucket comes from h mod dimensions, the sign from the top bit, which is independent of it.
    acc[h % dimensions]! += (h >>> 31 === 0 ? weight : -weight) * (1 + Math.log(tf))
  }
}

/**
 * Embeds one text with feature hashing, synchronously:
 *
 * 1. words: NFKC, lower case, Unicode letters/digits/marks; stop words dropped unless nothing else is left;
 * 2. features: each word (weight 1), each pair of neighbouring words written `first + " " + second` (0.5), and each
 *    character trigram of `^word$` (0.25) for words of two characters or more (a one-character word has none);
 * 3. each feature lands in bucket `murmur3(feature) mod dimensions` (MurmurHash3 x86-32 over the feature's UTF-16
 *    code units, little-endian, seeded `0x9747b28c` for words, `0x5bd1e995` for pairs, `0x2f0b3a49` for trigrams), with
 *    the sign `+` when the hash's top bit is 0 and `−` otherwise, weighted `weight × (1 + ln tf)` (sublinear term
 *    frequency);
 * 4. the vector is L2-normalised, so the dot product of two vectors is their cosine.
 *
 * A text without words is the zero vector. The result depends only on the text and `dimensions`: the same on every
 * process and platform. Changing any of the above must change {@link localId}.
 *
 * @since 0.1.0
 * @category utils
 */
export const hashEmbed = (text: string, dimensions: number = defaultLocalDimensions): Float32Array => {
  const all = words(text)
  const content = all.filter((word) => !stopWords.has(word))
  const tokens = content.length > 0 ? content : all
  const unigrams = new Map<string, number>()
  const bigrams = new Map<string, number>()
  const trigrams = new Map<string, number>()
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!
    count(unigrams, token)
    if (i + 1 < tokens.length) count(bigrams, token + " " + tokens[i + 1]!)
    const padded = "^" + token + "$"
    if (padded.length > 3) {
      for (let j = 0; j + 3 <= padded.length; j++) count(trigrams, padded.slice(j, j + 3))
    }
  }
  // Float64 accumulation, then one rounding to float32: the order of the sums is fixed by the text (map insertion
  // order), so the result is bit-for-bit reproducible.
  const acc = new Float64Array(dimensions)
  accumulate(acc, unigrams, unigramSeed, unigramWeight)
  accumulate(acc, bigrams, bigramSeed, bigramWeight)
  accumulate(acc, trigrams, trigramSeed, trigramWeight)
  let norm = 0
  for (let i = 0; i < dimensions; i++) norm += acc[i]! * acc[i]!
  const out = new Float32Array(dimensions)
  if (norm === 0) return out
  const scale = 1 / Math.sqrt(norm)
  for (let i = 0; i < dimensions; i++) out[i] = acc[i]! * scale
  return out
}

/**
 * The cosine similarity of two vectors of the same length (0 when either is the zero vector).
 *
 * @since 0.1.0
 * @category utils
 */
export const cosine = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let dot = 0
  let na = 0
  let nb = 0
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    dot += a[i]! * b[i]!
    na += a[i]! * a[i]!
    nb += b[i]! * b[i]!
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb)
}

/**
 * The id of the local embedder for a vector size: `local:fh-<dimensions>`.
 *
 * @since 0.1.0
 * @category utils
 */
export const localId = (dimensions: number): string => `local:fh-${dimensions}`

/**
 * Builds the local feature-hashing embedder. `embed` gives the event loop back at least every `maxBlockingMillis`
 * (between two texts), so a large document does not stall the process; the vectors are those of {@link hashEmbed}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeLocal = (options?: LocalOptions): Embedder["Service"] => {
  const dimensions = Math.floor(options?.dimensions ?? defaultLocalDimensions)
  if (!(dimensions >= 1)) throw new RangeError(`dimensions must be a positive integer, got ${options?.dimensions}`)
  const maxBlockingMillis = Math.max(0, options?.maxBlockingMillis ?? defaultMaxBlockingMillis)
  function* steps(texts: ReadonlyArray<string>): Steps<ReadonlyArray<Float32Array>> {
    const vectors = new Array<Float32Array>(texts.length)
    for (let i = 0; i < texts.length; i++) {
      vectors[i] = hashEmbed(texts[i]!, dimensions)
      yield
    }
    return vectors
  }
  return Embedder.of({
    id: localId(dimensions),
    dimensions,
    // Text by text, giving the event loop back between texts once a slice has lasted `maxBlockingMillis`.
    embed: (texts) => runSliced(() => steps(texts), maxBlockingMillis)
  })
}

/**
 * The local feature-hashing embedder as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLocal = (options?: LocalOptions): Layer.Layer<Embedder> =>
  Layer.sync(Embedder, () => makeLocal(options))
