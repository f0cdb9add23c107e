import { HttpIncomingMessage, HttpServerError, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Schema } from "effect"
import { Principal, Problem, ProblemHttp, RequestContext, TenantId } from "../src/index.js"

const bodyOf = (response: HttpServerResponse.HttpServerResponse): Record<string, unknown> => {
  assert.strictEqual(response.body._tag, "Uint8Array")
  return response.body._tag === "Uint8Array" ? JSON.parse(new TextDecoder().decode(response.body.body)) : {}
}

describe("Problem", () => {
  it("fills in the standard members and keeps extensions", () => {
    const problem = Problem.normalize(429, { _tag: "TooManyRequests", detail: "slow down", retryAfter: 3 }, "abc")
    assert.deepStrictEqual(problem, {
      _tag: "TooManyRequests",
      type: "about:blank",
      title: "Too Many Requests",
      status: 429,
      detail: "slow down",
      retryAfter: 3,
      correlationId: "abc"
    })
  })

  it("uses message as detail for platform errors", () => {
    const problem = Problem.normalize(400, { _tag: "HttpApiDecodeError", message: "Expected string", issues: [] }, undefined)
    assert.strictEqual(problem.detail, "Expected string")
    assert.isUndefined(problem.message)
    assert.deepStrictEqual(problem.issues, [])
  })

  it("says nothing of an unknown server failure", () => {
    const problem = Problem.normalize(500, { secret: "stack trace" }, "id")
    assert.deepStrictEqual(problem, {
      type: "about:blank",
      title: "Internal Server Error",
      status: 500,
      detail: "The server could not complete the request",
      correlationId: "id"
    })
  })

  it("errors carry their status", () => {
    const encoded = Schema.encodeSync(Problem.NotFound)(new Problem.NotFound({ detail: "no such document" }))
    assert.deepStrictEqual(encoded, { _tag: "NotFound", detail: "no such document" })
  })
})

const request = HttpServerRequest.fromWeb(new Request("http://localhost/"))
const serve = <E>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E>) =>
  ProblemHttp.middleware(app).pipe(Effect.provideService(HttpServerRequest.HttpServerRequest, request))

describe("ProblemHttp", () => {
  it.effect("rewrites JSON error bodies into problem+json with the correlation id and Retry-After", () =>
    Effect.gen(function*() {
      const app = Effect.succeed(
        HttpServerResponse.unsafeJson({ _tag: "ServiceUnavailable", detail: "busy", retryAfter: 2.2 }, { status: 503 })
      )
      const response = yield* serve(app).pipe(RequestContext.withCorrelationId("corr-1"))
      assert.strictEqual(response.status, 503)
      assert.strictEqual(response.headers["retry-after"], "3")
      assert.strictEqual(response.body._tag === "Uint8Array" && response.body.contentType, "application/problem+json")
      assert.deepStrictEqual(bodyOf(response), {
        _tag: "ServiceUnavailable",
        type: "about:blank",
        title: "Service Unavailable",
        status: 503,
        detail: "busy",
        retryAfter: 2.2,
        correlationId: "corr-1"
      })
    }))

  it.effect("turns an empty 404 and a defect into problems, and leaves successes and other media types alone", () =>
    Effect.gen(function*() {
      const notFound = yield* serve(Effect.succeed(HttpServerResponse.empty({ status: 404 })))
      assert.strictEqual(bodyOf(notFound).title, "Not Found")
      const defect = yield* serve(Effect.die(new Error("secret")))
      assert.strictEqual(defect.status, 500)
      assert.notInclude(JSON.stringify(bodyOf(defect)), "secret")
      const ok = HttpServerResponse.text("fine")
      assert.strictEqual(yield* serve(Effect.succeed(ok)), ok)
      const health = HttpServerResponse.unsafeJson({ status: "fail" }, { status: 503, contentType: "application/health+json" })
      assert.strictEqual(yield* serve(Effect.succeed(health)), health)
    }))

  it.effect("a body over MaxBodySize: 413 PayloadTooLarge, connection closed; other unreadable bodies: 400", () =>
    Effect.gen(function*() {
      // What the platform's body reader fails with, as a failure or (HttpApi payloads) as a defect.
      const readFailure = (message: string) =>
        new HttpServerError.RequestError({ request, reason: "Decode", cause: new Error(message) })
      const limited = <E>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E>) =>
        serve(app).pipe(
          HttpIncomingMessage.withMaxBodySize(Option.some(1000)),
          RequestContext.withCorrelationId("corr-2")
        )
      const expected = {
        _tag: "PayloadTooLarge",
        type: "about:blank",
        title: "Content Too Large",
        status: 413,
        detail: "the body is larger than 1000 bytes",
        maxBytes: 1000,
        correlationId: "corr-2"
      }
      for (const app of [Effect.fail(readFailure("maxBytes exceeded")), Effect.die(readFailure("maxBytes exceeded"))]) {
        const response = yield* limited(app)
        assert.strictEqual(response.status, 413)
        assert.strictEqual(response.headers.connection, "close")
        assert.deepStrictEqual(bodyOf(response), expected)
      }
      // The same response as a declared length over the limit gets (Server.bodyLimit answers with payloadTooLarge).
      assert.deepStrictEqual(bodyOf(yield* limited(Effect.succeed(ProblemHttp.payloadTooLarge(1000)))), expected)
      const unreadable = yield* limited(Effect.die(readFailure("Unexpected end of JSON input")))
      assert.strictEqual(unreadable.status, 400)
    }))
})

describe("kernel models", () => {
  it("validates tenant ids", () => {
    assert.isTrue(Schema.is(TenantId.TenantId)("acme-1"))
    assert.isFalse(Schema.is(TenantId.TenantId)("Acme"))
    assert.isFalse(Schema.is(TenantId.TenantId)("../etc"))
  })

  it("principals know their roles", () => {
    const p = new Principal.Principal({ tenantId: TenantId.make("a"), subject: "s", roles: ["reader"], method: "api-key" })
    assert.isTrue(p.hasRole("reader"))
    assert.isFalse(p.hasRole("admin"))
  })

  it.effect("the correlation id is scoped to the request", () =>
    Effect.gen(function*() {
      const inside = yield* RequestContext.correlationId.pipe(RequestContext.withCorrelationId("x"))
      assert.deepStrictEqual(inside, Option.some("x"))
      assert.deepStrictEqual(yield* RequestContext.correlationId, Option.none())
    }))
})
