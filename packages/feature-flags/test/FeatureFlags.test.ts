import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Metric, Result, Schema, Stream } from "effect"
import { EvaluationContext, FeatureFlags, FlagAudit, type FlagDefinition, FlagProvider } from "../src/index.js"

const flagSet: FlagDefinition.FlagSet = {
  flags: {
    "new-search": { state: "ENABLED", variants: { on: true, off: false }, defaultVariant: "off" },
    "llm-model": {
      state: "ENABLED",
      variants: { small: "llama3.2:1b", large: "llama3.1:70b" },
      defaultVariant: "small",
      // Premium tenants and v2 callers get the large model.
      targeting: {
        if: [
          { or: [{ "==": [{ var: "tier" }, "premium"] }, { sem_ver: [{ var: "apiVersion" }, ">=", "2.0.0"] }] },
          "large",
          null
        ]
      }
    },
    "top-k": { state: "ENABLED", variants: { few: 3, many: 10 }, defaultVariant: "few" },
    "ask-limits": {
      state: "ENABLED",
      variants: { standard: { topK: 5, maxTokens: 512 }, broken: { topK: "five" } },
      defaultVariant: "standard",
      targeting: { if: [{ "==": [{ var: "tenantId" }, "broken-tenant"] }, "broken", null] }
    },
    "v2-rollout": {
      state: "ENABLED",
      variants: { on: true, off: false },
      defaultVariant: "off",
      targeting: { fractional: [["on", 50], ["off", 50]] }
    },
    "dark-launch": { state: "DISABLED", variants: { on: true, off: false }, defaultVariant: "on" },
    "ghost-variant": {
      state: "ENABLED",
      variants: { on: true, off: false },
      defaultVariant: "off",
      targeting: { if: [true, "missing", null] }
    },
    "ends-with": {
      state: "ENABLED",
      variants: { internal: "internal", external: "external" },
      defaultVariant: "external",
      targeting: { if: [{ ends_with: [{ var: "principal" }, "@ouroboros.dev"] }, "internal", null] }
    }
  }
}

const NewSearch = FeatureFlags.boolean("new-search", false)
const Model = FeatureFlags.string("llm-model", "fallback")
const TopK = FeatureFlags.number("top-k", 1)
const Limits = FeatureFlags.json(
  "ask-limits",
  Schema.Struct({ topK: Schema.Int, maxTokens: Schema.Int }),
  { topK: 1, maxTokens: 64 }
)
const Rollout = FeatureFlags.boolean("v2-rollout", false)

const Flags = FeatureFlags.layerMemory(flagSet)

/** Finds a targeting key that lands in `variant` of the 50/50 rollout (the hash decides, not the test). */
const keyIn = (flags: FeatureFlags.FeatureFlags["Service"], enabled: boolean) => {
  for (let i = 0;; i++) {
    if (flags.detailsSync(Rollout, { targetingKey: `user-${i}` }).value === enabled) return `user-${i}`
  }
}

describe("FeatureFlags: evaluation", () => {
  it.effect("typed flags give value, variant and reason", () =>
    Effect.gen(function*() {
      const search = yield* FeatureFlags.details(NewSearch)
      assert.deepStrictEqual([search.value, search.variant, search.reason], [false, "off", "STATIC"])
      const model = yield* FeatureFlags.details(Model, { attributes: { tier: "premium" } })
      assert.deepStrictEqual([model.value, model.variant, model.reason], ["llama3.1:70b", "large", "TARGETING_MATCH"])
      const standard = yield* FeatureFlags.details(Model, { attributes: { tier: "free" } })
      assert.deepStrictEqual([standard.value, standard.reason], ["llama3.2:1b", "DEFAULT"])
      assert.strictEqual(yield* FeatureFlags.value(TopK), 3)
      assert.deepStrictEqual(yield* FeatureFlags.value(Limits), { topK: 5, maxTokens: 512 })
      const internal = yield* FeatureFlags.details(FeatureFlags.string("ends-with", "x"), {
        principal: "ann@ouroboros.dev"
      })
      assert.strictEqual(internal.value, "internal")
    }).pipe(Effect.provide(Flags)))

  it.effect("errors give the caller's default, reason ERROR and OpenFeature's error code", () =>
    Effect.gen(function*() {
      const missing = yield* FeatureFlags.details(FeatureFlags.boolean("no-such-flag", true))
      assert.deepStrictEqual([missing.value, missing.reason, missing.errorCode], [true, "ERROR", "FLAG_NOT_FOUND"])
      const wrongType = yield* FeatureFlags.details(FeatureFlags.number("new-search", 7))
      assert.deepStrictEqual([wrongType.value, wrongType.reason, wrongType.errorCode], [7, "ERROR", "TYPE_MISMATCH"])
      const notObject = yield* FeatureFlags.details(FeatureFlags.json("top-k", Schema.Unknown, "default"))
      assert.deepStrictEqual([notObject.value, notObject.errorCode], ["default", "TYPE_MISMATCH"])
      // A JSON value that does not decode with the caller's schema.
      const undecodable = yield* FeatureFlags.details(Limits, { tenantId: "broken-tenant" })
      assert.deepStrictEqual(undecodable.value, { topK: 1, maxTokens: 64 })
      assert.deepStrictEqual([undecodable.reason, undecodable.errorCode, undecodable.variant], [
        "ERROR",
        "TYPE_MISMATCH",
        "broken"
      ])
      assert.include(undecodable.errorMessage, "ask-limits")
      // A rule that names a variant the flag does not have.
      const ghost = yield* FeatureFlags.details(FeatureFlags.boolean("ghost-variant", true))
      assert.deepStrictEqual([ghost.value, ghost.reason, ghost.errorCode], [true, "ERROR", "GENERAL"])
      // A disabled flag gives the caller's default (flagd's meaning of DISABLED).
      const dark = yield* FeatureFlags.details(FeatureFlags.boolean("dark-launch", false))
      assert.deepStrictEqual([dark.value, dark.reason], [false, "DISABLED"])
    }).pipe(Effect.provide(Flags)))

  it.effect("a rule that does not compile is a PARSE_ERROR (lenient flag sets load it, as flagd does)", () =>
    Effect.gen(function*() {
      const details = yield* FeatureFlags.details(FeatureFlags.boolean("bad-rule", true))
      assert.deepStrictEqual([details.value, details.reason, details.errorCode], [true, "ERROR", "PARSE_ERROR"])
    }).pipe(Effect.provide(FeatureFlags.layerMemory({
      flags: {
        "bad-rule": {
          state: "ENABLED",
          variants: { on: true, off: false },
          defaultVariant: "off",
          targeting: { no_such_operator: [1, 2] }
        }
      }
    }, { validation: "lenient" }))))

  it.effect("a merged flag set that fails strict validation still serves its flags, and the status says why", () =>
    Effect.gen(function*() {
      const details = yield* FeatureFlags.details(FeatureFlags.boolean("bad-rule", true))
      assert.deepStrictEqual([details.value, details.errorCode], [true, "PARSE_ERROR"])
      assert.isTrue(yield* FeatureFlags.value(FeatureFlags.boolean("fine", false)))
      const statuses = yield* FeatureFlags.status
      assert.deepStrictEqual(statuses.map((s) => [s.provider, s.status]), [["memory", "ready"], ["merged", "stale"]])
      assert.include(statuses[1]?.detail, "/flags/bad-rule/targeting")
    }).pipe(Effect.provide(
      FeatureFlags.layer().pipe(Layer.provide(FlagProvider.layerMemory({
        flags: {
          fine: { state: "ENABLED", variants: { on: true, off: false }, defaultVariant: "on" },
          "bad-rule": {
            state: "ENABLED",
            variants: { on: true, off: false },
            defaultVariant: "off",
            targeting: { no_such_operator: [1, 2] }
          }
        }
      }, { validation: "lenient" })))
    )))

  it.effect("the request's context comes from CurrentEvaluationContext; a per-call context goes on top", () =>
    Effect.gen(function*() {
      const request = EvaluationContext.make({ tenantId: "acme", attributes: { tier: "premium", apiVersion: "1.0.0" } })
      const inRequest = yield* FeatureFlags.value(Model).pipe(EvaluationContext.provide(request))
      assert.strictEqual(inRequest, "llama3.1:70b")
      const downgraded = yield* FeatureFlags.value(Model, { attributes: { tier: "free" } }).pipe(
        EvaluationContext.provide(request)
      )
      assert.strictEqual(downgraded, "llama3.2:1b")
      const v2 = yield* FeatureFlags.value(Model).pipe(
        EvaluationContext.provide({ attributes: { tier: "free", apiVersion: "2.1.0" } })
      )
      assert.strictEqual(v2, "llama3.1:70b")
      assert.strictEqual(yield* FeatureFlags.value(Model), "llama3.2:1b")
    }).pipe(Effect.provide(Flags)))

  it.effect("the same targeting key always gets the same variant", () =>
    Effect.gen(function*() {
      const flags = yield* FeatureFlags.FeatureFlags
      const on = keyIn(flags, true)
      const off = keyIn(flags, false)
      for (let i = 0; i < 5; i++) {
        assert.isTrue(yield* FeatureFlags.value(Rollout, { targetingKey: on }))
        assert.isFalse(yield* FeatureFlags.value(Rollout, { targetingKey: off }))
      }
      const none = yield* FeatureFlags.details(Rollout)
      assert.deepStrictEqual([none.value, none.reason], [false, "DEFAULT"])
    }).pipe(Effect.provide(Flags)))

  it.effect("counts evaluations per flag, variant and reason", () =>
    Effect.gen(function*() {
      const flags = yield* FeatureFlags.FeatureFlags
      const on = keyIn(flags, true)
      const off = keyIn(flags, false)
      const series = (attributes: Record<string, string>) =>
        Metric.value(Metric.withAttributes(FeatureFlags.evaluations, attributes))
      const before = (yield* series({ flag: "v2-rollout", variant: "on", reason: "TARGETING_MATCH" })).count
      for (let i = 0; i < 3; i++) yield* FeatureFlags.value(Rollout, { targetingKey: on })
      yield* FeatureFlags.value(Rollout, { targetingKey: off })
      yield* FeatureFlags.value(FeatureFlags.boolean("nope", false))
      assert.strictEqual(
        (yield* series({ flag: "v2-rollout", variant: "on", reason: "TARGETING_MATCH" })).count,
        before + 3
      )
      assert.isAtLeast((yield* series({ flag: "v2-rollout", variant: "off", reason: "TARGETING_MATCH" })).count, 1)
      assert.isAtLeast((yield* series({ flag: "nope", variant: "", reason: "ERROR" })).count, 1)
      // What an exporter reads (Metric.snapshot, e.g. for Prometheus).
      const snapshot = (yield* Metric.snapshot).find((m) =>
        m.id === "feature_flag_evaluations_total" && m.attributes?.flag === "v2-rollout" &&
        m.attributes?.variant === "on"
      )
      assert.deepStrictEqual([snapshot?.type, (snapshot?.state as { count: number } | undefined)?.count], [
        "Counter",
        before + 3
      ])
    }).pipe(Effect.provide(Flags), Effect.provideService(Metric.MetricRegistry, new Map())))
})

describe("FeatureFlags: tenant overrides and the kill switch", () => {
  it.effect("a tenant override beats the rules for that tenant only", () =>
    Effect.gen(function*() {
      const flags = yield* FeatureFlags.FeatureFlags
      const view = yield* flags.setOverride("llm-model", "acme", { variant: "large" }, {
        actor: "ops",
        reason: "pilot"
      })
      assert.deepStrictEqual(view.overrides.acme?.variant, "large")
      const acme = yield* FeatureFlags.details(Model, { tenantId: "acme", attributes: { tier: "free" } })
      assert.deepStrictEqual([acme.value, acme.reason], ["llama3.1:70b", "TARGETING_MATCH"])
      assert.strictEqual(
        yield* FeatureFlags.value(Model, { tenantId: "globex", attributes: { tier: "free" } }),
        "llama3.2:1b"
      )
      yield* flags.removeOverride("llm-model", "acme", { actor: "ops" })
      assert.strictEqual(
        yield* FeatureFlags.value(Model, { tenantId: "acme", attributes: { tier: "free" } }),
        "llama3.2:1b"
      )
      const unknown = yield* Effect.flip(flags.setOverride("llm-model", "acme", { variant: "huge" }, { actor: "ops" }))
      assert.strictEqual(unknown._tag, "InvalidFlag")
      const gone = yield* Effect.flip(flags.removeOverride("llm-model", "acme", { actor: "ops" }))
      assert.strictEqual(gone._tag, "FlagNotFound")
      const noFlag = yield* Effect.flip(flags.setOverride("nope", "acme", { variant: "on" }, { actor: "ops" }))
      assert.strictEqual(noFlag._tag, "FlagNotFound")
    }).pipe(Effect.provide(Flags)))

  it.effect("the kill switch beats every rule and override, and releasing it restores them", () =>
    Effect.gen(function*() {
      const flags = yield* FeatureFlags.FeatureFlags
      const on = keyIn(flags, true)
      yield* flags.setOverride("v2-rollout", "acme", { variant: "on" }, { actor: "ops" })
      assert.isTrue(yield* FeatureFlags.value(Rollout, { tenantId: "acme" }))
      const killed = yield* flags.kill("v2-rollout", { reason: "v2 returns 500s" }, { actor: "alice" })
      assert.deepStrictEqual([killed.kill?.actor, killed.kill?.reason], ["alice", "v2 returns 500s"])
      for (const context of [{ tenantId: "acme" }, { targetingKey: on }, {}]) {
        const details = yield* FeatureFlags.details(Rollout, context)
        assert.deepStrictEqual([details.value, details.variant, details.reason], [false, "off", "DISABLED"])
      }
      yield* flags.revive("v2-rollout", { actor: "alice", reason: "fixed" })
      assert.isTrue(yield* FeatureFlags.value(Rollout, { tenantId: "acme" }))
      assert.isTrue(yield* FeatureFlags.value(Rollout, { targetingKey: on }))
    }).pipe(Effect.provide(Flags)))

  it.effect("a kill without a variant turns a boolean flag off, and serves the default variant of others", () =>
    Effect.gen(function*() {
      const flags = yield* FeatureFlags.FeatureFlags
      yield* flags.put("ollama", { state: "ENABLED", variants: { on: true, off: false }, defaultVariant: "on" }, {
        actor: "ops"
      })
      const killed = yield* flags.kill("ollama", { reason: "Ollama is down" }, { actor: "ops" })
      assert.strictEqual(killed.kill?.variant, "off")
      const ollama = yield* FeatureFlags.details(FeatureFlags.boolean("ollama", true))
      assert.deepStrictEqual([ollama.value, ollama.variant, ollama.reason], [false, "off", "DISABLED"])
      yield* flags.kill("llm-model", { reason: "r" }, { actor: "ops" })
      const model = yield* FeatureFlags.details(Model, { attributes: { tier: "premium" } })
      assert.deepStrictEqual([model.value, model.variant, model.reason], ["llama3.2:1b", "small", "DISABLED"])
    }).pipe(Effect.provide(Flags)))

  it.effect("a kill can serve a chosen variant; it beats a disabled state too", () =>
    Effect.gen(function*() {
      const flags = yield* FeatureFlags.FeatureFlags
      yield* flags.kill("llm-model", { reason: "the large model is down", variant: "small" }, { actor: "ops" })
      const details = yield* FeatureFlags.details(Model, { attributes: { tier: "premium" } })
      assert.deepStrictEqual([details.value, details.variant, details.reason], ["llama3.2:1b", "small", "DISABLED"])
      yield* flags.kill("dark-launch", { reason: "off", variant: "off" }, { actor: "ops" })
      const dark = yield* FeatureFlags.details(FeatureFlags.boolean("dark-launch", true))
      assert.deepStrictEqual([dark.value, dark.variant, dark.reason], [false, "off", "DISABLED"])
      const unknown = yield* Effect.flip(flags.kill("llm-model", { reason: "x", variant: "medium" }, { actor: "ops" }))
      assert.strictEqual(unknown._tag, "InvalidFlag")
      const missing = yield* Effect.flip(flags.kill("nope", { reason: "x" }, { actor: "ops" }))
      assert.strictEqual(missing._tag, "FlagNotFound")
    }).pipe(Effect.provide(Flags)))

  it.effect("changes are audited with actor, reason, before and after when a FlagAudit hook is provided", () =>
    Effect.gen(function*() {
      const recorded: Array<FlagAudit.Change> = []
      const audited = FeatureFlags.layerMemory(flagSet).pipe(
        Layer.provide(FlagAudit.layer({ record: (change) => Effect.sync(() => recorded.push(change)) }))
      )
      yield* Effect.gen(function*() {
        const flags = yield* FeatureFlags.FeatureFlags
        yield* flags.kill("v2-rollout", { reason: "errors" }, { actor: "alice" })
        yield* flags.revive("v2-rollout", { actor: "bob", reason: "fixed" })
        yield* flags.setOverride("v2-rollout", "acme", { variant: "on" }, { actor: "carol", reason: "beta" })
        yield* flags.put("new-search", { ...flagSet.flags["new-search"]!, defaultVariant: "on" }, { actor: "dave" })
      }).pipe(Effect.provide(audited))
      assert.deepStrictEqual(recorded.map((c) => [c.action, c.flagKey, c.actor, c.reason, c.tenantId]), [
        ["flag.kill", "v2-rollout", "alice", "errors", undefined],
        ["flag.revive", "v2-rollout", "bob", "fixed", undefined],
        ["override.set", "v2-rollout", "carol", "beta", "acme"],
        ["flag.put", "new-search", "dave", undefined, undefined]
      ])
      assert.deepStrictEqual((recorded[0]!.after as FlagProvider.Kill).reason, "errors")
      assert.deepStrictEqual((recorded[3]!.before as FlagDefinition.Flag).defaultVariant, "off")
      assert.isTrue(recorded.every((c) => !Number.isNaN(Date.parse(c.at))))
    }))
})

describe("FeatureFlags: changes", () => {
  it.effect("a definition is validated like a file", () =>
    Effect.gen(function*() {
      const flags = yield* FeatureFlags.FeatureFlags
      const badDefault = yield* Effect.flip(
        flags.put("x", { state: "ENABLED", variants: { a: true }, defaultVariant: "b" }, { actor: "ops" })
      )
      assert.strictEqual(badDefault._tag, "InvalidFlag")
      const mixed = yield* Effect.flip(
        flags.put("x", { state: "ENABLED", variants: { a: true, b: "yes" }, defaultVariant: "a" }, { actor: "ops" })
      )
      assert.strictEqual(mixed._tag, "InvalidFlag")
      assert.include(mixed._tag === "InvalidFlag" ? mixed.issues.map((i) => i.path).join() : "", "/flags/x/variants")
      const badRule = yield* Effect.flip(
        flags.put("x", {
          state: "ENABLED",
          variants: { a: true, b: false },
          defaultVariant: "a",
          targeting: { no_such_operator: [] }
        }, { actor: "ops" })
      )
      assert.strictEqual(badRule._tag, "InvalidFlag")
      assert.isTrue(Result.isFailure(yield* Effect.result(flags.get("x"))))
      const ok = yield* flags.put("x", {
        state: "ENABLED",
        variants: { a: true, b: false },
        defaultVariant: "a",
        targeting: { if: [{ starts_with: [{ var: "tenantId" }, "beta-"] }, "b", null] }
      }, { actor: "ops" })
      assert.strictEqual(ok.source, "memory")
      assert.isFalse(yield* FeatureFlags.value(FeatureFlags.boolean("x", true), { tenantId: "beta-1" }))
    }).pipe(Effect.provide(Flags)))

  it.effect("a definition cannot drop a variant that a kill switch or an override serves", () =>
    Effect.gen(function*() {
      const flags = yield* FeatureFlags.FeatureFlags
      yield* flags.setOverride("llm-model", "acme", { variant: "large" }, { actor: "ops" })
      const conflict = yield* Effect.flip(
        flags.put("llm-model", { state: "ENABLED", variants: { small: "s" }, defaultVariant: "small" }, {
          actor: "ops"
        })
      )
      assert.deepStrictEqual(conflict._tag === "FlagConflict" ? conflict.reason : conflict._tag, "variant-in-use")
    }).pipe(Effect.provide(Flags)))

  it.effect("changes publishes the keys whose evaluations may differ", () =>
    Effect.gen(function*() {
      const flags = yield* FeatureFlags.FeatureFlags
      const subscription = yield* flags.subscribe
      const fiber = yield* subscription.pipe(Stream.take(3), Stream.runCollect, Effect.forkChild)
      yield* flags.kill("new-search", { reason: "r" }, { actor: "a" })
      yield* flags.setOverride("top-k", "acme", { variant: "many" }, { actor: "a" })
      yield* flags.remove("ghost-variant", { actor: "a" })
      const changes = yield* Fiber.join(fiber)
      assert.deepStrictEqual(changes.map((c) => c.keys), [["new-search"], ["top-k"], ["ghost-variant"]])
    }).pipe(Effect.provide(Flags)))

  it.effect("remove deletes a flag; an unknown flag is FlagNotFound", () =>
    Effect.gen(function*() {
      const flags = yield* FeatureFlags.FeatureFlags
      yield* flags.remove("top-k", { actor: "ops" })
      const details = yield* FeatureFlags.details(TopK)
      assert.strictEqual(details.errorCode, "FLAG_NOT_FOUND")
      assert.strictEqual((yield* Effect.flip(flags.remove("top-k", { actor: "ops" })))._tag, "FlagNotFound")
      assert.strictEqual((yield* Effect.flip(flags.get("top-k")))._tag, "FlagNotFound")
    }).pipe(Effect.provide(Flags)))
})

describe("FlagProvider.layered", () => {
  const lower = FlagProvider.layerMemory({
    flags: {
      shared: { state: "ENABLED", variants: { file: "file", db: "db" }, defaultVariant: "file" },
      "file-only": { state: "ENABLED", variants: { on: true, off: false }, defaultVariant: "on" }
    },
    $evaluators: { isBeta: { starts_with: [{ var: "tenantId" }, "beta-"] } }
  }, { name: "defaults" })
  const upper = FlagProvider.layerMemory({ flags: {} }, { name: "overrides" })
  const Stacked = FeatureFlags.layer().pipe(Layer.provide(FlagProvider.layerLayered(lower, upper)))

  it.effect("upper flags win, writes go up, removing an upper flag shows the lower one again", () =>
    Effect.gen(function*() {
      const flags = yield* FeatureFlags.FeatureFlags
      const Shared = FeatureFlags.string("shared", "none")
      assert.strictEqual(yield* FeatureFlags.value(Shared), "file")
      const view = yield* flags.put("shared", {
        state: "ENABLED",
        variants: { file: "file", db: "db" },
        defaultVariant: "db",
        // The lower provider's evaluators are visible to the upper provider's flags.
        targeting: { if: [{ $ref: "isBeta" }, "file", null] }
      }, { actor: "ops" })
      assert.strictEqual(view.source, "overrides")
      assert.strictEqual(yield* FeatureFlags.value(Shared), "db")
      assert.strictEqual(yield* FeatureFlags.value(Shared, { tenantId: "beta-7" }), "file")
      yield* flags.kill("file-only", { reason: "r" }, { actor: "ops" })
      assert.strictEqual((yield* FeatureFlags.details(FeatureFlags.boolean("file-only", false))).reason, "DISABLED")
      yield* flags.remove("shared", { actor: "ops" })
      assert.strictEqual(yield* FeatureFlags.value(Shared), "file")
      assert.strictEqual((yield* flags.get("shared")).source, "defaults")
      // Only upper flags can be removed.
      assert.strictEqual((yield* Effect.flip(flags.remove("shared", { actor: "ops" })))._tag, "FlagNotFound")
      const statuses = yield* flags.status
      assert.deepStrictEqual(statuses.map((s) => [s.provider, s.status]), [["defaults", "ready"], [
        "overrides",
        "ready"
      ]])
    }).pipe(Effect.provide(Stacked)))
})
