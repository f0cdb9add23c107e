import { assert, describe, it } from "@effect/vitest"
import { RequestContext } from "@ouroboros/kernel"
import { Effect, Exit, Fiber, Layer, Metric, Option, Ref, Schema, Stream } from "effect"
import { KeyValueStore } from "effect/persistence"
import { TestClock } from "effect/testing"
import { InFlight, Jobs, Shutdown } from "../src/index.js"

const options: Shutdown.Options = {
  drain: "5 seconds",
  timeout: "20 seconds",
  finalizerTimeout: "4 seconds",
  signals: false
}

const Live = Shutdown.layer(options)

/** Lets forked fibers run up to their next suspension. */
const settle = Effect.repeat(Effect.yieldNow, { times: 20 })

/** Advances the test clock a second at a time, so sleeps chained one after another all fire. */
const advance = (seconds: number) =>
  Effect.forEach(Array.from({ length: seconds }), () => Effect.andThen(TestClock.adjust("1 second"), settle), {
    discard: true
  })

const info = (route: string, correlationId?: string): InFlight.RequestInfo => ({
  method: "GET",
  route,
  correlationId
})

describe("Shutdown.drain", () => {
  it.effect("serving → draining → (drain) → stopping → (in-flight done) → stopped, exit 0", () =>
    Effect.gen(function*() {
      const shutdown = yield* Shutdown.Shutdown
      const inFlight = yield* InFlight.InFlight
      const stopped = yield* Ref.make(false)
      yield* shutdown.onStop("server", Ref.set(stopped, true))
      const drained = yield* Ref.make(false)
      yield* shutdown.onDrain(Ref.set(drained, true))

      const request = yield* Effect.forkChild(inFlight.track(info("/slow"), Effect.sleep("10 seconds")))
      yield* settle
      assert.strictEqual(yield* inFlight.count, 1)
      assert.strictEqual(yield* shutdown.phase, "serving")
      assert.isFalse(yield* shutdown.isDraining)

      const drain = yield* Effect.forkChild(shutdown.drain)
      yield* settle
      assert.strictEqual(yield* shutdown.phase, "draining")
      assert.isTrue(yield* shutdown.isDraining)
      assert.isTrue(yield* Ref.get(drained))
      assert.isFalse(yield* Ref.get(stopped))

      yield* TestClock.adjust("4999 millis")
      assert.strictEqual(yield* shutdown.phase, "draining")
      yield* TestClock.adjust("1 millis")
      yield* settle
      assert.strictEqual(yield* shutdown.phase, "stopping")
      assert.isTrue(yield* Ref.get(stopped))

      yield* TestClock.adjust("5 seconds") // the request started at 0 and takes 10 s
      assert.deepStrictEqual(yield* Fiber.await(request), Exit.void)
      assert.strictEqual(yield* Fiber.join(drain), Shutdown.ExitCode.ok)
      assert.strictEqual(yield* shutdown.phase, "stopped")
      assert.strictEqual(yield* inFlight.count, 0)
    }).pipe(Effect.provide(Live)))

  it.effect("requests over the timeout are interrupted, reported with their correlation ids, exit 3", () =>
    Effect.gen(function*() {
      const shutdown = yield* Shutdown.Shutdown
      const inFlight = yield* InFlight.InFlight
      const hung = yield* Effect.forkChild(
        inFlight.track(
          info("/hang/42", "raw-id"),
          RequestContext.withCorrelationId(Effect.never, "settled-id").pipe(
            Effect.withSpan("GET", { kind: "server", attributes: { "http.route": "/hang/:id" } })
          )
        )
      )
      const quick = yield* Effect.forkChild(inFlight.track(info("/quick"), Effect.sleep("1 second")))
      yield* settle
      const listed = yield* inFlight.list
      assert.deepStrictEqual(listed.map((r) => r.route), ["/hang/:id", "/quick"])
      assert.strictEqual(listed[0]!.correlationId, "settled-id")
      assert.strictEqual((yield* Metric.value(InFlight.gauge)).value, 2)

      const drain = yield* Effect.forkChild(shutdown.drain)
      yield* TestClock.adjust("25 seconds")
      assert.strictEqual(yield* Fiber.join(drain), Shutdown.ExitCode.requestsCut)
      assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(hung)))
      assert.deepStrictEqual(yield* Fiber.await(quick), Exit.void)
      assert.strictEqual(yield* inFlight.count, 0)
    }).pipe(Effect.provide(Live)))

  it.effect("awaitIdle is true at once when nothing is in flight, false on timeout", () =>
    Effect.gen(function*() {
      const inFlight = yield* InFlight.InFlight
      assert.isTrue(yield* inFlight.awaitIdle("1 second"))
      yield* Effect.forkChild(inFlight.track(info("/x"), Effect.never))
      yield* settle
      const waiting = yield* Effect.forkChild(inFlight.awaitIdle("1 second"))
      yield* TestClock.adjust("1 second")
      assert.isFalse(yield* Fiber.join(waiting))
    }).pipe(Effect.provide(Live)))

  it.effect("trigger is idempotent and triggered yields the first reason", () =>
    Effect.gen(function*() {
      const shutdown = yield* Shutdown.Shutdown
      yield* shutdown.trigger("SIGTERM")
      yield* shutdown.trigger("SIGINT")
      assert.strictEqual(yield* shutdown.triggered, "SIGTERM")
    }).pipe(Effect.provide(Live)))

  it.effect("phases and the in-flight count stream the current value, then every change", () =>
    Effect.gen(function*() {
      const shutdown = yield* Shutdown.Shutdown
      const inFlight = yield* InFlight.InFlight
      yield* Effect.forkChild(inFlight.track(info("/early"), Effect.never))
      yield* settle
      const phases = yield* Effect.forkChild(Stream.runCollect(Stream.take(shutdown.phases, 4)))
      const counts = yield* Effect.forkChild(Stream.runCollect(Stream.take(inFlight.changes, 3)))
      yield* settle
      const request = yield* Effect.forkChild(inFlight.track(info("/slow"), Effect.sleep("1 second")))
      yield* settle
      yield* Fiber.interrupt(request)
      const drain = yield* Effect.forkChild(shutdown.drain)
      yield* TestClock.adjust("25 seconds")
      yield* Fiber.join(drain)
      assert.deepStrictEqual(Array.from(yield* Fiber.join(phases)), ["serving", "draining", "stopping", "stopped"])
      assert.deepStrictEqual(Array.from(yield* Fiber.join(counts)), [1, 2, 1])
    }).pipe(Effect.provide(Live)))
})

describe("Shutdown.lifecycle", () => {
  it.effect("resources outlive the drain and are released in reverse order afterwards", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const resource = (name: string) =>
        Layer.effectDiscard(Effect.acquireRelease(
          Effect.sync(() => log.push(`acquire ${name}`)),
          () => Effect.sync(() => log.push(`release ${name}`))
        ))
      const main = Layer.provideMerge(resource("server"), resource("pool"))
      const shutdown = yield* Shutdown.Shutdown
      const inFlight = yield* InFlight.InFlight
      const run = yield* Effect.forkChild(Shutdown.lifecycle(main))
      yield* settle
      assert.deepStrictEqual(log, ["acquire pool", "acquire server"])
      const request = yield* Effect.forkChild(
        inFlight.track(
          info("/pg"),
          Effect.andThen(Effect.sleep("8 seconds"), Effect.sync(() => log.push("request done")))
        )
      )
      yield* settle
      yield* shutdown.trigger("SIGTERM")
      yield* TestClock.adjust("7 seconds")
      assert.deepStrictEqual(log, ["acquire pool", "acquire server"]) // nothing released while the request runs
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(request)
      assert.strictEqual(yield* Fiber.join(run), Shutdown.ExitCode.ok)
      assert.deepStrictEqual(log, ["acquire pool", "acquire server", "request done", "release server", "release pool"])
    }).pipe(Effect.provide(Live)))

  it.effect("a stuck finalizer added with addFinalizer is abandoned and the earlier ones still run", () =>
    Effect.gen(function*() {
      const released = yield* Ref.make<Array<string>>([])
      const main = Layer.provideMerge(
        Layer.effectDiscard(Shutdown.addFinalizer("stuck exporter", Effect.never)),
        Layer.effectDiscard(Effect.addFinalizer(() => Ref.update(released, (r) => [...r, "pool"])))
      )
      const shutdown = yield* Shutdown.Shutdown
      const run = yield* Effect.forkChild(Shutdown.lifecycle(main))
      yield* settle
      yield* shutdown.trigger("SIGTERM")
      yield* TestClock.adjust("5 seconds") // drain
      yield* settle
      yield* TestClock.adjust("2 seconds") // half the finalizer budget
      yield* settle
      assert.strictEqual(yield* Fiber.join(run), Shutdown.ExitCode.ok)
      assert.deepStrictEqual(yield* Ref.get(released), ["pool"])
    }).pipe(Effect.provide(Live)))

  it.effect("releasing over the budget exits 4 after finalizerTimeout", () =>
    Effect.gen(function*() {
      const main = Layer.effectDiscard(Effect.addFinalizer(() => Effect.never))
      const shutdown = yield* Shutdown.Shutdown
      const run = yield* Effect.forkChild(Shutdown.lifecycle(main))
      yield* settle
      yield* shutdown.trigger("SIGTERM")
      yield* TestClock.adjust("5 seconds")
      yield* TestClock.adjust("3999 millis")
      assert.isUndefined(run.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(yield* Fiber.join(run), Shutdown.ExitCode.finalizersTimedOut)
    }).pipe(Effect.provide(Live)))

  it.effect("a startup failure exits 1", () =>
    Effect.gen(function*() {
      const code = yield* Shutdown.lifecycle(Layer.effectDiscard(Effect.fail(new Error("port 8080 is in use"))))
      assert.strictEqual(code, Shutdown.ExitCode.startupFailed)
    }).pipe(Effect.provide(Live)))
})

describe("Jobs", () => {
  const counter = (steps: Ref.Ref<Array<number>>) =>
    Effect.flatMap(Jobs.checkpoint("counter", Schema.Number), (checkpoint) =>
      Jobs.resumable({
        checkpoint,
        initial: 0,
        step: (n) =>
          n >= 20
            ? Effect.succeed(Option.none())
            : Effect.as(
              Effect.andThen(Effect.sleep("1 second"), Ref.update(steps, (s) => [...s, n + 1])),
              Option.some(n + 1)
            )
      }))

  it.effect("a job interrupted at shutdown resumes from its checkpoint on the next start", () =>
    Effect.gen(function*() {
      const steps = yield* Ref.make<Array<number>>([])
      const shutdown = yield* Shutdown.Shutdown
      const jobs = yield* Jobs.Jobs
      yield* jobs.run("counter", counter(steps))
      yield* settle
      assert.deepStrictEqual(yield* jobs.running, ["counter"])
      yield* advance(3)
      yield* TestClock.adjust("500 millis")
      const drain = yield* Effect.forkChild(shutdown.drain)
      yield* advance(5) // the drain; then the stop hook interrupts the job
      yield* Fiber.join(drain)
      const stepsBefore = yield* Ref.get(steps)
      assert.isTrue(stepsBefore.length >= 3)
      assert.deepStrictEqual(yield* jobs.running, [])

      // the "next start": the same store, a new run
      const kv = yield* KeyValueStore.KeyValueStore
      assert.isDefined(yield* kv.get("job-checkpoint:counter"))
      yield* Ref.set(steps, [])
      const rerun = yield* Effect.forkChild(counter(steps))
      yield* advance(20)
      yield* Fiber.join(rerun)
      const stepsAfter = yield* Ref.get(steps)
      const resumedFrom = stepsBefore.length
      assert.deepStrictEqual(stepsAfter, Array.from({ length: 20 - resumedFrom }, (_, i) => resumedFrom + i + 1))
      assert.isUndefined(yield* kv.get("job-checkpoint:counter"))
    }).pipe(Effect.provide(Layer.provideMerge(Jobs.layer, Live)), Effect.provide(KeyValueStore.layerMemory)))
})
