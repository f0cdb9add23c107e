import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import * as Http from "node:http"
import * as Zlib from "node:zlib"
import * as CompressionHttp from "../src/CompressionHttp.js"

const json = JSON.stringify(Array.from({ length: 300 }, (_, i) => ({ id: i, text: `document number ${i}` })))
const page = `<!doctype html><html><body>${"<p>Swagger UI, more or less.</p>".repeat(80_000)}</body></html>`
const png = new Uint8Array(8192).map((_, i) => (i * 7919) % 251)

const docs = HttpServerResponse.html(page)

const routes = Layer.mergeAll(
  HttpRouter.add("GET", "/json", Effect.sync(() => HttpServerResponse.text(json, { contentType: "application/json" }))),
  HttpRouter.add("GET", "/small", HttpServerResponse.jsonUnsafe({ ok: true })),
  HttpRouter.add("GET", "/docs", Effect.succeed(docs)),
  HttpRouter.add("GET", "/png", HttpServerResponse.uint8Array(png, { contentType: "image/png" })),
  HttpRouter.add(
    "GET",
    "/stream",
    HttpServerResponse.stream(Stream.make(new TextEncoder().encode(json)), { contentType: "text/plain" })
  ),
  HttpRouter.add(
    "GET",
    "/encoded",
    HttpServerResponse.uint8Array(Zlib.gzipSync(json), {
      contentType: "application/json",
      headers: { "content-encoding": "gzip" }
    })
  ),
  HttpRouter.add(
    "GET",
    "/no-transform",
    HttpServerResponse.text(json, { contentType: "application/json", headers: { "cache-control": "no-transform" } })
  ),
  HttpRouter.add(
    "GET",
    "/etag",
    HttpServerResponse.text(json, { contentType: "application/json", headers: { etag: `"v1"`, vary: "Origin" } })
  ),
  HttpRouter.add("GET", "/not-modified", HttpServerResponse.empty({ status: 304 }))
)

interface Reply {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  readonly body: Buffer
}

const raw = (port: number, path: string, headers: Record<string, string> = {}, method = "GET") =>
  Effect.callback<Reply>((resume) => {
    const request = Http.request({ host: "127.0.0.1", port, method, path, headers, agent: false }, (response) => {
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on(
        "end",
        () =>
          resume(
            Effect.succeed({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) })
          )
      )
    })
    request.on("error", (error) => resume(Effect.die(error)))
    request.end()
  })

const decoded = (reply: Reply): string => {
  const encoding = reply.headers["content-encoding"]
  if (encoding === "gzip") return Zlib.gunzipSync(reply.body).toString()
  if (encoding === "br") return Zlib.brotliDecompressSync(reply.body).toString()
  return reply.body.toString()
}

const portOf = Effect.map(
  Effect.service(HttpServer.HttpServer),
  (server) => "port" in server.address ? server.address.port : 0
)

const Served = HttpRouter.serve(Layer.mergeAll(routes, CompressionHttp.layer()), {
  disableLogger: true,
  disableListenLog: true
}).pipe(Layer.provideMerge(NodeHttpServer.layerTest))

describe("CompressionHttp.negotiate", () => {
  it("picks the heaviest acceptable coding, ours first on ties", () => {
    assert.strictEqual(CompressionHttp.negotiate("gzip, deflate, br"), "br")
    assert.strictEqual(CompressionHttp.negotiate("gzip, deflate, br;q=0.9"), "gzip")
    assert.strictEqual(CompressionHttp.negotiate("br;q=0.5, gzip;q=0.6"), "gzip")
    assert.strictEqual(CompressionHttp.negotiate("x-gzip"), "gzip")
    assert.strictEqual(CompressionHttp.negotiate("*"), "br")
    assert.strictEqual(CompressionHttp.negotiate("*, br;q=0"), "gzip")
    assert.strictEqual(CompressionHttp.negotiate("gzip;q=0, identity"), undefined)
    assert.strictEqual(CompressionHttp.negotiate("identity"), undefined)
    assert.strictEqual(CompressionHttp.negotiate(""), undefined)
    assert.strictEqual(CompressionHttp.negotiate("GZIP;Q=1"), "gzip")
    assert.strictEqual(CompressionHttp.negotiate("br, gzip", ["gzip"]), "gzip")
  })

  it("knows what compresses", () => {
    for (const type of ["text/html; charset=utf-8", "application/json", "application/problem+json", "image/svg+xml"]) {
      assert.isTrue(CompressionHttp.isCompressible(type), type)
    }
    for (const type of ["image/png", "application/zip", "text/event-stream", "application/octet-stream"]) {
      assert.isFalse(CompressionHttp.isCompressible(type), type)
    }
  })
})

describe("CompressionHttp middleware", () => {
  it.effect("compresses large compressible bodies by Accept-Encoding, with Vary", () =>
    Effect.gen(function*() {
      const port = yield* portOf
      for (const [accept, coding] of [["br", "br"], ["gzip", "gzip"], ["gzip, deflate, br", "br"]] as const) {
        const reply = yield* raw(port, "/json", { "accept-encoding": accept })
        assert.strictEqual(reply.status, 200)
        assert.strictEqual(reply.headers["content-encoding"], coding)
        assert.strictEqual(reply.headers["vary"], "Accept-Encoding")
        assert.strictEqual(reply.headers["content-type"], "application/json")
        assert.strictEqual(Number(reply.headers["content-length"]), reply.body.length)
        assert.isBelow(reply.body.length, json.length / 3)
        assert.strictEqual(decoded(reply), json)
      }
      // Without Accept-Encoding, or when nothing we offer is acceptable: as it is.
      for (const headers of [{}, { "accept-encoding": "identity" }, { "accept-encoding": "gzip;q=0, br;q=0" }]) {
        const plain = yield* raw(port, "/json", headers)
        assert.isUndefined(plain.headers["content-encoding"])
        assert.strictEqual(plain.body.toString(), json)
      }
    }).pipe(Effect.provide(Served)))

  it.effect("a large document (compressed on the thread pool) is served compressed, the same bytes each time", () =>
    Effect.gen(function*() {
      const port = yield* portOf
      const first = yield* raw(port, "/docs", { "accept-encoding": "gzip" })
      const second = yield* raw(port, "/docs", { "accept-encoding": "gzip" })
      assert.strictEqual(first.headers["content-encoding"], "gzip")
      assert.isBelow(first.body.length, page.length / 20)
      assert.strictEqual(decoded(first), page)
      assert.isTrue(first.body.equals(second.body))
      const br = yield* raw(port, "/docs", { "accept-encoding": "br" })
      assert.strictEqual(decoded(br), page)
    }).pipe(Effect.provide(Served)))

  it.effect("leaves alone what must not or need not be compressed", () =>
    Effect.gen(function*() {
      const port = yield* portOf
      const accept = { "accept-encoding": "gzip, br" }
      for (const path of ["/small", "/png", "/stream", "/no-transform", "/nowhere"]) {
        const reply = yield* raw(port, path, accept)
        assert.isUndefined(reply.headers["content-encoding"], path)
      }
      assert.strictEqual((yield* raw(port, "/stream", accept)).body.toString(), json)
      // Already encoded: passed on untouched.
      const encoded = yield* raw(port, "/encoded", accept)
      assert.strictEqual(encoded.headers["content-encoding"], "gzip")
      assert.strictEqual(decoded(encoded), json)
      // HEAD, ranges and 304s.
      const head = yield* raw(port, "/json", accept, "HEAD")
      assert.isUndefined(head.headers["content-encoding"])
      assert.isUndefined((yield* raw(port, "/json", { ...accept, range: "bytes=0-9" })).headers["content-encoding"])
      assert.strictEqual((yield* raw(port, "/not-modified", accept)).status, 304)
    }).pipe(Effect.provide(Served)))

  it.effect("a strong ETag becomes weak; Vary keeps its fields", () =>
    Effect.gen(function*() {
      const port = yield* portOf
      const reply = yield* raw(port, "/etag", { "accept-encoding": "gzip" })
      assert.strictEqual(reply.headers["content-encoding"], "gzip")
      assert.strictEqual(reply.headers["etag"], `W/"v1"`)
      assert.strictEqual(reply.headers["vary"], "Origin, Accept-Encoding")
    }).pipe(Effect.provide(Served)))
})
