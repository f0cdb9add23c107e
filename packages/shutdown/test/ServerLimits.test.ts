/**
 * The limits of `ShutdownHttp.layerServer` over raw sockets on 127.0.0.1: slow headers and slow bodies are cut at
 * their timeouts (small ones configured here; the test's own deadline only bounds the test), a response may stream
 * for longer than the request timeout, connections over the cap are closed, and what Node's parser rejects is
 * answered as problem+json.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Layer, Schedule, Stream } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import * as Net from "node:net"
import * as Stream_ from "node:stream"
import { Shutdown, ShutdownHttp } from "../src/index.js"

const Routes = HttpRouter.addAll([
  HttpRouter.route("GET", "/fast", HttpServerResponse.text("ok")),
  HttpRouter.route(
    "POST",
    "/echo",
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => request.text).pipe(
      Effect.map((text) => HttpServerResponse.text(`${text.length}`)),
      Effect.catchTag("HttpServerError", () => Effect.succeed(HttpServerResponse.text("unread", { status: 400 })))
    )
  ),
  // Ten chunks 100 ms apart: a response that lasts longer than the request timeout of the tests.
  HttpRouter.route(
    "GET",
    "/stream",
    Effect.succeed(HttpServerResponse.stream(
      Stream.fromSchedule(Schedule.spaced("100 millis")).pipe(
        Stream.take(10),
        Stream.map((n) => `${n};`),
        Stream.encodeText
      )
    ))
  )
])

const serve = (options: Omit<ShutdownHttp.ServerOptions, "port">) =>
  HttpRouter.serve(Routes, { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provideMerge(ShutdownHttp.layerServer({ port: 0, host: "127.0.0.1", ...options })),
    Layer.provideMerge(
      Shutdown.layer({ drain: 0, timeout: "5 seconds", finalizerTimeout: "5 seconds", signals: false })
    )
  )

const start = (options: Omit<ShutdownHttp.ServerOptions, "port">) =>
  Effect.map(Layer.build(serve(options)), (context) => {
    const node = Context.get(context, ShutdownHttp.NodeServer)
    const address = node.address()
    return { node, port: typeof address === "object" && address !== null ? address.port : 0 }
  })

interface Exchange {
  /** Everything the server sent before the connection closed. */
  readonly received: string
  /** Milliseconds from the first byte sent to the close. */
  readonly elapsed: number
  /** How many trickled writes went out before the close. */
  readonly trickled: number
  /** Milliseconds from the first byte sent to the last trickled write (0 when there was none). */
  readonly lastTrickle: number
}

/**
 * Opens a connection, writes `first`, then `trickle` every `everyMs` while the socket takes it, and yields what came
 * back once the server closes the connection. The deadline bounds the test only.
 */
const exchange = (port: number, first: string, trickle?: { readonly chunk: string; readonly everyMs: number }) =>
  Effect.callback<Exchange>((resume) => {
    const socket = Net.connect(port, "127.0.0.1")
    const started = performance.now()
    let received = ""
    let trickled = 0
    let lastTrickle = 0
    let timer: ReturnType<typeof setInterval> | undefined
    socket.setEncoding("latin1")
    socket.on("data", (data: string) => (received += data))
    socket.on("error", () => {})
    socket.on("close", () => {
      clearInterval(timer)
      resume(Effect.succeed({ received, elapsed: performance.now() - started, trickled, lastTrickle }))
    })
    socket.write(first)
    if (trickle !== undefined) {
      timer = setInterval(() => {
        if (socket.writable) {
          socket.write(trickle.chunk)
          trickled++
          lastTrickle = performance.now() - started
        }
      }, trickle.everyMs)
    }
    return Effect.sync(() => {
      clearInterval(timer)
      socket.destroy()
    })
  }).pipe(Effect.timeoutOrElse({ duration: "20 seconds", orElse: () => Effect.die("the server never closed") }))

interface Parsed {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: string
}

const parse = (raw: string): Parsed => {
  const end = raw.indexOf("\r\n\r\n")
  assert.isAbove(end, 0, `a complete response, got ${JSON.stringify(raw.slice(0, 200))}`)
  const [statusLine, ...lines] = raw.slice(0, end).split("\r\n")
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(":")
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
  }
  return { status: Number(statusLine!.split(" ")[1]), headers, body: raw.slice(end + 4) }
}

/** The body of a chunked response. */
const dechunk = (body: string): string => {
  let out = ""
  let at = 0
  for (;;) {
    const lineEnd = body.indexOf("\r\n", at)
    const size = parseInt(body.slice(at, lineEnd), 16)
    if (!(size > 0)) return out
    out += body.slice(lineEnd + 2, lineEnd + 2 + size)
    at = lineEnd + 2 + size + 2
  }
}

/** Asserts a problem+json response that closes the connection, and returns its body. */
const getFast = "GET /fast HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

const problem = (raw: string, status: number) => {
  const response = parse(raw)
  assert.strictEqual(response.status, status)
  assert.strictEqual(response.headers["content-type"], "application/problem+json")
  assert.strictEqual(response.headers.connection, "close")
  assert.strictEqual(Number(response.headers["content-length"]), Buffer.byteLength(response.body))
  const body = JSON.parse(response.body) as Record<string, unknown>
  assert.strictEqual(body.status, status)
  assert.strictEqual(body.type, "about:blank")
  assert.isString(body.title)
  assert.isString(body.detail)
  // No request was parsed, so there is no correlation id to give.
  assert.notProperty(body, "correlationId")
  return body
}

/** Polls until the server holds `n` connections (bounded by the test's deadline). */
const connections = (node: ShutdownHttp.NodeServer["Service"], n: number) =>
  Effect.promise(() => new Promise<number>((resolve) => node.getConnections((_, count) => resolve(count)))).pipe(
    Effect.repeat({ until: (count) => count === n, schedule: Schedule.spaced("10 millis") }),
    Effect.timeoutOrElse({ duration: "10 seconds", orElse: () => Effect.die(`never ${n} connections`) })
  )

const connect = (port: number) =>
  Effect.acquireRelease(
    Effect.callback<Net.Socket>((resume) => {
      const socket = Net.connect(port, "127.0.0.1", () => resume(Effect.succeed(socket)))
      socket.on("error", () => {})
    }),
    (socket) => Effect.sync(() => socket.destroy())
  )

describe("ShutdownHttp.layerServer limits", () => {
  it.live("defaults suit a service behind a load balancer", () =>
    Effect.gen(function*() {
      const { node, port } = yield* start({})
      assert.deepStrictEqual(
        [node.headersTimeout, node.requestTimeout, node.keepAliveTimeout, node.maxConnections],
        [10_000, 30_000, 65_000, 4096]
      )
      // Keep-alive clients are told how long an idle connection stays open.
      const response = parse((yield* exchange(port, getFast)).received)
      assert.strictEqual(response.status, 200)
      const keepAlive = parse((yield* exchange(port, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n" + getFast)).received)
      assert.strictEqual(keepAlive.headers["keep-alive"], "timeout=65")
    }).pipe(Effect.scoped), { timeout: 30_000 })

  it.live("slow headers are answered 408 and cut at the headers timeout", () =>
    Effect.gen(function*() {
      // The request timeout is far away: only the headers timeout can end this exchange within the test's deadline.
      const { port } = yield* start({ headersTimeout: 300, requestTimeout: 60_000 })
      const result = yield* exchange(port, "GET /fast HTTP/1.1\r\nHost: x\r\n", { chunk: "X-Slow: y\r\n", everyMs: 50 })
      const body = problem(result.received, 408)
      assert.strictEqual(body.title, "Request Timeout")
      assert.isAtLeast(result.elapsed, 300)
      assert.isAbove(result.trickled, 0, "the client was still sending headers")
    }).pipe(Effect.scoped), { timeout: 30_000 })

  it.live("a slow body is answered 408 and cut at the request timeout", () =>
    Effect.gen(function*() {
      const { port } = yield* start({ headersTimeout: 200, requestTimeout: 600 })
      // The headers are complete at once; one byte of the 1000 announced every 50 ms.
      const result = yield* exchange(port, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", {
        chunk: "z",
        everyMs: 50
      })
      problem(result.received, 408)
      assert.isAtLeast(result.elapsed, 600)
      // Was "over 4 trickled bytes", which a stalled machine need not reach: a byte went out after the headers timeout
      // (a lower bound: a slow machine only adds to it).
      assert.isAbove(result.lastTrickle, 200, "the body was still arriving after the headers timeout")
    }).pipe(Effect.scoped), { timeout: 30_000 })

  it.live(
    "the request timeout bounds receiving the request, not the response: a long stream completes",
    () =>
      Effect.gen(function*() {
        const { port } = yield* start({ headersTimeout: 200, requestTimeout: 300 })
        const result = yield* exchange(port, "GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        const response = parse(result.received)
        assert.strictEqual(response.status, 200)
        assert.strictEqual(response.headers["transfer-encoding"], "chunked")
        assert.strictEqual(dechunk(response.body), "0;1;2;3;4;5;6;7;8;9;")
        assert.isAtLeast(result.elapsed, 900, "the response lasted three request timeouts")
      }).pipe(Effect.scoped),
    { timeout: 30_000 }
  )

  it.live("connections over the cap are closed at once; a freed slot is served again", () =>
    Effect.gen(function*() {
      const { node, port } = yield* start({ maxConnections: 2 })
      const first = yield* connect(port)
      yield* connect(port)
      yield* connections(node, 2)
      const refused = yield* exchange(port, getFast)
      assert.strictEqual(refused.received, "", "nothing is answered over the cap")
      first.destroy()
      yield* connections(node, 1)
      const served = yield* exchange(port, getFast)
      assert.deepStrictEqual([parse(served.received).status, parse(served.received).body], [200, "ok"])
    }).pipe(Effect.scoped), { timeout: 30_000 })

  describe("what Node's parser rejects is a problem+json response", () => {
    const cases = [
      ["bad header bytes", "GET /fast HTTP/1.1\r\nHost: x\r\nX-Bad: a\u0001b\r\n\r\n", 400],
      ["headers over 32 KiB", `GET /fast HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(40_000)}\r\n\r\n`, 431],
      ["a malformed request line", "NONSENSE\r\n\r\n", 400],
      ["an unknown HTTP version", "GET /fast HTTP/7.1\r\nHost: x\r\n\r\n", 400],
      ["a bad chunk size", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400]
    ] as const
    for (const [name, request, status] of cases) {
      it.live(name, () =>
        Effect.gen(function*() {
          const { port } = yield* start({})
          const body = problem((yield* exchange(port, request)).received, status)
          if (status === 431) assert.strictEqual(body.title, "Request Header Fields Too Large")
          else assert.match(String(body.detail), /^the request is not valid HTTP\/1\.1: /)
        }).pipe(Effect.scoped), { timeout: 30_000 })
    }

    it.live(
      "headers between Node's 16 KiB and the server's 32 KiB are served (a large JWT)",
      () =>
        Effect.gen(function*() {
          const { port } = yield* start({})
          const served = parse(
            (yield* exchange(
              port,
              `GET /fast HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`
            )).received
          )
          assert.strictEqual(served.status, 200)
          const { port: small } = yield* start({ maxHeaderSize: 16_384 })
          problem(
            (yield* exchange(small, `GET /fast HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`)).received,
            431
          )
        }).pipe(Effect.scoped),
      { timeout: 30_000 }
    )

    it.live("a good request on the same server is unaffected", () =>
      Effect.gen(function*() {
        const { port } = yield* start({})
        const response = parse((yield* exchange(port, getFast)).received)
        assert.deepStrictEqual([response.status, response.body], [200, "ok"])
      }).pipe(Effect.scoped), { timeout: 30_000 })
  })

  it.live(
    "a request while nothing serves the server (starting, or stopped) is a problem+json 503",
    () =>
      Effect.gen(function*() {
        // The server listens, and no application serves it yet.
        const context = yield* Layer.build(
          ShutdownHttp.layerServer({ port: 0, host: "127.0.0.1" }).pipe(
            Layer.provideMerge(
              Shutdown.layer({ drain: 0, timeout: "5 seconds", finalizerTimeout: "5 seconds", signals: false })
            )
          )
        )
        const address = Context.get(context, ShutdownHttp.NodeServer).address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        const response = parse((yield* exchange(port, getFast)).received)
        assert.strictEqual(response.status, 503)
        assert.strictEqual(response.headers["content-type"], "application/problem+json")
        assert.strictEqual(response.headers["retry-after"], "1")
        assert.strictEqual(Number(response.headers["content-length"]), Buffer.byteLength(response.body))
        assert.deepStrictEqual(JSON.parse(response.body), {
          type: "about:blank",
          title: "Service Unavailable",
          status: 503,
          detail: "the server is not serving requests: it is starting or stopping"
        })
      }).pipe(Effect.scoped),
    { timeout: 30_000 }
  )

  describe("onClientError writes only where the socket allows it", () => {
    const fakeSocket = (state: { writable: boolean; headersSent?: boolean }) => {
      const written: Array<string> = []
      let destroyed = false
      const socket = new Stream_.Duplex({
        read() {},
        write(_chunk, _encoding, callback) {
          callback()
        }
      })
      Object.defineProperty(socket, "writable", { get: () => state.writable })
      Object.assign(socket, {
        _httpMessage: state.headersSent === undefined ? null : { headersSent: state.headersSent },
        write: (chunk: string) => written.push(chunk),
        destroy: () => {
          destroyed = true
          return socket
        }
      })
      return { socket, written, destroyed: () => destroyed }
    }
    const parseError = Object.assign(new Error("Parse Error: Invalid method encountered"), {
      code: "HPE_INVALID_METHOD",
      reason: "Invalid method encountered"
    })

    it("a writable socket with no response started gets the problem, then is destroyed", () => {
      const fake = fakeSocket({ writable: true })
      ShutdownHttp.onClientError(parseError, fake.socket)
      assert.strictEqual(fake.written.length, 1)
      assert.match(fake.written[0]!, /^HTTP\/1\.1 400 Bad Request\r\n/)
      assert.isTrue(fake.destroyed())
    })

    it("a response already started: nothing written (it would corrupt it), destroyed", () => {
      const fake = fakeSocket({ writable: true, headersSent: true })
      const timeout = Object.assign(new Error("Request timeout"), { code: "ERR_HTTP_REQUEST_TIMEOUT" })
      ShutdownHttp.onClientError(timeout, fake.socket)
      assert.deepStrictEqual(fake.written, [])
      assert.isTrue(fake.destroyed())
    })

    it("a socket that is not writable, or a connection error: nothing written, destroyed", () => {
      const gone = fakeSocket({ writable: false })
      ShutdownHttp.onClientError(parseError, gone.socket)
      const reset = fakeSocket({ writable: true })
      ShutdownHttp.onClientError(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }), reset.socket)
      assert.deepStrictEqual([gone.written, reset.written], [[], []])
      assert.isTrue(gone.destroyed() && reset.destroyed())
    })

    it("maps Node's codes: 431, 413, 408, 400", () => {
      const status = (code: string) => ShutdownHttp.clientErrorProblem(Object.assign(new Error(code), { code }))?.status
      const codes = [
        "HPE_HEADER_OVERFLOW",
        "HPE_CHUNK_EXTENSIONS_OVERFLOW",
        "ERR_HTTP_REQUEST_TIMEOUT",
        "HPE_INVALID_HEADER_TOKEN",
        "EPIPE"
      ]
      assert.deepStrictEqual(codes.map(status), [431, 413, 408, 400, undefined])
    })
  })

  describe("limitsConfig", () => {
    const read = (env: Record<string, string>) => ShutdownHttp.limitsConfig.parse(ConfigProvider.fromEnv({ env }))

    it.effect("defaults, and every variable", () =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* read({}), {
          headersTimeout: 10_000,
          requestTimeout: 30_000,
          keepAliveTimeout: 65_000,
          maxConnections: 4096,
          maxHeaderSize: 32_768
        })
        assert.deepStrictEqual(
          yield* read({
            HTTP_HEADERS_TIMEOUT_MS: "5000",
            HTTP_REQUEST_TIMEOUT_MS: "0",
            HTTP_KEEP_ALIVE_TIMEOUT_MS: "620000",
            HTTP_MAX_CONNECTIONS: "100",
            HTTP_MAX_HEADER_SIZE: "65536"
          }),
          {
            headersTimeout: 5000,
            requestTimeout: 0,
            keepAliveTimeout: 620_000,
            maxConnections: 100,
            maxHeaderSize: 65_536
          }
        )
      }))

    it.effect("bad values are ConfigErrors that name the variable", () =>
      Effect.gen(function*() {
        const negative = yield* Effect.flip(read({ HTTP_MAX_CONNECTIONS: "-1" }))
        assert.include(negative.message, "HTTP_MAX_CONNECTIONS")
        const inverted = yield* Effect.flip(
          read({ HTTP_HEADERS_TIMEOUT_MS: "40000", HTTP_REQUEST_TIMEOUT_MS: "30000" })
        )
        assert.include(inverted.message, "HTTP_HEADERS_TIMEOUT_MS (40000) must not exceed HTTP_REQUEST_TIMEOUT_MS")
      }))

    it.live("layerServerConfig builds the server from the environment", () =>
      Effect.gen(function*() {
        const context = yield* Layer.build(
          HttpRouter.serve(Routes, { disableLogger: true, disableListenLog: true }).pipe(
            Layer.provideMerge(ShutdownHttp.layerServerConfig({ port: 0, host: "127.0.0.1" })),
            Layer.provideMerge(
              Shutdown.layer({ drain: 0, timeout: "1 second", finalizerTimeout: "1 second", signals: false })
            ),
            Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({
              env: { HTTP_HEADERS_TIMEOUT_MS: "1234", HTTP_KEEP_ALIVE_TIMEOUT_MS: "61000", HTTP_MAX_CONNECTIONS: "7" }
            })))
          )
        )
        const node = Context.get(context, ShutdownHttp.NodeServer)
        assert.deepStrictEqual(
          [node.headersTimeout, node.requestTimeout, node.keepAliveTimeout, node.maxConnections],
          [1234, 30_000, 61_000, 7]
        )
      }).pipe(Effect.scoped))
  })
})
