import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Ref } from "effect"
import { Embedder } from "../src/index.js"

const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0))

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

  it("is deterministic: pinned values do not drift across processes or platforms", () => {
    const a = Embedder.hashEmbed("The quick brown fox jumps over the lazy dog")
    const b = Embedder.hashEmbed("The quick brown fox jumps over the lazy dog")
    assert.deepStrictEqual(Array.from(a), Array.from(b))
    // A fingerprint of the vector: changing the algorithm must change `localId`, and this test says so.
    const fingerprint = Array.from(a).reduce((h, x, i) => (h + Math.round(x * 1e6) * (i + 1)) | 0, 0)
    assert.strictEqual(fingerprint, FINGERPRINT)
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

const FINGERPRINT = -340313538

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

  it.effect("with the default slices, a Node timer fires while a large input is embedded", () =>
    Effect.gen(function*() {
      const embedder = Embedder.makeLocal()
      const timer = { fired: false }
      // Set right before the embedding starts: it can only fire if the embedder gives the event loop back.
      const vectors = yield* Effect.andThen(
        Effect.sync(() => setTimeout(() => (timer.fired = true), 0)),
        embedder.embed(texts)
      )
      const firedBeforeTheEnd = timer.fired
      assert.isTrue(firedBeforeTheEnd, "the event loop ran timers during the embedding")
      assert.deepStrictEqual(vectors[2999], Embedder.hashEmbed(texts[2999]!))
    }))
})
