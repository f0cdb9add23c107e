// A third party's program, compiled by the consumer test with a default `tsc --init` configuration against the
// packed packages (dist/ only) and run with plain `node`: the rate limiter, a circuit breaker in a resilience
// pipeline, health checks, and the retrieval service on the embedded defaults (PGlite and the embedded vector store
// under ./data, the local models). It prints one JSON line that the test checks.
import { CircuitBreaker, Resilience } from "@ouroboros/circuit-breaker"
import { Checkpoints, EventStore } from "@ouroboros/event-store"
import { HealthCheck } from "@ouroboros/health"
import { Principal, TenantId } from "@ouroboros/kernel"
import { LlmConfig } from "@ouroboros/llm"
import { RateLimiter } from "@ouroboros/rate-limit"
import { Retrieval } from "@ouroboros/retrieval"
import { Database } from "@ouroboros/sql"
import { Embedded } from "@ouroboros/vector-store"
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

const RetrievalLive = Retrieval.layer().pipe(
  Layer.provide([EventStore.layer, Checkpoints.layer, Embedded.layer({ directory: "data/vectors" })]),
  Layer.provide([Database.layerEmbedded({ dataDir: "data" }), LlmConfig.layerLocal()])
)
const me = new Principal.Principal({
  tenantId: TenantId.make("acme"),
  subject: "me",
  roles: ["writer"],
  method: "api-key"
})

const retrieval = Effect.gen(function*() {
  const service = yield* Retrieval.Retrieval
  yield* service.ingest(me, { id: "zebras", text: "Zebras are African equines with black-and-white striped coats." })
  const { answer, sources } = yield* service.ask(me, { question: "What do zebras look like?" })
  return { answer, sources: sources.map((hit) => hit.documentId) }
}).pipe(Effect.provide(RetrievalLive))

const program = Effect.all({ rateLimit, breaker, health, retrieval })

const result = await Effect.runPromise(program)
console.log(JSON.stringify(result))
