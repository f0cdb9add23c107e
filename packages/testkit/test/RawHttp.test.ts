import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as RawHttp from "../src/RawHttp.js"

/** Echoes the body with the transfer encoding it came with; `/reset` destroys the socket before answering. */
const echoServer = Effect.acquireRelease(
  Effect.callback<Http.Server>((resume) => {
    const server = Http.createServer((req, res) => {
      if (req.url === "/reset") {
        req.socket.destroy()
        return
      }
      let body = ""
      req.setEncoding("utf8")
      req.on("data", (chunk: string) => (body += chunk))
      req.on("end", () => {
        res.setHeader("x-transfer-encoding", req.headers["transfer-encoding"] ?? "none")
        res.end(`${req.method} ${body}`)
      })
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) =>
    Effect.callback<void>((resume) => {
      server.close(() => resume(Effect.void))
      server.closeAllConnections()
    })
).pipe(Effect.map((server) => (server.address() as AddressInfo).port))

describe("RawHttp", () => {
  it.effect("sends a chunked body a chunk at a time and reuses a kept-alive connection", () =>
    Effect.gen(function*() {
      const port = yield* echoServer
      const agent = yield* RawHttp.keepAliveAgent
      const first = yield* RawHttp.request(port, {
        method: "POST",
        path: "/",
        agent,
        chunked: ["a", "b", "c"],
        untilResponse: false
      })
      assert.strictEqual(first.status, 200)
      assert.strictEqual(first.body, "POST abc")
      assert.strictEqual(first.headers["x-transfer-encoding"], "chunked")
      assert.isUndefined(first.error)
      assert.isFalse(first.reusedSocket)
      const second = yield* RawHttp.request(port, { method: "POST", path: "/", agent, body: "xyz" })
      assert.strictEqual(second.body, "POST xyz")
      assert.strictEqual(second.headers["x-transfer-encoding"], "none")
      assert.isTrue(second.reusedSocket)
    }))

  it.effect("reports a reset before the response as an error, not a failure", () =>
    Effect.gen(function*() {
      const port = yield* echoServer
      const agent = yield* RawHttp.keepAliveAgent
      const reply = yield* RawHttp.request(port, { method: "GET", path: "/reset", agent })
      assert.isUndefined(reply.status)
      assert.isString(reply.error)
    }))
})
