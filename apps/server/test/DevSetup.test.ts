import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as DevSetup from "../src/DevSetup.js"
import type { ServerConfig } from "../src/ServerConfig.js"

const base = (overrides: Partial<ServerConfig>): ServerConfig => ({
  port: 0,
  host: "127.0.0.1",
  dataDir: Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-dev-")),
  production: false,
  maxBodyBytes: 1024,
  logLevel: "none",
  logFormat: "json",
  adminApiKey: Option.none(),
  apiKeys: [],
  configFile: Option.none(),
  ...overrides
})

describe("DevSetup", () => {
  it.effect("without keys, development gets two demo tenants, kept across restarts", () =>
    Effect.gen(function*() {
      const config = base({})
      const first = yield* DevSetup.resolveKeys(config, { tenants: [] })
      assert.isTrue(first.demo)
      assert.deepStrictEqual(first.tenantKeys.map((k) => k.tenant), ["demo-a", "demo-b"])
      const again = yield* DevSetup.resolveKeys(config, { tenants: [] })
      assert.deepStrictEqual(again.tenantKeys.map((k) => Redacted.value(k.key)), first.tenantKeys.map((k) => Redacted.value(k.key)))
    }))

  it.effect("production refuses the demo keys and never creates them", () =>
    Effect.gen(function*() {
      const dev = base({})
      const demo = yield* DevSetup.resolveKeys(dev, { tenants: [] })
      const refused = yield* Effect.flip(DevSetup.resolveKeys(
        base({ production: true, apiKeys: demo.tenantKeys }),
        { tenants: [] }
      ))
      assert.include(refused.message, "refuses the demo keys")
      const production = base({ production: true, adminApiKey: Option.some(Redacted.make("admin-0123456789abcdef")) })
      const keys = yield* DevSetup.resolveKeys(production, { tenants: [{ id: "acme", tier: "standard", apiKeys: ["acme-key-0123456789abcdef"] }] })
      assert.isFalse(keys.demo)
      assert.deepStrictEqual(keys.tenantKeys.map((k) => k.tenant), ["acme"])
      assert.isFalse(Fs.existsSync(Path.join(production.dataDir, "dev-credentials.json")))
    }))
})
