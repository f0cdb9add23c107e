import { assert, describe, it } from "@effect/vitest"
import { Testing } from "@ouroboros/server"
import { Services } from "@ouroboros/testkit"
import { Effect } from "effect"
import { call, tenantA, tenantB } from "./helpers.js"

describe("rate limiting, end to end", () => {
  it.live(
    "every /api route has a default policy per API key, visible in headers; excess gets 429",
    () =>
      Effect.gen(function*() {
        const server = yield* Testing.start({ RATE_LIMIT_DEFAULT: "3/1m" })
        const url = `${server.url}/api/v1/whoami`
        const first = yield* call(url, { headers: tenantA })
        assert.strictEqual(first.status, 200)
        assert.strictEqual(first.headers.get("ratelimit-policy"), `"default";q=3;w=60`)
        assert.match(first.headers.get("ratelimit") ?? "", /^"default";r=2;t=\d+$/)
        yield* call(url, { headers: tenantA })
        yield* call(url, { headers: tenantA })
        const limited = yield* call(url, { headers: tenantA, method: "GET" })
        assert.strictEqual(limited.status, 429)
        assert.strictEqual(limited.headers.get("content-type"), "application/problem+json")
        assert.match(limited.headers.get("retry-after") ?? "", /^[1-9]\d*$/)
        assert.deepStrictEqual(limited.body["violated-policies"], ["default"])
        assert.isString(limited.body.correlationId)
        // Another key has its own budget, and probes are never limited.
        assert.strictEqual((yield* call(url, { headers: tenantB })).status, 200)
        for (let i = 0; i < 5; i++) assert.strictEqual((yield* call(`${server.url}/health/live`)).status, 200)
      }),
    { timeout: 60_000 }
  )

  it.live("policies from the config file apply per tenant tier and endpoint", () =>
    Effect.gen(function*() {
      const dir = yield* Testing.tempDir
      const file = `${dir}/ouroboros.yaml`
      yield* Effect.promise(() =>
        import("node:fs/promises").then((fs) =>
          fs.writeFile(
            file,
            [
              "tenants:",
              "  - id: tenant-a",
              "    tier: free",
              "rateLimit:",
              "  - name: free-search",
              "    limit: 1",
              "    window: 1m",
              "    scope: [tenant]",
              "    tiers: [free]",
              "    endpoints: [\"POST /api/v1/search\"]"
            ].join("\n")
          )
        )
      )
      const server = yield* Testing.start({ OUROBOROS_CONFIG: file })
      const search = `${server.url}/api/v1/search`
      assert.strictEqual((yield* call(search, { headers: tenantA, body: { query: "x" } })).status, 200)
      const limited = yield* call(search, { headers: tenantA, body: { query: "x" } })
      assert.strictEqual(limited.status, 429)
      assert.include(limited.body["violated-policies"], "free-search")
      // tenant-b is not on the free tier.
      assert.strictEqual((yield* call(search, { headers: tenantB, body: { query: "x" } })).status, 200)
      assert.strictEqual((yield* call(search, { headers: tenantB, body: { query: "x" } })).status, 200)
    }), { timeout: 60_000 })
})

describe.runIf(await Services.redis())("with REDIS_URL", () => {
  it.live("two servers share one rate-limit budget through Redis", () =>
    Effect.gen(function*() {
      const prefix = `ouroboros-test-${Math.random().toString(36).slice(2, 8)}`
      const env = {
        REDIS_URL: Services.redisUrl,
        RATE_LIMIT_REDIS_PREFIX: prefix,
        RATE_LIMIT_DEFAULT: "4/1m",
        RATE_LIMIT_REDIS_FAILURE: "closed"
      }
      const one = yield* Testing.start(env)
      const two = yield* Testing.start(env)
      const statuses: Array<number> = []
      for (let i = 0; i < 3; i++) {
        statuses.push((yield* call(`${one.url}/api/v1/whoami`, { headers: tenantA })).status)
        statuses.push((yield* call(`${two.url}/api/v1/whoami`, { headers: tenantA })).status)
      }
      assert.deepStrictEqual(statuses, [200, 200, 200, 200, 429, 429])
      const health = yield* call(`${one.url}/health/ready`)
      assert.strictEqual(health.body.checks["rate-limit:store"][0].status, "pass")
    }), { timeout: 60_000 })
})
