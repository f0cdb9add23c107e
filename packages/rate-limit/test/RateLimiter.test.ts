import { assert, describe, it } from "@effect/vitest"
import { Clock, ConfigProvider, Context, Duration, Effect, Layer, Metric, Option, Result, Schema } from "effect"
import { RateLimiter as Persistence } from "effect/persistence"
import { TestClock } from "effect/testing"
import * as RateLimiter from "../src/RateLimiter.js"
import * as Memory from "../src/RateLimiter/Memory.js"
import * as RateLimiterStore from "../src/RateLimiterStore.js"
import { RateLimitStoreError } from "../src/RateLimiterStore.js"
import { GcraModel, SlidingModel } from "./reference.js"
import { testStore } from "./storeContract.js"

const subject: RateLimiter.Subject = { apiKey: "k1", client: "10.0.0.1", endpoint: "GET /api/v1/things" }

const limiterWith = (policies: ReadonlyArray<RateLimiter.Policy>, store = Memory.makeUnsafe()) =>
  RateLimiter.makeUnsafe(store, { policies })

/** Arbitraries as schemas (`effect/Arbitrary` derives them). */
const int = (minimum: number, maximum: number) => Schema.Int.check(Schema.isBetween({ minimum, maximum }))

/** Admits as many requests as it can at the current instant. */
const drain = (limiter: RateLimiter.RateLimiter["Service"]) =>
  Effect.gen(function*() {
    let n = 0
    while ((yield* limiter.decide(subject)).allowed) n++
    return n
  })

describe("token bucket", () => {
  // Demand at every step drains the bucket (less than one token is left); a step of at most W·(C−1)/C ms (1 ms
  // for C = 1) cannot then overfill it, so no refill is lost: continuous demand.
  const maxStep = (capacity: number, window: number) => Math.max(1, Math.floor((window * (capacity - 1)) / capacity))
  const admittedOver = (capacity: number, window: number, steps: ReadonlyArray<number>) =>
    Effect.gen(function*() {
      const limiter = limiterWith([RateLimiter.Policy.make({ name: "b", limit: capacity, window })])
      let admitted = yield* drain(limiter)
      for (const step of steps) {
        yield* TestClock.adjust(Math.min(step, maxStep(capacity, window)))
        admitted += yield* drain(limiter)
      }
      return admitted
    })

  it.effect("a bucket of capacity C and rate R admits exactly C + ⌊R·t⌋ requests in t", () =>
    Effect.gen(function*() {
      const cases = [[10, 1000, 2500, 125], [3, 700, 10_000, 400], [100, 60_000, 61_000, 5000], [1, 1, 50, 1], [
        7,
        3000,
        1,
        1
      ]] as const
      for (const [capacity, window, t, step] of cases) {
        const steps = Array.from({ length: Math.ceil(t / step) }, (_, i) => Math.min(step, t - i * step))
        const start = yield* Clock.currentTimeMillis
        const admitted = yield* admittedOver(capacity, window, steps)
        assert.strictEqual((yield* Clock.currentTimeMillis) - start, t)
        assert.strictEqual(admitted, capacity + Math.floor((capacity * t) / window), `C=${capacity} W=${window} t=${t}`)
      }
    }))

  it.effect.prop(
    "C + ⌊R·t⌋ for any capacity, window and request times",
    [int(1, 50), int(1, 10_000), Schema.Array(int(0, 10_000)).check(Schema.isMaxLength(40))],
    ([capacity, window, rawSteps]) =>
      Effect.gen(function*() {
        const steps = rawSteps.map((s) => Math.min(s, maxStep(capacity, window)))
        const t = steps.reduce((a, b) => a + b, 0)
        const admitted = yield* admittedOver(capacity, window, steps)
        assert.strictEqual(admitted, capacity + Math.floor((capacity * t) / window))
      }),
    { arbitrary: { runs: 50, size: 40 } }
  )

  it.effect("reports remaining, reset and retry-after", () =>
    Effect.gen(function*() {
      const limiter = limiterWith([RateLimiter.Policy.make({ name: "b", limit: 4, window: 4000 })])
      const first = yield* limiter.decide(subject)
      assert.strictEqual(first.remaining, 3)
      assert.strictEqual(first.resetAfterMillis, 1000)
      for (let i = 0; i < 3; i++) yield* limiter.decide(subject)
      const rejected = yield* limiter.decide(subject)
      assert.isFalse(rejected.allowed)
      assert.deepStrictEqual(rejected.violated, ["b"])
      assert.strictEqual(rejected.retryAfterMillis, 1000)
      assert.strictEqual(rejected.resetAfterMillis, 4000)
      yield* TestClock.adjust(999)
      assert.isFalse((yield* limiter.decide(subject)).allowed)
      yield* TestClock.adjust(1)
      assert.isTrue((yield* limiter.decide(subject)).allowed)
    }))
})

describe("sliding window", () => {
  const policy = RateLimiter.Policy.make({ name: "s", algorithm: "sliding-window", limit: 10, window: 1000 })

  it.effect("at its edges", () =>
    Effect.gen(function*() {
      const limiter = limiterWith([policy])
      assert.strictEqual(yield* drain(limiter), 10)
      const rejected = yield* limiter.decide(subject)
      // The next window starts in 1000 ms, and the previous one weighs 9 or less 100 ms into it.
      assert.strictEqual(rejected.retryAfterMillis, 1100)
      yield* TestClock.adjust(999)
      assert.strictEqual(yield* drain(limiter), 0, "last millisecond of the window")
      yield* TestClock.adjust(1)
      assert.strictEqual(yield* drain(limiter), 0, "first millisecond of the next: the previous window weighs 10")
      yield* TestClock.adjust(99)
      assert.strictEqual(yield* drain(limiter), 0, "1099 ms: still 10 × 901/1000 > 9")
      yield* TestClock.adjust(1)
      assert.strictEqual(yield* drain(limiter), 1, "1100 ms: 10 × 900/1000 = 9, one fits")
      yield* TestClock.adjust(400)
      // 1500 ms: previous 10 × 0.5 = 5, current 1 → 4 more
      assert.strictEqual(yield* drain(limiter), 4)
      yield* TestClock.adjust(1500)
      // 3000 ms: two windows later, everything has slid out
      assert.strictEqual(yield* drain(limiter), 10)
    }))

  it.effect("retry-after is exact", () =>
    Effect.gen(function*() {
      const limiter = limiterWith([policy])
      yield* TestClock.adjust(500)
      yield* drain(limiter)
      yield* TestClock.adjust(600) // 1100: prev 10 × 0.9 = 9, cur 0 → 1 fits
      assert.strictEqual(yield* drain(limiter), 1)
      const rejected = yield* limiter.decide(subject)
      assert.isFalse(rejected.allowed)
      yield* TestClock.adjust(rejected.retryAfterMillis - 1)
      assert.isFalse((yield* limiter.decide(subject)).allowed)
      yield* TestClock.adjust(1)
      assert.isTrue((yield* limiter.decide(subject)).allowed)
    }))
})

describe("reference model", () => {
  const op = Schema.Struct({ advance: int(0, 300), cost: int(1, 3) })
  it.effect.prop(
    "the store agrees with GCRA and a history-based sliding window, policies checked together",
    [int(1, 6), int(1, 400), int(1, 6), int(1, 400), Schema.Array(op).check(Schema.isBetweenLength(1, 40))],
    ([tbLimit, tbWindow, swLimit, swWindow, ops]) =>
      Effect.gen(function*() {
        const limiter = limiterWith([
          RateLimiter.Policy.make({ name: "tb", limit: tbLimit, window: tbWindow }),
          RateLimiter.Policy.make({ name: "sw", algorithm: "sliding-window", limit: swLimit, window: swWindow })
        ])
        const tb = new GcraModel(tbLimit, tbWindow)
        const sw = new SlidingModel(swLimit, swWindow)
        for (const { advance, cost } of ops) {
          yield* TestClock.adjust(advance)
          const now = yield* Clock.currentTimeMillis
          const decision = yield* limiter.decide(subject, { cost })
          const a = tb.check(now, cost)
          const b = sw.check(now, cost)
          const allowed = a.allowed && b.allowed
          assert.strictEqual(decision.allowed, allowed)
          const expected = allowed ? [a.remaining, b.remaining] : [
            a.allowed ? tb.check(now, 0).remaining : a.remaining,
            b.allowed ? sw.check(now, 0).remaining : b.remaining
          ]
          assert.deepStrictEqual(decision.policies.map((p) => p.remaining), expected)
          if (allowed) {
            tb.commit(now, cost)
            sw.commit(now, cost)
          }
        }
      }),
    { arbitrary: { runs: 100, size: 40 } }
  )
})

const withEnv = <A, E, R>(effect: Effect.Effect<A, E, R>, provider: ConfigProvider.ConfigProvider) =>
  Effect.provideService(effect, ConfigProvider.ConfigProvider, provider)

describe("policies", () => {
  it.effect("select by endpoint and tier, key by scope", () =>
    Effect.gen(function*() {
      const limiter = limiterWith([
        RateLimiter.defaultPolicy(2, 60_000),
        RateLimiter.Policy.make({
          name: "ask",
          limit: 1,
          window: 60_000,
          scope: ["tenant"],
          endpoints: ["POST /api/v1/ask"]
        }),
        RateLimiter.Policy.make({ name: "free", limit: 5, window: 60_000, scope: ["tenant"], tiers: ["free"] })
      ])
      assert.deepStrictEqual(limiter.applicable({ ...subject, endpoint: "GET /health/live" }).map((p) => p.name), [])
      assert.deepStrictEqual(
        limiter.applicable({ ...subject, endpoint: "POST /api/v1/ask", tier: "free" }).map((p) => p.name),
        ["default", "ask", "free"]
      )
      assert.deepStrictEqual(limiter.applicable({ ...subject, tier: "pro" }).map((p) => p.name), ["default"])
      // Per API key: another key has its own bucket; no key falls back to the client address.
      assert.strictEqual(yield* drain(limiter), 2)
      assert.strictEqual(
        yield* drain(
          { ...limiter, decide: (s: RateLimiter.Subject) => limiter.decide({ ...s, apiKey: "k2" }) } as never
        ),
        2
      )
      const anonymous = yield* limiter.decide({ client: "10.0.0.9", endpoint: "GET /api/v1/things" })
      assert.isTrue(anonymous.allowed)
      assert.strictEqual(anonymous.policies[0]!.key, "default|ip=10.0.0.9")
      // Tenant-scoped policy: another key of the same tenant shares it.
      const ask = { client: "1.1.1.1", endpoint: "POST /api/v1/ask", tenant: "acme" }
      assert.isTrue((yield* limiter.decide({ ...ask, apiKey: "a" })).allowed)
      const second = yield* limiter.decide({ ...ask, apiKey: "b" })
      assert.deepStrictEqual(second.violated, ["ask"])
      const error = yield* Effect.flip(limiter.consume({ ...ask, apiKey: "c" }))
      if (error._tag !== "RateLimitExceeded") return assert.fail(error._tag)
      assert.deepStrictEqual(error.violatedPolicies, ["ask"])
      assert.strictEqual(error.retryAfter, 60)
    }))

  it.effect("counts decisions by policy and outcome", () =>
    Effect.gen(function*() {
      const name = `metric-${Math.random().toString(36).slice(2)}`
      const limiter = limiterWith([RateLimiter.Policy.make({ name, limit: 2, window: 60_000 })])
      for (let i = 0; i < 5; i++) yield* limiter.decide(subject)
      const count = (outcome: string) =>
        Metric.value(RateLimiter.decisions.pipe(Metric.withAttributes({ policy: name, outcome })))
      assert.strictEqual((yield* count("allowed")).count, 2)
      assert.strictEqual((yield* count("limited")).count, 3)
      // A limiter built by a layer counts in the metric registry of the context that built it.
      yield* Effect.gen(function*() {
        const limiter = yield* RateLimiter.RateLimiter
        for (let i = 0; i < 3; i++) yield* limiter.decide(subject)
        assert.strictEqual((yield* count("allowed")).count, 2)
        assert.strictEqual((yield* count("limited")).count, 1)
      }).pipe(
        Effect.provide(
          RateLimiter.layerMemory({ policies: [RateLimiter.Policy.make({ name, limit: 2, window: 60_000 })] })
        ),
        Effect.provideService(Metric.MetricRegistry, new Map())
      )
      assert.strictEqual((yield* count("allowed")).count, 2)
    }))

  it.effect("each policy counts its own outcome: one that had room is not counted as limited", () =>
    Effect.gen(function*() {
      const tight = `tight-${Math.random().toString(36).slice(2)}`
      const loose = `loose-${Math.random().toString(36).slice(2)}`
      const limiter = limiterWith([
        RateLimiter.Policy.make({ name: tight, limit: 1, window: 60_000 }),
        RateLimiter.Policy.make({ name: loose, limit: 100, window: 60_000 })
      ])
      for (let i = 0; i < 4; i++) yield* limiter.decide(subject)
      const count = (policy: string, outcome: string) =>
        Effect.map(
          Metric.value(RateLimiter.decisions.pipe(Metric.withAttributes({ policy, outcome }))),
          (state) => state.count
        )
      // The tight policy refused three requests; the loose one had room for all four (and consumed one).
      assert.deepStrictEqual(
        [yield* count(tight, "allowed"), yield* count(tight, "limited")],
        [1, 3]
      )
      assert.deepStrictEqual(
        [yield* count(loose, "allowed"), yield* count(loose, "limited")],
        [4, 0]
      )
    }))

  it("endpoint patterns compare paths in any case; GET covers HEAD", () => {
    const api = RateLimiter.endpointMatcher("/API/*")
    assert.isTrue(api("GET /api/v1/x"))
    const whoami = RateLimiter.endpointMatcher("GET /api/v1/whoami/")
    assert.isTrue(whoami("GET /api/v1/whoami"))
    assert.isTrue(whoami("HEAD /api/v1/whoami"))
    assert.isFalse(whoami("POST /api/v1/whoami"))
    const docs = RateLimiter.endpointMatcher("/api/*/openapi.json")
    assert.isTrue(docs("GET /api/v2/openapi.json"))
    assert.isFalse(docs("GET /api/openapi.json"))
  })

  it("endpoint patterns", () => {
    const api = RateLimiter.endpointMatcher("/api/*")
    assert.isTrue(api("GET /api/v1/x"))
    assert.isTrue(api("POST /api"))
    assert.isFalse(api("GET /apix"))
    // A decoded line break (`%0a`) is part of the path: `*` covers it, as the router's parameters do.
    assert.isTrue(api("GET /api/v1/pipelines/\n"))
    assert.isTrue(RateLimiter.endpointMatcher("/api/*/x")("GET /api/\r\n/x"))
    const doc = RateLimiter.endpointMatcher("GET /api/v1/documents/:id")
    assert.isTrue(doc("GET /api/v1/documents/abc"))
    assert.isFalse(doc("DELETE /api/v1/documents/abc"))
    assert.isFalse(doc("GET /api/v1/documents/abc/more"))
    assert.isTrue(doc("GET /api/v1/documents/\n"))
  })

  it.effect("decode from configuration, naming the field on error", () =>
    Effect.gen(function*() {
      const provider = ConfigProvider.fromEnv({
        env: {
          RATE_LIMIT_DEFAULT: "5/1s",
          RATE_LIMIT_POLICIES: JSON.stringify([{
            name: "day",
            algorithm: "sliding-window",
            limit: 1000,
            window: "1d"
          }]),
          RATE_LIMIT_REDIS_FAILURE: "closed",
          RATE_LIMIT_TRUSTED_PROXIES: "loopback, 10.0.0.0/8"
        }
      })
      const settings = yield* withEnv(RateLimiter.config, provider)
      assert.deepStrictEqual(Option.getOrThrow(settings.defaultPolicy), { limit: 5, window: 1000 })
      assert.strictEqual(settings.redisFailure, "closed")
      assert.isTrue(Option.isNone(settings.redisUrl))
      assert.deepStrictEqual(settings.trustedProxies, ["loopback", "10.0.0.0/8"])
      const policies = RateLimiter.policiesOf(settings)
      assert.deepStrictEqual(policies.map((p) => [p.name, p.limit, p.window, p.algorithm]), [
        ["default", 5, 1000, "token-bucket"],
        ["admin", 60, 60_000, "token-bucket"],
        ["docs", 30, 60_000, "token-bucket"],
        ["day", 1000, 86_400_000, "sliding-window"]
      ])
      const defaults = yield* withEnv(RateLimiter.config, ConfigProvider.fromEnv({ env: {} }))
      assert.strictEqual(RateLimiter.policiesOf(defaults)[0]!.limit, 100)
      assert.strictEqual(RateLimiter.policiesOf(defaults)[0]!.window, 60_000)
      const bad = yield* Effect.result(
        withEnv(
          RateLimiter.config,
          ConfigProvider.fromEnv({ env: { RATE_LIMIT_POLICIES: `[{"name":"x","limit":-1,"window":"1m"}]` } })
        )
      )
      assert.isTrue(Result.isFailure(bad))
      if (Result.isFailure(bad)) assert.include(String(bad.failure), "RATE_LIMIT_POLICIES")
      const badDefault = yield* Effect.result(
        withEnv(RateLimiter.config, ConfigProvider.fromEnv({ env: { RATE_LIMIT_DEFAULT: "lots" } }))
      )
      assert.isTrue(Result.isFailure(badDefault))
      const off = yield* withEnv(
        RateLimiter.config,
        ConfigProvider.fromEnv({ env: { RATE_LIMIT_DEFAULT: "off", RATE_LIMIT_ADMIN: "off", RATE_LIMIT_DOCS: "off" } })
      )
      assert.deepStrictEqual(RateLimiter.policiesOf(off), [])
      // Outside /api: the operator endpoints and the documents, per client address.
      const outside = yield* withEnv(
        RateLimiter.config,
        ConfigProvider.fromEnv({
          env: { RATE_LIMIT_DEFAULT: "off", RATE_LIMIT_ADMIN: "10/1m", RATE_LIMIT_DOCS: "5/30s" }
        })
      )
      assert.deepStrictEqual(
        RateLimiter.policiesOf(outside).map((p) => [p.name, p.limit, p.window, p.scope, p.endpoints]),
        [
          ["admin", 10, 60_000, ["client"], ["/admin/*"]],
          ["docs", 5, 30_000, ["client"], ["/docs/*", "/openapi.json", "/api/*/openapi.json"]]
        ]
      )
    }))

  it.effect("layerConfig without REDIS_URL limits in memory", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.RateLimiter
      assert.strictEqual(yield* drain(limiter), 2)
      assert.strictEqual(yield* limiter.status, "pass")
    }).pipe(
      Effect.provide(RateLimiter.layerConfig()),
      Effect.provideService(
        ConfigProvider.ConfigProvider,
        ConfigProvider.fromEnv({ env: { RATE_LIMIT_DEFAULT: "2/1m" } })
      )
    ))
})

describe("memory store", () => {
  testStore(Memory.layer(), () => "")

  it.effect("evicts idle keys and stays bounded", () =>
    Effect.gen(function*() {
      const store = Memory.makeUnsafe({ maxKeys: 50 })
      const limiter = limiterWith(
        [RateLimiter.Policy.make({ name: "p", limit: 1, window: 1000, scope: ["client"] })],
        store
      )
      for (let i = 0; i < 500; i++) {
        yield* limiter.decide({ ...subject, client: `c${i}` })
        yield* TestClock.adjust(1)
      }
      assert.isAtMost(store.size(), 50)
      // Over the bound the least recently used of a sample goes: the coldest key is gone, the newest stays.
      assert.isTrue((yield* limiter.decide({ ...subject, client: "c0" })).allowed)
      assert.isFalse((yield* limiter.decide({ ...subject, client: "c499" })).allowed)
      yield* TestClock.adjust(1000)
      // Once every bucket is full again the sweep (32 keys every 64th decision, round the scopes) drops idle keys.
      for (let i = 0; i < 512; i++) yield* limiter.decide({ ...subject, client: "hot" })
      assert.isAtMost(store.size(), 2)
    }))

  it.effect("is an effect/persistence store, with eviction", () =>
    Effect.gen(function*() {
      const limiter = yield* Persistence.make
      const consume = limiter.consume({ key: "x", limit: 2, window: "1 second", algorithm: "token-bucket" })
      yield* consume
      yield* consume
      const error = yield* Effect.flip(consume)
      assert.strictEqual(error.reason._tag, "RateLimitExceeded")
      const fixed = limiter.consume({ key: "y", limit: 1, window: "1 second" })
      yield* fixed
      assert.strictEqual((yield* Effect.flip(fixed)).reason._tag, "RateLimitExceeded")
      yield* TestClock.adjust(1000)
      yield* consume
      assert.strictEqual((yield* fixed).remaining, 0)
    }).pipe(Effect.provide(Memory.layer())))
})

describe("effect/persistence store", () => {
  // Every operation of effect/persistence's store, on two keys, at random times: ours answers as Effect's own memory
  // store does (the same counts, TTLs, delays, epochs and phases).
  const operation = Schema.Struct({
    op: Schema.Literals(["fixedWindow", "tokenBucket", "adaptiveConsume", "adaptiveFeedback"]),
    key: Schema.Literals(["a", "b"]),
    advance: int(0, 3000),
    tokens: int(0, 3),
    limit: Schema.optional(int(1, 5)),
    refillMillis: int(100, 1000),
    allowOverflow: Schema.Boolean,
    // Feedback: 0 is a 200, 1 a 429 without Retry-After, the rest 429s with one (the paths that change state).
    feedback: int(0, 7),
    retryAfterMillis: int(0, 5000)
  })
  it.effect.prop(
    "ours answers every operation as Effect's memory store does",
    [Schema.Array(operation).check(Schema.isBetweenLength(1, 60))],
    ([operations]) =>
      Effect.gen(function*() {
        const theirs = Context.get(yield* Layer.build(Persistence.layerStoreMemory), Persistence.RateLimiterStore)
        const ours = Memory.makeUnsafe().persistence
        // The epoch of each store's last adaptive decision per key, which its feedback quotes.
        const epochs = new Map([[theirs, new Map<string, number>()], [ours, new Map<string, number>()]])
        const run = (store: typeof ours, o: typeof operation.Type) => {
          const epochOf = epochs.get(store)!
          switch (o.op) {
            case "fixedWindow":
              return store.fixedWindow({
                key: o.key,
                tokens: o.tokens,
                refillRate: Duration.millis(o.refillMillis),
                limit: o.limit
              })
            case "tokenBucket":
              return store.tokenBucket({
                key: o.key,
                tokens: o.tokens,
                limit: o.limit ?? 3,
                refillRate: Duration.millis(o.refillMillis),
                allowOverflow: o.allowOverflow
              })
            case "adaptiveConsume":
              return Effect.tap(
                store.adaptiveConsume({
                  key: o.key,
                  tokens: o.tokens,
                  fallbackLimit: o.limit ?? 3,
                  fallbackWindow: Duration.millis(o.refillMillis * 10)
                }),
                (result) => Effect.sync(() => epochOf.set(o.key, result.epoch))
              )
            case "adaptiveFeedback":
              return store.adaptiveFeedback({
                key: o.key,
                epoch: epochOf.get(o.key) ?? 0,
                tokens: o.tokens,
                status: o.feedback === 0 ? 200 : 429,
                retryAfter: o.feedback === 1 ? undefined : Duration.millis(o.retryAfterMillis)
              })
          }
        }
        for (const o of operations) {
          yield* TestClock.adjust(o.advance)
          const expected = yield* Effect.result(run(theirs, o))
          const actual = yield* Effect.result(run(ours, o))
          assert.deepStrictEqual(actual, expected, JSON.stringify(o))
        }
      }),
    { arbitrary: { runs: 200, size: 60 } }
  )

  it.effect("Effect's RateLimiter, fixed window and token bucket, on our store", () =>
    Effect.gen(function*() {
      const limiter = yield* Persistence.RateLimiter
      const fixed = { key: "f", limit: 2, window: "1 minute" } as const
      assert.strictEqual((yield* limiter.consume(fixed)).remaining, 1)
      assert.strictEqual((yield* limiter.consume(fixed)).remaining, 0)
      const exceeded = yield* Effect.flip(limiter.consume(fixed))
      assert.strictEqual(exceeded.reason._tag, "RateLimitExceeded")
      if (exceeded.reason._tag === "RateLimitExceeded") {
        assert.strictEqual(Duration.toMillis(exceeded.reason.retryAfter), 60_000)
      }
      // Delay mode: the third request of a 2 per minute bucket waits for one refill (30 s).
      const bucket = { key: "t", limit: 2, window: "1 minute", algorithm: "token-bucket", onExceeded: "delay" } as const
      yield* limiter.consume(bucket)
      yield* limiter.consume(bucket)
      assert.strictEqual(Duration.toMillis((yield* limiter.consume(bucket)).delay), 30_000)
      // Adaptive: a 429 with Retry-After puts the key in cooldown.
      const first = yield* limiter.adaptiveConsume({
        key: "u",
        tokens: 1,
        fallbackLimit: 10,
        fallbackWindow: Duration.minutes(1)
      })
      assert.strictEqual(first.phase, "inactive")
      yield* limiter.adaptiveFeedback({
        key: "u",
        epoch: first.epoch,
        tokens: 1,
        status: 429,
        retryAfter: Duration.seconds(5)
      })
      const cooling = yield* limiter.adaptiveConsume({
        key: "u",
        tokens: 1,
        fallbackLimit: 10,
        fallbackWindow: Duration.minutes(1)
      })
      assert.strictEqual(cooling.phase, "cooldown")
      assert.strictEqual(Duration.toMillis(cooling.delay), 5000)
    }).pipe(Effect.provide(Persistence.layer.pipe(Layer.provide(Memory.layer())))))

  it.effect("fromPersistence runs our policies on Effect's memory store", () =>
    Effect.gen(function*() {
      const theirs = yield* Persistence.RateLimiterStore
      const limiter = limiterWith([
        RateLimiter.Policy.make({ name: "b", limit: 2, window: 60_000 }),
        RateLimiter.Policy.make({ name: "w", algorithm: "sliding-window", limit: 3, window: 60_000 })
      ], RateLimiterStore.fromPersistence(theirs) as never)
      const first = yield* limiter.decide(subject)
      assert.isTrue(first.allowed)
      assert.deepStrictEqual(first.policies.map((p) => p.remaining), [1, 2])
      assert.isTrue((yield* limiter.decide(subject)).allowed)
      const third = yield* limiter.decide(subject)
      assert.isFalse(third.allowed)
      assert.deepStrictEqual(third.violated, ["b"])
      assert.strictEqual(third.retryAfterMillis, 30_000)
      // Not atomic (as documented): the rejected request still counted in the fixed window, now full.
      yield* TestClock.adjust(30_000)
      const fourth = yield* limiter.decide(subject)
      assert.deepStrictEqual(fourth.violated, ["w"])
      assert.deepStrictEqual(fourth.policies.map((p) => p.allowed), [true, false])
    }).pipe(Effect.provide(Persistence.layerStoreMemory)))
})

describe("fallback", () => {
  const failing = (state: { up: boolean; calls: number }): RateLimiterStore.RateLimiterStore["Service"] => {
    const inner = Memory.makeUnsafe()
    return {
      ...inner,
      consume: (checks, cost) =>
        Effect.suspend(() => {
          state.calls++
          return state.up ? inner.consume(checks, cost) : Effect.fail(new RateLimitStoreError({ message: "down" }))
        })
    }
  }
  const policy = RateLimiter.Policy.make({ name: "p", limit: 2, window: 60_000 })

  it.effect("fails open to memory, reports warn, probes and recovers", () =>
    Effect.gen(function*() {
      const state = { up: false, calls: 0 }
      const store = RateLimiter.withFallback(failing(state), { mode: "open", probeInterval: "1 second" })
      const limiter = limiterWith([policy], store as never)
      assert.strictEqual(yield* drain(limiter), 2, "the fallback limits in memory")
      assert.strictEqual(yield* limiter.status, "warn")
      assert.strictEqual(state.calls, 1, "the primary is probed once per interval, not per request")
      state.up = true
      assert.strictEqual(yield* limiter.status, "warn")
      yield* TestClock.adjust(1000)
      assert.isTrue((yield* limiter.decide(subject)).allowed)
      assert.strictEqual(yield* limiter.status, "pass")
      assert.strictEqual(state.calls, 2)
    }))

  it.effect("fails closed with a store error", () =>
    Effect.gen(function*() {
      const state = { up: false, calls: 0 }
      const limiter = limiterWith([policy], RateLimiter.withFallback(failing(state), { mode: "closed" }) as never)
      const error = yield* Effect.flip(limiter.decide(subject))
      assert.strictEqual(error._tag, "RateLimitStoreError")
      assert.strictEqual(yield* limiter.status, "warn")
      state.up = true
      yield* TestClock.adjust(1000)
      assert.isTrue((yield* limiter.decide(subject)).allowed)
    }))
})

describe("layers", () => {
  it.effect("layerMemory", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.RateLimiter
      assert.strictEqual(yield* drain(limiter), 3)
    }).pipe(Effect.provide(RateLimiter.layerMemory({ policies: [RateLimiter.defaultPolicy(3)] }))))

  it.effect("layer on the store in context", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.RateLimiter
      assert.strictEqual(limiter.policies.length, 1)
    }).pipe(
      Effect.provide(RateLimiter.layer({ policies: [RateLimiter.defaultPolicy()] }).pipe(Layer.provide(Memory.layer())))
    ))
})
