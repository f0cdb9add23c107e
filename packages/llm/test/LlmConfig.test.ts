import { assert, describe, it } from "@effect/vitest"
import * as OllamaStandIn from "@ouroboros/testkit/OllamaStandIn"
import { ConfigProvider, Context, Duration, Effect, Layer, Option, Redacted, Result } from "effect"
import { Embedder, Llm, LlmConfig } from "../src/index.js"

const withEnv = (env: Record<string, string>) =>
  Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))

const build = (env: Record<string, string>, extra?: LlmConfig.Extra) =>
  Layer.build(LlmConfig.layerConfig(extra)).pipe(
    Effect.map((context) => ({
      llm: Context.get(context, Llm.Llm),
      embedder: Context.get(context, Embedder.Embedder)
    })),
    withEnv(env)
  )

describe("LlmConfig", () => {
  it.effect("decodes the defaults", () =>
    Effect.gen(function*() {
      const settings = yield* LlmConfig.config.pipe(withEnv({}))
      assert.isTrue(Option.isNone(settings.url))
      assert.strictEqual(settings.model, "llama3.2")
      assert.strictEqual(settings.embedModel, "nomic-embed-text")
      assert.strictEqual(Duration.toMillis(settings.timeout), 60_000)
      assert.strictEqual(settings.localDimensions, 384)
      assert.isTrue(Option.isNone(settings.embedDimensions))
    }))

  it.effect("accepts a timeout in words or milliseconds and rejects bad values", () =>
    Effect.gen(function*() {
      const words = yield* LlmConfig.config.pipe(withEnv({ OLLAMA_TIMEOUT: "5 seconds" }))
      assert.strictEqual(Duration.toMillis(words.timeout), 5000)
      const millis = yield* LlmConfig.config.pipe(withEnv({ OLLAMA_TIMEOUT: "1500" }))
      assert.strictEqual(Duration.toMillis(millis.timeout), 1500)
      for (
        const env of [{ OLLAMA_URL: "not a url" }, { OLLAMA_URL: "ftp://x" }, { LOCAL_EMBED_DIMENSIONS: "0" }, {
          OLLAMA_EMBED_DIMENSIONS: "-3"
        }]
      ) {
        const result = yield* Effect.result(LlmConfig.config.pipe(withEnv(env)))
        assert.isTrue(Result.isFailure(result), JSON.stringify(env))
      }
    }))

  it.effect("without OLLAMA_URL: the local embedder and extractive answerer", () =>
    Effect.gen(function*() {
      const { embedder, llm } = yield* build({ LOCAL_EMBED_DIMENSIONS: "128" })
      assert.strictEqual(embedder.id, "local:fh-128")
      assert.strictEqual(llm.id, "local:extractive")
      const reply = yield* llm.generate("Hello there. Hello world.")
      assert.isTrue(reply.degraded)
    }))

  it.live("with OLLAMA_URL: Ollama, with the API key and the extra headers on every call", () =>
    Effect.gen(function*() {
      const ollama = yield* OllamaStandIn.scoped({ embeddingDimensions: 32 })
      const { embedder, llm } = yield* build(
        { OLLAMA_URL: ollama.url + "/", OLLAMA_API_KEY: "s3cret", OLLAMA_MODEL: "llama3.2" },
        { headers: Effect.succeed({ "x-correlation-id": "abc" }) }
      )
      assert.strictEqual(embedder.id, "ollama:nomic-embed-text")
      assert.strictEqual(embedder.dimensions, 32)
      assert.strictEqual(llm.id, "ollama:llama3.2")
      const reply = yield* llm.generate("Question: hi")
      assert.isFalse(reply.degraded)
      for (const request of ollama.requests) {
        assert.strictEqual(request.headers["authorization"], "Bearer s3cret")
        assert.strictEqual(request.headers["x-correlation-id"], "abc")
      }
      assert.deepStrictEqual(ollama.requests.map((r) => r.path), ["/api/embed", "/api/chat"])
      const settings = yield* LlmConfig.config.pipe(withEnv({ OLLAMA_API_KEY: "s3cret" }))
      assert.notInclude(String(Option.getOrThrow(settings.apiKey)), "s3cret")
      assert.strictEqual(Redacted.value(Option.getOrThrow(settings.apiKey)), "s3cret")
    }))
})
