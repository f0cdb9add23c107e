import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Option, Redacted } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as DevSetup from "../src/DevSetup.js"
import * as ServerConfig from "../src/ServerConfig.js"
import type { ConfigFile } from "../src/ServerConfig.js"

const base = (overrides: Partial<ServerConfig.ServerConfig>): ServerConfig.ServerConfig => ({
  port: 0,
  host: "127.0.0.1",
  dataDir: Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-dev-")),
  production: false,
  development: true,
  maxBodyBytes: 1024,
  logLevel: "none",
  logFormat: "json",
  configFile: Option.none(),
  ...overrides
})

const noFile: ConfigFile = { tenants: [] }

const resolve = (config: ServerConfig.ServerConfig, file: ConfigFile, env: Record<string, string> = {}) =>
  DevSetup.resolveCredentials(config, file).pipe(
    Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))
  )

const keysOf = (credentials: DevSetup.Credentials) =>
  credentials.bootstrap.keys.map((k) => [k.tenantId, Redacted.value(k.key)] as const)

describe("DevSetup", () => {
  it.effect("without keys, development gets two demo tenants and an admin key, kept across restarts", () =>
    Effect.gen(function*() {
      const config = base({})
      const first = yield* resolve(config, noFile)
      assert.isTrue(first.demo)
      assert.deepStrictEqual(first.bootstrap.keys.map((k) => k.tenantId), ["demo-a", "demo-b"])
      assert.deepStrictEqual(first.bootstrap.tenants.map((t) => t.id), ["demo-a", "demo-b"])
      assert.isTrue(Option.isSome(first.bootstrap.adminKey))
      const again = yield* resolve(config, noFile)
      assert.deepStrictEqual(keysOf(again), keysOf(first))
    }))

  it.effect("production refuses the demo keys and never creates them", () =>
    Effect.gen(function*() {
      const demo = yield* resolve(base({}), noFile)
      const [a, b] = keysOf(demo)
      const refused = yield* Effect.flip(
        resolve(base({ production: true, development: false }), noFile, {
          OUROBOROS_API_KEYS: `${a![0]}:${a![1]},${b![0]}:${b![1]}`
        })
      )
      assert.include(refused.message, "refuses the demo keys")
      const production = base({ production: true, development: false })
      const credentials = yield* resolve(production, {
        tenants: [{ id: "acme" as never, tier: "standard", apiKeys: ["acme-key-0123456789abcdef"] }]
      }, { OUROBOROS_ADMIN_API_KEY: "admin-0123456789abcdef" })
      assert.isFalse(credentials.demo)
      assert.deepStrictEqual(credentials.bootstrap.keys.map((k) => k.tenantId), ["acme"])
      assert.isFalse(Fs.existsSync(Path.join(production.dataDir, "dev-credentials.json")))
    }))

  it.effect("a key listed twice, or equal to the admin key, stops startup with one line that names it", () =>
    Effect.gen(function*() {
      const twice = yield* Effect.flip(resolve(base({}), noFile, {
        OUROBOROS_API_KEYS: "acme:same-key-0123456789,beta:same-key-0123456789"
      }))
      assert.strictEqual(twice._tag, "BootstrapError")
      assert.notInclude(twice.message, "same-key")
      assert.include(twice.message, "the same API key is listed twice")
      assert.notInclude(twice.message, "\n")
      const admin = yield* Effect.flip(resolve(base({}), noFile, {
        OUROBOROS_ADMIN_API_KEY: "admin-key-0123456789",
        OUROBOROS_API_KEYS: "acme:admin-key-0123456789"
      }))
      assert.include(admin.message, "is the admin key (OUROBOROS_ADMIN_API_KEY)")
      assert.notInclude(admin.message, "admin-key-0123456789")
    }))

  it.effect("NODE_ENV is compared without case; demo keys only in development mode", () =>
    Effect.gen(function*() {
      const read = (env: Record<string, string>) =>
        Effect.provideService(ServerConfig.config, ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))
      for (const spelling of ["production", "Production", "PRODUCTION", " production "]) {
        const config = yield* read({ NODE_ENV: spelling })
        assert.deepStrictEqual([config.production, config.development], [true, false], spelling)
      }
      for (const env of [{}, { NODE_ENV: "Development" }]) {
        const config = yield* read(env)
        assert.deepStrictEqual([config.production, config.development], [false, true], JSON.stringify(env))
      }
      // Another mode (a staging or test environment): neither refused nor given demo keys, and nothing printed.
      const staging = yield* read({ NODE_ENV: "staging" })
      assert.deepStrictEqual([staging.production, staging.development], [false, false])
      const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-dev-"))
      const credentials = yield* resolve({ ...base({}), dataDir, production: false, development: false }, noFile)
      assert.isFalse(credentials.demo)
      assert.deepStrictEqual(credentials.bootstrap.keys, [])
      assert.isTrue(Option.isNone(credentials.bootstrap.adminKey))
      assert.isFalse(Fs.existsSync(Path.join(dataDir, "dev-credentials.json")))
      // A production spelled oddly refuses demo keys like the exact one.
      const demo = yield* resolve(base({}), noFile)
      const [a] = keysOf(demo)
      const odd = yield* read({ NODE_ENV: "Production" })
      const refused = yield* Effect.flip(
        resolve({ ...base({}), production: odd.production, development: odd.development }, noFile, {
          OUROBOROS_API_KEYS: `${a![0]}:${a![1]}`
        })
      )
      assert.include(refused.message, "refuses the demo keys")
    }))
})
