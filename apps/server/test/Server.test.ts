/**
 * The body limit of the whole server (`MAX_BODY_BYTES`) over raw HTTP on 127.0.0.1: a chunked body over it is the
 * same 413 problem as a declared length over it, delivered whole; bodies under it and keep-alive are unaffected.
 */
import { assert, describe, it } from "@effect/vitest"
import { RawHttp } from "@ouroboros/testkit"
import { Effect } from "effect"
import * as Http from "node:http"
import * as Testing from "../src/Testing.js"

const maxBytes = 1000

const parse = (text: string): unknown => {
  try {
    return text === "" ? undefined : JSON.parse(text)
  } catch {
    return text
  }
}

/** One request as tenant A (see `RawHttp.request`), its body parsed as JSON where it is JSON. */
const request = (
  port: number,
  options: {
    readonly method: "GET" | "POST"
    readonly path: string
    readonly agent: Http.Agent
    readonly chunked?: ReadonlyArray<string> | undefined
    readonly body?: string | undefined
  }
) =>
  Effect.map(
    RawHttp.request(port, {
      ...options,
      headers: { "x-api-key": Testing.keys.tenantA, "content-type": "application/json" }
    }),
    (reply) => ({ ...reply, body: parse(reply.body) as any })
  )

const keepAliveAgent = RawHttp.keepAliveAgent

/** An ingest as tenant A: a chunked body, or one with a declared length. */
const ingest = (
  port: number,
  agent: Http.Agent,
  body: { readonly chunked: ReadonlyArray<string> } | { readonly body: string }
) => request(port, { method: "POST", path: "/api/v1/documents", agent, ...body })

/** A JSON ingest body of about `size` bytes, cut into chunks of `chunk` bytes. */
const document = (size: number, chunk: number): Array<string> => {
  const json = JSON.stringify({ text: "zebras ".repeat(Math.ceil(size / 7)).slice(0, size - 11) })
  return Array.from({ length: Math.ceil(json.length / chunk) }, (_, i) => json.slice(i * chunk, (i + 1) * chunk))
}

describe("Server body limit", () => {
  it.live(
    "a chunked body over MAX_BODY_BYTES is answered whole with the 413 problem of a declared length",
    () =>
      Effect.gen(function*() {
        const server = yield* Testing.start({ MAX_BODY_BYTES: String(maxBytes) })
        const agent = yield* keepAliveAgent
        const chunked = yield* ingest(server.port, agent, { chunked: document(5000, 250) })
        assert.isUndefined(chunked.error, "no error before the response was complete")
        assert.strictEqual(chunked.status, 413)
        assert.strictEqual(chunked.headers["content-type"], "application/problem+json")
        assert.strictEqual(chunked.headers.connection, "close")
        const { correlationId, ...problem } = chunked.body
        assert.isString(correlationId)
        assert.deepStrictEqual(problem, {
          type: "https://ouroboros.dev/problems/payload-too-large",
          title: "Content Too Large",
          status: 413,
          detail: `the body is larger than ${maxBytes} bytes`,
          maxBytes
        })

        // The whole body in one write, as curl sends a small file.
        const atOnce = yield* ingest(server.port, agent, { chunked: [document(5000, 5000).join("")] })
        assert.isUndefined(atOnce.error, "no error before the response was complete")
        assert.deepStrictEqual([atOnce.status, { ...atOnce.body, correlationId: undefined }], [413, {
          ...problem,
          correlationId: undefined
        }])

        const declared = yield* ingest(server.port, agent, { body: document(5000, 5000).join("") })
        assert.strictEqual(declared.status, 413)
        assert.strictEqual(declared.headers.connection, "close")
        assert.deepStrictEqual({ ...declared.body, correlationId: undefined }, { ...problem, correlationId: undefined })
      }),
    { timeout: 60_000 }
  )

  it.live(
    "chunked bodies under the limit are ingested, on one keep-alive connection with other requests",
    () =>
      Effect.gen(function*() {
        const server = yield* Testing.start({ MAX_BODY_BYTES: String(maxBytes) })
        const agent = yield* keepAliveAgent
        const ingested = yield* ingest(server.port, agent, { chunked: document(900, 100) })
        assert.deepStrictEqual([ingested.status, ingested.error], [201, undefined])
        const read = yield* request(server.port, {
          method: "GET",
          path: `/api/v1/documents/${ingested.body.id}`,
          agent
        })
        const again = yield* ingest(server.port, agent, { chunked: document(600, 300) })
        assert.strictEqual(read.status, 200)
        assert.strictEqual(again.status, 201)
        assert.deepStrictEqual([ingested.reusedSocket, read.reusedSocket, again.reusedSocket], [false, true, true])
        assert.isTrue([ingested, read, again].every((reply) => reply.headers.connection === "keep-alive"))

        // A refused body costs its own connection only: the server closes it with the answer (`Connection: close`,
        // so the client waits for no timeout), and the client goes on on a new one.
        const [tooLarge, next] = yield* Effect.all([
          ingest(server.port, agent, { chunked: document(5000, 5000) }),
          request(server.port, { method: "GET", path: `/api/v1/documents/${ingested.body.id}`, agent })
        ])
        assert.deepStrictEqual([tooLarge.status, tooLarge.error, tooLarge.headers.connection], [
          413,
          undefined,
          "close"
        ])
        assert.deepStrictEqual([next.status, next.error, next.reusedSocket], [200, undefined, false])
      }),
    { timeout: 60_000 }
  )
})
