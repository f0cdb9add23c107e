import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as OllamaStandIn from "../src/OllamaStandIn.js"

const post = (standIn: OllamaStandIn.StandIn, path: string, body: unknown) =>
  Effect.promise(() =>
    fetch(`${standIn.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body)
    })
  )

const json = <A>(response: Response) => Effect.promise(() => response.json() as Promise<A>)

const ndjson = (response: Response) =>
  Effect.promise(async () => {
    const text = await response.text()
    return text.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line) as Record<string, unknown>)
  })

const cosine = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) => a.reduce((sum, x, i) => sum + x * b[i]!, 0)

const RAG_MESSAGES = [
  {
    role: "system",
    content:
      "Answer from the context only.\n\nContext:\n[1] Ouroboros stores vectors in Qdrant.\n[2] It embeds with Ollama."
  },
  { role: "user", content: "Question: Where are vectors stored?" }
]

describe("OllamaStandIn", () => {
  it.effect("answers the root, version and tags like Ollama", () =>
    Effect.gen(function*() {
      const standIn = yield* OllamaStandIn.scoped({ version: "0.9.9" })
      const root = yield* Effect.promise(() => fetch(standIn.url).then((r) => r.text()))
      assert.strictEqual(root, "Ollama is running")
      const version = yield* json<{ version: string }>(yield* Effect.promise(() => fetch(`${standIn.url}/api/version`)))
      assert.strictEqual(version.version, "0.9.9")
      const tags = yield* json<{ models: Array<{ name: string; digest: string; details: { family: string } }> }>(
        yield* Effect.promise(() => fetch(`${standIn.url}/api/tags`))
      )
      assert.deepStrictEqual(tags.models.map((m) => m.name), ["llama3.2:latest", "nomic-embed-text:latest"])
      assert.match(tags.models[0]!.digest, /^[0-9a-f]{64}$/)
      const show = yield* json<{ capabilities: Array<string> }>(
        yield* post(standIn, "/api/show", { model: "llama3.2" })
      )
      assert.deepStrictEqual(show.capabilities, ["completion"])
    }))

  it.effect("embeds deterministically, normalised, with similar texts closer", () =>
    Effect.gen(function*() {
      const standIn = yield* OllamaStandIn.scoped({ embeddingDimensions: 64 })
      const response = yield* post(standIn, "/api/embed", {
        model: "nomic-embed-text",
        input: ["the cat sat on the mat", "the cat sat on a mat", "quantum chromodynamics lecture"]
      })
      assert.strictEqual(response.status, 200)
      const body = yield* json<{ model: string; embeddings: Array<Array<number>>; prompt_eval_count: number }>(response)
      assert.strictEqual(body.model, "nomic-embed-text:latest")
      assert.strictEqual(body.embeddings.length, 3)
      const [a, b, c] = body.embeddings as [Array<number>, Array<number>, Array<number>]
      assert.strictEqual(a.length, 64)
      assert.closeTo(cosine(a, a), 1, 1e-9)
      assert.isAbove(cosine(a, b), cosine(a, c) + 0.3)
      assert.deepStrictEqual(a, OllamaStandIn.embedding("the cat sat on the mat", 64))
      assert.isAbove(body.prompt_eval_count, 0)
      const single = yield* json<{ embeddings: Array<Array<number>> }>(
        yield* post(standIn, "/api/embed", { model: "nomic-embed-text", input: "the cat sat on the mat" })
      )
      assert.deepStrictEqual(single.embeddings, [a])
    }))

  it.effect("streams a chat answer as NDJSON that quotes the question and the first context line", () =>
    Effect.gen(function*() {
      const standIn = yield* OllamaStandIn.scoped()
      const response = yield* post(standIn, "/api/chat", { model: "llama3.2", messages: RAG_MESSAGES })
      assert.strictEqual(response.headers.get("content-type"), "application/x-ndjson")
      const chunks = yield* ndjson(response)
      const last = chunks.at(-1)!
      assert.isTrue(chunks.length > 2)
      assert.isTrue(chunks.slice(0, -1).every((c) => c.done === false))
      assert.strictEqual(last.done, true)
      assert.strictEqual(last.done_reason, "stop")
      assert.isNumber(last.eval_count)
      assert.isNumber(last.total_duration)
      const content = chunks.map((c) => (c.message as { content: string }).content).join("")
      assert.strictEqual(
        content,
        "You asked: \"Where are vectors stored?\". According to the context: Ouroboros stores vectors in Qdrant."
      )
      assert.strictEqual(content, OllamaStandIn.defaultChatResponder(RAG_MESSAGES))
    }))

  it.effect("answers one JSON object when stream is false, and honours format", () =>
    Effect.gen(function*() {
      const standIn = yield* OllamaStandIn.scoped()
      const chat = yield* json<{ message: { role: string; content: string }; done: boolean }>(
        yield* post(standIn, "/api/chat", { model: "llama3.2", messages: RAG_MESSAGES, stream: false })
      )
      assert.strictEqual(chat.message.role, "assistant")
      assert.strictEqual(chat.message.content, OllamaStandIn.defaultChatResponder(RAG_MESSAGES))
      assert.isTrue(chat.done)
      const structured = yield* json<{ message: { content: string } }>(
        yield* post(standIn, "/api/chat", {
          model: "llama3.2",
          messages: RAG_MESSAGES,
          stream: false,
          format: { type: "object", properties: { answer: { type: "string" }, confidence: { type: "number" } } }
        })
      )
      assert.deepStrictEqual(JSON.parse(structured.message.content), {
        answer: OllamaStandIn.defaultChatResponder(RAG_MESSAGES),
        confidence: 0
      })
      const generated = yield* json<{ response: string; done: boolean; context: Array<number> }>(
        yield* post(standIn, "/api/generate", {
          model: "llama3.2",
          system: "Context: Paris is the capital of France.",
          prompt: "What is the capital of France?",
          stream: false
        })
      )
      assert.strictEqual(
        generated.response,
        "You asked: \"What is the capital of France?\". According to the context: Paris is the capital of France."
      )
      assert.isTrue(generated.context.length > 0)
      const streamed = yield* ndjson(yield* post(standIn, "/api/generate", { model: "llama3.2", prompt: "Hi there" }))
      assert.strictEqual(
        streamed.map((c) => c.response).join(""),
        "You asked: \"Hi there\". I have no context to answer from."
      )
    }))

  it.effect("can pace a stream so that it stays in flight", () =>
    Effect.gen(function*() {
      const standIn = yield* OllamaStandIn.scoped({ streamDelayMs: 20, chatResponder: () => "one two three four" })
      const started = performance.now()
      const response = yield* post(standIn, "/api/chat", { model: "llama3.2", messages: RAG_MESSAGES })
      const chunks = yield* ndjson(response)
      assert.strictEqual(chunks.length, 5)
      // A lower bound: a slow machine only adds to it.
      assert.isAtLeast(performance.now() - started, 80)
      // Headers come first, the chunks follow. Was "the response arrived within 80 ms". Now, with an hour between
      // chunks: the response and its first chunk arrive while the rest of the stream is still to come.
      const paced = yield* OllamaStandIn.scoped({
        streamDelayMs: 60 * 60_000,
        chatResponder: () => "one two three four"
      })
      const open = yield* post(paced, "/api/chat", { model: "llama3.2", messages: RAG_MESSAGES })
      assert.strictEqual(open.status, 200)
      const reader = open.body!.getReader()
      const firstLine = yield* Effect.promise(async () => {
        const decoder = new TextDecoder()
        let text = ""
        while (!text.includes("\n")) {
          const { done, value } = await reader.read()
          if (done) return { text, done }
          text += decoder.decode(value, { stream: true })
        }
        return { text, done: false }
      })
      assert.isFalse(firstLine.done, "the stream is still in flight")
      const lines = firstLine.text.split("\n").filter((line) => line !== "")
      assert.strictEqual(lines.length, 1, "only the first chunk has been sent")
      assert.isFalse(JSON.parse(lines[0]!).done)
      yield* Effect.promise(() => reader.cancel())
    }))

  it.effect("lets tests script the answers", () =>
    Effect.gen(function*() {
      const standIn = yield* OllamaStandIn.scoped({
        chatResponder: (messages, model) => `${model}: ${messages.length} messages`
      })
      const chat = yield* json<{ message: { content: string } }>(
        yield* post(standIn, "/api/chat", { model: "llama3.2:latest", messages: RAG_MESSAGES, stream: false })
      )
      assert.strictEqual(chat.message.content, "llama3.2:latest: 2 messages")
    }))

  it.effect("answers errors in Ollama's shape", () =>
    Effect.gen(function*() {
      const standIn = yield* OllamaStandIn.scoped()
      const unknown = yield* post(standIn, "/api/chat", { model: "mistral", messages: RAG_MESSAGES })
      assert.strictEqual(unknown.status, 404)
      assert.deepStrictEqual(yield* json(unknown), { error: "model \"mistral\" not found, try pulling it first" })
      const badJson = yield* post(standIn, "/api/embed", "{nope")
      assert.strictEqual(badJson.status, 400)
      assert.match((yield* json<{ error: string }>(badJson)).error, /invalid character/)
      const noModel = yield* post(standIn, "/api/embed", { input: "x" })
      assert.strictEqual(noModel.status, 400)
      assert.deepStrictEqual(yield* json(noModel), { error: "model is required" })
      const embedChat = yield* post(standIn, "/api/chat", { model: "nomic-embed-text", messages: RAG_MESSAGES })
      assert.strictEqual(embedChat.status, 400)
      const missing = yield* Effect.promise(() => fetch(`${standIn.url}/api/nothing`))
      assert.strictEqual(missing.status, 404)
      assert.strictEqual(standIn.requests.length, 5)
      assert.deepStrictEqual(standIn.requests[0]!.body, { model: "mistral", messages: RAG_MESSAGES })
    }))
})
