import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Ref } from "effect"
import { vi } from "vitest"
import { Embedder } from "../src/index.js"
import * as reference from "./reference/embedder.js"

const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0))

/** The bits of each float32: equal arrays are equal bit for bit (signed zeros and NaNs included). */
const bits = (vector: Float32Array) => Array.from(new Uint32Array(vector.buffer, vector.byteOffset, vector.length))

/**
 * Texts for the reference: the old fingerprint's, stop words dropped or all kept, NFKC (compatibility forms,
 * ligatures, combining marks, full-width letters), case mapping beyond ASCII, digits, one-character words, letters
 * outside the BMP (two UTF-16 code units), repeated words (term frequencies up to 8), empty and word-less texts.
 */
const REFERENCE_TEXTS: ReadonlyArray<string> = [
  "The quick brown fox jumps over the lazy dog",
  "hello world",
  "How do I configure the circuit breaker timeout?",
  "The circuit breaker opens after five failures; its timeout is configurable with BREAKER_TIMEOUT.",
  "to be or not to be",
  "Café RESILIENCE",
  "the cafe\u0301 resilience",
  "naïve café 東京 2024",
  "ＦＵＬＬ－ＷＩＤＴＨ ﬁle ① Ⅻ ㎏",
  "İstanbul ΣΊΣΥΦΟΣ Straße ǅemal",
  "x y z 7 é",
  "𠀀𠀁 𝒜𝒷𝒸 𐐀𐐨",
  "data data data data pipeline pipeline data data data data",
  "chunk 7 of a large document about tenants and vectors",
  "Postgres stores the events of every tenant in one table. Qdrant stores the vectors of every tenant in one " +
  "collection, partitioned by tenant: every tenant's vectors, every tenant's events.",
  "a an the of",
  "  ... !!! ",
  ""
]

describe("Embedder (local feature hashing)", () => {
  it.effect("has a stable id and the configured size", () =>
    Effect.gen(function*() {
      const embedder = yield* Embedder.Embedder
      assert.strictEqual(embedder.id, "local:fh-384")
      assert.strictEqual(embedder.dimensions, 384)
      const [v] = yield* embedder.embed(["hello world"])
      assert.strictEqual(v!.length, 384)
    }).pipe(Effect.provide(Embedder.layerLocal())))

  it.effect("honours dimensions", () =>
    Effect.gen(function*() {
      const embedder = yield* Embedder.Embedder
      assert.strictEqual(embedder.id, "local:fh-64")
      const vectors = yield* embedder.embed(["a b c", "d e f"])
      assert.deepStrictEqual(vectors.map((v) => v.length), [64, 64])
    }).pipe(Effect.provide(Embedder.layerLocal({ dimensions: 64 }))))

  // Was: a fingerprint of one vector, copied from the implementation's own output. Now the expected vectors come from
  // the reference below, written from the specification; its hash is checked against published test vectors, and it
  // uses no arithmetic that may differ between platforms (BigInt hashing, ln from its decimal expansion, and IEEE 754
  // sums, products, quotients, square roots and float32 rounding, which are exact by definition): the vectors it gives
  // are the same on every process and platform, and `hashEmbed` must give them bit for bit. (Unicode's tables, which
  // both use through `normalize`, `toLowerCase` and `\p{…}`, are the one shared input: the texts only use characters
  // assigned long ago.)
  it("is deterministic and equals a reference written from its specification, bit for bit, on every platform", () => {
    const a = Embedder.hashEmbed("The quick brown fox jumps over the lazy dog")
    const b = Embedder.hashEmbed("The quick brown fox jumps over the lazy dog")
    assert.deepStrictEqual(Array.from(a), Array.from(b))
    for (const text of REFERENCE_TEXTS) {
      assert.deepStrictEqual(bits(Embedder.hashEmbed(text)), bits(reference.embed(text, 384)), JSON.stringify(text))
      for (const dimensions of [1, 7, 64, 1000]) {
        assert.deepStrictEqual(
          bits(Embedder.hashEmbed(text, dimensions)),
          bits(reference.embed(text, dimensions)),
          `${JSON.stringify(text)} in ${dimensions} dimensions`
        )
      }
    }
    // The reference is not vacuous: it applies the rules the texts exercise.
    const vector = (text: string) => Array.from(reference.embed(text, 384))
    assert.deepStrictEqual(vector("Café RESILIENCE"), vector("the cafe\u0301 resilience"), "NFKC, case, stop words")
    assert.deepStrictEqual(vector("to be"), vector("TO BE"), "case")
    assert.notDeepEqual(vector("to be"), vector(""), "only stop words: all are kept")
  })

  it("the reference's MurmurHash3 matches the published test vectors", () => {
    const utf8 = (text: string) => new TextEncoder().encode(text)
    // The test vectors of Wikipedia's MurmurHash article, found in the test suites of many ports.
    const vectors: ReadonlyArray<readonly [Uint8Array, number, number]> = [
      [utf8(""), 0, 0],
      [utf8(""), 1, 0x514e28b7],
      [utf8(""), 0xffffffff, 0x81f16f39],
      [utf8("test"), 0, 0xba6bd213],
      [utf8("test"), 0x9747b28c, 0x704b81dc],
      [utf8("Hello, world!"), 0, 0xc0363e43],
      [utf8("Hello, world!"), 0x9747b28c, 0x24884cba],
      [utf8("The quick brown fox jumps over the lazy dog"), 0, 0x2e4ff723],
      [utf8("The quick brown fox jumps over the lazy dog"), 0x9747b28c, 0x2fa826cd],
      // Tails of 1 to 3 bytes, bytes over 0x7f, 256 bytes: Ian Boyd's widely copied set (Stack Overflow, "MurmurHash3
      // test vectors"), found in the test suites of Go and C ports.
      [Uint8Array.of(0xff, 0xff, 0xff, 0xff), 0, 0x76293b50],
      [Uint8Array.of(0x21, 0x43, 0x65, 0x87), 0, 0xf55b516b],
      [Uint8Array.of(0x21, 0x43, 0x65, 0x87), 0x5082edee, 0x2362f9de],
      [Uint8Array.of(0x21, 0x43, 0x65), 0, 0x7e4a8634],
      [Uint8Array.of(0x21, 0x43), 0, 0xa0f7b07a],
      [Uint8Array.of(0x21), 0, 0x72661cf4],
      [Uint8Array.of(0, 0, 0, 0), 0, 0x2362f9de],
      [Uint8Array.of(0, 0, 0), 0, 0x85f0b427],
      [Uint8Array.of(0, 0), 0, 0x30f4c306],
      [Uint8Array.of(0), 0, 0x514e28b7],
      [utf8("aaaa"), 0x9747b28c, 0x5a97808a],
      [utf8("aaa"), 0x9747b28c, 0x283e0130],
      [utf8("aa"), 0x9747b28c, 0x5d211726],
      [utf8("a"), 0x9747b28c, 0x7fa09ea6],
      [utf8("abcd"), 0x9747b28c, 0xf0478627],
      [utf8("abc"), 0x9747b28c, 0xc84a62dd],
      [utf8("ab"), 0x9747b28c, 0x74875592],
      [utf8("ππππππππ"), 0x9747b28c, 0xd58063c1],
      [utf8("a".repeat(256)), 0x9747b28c, 0x37405bdc]
    ]
    for (const [bytes, seed, expected] of vectors) {
      assert.strictEqual(reference.murmur3(bytes, seed), expected, `${Array.from(bytes).join(",")} seed ${seed}`)
    }
    // SMHasher's verification value for MurmurHash3_x86_32 ("Murmur3A"): hash the keys {}, {0}, {0, 1}, …,
    // {0, …, 254} with seed 256 - length, then the 1024 bytes of those hashes (little-endian) with seed 0.
    const hashes = new Uint8Array(256 * 4)
    const view = new DataView(hashes.buffer)
    const key = Uint8Array.from({ length: 256 }, (_, i) => i)
    for (let i = 0; i < 256; i++) view.setUint32(i * 4, reference.murmur3(key.subarray(0, i), 256 - i), true)
    assert.strictEqual(reference.murmur3(hashes, 0), 0xb0f57ee3)
  })

  it("is L2-normalised, and the zero vector for a text without words", () => {
    for (const text of ["hello", "Retrieval augmented generation over Qdrant", "naïve café 東京 2024"]) {
      assert.approximately(norm(Embedder.hashEmbed(text)), 1, 1e-6)
    }
    assert.strictEqual(norm(Embedder.hashEmbed("  ... !!! ")), 0)
    assert.strictEqual(Embedder.cosine(Embedder.hashEmbed(""), Embedder.hashEmbed("hello")), 0)
  })

  it("puts similar texts closer than unrelated ones", () => {
    const e = (t: string) => Embedder.hashEmbed(t)
    const query = e("How do I configure the circuit breaker timeout?")
    const related = e("The circuit breaker opens after five failures; its timeout is configurable.")
    const unrelated = e("Postgres stores the events of every tenant in one table.")
    assert.isAbove(Embedder.cosine(query, related), Embedder.cosine(query, unrelated) + 0.2)
    const cat = e("The cat sat on the mat")
    assert.isAbove(Embedder.cosine(cat, e("A cat was sitting on a mat")), 0.4)
    assert.isBelow(Math.abs(Embedder.cosine(cat, e("Quarterly revenue grew in the banking sector"))), 0.15)
  })

  it("ignores case, Unicode normal form and stop words", () => {
    const a = Embedder.hashEmbed("Café RESILIENCE")
    const b = Embedder.hashEmbed("the cafe\u0301 resilience")
    assert.approximately(Embedder.cosine(a, b), 1, 1e-6)
  })
})

describe("Embedder (local) on large inputs", () => {
  const texts = Array.from({ length: 3000 }, (_, i) => `chunk ${i} of a large document about tenants and vectors`)

  it.effect("gives other fibers turns between texts, and the vectors are those of hashEmbed one by one", () =>
    Effect.gen(function*() {
      const embedder = Embedder.makeLocal({ maxBlockingMillis: 0 })
      const turns = yield* Ref.make(0)
      const other = yield* Effect.forkChild(
        Effect.forever(Effect.andThen(Effect.yieldNow, Ref.update(turns, (n) => n + 1)))
      )
      const vectors = yield* embedder.embed(texts.slice(0, 200))
      const during = yield* Ref.get(turns)
      yield* Fiber.interrupt(other)
      // 0 ms slices end after every text, and the other fiber runs between them (once every one or two texts, as
      // Effect's scheduler batches its tasks); one synchronous step would give it no turn at all.
      assert.isAtLeast(during, 50)
      assert.strictEqual(vectors.length, 200)
      vectors.forEach((vector, i) => assert.deepStrictEqual(vector, Embedder.hashEmbed(texts[i]!), `text ${i}`))
    }))

  // Slices are measured with `performance.now`. Was: its real readings, so a machine fast enough to embed the input in
  // one 10 ms slice never gave the event loop back, and failed. Now each reading advances it by 1 ms: the default
  // slices end every few texts on any machine, and the event loop gets control between them.
  it.effect("with the default slices, a Node timer fires while a large input is embedded", () =>
    Effect.gen(function*() {
      let readings = 0
      const now = vi.spyOn(performance, "now").mockImplementation(() => ++readings)
      yield* Effect.addFinalizer(() => Effect.sync(() => now.mockRestore()))
      const embedder = Embedder.makeLocal()
      const timer = { fired: false }
      // Set right before the embedding starts: it can only fire if the embedder gives the event loop back.
      const vectors = yield* Effect.andThen(
        Effect.sync(() => setTimeout(() => (timer.fired = true), 0)),
        embedder.embed(texts)
      )
      const firedBeforeTheEnd = timer.fired
      assert.isAbove(readings, 3000, "the slices were measured with performance.now")
      assert.isTrue(firedBeforeTheEnd, "the event loop ran timers during the embedding")
      assert.deepStrictEqual(vectors[2999], Embedder.hashEmbed(texts[2999]!))
    }))
})
