/**
 * The problem middleware over real HTTP (a Node server on a test port): bounded decode failures, the JSON depth limit,
 * and the RFC 9457 style (no `_tag`, documented types, details, 405 with `Allow`) with every body checked against the
 * shared problem schema.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import addFormats from "ajv-formats"
import Ajv2020 from "ajv/dist/2020.js"
import { Effect, Layer, Schema } from "effect"
import { HttpClient, HttpClientRequest, HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup } from "effect/http-api"
import { SqlError } from "effect/sql"
import { Problem, ProblemHttp, ProblemOpenApi } from "../src/index.js"

const Scalar = Schema.Union([Schema.String, Schema.Finite, Schema.Boolean])
// The retrieval API's metadata: five members per value.
const Metadata = Schema.Record(
  Schema.String,
  Schema.Union([Schema.String, Schema.Finite, Schema.Boolean, Schema.Null, Schema.Array(Scalar)])
)
// A recursive filter, decoded by the handler (as the retrieval API decodes its search filters).
interface Filter {
  readonly must?: ReadonlyArray<Filter | { readonly key: string }> | undefined
}
const Filter: Schema.Codec<Filter> = Schema.Struct({
  must: Schema.optional(
    Schema.Array(Schema.Union([Schema.suspend(() => Filter), Schema.Struct({ key: Schema.String })]))
  )
})

class Group extends HttpApiGroup.make("docs").add(
  HttpApiEndpoint.post("ingest", "/documents", {
    payload: Schema.Struct({
      text: Schema.String,
      tags: Schema.optional(Schema.Array(Schema.String)),
      metadata: Schema.optional(Metadata)
    }),
    success: Schema.Struct({ ok: Schema.Boolean })
  }),
  HttpApiEndpoint.post("search", "/search", {
    payload: Schema.Struct({ filter: Schema.optional(Schema.Unknown) }),
    success: Schema.Struct({ ok: Schema.Boolean })
  }),
  HttpApiEndpoint.get("get", "/documents/:id", {
    params: { id: Schema.String },
    success: Schema.Struct({ id: Schema.String }),
    error: Problem.NotFound
  })
) {}
// Values reported in issues, as in the worst case (Effect 3 quoted them always).
class Api
  extends HttpApi.make("test").add(Group).annotate(HttpApi.ParseOptions, { reportInput: true, errors: "all" })
{}

const GroupLive = HttpApiBuilder.group(Api, "docs", (handlers) =>
  handlers
    .handle("ingest", () => Effect.succeed({ ok: true }))
    .handle("search", ({ payload }) =>
      Effect.as(Effect.orDie(Schema.decodeUnknownEffect(Filter)(payload.filter ?? {})), { ok: true }))
    .handle("get", ({ params }) =>
      params.id === "missing"
        ? Effect.fail(new Problem.NotFound({ detail: "no document missing" }))
        : Effect.succeed({ id: params.id })))

const Routes = Layer.mergeAll(
  HttpApiBuilder.layer(Api).pipe(Layer.provide(GroupLive)),
  // A route that reads the body itself, behind a router prefix (the router rewrites the request's URL).
  HttpRouter.use((router) =>
    router.prefixed("/raw").add(
      "POST",
      "/echo",
      Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
        Effect.map(request.json, (json) => HttpServerResponse.jsonUnsafe({ echo: json })))
    )
  ),
  // A service that turns its store's errors into defects (`Effect.orDie`): a lost connection, a unique violation.
  HttpRouter.add(
    "GET",
    "/database/lost",
    Effect.die(
      new SqlError.SqlError({
        reason: new SqlError.ConnectionError({ cause: new Error("ECONNRESET"), message: "Connection closed" })
      })
    )
  ),
  HttpRouter.add(
    "GET",
    "/database/duplicate",
    Effect.die(
      new SqlError.SqlError({
        reason: new SqlError.UniqueViolation({ cause: new Error("23505"), constraint: "notes_body_key" })
      })
    )
  ),
  // A problem made elsewhere (a rate limiter, say).
  HttpRouter.add(
    "GET",
    "/limited",
    HttpServerResponse.jsonUnsafe({
      _tag: "TooManyRequests",
      type: "about:blank",
      title: "Too Many Requests",
      status: 429,
      detail: "slow down",
      retryAfter: 2
    }, {
      status: 429,
      contentType: Problem.contentType
    })
  )
)

// As the server does: versions negotiated inside the problem middleware, by rewriting `/v1/...` to `/...`.
const negotiate = <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    request.url.startsWith("/v1/")
      ? Effect.provideService(app, HttpServerRequest.HttpServerRequest, request.modify({ url: request.url.slice(3) }))
      : app)

const serve = (problems: ReturnType<typeof ProblemHttp.make>) =>
  HttpRouter.serve(
    Routes.pipe(
      Layer.provide(HttpRouter.middleware(
        (effect: Effect.Effect<HttpServerResponse.HttpServerResponse, any>) =>
          problems(negotiate(effect)) as unknown as Effect.Effect<HttpServerResponse.HttpServerResponse, any>,
        { global: true }
      ))
    ),
    { disableLogger: true, disableListenLog: true }
  ).pipe(Layer.provideMerge(NodeHttpServer.layerTest))

interface Reply {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly text: string
  readonly body: any
}

const send = (method: "GET" | "POST" | "PUT", path: string, body?: string, contentType = "application/json") =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    let request = HttpClientRequest.make(method)(path)
    if (body !== undefined) request = HttpClientRequest.bodyText(request, body, contentType)
    const response = yield* client.execute(request)
    const text = yield* response.text
    let parsed: unknown = undefined
    try {
      parsed = JSON.parse(text)
    } catch {
      // not JSON
    }
    return { status: response.status, headers: response.headers, text, body: parsed } as Reply
  }).pipe(Effect.orDie)

const nest = (levels: number, open: string, close: string, inner: string) =>
  open.repeat(levels) + inner + close.repeat(levels)
const deepFilter = JSON.stringify({ query: "x" }).slice(0, -1) + `,"filter":` +
  nest(1000, `{"must":[`, "]}", `{"key":"a"}`) + "}"
const deepMetadata = `{"text":"a","metadata":{"a":${nest(5000, "[", "]", "1")}}}`

describe("ProblemHttp: bounded decode failures", () => {
  it.effect("a 7 MB value in a union answers a small 400 naming the path and the expectation", () =>
    Effect.gen(function*() {
      const huge = "x".repeat(7 * 1024 * 1024)
      const body = JSON.stringify({ text: "a", metadata: { big: { value: huge } } })
      // Three at once, as in the report.
      const replies = yield* Effect.all([1, 2, 3].map(() => send("POST", "/documents", body)), { concurrency: 3 })
      for (const reply of replies) {
        assert.strictEqual(reply.status, 400)
        assert.strictEqual(reply.headers["content-type"], "application/problem+json")
        assert.isBelow(reply.text.length, 2000)
        assert.deepStrictEqual(reply.body.issues.map((i: any) => i.path), [["metadata", "big"]])
        assert.include(reply.body.issues[0].message, "Expected string | number | boolean | null | array")
        assert.include(reply.body.detail, `at ["metadata"]["big"]`)
      }
      const bad = yield* send("POST", "/documents", JSON.stringify({ text: huge.length }))
      assert.strictEqual(bad.body.issues[0].message, `Expected string, got ${huge.length}`)
      const longString = yield* send("POST", "/documents", JSON.stringify({ text: 1, tags: [huge] }))
      assert.deepStrictEqual(longString.body.issues.map((i: any) => i.path), [["text"]])
      const quoted = yield* send("POST", "/documents", JSON.stringify({ text: "a", tags: [1, huge, 2] }))
      assert.isBelow(quoted.text.length, 2000)
    }).pipe(Effect.provide(serve(ProblemHttp.middleware))))

  it.effect("lists at most 20 issues and counts the rest", () =>
    Effect.gen(function*() {
      const reply = yield* send(
        "POST",
        "/documents",
        JSON.stringify({ text: "a", tags: Array.from({ length: 500 }, (_, i) => i) })
      )
      assert.strictEqual(reply.status, 400)
      assert.strictEqual(reply.body.issues.length, 20)
      assert.strictEqual(reply.body.issuesOmitted, 480)
      assert.include(reply.body.detail, "and 497 more issues")
    }).pipe(Effect.provide(serve(ProblemHttp.middleware))))
})

describe("ProblemHttp: JSON depth", () => {
  it.effect("a filter 1000 levels deep and metadata arrays 5000 deep are 400s, never 500s", () =>
    Effect.gen(function*() {
      assert.isBelow(deepFilter.length, 12_000)
      for (
        const [path, body] of [
          ["/search", deepFilter],
          ["/documents", deepMetadata],
          ["/v1/search", deepFilter],
          ["/raw/echo", deepMetadata],
          ["/v1/raw/echo", deepFilter]
        ] as const
      ) {
        const reply = yield* send("POST", path, body)
        assert.strictEqual(reply.status, 400, path)
        assert.deepStrictEqual(reply.body, {
          _tag: "JsonTooDeep",
          type: "about:blank",
          title: "Bad Request",
          status: 400,
          detail: "the JSON body nests arrays and objects deeper than 64 levels",
          maxDepth: 64
        })
      }
      // A body of another media type is not checked (a binary upload may hold any number of brackets).
      const text = yield* send("POST", "/raw/echo", nest(100, "[", "]", ""), "text/plain")
      assert.strictEqual(text.status, 200)
    }).pipe(Effect.provide(serve(ProblemHttp.middleware))))

  it.effect("bodies within the limit reach their handlers, through rewritten and prefixed requests", () =>
    Effect.gen(function*() {
      const shallow = JSON.stringify({ query: "x", filter: JSON.parse(nest(20, `{"must":[`, "]}", `{"key":"a"}`)) })
      for (const path of ["/search", "/v1/search"]) {
        const reply = yield* send("POST", path, shallow)
        assert.deepStrictEqual([reply.status, reply.body], [200, { ok: true }], path)
      }
      for (const path of ["/raw/echo", "/v1/raw/echo"]) {
        const reply = yield* send("POST", path, `{"a":[1,"]]]"]}`)
        assert.deepStrictEqual([reply.status, reply.body], [200, { echo: { a: [1, "]]]"] } }], path)
      }
    }).pipe(Effect.provide(serve(ProblemHttp.middleware))))

  it.effect("the limit is an option", () =>
    Effect.gen(function*() {
      const refused = yield* send("POST", "/raw/echo", `[[[[1]]]]`)
      assert.deepStrictEqual([refused.status, refused.body.maxDepth], [400, 3])
      const accepted = yield* send("POST", "/raw/echo", `[[[1]]]`)
      assert.strictEqual(accepted.status, 200)
    }).pipe(Effect.provide(serve(ProblemHttp.make({ maxJsonDepth: 3 })))))

  it.effect("Infinity turns it off", () =>
    Effect.gen(function*() {
      const accepted = yield* send("POST", "/raw/echo", nest(100, "[", "]", ""))
      assert.strictEqual(accepted.status, 200)
    }).pipe(Effect.provide(serve(ProblemHttp.make({ maxJsonDepth: Infinity })))))
})

const ajv = new Ajv2020.default({ strict: false, allErrors: true })
addFormats.default(ajv)
ajv.addSchema(ProblemOpenApi.problemIssueSchema, "#/components/schemas/ProblemIssue")
const documentedSchema = ProblemOpenApi.problemSchema({ tags: "omit", types: "documented" })
const isProblem = ajv.compile(documentedSchema)
const isLegacyProblem = ajv.compile(ProblemOpenApi.problemSchema())

const table = ProblemHttp.routes([
  ...ProblemHttp.routesOf(Api),
  { method: "POST", path: "/raw/echo" },
  { method: "GET", path: "/limited" }
])
const base = Problem.typeBase

describe("ProblemHttp: RFC 9457 style (opt-in)", () => {
  const rfc = serve(ProblemHttp.make({ ...ProblemHttp.rfc9457, routes: table }))

  it.effect("no _tag, a documented type on every problem, details for router 404s and malformed JSON", () =>
    Effect.gen(function*() {
      const expectations: ReadonlyArray<readonly [Reply, number, string]> = [
        [yield* send("GET", "/nope"), 404, "not-found"],
        [yield* send("GET", "/documents/missing"), 404, "not-found"],
        [yield* send("POST", "/documents", "{ not json"), 400, "malformed-json"],
        [yield* send("POST", "/documents", JSON.stringify({ text: 3 })), 400, "request-validation"],
        [yield* send("POST", "/search", deepFilter), 400, "json-too-deep"],
        [
          yield* send("POST", "/documents", "text=a", "application/x-www-form-urlencoded"),
          415,
          "unsupported-media-type"
        ],
        [yield* send("GET", "/limited"), 429, "too-many-requests"],
        [yield* send("GET", "/search"), 405, "method-not-allowed"]
      ]
      for (const [reply, status, name] of expectations) {
        assert.strictEqual(reply.status, status, name)
        assert.strictEqual(reply.headers["content-type"], "application/problem+json", name)
        assert.strictEqual(reply.body.type, `${base}${name}`, name)
        assert.notProperty(reply.body, "_tag", name)
        assert.isString(reply.body.detail, name)
        assert.isTrue(isProblem(reply.body), `${name}: ${JSON.stringify(isProblem.errors)}`)
        assert.isTrue(Schema.is(Problem.ProblemDetails)(reply.body), name)
      }
      const [notFound, , malformed, , , unsupported, limited, wrongMethod] = expectations.map(([reply]) => reply)
      assert.strictEqual(notFound!.body.detail, "no route matches GET /nope")
      assert.strictEqual(malformed!.body.detail, "the body is not valid JSON")
      assert.include(unsupported!.body.detail, "Unsupported content-type")
      assert.strictEqual(limited!.headers["retry-after"], "2")
      assert.strictEqual(wrongMethod!.headers["allow"], "POST")
      assert.deepStrictEqual(wrongMethod!.body.allow, ["POST"])
      assert.strictEqual(wrongMethod!.body.detail, "GET is not allowed on /search; it accepts POST")
      // GET paths also accept HEAD; rewritten requests are matched as the router sees them.
      const put = yield* send("PUT", "/v1/documents/a")
      assert.deepStrictEqual([put.status, put.headers["allow"]], [405, "GET, HEAD"])
    }).pipe(Effect.provide(rfc)))
})

describe("ProblemHttp: today's style (default)", () => {
  it.effect("route 404s without detail, a wrong method is a 404, bodies keep _tag and about:blank", () =>
    Effect.gen(function*() {
      const notFound = yield* send("GET", "/nope")
      assert.deepStrictEqual(notFound.body, { type: "about:blank", title: "Not Found", status: 404 })
      const wrongMethod = yield* send("GET", "/search")
      assert.deepStrictEqual([wrongMethod.status, wrongMethod.headers["allow"]], [404, undefined])
      const malformed = yield* send("POST", "/documents", "{ not json")
      assert.strictEqual(malformed.body._tag, "HttpApiDecodeError")
      const limited = yield* send("GET", "/limited")
      assert.strictEqual(limited.body._tag, "TooManyRequests")
      for (const reply of [notFound, malformed, limited]) assert.isTrue(isLegacyProblem(reply.body))
      // The unsupported media type stays as HttpApi answers it (text/plain).
      const unsupported = yield* send("POST", "/documents", "text=a", "application/x-www-form-urlencoded")
      assert.deepStrictEqual([unsupported.status, unsupported.headers["content-type"]], [415, "text/plain"])
    }).pipe(Effect.provide(serve(ProblemHttp.middleware))))
})

describe("ProblemHttp: database failures that reach it as defects", () => {
  it.effect("one a retry may get past (a lost connection) is a 503 with Retry-After; any other stays a 500", () =>
    Effect.gen(function*() {
      const lost = yield* send("GET", "/database/lost")
      assert.strictEqual(lost.status, 503)
      assert.strictEqual(lost.headers["content-type"], Problem.contentType)
      assert.strictEqual(lost.headers["retry-after"], "5")
      assert.strictEqual(lost.body.detail, "The database did not answer; try again")
      assert.notInclude(lost.text, "ECONNRESET", "names nothing of its cause")
      const duplicate = yield* send("GET", "/database/duplicate")
      assert.strictEqual(duplicate.status, 500)
      assert.strictEqual(duplicate.body.detail, "The server could not complete the request")
    }).pipe(Effect.provide(serve(ProblemHttp.middleware))))
})

describe("Problem types", () => {
  it("names a type for every kernel error, derives others from their tag, and writes URIs in the documented style", () => {
    for (const type of Problem.types) {
      assert.match(type.name, /^[a-z0-9-]+$/)
      for (const tag of type.tags ?? []) assert.strictEqual(Problem.typeName(tag, type.status), type.name)
    }
    assert.strictEqual(Problem.typeName("PipelineSyntaxError", 400), "pipeline-syntax-error")
    assert.strictEqual(Problem.typeName("HTTPVersionGone", 410), "http-version-gone")
    assert.strictEqual(Problem.typeName(undefined, 404), "not-found")
    assert.strictEqual(Problem.typeName(undefined, 400), "bad-request")
    assert.isUndefined(Problem.typeName(undefined, 418))
    const problem = Problem.normalizeWith(404, { _tag: "NotFound", detail: "no" }, "c", Problem.documentedStyle)
    assert.deepStrictEqual(problem, {
      type: `${base}not-found`,
      title: "Not Found",
      status: 404,
      detail: "no",
      correlationId: "c"
    })
    // A body that names its own type keeps it.
    const own = Problem.normalizeWith(
      429,
      { type: "https://iana.org/x", _tag: "RateLimitExceeded" },
      undefined,
      Problem.documentedStyle
    )
    assert.strictEqual(own.type, "https://iana.org/x")
    assert.deepStrictEqual(
      Problem.normalizeWith(500, { secret: 1 }, undefined, Problem.documentedStyle),
      {
        type: `${base}internal-error`,
        title: "Internal Server Error",
        status: 500,
        detail: "The server could not complete the request"
      }
    )
  })

  it("toProblem restyles problem+json bodies made elsewhere only in the new style", () => {
    const made = HttpServerResponse.jsonUnsafe({
      _tag: "Overloaded",
      detail: "busy",
      type: "about:blank",
      title: "Service Unavailable",
      status: 503
    }, {
      status: 503,
      contentType: Problem.contentType
    })
    const read = (response: HttpServerResponse.HttpServerResponse) =>
      response.body._tag === "Uint8Array" ? JSON.parse(new TextDecoder().decode(response.body.body)) : undefined
    assert.strictEqual(read(ProblemHttp.toProblem(made, "c")).type, "about:blank")
    assert.strictEqual(read(ProblemHttp.toProblem(made, "c")).correlationId, "c")
    const restyled = read(ProblemHttp.toProblem(made, "c", ProblemHttp.rfc9457))
    assert.deepStrictEqual(restyled, {
      type: `${base}overloaded`,
      title: "Service Unavailable",
      status: 503,
      detail: "busy",
      correlationId: "c"
    })
  })
})
