/**
 * A standalone Effect program (no Ouroboros server) that rate-limits its own outgoing calls and guards them with a
 * circuit breaker in a resilience pipeline (timeout, retry, breaker, fallback). The upstream is a local HTTP server
 * that fails its first requests with 503; the program prints one JSON line with what happened.
 *
 *   node --conditions=@ouroboros/source --import tsx examples/circuit-breaker-fetch.ts   (in this repository)
 */
import { CircuitBreaker, Resilience } from "@ouroboros/circuit-breaker"
import { RateLimiter } from "@ouroboros/rate-limit"
import { Data, Effect, Layer } from "effect"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"

class UpstreamFailed extends Data.TaggedError("UpstreamFailed")<{ readonly status: number }> {}

/** A local upstream whose first `failures` requests answer 503; closed with the scope. */
const upstream = (failures: number) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly url: string; readonly requests: () => number; readonly server: Server }>((resume) => {
      let requests = 0
      const server = createServer((_request, response) => {
        requests++
        response.writeHead(requests <= failures ? 503 : 200, { "content-type": "text/plain" })
        response.end(requests <= failures ? "unavailable" : "hello")
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resume(Effect.succeed({ url: `http://127.0.0.1:${port}/`, requests: () => requests, server }))
      })
    }),
    ({ server }) => Effect.callback<void>((resume) => void server.close(() => resume(Effect.void)))
  )

const fetchText = (url: string) =>
  Effect.tryPromise({
    try: async () => {
      const response = await fetch(url)
      return { status: response.status, body: await response.text() }
    },
    catch: () => new UpstreamFailed({ status: 0 })
  }).pipe(Effect.flatMap((result) =>
    result.status === 200 ? Effect.succeed(result.body) : Effect.fail(new UpstreamFailed({ status: result.status }))
  ))

const program = Effect.gen(function*() {
  const server = yield* upstream(2)
  const limiter = yield* RateLimiter.RateLimiter
  const guarded = yield* Resilience.make("upstream", {
    breaker: { tripPolicy: CircuitBreaker.consecutive(2), openDuration: "1 minute" },
    timeout: "5 seconds"
  })
  const outcomes: Array<string> = []
  for (let call = 1; call <= 5; call++) {
    // The call through the pipeline; once the breaker is open it is refused at once and the fallback answers.
    const guardedCall = guarded(fetchText(server.url)).pipe(
      Resilience.withFallback((error) => Effect.succeed(`fallback after ${error._tag}`))
    )
    // A call over the local rate limit is not made at all.
    const outcome = yield* limiter.consume({ client: "self", endpoint: "GET /upstream" }).pipe(
      Effect.andThen(guardedCall),
      Effect.catchTag("RateLimitExceeded", (exceeded) => Effect.succeed(`limited by ${exceeded.violatedPolicies}`))
    )
    outcomes.push(outcome)
  }
  return { outcomes, upstreamRequests: server.requests() }
})

const Live = Layer.mergeAll(
  CircuitBreaker.layer(),
  RateLimiter.layerMemory({
    policies: [RateLimiter.Policy.make({ name: "outgoing", limit: 4, window: 60_000, scope: ["global"] })]
  })
)

const result = await Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(Live)))
console.log(JSON.stringify(result))
