import { assert, describe, it } from "@effect/vitest"
import * as OllamaStandIn from "@ouroboros/testkit/OllamaStandIn"
import { Context, Duration, Effect, Exit, Fiber, Layer, Result, Stream } from "effect"
import { FetchHttpClient } from "effect/http"
import { TestClock } from "effect/testing"
import { Embedder, Llm, LlmError, Ollama } from "../src/index.js"

const base = { model: "llama3.2", embedModel: "nomic-embed-text" } as const

const build = (options: Ollama.Options, layer: typeof Ollama.layer = Ollama.layer) =>
  Effect.map(Layer.build(layer(options)), (context) => ({
    llm: Context.get(context, Llm.Llm),
    embedder: Context.get(context, Embedder.Embedder)
  }))

/**
 * Polls `condition` until it holds, pausing on the real clock (a test on the `TestClock` only moves that clock when
 * it says so); the deadline only bounds the test.
 */
const until = (condition: () => boolean, what: string) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 20_000
    while (!condition()) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`never: ${what}`))
      yield* TestClock.withLive(Effect.sleep("5 millis"))
    }
  })

/** Runs `effect` with a deadline on the real clock that only bounds the test. */
const bounded = <A, E, R>(effect: Effect.Effect<A, E, R>, what: string) =>
  TestClock.withLive(Effect.timeoutOrElse(effect, {
    duration: "20 seconds",
    orElse: () => Effect.die(new Error(`no answer: ${what}`))
  }))

const answerText = "Effect is a TypeScript library for typed, composable programs. It has layers [1]."

describe("Ollama adapter (through the Ollama stand-in)", () => {
  it.live("probes the embedding size and embeds in order", () =>
    Effect.gen(function*() {
      const ollama = yield* OllamaStandIn.scoped({ embeddingDimensions: 16 })
      const { embedder } = yield* build({ ...base, url: ollama.url })
      assert.strictEqual(embedder.id, "ollama:nomic-embed-text")
      assert.strictEqual(embedder.dimensions, 16)
      ollama.clearRequests()
      const vectors = yield* embedder.embed(["alpha beta", "gamma"])
      assert.strictEqual(vectors.length, 2)
      const expected = Float32Array.from(OllamaStandIn.embedding("gamma", 16))
      assert.deepStrictEqual(Array.from(vectors[1]!), Array.from(expected))
      assert.deepStrictEqual(ollama.requests.map((r) => [r.method, r.path]), [["POST", "/api/embed"]])
      assert.deepStrictEqual(ollama.requests[0]!.body, { model: "nomic-embed-text", input: ["alpha beta", "gamma"] })
    }))

  it.live("batches, and prefixes inputs by purpose for nomic-embed models", () =>
    Effect.gen(function*() {
      const ollama = yield* OllamaStandIn.scoped({ embeddingDimensions: 8 })
      const { embedder } = yield* build({ ...base, url: ollama.url, embedDimensions: 8, batchSize: 2 })
      assert.strictEqual(ollama.requests.length, 0, "no probe when the size is configured")
      const vectors = yield* embedder.embed(["a", "b", "c"], { purpose: "query" })
      assert.strictEqual(vectors.length, 3)
      assert.deepStrictEqual(
        ollama.requests.map((r) => (r.body as { input: Array<string> }).input),
        [["search_query: a", "search_query: b"], ["search_query: c"]]
      )
    }))

  it.live("reports an embedding of the wrong size as InvalidResponse", () =>
    Effect.gen(function*() {
      const ollama = yield* OllamaStandIn.scoped({ embeddingDimensions: 8 })
      const { embedder } = yield* build({ ...base, url: ollama.url, embedDimensions: 12 })
      const error = yield* Effect.flip(embedder.embed(["x"]))
      assert.strictEqual(error._tag, "InvalidResponse")
      assert.include(error.message, "returned 8 dimensions, expected 12")
    }))

  it.live("chat streams NDJSON and assembles the whole answer", () =>
    Effect.gen(function*() {
      const ollama = yield* OllamaStandIn.scoped({ chatResponder: () => answerText })
      const { llm } = yield* build({ ...base, url: ollama.url, embedDimensions: 768 })
      assert.strictEqual(llm.id, "ollama:llama3.2")
      const reply = yield* llm.chat({ messages: [{ role: "user", content: "What is Effect?" }], temperature: 0.1 })
      assert.strictEqual(reply.content, answerText)
      assert.isFalse(reply.degraded)
      assert.strictEqual(reply.model, "llama3.2:latest")
      assert.isDefined(reply.usage)
      assert.isAbove(reply.usage!.completionTokens, 1)
      const body = ollama.requests.at(-1)!.body as Record<string, unknown>
      assert.strictEqual(body.stream, true)
      assert.deepStrictEqual(body.options, { temperature: 0.1 })

      const pieces = yield* Stream.runCollect(llm.chatStream({ messages: [{ role: "user", content: "Again?" }] }))
      assert.isAbove(pieces.length, 3, "the answer arrives in several chunks")
      assert.strictEqual(pieces.join(""), answerText)
    }))

  it.live("answer sends the numbered passages and maps citations", () =>
    Effect.gen(function*() {
      const ollama = yield* OllamaStandIn.scoped({ chatResponder: () => answerText })
      const { llm } = yield* build({ ...base, url: ollama.url, embedDimensions: 768 })
      const passages = [{ id: "c-1", text: "Effect is a TypeScript library.", score: 0.9, documentId: "d1" }]
      const answer = yield* llm.answer("What is Effect?", passages)
      assert.isFalse(answer.degraded)
      assert.deepStrictEqual(answer.citations, ["c-1"])
      // The tokens Ollama counted reach the caller (quotas and usage metering rely on them).
      assert.isDefined(answer.usage)
      assert.isAbove(answer.usage!.promptTokens, 0)
      assert.isAbove(answer.usage!.completionTokens, 0)
      const sent = (ollama.requests.at(-1)!.body as { messages: Array<Llm.Message> }).messages
      assert.strictEqual(sent[0]!.role, "system")
      assert.include(sent[1]!.content, "[1] (document d1) Effect is a TypeScript library.")
      const requestsBefore = ollama.requests.length
      const none = yield* llm.answer("What is Effect?", [])
      assert.deepStrictEqual(none.citations, [])
      assert.isUndefined(none.usage, "no model call, nothing counted")
      assert.strictEqual(ollama.requests.length, requestsBefore, "no passages: no model call")
    }))

  it.live("an unknown model is ModelNotFound, not retryable", () =>
    Effect.gen(function*() {
      const ollama = yield* OllamaStandIn.scoped()
      const { llm } = yield* build({ ...base, url: ollama.url, embedModel: "missing-embed", embedDimensions: 4 })
      const chat = yield* Effect.flip(llm.chat({ messages: [{ role: "user", content: "hi" }], model: "nope" }))
      assert.strictEqual(chat._tag, "ModelNotFound")
      assert.strictEqual((chat as LlmError.ModelNotFound).model, "nope")
      assert.isFalse(chat.retryable)
      assert.isFalse(LlmError.isRetryable(chat))
      const stream = yield* Effect.flip(Stream.runDrain(llm.chatStream({ messages: [], model: "nope" })))
      assert.strictEqual(stream._tag, "ModelNotFound")
    }).pipe(
      Effect.flatMap(() =>
        Effect.gen(function*() {
          const ollama = yield* OllamaStandIn.scoped()
          const { embedder } = yield* build({
            ...base,
            url: ollama.url,
            embedModel: "missing-embed",
            embedDimensions: 4
          })
          const error = yield* Effect.flip(embedder.embed(["x"]))
          assert.strictEqual(error._tag, "ModelNotFound")
        })
      )
    ))

  it.live("server errors and refused connections are LlmUnavailable, retryable", () =>
    Effect.gen(function*() {
      const ollama = yield* OllamaStandIn.scoped()
      const { embedder, llm } = yield* build({ ...base, url: ollama.url, embedDimensions: 768 })
      ollama.faults.set({ errorRate: 1 })
      const chat = yield* Effect.flip(llm.chat({ messages: [{ role: "user", content: "hi" }] }))
      assert.strictEqual(chat._tag, "LlmUnavailable")
      assert.isTrue(chat.retryable)
      assert.strictEqual((chat as LlmError.LlmUnavailable).status, 500)
      ollama.faults.set({ errorRate: 1, errorStatus: 503 })
      const embed = yield* Effect.flip(embedder.embed(["x"]))
      assert.deepStrictEqual([embed._tag, (embed as LlmError.LlmUnavailable).status], ["LlmUnavailable", 503])
      ollama.faults.set({ errorRate: 1, errorStatus: 400 })
      const rejected = yield* Effect.flip(embedder.embed(["x"]))
      assert.deepStrictEqual([rejected._tag, rejected.retryable], ["InvalidRequest", false])
      ollama.faults.reset()
      ollama.faults.set({ refuse: true })
      const refused = yield* Effect.flip(llm.chat({ messages: [{ role: "user", content: "hi" }] }))
      assert.deepStrictEqual(
        [refused._tag, (refused as LlmError.LlmUnavailable).reason],
        ["LlmUnavailable", "connection"]
      )
      assert.isTrue(LlmError.isRetryable(refused))
    }))

  // On the TestClock: the 200 ms timeout passes when the test moves the clock, so "in time" means "when the timeout
  // has passed on the clock, and not before", whatever the machine's speed. Was "it took 190 ms to 2 s of wall clock";
  // how fast a real timeout fires on a real machine is not tested. The stand-in's `hanging` count tells when a request
  // really hangs there, and when the stand-in has seen its client go away (the request was aborted, not abandoned).
  it.effect("a hung server times out in time and the request is aborted", () =>
    Effect.gen(function*() {
      const ollama = yield* OllamaStandIn.scoped()
      const signals: Array<AbortSignal> = []
      const spy: typeof fetch = (input, init) => {
        if (init?.signal) signals.push(init.signal)
        return globalThis.fetch(input, init)
      }
      const layer = (options: Ollama.Options) =>
        Ollama.layerWithClient(options).pipe(
          Layer.provide(FetchHttpClient.layer),
          Layer.provide(Layer.succeed(FetchHttpClient.Fetch, spy))
        )
      const { embedder, llm } = yield* build(
        { ...base, url: ollama.url, embedDimensions: 768, timeout: "200 millis" },
        layer
      )
      ollama.faults.set({ hang: true })
      const chatFiber = yield* Effect.forkChild(
        Effect.timed(Effect.flip(llm.chat({ messages: [{ role: "user", content: "hi" }] }))),
        { startImmediately: true }
      )
      yield* until(() => ollama.hanging === 1, "the chat request hangs at the stand-in")
      yield* TestClock.adjust("199 millis")
      assert.isUndefined(chatFiber.pollUnsafe(), "no timeout before 200 ms")
      yield* TestClock.adjust("1 millis")
      const [elapsed, chat] = yield* bounded(Fiber.join(chatFiber), "the chat call ends at its timeout")
      assert.deepStrictEqual([chat._tag, (chat as LlmError.LlmUnavailable).reason], ["LlmUnavailable", "timeout"])
      assert.strictEqual(Duration.toMillis(elapsed), 200, "it ended when its timeout had passed (test clock)")
      yield* until(() => ollama.hanging === 0, "the stand-in sees the chat request go away")

      const embedFiber = yield* Effect.forkChild(Effect.flip(embedder.embed(["x"])), { startImmediately: true })
      yield* until(() => ollama.hanging === 1, "the embed request hangs at the stand-in")
      yield* TestClock.adjust("200 millis")
      const embed = yield* bounded(Fiber.join(embedFiber), "the embed call ends at its timeout")
      assert.strictEqual((embed as LlmError.LlmUnavailable).reason, "timeout")
      yield* until(() => ollama.hanging === 0, "the stand-in sees the embed request go away")
      assert.strictEqual(signals.length, 2)
      assert.isTrue(signals.every((s) => s.aborted), "both requests were aborted")
      assert.strictEqual(ollama.requests.length, 2, "both requests reached the server")

      // Interrupting a stream consumer aborts the request too.
      const fiber = yield* Effect.forkChild(
        Stream.runDrain(llm.chatStream({ messages: [{ role: "user", content: "x" }] }))
      )
      // Wait until the request is in flight (was: until the client had sent it; now: until it hangs at the stand-in).
      yield* until(() => signals.length === 3 && ollama.hanging === 1, "the stream's request hangs at the stand-in")
      yield* Fiber.interrupt(fiber)
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.hasInterrupts(exit))
      assert.isTrue(signals[2]!.aborted)
      yield* until(() => ollama.hanging === 0, "the stand-in sees the stream's request go away")
    }))

  it.live("per-call headers and trace context reach the server", () =>
    Effect.gen(function*() {
      const ollama = yield* OllamaStandIn.scoped()
      let calls = 0
      const headers = Effect.sync(() => ({ "x-correlation-id": `corr-${++calls}` }))
      const { embedder, llm } = yield* build({ ...base, url: ollama.url, headers })
      yield* embedder.embed(["x"]).pipe(Effect.withSpan("ingest"))
      yield* llm.chat({ messages: [{ role: "user", content: "hi" }] })
      const seen = ollama.requests.map((r) => r.headers["x-correlation-id"])
      assert.deepStrictEqual(seen, ["corr-1", "corr-2", "corr-3"], "probe, embed, chat each evaluate the hook")
      assert.match(ollama.requests[1]!.headers["traceparent"] ?? "", /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/)
    }))

  it.live("probe failure: a known model falls back to its size, an unknown one fails the layer", () =>
    Effect.gen(function*() {
      const ollama = yield* OllamaStandIn.scoped()
      ollama.faults.set({ refuse: true })
      const { embedder } = yield* build({ ...base, url: ollama.url })
      assert.strictEqual(embedder.dimensions, 768)
      const failed = yield* Effect.result(build({ ...base, url: ollama.url, embedModel: "custom-embedder" }))
      assert.isTrue(Result.isFailure(failed))
      assert.strictEqual(Result.isFailure(failed) ? failed.failure._tag : "", "LlmUnavailable")
    }))

  it.live("health helpers read /api/version and /api/tags", () =>
    Effect.gen(function*() {
      const ollama = yield* OllamaStandIn.scoped({ version: "0.9.9", models: ["llama3.2", "nomic-embed-text:v1.5"] })
      const options = { url: ollama.url }
      assert.strictEqual(yield* Ollama.version(options), "0.9.9")
      const installed = yield* Ollama.models(options)
      assert.isTrue(Ollama.hasModel(installed, "llama3.2"))
      assert.isFalse(Ollama.hasModel(installed, "nomic-embed-text"))
      const report = yield* Ollama.health({ ...options, required: ["llama3.2", "nomic-embed-text", "qwen3"] })
      assert.deepStrictEqual(report.missing, ["nomic-embed-text", "qwen3"])
      ollama.faults.set({ refuse: true })
      const down = yield* Effect.flip(Ollama.health(options))
      assert.strictEqual(down._tag, "LlmUnavailable")
    }).pipe(Effect.provide(FetchHttpClient.layer)))
})
