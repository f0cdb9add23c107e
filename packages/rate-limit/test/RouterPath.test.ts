/**
 * The limiter sees the path the router routes (issue "Must fix" 1): every spelling of a path that `HttpRouter` accepts
 * for a route gives the limiter the same endpoint, so a policy by path cannot be escaped by spelling it differently.
 * A property over `FindMyWay` (the router's matcher, with the router's default configuration and stricter ones), then
 * an `HttpRouter`-served app behind the limiter, over raw HTTP (a client library would normalize the paths), with the
 * memory store and with Redis.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Services } from "@ouroboros/testkit"
import { Effect, Layer } from "effect"
import { FindMyWay, HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import * as fc from "fast-check"
import { Redis } from "ioredis"
import { randomUUID } from "node:crypto"
import * as Http from "node:http"
import { afterAll } from "vitest"
import * as RateLimiter from "../src/RateLimiter.js"
import * as RateLimiterHttp from "../src/RateLimiterHttp.js"

// The server's route shapes: static, one trailing parameter, parameters inside, a wildcard.
const templates = [
  "/api/v1/whoami",
  "/api/v1/ask",
  "/api/v1/documents",
  "/api/v1/documents/:id",
  "/api/v1/pipelines/:id",
  "/api/versions/:version",
  "/api/v1/openapi.json",
  "/admin/backups/:id/verify",
  "/admin/circuit-breakers/:name/force-open",
  "/admin/flags",
  "/docs",
  "/openapi.json",
  "/health/live",
  "/metrics",
  "/console/*"
] as const

const concrete = (template: string, value: string) =>
  template.replace(/:[a-z]+/g, value).replace("*", `assets/${value}.js`)

const routerOf = (config: Partial<FindMyWay.RouterConfig>) => {
  const router = FindMyWay.make<string>(config)
  for (const template of templates) router.on("GET", template, template)
  return router
}

// One way of spelling a character of the path: as it is (most often), in the other case, or percent-encoded (either
// hex case).
const spellChar = (char: string, how: number): string => {
  switch (how - 12) {
    case 1:
      return char === char.toLowerCase() ? char.toUpperCase() : char.toLowerCase()
    case 2:
    case 3: {
      if (char === "/") return char
      const hex = char.charCodeAt(0).toString(16).padStart(2, "0")
      return `%${how === 14 ? hex : hex.toUpperCase()}`
    }
    default:
      return char
  }
}

interface Spelling {
  readonly chars: ReadonlyArray<number>
  readonly slashes: ReadonlyArray<number>
  readonly trailing: boolean
  readonly suffix: string
}

const spelling: fc.Arbitrary<Spelling> = fc.record({
  chars: fc.array(fc.integer({ min: 0, max: 15 }), { minLength: 64, maxLength: 64 }),
  slashes: fc.array(fc.constantFrom(1, 1, 1, 2, 3), { minLength: 16, maxLength: 16 }),
  trailing: fc.boolean(),
  suffix: fc.constantFrom("", "?a=1", ";jsessionid=x", "?", "#frag", ";", "?x=/api/", ";a=b?c=d")
})

const spell = (path: string, s: Spelling): string => {
  let out = ""
  let slash = 0
  for (let i = 0; i < path.length; i++) {
    const char = path[i]!
    out += char === "/" ? "/".repeat(s.slashes[slash++ % s.slashes.length]!) : spellChar(char, s.chars[i % 64]!)
  }
  return out + (s.trailing ? "/" : "") + s.suffix
}

describe("routerPath", () => {
  it("normalizes as the router does", () => {
    const path = RateLimiterHttp.routerPath()
    assert.strictEqual(path("/api/v1/whoami"), "/api/v1/whoami")
    assert.strictEqual(path("/API/v1/whoami"), "/api/v1/whoami")
    assert.strictEqual(path("//api//v1/whoami/"), "/api/v1/whoami")
    assert.strictEqual(path("/%61pi/v1/%77hoami"), "/api/v1/whoami")
    assert.strictEqual(path("/api/v1/whoami;jsessionid=1?x=2"), "/api/v1/whoami")
    // Reserved characters stay encoded (the router matches them only inside a parameter), %25 stays %25.
    assert.strictEqual(path("/api%2Fv1/whoami"), "/api%2fv1/whoami")
    assert.strictEqual(path("/api/v1/documents/a%25b"), "/api/v1/documents/a%25b")
    // Dot segments are not resolved, as the router does not resolve them.
    assert.strictEqual(path("/api/./v1/whoami"), "/api/./v1/whoami")
    // A malformed escape: the router matches nothing; the path is kept undecoded.
    assert.strictEqual(path("/API/%E0%A4%A/x?y"), "/api/%e0%a4%a/x")
    // A stricter router: what it keeps apart, the path keeps apart.
    const strict = RateLimiterHttp.routerPath(FindMyWay.strictConfig)
    assert.strictEqual(strict("/API/v1/whoami;x"), "/API/v1/whoami;x")
  })

  for (
    const [name, config] of [
      ["the default configuration", {}],
      ["a case-sensitive router that keeps semicolons", { caseSensitive: true, useSemicolonDelimiter: false }],
      ["a router that keeps // and trailing slashes", { ignoreDuplicateSlashes: false, ignoreTrailingSlash: false }],
      ["a router that does not decode static text", { decodeStaticPath: false }]
    ] as const
  ) {
    it(`every spelling the router routes like the canonical path gives the same path (${name})`, () => {
      const router = routerOf(config)
      const path = RateLimiterHttp.routerPath(config)
      let routed = 0
      let tried = 0
      fc.assert(
        fc.property(
          fc.constantFrom(...templates),
          fc.stringMatching(/^[a-z0-9_-]{1,12}$/),
          spelling,
          (template, value, s) => {
            const canonical = concrete(template, value)
            const expected = router.find("GET", canonical)
            assert.isDefined(expected)
            const spelled = spell(canonical, s)
            tried++
            const found = router.find("GET", spelled)
            if (found === undefined || found.handler !== expected!.handler) return
            routed++
            // Parameter values are compared in the case the router would decode them to; the limiter lower-cases
            // them too when the router ignores case.
            const sameParams = Object.keys(expected!.params).every((k) =>
              config.caseSensitive === true
                ? found.params[k] === expected!.params[k]
                : found.params[k]?.toLowerCase() === expected!.params[k]?.toLowerCase()
            )
            if (!sameParams) return
            assert.strictEqual(path(spelled), path(canonical), `${spelled} → ${template}`)
          }
        ),
        { numRuns: 3000 }
      )
      // Not vacuous: a good share of the spellings reach the route.
      assert.isAbove(routed, tried / 20)
    })
  }

  it("whatever the router matches to a route, the limiter's pattern for that route matches too", () => {
    const router = routerOf({})
    const path = RateLimiterHttp.routerPath()
    const matchers = new Map(templates.map((t) => [t, RateLimiter.endpointMatcher(`GET ${t}`)] as const))
    const api = RateLimiter.endpointMatcher("/api/*")
    fc.assert(
      fc.property(
        fc.constantFrom(...templates),
        fc.stringMatching(/^[A-Za-z0-9%._~;-]{1,12}$/),
        spelling,
        (template, value, s) => {
          const spelled = spell(concrete(template, value), s)
          const found = router.find("GET", spelled)
          if (found === undefined) return
          const endpoint = `GET ${path(spelled)}`
          assert.isTrue(
            matchers.get(found.handler as (typeof templates)[number])!(endpoint),
            `${spelled} → ${endpoint}`
          )
          assert.strictEqual(api(endpoint), found.handler.startsWith("/api/"), `${spelled} → ${endpoint}`)
        }
      ),
      { numRuns: 3000 }
    )
  })
})

// ---------------------------------------------------------------------------------------------------------------------
// Served by HttpRouter, over raw HTTP
// ---------------------------------------------------------------------------------------------------------------------

const key = "key-alpha"

const routes = Layer.mergeAll(
  HttpRouter.add("GET", "/api/v1/whoami", HttpServerResponse.text("me")),
  HttpRouter.add("POST", "/api/v1/ask", HttpServerResponse.text("answer")),
  HttpRouter.add("GET", "/api/v1/documents/:id", HttpServerResponse.text("doc")),
  HttpRouter.add("GET", "/admin/flags", HttpServerResponse.text("flags")),
  HttpRouter.add("GET", "/docs", HttpServerResponse.text("docs")),
  HttpRouter.add("GET", "/openapi.json", HttpServerResponse.text("{}")),
  HttpRouter.add("GET", "/health/live", HttpServerResponse.text("live"))
)

interface Reply {
  readonly status: number
  readonly ratelimit: string | undefined
}

/** One request with the path sent exactly as written. */
const raw = (port: number, method: string, path: string, headers: Record<string, string> = {}) =>
  Effect.callback<Reply>((resume) => {
    const request = Http.request({ host: "127.0.0.1", port, method, path, headers, agent: false }, (response) => {
      response.resume()
      response.on("end", () =>
        resume(Effect.succeed({
          status: response.statusCode ?? 0,
          ratelimit: response.headers["ratelimit"] as string | undefined
        })))
    })
    request.on("error", (error) => resume(Effect.die(error)))
    request.end()
  })

const portOf = Effect.map(
  Effect.service(HttpServer.HttpServer),
  (server) => "port" in server.address ? server.address.port : 0
)

const serve = (limiter: Layer.Layer<RateLimiter.RateLimiter>) =>
  HttpRouter.serve(Layer.mergeAll(routes, RateLimiterHttp.layer()), { disableLogger: true, disableListenLog: true })
    .pipe(Layer.provide(limiter), Layer.provideMerge(NodeHttpServer.layerTest))

const policies = [
  RateLimiter.defaultPolicy(3, 3_600_000),
  RateLimiter.adminPolicy(3, 3_600_000),
  RateLimiter.docsPolicy(3, 3_600_000)
]

/** Spellings the router accepts for `GET /api/v1/whoami` (checked against the route below). */
const whoamiSpellings = [
  "/API/v1/whoami",
  "/Api/V1/WhoAmI",
  "//api/v1/whoami",
  "/api//v1///whoami",
  "/%61pi/v1/whoami",
  "/%41PI/v1/%77hoami",
  "/api/v1/whoami/",
  "/api/v1/whoami;jsessionid=1",
  "/api/v1/whoami/;x",
  "/api/v1/whoami?x=/health/live",
  "http://127.0.0.1/api/v1/whoami"
]

/** Spellings the router does not route (dot segments and encoded separators are not resolved): 404, no handler. */
const unrouted = ["/./api/v1/whoami", "/api/./v1/whoami", "/api/v1/x/../whoami", "/api%2Fv1/whoami"]

const bypassSuite = (name: string, limiter: () => Layer.Layer<RateLimiter.RateLimiter>) =>
  describe(`the limiter behind HttpRouter (${name})`, () => {
    it.effect("a key that used its budget is limited on every spelling of the path", () =>
      Effect.gen(function*() {
        const port = yield* portOf
        const auth = { "x-api-key": key }
        for (let i = 0; i < 3; i++) assert.strictEqual((yield* raw(port, "GET", "/api/v1/whoami", auth)).status, 200)
        for (const path of whoamiSpellings) {
          const reply = yield* raw(port, "GET", path, auth)
          assert.strictEqual(reply.status, 429, path)
          assert.match(reply.ratelimit ?? "", /"default";r=0/, path)
        }
        // HEAD is answered by the GET route: limited too, on the same budget.
        assert.strictEqual((yield* raw(port, "HEAD", "/API/v1/whoami", auth)).status, 429)
        // POST /%61pi/v1/ask: the same key's budget (the default policy counts every /api route together).
        assert.strictEqual((yield* raw(port, "POST", "/%61pi/v1/ask", auth)).status, 429)
        assert.strictEqual((yield* raw(port, "GET", "/API/V1/DOCUMENTS/Abc", auth)).status, 429)
        for (const path of unrouted) {
          assert.strictEqual((yield* raw(port, "GET", path, { "x-api-key": "key-gamma" })).status, 404, path)
        }
        // Another key has its own budget, whatever the spelling.
        const other = yield* raw(port, "GET", "//API/v1/whoami/", { "x-api-key": "key-beta" })
        assert.strictEqual(other.status, 200)
        assert.match(other.ratelimit ?? "", /"default";r=2/)
        // Health probes stay exempt, however spelled.
        for (let i = 0; i < 5; i++) {
          const live = yield* raw(port, "GET", "/HEALTH//live/")
          assert.strictEqual(live.status, 200)
          assert.isUndefined(live.ratelimit)
        }
      }).pipe(Effect.provide(serve(limiter()))))

    it.effect("/admin and the documents are limited per client address, however spelled and whatever the key", () =>
      Effect.gen(function*() {
        const port = yield* portOf
        const admin = ["/admin/flags", "/ADMIN/flags", "//admin/flags/"]
        const statuses: Array<number> = []
        for (let i = 0; i < admin.length; i++) {
          statuses.push((yield* raw(port, "GET", admin[i]!, { "x-api-key": `wrong-${i}` })).status)
        }
        statuses.push((yield* raw(port, "GET", "/%61dmin/flags", { "x-api-key": "another" })).status)
        assert.deepStrictEqual(statuses, [200, 200, 200, 429])
        const docs: Array<number> = []
        for (const path of ["/docs", "/DOCS/", "/openapi.json", "/Docs;x"]) {
          docs.push((yield* raw(port, "GET", path)).status)
        }
        assert.deepStrictEqual(docs, [200, 200, 200, 429])
      }).pipe(Effect.provide(serve(limiter()))))
  })

bypassSuite("memory", () => RateLimiter.layerMemory({ policies }))

const redisPrefix = `test:rl:path:${randomUUID()}:`

describe.runIf(await Services.redis())("Redis", () => {
  afterAll(async () => {
    const redis = new Redis(Services.redisUrl)
    const keys = await redis.keys(`${redisPrefix}*`)
    if (keys.length > 0) await redis.del(...keys)
    await redis.quit()
  })
  let n = 0
  bypassSuite(
    "Redis",
    () => Layer.orDie(RateLimiter.layerRedis({ policies, url: Services.redisUrl, prefix: `${redisPrefix}${n++}:` }))
  )
})
