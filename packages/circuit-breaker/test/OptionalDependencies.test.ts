import { assert, describe, it } from "@effect/vitest"
import * as ModuleLoads from "@ouroboros/testkit/ModuleLoads"
import { Effect } from "effect"
import { fileURLToPath } from "node:url"

/** Runs a fixture of ./fixtures in its own Node process, without the REDIS_URL of the test's environment. */
const runFixture = (name: string, deny?: RegExp) =>
  ModuleLoads.record(fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url)), {
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    env: { REDIS_URL: undefined },
    deny
  })

describe("optional dependencies", () => {
  it.effect("a program on per-process breakers loads neither ioredis, pg nor OpenTelemetry", () =>
    Effect.gen(function*() {
      const { loaded, output } = yield* runFixture("memory-only.ts")
      assert.deepStrictEqual(output, [42, "closed"])
      // The hook saw the package's modules: the list is the program's, not an empty one.
      assert.isTrue(loaded.some((line) => line.endsWith("/circuit-breaker/src/CircuitBreakerStore.ts")))
      assert.isTrue(loaded.some((line) => line.endsWith("/circuit-breaker/src/CircuitBreaker/RedisLazy.ts")))
      assert.deepStrictEqual(ModuleLoads.matching(loaded), [])
    }))

  it.effect("the control: CircuitBreakerRedis.load loads ioredis, and the hook sees it", () =>
    Effect.gen(function*() {
      const { loaded, output } = yield* runFixture("redis-load.ts")
      assert.strictEqual(output, "function")
      assert.isTrue(ModuleLoads.matching(loaded).some((line) => line.startsWith("ioredis ")))
    }))

  it.effect("without ioredis, CircuitBreakerRedis.load fails with RedisStoreUnavailable and layerRedis dies", () =>
    Effect.gen(function*() {
      const { loaded, output } = yield* runFixture("without-ioredis.ts", /^ioredis$/)
      assert.isTrue(loaded.includes("ioredis denied"))
      assert.deepStrictEqual(output, {
        load: "RedisStoreUnavailable",
        message: "Cannot load the Redis circuit-breaker store (is ioredis installed?)",
        layer: "die"
      })
    }))
})
