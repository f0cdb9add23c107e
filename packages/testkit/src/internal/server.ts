import * as Http from "node:http"
import type { AddressInfo, Socket } from "node:net"
import type { FaultConfig, Faults } from "../Faults.js"
import * as InternalFaults from "./faults.js"

interface RecordedRequest {
  readonly method: string
  readonly path: string
  readonly url: string
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly body: unknown
  readonly at: number
}

/** @internal */
export interface Incoming {
  readonly method: string
  readonly path: string
  readonly query: URLSearchParams
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly raw: Buffer
}

/** @internal */
export interface Reply {
  readonly status: number
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: string | Uint8Array
  /** Written chunk by chunk (streaming answers). */
  readonly chunks?: ReadonlyArray<string>
  /** Pause between streamed chunks. */
  readonly chunkDelayMs?: number
}

/** @internal */
export interface ServerOptions {
  readonly port?: number | undefined
  readonly handle: (request: Incoming, self: { readonly url: string }) => Reply | Promise<Reply>
  /** The service's error answer, used for injected errors and unexpected exceptions. */
  readonly errorReply: (status: number, message: string) => Reply
}

/** @internal */
export interface Running {
  readonly url: string
  readonly port: number
  readonly faults: Faults
  readonly requests: ReadonlyArray<RecordedRequest>
  readonly hanging: number
  clearRequests(): void
  close(): Promise<void>
}

const headerRecord = (headers: Http.IncomingHttpHeaders): Record<string, string | undefined> => {
  const out: Record<string, string | undefined> = {}
  for (const [name, value] of Object.entries(headers)) {
    out[name] = Array.isArray(value) ? value.join(", ") : value
  }
  return out
}

const recordedBody = (raw: Buffer, contentType: string | undefined): unknown => {
  if (raw.length === 0) return undefined
  const type = contentType ?? ""
  if (type.includes("multipart/") || type.includes("octet-stream")) return new Uint8Array(raw)
  const text = raw.toString("utf8")
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

const readBody = (req: Http.IncomingMessage): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.once("end", () => resolve(Buffer.concat(chunks)))
    req.once("error", reject)
  })

/**
 * Starts a `node:http` server that records every request, applies the faults, then hands the request to `handle`.
 *
 * @internal
 */
export const start = (options: ServerOptions): Promise<Running> => {
  const sockets = new Set<Socket>()
  const hung = new Set<() => void>()
  const timers = new Set<NodeJS.Timeout>()
  const requests: Array<RecordedRequest> = []
  let closed = false
  // Requests held by `hang` whose client is still connected.
  let hanging = 0
  // Deterministic error rate: each request adds `errorRate` to the budget, and a whole unit spent is one error,
  // so 0.5 fails every second request and 1 fails them all.
  let errorBudget = 0

  const onFaultsChange = (previous: FaultConfig, next: FaultConfig) => {
    if (next.refuse && !previous.refuse) {
      for (const socket of sockets) socket.destroy()
    }
    if (previous.errorRate !== next.errorRate) errorBudget = 0
    if (previous.hang && !next.hang) {
      const waiting = [...hung]
      hung.clear()
      for (const release of waiting) release()
    }
  }
  const faults = InternalFaults.make(onFaultsChange)

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer)
        resolve()
      }, ms)
      timer.unref()
      timers.add(timer)
    })

  const write = (res: Http.ServerResponse, reply: Reply) => {
    if (res.destroyed || res.writableEnded) return
    res.statusCode = reply.status
    for (const [name, value] of Object.entries(reply.headers ?? {})) res.setHeader(name, value)
    if (reply.chunks !== undefined) {
      const chunks = reply.chunks
      const delay = reply.chunkDelayMs ?? 0
      if (delay <= 0) {
        for (const chunk of chunks) res.write(chunk)
        res.end()
        return
      }
      res.flushHeaders()
      let index = 0
      const next = () => {
        if (res.destroyed || closed) return
        const chunk = chunks[index++]
        if (chunk === undefined) {
          res.end()
          return
        }
        res.write(chunk)
        const timer = setTimeout(() => {
          timers.delete(timer)
          next()
        }, delay)
        timer.unref()
        timers.add(timer)
      }
      next()
    } else {
      res.end(reply.body)
    }
  }

  let self = { url: "" }

  const onRequest = async (req: Http.IncomingMessage, res: Http.ServerResponse) => {
    if (faults.current.refuse) {
      req.socket.destroy()
      return
    }
    const raw = await readBody(req)
    const target = new URL(req.url ?? "/", "http://stand-in")
    const headers = headerRecord(req.headers)
    const method = req.method ?? "GET"
    requests.push({
      method,
      path: target.pathname,
      url: `${target.pathname}${target.search}`,
      headers,
      body: recordedBody(raw, headers["content-type"]),
      at: Date.now()
    })
    if (faults.current.hang) {
      let counted = true
      const uncount = () => {
        if (counted) {
          counted = false
          hanging--
        }
      }
      hanging++
      // Emitted when the client goes away (nothing has been written yet).
      res.once("close", uncount)
      await new Promise<void>((resolve) => hung.add(resolve))
      uncount()
      // A request whose client went away while it hung is dropped: it never reached the "service". The pause gives a
      // disconnect that is already on its way (the client gave up just before the fault was lifted) a chance to
      // arrive; it is a courtesy, not a guarantee: a test that needs the drop waits for `hanging` to reach 0 first.
      await sleep(10)
      if (closed || res.destroyed || req.socket.destroyed) return
    }
    if (faults.current.latencyMs > 0) {
      await sleep(faults.current.latencyMs)
      if (closed) return
    }
    const { errorRate, errorStatus } = faults.current
    errorBudget += errorRate
    if (errorRate > 0 && errorBudget >= 1 - 1e-9) {
      errorBudget -= 1
      write(res, options.errorReply(errorStatus, "injected fault"))
      return
    }
    let reply: Reply
    try {
      reply = await options.handle({ method, path: target.pathname, query: target.searchParams, headers, raw }, self)
    } catch (error) {
      reply = options.errorReply(500, error instanceof Error ? error.message : String(error))
    }
    write(res, reply)
  }

  const server = Http.createServer((req, res) => {
    onRequest(req, res).catch(() => res.destroy())
  })
  server.keepAliveTimeout = 5_000
  server.on("connection", (socket: Socket) => {
    if (faults.current.refuse) {
      socket.destroy()
      return
    }
    sockets.add(socket)
    socket.once("close", () => sockets.delete(socket))
  })

  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      server.off("error", reject)
      const port = (server.address() as AddressInfo).port
      const url = `http://127.0.0.1:${port}`
      self = { url }
      let closing: Promise<void> | undefined
      resolve({
        url,
        port,
        faults,
        get requests() {
          return requests
        },
        get hanging() {
          return hanging
        },
        clearRequests() {
          requests.length = 0
        },
        close() {
          closing ??= new Promise<void>((done) => {
            closed = true
            for (const timer of timers) clearTimeout(timer)
            timers.clear()
            const waiting = [...hung]
            hung.clear()
            server.close(() => done())
            server.closeAllConnections()
            for (const socket of sockets) socket.destroy()
            for (const release of waiting) release()
          })
          return closing
        }
      })
    })
  })
}

/** @internal */
export const json = (status: number, body: unknown, headers?: Record<string, string>): Reply => ({
  status,
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(body)
})

/** @internal */
export const text = (status: number, body: string, contentType = "text/plain; charset=utf-8"): Reply => ({
  status,
  headers: { "content-type": contentType },
  body
})
