import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer } from "effect"
import { HttpClient, type HttpClientResponse, HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import * as ConcurrencyLimiter from "../src/ConcurrencyLimiter.js"
import * as ConcurrencyLimiterHttp from "../src/ConcurrencyLimiterHttp.js"
import * as Http from "../src/internal/http.js"
import * as LoadShedder from "../src/LoadShedder.js"
import * as LoadShedderHttp from "../src/LoadShedderHttp.js"
import * as RateLimiter from "../src/RateLimiter.js"
import * as Memory from "../src/RateLimiter/Memory.js"
import * as RateLimiterHttp from "../src/RateLimiterHttp.js"
import { RateLimitStoreError } from "../src/RateLimiterStore.js"

const routes = (gate?: Deferred.Deferred<void>) =>
  Layer.mergeAll(
    HttpRouter.add("GET", "/api/v1/things", HttpServerResponse.text("ok")),
    HttpRouter.add(
      "GET",
      "/api/v1/slow",
      Effect.as(gate === undefined ? Effect.void : Deferred.await(gate), HttpServerResponse.text("slow"))
    ),
    HttpRouter.add("GET", "/api/v1/broken", Effect.die("boom")),
    HttpRouter.add("GET", "/health/live", HttpServerResponse.text("live")),
    HttpRouter.add("GET", "/admin/flags", HttpServerResponse.text("admin")),
    HttpRouter.add("GET", "/metrics", HttpServerResponse.text("# metrics"))
  )

// The middleware is given to the server, as `HttpRouter.serve(app, { middleware })` does: responses are sent before
// it returns, so its headers must go through pre-response handlers.
const serve = (middleware: RateLimiterHttp.Middleware, gate?: Deferred.Deferred<void>) =>
  Effect.flatMap(HttpRouter.toHttpEffect(routes(gate)), (app) => HttpServer.serveEffect(app, middleware))

// And wrapped around the app directly.
const serveWrapped = (middleware: RateLimiterHttp.Middleware) =>
  Effect.flatMap(HttpRouter.toHttpEffect(routes()), (app) => HttpServer.serveEffect(middleware(app)))

const get = (path: string, headers: Record<string, string> = {}) =>
  HttpClient.HttpClient.use((client) => client.get(path, { headers }))

const header = (response: HttpClientResponse.HttpClientResponse, name: string) => response.headers[name]

const limiterMiddleware = (policies: ReadonlyArray<RateLimiter.Policy>, options: RateLimiterHttp.Options = {}) =>
  RateLimiterHttp.make(options).pipe(
    Effect.provideService(RateLimiter.RateLimiter, RateLimiter.makeUnsafe(Memory.makeUnsafe(), { policies }))
  )

describe("RateLimiterHttp", () => {
  it.effect("limits /api per API key with IETF headers and a quota-exceeded problem", () =>
    Effect.gen(function*() {
      yield* serve(yield* limiterMiddleware([RateLimiter.defaultPolicy(3, 60_000)]))
      const statuses: Array<number> = []
      for (let i = 0; i < 3; i++) {
        const ok = yield* get("/api/v1/things", { "x-api-key": "alpha" })
        statuses.push(ok.status)
        assert.strictEqual(header(ok, "ratelimit-policy"), `"default";q=3;w=60`)
        assert.strictEqual(header(ok, "ratelimit"), `"default";r=${2 - i};t=${20 * (i + 1)}`)
      }
      assert.deepStrictEqual(statuses, [200, 200, 200])
      const limited = yield* get("/api/v1/things", { "x-api-key": "alpha" })
      assert.strictEqual(limited.status, 429)
      assert.strictEqual(header(limited, "retry-after"), "20")
      assert.strictEqual(header(limited, "ratelimit"), `"default";r=0;t=20`)
      assert.strictEqual(header(limited, "ratelimit-policy"), `"default";q=3;w=60`)
      assert.include(header(limited, "content-type") ?? "", "application/problem+json")
      const body = (yield* limited.json) as Record<string, unknown>
      assert.strictEqual(body.type, RateLimiterHttp.quotaExceededType)
      assert.strictEqual(body.status, 429)
      assert.deepStrictEqual(body["violated-policies"], ["default"])
      assert.isString(body.title)
      assert.isString(body.detail)
      // Another API key has its own quota.
      assert.strictEqual((yield* get("/api/v1/things", { "x-api-key": "beta" })).status, 200)
    }).pipe(Effect.provide(NodeHttpServer.layerTest)))

  it.effect("never limits health probes and /metrics, and adds headers to error responses", () =>
    Effect.gen(function*() {
      yield* serve(
        yield* limiterMiddleware([
          RateLimiter.Policy.make({ name: "all", limit: 1, window: 60_000, scope: ["global"] })
        ])
      )
      for (let i = 0; i < 5; i++) {
        const live = yield* get("/health/live")
        assert.strictEqual(live.status, 200)
        assert.isUndefined(header(live, "ratelimit"))
        assert.strictEqual((yield* get("/metrics")).status, 200)
      }
      const broken = yield* get("/api/v1/broken")
      assert.strictEqual(broken.status, 500)
      assert.strictEqual(header(broken, "ratelimit"), `"all";r=0;t=60`)
      const notFound = yield* get("/api/v1/nowhere")
      assert.strictEqual(notFound.status, 429)
    }).pipe(Effect.provide(NodeHttpServer.layerTest)))

  it.effect("works wrapped around an app too", () =>
    Effect.gen(function*() {
      yield* serveWrapped(yield* limiterMiddleware([RateLimiter.defaultPolicy(1, 60_000)]))
      const ok = yield* get("/api/v1/things")
      assert.strictEqual(ok.status, 200)
      assert.strictEqual(header(ok, "ratelimit"), `"default";r=0;t=60`)
      const broken = yield* get("/api/v1/broken")
      assert.strictEqual(broken.status, 429)
    }).pipe(Effect.provide(NodeHttpServer.layerTest)))

  it.effect("reads X-Forwarded-For only from trusted proxies", () =>
    Effect.gen(function*() {
      const policy = RateLimiter.Policy.make({ name: "ip", limit: 1, window: 60_000, scope: ["client"] })
      yield* serve(yield* limiterMiddleware([policy], { trustedProxies: ["loopback"] }))
      assert.strictEqual((yield* get("/api/v1/things", { "x-forwarded-for": "203.0.113.1" })).status, 200)
      assert.strictEqual((yield* get("/api/v1/things", { "x-forwarded-for": "203.0.113.2" })).status, 200)
      assert.strictEqual((yield* get("/api/v1/things", { "x-forwarded-for": "203.0.113.1" })).status, 429)
      // The right-most untrusted hop counts: a client cannot pick its address by prepending one.
      assert.strictEqual(
        (yield* get("/api/v1/things", { "x-forwarded-for": "198.51.100.7, 203.0.113.2" })).status,
        429
      )
    }).pipe(Effect.provide(NodeHttpServer.layerTest)))

  it.effect("ignores X-Forwarded-For from untrusted peers", () =>
    Effect.gen(function*() {
      const policy = RateLimiter.Policy.make({ name: "ip", limit: 1, window: 60_000, scope: ["client"] })
      yield* serve(yield* limiterMiddleware([policy]))
      assert.strictEqual((yield* get("/api/v1/things", { "x-forwarded-for": "203.0.113.1" })).status, 200)
      assert.strictEqual((yield* get("/api/v1/things", { "x-forwarded-for": "203.0.113.2" })).status, 429)
    }).pipe(Effect.provide(NodeHttpServer.layerTest)))

  it("trusted proxies: addresses and CIDRs, IPv4 and IPv6, and the named ranges", () => {
    const trusted = Http.trustMatcher(["10.1.2.3/8", "2001:db8::/32", "192.0.2.7", "[2001:db8:ffff::1]", "private"])
    for (const address of ["10.200.0.1", "2001:db8:1::5", "192.0.2.7", "2001:db8:ffff::1", "172.16.4.4", "fd00::1"]) {
      assert.isTrue(trusted(address), address)
    }
    for (const address of ["11.0.0.1", "2001:db9::1", "192.0.2.8", "127.0.0.1", "::1", "unknown", ""]) {
      assert.isFalse(trusted(address), address)
    }
    const loopback = Http.trustMatcher(["loopback"])
    assert.isTrue(loopback("127.0.0.1") && loopback("127.255.0.9") && loopback("::1"))
    assert.isFalse(loopback("128.0.0.1"))
    assert.isTrue(Http.trustMatcher(["*"])("203.0.113.9"))
    assert.isFalse(Http.trustMatcher([])("127.0.0.1"))
    // An entry that is no address matches only as written (a peer Node could not name).
    assert.isTrue(Http.trustMatcher(["unknown"])("unknown"))
  })

  it.effect("steps aside when no policy is configured", () =>
    Effect.gen(function*() {
      let resolved = 0
      yield* serve(
        yield* limiterMiddleware([], {
          resolve: () => {
            resolved++
            return { client: "127.0.0.1", endpoint: "GET /api/v1/things" }
          }
        })
      )
      for (let i = 0; i < 3; i++) {
        const ok = yield* get("/api/v1/things", { "x-api-key": "alpha" })
        assert.strictEqual(ok.status, 200)
        assert.isUndefined(header(ok, "ratelimit"))
        assert.isUndefined(header(ok, "ratelimit-policy"))
      }
      assert.strictEqual(resolved, 0)
    }).pipe(Effect.provide(NodeHttpServer.layerTest)))

  it.effect("fails closed with 503 when the store is down", () =>
    Effect.gen(function*() {
      const down = RateLimiter.withFallback({
        ...Memory.makeUnsafe(),
        consume: () => Effect.fail(new RateLimitStoreError({ message: "down" }))
      }, { mode: "closed" })
      const middleware = yield* RateLimiterHttp.make().pipe(
        Effect.provideService(
          RateLimiter.RateLimiter,
          RateLimiter.makeUnsafe(down, { policies: [RateLimiter.defaultPolicy()] })
        )
      )
      yield* serve(middleware)
      const response = yield* get("/api/v1/things")
      assert.strictEqual(response.status, 503)
      assert.strictEqual(header(response, "retry-after"), "1")
      assert.strictEqual((yield* get("/health/live")).status, 200)
    }).pipe(Effect.provide(NodeHttpServer.layerTest)))
})

describe("as global HttpRouter middlewares (layer)", () => {
  it.effect("every route and the router's 404 are limited, with the fields", () =>
    Effect.gen(function*() {
      const ok = yield* get("/api/v1/things", { "x-api-key": "alpha" })
      assert.strictEqual(ok.status, 200)
      assert.strictEqual(header(ok, "ratelimit-policy"), `"default";q=2;w=60`)
      assert.strictEqual(header(ok, "ratelimit"), `"default";r=1;t=30`)
      const missing = yield* get("/api/v1/nowhere", { "x-api-key": "alpha" })
      assert.strictEqual(missing.status, 404)
      assert.strictEqual(header(missing, "ratelimit"), `"default";r=0;t=60`)
      const limited = yield* get("/api/v1/things", { "x-api-key": "alpha" })
      assert.strictEqual(limited.status, 429)
      assert.strictEqual(header(limited, "retry-after"), "30")
      assert.strictEqual((yield* get("/health/live")).status, 200)
    }).pipe(Effect.provide(
      HttpRouter.serve(
        Layer.mergeAll(
          routes(),
          RateLimiterHttp.layer(),
          ConcurrencyLimiterHttp.layer(),
          LoadShedderHttp.layer()
        ),
        { disableLogger: true, disableListenLog: true }
      ).pipe(
        Layer.provideMerge(NodeHttpServer.layerTest),
        Layer.provide(RateLimiter.layerMemory({ policies: [RateLimiter.defaultPolicy(2, 60_000)] })),
        Layer.provide(ConcurrencyLimiter.layer({ limit: 10 })),
        Layer.provide(LoadShedder.layer({ maxInFlight: 10 }))
      )
    )))
})

describe("ConcurrencyLimiterHttp", () => {
  it.live("limits requests in flight per key", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const limiter = yield* ConcurrencyLimiter.make({ limit: 1 })
      const middleware = yield* ConcurrencyLimiterHttp.make({ key: (request) => request.headers["x-api-key"] ?? "-" })
        .pipe(
          Effect.provideService(ConcurrencyLimiter.ConcurrencyLimiter, limiter)
        )
      yield* serve(middleware, gate)
      const slow = yield* Effect.forkChild(get("/api/v1/slow", { "x-api-key": "a" }))
      while ((yield* limiter.inFlight("a")) < 1) yield* Effect.sleep("5 millis")
      const second = yield* get("/api/v1/things", { "x-api-key": "a" })
      assert.strictEqual(second.status, 429)
      assert.strictEqual(header(second, "retry-after"), "1")
      assert.deepStrictEqual(((yield* second.json) as Record<string, unknown>)["violated-policies"], ["concurrency"])
      assert.strictEqual((yield* get("/api/v1/things", { "x-api-key": "b" })).status, 200)
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual((yield* Fiber.join(slow)).status, 200)
      assert.strictEqual((yield* get("/api/v1/things", { "x-api-key": "a" })).status, 200)
    }).pipe(Effect.provide(NodeHttpServer.layerTest)))
})

describe("LoadShedderHttp", () => {
  it.live("sheds ordinary requests when saturated and keeps reserved capacity for critical ones", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const shedder = yield* LoadShedder.make({ maxInFlight: 2, reserved: 0.5 })
      const middleware = yield* LoadShedderHttp.make().pipe(Effect.provideService(LoadShedder.LoadShedder, shedder))
      yield* serve(middleware, gate)
      const slow = yield* Effect.forkChild(get("/api/v1/slow"))
      while ((yield* shedder.inFlight) < 1) yield* Effect.sleep("5 millis")
      assert.strictEqual(yield* shedder.status, "warn")
      const shed = yield* get("/api/v1/things")
      assert.strictEqual(shed.status, 503)
      assert.strictEqual(header(shed, "retry-after"), "1")
      assert.strictEqual(
        ((yield* shed.json) as Record<string, unknown>).type,
        LoadShedderHttp.temporaryReducedCapacityType
      )
      assert.strictEqual((yield* get("/health/live")).status, 200)
      assert.strictEqual((yield* get("/admin/flags")).status, 200)
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual((yield* Fiber.join(slow)).status, 200)
      assert.strictEqual((yield* get("/api/v1/things")).status, 200)
      assert.strictEqual(yield* shedder.inFlight, 0)
      assert.strictEqual(yield* shedder.status, "pass")
    }).pipe(Effect.provide(NodeHttpServer.layerTest)))
})

describe("limiters and interruption", () => {
  it.live("a request cut off by its client gives back its concurrency permit and its load-shedder slot", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const limiter = yield* ConcurrencyLimiter.make({ limit: 1 })
      const shedder = yield* LoadShedder.make({ maxInFlight: 10, reserved: 0.1 })
      const concurrency = yield* ConcurrencyLimiterHttp.make({ key: (request) => request.headers["x-api-key"] ?? "-" })
        .pipe(Effect.provideService(ConcurrencyLimiter.ConcurrencyLimiter, limiter))
      const shed = yield* LoadShedderHttp.make().pipe(Effect.provideService(LoadShedder.LoadShedder, shedder))
      yield* serve((app) => shed(concurrency(app)), gate)
      const slow = yield* Effect.forkChild(get("/api/v1/slow", { "x-api-key": "a" }))
      while ((yield* limiter.inFlight("a")) < 1) yield* Effect.sleep("5 millis")
      assert.strictEqual(yield* shedder.inFlight, 1)
      // The client goes away: the server interrupts the request, and both limiters give their share back.
      yield* Fiber.interrupt(slow)
      for (let i = 0; i < 200 && ((yield* limiter.inFlight("a")) > 0 || (yield* shedder.inFlight) > 0); i++) {
        yield* Effect.sleep("5 millis")
      }
      assert.strictEqual(yield* limiter.inFlight("a"), 0)
      assert.strictEqual(yield* shedder.inFlight, 0)
      assert.strictEqual((yield* get("/api/v1/things", { "x-api-key": "a" })).status, 200)
    }).pipe(Effect.provide(NodeHttpServer.layerTest)))
})
