import { assert, describe, it } from "@effect/vitest"
import { EventStore } from "@ouroboros/event-store"
import { ConfigProvider, Effect, Result } from "effect"

const load = (entries: ReadonlyArray<readonly [string, string]>) =>
  Effect.provideService(
    Effect.result(EventStore.config),
    ConfigProvider.ConfigProvider,
    ConfigProvider.fromEnv({ env: Object.fromEntries(entries) })
  )

describe("EventStore.config", () => {
  it.effect("defaults", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* load([]), Result.succeed({ maxGroupSize: 256, readBatchSize: 500 }))
    }))

  it.effect("reads and validates its keys", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(
        yield* load([["MAX_GROUP_SIZE", "1"], ["READ_BATCH_SIZE", "1000"]]),
        Result.succeed({ maxGroupSize: 1, readBatchSize: 1000 })
      )
      const bad = yield* load([["MAX_GROUP_SIZE", "0"]])
      assert.isTrue(Result.isFailure(bad))
      assert.include(String(Result.isFailure(bad) ? bad.failure : ""), "MAX_GROUP_SIZE")
      assert.isTrue(Result.isFailure(yield* load([["READ_BATCH_SIZE", "many"]])))
    }))
})
