/**
 * The server's example flag file (examples/ouroboros-flags.yaml) validates strictly and does what its comments say.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { fileURLToPath } from "node:url"
import { FeatureFlags } from "../src/index.js"

const path = fileURLToPath(new URL("../examples/ouroboros-flags.yaml", import.meta.url))
const Model = FeatureFlags.string("llm-model", "llama3.2")
const V2 = FeatureFlags.boolean("api-v2", false)
const Ollama = FeatureFlags.boolean("ollama", true)

describe("examples/ouroboros-flags.yaml", () => {
  it.effect("model per tenant, v2 rollout, Ollama kill switch", () =>
    Effect.gen(function*() {
      const flags = yield* FeatureFlags.FeatureFlags
      assert.strictEqual(
        yield* FeatureFlags.value(Model, { tenantId: "acme", attributes: { tier: "enterprise" } }),
        "llama3.1:70b"
      )
      assert.strictEqual(
        yield* FeatureFlags.value(Model, { tenantId: "acme", attributes: { tier: "free" } }),
        "llama3.2"
      )
      assert.isTrue(yield* FeatureFlags.value(V2, { tenantId: "beta", targetingKey: "key:1" }))
      let enabled = 0
      for (let i = 0; i < 10_000; i++) {
        if (yield* FeatureFlags.value(V2, { tenantId: "acme", targetingKey: `key:${i}` })) enabled++
      }
      assert.isBelow(Math.abs(enabled / 10_000 - 0.1), 0.02)
      assert.isTrue(yield* FeatureFlags.value(Ollama))
      assert.strictEqual(
        (yield* Effect.flip(flags.kill("ollama", { reason: "down" }, { actor: "ops" })))._tag,
        "FlagConflict"
      )
    }).pipe(Effect.provide(FeatureFlags.layerFile({ path }))))
})
