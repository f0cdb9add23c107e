// Edge cases of the NDJSON chat stream that a well-behaved server (or the stand-in) never produces: an error line in
// the middle, a stream cut short, a malformed line, a server that stops sending after the headers. A scripted
// HttpClient answers with fixed bytes; the clock is the TestClock.
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Fiber, Latch, Layer, Stream } from "effect"
import { HttpClient, HttpClientResponse } from "effect/http"
import { TestClock } from "effect/testing"
import { Llm, Ollama } from "../src/index.js"

const encoder = new TextEncoder()

const scripted = (body: () => ReadableStream<Uint8Array>, status = 200) =>
  Layer.succeed(
    HttpClient.HttpClient,
    HttpClient.make((request) =>
      Effect.succeed(
        HttpClientResponse.fromWeb(
          request,
          new Response(body(), { status, headers: { "content-type": "application/x-ndjson" } })
        )
      )
    )
  )

const lines = (...items: ReadonlyArray<string>) => () =>
  new ReadableStream<Uint8Array>({
    start(controller) {
      // Split across chunk boundaries on purpose: lines must be reassembled.
      const all = encoder.encode(items.join(""))
      for (let i = 0; i < all.length; i += 7) controller.enqueue(all.slice(i, i + 7))
      controller.close()
    }
  })

const chunk = (content: string, done = false) =>
  JSON.stringify({
    model: "m",
    message: { role: "assistant", content },
    done,
    ...(done ? { eval_count: 2, prompt_eval_count: 3 } : {})
  }) + "\n"

const llmWith = (client: Layer.Layer<HttpClient.HttpClient>) =>
  Layer.build(
    Ollama.layerWithClient({
      url: "http://ollama.test",
      model: "m",
      embedModel: "e",
      embedDimensions: 4,
      timeout: "10 seconds"
    }).pipe(Layer.provide(client))
  ).pipe(Effect.map((context) => Context.get(context, Llm.Llm)))

const request: Llm.ChatRequest = { messages: [{ role: "user", content: "hi" }] }

describe("Ollama chat stream", () => {
  it.effect("reassembles lines split across chunks, with CRLF and blank lines", () =>
    Effect.gen(function*() {
      const crlf = chunk("lo ").replace("\n", "\r\n")
      const llm = yield* llmWith(scripted(lines(chunk("Hel"), "\r\n", crlf, chunk("world"), chunk("", true))))
      const reply = yield* llm.chat(request)
      assert.strictEqual(reply.content, "Hello world")
      assert.deepStrictEqual(reply.usage, { promptTokens: 3, completionTokens: 2 })
      const pieces = yield* Stream.runCollect(llm.chatStream(request))
      assert.deepStrictEqual(pieces, ["Hel", "lo ", "world"])
    }))

  it.effect("an error line fails with LlmUnavailable after the pieces before it", () =>
    Effect.gen(function*() {
      const llm = yield* llmWith(scripted(lines(chunk("partial"), JSON.stringify({ error: "out of memory" }) + "\n")))
      const seen: Array<string> = []
      const error = yield* Effect.flip(
        Stream.runForEach(llm.chatStream(request), (s) => Effect.sync(() => seen.push(s)))
      )
      assert.deepStrictEqual(seen, ["partial"])
      assert.strictEqual(error._tag, "LlmUnavailable")
      assert.include(error.message, "out of memory")
    }))

  it.effect("a stream cut short is LlmUnavailable; a malformed line is InvalidResponse", () =>
    Effect.gen(function*() {
      const cut = yield* llmWith(scripted(lines(chunk("no done line"))))
      const error = yield* Effect.flip(cut.chat(request))
      assert.deepStrictEqual([error._tag, error.retryable], ["LlmUnavailable", true])
      assert.include(error.message, "ended early")
      const malformed = yield* llmWith(scripted(lines(chunk("a"), "{not json\n", chunk("", true))))
      const invalid = yield* Effect.flip(malformed.chat(request))
      assert.deepStrictEqual([invalid._tag, invalid.retryable], ["InvalidResponse", false])
    }))

  it.effect("stops at the done line", () =>
    Effect.gen(function*() {
      const llm = yield* llmWith(scripted(lines(chunk("a"), chunk("", true), chunk("ignored"))))
      assert.strictEqual((yield* llm.chat(request)).content, "a")
    }))

  it.effect("times out when the server goes quiet after the headers", () =>
    Effect.gen(function*() {
      let cancelled = false
      // Opened when the client waits for the chunk after "first" (with no queue, `pull` means a read is pending):
      // the clock is only moved once the per-chunk timeout runs.
      const quiet = Latch.makeUnsafe(false)
      const silent = () =>
        new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(encoder.encode(chunk("first")))
          },
          pull() {
            quiet.openUnsafe()
          },
          cancel() {
            cancelled = true
          }
        }, { highWaterMark: 0 })
      const llm = yield* llmWith(scripted(silent))
      const fiber = yield* Effect.forkChild(Effect.flip(llm.chat(request)))
      yield* quiet.await
      yield* TestClock.adjust("9 seconds")
      assert.isUndefined(fiber.pollUnsafe(), "still waiting before the timeout")
      yield* TestClock.adjust("2 seconds")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag, "LlmUnavailable")
      assert.include(error.message, "no response within 10s")
      assert.isTrue(cancelled, "the body stream was cancelled")
    }))

  it.effect("a non-2xx status is mapped before the body is streamed", () =>
    Effect.gen(function*() {
      const body = () =>
        new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(encoder.encode(JSON.stringify({ error: "model \"m\" not found, try pulling it first" })))
            c.close()
          }
        })
      const llm = yield* llmWith(scripted(body, 404))
      const error = yield* Effect.flip(Stream.runDrain(llm.chatStream(request)))
      assert.strictEqual(error._tag, "ModelNotFound")
      assert.include(error.message, "try pulling it first")
    }))
})
