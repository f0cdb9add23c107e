// Runs PGlite (PostgreSQL compiled to WebAssembly) in a worker thread behind a PostgreSQL wire-protocol socket, so
// the main thread talks to it with the production driver (@effect/sql-pg) and its event loop never blocks on a query.
// Plain JavaScript on purpose: the same file is loaded from source in tests and copied next to the server bundle.
// Imported on a main thread (the template's tests do), it only exports `untar`.
//
// Protocol (see `internal/embedded.ts`, the parent side):
//   parent → worker  { type: "stop" }                         close the socket, then the database (a checkpoint)
//   worker → parent  { type: "ready", port, version }         the socket accepts connections
//                    { type: "error", stage, message }        the database did not start; `stage` says where:
//                                                             "load" (PGlite's modules), "open" (the data directory),
//                                                             "listen" (the socket)
//                    { type: "stopped", error? }              after "stop": closed (`error` if closing failed)
// A template that cannot be restored or written is not an error: the database starts without it.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs"
import * as Module from "node:module"
import { dirname, join, resolve, sep } from "node:path"
import { isMainThread, parentPort, workerData } from "node:worker_threads"
import { gunzipSync } from "node:zlib"

/**
 * Writes the files of a tar archive (ustar, as PGlite's `dumpDataDir` makes it) under `root`. `PG_VERSION` is written
 * last: a data directory without it is fresh, so one left half-written by a crash is written again on the next start.
 * The archive is checked whole before anything is written: an entry that would land outside `root`, a truncated
 * entry or a missing `PG_VERSION` fails it.
 */
export const untar = (tarball, root) => {
  const base = resolve(root)
  const text = (bytes) => {
    const end = bytes.indexOf(0)
    return Buffer.from(bytes.subarray(0, end === -1 ? bytes.length : end)).toString("utf8")
  }
  const entries = []
  let version
  for (let offset = 0; offset + 512 <= tarball.length;) {
    const header = tarball.subarray(offset, offset + 512)
    if (header[0] === 0) break
    const name = [text(header.subarray(345, 500)), text(header.subarray(0, 100))].filter((s) => s !== "").join("/")
    const size = parseInt(text(header.subarray(124, 136)).trim() || "0", 8)
    const type = String.fromCharCode(header[156])
    offset += 512
    if (!Number.isSafeInteger(size) || size < 0 || offset + size > tarball.length) {
      throw new Error(`template: entry ${name} is truncated`)
    }
    const target = resolve(base, `.${sep}${name}`)
    if (target !== base && !target.startsWith(base + sep)) {
      throw new Error(`template: entry outside the directory: ${name}`)
    }
    if (type === "5") entries.push({ target })
    else if (type === "0" || type === "\0") {
      const data = tarball.subarray(offset, offset + size)
      if (target === join(base, "PG_VERSION")) version = data
      else entries.push({ target, data })
    }
    offset += Math.ceil(size / 512) * 512
  }
  if (version === undefined) throw new Error("template: no PG_VERSION")
  const made = new Set([base])
  const directory = (path) => {
    if (!made.has(path)) {
      mkdirSync(path, { recursive: true })
      made.add(path)
    }
  }
  for (const { data, target } of entries) {
    if (data === undefined) directory(target)
    else {
      directory(dirname(target))
      writeFileSync(target, data)
    }
  }
  writeFileSync(join(base, "PG_VERSION"), version)
}

/** A failure of one stage of the start, reported to the parent as `{ type: "error", stage, message }`. */
class StageError extends Error {
  constructor(stage, cause) {
    super(String(cause?.message ?? cause), { cause })
    this.stage = stage
  }
}

/** A `CancelRequest` (PostgreSQL's frontend protocol): length 16, then this code, the process id and the secret. */
const cancelRequestCode = 80877102

const ignore = () => {}

/**
 * PGlite's socket server, serving one session at a time: a connection that arrives while another is open waits for
 * it to close instead of being refused. Above one session, the socket server interleaves protocol messages of
 * different clients, so it must stay at one; but refusing the second one broke the database for its clients. The
 * driver (`@effect/sql-pg`) replaces a connection whose statement was interrupted (a client that went away, a
 * timeout): it sends a `CancelRequest` on a side connection and opens the replacement while the old statement still
 * drains. Both were refused, and every statement failed ("Connection closed during startup") until the old one
 * closed. Now the replacement waits its turn, and a `CancelRequest` is answered at once by closing its connection
 * (PGlite cannot stop a running statement: it finishes, and the old connection closes after it).
 *
 * Reaches into the server's `handlers` and `handleConnection` (no public hook exists); `Worker.test.ts` exercises it
 * against the pinned version.
 */
const oneSessionAtATime = (PGLiteSocketServer) =>
  class extends PGLiteSocketServer {
    waiting = []

    // Every connection's first message is read first (a session's turn may come while it has sent nothing yet): a
    // cancel request is closed, anything else waits for its turn with what it sent put back.
    handleConnection(socket) {
      if (!this.active) return super.handleConnection(socket)
      // A connection reset before its turn only closes it (an 'error' without a listener would end the worker).
      socket.on("error", ignore)
      let head = Buffer.alloc(0)
      const onData = (chunk) => {
        head = Buffer.concat([head, chunk])
        if (head.length < 8) return
        socket.off("data", onData)
        socket.pause()
        if (head.readInt32BE(0) === 16 && head.readInt32BE(4) === cancelRequestCode) return socket.destroy()
        socket.unshift(head)
        const waiter = { socket, gone: () => (this.waiting = this.waiting.filter((w) => w !== waiter)) }
        socket.once("close", waiter.gone)
        this.waiting.push(waiter)
        this.admitNext()
      }
      socket.on("data", onData)
    }

    admitNext() {
      while (this.handlers.size === 0 && this.waiting.length > 0) {
        const { gone, socket } = this.waiting.shift()
        socket.off("close", gone)
        socket.off("error", ignore)
        if (socket.destroyed) continue
        super.handleConnection(socket)
        for (const handler of this.handlers) {
          // The server forgets a handler on these events; the next waiting connection goes in after that.
          const next = () => setImmediate(() => this.admitNext())
          handler.addEventListener("close", next)
          handler.addEventListener("error", next)
        }
        // Paused while it waited: the handler's own listener reads on from what was put back.
        socket.resume()
      }
    }

    async stop() {
      for (const { socket } of this.waiting.splice(0)) socket.destroy()
      return super.stop()
    }
  }

const inStage = async (stage, f) => {
  try {
    return await f()
  } catch (cause) {
    throw new StageError(stage, cause)
  }
}

/**
 * Writes a fresh data directory from the template (a gzip'd tarball of a freshly initialised one): a few hundred ms,
 * most of it creating ~950 files, instead of initdb (5 to 13 s here). Whether it was restored.
 */
const restoreTemplate = (dataDir, template) => {
  if (!template || !existsSync(template)) return false
  try {
    untar(gunzipSync(readFileSync(template)), dataDir)
    return true
  } catch {
    // A damaged template: initdb runs, and the template is written again.
    return false
  }
}

/** Writes the template from a database initdb has just created, for the next fresh directory (best effort). */
const saveTemplate = async (db, template) => {
  try {
    const dump = Buffer.from(await (await db.dumpDataDir("gzip")).arrayBuffer())
    const partial = `${template}.${process.pid}.partial`
    writeFileSync(partial, dump)
    renameSync(partial, template)
  } catch {
    // A template is an optimisation only.
  }
}

/**
 * The worker's body. `dataDir` is the data directory (it exists); `template` the template's path; `compileCache` the
 * process's compile cache directory, if it has one; `trace` the main thread's time origin when start-up milestones
 * are printed (OUROBOROS_STARTUP_TRACE), one JSON line each on stderr.
 */
const run = ({ compileCache, dataDir, template, trace }) => {
  const mark = (name) => {
    if (trace !== undefined) {
      const ms = Math.round((performance.timeOrigin + performance.now() - trace) * 10) / 10
      process.stderr.write(`${JSON.stringify({ startup: `sql worker: ${name}`, ms })}\n`)
    }
  }
  mark("thread started")
  let db
  let server

  const start = async () => {
    if (compileCache !== undefined) Module.enableCompileCache?.(compileCache)
    const { PGlite, PGLiteSocketServer } = await inStage("load", async () => ({
      PGlite: (await import("@electric-sql/pglite")).PGlite,
      PGLiteSocketServer: (await import("@electric-sql/pglite-socket")).PGLiteSocketServer
    }))
    mark("PGlite loaded")
    const fresh = !existsSync(join(dataDir, "PG_VERSION"))
    const restored = fresh && restoreTemplate(dataDir, template)
    if (restored) mark("template restored")
    // PostgreSQL's own words on why it did not start ("database files are incompatible with server"), for the error.
    const said = []
    const onStderr = (line) => {
      said.push(line)
      if (said.length > 5) said.shift()
      return false
    }
    db = await inStage("open", () =>
      // 32 MB of shared buffers instead of PostgreSQL's 128 MB: PGlite zeroes them at every start (tens of ms) and
      // they stay in the process's memory (about 110 MB less resident); the operating system's page cache holds the
      // rest.
      PGlite.create({ dataDir, onStderr, startParams: [...PGlite.defaultStartParams, "-c", "shared_buffers=32MB"] })
        .catch((error) => {
          throw said.length === 0 ? error : new Error(`${error?.message ?? error}: ${said.join(" ")}`, { cause: error })
        }))
    mark("PGlite started")
    if (fresh && !restored && template) await saveTemplate(db, template)
    return inStage("listen", async () => {
      // One session at a time (see `oneSessionAtATime`); `maxConnections` bounds the connections open at once, the
      // waiting ones included (the socket refuses more).
      server = new (oneSessionAtATime(PGLiteSocketServer))({ db, host: "127.0.0.1", port: 0, maxConnections: 64 })
      await server.start()
      const port = Number(server.getServerConn().split(":").pop())
      const [{ server_version }] = (await db.query("show server_version")).rows
      mark("listening")
      return { port, version: server_version }
    })
  }

  const started = start()

  // A stop that arrives while the database is still starting waits for the start to settle, so the database is
  // always closed whole: the socket first (no new statements), then PGlite, which waits for a running statement and
  // ends with PostgreSQL's shutdown checkpoint, the flush that makes the next start skip recovery.
  let stopping
  const stop = () =>
    stopping ??= started.catch(() => {}).then(async () => {
      try {
        await server?.stop()
      } finally {
        if (db !== undefined && !db.closed) await db.close()
      }
    })

  parentPort.on("message", (message) => {
    if (message?.type !== "stop") return
    stop().then(
      () => parentPort.postMessage({ type: "stopped" }),
      (error) => parentPort.postMessage({ type: "stopped", error: String(error?.message ?? error) })
    )
  })

  started.then(
    ({ port, version }) => {
      if (stopping === undefined) parentPort.postMessage({ type: "ready", port, version })
    },
    (error) =>
      parentPort.postMessage({
        type: "error",
        stage: error instanceof StageError ? error.stage : "open",
        message: String(error?.message ?? error)
      })
  )
}

if (!isMainThread && workerData?.dataDir !== undefined) run(workerData)
