import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Deferred, Effect, Exit, Fiber, Scope } from "effect"
import * as ConcurrencyLimiter from "../src/ConcurrencyLimiter.js"
import * as LoadShedder from "../src/LoadShedder.js"

/** Lets forked fibers run until `count` reaches `n` (bounded). */
const until = (count: Effect.Effect<number>, n: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1000 && (yield* count) < n; i++) yield* Effect.yieldNow
  })

describe("ConcurrencyLimiter", () => {
  it.effect("admits at most `limit` in flight per key and frees permits on exit", () =>
    Effect.gen(function*() {
      const limiter = yield* ConcurrencyLimiter.make({ limit: 2 })
      const gate = yield* Deferred.make<void>()
      const held = yield* Effect.forkChild(
        Effect.all([limiter.withPermit("a")(Deferred.await(gate)), limiter.withPermit("a")(Deferred.await(gate))], {
          concurrency: "unbounded"
        })
      )
      yield* until(limiter.inFlight("a"), 2)
      assert.strictEqual(yield* limiter.inFlight("a"), 2)
      const third = yield* Effect.flip(limiter.withPermit("a")(Effect.void))
      assert.strictEqual(third._tag, "ConcurrencyLimitExceeded")
      assert.strictEqual(third.limit, 2)
      yield* limiter.withPermit("b")(Effect.void)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(held)
      assert.strictEqual(yield* limiter.inFlight("a"), 0)
      // A failing or interrupted effect gives its permit back too.
      yield* Effect.exit(limiter.withPermit("a")(Effect.fail("boom")))
      const interrupted = yield* Effect.forkChild(limiter.withPermit("a")(Effect.never))
      yield* until(limiter.inFlight("a"), 1)
      assert.strictEqual(yield* limiter.inFlight("a"), 1)
      yield* Fiber.interrupt(interrupted)
      assert.strictEqual(yield* limiter.inFlight("a"), 0)
    }))

  it.effect("acquire holds a permit until its scope closes", () =>
    Effect.gen(function*() {
      const limiter = yield* ConcurrencyLimiter.make({ limit: 1 })
      const scope = yield* Scope.make()
      yield* Scope.provide(limiter.acquire("k"), scope)
      assert.isTrue(Exit.isFailure(yield* Effect.exit(Effect.scoped(limiter.acquire("k")))))
      yield* Scope.close(scope, Exit.void)
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(Effect.scoped(limiter.acquire("k")))))
    }))

  it.effect("config", () =>
    Effect.gen(function*() {
      const limiter = yield* ConcurrencyLimiter.ConcurrencyLimiter
      assert.strictEqual(limiter.limit, 3)
    }).pipe(
      Effect.provide(ConcurrencyLimiter.layerConfig),
      Effect.provideService(
        ConfigProvider.ConfigProvider,
        ConfigProvider.fromEnv({ env: { RATE_LIMIT_CONCURRENCY: "3" } })
      )
    ))
})

describe("LoadShedder", () => {
  it.effect("keeps the reserved share for critical requests", () =>
    Effect.gen(function*() {
      const shedder = yield* LoadShedder.make({ maxInFlight: 10, reserved: 0.2, retryAfter: "3 seconds" })
      const gate = yield* Deferred.make<void>()
      const normal = yield* Effect.forkChild(
        Effect.forEach(Array.from({ length: 8 }), () => shedder.run("normal")(Deferred.await(gate)), {
          concurrency: "unbounded"
        })
      )
      yield* until(shedder.inFlight, 8)
      assert.strictEqual(yield* shedder.inFlight, 8)
      assert.strictEqual(yield* shedder.status, "warn")
      const shed = yield* Effect.flip(shedder.run("normal")(Effect.void))
      assert.strictEqual(shed._tag, "Overloaded")
      assert.strictEqual(shed.retryAfter, 3)
      const critical = yield* Effect.forkChild(
        Effect.forEach(Array.from({ length: 2 }), () => shedder.run("critical")(Deferred.await(gate)), {
          concurrency: "unbounded"
        })
      )
      yield* until(shedder.inFlight, 10)
      assert.strictEqual(yield* shedder.inFlight, 10)
      assert.isTrue(
        Exit.isFailure(yield* Effect.exit(shedder.run("critical")(Effect.void))),
        "the whole capacity is used"
      )
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(normal)
      yield* Fiber.join(critical)
      assert.strictEqual(yield* shedder.inFlight, 0)
      assert.strictEqual(yield* shedder.status, "pass")
    }))

  it.live("sheds ordinary requests while the event loop lags", () =>
    Effect.gen(function*() {
      const shedder = yield* LoadShedder.make({ maxInFlight: 100, maxEventLoopDelay: "20 millis" })
      assert.isTrue(yield* shedder.tryAdmit("normal"))
      yield* shedder.release
      // The scenario: the event loop lags (blocked 150 ms at a time) until the sampler (every 500 ms) has seen it. It
      // reports the lag for one sampling period, so on a busy machine a single block could fall in a period whose
      // report is missed by the poll: the loop keeps lagging until the status says so. The deadline only bounds the test.
      const block = Effect.sync(() => {
        const end = Date.now() + 150
        while (Date.now() < end) {
          // busy
        }
      })
      for (const deadline = Date.now() + 20_000; (yield* shedder.status) !== "warn" && Date.now() < deadline;) {
        yield* block
        yield* Effect.sleep("5 millis")
      }
      assert.strictEqual(yield* shedder.status, "warn")
      assert.isFalse(yield* shedder.tryAdmit("normal"))
      assert.isTrue(yield* shedder.tryAdmit("critical"))
      yield* shedder.release
    }))

  it.effect("config", () =>
    Effect.gen(function*() {
      const shedder = yield* LoadShedder.LoadShedder
      assert.isTrue(yield* shedder.tryAdmit("normal"))
      assert.isFalse(yield* shedder.tryAdmit("normal"), "1 of 2 with half reserved")
      assert.isTrue(yield* shedder.tryAdmit("critical"))
    }).pipe(
      Effect.provide(LoadShedder.layerConfig),
      Effect.provideService(
        ConfigProvider.ConfigProvider,
        ConfigProvider.fromEnv({ env: { LOAD_SHED_MAX_IN_FLIGHT: "2", LOAD_SHED_RESERVED: "0.5" } })
      )
    ))
})
