import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Option, Result } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as ServerConfig from "../src/ServerConfig.js"

const file = (name: string, text: string) => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-config-"))
  Fs.writeFileSync(Path.join(dir, name), text)
  return Option.some(Path.join(dir, name))
}

const fromEnv = (env: Record<string, string>) =>
  Effect.result(
    ServerConfig.config.pipe(
      Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))
    )
  )

describe("ServerConfig", () => {
  it.effect("a bad variable is one line naming it", () =>
    Effect.gen(function*() {
      const bad = yield* fromEnv({ PORT: "abc" })
      assert.isTrue(Result.isFailure(bad))
      if (Result.isFailure(bad)) assert.match(ServerConfig.describeConfigError(bad.failure), /^PORT: /)
      const good = yield* fromEnv({ PORT: "9000" })
      assert.isTrue(Result.isSuccess(good))
      if (Result.isSuccess(good)) assert.strictEqual(good.success.port, 9000)
    }))

  it.effect("the config file is decoded: every error names its field; YAML and JSON both work", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(ServerConfig.loadFile(file("c.yaml", "tenants:\n  - id: Bad\nextra: 1\n")))
      assert.include(error.message, "tenants[0].id:")
      assert.include(error.message, "extra: is unexpected")
      const broken = yield* Effect.flip(ServerConfig.loadFile(file("c.json", "{ nope")))
      assert.include(broken.message, "is not valid")
      const loaded = yield* ServerConfig.loadFile(
        file(
          "c.json",
          JSON.stringify({ tenants: [{ id: "acme", tier: "enterprise", apiKeys: ["acme-key-0123456789"] }] })
        )
      )
      assert.deepStrictEqual(
        loaded.tenants,
        [{ id: "acme", tier: "enterprise", apiKeys: ["acme-key-0123456789"] }] as never
      )
      // Today's section is tenancy's: quotas, a model and a collection of its own per tenant, and tier defaults.
      const full = yield* ServerConfig.loadFile(file(
        "c.yaml",
        [
          "tenants:",
          "  - id: big",
          "    dedicatedCollection: true",
          "    model: llama3.1:70b",
          "    quotas: { documents: 10 }",
          "    apiKeys: [{ key: big-key-0123456789abc, roles: [reader] }]",
          "quotas:",
          "  free: { requestsPerDay: 100 }"
        ].join("\n")
      ))
      assert.strictEqual(full.tenants[0]?.dedicatedCollection, true)
      assert.deepStrictEqual(full.quotas, { free: { requestsPerDay: 100 } })
      const badQuota = yield* Effect.flip(
        ServerConfig.loadFile(file("c.json", JSON.stringify({ quotas: { free: { documents: -1 } } })))
      )
      assert.include(badQuota.message, "quotas.free.documents")
      assert.deepStrictEqual((yield* ServerConfig.loadFile(Option.none())).tenants, [])
    }))
})
