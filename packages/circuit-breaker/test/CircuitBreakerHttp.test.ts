import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { CircuitBreaker, CircuitBreakerHttp } from "@ouroboros/circuit-breaker"
import { Problem, ProblemHttp } from "@ouroboros/kernel"
import { Effect, Layer, References, Result } from "effect"
import { HttpBody, HttpClient, HttpRouter } from "effect/http"
import { HttpApi, HttpApiBuilder, HttpApiClient } from "effect/http-api"

const Breakers = CircuitBreaker.layer({
  breakers: {
    ollama: { tripPolicy: CircuitBreaker.consecutive(1), openDuration: "30 seconds" },
    qdrant: { tripPolicy: CircuitBreaker.consecutive(3), openDuration: "30 seconds" }
  }
})

// The group inside a bigger api, as the server composes it.
class ServerApi extends HttpApi.make("server").add(CircuitBreakerHttp.Group) {}

const recorded: Array<CircuitBreakerHttp.OperatorAction> = []

const ApiServer = HttpRouter.serve(
  HttpApiBuilder.layer(ServerApi).pipe(
    Layer.provide(CircuitBreakerHttp.layer(ServerApi)),
    Layer.provide(CircuitBreakerHttp.layerAudit({ record: (action) => Effect.sync(() => recorded.push(action)) })),
    Layer.provide(ProblemHttp.layer)
  ),
  { disableLogger: true, disableListenLog: true }
).pipe(
  Layer.provideMerge(Breakers),
  Layer.provideMerge(NodeHttpServer.layerTest),
  Layer.provide(Layer.succeed(References.MinimumLogLevel, "None"))
)

describe("CircuitBreakerHttp", () => {
  it.effect("lists breakers and applies operator actions", () =>
    Effect.gen(function*() {
      const client = yield* HttpApiClient.make(ServerApi)
      const registry = yield* CircuitBreaker.CircuitBreaker
      yield* Effect.result(registry.execute("ollama", Effect.fail("down")))

      const list = yield* client.circuitBreakers.list()
      assert.deepStrictEqual(list.map((s) => [s.name, s.state]), [["ollama", "open"], ["qdrant", "closed"]])
      assert.strictEqual(list[0]!.retryAfter !== null && list[0]!.retryAfter > 0, true)

      const forced = yield* client.circuitBreakers.forceOpen({
        params: { name: "qdrant" },
        payload: { reason: "maintenance" }
      })
      assert.strictEqual(forced.state, "forced-open")
      assert.strictEqual((yield* registry.snapshotOf("qdrant")).state, "forced-open")
      const disabled = yield* client.circuitBreakers.forceClose({ params: { name: "qdrant" }, payload: null })
      assert.strictEqual(disabled.state, "disabled")
      const reset = yield* client.circuitBreakers.reset({ params: { name: "ollama" }, payload: {} })
      assert.strictEqual(reset.state, "closed")
      assert.strictEqual((yield* registry.snapshotOf("ollama")).state, "closed")

      // The JSON of a snapshot, field by field.
      const raw = yield* HttpClient.get("/admin/circuit-breakers")
      assert.strictEqual(raw.status, 200)
      const [ollama] = (yield* raw.json) as ReadonlyArray<Record<string, unknown>>
      assert.deepStrictEqual(ollama, {
        name: "ollama",
        state: "closed",
        version: 2,
        consecutiveFailures: 0,
        window: null,
        openedAt: null,
        retryAfter: null,
        attempts: 0,
        trials: 0
      })
    }).pipe(Effect.provide(ApiServer)))

  it.effect("an unknown breaker is a 404 problem", () =>
    Effect.gen(function*() {
      const client = yield* HttpApiClient.make(ServerApi)
      const result = yield* Effect.result(client.circuitBreakers.reset({ params: { name: "nope" }, payload: null }))
      assert.isTrue(Result.isFailure(result) && result.failure._tag === "NotFound")
      const raw = yield* HttpClient.post("/admin/circuit-breakers/nope/force-open")
      assert.strictEqual(raw.status, 404)
      assert.strictEqual(raw.headers["content-type"], "application/problem+json")
      const body = (yield* raw.json) as { _tag: string; detail: string; status: number; title: string; type: string }
      assert.strictEqual(body._tag, "NotFound")
      assert.include(body.detail, "nope")
      // The body the Effect 3 server answered (test/fixtures/contract.json, "breaker unknown").
      assert.deepInclude(body, {
        detail: "no circuit breaker named nope",
        status: 404,
        title: "Not Found",
        type: "about:blank"
      })
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

  it.effect("every operator action reaches the audit hook with its reason and outcome; a bad reason is a 400", () =>
    Effect.gen(function*() {
      recorded.length = 0
      const client = yield* HttpApiClient.make(ServerApi)
      yield* client.circuitBreakers.forceOpen({ params: { name: "qdrant" }, payload: { reason: "Qdrant upgrade" } })
      // No body at all, as curl -X POST sends it.
      const bare = yield* HttpClient.post("/admin/circuit-breakers/qdrant/reset")
      assert.strictEqual(bare.status, 200)
      yield* Effect.result(client.circuitBreakers.forceClose({ params: { name: "nope" }, payload: { reason: "x" } }))
      assert.deepStrictEqual(recorded, [
        { action: "force-open", name: "qdrant", reason: "Qdrant upgrade", outcome: "success", state: "forced-open" },
        { action: "reset", name: "qdrant", reason: undefined, outcome: "success", state: "closed" },
        { action: "force-close", name: "nope", reason: "x", outcome: "failure", state: undefined }
      ])
      const tooLong = yield* HttpClient.post("/admin/circuit-breakers/qdrant/force-open", {
        body: HttpBody.jsonUnsafe({ reason: "r".repeat(2049) })
      })
      assert.strictEqual(tooLong.status, 400)
      assert.strictEqual(recorded.length, 3)
      assert.strictEqual((yield* (yield* CircuitBreaker.CircuitBreaker).snapshotOf("qdrant")).state, "closed")
    }).pipe(Effect.provide(ApiServer)))
})
