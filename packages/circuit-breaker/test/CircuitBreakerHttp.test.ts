import { HttpApi, HttpApiBuilder, HttpApiClient, HttpClient } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { CircuitBreaker, CircuitBreakerHttp } from "@ouroboros/circuit-breaker"
import { Problem, ProblemHttp } from "@ouroboros/kernel"
import { Effect, Either, Layer, Logger, LogLevel } from "effect"

const Breakers = CircuitBreaker.layer({
  breakers: {
    ollama: { tripPolicy: CircuitBreaker.consecutive(1), openDuration: "30 seconds" },
    qdrant: { tripPolicy: CircuitBreaker.consecutive(3), openDuration: "30 seconds" }
  }
})

// The group inside a bigger api, as the server composes it.
class ServerApi extends HttpApi.make("server").add(CircuitBreakerHttp.Group) {}

const ApiServer = HttpApiBuilder.serve(ProblemHttp.middleware).pipe(
  Layer.provide(HttpApiBuilder.api(ServerApi)),
  Layer.provide(CircuitBreakerHttp.layer(ServerApi)),
  Layer.provideMerge(Breakers),
  Layer.provideMerge(NodeHttpServer.layerTest),
  Layer.provide(Logger.minimumLogLevel(LogLevel.None))
)

describe("CircuitBreakerHttp", () => {
  it.scoped("lists breakers and applies operator actions", () =>
    Effect.gen(function*() {
      const client = yield* HttpApiClient.make(ServerApi)
      const registry = yield* CircuitBreaker.CircuitBreaker
      yield* Effect.either(registry.execute("ollama", Effect.fail("down")))

      const list = yield* client.circuitBreakers.list()
      assert.deepStrictEqual(list.map((s) => [s.name, s.state]), [["ollama", "open"], ["qdrant", "closed"]])
      assert.strictEqual(list[0]!.retryAfter !== null && list[0]!.retryAfter > 0, true)

      const forced = yield* client.circuitBreakers.forceOpen({ path: { name: "qdrant" } })
      assert.strictEqual(forced.state, "forced-open")
      assert.strictEqual((yield* registry.snapshotOf("qdrant")).state, "forced-open")
      const disabled = yield* client.circuitBreakers.forceClose({ path: { name: "qdrant" } })
      assert.strictEqual(disabled.state, "disabled")
      const reset = yield* client.circuitBreakers.reset({ path: { name: "ollama" } })
      assert.strictEqual(reset.state, "closed")
      assert.strictEqual((yield* registry.snapshotOf("ollama")).state, "closed")
    }).pipe(Effect.provide(ApiServer)))

  it.scoped("an unknown breaker is a 404 problem", () =>
    Effect.gen(function*() {
      const client = yield* HttpApiClient.make(ServerApi)
      const result = yield* Effect.either(client.circuitBreakers.reset({ path: { name: "nope" } }))
      assert.isTrue(Either.isLeft(result) && result.left._tag === "NotFound")
      const raw = yield* HttpClient.post("/admin/circuit-breakers/nope/force-open")
      assert.strictEqual(raw.status, 404)
      const body = (yield* raw.json) as { _tag: string; detail: string }
      assert.strictEqual(body._tag, "NotFound")
      assert.include(body.detail, "nope")
    }).pipe(Effect.provide(ApiServer)))

  it.effect("toProblem: a 503 with Retry-After in seconds for an open breaker", () =>
    Effect.gen(function*() {
      const open = yield* Effect.flip(
        CircuitBreakerHttp.toProblem(new CircuitBreaker.CircuitOpen({ name: "ollama", retryAfter: 2500 }))
      )
      assert.instanceOf(open, Problem.ServiceUnavailable)
      assert.strictEqual(open.retryAfter, 3)
      const timeout = yield* Effect.flip(CircuitBreakerHttp.toProblem({ _tag: "Timeout", name: "qdrant" }))
      assert.isUndefined(timeout.retryAfter)
      assert.include(timeout.detail, "qdrant")
    }))
})
