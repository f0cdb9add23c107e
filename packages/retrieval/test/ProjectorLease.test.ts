import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect } from "effect"
import * as ProjectorLease from "../src/ProjectorLease.js"

const withEnv = (env: Record<string, string>) =>
  Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))

describe("ProjectorLease", () => {
  it.effect("the local lease (one process) is always held and runs the projection as it is", () =>
    Effect.gen(function*() {
      const lease = yield* ProjectorLease.ProjectorLease
      assert.isTrue(yield* lease.held)
      assert.strictEqual(yield* lease.whileHeld(Effect.succeed(42)), 42)
      const failed = yield* Effect.flip(lease.whileHeld(Effect.fail("boom" as const)))
      assert.strictEqual(failed, "boom")
    }).pipe(Effect.provide(ProjectorLease.layerLocal)))

  it.effect("config: defaults, durations, and a bad value named", () =>
    Effect.gen(function*() {
      const defaults = yield* ProjectorLease.config.pipe(withEnv({}))
      assert.deepStrictEqual(
        [Duration.toMillis(defaults.retryInterval), Duration.toMillis(defaults.checkInterval)],
        [5_000, 2_000]
      )
      const set = yield* ProjectorLease.config.pipe(
        withEnv({ RETRY_INTERVAL: "500 millis", CHECK_INTERVAL: "1 second" })
      )
      assert.deepStrictEqual([Duration.toMillis(set.retryInterval), Duration.toMillis(set.checkInterval)], [500, 1_000])
      const bad = yield* Effect.flip(ProjectorLease.config.pipe(withEnv({ RETRY_INTERVAL: "soon" })))
      assert.include(String(bad), "RETRY_INTERVAL")
    }))
})
