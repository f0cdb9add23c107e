import { assert, describe, it } from "@effect/vitest"
import { HealthCheck } from "@ouroboros/health"
import {
  ConfigProvider,
  Context,
  Data,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Logger,
  Ref,
  References,
  Scope
} from "effect"
import { TestClock } from "effect/testing"

class SqlError extends Data.TaggedError("SqlError")<{ readonly message: string }> {}

const quiet = Layer.succeed(References.MinimumLogLevel, "None")

/** Whether a forked fiber is still running. */
const isRunning = (fiber: Fiber.Fiber<unknown, unknown>) => Effect.sync(() => fiber.pollUnsafe() === undefined)

/** Runs `body` with a fresh service (in the test's scope) and silenced logs. */
const withHealth = <A, E>(
  body: (health: HealthCheck.HealthCheck["Service"]) => Effect.Effect<A, E, Scope.Scope>,
  options?: HealthCheck.Options
) => Effect.flatMap(HealthCheck.make(options), body).pipe(Effect.provide(quiet))

const check = (
  name: string,
  run: HealthCheck.Check["run"],
  extra?: Partial<Omit<HealthCheck.Check, "name" | "run">>
): HealthCheck.Check => ({ name, critical: true, timeout: "1 second", ...extra, run })

const counting = (counter: Ref.Ref<number>, delay?: Duration.Input) =>
  Ref.update(counter, (n) => n + 1).pipe(
    Effect.andThen(delay === undefined ? Effect.void : Effect.sleep(delay)),
    Effect.as(HealthCheck.pass({ observedValue: 1, observedUnit: "ms" }))
  )

describe("HealthCheck", () => {
  describe("aggregation", () => {
    it.effect("passes when every check passes, keyed component:measurement", () =>
      withHealth((health) =>
        Effect.gen(function*() {
          yield* health.register(
            check("postgres:responseTime", Effect.succeed(HealthCheck.pass({ observedValue: 3, observedUnit: "ms" })), {
              componentType: "datastore",
              componentId: "postgres"
            })
          )
          yield* health.register(check("disk:free", Effect.succeed(HealthCheck.pass({ observedValue: 42 }))))
          const report = yield* health.report("ready")
          assert.strictEqual(report.status, "pass")
          assert.strictEqual(report.output, undefined)
          assert.strictEqual(report.notes, undefined)
          assert.deepStrictEqual(Object.keys(report.checks), ["postgres:responseTime", "disk:free"])
          const pg = report.checks["postgres:responseTime"]![0]!
          assert.strictEqual(pg.status, "pass")
          assert.strictEqual(pg.observedValue, 3)
          assert.strictEqual(pg.observedUnit, "ms")
          assert.strictEqual(pg.componentType, "datastore")
          assert.strictEqual(pg.componentId, "postgres")
          assert.strictEqual(pg.time, new Date(0).toISOString())
          assert.strictEqual(pg.output, undefined)
        }), { initialPhase: "serving", serviceId: "ouroboros", version: "1", releaseId: "1.2.3", description: "d" }))

    it.effect("carries serviceId, version, releaseId and description", () =>
      withHealth((health) =>
        Effect.gen(function*() {
          const report = yield* health.report("live")
          assert.deepStrictEqual(report, {
            status: "pass",
            version: "1",
            releaseId: "1.2.3",
            serviceId: "ouroboros",
            description: "d",
            checks: {}
          })
        }), { serviceId: "ouroboros", version: "1", releaseId: "1.2.3", description: "d" }))

    it.effect("warns when a non-critical check fails", () =>
      withHealth((health) =>
        Effect.gen(function*() {
          yield* health.register(check("postgres:responseTime", Effect.succeed(HealthCheck.pass())))
          yield* health.register(
            check("ollama:version", Effect.succeed(HealthCheck.fail("HTTP 500")), { critical: false })
          )
          const report = yield* health.report("ready")
          assert.strictEqual(report.status, "warn")
          assert.strictEqual(report.output, "degraded: ollama:version")
          assert.strictEqual(report.checks["ollama:version"]![0]!.status, "fail")
          assert.strictEqual(report.checks["ollama:version"]![0]!.output, "HTTP 500")
        }), { initialPhase: "serving" }))

    it.effect("warns when a critical check warns", () =>
      withHealth((health) =>
        Effect.gen(function*() {
          yield* health.register(check("postgres:responseTime", Effect.succeed(HealthCheck.warn("slow"))))
          const report = yield* health.report("ready")
          assert.strictEqual(report.status, "warn")
          assert.strictEqual(report.checks["postgres:responseTime"]![0]!.output, "slow")
        }), { initialPhase: "serving" }))

    it.effect("fails when a critical check fails, and says which", () =>
      withHealth((health) =>
        Effect.gen(function*() {
          yield* health.register(check("ollama:version", Effect.succeed(HealthCheck.warn("old")), { critical: false }))
          yield* health.register(
            check("postgres:responseTime", Effect.fail(new SqlError({ message: "password=secret" })))
          )
          const report = yield* health.report("ready")
          assert.strictEqual(report.status, "fail")
          assert.strictEqual(report.output, "failing: postgres:responseTime; degraded: ollama:version")
          const pg = report.checks["postgres:responseTime"]![0]!
          assert.strictEqual(pg.status, "fail")
          assert.strictEqual(pg.output, "check failed (SqlError)")
        }), { initialPhase: "serving" }))

    it.effect("exposes error messages only when asked to", () =>
      withHealth((health) =>
        Effect.gen(function*() {
          yield* health.register(check("postgres:responseTime", Effect.fail(new SqlError({ message: "refused" }))))
          const report = yield* health.report("ready")
          assert.strictEqual(report.checks["postgres:responseTime"]![0]!.output, "check failed (SqlError): refused")
        }), { initialPhase: "serving", exposeErrors: true }))

    it.effect("a defect is a failure that names nothing", () =>
      withHealth((health) =>
        Effect.gen(function*() {
          yield* health.register(check("x:y", Effect.die(new Error("secret stack"))))
          const report = yield* health.report("ready")
          assert.strictEqual(report.status, "fail")
          assert.strictEqual(report.checks["x:y"]![0]!.output, "check failed unexpectedly")
        }), { initialPhase: "serving" }))

    it.effect("checks that share a name are listed together", () =>
      withHealth((health) =>
        Effect.gen(function*() {
          yield* health.register(
            check("cpu:utilization", Effect.succeed(HealthCheck.pass({ observedValue: 1 })), { componentId: "a" })
          )
          yield* health.register(
            check("cpu:utilization", Effect.succeed(HealthCheck.pass({ observedValue: 2 })), { componentId: "b" })
          )
          const report = yield* health.report("ready")
          assert.deepStrictEqual(report.checks["cpu:utilization"]!.map((r) => r.componentId), ["a", "b"])
        }), { initialPhase: "serving" }))
  })

  describe("probes and phases", () => {
    it.effect("ready and startup fail while starting; live passes", () =>
      withHealth((health) =>
        Effect.gen(function*() {
          yield* health.register(check("postgres:responseTime", Effect.succeed(HealthCheck.pass())))
          assert.strictEqual(yield* health.phase, "starting")
          const ready = yield* health.report("ready")
          assert.strictEqual(ready.status, "fail")
          assert.deepStrictEqual(ready.notes, ["starting"])
          assert.strictEqual(ready.output, "the service is starting")
          const startup = yield* health.report("startup")
          assert.strictEqual(startup.status, "fail")
          assert.deepStrictEqual(startup.notes, ["starting"])
          assert.strictEqual((yield* health.report("live")).status, "pass")
        })
      ))

    it.effect("serving: ready and startup pass; draining: ready fails with a note, live and startup pass", () =>
      withHealth((health) =>
        Effect.gen(function*() {
          yield* health.register(check("postgres:responseTime", Effect.succeed(HealthCheck.pass())))
          yield* health.setPhase("serving")
          assert.strictEqual((yield* health.report("ready")).status, "pass")
          assert.strictEqual((yield* health.report("startup")).status, "pass")
          yield* health.setPhase("draining")
          assert.strictEqual(yield* health.phase, "draining")
          const ready = yield* health.report("ready")
          assert.strictEqual(ready.status, "fail")
          assert.deepStrictEqual(ready.notes, ["draining"])
          assert.strictEqual((yield* health.report("live")).status, "pass")
          assert.strictEqual((yield* health.report("startup")).status, "pass")
        })
      ))

    it.effect("a check belongs to the probes it names (default ready)", () =>
      withHealth((health) =>
        Effect.gen(function*() {
          yield* health.register(check("postgres:responseTime", Effect.succeed(HealthCheck.fail("down"))))
          yield* health.register(
            check("migrations:applied", Effect.succeed(HealthCheck.fail("pending")), { probes: ["startup"] })
          )
          yield* health.register(
            check("eventloop:delay", Effect.succeed(HealthCheck.pass()), { probes: ["live", "ready"] })
          )
          const live = yield* health.report("live")
          assert.strictEqual(live.status, "pass")
          assert.deepStrictEqual(Object.keys(live.checks), ["eventloop:delay"])
          const ready = yield* health.report("ready")
          assert.deepStrictEqual(Object.keys(ready.checks), ["postgres:responseTime", "eventloop:delay"])
          assert.strictEqual(ready.status, "fail")
          const startup = yield* health.report("startup")
          assert.deepStrictEqual(Object.keys(startup.checks), ["migrations:applied"])
          assert.strictEqual(startup.status, "fail")
          assert.strictEqual(startup.notes, undefined)
        }), { initialPhase: "serving" }))

    it.effect("a failing critical live check fails liveness", () =>
      withHealth((health) =>
        Effect.gen(function*() {
          yield* health.register(
            check("eventloop:delay", Effect.succeed(HealthCheck.fail("blocked")), { probes: ["live"] })
          )
          assert.strictEqual((yield* health.report("live")).status, "fail")
        })
      ))
  })

  describe("timeouts, cache and registration", () => {
    it.effect("a hanging check is failed once its timeout passes", () =>
      withHealth((health) =>
        Effect.gen(function*() {
          yield* health.register(check("qdrant:responseTime", Effect.never, { timeout: "1 second" }))
          yield* health.register(check("postgres:responseTime", Effect.succeed(HealthCheck.pass())))
          const fiber = yield* Effect.forkChild(health.report("ready"))
          yield* TestClock.adjust("999 millis")
          assert.isTrue(yield* isRunning(fiber))
          yield* TestClock.adjust("1 millis")
          const report = yield* Fiber.join(fiber)
          assert.strictEqual(report.status, "fail")
          assert.strictEqual(report.checks["qdrant:responseTime"]![0]!.status, "fail")
          assert.strictEqual(report.checks["qdrant:responseTime"]![0]!.output, "timed out after 1s")
          assert.strictEqual(report.checks["postgres:responseTime"]![0]!.status, "pass")
        }), { initialPhase: "serving" }))

    it.effect("an uninterruptible hanging check is still reported within its timeout", () =>
      withHealth((health) =>
        Effect.gen(function*() {
          yield* health.register(check("stuck:call", Effect.uninterruptible(Effect.never), { timeout: "500 millis" }))
          const fiber = yield* Effect.forkChild(health.report("ready"))
          yield* TestClock.adjust("500 millis")
          const report = yield* Fiber.join(fiber)
          assert.strictEqual(report.checks["stuck:call"]![0]!.output, "timed out after 500ms")
        }), { initialPhase: "serving" }))

    it.effect("the service default timeout applies to checks without one", () =>
      withHealth((health) =>
        Effect.gen(function*() {
          yield* health.register({ name: "slow:thing", critical: true, run: Effect.never })
          const fiber = yield* Effect.forkChild(health.report("ready"))
          yield* TestClock.adjust("3 seconds")
          assert.isTrue(yield* isRunning(fiber))
          yield* TestClock.adjust("2 seconds")
          assert.strictEqual((yield* Fiber.join(fiber)).checks["slow:thing"]![0]!.output, "timed out after 5s")
        }), { initialPhase: "serving", defaultTimeout: "5 seconds" }))

    it.effect("results are reused within the cache TTL", () =>
      withHealth((health) =>
        Effect.gen(function*() {
          const runs = yield* Ref.make(0)
          yield* health.register(check("postgres:responseTime", counting(runs), { cacheTtl: "2 seconds" }))
          yield* health.report("ready")
          yield* health.report("ready")
          yield* TestClock.adjust("1999 millis")
          yield* health.report("ready")
          assert.strictEqual(yield* Ref.get(runs), 1)
          yield* TestClock.adjust("1 millis")
          yield* health.report("ready")
          assert.strictEqual(yield* Ref.get(runs), 2)
        }), { initialPhase: "serving" }))

    it.effect("a check in several probes runs once per TTL", () =>
      withHealth((health) =>
        Effect.gen(function*() {
          const runs = yield* Ref.make(0)
          yield* health.register(check("eventloop:delay", counting(runs), { probes: ["live", "ready", "startup"] }))
          yield* health.report("live")
          yield* health.report("ready")
          yield* health.report("startup")
          assert.strictEqual(yield* Ref.get(runs), 1)
        })
      ))

    it.effect("concurrent probes share one run", () =>
      withHealth((health) =>
        Effect.gen(function*() {
          const runs = yield* Ref.make(0)
          yield* health.register(check("postgres:responseTime", counting(runs, "100 millis"), { cacheTtl: 0 }))
          const fibers = yield* Effect.forEach([1, 2, 3, 4], () => Effect.forkChild(health.report("ready")))
          yield* TestClock.adjust("100 millis")
          const reports = yield* Effect.forEach(fibers, Fiber.join)
          assert.strictEqual(yield* Ref.get(runs), 1)
          assert.isTrue(reports.every((report) => report.status === "pass"))
          // With a TTL of 0 the next probe runs the check again.
          const next = yield* Effect.forkChild(health.report("ready"))
          yield* TestClock.adjust("100 millis")
          yield* Fiber.join(next)
          assert.strictEqual(yield* Ref.get(runs), 2)
        }), { initialPhase: "serving" }))

    it.effect("a probe that goes away does not cancel the run the others wait for", () =>
      withHealth((health) =>
        Effect.gen(function*() {
          const runs = yield* Ref.make(0)
          const finished = yield* Deferred.make<void>()
          yield* health.register(
            check(
              "postgres:responseTime",
              Effect.tap(counting(runs, "100 millis"), Deferred.succeed(finished, void 0))
            )
          )
          const impatient = yield* Effect.forkChild(health.report("ready"))
          const patient = yield* Effect.forkChild(health.report("ready"))
          yield* TestClock.adjust("50 millis")
          yield* Fiber.interrupt(impatient)
          yield* TestClock.adjust("50 millis")
          const report = yield* Fiber.join(patient)
          assert.strictEqual(report.status, "pass")
          assert.isTrue(yield* Deferred.isDone(finished))
          assert.strictEqual(yield* Ref.get(runs), 1)
        }), { initialPhase: "serving" }))

    it.effect("a check is unregistered when its scope closes", () =>
      withHealth((health) =>
        Effect.gen(function*() {
          const scope = yield* Scope.make()
          yield* health.register(check("postgres:responseTime", Effect.succeed(HealthCheck.fail("down")))).pipe(
            Scope.provide(scope)
          )
          assert.strictEqual((yield* health.report("ready")).status, "fail")
          yield* Scope.close(scope, Exit.void)
          const report = yield* health.report("ready")
          assert.strictEqual(report.status, "pass")
          assert.deepStrictEqual(report.checks, {})
        }), { initialPhase: "serving" }))

    it.effect("a check's requirements are captured when it is registered", () =>
      withHealth((health) =>
        Effect.gen(function*() {
          class Pinger extends Context.Service<Pinger, { readonly ping: Effect.Effect<number> }>()("test/Pinger") {}
          yield* health.register<Pinger>({
            name: "pinger:responseTime",
            critical: true,
            run: Effect.flatMap(Pinger, (pinger) => pinger.ping).pipe(
              Effect.map((ms) => HealthCheck.pass({ observedValue: ms }))
            )
          }).pipe(Effect.provideService(Pinger, { ping: Effect.succeed(7) }))
          const report = yield* health.report("ready")
          assert.strictEqual(report.checks["pinger:responseTime"]![0]!.observedValue, 7)
        }), { initialPhase: "serving" }))
  })

  describe("logging", () => {
    it.effect("logs a check when its status changes, not on every probe", () =>
      Effect.gen(function*() {
        const logs: Array<string> = []
        const logger = Logger.make(({ logLevel, message }) => {
          const text = Array.isArray(message) ? message.join(" ") : String(message)
          if (text.startsWith("Health check")) logs.push(`${logLevel.toUpperCase()} ${text}`)
        })
        const state = yield* Ref.make<HealthCheck.Status>("pass")
        const health = yield* HealthCheck.make({ initialPhase: "serving", defaultCacheTtl: 0 })
        yield* health.register(check(
          "postgres:responseTime",
          Effect.map(Ref.get(state), (status) => status === "pass" ? HealthCheck.pass() : HealthCheck.fail("down"))
        ))
        const probe = health.report("ready").pipe(Effect.provide(Logger.layer([logger])))
        yield* probe
        yield* Ref.set(state, "fail")
        yield* probe
        yield* probe
        yield* Ref.set(state, "pass")
        yield* probe
        yield* probe
        assert.deepStrictEqual(logs, ["WARN Health check fail", "INFO Health check passes again"])
      }))
  })

  describe("layers", () => {
    it.effect("any Layer adds its checks with layerCheck / register", () =>
      Effect.gen(function*() {
        yield* HealthCheck.setPhase("serving")
        assert.strictEqual(yield* HealthCheck.phase, "serving")
        const report = yield* HealthCheck.report("ready")
        assert.strictEqual(report.status, "warn")
        assert.deepStrictEqual(Object.keys(report.checks), ["a:b", "c:d"])
      }).pipe(
        Effect.provide(
          Layer.mergeAll(
            HealthCheck.layerCheck(check("a:b", Effect.succeed(HealthCheck.pass()))),
            Layer.effectDiscard(
              HealthCheck.register(check("c:d", Effect.succeed(HealthCheck.fail("x")), { critical: false }))
            )
          ).pipe(Layer.provideMerge(HealthCheck.layer()))
        ),
        Effect.provide(quiet)
      ))

    it.effect("layerServing marks serving when built and draining when released", () =>
      Effect.gen(function*() {
        const health = yield* HealthCheck.HealthCheck
        assert.strictEqual((yield* health.report("ready")).status, "fail")
        const scope = yield* Scope.make()
        yield* Layer.buildWithScope(HealthCheck.layerServing, scope).pipe(
          Effect.provideService(HealthCheck.HealthCheck, health)
        )
        assert.strictEqual(yield* health.phase, "serving")
        assert.strictEqual((yield* health.report("ready")).status, "pass")
        yield* Scope.close(scope, Exit.void)
        assert.strictEqual(yield* health.phase, "draining")
        assert.deepStrictEqual((yield* health.report("ready")).notes, ["draining"])
      }).pipe(Effect.provide(HealthCheck.layer()), Effect.provide(quiet)))

    it.effect("layerConfig reads its keys", () =>
      Effect.gen(function*() {
        yield* HealthCheck.register({ name: "slow:thing", critical: true, run: Effect.never })
        const report = yield* Effect.forkChild(HealthCheck.report("live"))
        const fiber = yield* Effect.forkChild(HealthCheck.report("ready"))
        yield* TestClock.adjust("250 millis")
        const ready = yield* Fiber.join(fiber)
        assert.strictEqual(ready.serviceId, "ouroboros")
        assert.strictEqual(ready.releaseId, "r1")
        assert.strictEqual(ready.version, undefined)
        assert.strictEqual(ready.checks["slow:thing"]![0]!.output, "timed out after 250ms")
        assert.strictEqual((yield* Fiber.join(report)).description, "from options")
      }).pipe(
        Effect.scoped,
        Effect.provide(
          HealthCheck.layerConfig({ description: "from options", initialPhase: "serving" }).pipe(
            Layer.provide(
              ConfigProvider.layer(
                ConfigProvider.fromEnv({
                  env: {
                    HEALTH_SERVICE_ID: "ouroboros",
                    HEALTH_RELEASE_ID: "r1",
                    HEALTH_CHECK_TIMEOUT: "250 millis"
                  }
                }).pipe(ConfigProvider.nested("HEALTH"))
              )
            )
          )
        ),
        Effect.provide(quiet)
      ))

    it.effect("layerConfig rejects a malformed duration", () =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(Layer.build(HealthCheck.layerConfig()).pipe(Effect.scoped))
        assert.isTrue(Exit.isFailure(exit))
      }).pipe(
        Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env: { CACHE_TTL: "soon" } }))
      ))
  })
})
