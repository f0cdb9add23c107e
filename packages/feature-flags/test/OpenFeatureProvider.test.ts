import { assert, describe, it } from "@effect/vitest"
import {
  type EvaluationDetails,
  type FlagValue,
  type Hook,
  OpenFeature,
  ProviderEvents,
  ProviderStatus
} from "@openfeature/server-sdk"
import { Deferred, Duration, Effect, Layer } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { FeatureFlags, type FlagDefinition, FlagProvider, FlagProviderFile } from "../src/index.js"
import * as OpenFeatureProvider from "../src/OpenFeatureProvider.js"

const flagSet: FlagDefinition.FlagSet = {
  flags: {
    "new-search": {
      state: "ENABLED",
      variants: { on: true, off: false },
      defaultVariant: "off",
      targeting: { if: [{ "==": [{ var: "tenantId" }, "acme"] }, "on", null] }
    },
    greeting: { state: "ENABLED", variants: { formal: "Good day", casual: "Hi" }, defaultVariant: "formal" },
    "top-k": { state: "ENABLED", variants: { few: 3, many: 10 }, defaultVariant: "many" },
    limits: { state: "ENABLED", variants: { standard: { topK: 5 } }, defaultVariant: "standard" }
  }
}

/** Registers the provider for a domain of its own (the OpenFeature API is a process-wide singleton). */
const registered = (domain: string) =>
  Effect.gen(function*() {
    const provider = yield* OpenFeatureProvider.make
    yield* Effect.acquireRelease(
      Effect.promise(() => OpenFeature.setProviderAndWait(domain, provider)),
      () => Effect.promise(() => OpenFeature.clearProviders())
    )
    return { provider, client: OpenFeature.getClient(domain) }
  })

describe("OpenFeatureProvider through @openfeature/server-sdk", () => {
  it.effect("evaluates flags with details, typed, with the evaluation context", () =>
    Effect.gen(function*() {
      const { client } = yield* registered("typed")
      const acme = yield* Effect.promise(() => client.getBooleanDetails("new-search", false, { tenantId: "acme" }))
      assert.deepStrictEqual([acme.value, acme.variant, acme.reason, acme.flagKey], [
        true,
        "on",
        "TARGETING_MATCH",
        "new-search"
      ])
      const other = yield* Effect.promise(() => client.getBooleanDetails("new-search", true, { tenantId: "globex" }))
      assert.deepStrictEqual([other.value, other.reason], [false, "DEFAULT"])
      assert.strictEqual(yield* Effect.promise(() => client.getStringValue("greeting", "x")), "Good day")
      assert.strictEqual(yield* Effect.promise(() => client.getNumberValue("top-k", 1)), 10)
      assert.deepStrictEqual(yield* Effect.promise(() => client.getObjectValue("limits", {})), { topK: 5 })
      const missing = yield* Effect.promise(() => client.getBooleanDetails("nope", true))
      assert.deepStrictEqual([missing.value, missing.reason, missing.errorCode], [true, "ERROR", "FLAG_NOT_FOUND"])
      const mismatch = yield* Effect.promise(() => client.getNumberDetails("greeting", 7))
      assert.deepStrictEqual([mismatch.value, mismatch.errorCode], [7, "TYPE_MISMATCH"])
      assert.strictEqual(client.providerStatus, ProviderStatus.READY)
    }).pipe(Effect.provide(FeatureFlags.layerMemory(flagSet))))

  it.effect("a hook sees every evaluation, and the kill switch is visible to it", () =>
    Effect.gen(function*() {
      const flags = yield* FeatureFlags.FeatureFlags
      const { client } = yield* registered("hooks")
      const seen: Array<EvaluationDetails<FlagValue>> = []
      const errors: Array<string> = []
      const hook: Hook = {
        after: (_context, details) => {
          seen.push(details)
        },
        error: (context) => {
          errors.push(context.flagKey)
        }
      }
      client.addHooks(hook)
      yield* Effect.promise(() => client.getBooleanValue("new-search", false, { tenantId: "acme" }))
      yield* flags.kill("new-search", { reason: "incident" }, { actor: "ops" })
      yield* Effect.promise(() => client.getBooleanValue("new-search", true, { tenantId: "acme" }))
      yield* Effect.promise(() => client.getBooleanValue("nope", true))
      assert.deepStrictEqual(seen.map((d) => [d.flagKey, d.value, d.reason]), [
        ["new-search", true, "TARGETING_MATCH"],
        ["new-search", false, "DISABLED"]
      ])
      assert.deepStrictEqual(errors, ["nope"])
    }).pipe(Effect.provide(FeatureFlags.layerMemory(flagSet))))

  it.effect("emits ConfigurationChanged with the changed flags when flags change", () =>
    Effect.gen(function*() {
      const flags = yield* FeatureFlags.FeatureFlags
      const { client } = yield* registered("events")
      const changed = yield* Deferred.make<ReadonlyArray<string>>()
      client.addHandler(ProviderEvents.ConfigurationChanged, (details) => {
        Deferred.doneUnsafe(changed, Effect.succeed(details?.flagsChanged ?? []))
      })
      yield* flags.setOverride("greeting", "acme", { variant: "casual" }, { actor: "ops" })
      assert.deepStrictEqual(yield* Deferred.await(changed), ["greeting"])
      assert.strictEqual(
        yield* Effect.promise(() => client.getStringValue("greeting", "x", { tenantId: "acme" })),
        "Hi"
      )
    }).pipe(Effect.provide(FeatureFlags.layerMemory(flagSet))))

  it.effect("a broken flag file makes the provider STALE, a fixed one READY again", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "feature-flags-of-"))),
        (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
      )
      const path = Path.join(dir, "flags.json")
      Fs.writeFileSync(path, JSON.stringify(flagSet))
      yield* Effect.gen(function*() {
        const flags = yield* FeatureFlags.FeatureFlags
        const { client } = yield* registered("stale")
        const stale = yield* Deferred.make<string>()
        const ready = yield* Deferred.make<void>()
        client.addHandler(ProviderEvents.Stale, (details) => {
          Deferred.doneUnsafe(stale, Effect.succeed(details?.message ?? ""))
        })
        Fs.writeFileSync(path, "{ broken")
        yield* flags.refresh
        assert.include(yield* Deferred.await(stale), "not valid JSON")
        assert.strictEqual(client.providerStatus, ProviderStatus.STALE)
        // Added now: a Ready handler added while the provider is ready runs at once.
        client.addHandler(ProviderEvents.Ready, () => {
          Deferred.doneUnsafe(ready, Effect.void)
        })
        // The last good flags still answer.
        assert.strictEqual(yield* Effect.promise(() => client.getNumberValue("top-k", 1)), 10)
        Fs.writeFileSync(path, JSON.stringify(flagSet))
        yield* flags.refresh
        yield* Deferred.await(ready)
        assert.strictEqual(client.providerStatus, ProviderStatus.READY)
      }).pipe(
        Effect.provide(
          FeatureFlags.layer().pipe(Layer.provide(FlagProviderFile.layer({ path, pollInterval: Duration.hours(1) })))
        )
      )
    }))

  it.effect("layerGlobal registers the provider as OpenFeature's default", () =>
    Effect.gen(function*() {
      yield* Layer.build(OpenFeatureProvider.layerGlobal())
      const client = OpenFeature.getClient()
      assert.strictEqual(client.metadata.providerMetadata.name, OpenFeatureProvider.providerName)
      assert.strictEqual(yield* Effect.promise(() => client.getStringValue("greeting", "x")), "Good day")
    }).pipe(
      Effect.provide(FeatureFlags.layerMemory(flagSet)),
      Effect.ensuring(Effect.promise(() => OpenFeature.clearProviders()))
    ))

  it("summarize: pass, warn with the stale source, fail with the empty one", () => {
    const base = { since: "2025-01-01T00:00:00.000Z", flags: 1 }
    assert.deepStrictEqual(FlagProvider.summarize([{ ...base, provider: "a", status: "ready" }]), { status: "pass" })
    assert.deepStrictEqual(
      FlagProvider.summarize([
        { ...base, provider: "a", status: "ready" },
        { ...base, provider: "file:f.json", status: "stale", detail: "bad" }
      ]),
      { status: "warn", output: "file:f.json stale: bad" }
    )
    assert.strictEqual(FlagProvider.summarize([{ ...base, provider: "sql", status: "error" }]).status, "fail")
  })
})
