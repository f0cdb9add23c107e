import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as Connection from "../src/Connection.js"

const client = (quit: () => Promise<unknown>) => {
  const calls: Array<string> = []
  return {
    calls,
    quit: () => {
      calls.push("quit")
      return quit()
    },
    disconnect: () => {
      calls.push("disconnect")
    }
  }
}

describe("Connection.close", () => {
  it.effect("quits, then hangs up", () =>
    Effect.gen(function*() {
      const c = client(() => Promise.resolve("OK"))
      yield* Connection.close(c, "1 second")
      assert.deepStrictEqual(c.calls, ["quit", "disconnect"])
    }))

  it.effect("a failed quit still hangs up", () =>
    Effect.gen(function*() {
      const c = client(() => Promise.reject(new Error("Connection is closed.")))
      yield* Connection.close(c, "1 second")
      assert.deepStrictEqual(c.calls, ["quit", "disconnect"])
    }))

  it.effect("a server that never answers is hung up on at the timeout, even as a finalizer", () =>
    Effect.gen(function*() {
      const c = client(() => new Promise(() => {}))
      // As a finalizer, it runs uninterruptibly: the timeout must still end the wait.
      const fiber = yield* Effect.forkChild(Effect.scoped(Effect.addFinalizer(() => Connection.close(c, "1 second"))))
      yield* TestClock.adjust("999 millis")
      assert.deepStrictEqual(c.calls, ["quit"])
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(c.calls, ["quit", "disconnect"])
    }))
})
