/**
 * What the server's HTTP tests share: one call that sends and parses JSON, and polling until a condition holds.
 */
import { Json } from "@ouroboros/testkit"
import { Effect } from "effect"

/** An answer: status, headers, the body parsed as JSON when it is JSON (else the text), and the text. */
export type Reply = Json.Reply

/** One HTTP call; a body is sent as JSON (with its content type), and a POST unless `method` says otherwise. */
export const call = (url: string, init: Json.Init = {}) => Effect.promise(() => Json.request(url, init))

/** Runs `effect` every 25 ms until `until` holds for its value; the bound (10 s) only ends a test that would hang. */
export const eventually = <A>(what: string, effect: Effect.Effect<A>, until: (a: A) => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 400; i++) {
      const value = yield* effect
      if (until(value)) return value
      yield* Effect.sleep("25 millis")
    }
    return yield* Effect.die(new Error(`gave up waiting for ${what}`))
  })
