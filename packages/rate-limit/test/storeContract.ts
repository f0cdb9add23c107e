/**
 * The contract every store satisfies, run against memory and Redis. Windows are long so that real clocks (Redis'
 * TIME) cannot move a result.
 */
import { assert, it } from "@effect/vitest"
import { Effect, type Layer } from "effect"
import { RateLimiterStore } from "../src/RateLimiterStore.js"

export const testStore = (layer: Layer.Layer<RateLimiterStore>, prefix: () => string) => {
  const hour = 3_600_000
  it.effect("admits exactly the limit, then rejects with a retry-after", () =>
    Effect.gen(function*() {
      const store = yield* RateLimiterStore
      const key = `${prefix()}tb`
      const check = { scope: "t", key, algorithm: "token-bucket" as const, limit: 3, windowMillis: hour }
      const results = []
      for (let i = 0; i < 4; i++) results.push((yield* store.consume([check], 1))[0]!)
      assert.deepStrictEqual(results.map((r) => r.allowed), [true, true, true, false])
      assert.deepStrictEqual(results.map((r) => r.remaining), [2, 1, 0, 0])
      assert.isAbove(results[3]!.retryAfterMillis, hour / 3 - 100)
      assert.isAtMost(results[3]!.retryAfterMillis, hour / 3)
    }).pipe(Effect.provide(layer)))

  it.effect("sliding window admits the limit within a window", () =>
    Effect.gen(function*() {
      const store = yield* RateLimiterStore
      const check = {
        scope: "t",
        key: `${prefix()}sw`,
        algorithm: "sliding-window" as const,
        limit: 2,
        windowMillis: hour
      }
      const results = []
      for (let i = 0; i < 3; i++) results.push((yield* store.consume([check], 1))[0]!)
      assert.deepStrictEqual(results.map((r) => r.allowed), [true, true, false])
      assert.isAbove(results[2]!.retryAfterMillis, 0)
    }).pipe(Effect.provide(layer)))

  it.effect("several policies are atomic: a rejected request consumes nothing", () =>
    Effect.gen(function*() {
      const store = yield* RateLimiterStore
      const burst = {
        scope: "t",
        key: `${prefix()}burst`,
        algorithm: "token-bucket" as const,
        limit: 2,
        windowMillis: hour
      }
      const quota = {
        scope: "t",
        key: `${prefix()}quota`,
        algorithm: "sliding-window" as const,
        limit: 5,
        windowMillis: hour
      }
      const a = yield* store.consume([burst, quota], 1)
      const b = yield* store.consume([burst, quota], 1)
      const c = yield* store.consume([burst, quota], 1)
      assert.deepStrictEqual([a, b, c].map((r) => r.map((x) => x.allowed)), [[true, true], [true, true], [false, true]])
      // The quota still has 3 left: the rejected third request took nothing from it.
      assert.strictEqual(c[1]!.remaining, 3)
      const alone = yield* store.consume([quota], 1)
      assert.strictEqual(alone[0]!.remaining, 2)
    }).pipe(Effect.provide(layer)))

  it.effect("a cost larger than what is left is rejected without consuming", () =>
    Effect.gen(function*() {
      const store = yield* RateLimiterStore
      const check = {
        scope: "t",
        key: `${prefix()}cost`,
        algorithm: "token-bucket" as const,
        limit: 5,
        windowMillis: hour
      }
      assert.isTrue((yield* store.consume([check], 4))[0]!.allowed)
      assert.isFalse((yield* store.consume([check], 2))[0]!.allowed)
      const last = (yield* store.consume([check], 1))[0]!
      assert.isTrue(last.allowed)
      assert.strictEqual(last.remaining, 0)
    }).pipe(Effect.provide(layer)))
}
