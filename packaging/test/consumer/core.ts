// A third party's program, compiled by the consumer test with a default `tsc --init` configuration against the
// packed packages (dist/ only) and run with plain `node`: the rate limiter, a circuit breaker in a resilience
// pipeline, and health checks. It runs on the lowest effect these packages allow (4.1.0) and the highest. It prints
// one JSON line that the test checks.
import { CircuitBreaker, Resilience } from "@ouroboros/circuit-breaker"
import { HealthCheck } from "@ouroboros/health"
import { RateLimiter } from "@ouroboros/rate-limit"
import { Data, Effect, Layer } from "effect"

class Upstream extends Data.TaggedError("Upstream")<{ readonly attempt: number }> {}

const rateLimit = Effect.gen(function*() {
  const limiter = yield* RateLimiter.RateLimiter
  const subject = { apiKey: "key-1", client: "127.0.0.1", endpoint: "GET /api/ping" }
  const first = yield* limiter.consume(subject)
  // The error channel is typed: RateLimitExceeded | RateLimitStoreError.
  const second = yield* Effect.flip(limiter.consume(subject))
  return { allowed: first.allowed, second: second._tag }
}).pipe(
  Effect.provide(RateLimiter.layerMemory({
    policies: [RateLimiter.Policy.make({ name: "one-a-minute", limit: 1, window: 60_000 })]
  }))
)

const breaker = Effect.gen(function*() {
  const guarded = yield* Resilience.make("upstream", {
    breaker: { tripPolicy: CircuitBreaker.consecutive(2), openDuration: "1 minute" }
  })
  const errors: Array<string> = []
  for (let attempt = 1; attempt <= 3; attempt++) {
    const error = yield* Effect.flip(guarded(Effect.fail(new Upstream({ attempt }))))
    errors.push(error._tag)
  }
  const fallback = yield* guarded(Effect.fail(new Upstream({ attempt: 4 }))).pipe(
    Resilience.withFallback(() => Effect.succeed("fallback"))
  )
  return { errors, fallback }
}).pipe(Effect.provide(CircuitBreaker.layer()))

const health = Effect.gen(function*() {
  const report = yield* HealthCheck.report("live")
  return { status: report.status }
}).pipe(
  Effect.provide(
    HealthCheck.layerCheck({ name: "consumer:ok", critical: true, run: Effect.succeed(HealthCheck.pass()) }).pipe(
      Layer.provideMerge(HealthCheck.layer())
    )
  )
)

const result = await Effect.runPromise(Effect.all({ rateLimit, breaker, health }))
console.log(JSON.stringify(result))
