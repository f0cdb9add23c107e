/**
 * The contract every flag provider meets, run through FeatureFlags on each backend (memory, embedded PGlite,
 * PostgreSQL), and the replica tests of the SQL provider.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Context, Duration, Effect, Fiber, Layer, type Scope, Stream } from "effect"
import type { SqlClient } from "effect/sql"
import { FeatureFlags, type FlagDefinition, FlagProviderSql } from "../src/index.js"

const unique = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2, 10)}`

const boolFlag = (defaultVariant: "on" | "off"): FlagDefinition.Flag => ({
  state: "ENABLED",
  variants: { on: true, off: false },
  defaultVariant
})

const colorFlag: FlagDefinition.Flag = {
  state: "ENABLED",
  variants: { red: "#f00", green: "#0f0", blue: "#00f" },
  defaultVariant: "red",
  targeting: { if: [{ in: [{ var: "tier" }, ["gold", "platinum"]] }, "green", null] },
  metadata: { owner: "search-team", version: 3 }
}

/**
 * The contract on a FeatureFlags layer over the provider under test. `source` is the name the provider gives its
 * flags.
 */
export const contract = (
  name: string,
  flagsLayer: Layer.Layer<FeatureFlags.FeatureFlags, unknown>,
  options: { readonly source: string }
) => {
  layer(flagsLayer, { timeout: "60 seconds" })(name, (it) => {
    it.effect("stores a flag and evaluates it", () =>
      Effect.gen(function*() {
        const flags = yield* FeatureFlags.FeatureFlags
        const key = unique("color")
        const view = yield* flags.put(key, colorFlag, { actor: "ops" })
        assert.deepStrictEqual(view, { key, source: options.source, definition: colorFlag, overrides: {} })
        assert.deepStrictEqual(yield* flags.get(key), view)
        const Color = FeatureFlags.string(key, "none")
        const gold = yield* FeatureFlags.details(Color, { attributes: { tier: "gold" } })
        assert.deepStrictEqual([gold.value, gold.variant, gold.reason], ["#0f0", "green", "TARGETING_MATCH"])
        assert.deepStrictEqual(gold.flagMetadata, { owner: "search-team", version: 3 })
        assert.strictEqual(yield* FeatureFlags.value(Color), "#f00")
        assert.isTrue((yield* flags.list).some((v) => v.key === key))
      }))

    it.effect("replaces and removes a flag", () =>
      Effect.gen(function*() {
        const flags = yield* FeatureFlags.FeatureFlags
        const key = unique("toggle")
        const Toggle = FeatureFlags.boolean(key, false)
        yield* flags.put(key, boolFlag("off"), { actor: "ops" })
        assert.isFalse(yield* FeatureFlags.value(Toggle))
        yield* flags.put(key, boolFlag("on"), { actor: "ops" })
        assert.isTrue(yield* FeatureFlags.value(Toggle))
        yield* flags.remove(key, { actor: "ops" })
        assert.strictEqual((yield* FeatureFlags.details(Toggle)).errorCode, "FLAG_NOT_FOUND")
        assert.isFalse((yield* flags.list).some((v) => v.key === key))
      }))

    it.effect("keeps tenant overrides with who set them and why", () =>
      Effect.gen(function*() {
        const flags = yield* FeatureFlags.FeatureFlags
        const key = unique("color")
        const Color = FeatureFlags.string(key, "none")
        yield* flags.put(key, colorFlag, { actor: "ops" })
        yield* flags.setOverride(key, "acme", { variant: "blue" }, { actor: "alice", reason: "pilot" })
        yield* flags.setOverride(key, "globex", { variant: "green" }, { actor: "bob" })
        yield* flags.setOverride(key, "acme", { variant: "green" }, { actor: "carol", reason: "switch" })
        const view = yield* flags.get(key)
        assert.deepStrictEqual(Object.keys(view.overrides).sort(), ["acme", "globex"])
        assert.deepStrictEqual(
          [view.overrides.acme?.variant, view.overrides.acme?.actor, view.overrides.acme?.reason],
          [
            "green",
            "carol",
            "switch"
          ]
        )
        assert.isUndefined(view.overrides.globex?.reason)
        assert.isFalse(Number.isNaN(Date.parse(view.overrides.acme!.at)))
        assert.strictEqual(yield* FeatureFlags.value(Color, { tenantId: "acme" }), "#0f0")
        yield* flags.removeOverride(key, "acme", { actor: "ops" })
        assert.strictEqual(yield* FeatureFlags.value(Color, { tenantId: "acme" }), "#f00")
        assert.deepStrictEqual(Object.keys((yield* flags.get(key)).overrides), ["globex"])
      }))

    it.effect("takes flag keys and tenant ids that name what every object inherits (valueOf, __proto__, constructor)", () =>
      Effect.gen(function*() {
        const flags = yield* FeatureFlags.FeatureFlags
        const keys = ["valueOf", "__proto__"]
        for (const key of [...keys, "constructor", "toString"]) {
          assert.strictEqual((yield* Effect.flip(flags.get(key)))._tag, "FlagNotFound", key)
        }
        for (const key of keys) {
          const Toggle = FeatureFlags.boolean(key, false)
          const view = yield* flags.put(key, boolFlag("on"), { actor: "ops" })
          assert.deepStrictEqual(view, { key, source: options.source, definition: boolFlag("on"), overrides: {} })
          assert.isTrue(yield* FeatureFlags.value(Toggle))
          yield* flags.setOverride(key, "constructor", { variant: "off" }, { actor: "ops" })
          assert.isFalse(yield* FeatureFlags.value(Toggle, { tenantId: "constructor" }))
          assert.isTrue(yield* FeatureFlags.value(Toggle, { tenantId: "acme" }))
          const killed = yield* flags.kill(key, { reason: "test" }, { actor: "ops" })
          assert.strictEqual(killed.kill?.reason, "test")
          assert.isFalse(yield* FeatureFlags.value(Toggle, { tenantId: "acme" }))
          yield* flags.revive(key, { actor: "ops" })
          assert.isTrue(yield* FeatureFlags.value(Toggle, { tenantId: "acme" }))
        }
        const listed = (yield* flags.list).filter((v) => keys.includes(v.key))
        assert.deepStrictEqual(listed.map((v) => v.key).sort(), [...keys].sort())
        for (const view of listed) {
          assert.deepStrictEqual(Object.keys(view.overrides), ["constructor"])
          assert.isUndefined(view.kill)
        }
        for (const key of keys) {
          yield* flags.removeOverride(key, "constructor", { actor: "ops" })
          yield* flags.remove(key, { actor: "ops" })
          assert.strictEqual((yield* Effect.flip(flags.get(key)))._tag, "FlagNotFound", key)
        }
      }))

    it.effect("keeps a kill switch with its actor, reason and time, and releases it", () =>
      Effect.gen(function*() {
        const flags = yield* FeatureFlags.FeatureFlags
        const key = unique("color")
        const Color = FeatureFlags.string(key, "none")
        yield* flags.put(key, colorFlag, { actor: "ops" })
        yield* flags.setOverride(key, "acme", { variant: "blue" }, { actor: "ops" })
        const killed = yield* flags.kill(key, { reason: "red alert", variant: "green" }, { actor: "alice" })
        assert.deepStrictEqual([killed.kill?.reason, killed.kill?.actor, killed.kill?.variant], [
          "red alert",
          "alice",
          "green"
        ])
        assert.isFalse(Number.isNaN(Date.parse(killed.kill!.at)))
        const details = yield* FeatureFlags.details(Color, { tenantId: "acme" })
        assert.deepStrictEqual([details.value, details.reason], ["#0f0", "DISABLED"])
        const revived = yield* flags.revive(key, { actor: "alice" })
        assert.isUndefined(revived.kill)
        assert.strictEqual(yield* FeatureFlags.value(Color, { tenantId: "acme" }), "#00f")
      }))

    it.effect("publishes changes and reports a ready status", () =>
      Effect.gen(function*() {
        const flags = yield* FeatureFlags.FeatureFlags
        const key = unique("toggle")
        const subscription = yield* flags.subscribe
        const fiber = yield* subscription.pipe(
          Stream.filter((change) => change.keys.includes(key)),
          Stream.take(2),
          Stream.runCollect,
          Effect.forkChild
        )
        yield* flags.put(key, boolFlag("on"), { actor: "ops" })
        yield* flags.kill(key, { reason: "r" }, { actor: "ops" })
        const changes = yield* Fiber.join(fiber)
        assert.strictEqual(changes.length, 2)
        assert.strictEqual(changes[1]!.state.kills[key]?.reason, "r")
        const statuses = yield* flags.status
        assert.isTrue(statuses.length > 0 && statuses.every((s) => s.status === "ready"))
      }))
  })
}

/**
 * Waits until `condition` holds, checking every 10 ms, and returns how long it took (logged, never asserted). The
 * deadline only bounds the test (a replica that never sees the change fails it): how fast a change propagates is a
 * property of the poll interval and of LISTEN/NOTIFY, not something a unit test can time on a shared machine.
 */
export const eventually = <E, R>(condition: Effect.Effect<boolean, E, R>, deadline: Duration.Input = "30 seconds") =>
  Effect.gen(function*() {
    const start = Date.now()
    const limit = Duration.toMillis(Duration.fromInputUnsafe(deadline))
    while (!(yield* condition)) {
      if (Date.now() - start > limit) return assert.fail(`not seen after ${limit} ms`)
      yield* Effect.sleep(Duration.millis(10))
    }
    return Date.now() - start
  })

/**
 * Two replicas: two FeatureFlags instances on one database, each with its own provider (and, for PostgreSQL, its
 * own connection pool). A change made through one is seen by the other (polled for, without a time bound).
 */
export const replicas = (
  name: string,
  makeReplicas: Effect.Effect<
    readonly [FeatureFlags.FeatureFlags["Service"], FeatureFlags.FeatureFlags["Service"]],
    unknown,
    Scope.Scope
  >
) => {
  describe(name, () => {
    {
      it.live("a kill switch, a definition and an override reach the other replica", () =>
        Effect.gen(function*() {
          const [a, b] = yield* makeReplicas
          const key = unique("rollout")
          const Flag = FeatureFlags.boolean(key, false)
          yield* a.put(key, boolFlag("on"), { actor: "ops" })
          const seenPut = yield* eventually(Effect.sync(() => b.detailsSync(Flag, {}).value))
          yield* a.kill(key, { reason: "errors", variant: "off" }, { actor: "alice" })
          const seenKill = yield* eventually(Effect.sync(() => b.detailsSync(Flag, {}).reason === "DISABLED"))
          assert.strictEqual((yield* b.get(key)).kill?.actor, "alice")
          yield* b.revive(key, { actor: "bob" })
          const seenRevive = yield* eventually(Effect.sync(() => a.detailsSync(Flag, {}).value))
          yield* b.setOverride(key, "acme", { variant: "off" }, { actor: "bob" })
          const seenOverride = yield* eventually(Effect.sync(() => !a.detailsSync(Flag, { tenantId: "acme" }).value))
          yield* Effect.logInfo(
            `seen after put ${seenPut} ms, kill ${seenKill} ms, revive ${seenRevive} ms, override ${seenOverride} ms`
          )
        }), 60_000)
    }
  })
}

/** Two FeatureFlags replicas, each on its own SqlClient layer (built here), sharing one database. */
export const sqlReplicas = (
  first: Layer.Layer<SqlClient.SqlClient, unknown>,
  second: Layer.Layer<SqlClient.SqlClient, unknown>,
  options: FlagProviderSql.Options
) =>
  Effect.gen(function*() {
    const a = yield* Layer.build(FeatureFlags.layerSql(options).pipe(Layer.provide(first)))
    const b = yield* Layer.build(FeatureFlags.layerSql(options).pipe(Layer.provide(second)))
    return [Context.get(a, FeatureFlags.FeatureFlags), Context.get(b, FeatureFlags.FeatureFlags)] as const
  })
