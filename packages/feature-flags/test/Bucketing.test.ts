/**
 * Percentage rollouts and A/B splits with flagd's `fractional`: a key's bucket is MurmurHash3(flag key + targeting
 * key) scaled to the total weight, and variants own consecutive ranges of buckets in the order they are listed. So
 * shares follow weights, and growing the first variant's weight (taking from the last) only moves keys into it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as FastCheck from "fast-check"
import { FeatureFlags, type FlagDefinition } from "../src/index.js"

const keys = 100_000

const rollout = (percent: number): FlagDefinition.Flag => ({
  state: "ENABLED",
  variants: { on: true, off: false },
  defaultVariant: "off",
  // "on" first: its range is [0, percent) of the buckets, so a larger percent is a superset.
  targeting: { fractional: [["on", percent], ["off", 100 - percent]] }
})

const split = (weights: Record<string, number>): FlagDefinition.Flag => ({
  state: "ENABLED",
  variants: Object.fromEntries(Object.keys(weights).map((v) => [v, v])),
  defaultVariant: Object.keys(weights)[0]!,
  targeting: { fractional: Object.entries(weights) }
})

const Checkout = FeatureFlags.boolean("new-checkout", false)
const Experiment = FeatureFlags.string("ranking-experiment", "control")

const enabledKeys = (flags: FeatureFlags.FeatureFlags["Service"]) => {
  const enabled = new Set<number>()
  for (let i = 0; i < keys; i++) {
    if (flags.detailsSync(Checkout, { targetingKey: `user-${i}` }).value) enabled.add(i)
  }
  return enabled
}

describe("bucketing", () => {
  it.effect("over 100k keys every variant's share is within 1% of its weight", () =>
    Effect.gen(function*() {
      const flags = yield* FeatureFlags.FeatureFlags
      for (const weights of [{ control: 50, a: 30, b: 20 }, { control: 1, a: 1, b: 1, c: 1 }, { control: 90, a: 10 }]) {
        yield* flags.put(Experiment.key, split(weights), { actor: "test" })
        const counts: Record<string, number> = {}
        for (let i = 0; i < keys; i++) {
          const details = flags.detailsSync(Experiment, { targetingKey: `user-${i}` })
          assert.strictEqual(details.reason, "TARGETING_MATCH")
          counts[details.value] = (counts[details.value] ?? 0) + 1
        }
        const total = Object.values(weights).reduce((a, b) => a + b, 0)
        for (const [variant, weight] of Object.entries(weights)) {
          const share = (counts[variant] ?? 0) / keys
          assert.isBelow(
            Math.abs(share - weight / total),
            0.01,
            `${variant}: ${share} for a weight of ${weight}/${total}`
          )
        }
      }
    }).pipe(Effect.provide(FeatureFlags.layerMemory())))

  it.effect("raising a rollout from 10% to 20% moves no key out of the enabled group", () =>
    Effect.gen(function*() {
      const flags = yield* FeatureFlags.FeatureFlags
      yield* flags.put(Checkout.key, rollout(10), { actor: "test" })
      const at10 = enabledKeys(flags)
      yield* flags.put(Checkout.key, rollout(20), { actor: "test" })
      const at20 = enabledKeys(flags)
      assert.isBelow(Math.abs(at10.size / keys - 0.1), 0.01)
      assert.isBelow(Math.abs(at20.size / keys - 0.2), 0.01)
      const dropped = [...at10].filter((i) => !at20.has(i))
      assert.deepStrictEqual(dropped, [])
    }).pipe(Effect.provide(FeatureFlags.layerMemory())))

  it.effect("ranges follow the order of the variants: growing one takes keys only from those after it", () =>
    Effect.gen(function*() {
      const flags = yield* FeatureFlags.FeatureFlags
      const assign = () => {
        const out: Array<string> = []
        for (let i = 0; i < 20_000; i++) out.push(flags.detailsSync(Experiment, { targetingKey: `user-${i}` }).value)
        return out
      }
      yield* flags.put(Experiment.key, split({ a: 10, b: 10, c: 80 }), { actor: "test" })
      const before = assign()
      yield* flags.put(Experiment.key, split({ a: 10, b: 20, c: 70 }), { actor: "test" })
      const after = assign()
      const moves = new Set(before.map((v, i) => `${v}->${after[i]}`).filter((m) => m[0] !== m[3]))
      assert.deepStrictEqual([...moves], ["c->b"])
      // Inserting a variant in front shifts every range after it: keys leave "b".
      yield* flags.put(Experiment.key, {
        ...split({ holdout: 5, a: 10, b: 20, c: 65 }),
        defaultVariant: "a"
      }, { actor: "test" })
      const shifted = assign()
      assert.isAbove(after.filter((v, i) => v === "b" && shifted[i] !== "b").length, 0)
    }).pipe(Effect.provide(FeatureFlags.layerMemory())))

  it.effect("a key keeps its bucket for any raise of a rollout (property)", () =>
    Effect.gen(function*() {
      const flags = yield* FeatureFlags.FeatureFlags
      const samples = FastCheck.sample(
        FastCheck.tuple(
          FastCheck.integer({ min: 0, max: 100 }),
          FastCheck.integer({ min: 0, max: 100 }),
          FastCheck.array(FastCheck.string({ minLength: 1, maxLength: 24 }), { minLength: 50, maxLength: 50 })
        ),
        50
      )
      for (const [a, b, targetingKeys] of samples) {
        const [low, high] = a <= b ? [a, b] : [b, a]
        yield* flags.put(Checkout.key, rollout(low), { actor: "test" })
        const before = targetingKeys.map((targetingKey) => flags.detailsSync(Checkout, { targetingKey }).value)
        yield* flags.put(Checkout.key, rollout(high), { actor: "test" })
        const after = targetingKeys.map((targetingKey) => flags.detailsSync(Checkout, { targetingKey }).value)
        before.forEach((enabled, i) => {
          if (enabled) assert.isTrue(after[i], `${targetingKeys[i]} left the rollout going from ${low}% to ${high}%`)
        })
      }
    }).pipe(Effect.provide(FeatureFlags.layerMemory())))

  it.effect("the bucket is per flag: the same key lands independently in two flags", () =>
    Effect.gen(function*() {
      const flags = yield* FeatureFlags.FeatureFlags
      yield* flags.put("first", rollout(50), { actor: "test" })
      yield* flags.put("second", rollout(50), { actor: "test" })
      let both = 0
      for (let i = 0; i < 10_000; i++) {
        const context = { targetingKey: `user-${i}` }
        if (
          flags.detailsSync(FeatureFlags.boolean("first", false), context).value &&
          flags.detailsSync(FeatureFlags.boolean("second", false), context).value
        ) both++
      }
      // Independent halves overlap on a quarter of the keys; the same hash would give a half.
      assert.isBelow(Math.abs(both / 10_000 - 0.25), 0.02)
    }).pipe(Effect.provide(FeatureFlags.layerMemory())))
})
