/**
 * Negotiation reads a request target the way the router does (`internal/routerPath.ts`): over a table of spellings,
 * whether `FindMyWay` (the router's matcher) routes a target under `/api` agrees with `underPrefix`, the route it
 * finds is the prefix and the path `underPrefix` reads, and the URL negotiation rewrites a header-negotiated target to
 * is routed to the same route of the version — with the router's default configuration and with the strict one.
 */
import { assert, describe, it } from "@effect/vitest"
import { FindMyWay } from "effect/http"
import * as RouterPath from "../src/internal/routerPath.js"

const templates = [
  "/api/v1/whoami",
  "/api/v1/documents/:id",
  "/api/whoami",
  "/api/documents/:id",
  "/api/versions",
  "/api/versions/:version",
  "/api",
  "/apidocs",
  "/docs",
  "/health/live"
] as const

const spellings = [
  "/api/v1/whoami",
  "/API/v1/whoami",
  "/Api/V1/WhoAmI",
  "//api/v1/whoami",
  "/api//v1///whoami",
  "/%61pi/v1/whoami",
  "/%41PI/%76%31/whoami",
  "/api/v1/whoami/",
  "/api/v1/whoami?x=/api/",
  "/api/v1/whoami;a=b",
  "/api/v1/whoami#frag",
  "http://example.com/api/v1/whoami",
  "/api/v1/documents/Ab%20c",
  "/API//v1/documents/%2Fx",
  "/api/whoami",
  "/API/whoami",
  "//api//whoami",
  "/%61pi/whoami?q=1",
  "/api/documents/X%25Y",
  "/api/versions",
  "/API/Versions/v1",
  "/api",
  "/API/",
  "/api?x=1",
  "/apidocs",
  "/APIDOCS",
  "/api%2Fv1/whoami",
  "/ap%69/v1/whoami",
  "/api/v1/%zz",
  "/%61pi/v1/%zz",
  "/docs",
  "/health/live",
  "/health//live"
] as const

const configs: ReadonlyArray<readonly [string, Partial<FindMyWay.RouterConfig>]> = [
  ["default", {}],
  ["strict", FindMyWay.strictConfig],
  ["case-sensitive", { caseSensitive: true }]
]

const fold = (config: Partial<FindMyWay.RouterConfig>, text: string) =>
  config.caseSensitive === true ? text : text.toLowerCase()

describe("underPrefix agrees with the router", () => {
  for (const [name, config] of configs) {
    it(`${name} configuration`, () => {
      const router = FindMyWay.make<string>(config)
      for (const template of templates) router.on("GET", template, template)
      const read = RouterPath.underPrefix("/api", config)
      let underApi = 0
      for (const spelling of spellings) {
        const route = router.find("GET", spelling)?.handler
        const target = read(spelling)
        if (route === "/api" || route?.startsWith("/api/")) {
          underApi++
          assert.isDefined(target, `${spelling} is routed to ${route}`)
          if (!route.includes(":")) assert.strictEqual(fold(config, "/api" + target!.path), route, spelling)
          // The rewrite of a header-negotiated target reaches the same route of the version.
          if (/^\/api\/(whoami|documents)/.test(route)) {
            const rewritten = router.find("GET", `/api/v1${target!.restFrom(0)}`)
            assert.strictEqual(rewritten?.handler, route.replace("/api/", "/api/v1/"), spelling)
            // Parameters are decoded by the router once, from the raw text: the same value as before the rewrite.
            assert.deepStrictEqual(rewritten?.params, router.find("GET", spelling)?.params, spelling)
          }
        } else if (route !== undefined) {
          assert.isUndefined(target, `${spelling} is routed to ${route}`)
        }
      }
      // The table exercises the spellings: most of them are served under the prefix by the default router.
      if (name === "default") assert.isAtLeast(underApi, 20)
    })
  }

  it("a target with nothing to decode or merge (read without splitting it) reads as its `//` spelling does", () => {
    const read = RouterPath.underPrefix("/api")
    const plain = [
      "/api",
      "/api/",
      "/api?x=1",
      "/api;a",
      "/API/v1/Who",
      "/api/v1/documents/a/",
      "/api/documents/a?x=/y",
      "/api/v1;a=b"
    ]
    for (const url of plain) {
      const merged = url.replace(/^\/api/i, (prefix) => `/${prefix}/`)
      const a = read(url)
      const b = read(merged)
      assert.isDefined(a, url)
      assert.deepStrictEqual(
        [a!.path, a!.segment, a!.restFrom(0).replace(/\/$/, ""), a!.restFrom(1).replace(/\/$/, "")],
        [b!.path, b!.segment, b!.restFrom(0).replace(/\/$/, ""), b!.restFrom(1).replace(/\/$/, "")],
        `${url} / ${merged}`
      )
    }
  })

  it("the segment under the prefix keeps its case (`/api/V1` is a malformed version, not v1)", () => {
    const read = RouterPath.underPrefix("/api")
    assert.strictEqual(read("/API/V1/whoami")?.segment, "V1")
    assert.strictEqual(read("//api/%761/whoami")?.segment, "v1")
    assert.strictEqual(read("/%61pi//v2/documents/a?x=1")?.restFrom(1), "/documents/a?x=1")
    assert.isUndefined(read("/apidocs"))
  })
})
