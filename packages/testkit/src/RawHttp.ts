/**
 * Requests over `node:http` for tests of what happens on the wire: chunked bodies written a chunk at a time,
 * keep-alive connections, and errors (a reset) that a higher-level client would hide or retry.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import * as Http from "node:http"

/**
 * What came back.
 *
 * @since 0.1.0
 * @category models
 */
export interface Reply {
  readonly status: number | undefined
  readonly headers: Http.IncomingHttpHeaders
  readonly body: string
  /** An error of the request or the response before the response was complete (ECONNRESET, say). */
  readonly error: string | undefined
  /** Whether the request went over a connection that an earlier request had used. */
  readonly reusedSocket: boolean
}

/**
 * Options of {@link request}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly method: "GET" | "POST"
  readonly path: string
  readonly agent: Http.Agent
  readonly headers?: Http.OutgoingHttpHeaders | undefined
  /** Written one at a time, 5 ms apart, with `Transfer-Encoding: chunked`. */
  readonly chunked?: ReadonlyArray<string> | undefined
  /** A body with `Content-Length`. */
  readonly body?: string | undefined
  /** Stop writing chunks once a response has arrived, as curl does (default true). */
  readonly untilResponse?: boolean | undefined
}

/**
 * One request to 127.0.0.1. Errors after the response is complete (the server closing a connection the client was
 * still writing on) are the expected end of such an exchange and are not reported.
 *
 * @since 0.1.0
 * @category constructors
 */
export const request = (port: number, options: Options): Effect.Effect<Reply> =>
  Effect.callback<Reply>((resume) => {
    let responded = false
    let done = false
    const finish = (reply: Reply) => {
      if (done) return
      done = true
      // Effect 4 resumes the fiber synchronously, inside this event handler: before Node has handed the socket back
      // to the agent (it does so on the next tick), so a following request would queue for a new socket instead of
      // reusing this one. Resuming after Node's own handling keeps keep-alive reuse observable.
      setImmediate(() => resume(Effect.succeed(reply)))
    }
    const headers: Http.OutgoingHttpHeaders = { ...options.headers }
    if (options.chunked !== undefined) headers["transfer-encoding"] = "chunked"
    if (options.body !== undefined) headers["content-length"] = Buffer.byteLength(options.body)
    const client = Http.request(
      { host: "127.0.0.1", port, path: options.path, method: options.method, agent: options.agent, headers },
      (response) => {
        responded = options.untilResponse ?? true
        let body = ""
        response.setEncoding("utf8")
        response.on("data", (chunk: string) => (body += chunk))
        const reply = (error: string | undefined): Reply => ({
          status: response.statusCode,
          headers: response.headers,
          body,
          error,
          reusedSocket: client.reusedSocket
        })
        response.on("end", () => finish(reply(undefined)))
        response.on("error", (error: NodeJS.ErrnoException) => finish(reply(error.code ?? error.message)))
      }
    )
    client.on("error", (error: NodeJS.ErrnoException) =>
      finish({ status: undefined, headers: {}, body: "", error: error.code ?? error.message, reusedSocket: false }))
    const write = async () => {
      for (const chunk of options.chunked ?? []) {
        if (responded || done) {
          return
        }
        client.write(chunk)
        await new Promise((resolve) =>
          setTimeout(resolve, 5)
        )
      }
      if (!responded && !done) client.end(options.body)
    }
    void write()
    return Effect.sync(() => client.destroy())
  })

/**
 * A keep-alive client with one connection, destroyed with the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const keepAliveAgent = Effect.acquireRelease(
  Effect.sync(() => new Http.Agent({ keepAlive: true, maxSockets: 1 })),
  (agent) => Effect.sync(() => agent.destroy())
)
