import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Option, Redacted } from "effect"
import * as Jwt from "../src/Jwt.js"
import * as TenantConfig from "../src/TenantConfig.js"
import * as Tenants from "../src/Tenants.js"
import * as Usage from "../src/Usage.js"

const withEnv = (env: Record<string, string>) =>
  Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromUnknown(env))

describe("configuration", () => {
  it.effect("defaults", () =>
    Effect.gen(function*() {
      const tenants = yield* Tenants.config
      assert.deepStrictEqual(tenants, {
        pepper: undefined,
        rotationGraceMillis: 86_400_000,
        cacheCapacity: 10_000,
        cacheTtlMillis: 30_000,
        lastUsedIntervalMillis: 60_000,
        jwtDefaultRoles: ["reader"]
      })
      const jwt = yield* Jwt.config
      assert.strictEqual(jwt.secret, undefined)
      assert.strictEqual(jwt.jwksUrl, undefined)
      assert.deepStrictEqual(jwt.algorithms, [])
      assert.strictEqual(jwt.clockSkewMillis, 30_000)
      assert.strictEqual(jwt.tenantClaim, "tenant_id")
      assert.strictEqual(jwt.rolesClaim, "roles")
      assert.strictEqual(jwt.maxLength, 8192)
      assert.strictEqual(jwt.jwksCooldownMillis, 30_000)
      assert.deepStrictEqual(yield* Usage.config, {
        flushIntervalMillis: 10_000,
        source: "/ouroboros/usage",
        retentionMillis: 400 * 86_400_000,
        pruneIntervalMillis: 3_600_000
      })
      const vars = yield* TenantConfig.variables
      assert.isTrue(Option.isNone(vars.adminKey))
      assert.strictEqual(Redacted.value(vars.apiKeys), "")
    }).pipe(withEnv({})))

  it.effect("reads every variable", () =>
    Effect.gen(function*() {
      const tenants = yield* Tenants.config
      assert.strictEqual(Redacted.value(tenants.pepper!), "pepper")
      assert.strictEqual(tenants.rotationGraceMillis, 7_200_000)
      assert.strictEqual(tenants.cacheCapacity, 50)
      assert.strictEqual(tenants.cacheTtlMillis, 45_000)
      assert.strictEqual(tenants.lastUsedIntervalMillis, 300_000)
      assert.deepStrictEqual(tenants.jwtDefaultRoles, ["reader", "writer"])
      const jwt = yield* Jwt.config
      assert.strictEqual(Redacted.value(jwt.secret!), "s".repeat(40))
      assert.deepStrictEqual(jwt.algorithms, ["HS256", "HS512"])
      assert.strictEqual(jwt.issuer, "https://idp.example")
      assert.deepStrictEqual(jwt.audience, ["api", "ouroboros"])
      assert.strictEqual(jwt.clockSkewMillis, 5_000)
      assert.strictEqual(jwt.tenantClaim, "org")
      assert.strictEqual(jwt.rolesClaim, "perms")
      assert.strictEqual(jwt.maxLength, 4096)
      assert.strictEqual(jwt.jwksCooldownMillis, 60_000)
      assert.strictEqual(jwt.jwksCacheMaxAgeMillis, 3_600_000)
      assert.deepStrictEqual(yield* Usage.config, {
        flushIntervalMillis: 500,
        source: "//replica-1",
        retentionMillis: 90 * 86_400_000,
        pruneIntervalMillis: 900_000
      })
      const bootstrap = yield* TenantConfig.fromEnv()
      assert.deepStrictEqual(bootstrap.keys.map((k) => k.tenantId), ["acme"])
      assert.isTrue(Option.isSome(bootstrap.adminKey))
    }).pipe(withEnv({
      API_KEY_PEPPER: "pepper",
      API_KEY_ROTATION_GRACE: "2h",
      API_KEY_CACHE_SIZE: "50",
      API_KEY_CACHE_TTL: "45",
      API_KEY_LAST_USED_INTERVAL: "5m",
      JWT_DEFAULT_ROLES: "reader, writer",
      JWT_SECRET: "s".repeat(40),
      JWT_ALGORITHMS: "HS256,HS512",
      JWT_ISSUER: "https://idp.example",
      JWT_AUDIENCE: "api,ouroboros",
      JWT_CLOCK_SKEW: "5s",
      JWT_TENANT_CLAIM: "org",
      JWT_ROLES_CLAIM: "perms",
      JWT_MAX_LENGTH: "4096",
      JWT_JWKS_COOLDOWN: "1m",
      JWT_JWKS_CACHE_MAX_AGE: "1 hour",
      USAGE_FLUSH_INTERVAL: "500ms",
      USAGE_EVENT_SOURCE: "//replica-1",
      USAGE_RETENTION: "90d",
      USAGE_PRUNE_INTERVAL: "15m",
      OUROBOROS_ADMIN_API_KEY: "admin-key-0123456789abcdef",
      OUROBOROS_API_KEYS: "acme:acme-key-0123456789abcdef"
    })))

  it.effect("refuses bad values, naming the variable", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [string, string, Effect.Effect<unknown, unknown>]> = [
        ["JWT_DEFAULT_ROLES", "reader,superuser", Effect.asVoid(Tenants.config)],
        ["API_KEY_ROTATION_GRACE", "soon", Effect.asVoid(Tenants.config)],
        ["API_KEY_CACHE_SIZE", "0", Effect.asVoid(Tenants.config)],
        ["JWT_CLOCK_SKEW", "-5", Effect.asVoid(Jwt.config)],
        ["JWT_JWKS_URL", "not a url", Effect.asVoid(Jwt.config)]
      ]
      for (const [name, value, config] of cases) {
        const exit = yield* Effect.exit(config.pipe(withEnv({ [name]: value })))
        assert.isTrue(Exit.isFailure(exit), name)
        assert.include(String(exit), name)
      }
    }))
})
