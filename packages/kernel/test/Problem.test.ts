import { assert, describe, it } from "@effect/vitest"
import { ByteSize, Effect, Option, Schema } from "effect"
import { HttpIncomingMessage, HttpServerError, HttpServerRequest, HttpServerResponse } from "effect/http"
import { HttpApiError } from "effect/http-api"
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
    const problem = Problem.normalize(
      400,
      { _tag: "HttpApiDecodeError", message: "Expected string", issues: [] },
      undefined
    )
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
        HttpServerResponse.jsonUnsafe({ _tag: "ServiceUnavailable", detail: "busy", retryAfter: 2.2 }, { status: 503 })
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
      const health = HttpServerResponse.jsonUnsafe({ status: "fail" }, {
        status: 503,
        contentType: "application/health+json"
      })
      assert.strictEqual(yield* serve(Effect.succeed(health)), health)
    }))

  it.effect("a body over MaxBodySize: 413 PayloadTooLarge, connection closed; other unreadable bodies: 400", () =>
    Effect.gen(function*() {
      // What the platform's body reader fails with, as a failure or (HttpApi payloads) as a defect.
      const readFailure = (reason: "BodyTooLarge" | "Parse") =>
        new HttpServerError.HttpServerError({
          reason: new HttpServerError.RequestParseError({ request, reason, cause: new Error("read failed") })
        })
      const limited = <E>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E>) =>
        serve(app).pipe(
          Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(1000)),
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
      const payloadLimit = new HttpApiError.HttpApiPayloadTooLarge({ limit: "maxBytes", size: ByteSize.bytes(1000) })
      for (
        const app of [
          Effect.fail(readFailure("BodyTooLarge")),
          Effect.die(readFailure("BodyTooLarge")),
          Effect.die(payloadLimit)
        ]
      ) {
        const response = yield* limited(app)
        assert.strictEqual(response.status, 413)
        assert.strictEqual(response.headers.connection, "close")
        assert.deepStrictEqual(bodyOf(response), expected)
      }
      // The same response as a declared length over the limit gets (Server.bodyLimit answers with payloadTooLarge).
      assert.deepStrictEqual(bodyOf(yield* limited(Effect.succeed(ProblemHttp.payloadTooLarge(1000)))), expected)
      const unreadable = yield* limited(Effect.die(readFailure("Parse")))
      assert.strictEqual(unreadable.status, 400)
    }))
})

describe("ProblemHttp decode failures", () => {
  it.effect("a request that does not decode: 400 naming each path and what was expected", () =>
    Effect.gen(function*() {
      const Payload = Schema.Struct({ text: Schema.String.check(Schema.isMinLength(1)), limit: Schema.Int })
      const error = yield* Effect.flip(Schema.decodeUnknownEffect(Payload)({ text: "", limit: "x" }, { errors: "all" }))
      const failure = new HttpApiError.HttpApiSchemaError({ kind: "Payload", cause: error })
      const response = yield* serve(Effect.die(failure)).pipe(RequestContext.withCorrelationId("corr-3"))
      assert.strictEqual(response.status, 400)
      const body = bodyOf(response)
      assert.strictEqual(body.type, "about:blank")
      assert.strictEqual(body.title, "Bad Request")
      assert.strictEqual(body.correlationId, "corr-3")
      assert.isString(body.detail)
      const issues = body.issues as Array<{ path: Array<string | number>; message: string }>
      assert.deepStrictEqual(issues.map((i) => i.path), [["text"], ["limit"]])
      for (const issue of issues) assert.isString(issue.message)
      // A response that the server failed to encode is its own fault: a 500 that says nothing.
      const encoding = new HttpApiError.HttpApiSchemaError({ kind: "Body", cause: error })
      const internal = yield* serve(Effect.die(encoding))
      assert.strictEqual(internal.status, 500)
      assert.notInclude(JSON.stringify(bodyOf(internal)), "limit")
    }))
})

describe("kernel models", () => {
  it("validates tenant ids", () => {
    assert.isTrue(Schema.is(TenantId.TenantId)("acme-1"))
    assert.isFalse(Schema.is(TenantId.TenantId)("Acme"))
    assert.isFalse(Schema.is(TenantId.TenantId)("../etc"))
  })

  it("principals know their roles", () => {
    const p = new Principal.Principal({
      tenantId: TenantId.make("a"),
      subject: "s",
      roles: ["reader"],
      method: "api-key"
    })
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
