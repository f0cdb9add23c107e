/**
 * A reference implementation of the local embedder (`Embedder.hashEmbed`), written for the tests from its
 * specification, not from its code: the TSDoc of `hashEmbed`, and the parameters that the TSDoc does not give,
 * restated here as part of the specification (they are not exported by the package).
 *
 * The specification (TSDoc of `hashEmbed`):
 *
 * 1. words: NFKC, lower case, Unicode letters/digits/marks; stop words dropped unless nothing else is left;
 * 2. features: each word (weight 1), each pair of neighbouring words (0.5), each character trigram of `^word$` (0.25);
 * 3. each feature lands in bucket `murmur3(feature) mod dimensions` (MurmurHash3 x86-32 over UTF-16 code units, one
 *    seed per kind of feature) with the sign of the hash's top bit, weighted `weight × (1 + ln tf)`;
 * 4. the vector is L2-normalised, so the dot product of two vectors is their cosine; a text without words is the zero
 *    vector.
 *
 * Restated here (not in the TSDoc):
 *
 * - the seeds: words 0x9747b28c, pairs 0x5bd1e995, trigrams 0x2f0b3a49;
 * - the stop words: {@link STOP_WORDS};
 * - a pair of words is the feature `first + " " + second`; a word is its own feature;
 * - "character" means UTF-16 code unit (a letter outside the BMP is two), and a one-character word has no trigram
 *   (`^a$` is not a feature, which the TSDoc does not say);
 * - "over UTF-16 code units" means over the bytes of the code units, little-endian (two code units per 32-bit block);
 * - the sign is + when the top bit is 0; tf is how often the feature occurs in the text (among features of its kind);
 * - the sums are kept in doubles and the normalised vector is rounded to float32 once, at the end.
 *
 * It shares no code with the implementation, and nothing whose result may differ between platforms: MurmurHash3 is
 * computed with BigInt from the published algorithm (the tests check it against the published test vectors), ln of a
 * term frequency comes from its decimal expansion (not `Math.log`), and the rest is IEEE 754 addition,
 * multiplication, division, square root and rounding to float32, which are exact by definition.
 */

const MASK = 0xffffffffn

const multiply = (a: bigint, b: bigint): bigint => (a * b) & MASK

const rotateLeft = (x: bigint, r: bigint): bigint => ((x << r) | (x >> (32n - r))) & MASK

/** The finalisation mix (`fmix32`) of MurmurHash3. */
const finalMix = (h: bigint): bigint => {
  h ^= h >> 16n
  h = multiply(h, 0x85ebca6bn)
  h ^= h >> 13n
  h = multiply(h, 0xc2b2ae35n)
  h ^= h >> 16n
  return h
}

const mixBlock = (k: bigint): bigint => multiply(rotateLeft(multiply(k, 0xcc9e2d51n), 15n), 0x1b873593n)

/** MurmurHash3_x86_32 of `bytes` (Austin Appleby, SMHasher), as an unsigned 32-bit number. */
export const murmur3 = (bytes: Uint8Array, seed: number): number => {
  let h = BigInt(seed >>> 0)
  const blocks = Math.floor(bytes.length / 4)
  for (let i = 0; i < blocks; i++) {
    const k = BigInt(bytes[4 * i]!) | (BigInt(bytes[4 * i + 1]!) << 8n) | (BigInt(bytes[4 * i + 2]!) << 16n) |
      (BigInt(bytes[4 * i + 3]!) << 24n)
    h ^= mixBlock(k)
    h = rotateLeft(h, 13n)
    h = (multiply(h, 5n) + 0xe6546b64n) & MASK
  }
  const tail = bytes.subarray(blocks * 4)
  if (tail.length > 0) {
    let k = 0n
    for (let j = tail.length - 1; j >= 0; j--) k = (k << 8n) | BigInt(tail[j]!)
    h ^= mixBlock(k)
  }
  h ^= BigInt(bytes.length)
  return Number(finalMix(h))
}

/** The UTF-16 code units of `text`, each as two bytes, little-endian. */
const utf16le = (text: string): Uint8Array => {
  const bytes = new Uint8Array(text.length * 2)
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i)
    bytes[2 * i] = unit & 0xff
    bytes[2 * i + 1] = unit >> 8
  }
  return bytes
}

/** The stop words of the specification. */
export const STOP_WORDS: ReadonlySet<string> = new Set([
  "a",
  "an",
  "and",
  "are",
  "as",
  "at",
  "be",
  "been",
  "being",
  "but",
  "by",
  "can",
  "could",
  "did",
  "do",
  "does",
  "doing",
  "for",
  "from",
  "had",
  "has",
  "have",
  "having",
  "he",
  "her",
  "here",
  "hers",
  "him",
  "his",
  "how",
  "i",
  "if",
  "in",
  "into",
  "is",
  "it",
  "its",
  "itself",
  "me",
  "more",
  "most",
  "my",
  "no",
  "nor",
  "not",
  "of",
  "off",
  "on",
  "once",
  "only",
  "or",
  "other",
  "our",
  "ours",
  "out",
  "over",
  "own",
  "same",
  "she",
  "should",
  "so",
  "some",
  "such",
  "than",
  "that",
  "the",
  "their",
  "theirs",
  "them",
  "then",
  "there",
  "these",
  "they",
  "this",
  "those",
  "through",
  "to",
  "too",
  "under",
  "until",
  "up",
  "very",
  "was",
  "we",
  "were",
  "what",
  "when",
  "where",
  "which",
  "while",
  "who",
  "whom",
  "why",
  "will",
  "with",
  "would",
  "you",
  "your",
  "yours",
  "s",
  "t",
  "d",
  "ll",
  "m",
  "re",
  "ve",
  "about",
  "above",
  "after",
  "again",
  "against",
  "all",
  "any",
  "because",
  "before",
  "below",
  "between",
  "both",
  "down",
  "during",
  "each",
  "few",
  "further",
  "just"
])

/** The seeds of the specification, one per kind of feature. */
const SEED = { word: 0x9747b28c, pair: 0x5bd1e995, trigram: 0x2f0b3a49 } as const

/** The weights of the specification. */
const WEIGHT = { word: 1, pair: 0.5, trigram: 0.25 } as const

/**
 * ln n for the term frequencies the test texts have, from the decimal expansion of ln n (JavaScript reads a decimal
 * literal with correct rounding): `Math.log` is not exactly specified, so it is kept out of the reference.
 */
const LN: ReadonlyArray<number> = [
  Number.NaN,
  0,
  0.69314718055994530941723212145817656807550013436026,
  1.0986122886681096913952452369225257046474905578227,
  1.3862943611198906188344642429163531361510002687205,
  1.6094379124341003746007593332261876395256013542685,
  1.7917594692280550008124773583807022727229906921830,
  1.9459101490553133051053527434431797296370847295819,
  2.0794415416798359282516963643745297042265004030808
]

const ln = (n: number): number => {
  const value = LN[n]
  if (value === undefined) throw new RangeError(`the reference knows ln up to ${LN.length - 1}, not ${n}`)
  return value
}

const isWordCharacter = (character: string): boolean => /^[\p{L}\p{N}\p{M}]$/u.test(character)

/** The words of a text: runs of letters, digits and marks of its NFKC, lower-cased form (code point by code point). */
export const words = (text: string): Array<string> => {
  const out: Array<string> = []
  let current = ""
  for (const character of text.normalize("NFKC").toLowerCase()) {
    if (isWordCharacter(character)) {
      current += character
    } else if (current !== "") {
      out.push(current)
      current = ""
    }
  }
  if (current !== "") out.push(current)
  return out
}

type Kind = keyof typeof SEED

/** The features of a text with how often each occurs, by kind, in the order they first occur. */
const features = (text: string): ReadonlyArray<readonly [Kind, Map<string, number>]> => {
  const all = words(text)
  const content = all.filter((word) => !STOP_WORDS.has(word))
  const kept = content.length > 0 ? content : all
  const byKind: Record<Kind, Map<string, number>> = { word: new Map(), pair: new Map(), trigram: new Map() }
  const add = (kind: Kind, feature: string) => byKind[kind].set(feature, (byKind[kind].get(feature) ?? 0) + 1)
  kept.forEach((word) => add("word", word))
  for (let i = 0; i + 1 < kept.length; i++) add("pair", `${kept[i]} ${kept[i + 1]}`)
  for (const word of kept) {
    if (word.length < 2) continue
    const bounded = `^${word}$`
    for (let start = 0; start + 3 <= bounded.length; start++) add("trigram", bounded.substring(start, start + 3))
  }
  return [["word", byKind.word], ["pair", byKind.pair], ["trigram", byKind.trigram]]
}

/** The vector of `text` in `dimensions` dimensions, as the specification defines it. */
export const embed = (text: string, dimensions: number): Float32Array => {
  const sums = new Array<number>(dimensions).fill(0)
  for (const [kind, counts] of features(text)) {
    for (const [feature, tf] of counts) {
      const hash = murmur3(utf16le(feature), SEED[kind])
      const sign = hash < 0x80000000 ? 1 : -1
      sums[hash % dimensions]! += sign * WEIGHT[kind] * (1 + ln(tf))
    }
  }
  let squares = 0
  for (const x of sums) squares += x * x
  const out = new Float32Array(dimensions)
  if (squares === 0) return out
  const length = Math.sqrt(squares)
  sums.forEach((x, i) => (out[i] = x / length))
  return out
}
