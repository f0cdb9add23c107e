import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Layer, Option, Result } from "effect"
import { OpenApi } from "effect/http-api"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { FeatureFlags, FeatureFlagsHttp } from "../src/index.js"
import { layerEmbedded } from "./layers.js"

const env = (entries: Record<string, string>) => ConfigProvider.layer(ConfigProvider.fromEnv({ env: entries }))

const load = (entries: Record<string, string>) =>
  Effect.provideService(
    Effect.result(FeatureFlags.config),
    ConfigProvider.ConfigProvider,
    ConfigProvider.fromEnv({ env: entries })
  )

describe("FeatureFlags.config", () => {
  it.effect("defaults", () =>
    Effect.gen(function*() {
      const config = yield* load({})
      assert.isTrue(Result.isSuccess(config))
      if (Result.isSuccess(config)) {
        assert.isTrue(Option.isNone(config.success.file))
        assert.strictEqual(Duration.toMillis(config.success.pollInterval), 500)
        assert.deepStrictEqual([config.success.validation, config.success.listen, config.success.channel], [
          "strict",
          "auto",
          "ouroboros_feature_flags"
        ])
      }
    }))

  it.effect("reads and validates its variables", () =>
    Effect.gen(function*() {
      const config = yield* load({
        FLAGS_FILE: "/etc/flags.yaml",
        FLAGS_POLL_INTERVAL: "250 millis",
        FLAGS_VALIDATION: "lenient",
        FLAGS_LISTEN: "off",
        FLAGS_NOTIFY_CHANNEL: "flags_staging"
      })
      assert.isTrue(Result.isSuccess(config))
      if (Result.isSuccess(config)) {
        assert.deepStrictEqual(config.success.file, Option.some("/etc/flags.yaml"))
        assert.strictEqual(Duration.toMillis(config.success.pollInterval), 250)
        assert.deepStrictEqual([config.success.validation, config.success.listen, config.success.channel], [
          "lenient",
          "off",
          "flags_staging"
        ])
      }
      const bad = yield* load({ FLAGS_LISTEN: "sometimes" })
      assert.isTrue(Result.isFailure(bad))
      assert.include(String(Result.isFailure(bad) ? bad.failure : ""), "FLAGS_LISTEN")
      assert.isTrue(Result.isFailure(yield* load({ FLAGS_POLL_INTERVAL: "soon" })))
    }))

  it.effect("layerConfig: the file's flags under the database's", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "feature-flags-config-"))),
        (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
      )
      const file = Path.join(dir, "flags.json")
      Fs.writeFileSync(
        file,
        JSON.stringify({
          flags: { "from-file": { state: "ENABLED", variants: { on: true, off: false }, defaultVariant: "on" } }
        })
      )
      yield* Effect.gen(function*() {
        const flags = yield* FeatureFlags.FeatureFlags
        assert.isTrue(yield* FeatureFlags.value(FeatureFlags.boolean("from-file", false)))
        // Kill switches land in the database, over the file's flag.
        yield* flags.kill("from-file", { reason: "r", variant: "off" }, { actor: "ops" })
        assert.isFalse(yield* FeatureFlags.value(FeatureFlags.boolean("from-file", true)))
        assert.deepStrictEqual((yield* flags.status).map((s) => s.provider), [`file:${file}`, "sql"])
      }).pipe(
        Effect.provide(
          FeatureFlags.layerConfig().pipe(Layer.provide(layerEmbedded), Layer.provide(env({ FLAGS_FILE: file })))
        )
      )
    }), 60_000)
})

describe("FeatureFlagsHttp OpenAPI", () => {
  it("documents every route and its problems", () => {
    const spec = OpenApi.fromApi(FeatureFlagsHttp.Api)
    const paths = Object.keys(spec.paths).sort()
    assert.deepStrictEqual(paths, [
      "/admin/flags",
      "/admin/flags/{key}",
      "/admin/flags/{key}/kill",
      "/admin/flags/{key}/tenants",
      "/admin/flags/{key}/tenants/{tenantId}"
    ])
    const put = spec.paths["/admin/flags/{key}"]?.put
    assert.deepStrictEqual(Object.keys(put?.responses ?? {}).sort(), ["200", "403", "409", "422"])
  })
})
