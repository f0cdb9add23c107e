import { assert, describe, it } from "@effect/vitest"
import * as ModuleLoads from "@ouroboros/testkit/ModuleLoads"
import { Effect } from "effect"
import { fileURLToPath } from "node:url"

/** Runs a fixture of ./fixture in its own Node process, without the REDIS_URL of the test's environment. */
const runFixture = (name: string, env: Record<string, string | undefined> = {}, deny?: RegExp) =>
  ModuleLoads.record(fileURLToPath(new URL(`./fixture/${name}`, import.meta.url)), {
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    env: { REDIS_URL: undefined, ...env },
    deny
  })

describe("optional dependencies", () => {
  it.effect("a program on the memory limiter loads neither ioredis, pg nor OpenTelemetry", () =>
    Effect.gen(function*() {
      const { loaded, output } = yield* runFixture("memory-only.ts")
      assert.deepStrictEqual(output, [true, true])
      // The hook saw the package's modules: the list is the program's, not an empty one.
      assert.isTrue(loaded.some((line) => line.endsWith("/rate-limit/src/RateLimiter/Memory.ts")))
      assert.isTrue(loaded.some((line) => line.endsWith("/rate-limit/src/RateLimiter.ts")))
      assert.deepStrictEqual(ModuleLoads.matching(loaded), [])
    }))

  it.effect("the control: importing the Redis store module loads ioredis, and the hook sees it", () =>
    Effect.gen(function*() {
      const { loaded, output } = yield* runFixture("redis-import.ts")
      assert.strictEqual(output, "function")
      assert.isTrue(ModuleLoads.matching(loaded).some((line) => line.startsWith("ioredis ")))
    }))

  it.effect("without ioredis, layerConfig with REDIS_URL fails with RateLimitStoreError", () =>
    Effect.gen(function*() {
      const { loaded, output } = yield* runFixture(
        "without-ioredis.ts",
        { REDIS_URL: "redis://127.0.0.1:6379" },
        /^ioredis$/
      )
      assert.isTrue(loaded.includes("ioredis denied"))
      assert.deepStrictEqual(output, {
        tag: "RateLimitStoreError",
        message: "Cannot load the Redis rate-limit store (is ioredis installed?)"
      })
    }))
})
