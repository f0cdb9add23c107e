import { assert, describe, it } from "@effect/vitest"
import { QdrantClient, QdrantClientResourceExhaustedError, QdrantClientTimeoutError } from "@qdrant/js-client-rest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { TestClock } from "effect/testing"
import * as Faults from "../src/Faults.js"
import * as OllamaStandIn from "../src/OllamaStandIn.js"
import * as QdrantStandIn from "../src/QdrantStandIn.js"

const settle = <A>(f: () => Promise<A>) =>
  Effect.promise(() =>
    f().then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error })
    )
  )

const timed = <A>(f: () => Promise<A>) =>
  Effect.promise(async () => {
    const start = performance.now()
    const value = await f()
    return { value, ms: performance.now() - start }
  })

/**
 * Polls `condition` until it holds, pausing on the real clock (`it.effect` runs on the `TestClock`); the deadline only
 * bounds the test.
 */
const until = (condition: () => boolean, what: string) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 20_000
    while (!condition()) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`never: ${what}`))
      yield* TestClock.withLive(Effect.sleep("5 millis"))
    }
  })

/** Runs `effect` with a deadline on the real clock that only bounds the test. */
const bounded = <A, E, R>(effect: Effect.Effect<A, E, R>, what: string) =>
  TestClock.withLive(Effect.timeoutOrElse(effect, {
    duration: "20 seconds",
    orElse: () => Effect.die(new Error(`no answer: ${what}`))
  }))

describe("Faults", () => {
  it("starts with no fault, applies patches, resets and rejects nonsense", () => {
    const faults = Faults.make()
    assert.deepStrictEqual(faults.current, Faults.none)
    faults.set({ latencyMs: 10, errorRate: 0.5 })
    assert.deepStrictEqual(faults.current, { ...Faults.none, latencyMs: 10, errorRate: 0.5 })
    faults.set({ hang: true })
    assert.strictEqual(faults.current.latencyMs, 10)
    assert.isTrue(faults.current.hang)
    faults.reset()
    assert.deepStrictEqual(faults.current, Faults.none)
    assert.throws(() => faults.set({ errorRate: 2 }))
    assert.throws(() => faults.set({ latencyMs: -1 }))
    assert.throws(() => faults.set({ errorStatus: 200 }))
    assert.deepStrictEqual(faults.current, Faults.none)
  })

  it.effect("adds latency before answering", () =>
    Effect.gen(function*() {
      const standIn = yield* OllamaStandIn.scoped()
      standIn.faults.set({ latencyMs: 150 })
      const slow = yield* timed(() => fetch(`${standIn.url}/api/version`).then((r) => r.status))
      assert.strictEqual(slow.value, 200)
      // A lower bound: a slow machine only adds to it.
      assert.isAtLeast(slow.ms, 140)
      // Was "the next answer took < 140 ms". Now: reset removes the latency, shown with one that would hold the answer
      // for an hour if it were still applied; the deadline only bounds the test.
      standIn.faults.set({ latencyMs: 60 * 60_000 })
      standIn.faults.reset()
      const fast = yield* bounded(
        Effect.promise(() => fetch(`${standIn.url}/api/version`).then((r) => r.status)),
        "the answer after reset"
      )
      assert.strictEqual(fast, 200)
    }))

  it.effect("errorRate 1 answers every request with the service's error shape", () =>
    Effect.gen(function*() {
      const ollama = yield* OllamaStandIn.scoped()
      ollama.faults.set({ errorRate: 1, errorStatus: 503 })
      for (let i = 0; i < 5; i++) {
        const response = yield* Effect.promise(() => fetch(`${ollama.url}/api/tags`))
        assert.strictEqual(response.status, 503)
        assert.deepStrictEqual(yield* Effect.promise(() => response.json()), { error: "injected fault" })
      }
      assert.strictEqual(ollama.requests.length, 5)
      ollama.faults.set({ errorRate: 0.5 })
      const statuses: Array<number> = []
      for (let i = 0; i < 4; i++) {
        statuses.push(yield* Effect.promise(() => fetch(`${ollama.url}/api/tags`).then((r) => r.status)))
      }
      assert.deepStrictEqual(statuses, [200, 503, 200, 503])

      const qdrant = yield* QdrantStandIn.scoped()
      qdrant.faults.set({ errorRate: 1 })
      const client = new QdrantClient({ url: qdrant.url, checkCompatibility: false })
      const result = yield* settle(() => client.getCollections())
      assert.isFalse(result.ok)
      const error = (result as { error: { status: number; data: { status: { error: string } } } }).error
      assert.strictEqual(error.status, 500)
      assert.strictEqual(error.data.status.error, "Service internal error: injected fault")
      qdrant.faults.set({ errorRate: 1, errorStatus: 429 })
      const limited = yield* settle(() => client.getCollections())
      assert.instanceOf((limited as { error: unknown }).error, QdrantClientResourceExhaustedError)
    }))

  it.effect("hang keeps requests open until the client gives up; lifting it lets them through", () =>
    Effect.gen(function*() {
      const qdrant = yield* QdrantStandIn.scoped()
      const client = new QdrantClient({ url: qdrant.url, checkCompatibility: false, timeout: 150 })
      // A kept-alive connection first: the hung request is written at once, before the client's timer can fire. (The
      // client's 150 ms applies to this call too: on a busy machine it is tried again, the deadline only bounds it.)
      const deadline = Date.now() + 20_000
      while (!(yield* settle(() => client.getCollections())).ok) {
        if (Date.now() > deadline) return yield* Effect.die(new Error("the stand-in never answered in time"))
      }
      qdrant.clearRequests()
      qdrant.faults.set({ hang: true })
      const timedOut = yield* settle(() => client.getCollections())
      assert.isFalse(timedOut.ok)
      assert.instanceOf((timedOut as { error: unknown }).error, QdrantClientTimeoutError)
      yield* until(() => qdrant.requests.length === 1, "it reached the stand-in")
      assert.strictEqual(qdrant.requests.length, 1) // it reached the stand-in
      const upsert = yield* settle(() => client.createCollection("late", { vectors: { size: 2, distance: "Dot" } }))
      assert.isFalse(upsert.ok)
      // The stand-in has seen both clients go away (waited for, not assumed after a pause) before the fault is lifted.
      yield* until(() => qdrant.hanging === 0, "the stand-in sees the clients that gave up go away")
      qdrant.faults.reset()
      const after = yield* Effect.promise(() => client.getCollections())
      assert.deepStrictEqual(after.collections, [], "the abandoned request was dropped, not applied late")

      const ollama = yield* OllamaStandIn.scoped()
      ollama.faults.set({ hang: true })
      const pending = fetch(`${ollama.url}/api/version`).then((r) => r.json() as Promise<{ version: string }>)
      yield* until(() => ollama.hanging === 1, "the request hangs")
      ollama.faults.set({ hang: false })
      const released = yield* Effect.promise(() => pending)
      assert.strictEqual(released.version, OllamaStandIn.defaultVersion)
    }))

  it.effect("close ends hung requests", () =>
    Effect.gen(function*() {
      const standIn = yield* Effect.promise(() => OllamaStandIn.start())
      standIn.faults.set({ hang: true })
      const pending = yield* Effect.forkChild(settle(() => fetch(`${standIn.url}/api/version`)), {
        startImmediately: true
      })
      yield* until(() => standIn.hanging === 1, "the request hangs")
      yield* Effect.promise(() => standIn.close())
      const result = yield* Fiber.join(pending)
      assert.isFalse(result.ok)
    }))

  it.effect("refuse drops connections before any request is seen, even kept-alive ones", () =>
    Effect.gen(function*() {
      const qdrant = yield* QdrantStandIn.scoped()
      // The timeout only bounds the test (a refused request fails at once).
      const client = new QdrantClient({ url: qdrant.url, checkCompatibility: false, timeout: 20_000 })
      yield* Effect.promise(() => client.getCollections()) // opens a keep-alive connection
      qdrant.clearRequests()
      qdrant.faults.set({ refuse: true })
      const refused = yield* settle(() => client.getCollections())
      assert.isFalse(refused.ok)
      const viaFetch = yield* settle(() => fetch(`${qdrant.url}/healthz`))
      assert.isFalse(viaFetch.ok)
      assert.strictEqual(qdrant.requests.length, 0)
      qdrant.faults.reset()
      const back = yield* Effect.promise(() => client.getCollections())
      assert.deepStrictEqual(back.collections, [])
      assert.strictEqual(qdrant.requests.length, 1)
    }))
})
