import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Principal, ProblemHttp, TenantId } from "@ouroboros/kernel"
import { RateLimiter, RateLimiterHttp } from "@ouroboros/rate-limit"
import { Effect, Layer, Option, Redacted, Schema } from "effect"
import { FetchHttpClient, HttpClient, HttpClientRequest, HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { TestClock } from "effect/testing"
import { SignJWT } from "jose"
import * as NodeHttp from "node:http"
import * as Jwt from "../src/Jwt.js"
import * as Quotas from "../src/Quotas.js"
import * as QuotasHttp from "../src/QuotasHttp.js"
import * as TenancyHttp from "../src/TenancyHttp.js"
import * as TenantConfig from "../src/TenantConfig.js"
import * as Tenants from "../src/Tenants.js"
import * as TenantsHttp from "../src/TenantsHttp.js"
import * as TenantStore from "../src/TenantStore.js"
import * as Memory from "../src/TenantStore/Memory.js"
import * as Usage from "../src/Usage.js"
import * as UsageHttp from "../src/UsageHttp.js"

const adminKey = "admin-key-0123456789abcdef"
const acmeKey = "acme-key-0123456789abcdef"
const limitedKey = "limited-key-0123456789abc"
const secret = "a-test-secret-of-at-least-32-bytes!!"
const T = 1_750_000_000

// A tenant endpoint and an operator endpoint of the server, guarded by this package's middlewares.
class TenantGroup extends HttpApiGroup.make("tenant").add(
  HttpApiEndpoint.get("whoami", "/api/v1/whoami", {
    success: Schema.Struct({ tenant: Schema.String, subject: Schema.String, roles: Schema.Array(Schema.String) })
  })
).middleware(TenancyHttp.Authentication) {}

class OpsGroup extends HttpApiGroup.make("ops").add(
  HttpApiEndpoint.get("ops", "/admin/ops", { success: Schema.String })
).middleware(TenancyHttp.AdminAuthentication) {}

class Api extends HttpApi.make("test").add(TenantGroup).add(OpsGroup).add(TenantsHttp.Group) {}

const TenantLive = HttpApiBuilder.group(
  Api,
  "tenant",
  (handlers) =>
    handlers.handle("whoami", () =>
      Effect.map(Effect.service(Principal.CurrentPrincipal), (p) => ({
        tenant: p.tenantId,
        subject: p.subject,
        roles: p.roles
      })))
)
const OpsLive = HttpApiBuilder.group(Api, "ops", (handlers) => handlers.handle("ops", () => Effect.succeed("ok")))

// Public: no authentication, whatever the headers.
const Health = HttpRouter.add("GET", "/health/live", HttpServerResponse.text("live"))

const services = Layer.mergeAll(Quotas.layer(), Usage.layer({ flushIntervalMillis: 3_600_000 })).pipe(
  Layer.provideMerge(
    Layer.effect(
      Tenants.Tenants,
      Effect.flatMap(
        TenantConfig.make({
          adminKey: Option.some(Redacted.make(adminKey)),
          apiKeys: Redacted.make(`acme:${acmeKey},limited:${limitedKey}`)
        }, [{ id: TenantId.make("limited"), quotas: { requestsPerDay: 2 } }]),
        (bootstrap) => Tenants.make({ bootstrap })
      )
    )
  ),
  Layer.provideMerge(Layer.mergeAll(
    Memory.layer,
    Jwt.layer({ secret: Redacted.make(secret) }),
    Quotas.layerMemoryStore,
    Usage.layerMemoryStore
  ))
)

// Global middlewares in order, outermost first: problems, authentication, then what reads the principal.
const globals = (limit: number) =>
  Layer.mergeAll(
    RateLimiterHttp.layer({ resolve: TenancyHttp.limiterResolver(RateLimiterHttp.defaultResolver()) }),
    QuotasHttp.layer(),
    UsageHttp.layer()
  ).pipe(
    Layer.provide(TenancyHttp.layer),
    Layer.provide(ProblemHttp.layer),
    Layer.provide(RateLimiter.layerMemory({
      policies: [new RateLimiter.Policy({ name: "per-key", limit, window: 60_000, scope: ["api-key"] })]
    }))
  )

const app = (limit: number) =>
  Layer.mergeAll(HttpApiBuilder.layer(Api), Health).pipe(
    Layer.provide([TenantLive, OpsLive, TenantsHttp.layer(Api)]),
    Layer.provide(TenancyHttp.layerSecurity),
    Layer.provide(globals(limit)),
    Layer.provideMerge(services)
  )

// A Node server that accepts 64 KiB of headers (a 16 KiB key must reach the service, not Node's 431).
// The rate limiter admits `limit` requests a minute per principal, and per client address without one.
const served = (limit = 1_000) =>
  HttpRouter.serve(app(limit), { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provideMerge(
      HttpServer.layerTestClient.pipe(
        Layer.provide(Layer.fresh(FetchHttpClient.layer)),
        Layer.provideMerge(
          NodeHttpServer.layer(() => NodeHttp.createServer({ maxHeaderSize: 65_536 }), { port: 0, host: "127.0.0.1" })
        )
      )
    )
  )

const call = (
  method: "GET" | "POST" | "PATCH" | "DELETE",
  path: string,
  headers: Record<string, string> = {},
  body?: unknown
) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    let request = HttpClientRequest.make(method)(path).pipe(HttpClientRequest.setHeaders(headers))
    if (body !== undefined) request = HttpClientRequest.bodyJsonUnsafe(request, body)
    const response = yield* client.execute(request)
    const text = yield* response.text
    let json: any = undefined
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }
    return { status: response.status, headers: response.headers, text, body: json }
  }).pipe(Effect.orDie)

const sign = (
  claims: Record<string, unknown>,
  options: { readonly alg?: string; readonly exp?: number; readonly key?: string } = {}
) =>
  Effect.promise(() =>
    new SignJWT({ tenant_id: "acme", roles: ["writer"], ...claims })
      .setProtectedHeader({ alg: options.alg ?? "HS256" })
      .setSubject("user-1")
      .setIssuedAt(T)
      .setExpirationTime(options.exp ?? T + 300)
      .sign(new TextEncoder().encode(options.key ?? secret))
  )

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")

describe("TenancyHttp", () => {
  // The clock is set before the server is built: moving a TestClock far ahead runs every scheduled sleep on the way
  // (the usage flush loop's among them).
  it.effect(
    "every bad credential is the same 401; public routes stay public; nothing is kept for them",
    () =>
      Effect.gen(function*() {
        const tenants = yield* Tenants.Tenants
        const valid = yield* sign({})
        const revoked = yield* tenants.keys.create(TenantId.make("acme"))
        yield* tenants.keys.revoke(TenantId.make("acme"), revoked.info.id)
        const cases: Record<string, Record<string, string>> = {
          none: {},
          emptyKey: { "x-api-key": "" },
          hugeKey: { "x-api-key": "k".repeat(16 * 1024) },
          randomKey: { "x-api-key": "random-key-0123456789abcdef" },
          generatedShape: { "x-api-key": `ouro_0123456789ab_${"A".repeat(43)}` },
          revokedKey: { "x-api-key": revoked.key },
          expiredJwt: { authorization: `Bearer ${yield* sign({}, { exp: T - 3600 })}` },
          unknownTenantJwt: { authorization: `Bearer ${yield* sign({ tenant_id: "nobody" })}` },
          wrongSignature: {
            authorization: `Bearer ${yield* sign({}, { key: "another-secret-of-at-least-32-bytes" })}`
          },
          algNone: { authorization: `Bearer ${b64({ alg: "none" })}.${valid.split(".")[1]}.` },
          malformedJwt: { authorization: "Bearer not.a.token" },
          emptyBearer: { authorization: "Bearer " },
          hugeJwt: { authorization: `Bearer ${"a".repeat(12_000)}` },
          both: { "x-api-key": acmeKey, authorization: `Bearer ${valid}` }
        }
        let reference: unknown = undefined
        for (const [name, headers] of Object.entries(cases)) {
          const response = yield* call("GET", "/api/v1/whoami", headers)
          assert.strictEqual(response.status, 401, name)
          assert.strictEqual(response.headers["content-type"], "application/problem+json", name)
          assert.isDefined(response.headers["www-authenticate"], name)
          reference ??= response.body
          assert.deepStrictEqual(response.body, reference, name)
          // A public route does not care.
          assert.strictEqual((yield* call("GET", "/health/live", headers)).status, 200, name)
        }
        assert.strictEqual((reference as any).status, 401)
        assert.strictEqual((reference as any).title, "Unauthorized")
        // Nothing was cached for any of them.
        assert.strictEqual(yield* tenants.cacheSize, 0)
        // The valid ones pass.
        const byKey = yield* call("GET", "/api/v1/whoami", { "x-api-key": acmeKey })
        assert.strictEqual(byKey.status, 200)
        assert.strictEqual(byKey.body.tenant, "acme")
        const byJwt = yield* call("GET", "/api/v1/whoami", { authorization: `Bearer ${valid}` })
        assert.strictEqual(byJwt.status, 200)
        assert.deepStrictEqual(byJwt.body, { tenant: "acme", subject: "user-1", roles: ["writer"] })
      }).pipe(Effect.provide(served()), (test) => Effect.andThen(TestClock.setTime(T * 1000), test)),
    {
      timeout: 60_000
    }
  )

  it.effect("roles: the admin key is no tenant, a tenant key is no admin", () =>
    Effect.gen(function*() {
      const adminAsTenant = yield* call("GET", "/api/v1/whoami", { "x-api-key": adminKey })
      assert.strictEqual(adminAsTenant.status, 403)
      assert.strictEqual(adminAsTenant.body.detail, "the admin key cannot act as a tenant")
      assert.strictEqual((yield* call("GET", "/admin/ops", { "x-api-key": acmeKey })).status, 403)
      assert.strictEqual((yield* call("GET", "/admin/ops", {})).status, 401)
      assert.strictEqual((yield* call("GET", "/admin/ops", { "x-api-key": adminKey })).status, 200)
    }).pipe(Effect.provide(served())))

  it.effect("the rate limiter reads the principal: refused keys share their address's bucket, valid keys have their own", () =>
    Effect.gen(function*() {
      // The policy admits 4 requests per minute per API key, and per client address without one.
      for (let i = 0; i < 4; i++) {
        const response = yield* call("GET", "/api/v1/whoami", { "x-api-key": `random-key-${i}-0123456789abcdef` })
        assert.strictEqual(response.status, 401)
        assert.match(response.headers["ratelimit"] ?? "", /"per-key";r=\d+/)
      }
      // A fifth random key is no new budget: the address's bucket is empty.
      const fifth = yield* call("GET", "/api/v1/whoami", { "x-api-key": "random-key-5-0123456789abcdef" })
      assert.strictEqual(fifth.status, 429)
      assert.strictEqual((yield* call("GET", "/api/v1/whoami", {})).status, 429)
      // A valid key is limited on its own.
      const valid = yield* call("GET", "/api/v1/whoami", { "x-api-key": acmeKey })
      assert.strictEqual(valid.status, 200)
      assert.strictEqual(valid.headers["ratelimit"], "\"per-key\";r=3;t=15")
    }).pipe(Effect.provide(served(4))))

  it.effect("requests per day: the quota answers 429 with RateLimit fields, Retry-After and the quota's numbers", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* call("GET", "/api/v1/whoami", { "x-api-key": limitedKey })).status, 200)
      assert.strictEqual((yield* call("GET", "/api/v1/whoami", { "x-api-key": limitedKey })).status, 200)
      const limited = yield* call("GET", "/api/v1/whoami", { "x-api-key": limitedKey })
      assert.strictEqual(limited.status, 429)
      assert.strictEqual(limited.headers["content-type"], "application/problem+json")
      assert.strictEqual(limited.headers["retry-after"], "7200")
      assert.strictEqual(limited.headers["ratelimit-policy"], "\"requests-per-day\";q=2;w=86400")
      assert.strictEqual(limited.headers["ratelimit"], "\"requests-per-day\";r=0;t=7200")
      assert.strictEqual(limited.body.quota, "requestsPerDay")
      assert.strictEqual(limited.body.limit, 2)
      assert.strictEqual(limited.body.usage, 2)
      assert.strictEqual(limited.body.type, RateLimiterHttp.quotaExceededType)
      // Another tenant is not affected.
      assert.strictEqual((yield* call("GET", "/api/v1/whoami", { "x-api-key": acmeKey })).status, 200)
    }).pipe(
      Effect.provide(served()),
      (test) => Effect.andThen(TestClock.setTime(Date.UTC(2025, 0, 31, 22, 0, 0)), test)
    ))

  it.effect("hard quotas map to 403 problems naming quota, limit and usage", () =>
    Effect.gen(function*() {
      const error = new Quotas.QuotaExceeded({ tenantId: "acme", quota: "documents", limit: 5, usage: 5, requested: 1 })
      const problem = yield* Effect.flip(QuotasHttp.toProblem(error))
      assert.strictEqual(problem._tag, "QuotaExhausted")
      assert.deepStrictEqual(
        { quota: problem.quota, limit: problem.limit, usage: problem.usage },
        { quota: "documents", limit: 5, usage: 5 }
      )
      const rate = yield* Effect.flip(
        QuotasHttp.toProblem(new Quotas.QuotaExceeded({ ...error, quota: "requestsPerDay", retryAfter: 60 }))
      )
      assert.strictEqual(rate._tag, "RequestQuotaExceeded")
    }))

  it.effect(
    "admin API: tenants, keys shown once, rotation, revocation, usage as JSON and CSV",
    () =>
      Effect.gen(function*() {
        const admin = { "x-api-key": adminKey }
        const created = yield* call("POST", "/admin/tenants", admin, { id: "globex", name: "Globex", tier: "free" })
        assert.strictEqual(created.status, 201)
        assert.strictEqual(created.body.id, "globex")
        assert.strictEqual(created.body.tier, "free")
        assert.strictEqual((yield* call("POST", "/admin/tenants", admin, { id: "globex" })).status, 409)
        const invalid = yield* call("POST", "/admin/tenants", admin, { id: "Not Valid!" })
        assert.strictEqual(invalid.status, 400)
        const list = yield* call("GET", "/admin/tenants", admin)
        assert.deepStrictEqual(list.body.map((t: any) => t.id), ["acme", "globex", "limited"])
        const patched = yield* call("PATCH", "/admin/tenants/globex", admin, {
          tier: "enterprise",
          model: "llama3.2:3b"
        })
        assert.strictEqual(patched.body.tier, "enterprise")
        assert.strictEqual(patched.body.model, "llama3.2:3b")

        const issued = yield* call("POST", "/admin/tenants/globex/keys", admin, { name: "ci", roles: ["tenant-admin"] })
        assert.strictEqual(issued.status, 201)
        assert.strictEqual(issued.headers["cache-control"], "no-store")
        const key: string = issued.body.key
        assert.match(key, /^ouro_[0-9a-f]{12}_/)
        const keyHeaders = { "x-api-key": key }
        assert.strictEqual((yield* call("GET", "/api/v1/whoami", keyHeaders)).body.tenant, "globex")
        const keys = yield* call("GET", "/admin/tenants/globex/keys", admin)
        assert.strictEqual(keys.status, 200)
        assert.deepStrictEqual(keys.body.map((k: any) => k.id), [issued.body.info.id])
        assert.notInclude(keys.text, key.slice(18))
        // The key admin of globex manages globex only.
        assert.strictEqual((yield* call("GET", "/admin/tenants/globex", keyHeaders)).status, 200)
        assert.strictEqual((yield* call("GET", "/admin/tenants/acme/keys", keyHeaders)).status, 404)
        assert.strictEqual((yield* call("GET", "/admin/tenants/acme", keyHeaders)).status, 404)
        assert.strictEqual((yield* call("GET", "/admin/tenants", keyHeaders)).status, 403)
        assert.strictEqual(
          (yield* call("PATCH", "/admin/tenants/globex", keyHeaders, { tier: "enterprise" })).status,
          403
        )
        assert.strictEqual((yield* call("DELETE", "/admin/tenants/globex", keyHeaders)).status, 403)
        assert.strictEqual((yield* call("GET", "/admin/ops", keyHeaders)).status, 403)
        // A writer key is no admin of anything.
        assert.strictEqual((yield* call("GET", "/admin/tenants/acme/keys", { "x-api-key": acmeKey })).status, 403)
        // An admin role cannot be given to a key.
        assert.strictEqual(
          (yield* call("POST", "/admin/tenants/globex/keys", keyHeaders, { roles: ["admin"] })).status,
          400
        )

        const rotated = yield* call("POST", `/admin/tenants/globex/keys/${issued.body.info.id}/rotate`, keyHeaders, {
          gracePeriodSeconds: 0
        })
        assert.strictEqual(rotated.status, 201)
        assert.strictEqual(rotated.body.previous.id, issued.body.info.id)
        assert.strictEqual((yield* call("GET", "/api/v1/whoami", keyHeaders)).status, 401)
        const next = { "x-api-key": rotated.body.key as string }
        assert.strictEqual((yield* call("GET", "/api/v1/whoami", next)).status, 200)
        const configured = (yield* call("GET", "/admin/tenants/acme/keys", admin)).body[0].id
        assert.strictEqual((yield* call("DELETE", `/admin/tenants/acme/keys/${configured}`, admin)).status, 409)
        assert.strictEqual((yield* call("DELETE", "/admin/tenants/globex/keys/000000000000", admin)).status, 404)
        // PostgreSQL stores no NUL character (U+0000): key ids and names with one are refused up front.
        const nul: ReadonlyArray<readonly ["POST" | "PATCH" | "DELETE", string, unknown]> = [
          ["DELETE", "/admin/tenants/globex/keys/a%00b", undefined],
          ["POST", "/admin/tenants/globex/keys/a%00b/rotate", {}],
          ["POST", "/admin/tenants/globex/keys", { name: "a\u0000" }],
          ["PATCH", "/admin/tenants/globex", { name: "\u0000" }],
          ["POST", "/admin/tenants", { id: "nul", name: "n\u0000" }]
        ]
        for (const [method, path, body] of nul) {
          const reply = yield* call(method, path, admin, body)
          assert.deepStrictEqual(
            [reply.status, reply.body.issues?.[0]?.message],
            [400, "text may not contain the NUL character (U+0000)"],
            `${method} ${path}`
          )
        }
        const revoked = yield* call("DELETE", `/admin/tenants/globex/keys/${rotated.body.info.id}`, admin)
        assert.strictEqual(revoked.body.status, "revoked")
        assert.strictEqual((yield* call("GET", "/api/v1/whoami", next)).status, 401)
        // A revoked key cannot be rotated: a 422 that says to create a new one.
        const dead = yield* call("POST", `/admin/tenants/globex/keys/${rotated.body.info.id}/rotate`, admin, {})
        assert.strictEqual(dead.status, 422)
        assert.include(dead.body.detail, "create a new key")

        // Usage: every authenticated request of acme so far was metered (requests of this test's server only).
        for (let i = 0; i < 3; i++) yield* call("GET", "/api/v1/whoami", { "x-api-key": acmeKey })
        const report = yield* call("GET", "/admin/tenants/acme/usage?from=1970-01-01&to=1970-01-02", admin)
        assert.strictEqual(report.status, 200)
        assert.strictEqual(report.body.days.length, 2)
        assert.strictEqual(report.body.days[0].requests, 4)
        assert.strictEqual(report.body.totals.requests, 4)
        const csv = yield* call("GET", "/admin/tenants/acme/usage?from=1970-01-01&to=1970-01-02", {
          ...admin,
          accept: "text/csv"
        })
        assert.strictEqual(csv.status, 200)
        assert.match(csv.headers["content-type"] ?? "", /^text\/csv/)
        assert.strictEqual(
          csv.text,
          "day,requests,embedded_characters,llm_tokens,stored_bytes\r\n1970-01-01,4,0,0,0\r\n1970-01-02,0,0,0,0\r\n"
        )
        const csvByQuery = yield* call(
          "GET",
          "/admin/tenants/acme/usage?from=1970-01-01&to=1970-01-01&format=csv",
          admin
        )
        assert.strictEqual(csvByQuery.text.split("\r\n")[1], "1970-01-01,4,0,0,0")
        assert.strictEqual(
          (yield* call("GET", "/admin/tenants/acme/usage?from=1970-02-01&to=1970-01-01", admin)).status,
          400
        )
        assert.strictEqual((yield* call("GET", "/admin/tenants/nobody/usage", admin)).status, 404)

        const deleted = yield* call("DELETE", "/admin/tenants/globex", admin)
        assert.strictEqual(deleted.status, 200)
        assert.strictEqual(deleted.body.tenant.id, "globex")
        assert.strictEqual((yield* call("GET", "/admin/tenants/globex", admin)).status, 404)
      }).pipe(Effect.provide(served())),
    { timeout: 60_000 }
  )
})

describe("TenancyHttp without the global middleware", () => {
  // An application that installs only the security middlewares still authenticates (once, in the middleware).
  const Minimal = HttpRouter.serve(
    HttpApiBuilder.layer(Api).pipe(
      Layer.provide([TenantLive, OpsLive, TenantsHttp.layer(Api)]),
      Layer.provide(TenancyHttp.layerSecurity),
      Layer.provide(ProblemHttp.layer),
      Layer.provideMerge(services)
    ),
    { disableLogger: true, disableListenLog: true }
  ).pipe(Layer.provideMerge(NodeHttpServer.layerTest))

  it.effect("the security middlewares resolve the credentials themselves", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* call("GET", "/api/v1/whoami", { "x-api-key": acmeKey })).body.tenant, "acme")
      assert.strictEqual((yield* call("GET", "/api/v1/whoami", { "x-api-key": "nope-nope-nope-nope" })).status, 401)
      assert.strictEqual((yield* call("GET", "/admin/ops", { "x-api-key": adminKey })).status, 200)
    }).pipe(Effect.provide(Minimal)))
})

describe("TenantsHttp OpenAPI", () => {
  it("declares the security schemes, the admin paths, problems and the CSV variant", () => {
    const spec = OpenApi.fromApi(Api) as any
    const schemes = spec.components.securitySchemes
    assert.deepStrictEqual(schemes.apiKey, { type: "apiKey", name: "X-API-Key", in: "header" })
    assert.strictEqual(schemes.bearer.scheme.toLowerCase(), "bearer")
    for (
      const path of [
        "/admin/tenants",
        "/admin/tenants/{id}",
        "/admin/tenants/{id}/keys",
        "/admin/tenants/{id}/keys/{keyId}/rotate",
        "/admin/tenants/{id}/keys/{keyId}",
        "/admin/tenants/{id}/usage"
      ]
    ) {
      assert.isDefined(spec.paths[path], path)
    }
    const usage = spec.paths["/admin/tenants/{id}/usage"].get
    assert.isDefined(usage.responses["200"].content["text/csv"])
    assert.isDefined(usage.responses["200"].content["application/json"])
    assert.isDefined(usage.responses["401"])
    assert.isDefined(usage.responses["403"])
    assert.deepStrictEqual(usage.security, [{ apiKey: [] }, { bearer: [] }])
  })
})

describe("TenancyHttp when the tenant store fails", () => {
  // A store whose key lookups die (the database is down).
  const Broken = Layer.effect(
    TenantStore.TenantStore,
    Effect.map(
      Effect.service(TenantStore.TenantStore),
      (store) => TenantStore.TenantStore.of({ ...store, findKey: () => Effect.die(new Error("connection refused")) })
    )
  ).pipe(Layer.provide(Memory.layer))

  const App = Layer.mergeAll(HttpApiBuilder.layer(Api), Health).pipe(
    Layer.provide([TenantLive, OpsLive, TenantsHttp.layer(Api)]),
    Layer.provide(TenancyHttp.layerSecurity),
    Layer.provide(TenancyHttp.layer.pipe(Layer.provide(ProblemHttp.layer))),
    Layer.provideMerge(
      Layer.mergeAll(
        Layer.effect(
          Tenants.Tenants,
          Tenants.make({ bootstrap: { ...TenantConfig.empty, tenants: [{ id: TenantId.make("acme") }] } })
        ),
        Usage.layer()
      ).pipe(Layer.provideMerge(Layer.mergeAll(Broken, Jwt.layerDisabled, Usage.layerMemoryStore)))
    )
  )
  const Served = HttpRouter.serve(App, { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provideMerge(NodeHttpServer.layerTest)
  )

  it.effect("protected routes answer 503, public routes keep working", () =>
    Effect.gen(function*() {
      const key = { "x-api-key": `ouro_0123456789ab_${"A".repeat(43)}` }
      const refused = yield* call("GET", "/api/v1/whoami", key)
      assert.strictEqual(refused.status, 503)
      assert.strictEqual(refused.headers["retry-after"], "1")
      assert.strictEqual((yield* call("GET", "/health/live", key)).status, 200)
    }).pipe(Effect.provide(Served)))
})
