// The consumer test's baseline: a program of the same shape as core.ts (a service behind a layer, a tagged error,
// retries, a schema) written with `effect` alone, compiled with the same `tsc --init` configuration. Its type-check
// time is what any Effect application pays; the difference to core.ts's is what the Ouroboros packages add.
import { Context, Data, Effect, Layer, Schedule, Schema } from "effect"

class Upstream extends Data.TaggedError("Upstream")<{ readonly attempt: number }> {}

class Limiter extends Context.Service<Limiter, {
  readonly consume: (key: string) => Effect.Effect<boolean, Upstream>
}>()("baseline/Limiter") {}

const layer = Layer.succeed(Limiter, Limiter.of({ consume: (key) => Effect.succeed(key.length > 0) }))

const Body = Schema.Struct({
  name: Schema.String,
  limit: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 10 }))
})

const program = Effect.gen(function*() {
  const limiter = yield* Limiter
  const allowed = yield* limiter.consume("key-1")
  const body = yield* Schema.decodeUnknownEffect(Body)({ name: "n", limit: 3 })
  const retried = yield* Effect.fail(new Upstream({ attempt: 1 })).pipe(
    Effect.retry(Schedule.recurs(2)),
    Effect.catchTag("Upstream", (e) => Effect.succeed(e.attempt))
  )
  return { allowed, body, retried }
}).pipe(Effect.provide(layer))

Effect.runPromise(program).then((result) => console.log(JSON.stringify(result)))
