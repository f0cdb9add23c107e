import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { Llm, Prompts } from "../src/index.js"

const passages: ReadonlyArray<Llm.Passage> = [
  { id: "events", text: "Postgres stores the events. Each tenant has its own stream of events.", score: 0.41 },
  {
    id: "breaker",
    documentId: "doc-7",
    text: "The circuit breaker opens after five failures. Its timeout is configurable with BREAKER_TIMEOUT. " +
      "Dogs bark at night.",
    score: 0.83
  }
]

describe("Llm (local extractive)", () => {
  it.effect("answer quotes the best passage with its reference and is degraded", () =>
    Effect.gen(function*() {
      const llm = yield* Llm.Llm
      const answer = yield* llm.answer("How do I configure the circuit breaker timeout?", passages)
      assert.isTrue(answer.degraded)
      assert.strictEqual(answer.model, "local:extractive")
      const quotes = answer.answer.split("\n").filter((line) => line.startsWith("> "))
      assert.strictEqual(quotes[0], "> Its timeout is configurable with BREAKER_TIMEOUT. [2]")
      assert.include(answer.answer, "The circuit breaker opens after five failures. [2]")
      assert.notInclude(answer.answer, "Dogs bark")
      assert.notInclude(answer.answer, "Postgres")
      assert.deepStrictEqual(answer.citations, ["breaker"])
    }).pipe(Effect.provide(Llm.layerLocal)))

  it.effect("says it cannot answer without a matching passage", () =>
    Effect.gen(function*() {
      const llm = yield* Llm.Llm
      const none = yield* llm.answer("What is the capital of France?", [])
      assert.strictEqual(none.answer, Llm.cannotAnswer)
      assert.isTrue(none.degraded)
      const unrelated = yield* llm.answer("What is the capital of France?", passages)
      assert.strictEqual(unrelated.answer, Llm.cannotAnswer)
      assert.deepStrictEqual(unrelated.citations, [])
    }).pipe(Effect.provide(Llm.layerLocal)))

  it("does not quote the same sentence twice (overlapping chunks)", () => {
    const repeated = [passages[1]!, { ...passages[1]!, id: "breaker-overlap" }]
    const answer = Llm.extractiveAnswer("circuit breaker timeout", repeated)
    const quotes = answer.answer.split("\n").filter((line) => line.startsWith("> "))
    assert.strictEqual(new Set(quotes.map((q) => q.replace(/ \[\d+\]$/, ""))).size, quotes.length)
    assert.strictEqual(quotes.length, 2)
  })

  it.effect("runs the draft → critique → improve pipeline extractively", () =>
    Effect.gen(function*() {
      const llm = yield* Llm.Llm
      const context = passages.map((p) => p.text).join("\n\n")
      const draft = yield* llm.generate(Prompts.draft("circuit breaker", context))
      assert.isTrue(draft.degraded)
      assert.include(draft.content, "The circuit breaker opens after five failures.")
      assert.notInclude(draft.content, "Postgres")
      const wrong = draft.content + " Circuit breakers are made of cheese."
      const critique = yield* llm.generate(Prompts.critique("circuit breaker", wrong, context))
      assert.include(critique.content, "Not supported by the context:\n- Circuit breakers are made of cheese.")
      const improved = yield* llm.generate(Prompts.improve("circuit breaker", wrong, critique.content, context))
      assert.notInclude(improved.content, "cheese")
      assert.include(improved.content, "The circuit breaker opens after five failures.")
    }).pipe(Effect.provide(Llm.layerLocal)))

  it.effect("chat on a plain prompt summarises extractively and streams the same text", () =>
    Effect.gen(function*() {
      const llm = yield* Llm.Llm
      const request: Llm.ChatRequest = {
        messages: [{
          role: "user",
          content: "Summarise the rate limiter. The rate limiter uses a token bucket. Bananas are yellow. " +
            "Each rate limiter policy has a key."
        }]
      }
      const reply = yield* llm.chat(request)
      assert.isTrue(reply.degraded)
      assert.strictEqual(reply.content, "The rate limiter uses a token bucket. Each rate limiter policy has a key.")
      const streamed = yield* Stream.runCollect(llm.chatStream(request))
      assert.isAbove(streamed.length, 1)
      assert.strictEqual(streamed.join(""), reply.content)
    }).pipe(Effect.provide(Llm.layerLocal)))

  it("citedPassages maps [n] to passage ids in first-cited order", () => {
    assert.deepStrictEqual(Llm.citedPassages("See [2] and [1, 2]; not [9].", passages), ["breaker", "events"])
  })
})

describe("Prompts", () => {
  it("numbers passages, names documents and keeps within the budget", () => {
    const [system, user] = Prompts.answer("Why?", passages, { maxContextChars: 120 })
    assert.strictEqual(system!.role, "system")
    const sections = Prompts.parseSections(user!.content)
    assert.strictEqual(sections.Question, "Why?")
    assert.isTrue(sections.Passages!.startsWith("[1] Postgres stores the events."))
    assert.include(sections.Passages!, "[2] (document doc-7)")
    assert.isAtMost(sections.Passages!.length, 130)
  })

  it("lays out draft, critique and improve in sections", () => {
    const improve = Prompts.improve("Topic A", "The draft.", "The critique.", "Some context.\n\nMore context.")
    const sections = Prompts.parseSections(improve[1]!.content)
    assert.deepStrictEqual(
      [sections.Topic, sections.Draft, sections.Critique, sections.Context],
      ["Topic A", "The draft.", "The critique.", "Some context.\n\nMore context."]
    )
    assert.isString(sections.Task)
    assert.isUndefined(Prompts.parseSections(Prompts.draft("T", "")[1]!.content).Context)
  })
})
