import { assert, describe, it } from "@effect/vitest"
import { EventStore } from "@ouroboros/event-store"
import { ConfigProvider, Effect, Either } from "effect"

const load = (entries: ReadonlyArray<readonly [string, string]>) =>
  Effect.withConfigProvider(Effect.either(EventStore.config), ConfigProvider.fromMap(new Map(entries)))

describe("EventStore.config", () => {
  it.effect("defaults", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* load([]), Either.right({ maxGroupSize: 256, readBatchSize: 500 }))
    }))

  it.effect("reads and validates its keys", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(
        yield* load([["MAX_GROUP_SIZE", "1"], ["READ_BATCH_SIZE", "1000"]]),
        Either.right({ maxGroupSize: 1, readBatchSize: 1000 })
      )
      const bad = yield* load([["MAX_GROUP_SIZE", "0"]])
      assert.isTrue(Either.isLeft(bad))
      assert.include(String(Either.getLeft(bad).pipe((o) => o._tag === "Some" ? o.value : "")), "MAX_GROUP_SIZE")
      assert.isTrue(Either.isLeft(yield* load([["READ_BATCH_SIZE", "many"]])))
    }))
})
