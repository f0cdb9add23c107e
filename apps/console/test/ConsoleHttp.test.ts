/**
 * `ConsoleHttp` over real HTTP: the build served compressed and cached as negotiated, deep links answered with the
 * application, unknown assets refused, the security headers on every answer, another mount path, a missing build —
 * and the JavaScript budget of the build.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Config, ConfigProvider, Effect, Layer, Option, References, Result } from "effect"
import { HttpClient, HttpClientRequest, HttpRouter } from "effect/http"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { gunzipSync } from "node:zlib"
import { beforeAll } from "vitest"
import * as ConsoleHttp from "../src/ConsoleHttp.js"
import { distDir, ensureBuilt } from "./harness.js"

beforeAll(() => ensureBuilt(), 120_000)

const readManifest = (): ConsoleHttp.Manifest =>
  JSON.parse(Fs.readFileSync(Path.join(distDir, "manifest.json"), "utf8"))

const quiet = Layer.succeed(References.MinimumLogLevel, "None")

const serve = (options: ConsoleHttp.Options) =>
  HttpRouter.serve(ConsoleHttp.layer(options), { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provideMerge(NodeHttpServer.layerTest),
    Layer.provide(quiet)
  )

// Node's fetch decompresses by itself: the body read is the file, and `content-encoding` says how it travelled.
const get = (path: string, headers: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const response = yield* HttpClient.execute(HttpClientRequest.get(path).pipe(HttpClientRequest.setHeaders(headers)))
    const body = response.status === 304 ? new Uint8Array() : new Uint8Array(yield* response.arrayBuffer)
    return { status: response.status, headers: response.headers, body, text: new TextDecoder().decode(body) }
  })

describe("ConsoleHttp.negotiate", () => {
  const both = ["br", "gzip"] as const
  const cases: ReadonlyArray<
    readonly [string | undefined, ReadonlyArray<ConsoleHttp.Encoding>, ConsoleHttp.Encoding | undefined]
  > = [
    ["gzip, deflate, br, zstd", both, "br"],
    ["gzip", both, "gzip"],
    ["br;q=0.5, gzip", both, "gzip"],
    ["br;q=1.0, gzip;q=1.0", both, "br"],
    ["BR", both, "br"],
    ["x-gzip", both, "gzip"],
    ["*", both, "br"],
    ["*;q=0, gzip", both, "gzip"],
    ["br;q=0", both, undefined],
    ["identity", both, undefined],
    ["br", ["gzip"], undefined],
    ["", both, undefined],
    [undefined, both, undefined]
  ]
  for (const [header, available, expected] of cases) {
    it(`${JSON.stringify(header)} with ${available.join("+")} → ${expected ?? "identity"}`, () => {
      assert.strictEqual(ConsoleHttp.negotiate(header, available), expected)
    })
  }

  it("matches entity tags weakly, in lists and as *", () => {
    assert.isTrue(ConsoleHttp.matchesEtag("\"abc-br\"", "\"abc-br\""))
    assert.isTrue(ConsoleHttp.matchesEtag("W/\"abc-br\", \"x\"", "\"abc-br\""))
    assert.isTrue(ConsoleHttp.matchesEtag("*", "\"abc\""))
    assert.isFalse(ConsoleHttp.matchesEtag("\"abc\"", "\"abc-br\""))
    assert.isFalse(ConsoleHttp.matchesEtag(undefined, "\"abc\""))
  })
})

describe("ConsoleHttp.layer", () => {
  it.effect("serves index.html compressed as asked, with no-cache, an ETag and the security headers", () =>
    Effect.gen(function*() {
      const html = Fs.readFileSync(Path.join(distDir, "index.html"), "utf8")
      for (const [accept, encoding] of [["br, gzip", "br"], ["gzip", "gzip"], ["identity", undefined]] as const) {
        const reply = yield* get("/console/", { "accept-encoding": accept })
        assert.strictEqual(reply.status, 200)
        assert.strictEqual(reply.text, html)
        assert.strictEqual(reply.headers["content-encoding"], encoding)
        assert.strictEqual(reply.headers["content-type"], "text/html; charset=utf-8")
        assert.strictEqual(reply.headers["cache-control"], "no-cache")
        assert.strictEqual(reply.headers["vary"], "Accept-Encoding")
        assert.match(reply.headers["etag"] ?? "", /^"[A-Za-z0-9_-]+(-br|-gz)?"$/)
        assert.strictEqual(reply.headers["content-security-policy"], ConsoleHttp.contentSecurityPolicy)
        assert.strictEqual(reply.headers["x-content-type-options"], "nosniff")
        assert.strictEqual(reply.headers["referrer-policy"], "no-referrer")
      }
      const first = yield* get("/console/", { "accept-encoding": "gzip" })
      const again = yield* get("/console/", { "accept-encoding": "gzip", "if-none-match": first.headers["etag"]! })
      assert.strictEqual(again.status, 304)
      assert.strictEqual(again.headers["etag"], first.headers["etag"])
      // The ETag of one coding does not stand for another.
      const other = yield* get("/console/", { "accept-encoding": "br", "if-none-match": first.headers["etag"]! })
      assert.strictEqual(other.status, 200)
    }).pipe(Effect.provide(serve({ path: "/console", directory: distDir }))))

  it.effect("answers every deep link with the application, and the mount without its slash too", () =>
    Effect.gen(function*() {
      const html = Fs.readFileSync(Path.join(distDir, "index.html"), "utf8")
      for (
        const path of [
          "/console",
          "/console/audit?actor=key%3Aabc&type=backup",
          "/console/tenants/acme",
          "/console/x/y/z"
        ]
      ) {
        const reply = yield* get(path)
        assert.strictEqual(reply.status, 200, path)
        assert.strictEqual(reply.text, html, path)
      }
      const outside = yield* get("/consoleX")
      assert.strictEqual(outside.status, 404)
    }).pipe(Effect.provide(serve({ path: "/console", directory: distDir }))))

  it.effect("serves the hashed assets immutable, and refuses an unknown one with a problem", () =>
    Effect.gen(function*() {
      const manifest = readManifest()
      const script = yield* get(`/console/${manifest.script}`, { "accept-encoding": "gzip, br" })
      assert.strictEqual(script.status, 200)
      assert.strictEqual(script.headers["cache-control"], ConsoleHttp.immutableCacheControl)
      assert.strictEqual(script.headers["content-type"], "text/javascript; charset=utf-8")
      assert.strictEqual(script.headers["content-encoding"], "br")
      assert.deepStrictEqual(script.body, new Uint8Array(Fs.readFileSync(Path.join(distDir, manifest.script))))
      const style = yield* get(`/console/${manifest.stylesheet}`, { "accept-encoding": "gzip" })
      assert.strictEqual(style.headers["content-type"], "text/css; charset=utf-8")
      assert.strictEqual(style.headers["content-encoding"], "gzip")
      const missing = yield* get("/console/assets/app-NOPE.js")
      assert.strictEqual(missing.status, 404)
      assert.strictEqual(missing.headers["content-type"], "application/problem+json")
      const problem = JSON.parse(missing.text)
      assert.strictEqual(problem.status, 404)
      assert.strictEqual(problem.detail, "the console has no asset assets/app-NOPE.js")
      const traversal = yield* get("/console/assets/..%2Fmanifest.json")
      assert.strictEqual(traversal.status, 404)
    }).pipe(Effect.provide(serve({ path: "/console", directory: distDir }))))

  it.effect("mounted elsewhere, rewrites the page's base and compresses it again", () =>
    Effect.gen(function*() {
      const reply = yield* get("/ops/console/", { "accept-encoding": "gzip" })
      assert.strictEqual(reply.status, 200)
      assert.include(reply.text, "<base href=\"/ops/console/\">")
      assert.strictEqual(reply.headers["content-encoding"], "gzip")
      const manifest = readManifest()
      const script = yield* get(`/ops/console/${manifest.script}`)
      assert.strictEqual(script.status, 200)
      assert.strictEqual((yield* get("/console/")).status, 404)
    }).pipe(Effect.provide(serve({ path: "/ops/console/", directory: distDir }))))

  it.effect("without a build, answers a 503 problem that says how to build it", () => {
    const empty = Fs.mkdtempSync(Path.join(Os.tmpdir(), "console-empty-"))
    return Effect.gen(function*() {
      const reply = yield* get("/console/")
      assert.strictEqual(reply.status, 503)
      assert.strictEqual(reply.headers["content-type"], "application/problem+json")
      assert.include(JSON.parse(reply.text).detail, "node apps/console/build.mjs")
    }).pipe(
      Effect.provide(serve({ path: "/console", directory: empty })),
      Effect.ensuring(Effect.sync(() => Fs.rmSync(empty, { recursive: true, force: true })))
    )
  })

  it.effect("refuses a manifest that does not decode", () => {
    const broken = Fs.mkdtempSync(Path.join(Os.tmpdir(), "console-broken-"))
    Fs.writeFileSync(Path.join(broken, "manifest.json"), JSON.stringify({ version: 2, files: {} }))
    return Effect.gen(function*() {
      const error = yield* Effect.flip(ConsoleHttp.load(broken, "/console"))
      assert.strictEqual(error._tag, "ConsoleNotBuilt")
      assert.include(error.detail, "manifest.json does not decode")
      assert.strictEqual((yield* get("/console/")).status, 503)
    }).pipe(
      Effect.provide(serve({ path: "/console", directory: broken })),
      Effect.ensuring(Effect.sync(() => Fs.rmSync(broken, { recursive: true, force: true })))
    )
  })
})

describe("ConsoleHttp.config", () => {
  const read = (env: Record<string, string>) =>
    Effect.result(
      Effect.gen(function*() {
        return yield* Config.nested(ConsoleHttp.config, "CONSOLE")
      }).pipe(Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env })))
    )

  it.effect("reads CONSOLE_PATH and CONSOLE_DIR, /console and none by default", () =>
    Effect.gen(function*() {
      const defaults = yield* read({})
      assert.isTrue(Result.isSuccess(defaults))
      if (Result.isSuccess(defaults)) {
        assert.strictEqual(defaults.success.path, "/console")
        assert.isTrue(Option.isNone(defaults.success.directory))
      }
      const set = yield* read({ CONSOLE_PATH: "/ops/console/", CONSOLE_DIR: "/srv/console" })
      assert.isTrue(Result.isSuccess(set))
      if (Result.isSuccess(set)) {
        assert.strictEqual(set.success.path, "/ops/console/")
        assert.deepStrictEqual(set.success.directory, Option.some("/srv/console"))
      }
    }))

  it.effect("refuses the root, a path the console calls, and anything that is not a plain path, saying why", () =>
    Effect.gen(function*() {
      for (
        const bad of [
          "/",
          "console x",
          "/api",
          "/admin/console",
          "/health",
          "/metrics",
          "/openapi.json",
          "/docs/x",
          "/a/../b",
          "//",
          "/con?sole"
        ]
      ) {
        const result = yield* read({ CONSOLE_PATH: bad })
        assert.isTrue(Result.isFailure(result), `${JSON.stringify(bad)} is refused`)
        if (Result.isFailure(result)) assert.match(String(result.failure), /must (?:be a path|not)/, bad)
      }
      for (const good of ["/console", "/ops/console", "/console-2", "/ops.console/v~1"]) {
        assert.isTrue(Result.isSuccess(yield* read({ CONSOLE_PATH: good })), good)
      }
    }))
})

describe("the build", () => {
  it("is found where the package is, without configuration", () => {
    assert.strictEqual(Path.resolve(ConsoleHttp.defaultDirectory()), Path.resolve(distDir))
  })

  it("keeps the JavaScript under 150 KB gzipped", () => {
    const manifest = readManifest()
    const scripts = Object.entries(manifest.files).filter(([file]) => file.endsWith(".js"))
    assert.isAbove(scripts.length, 0)
    const gzipped = scripts.reduce((total, [file]) => total + gunzipSize(file), 0)
    assert.isBelow(gzipped, 150 * 1024, `${gzipped} bytes of gzipped JavaScript`)
  })

  it("has no inline script or style and loads nothing from another origin", () => {
    const html = Fs.readFileSync(Path.join(distDir, "index.html"), "utf8")
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)]
    assert.strictEqual(scripts.length, 1)
    for (const [, attributes, content] of scripts) {
      assert.match(attributes!, /\bsrc="assets\/[^"]+\.js"/)
      assert.strictEqual(content, "")
    }
    assert.notMatch(html, /<style\b|\sstyle="|\son[a-z]+="/i)
    assert.notMatch(html, /(src|href)="(https?:)?\/\//)
  })
})

// The gzipped size of a built file, from its precompressed copy (checked to be a gzip of the file).
const gunzipSize = (file: string): number => {
  const original = Fs.readFileSync(Path.join(distDir, file))
  const gzipped = Fs.readFileSync(Path.join(distDir, `${file}.gz`))
  assert.deepStrictEqual(gunzipSync(gzipped), original)
  return gzipped.length
}
