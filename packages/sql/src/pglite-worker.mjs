// Runs PGlite (PostgreSQL compiled to WebAssembly) in a worker thread behind a PostgreSQL wire-protocol socket, so
// the main thread talks to it with the production driver (@effect/sql-pg) and its event loop never blocks on a query.
// Plain JavaScript on purpose: the same file is loaded from source in tests and copied next to the server bundle.
import { PGlite } from "@electric-sql/pglite"
import { PGLiteSocketServer } from "@electric-sql/pglite-socket"
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { parentPort, workerData } from "node:worker_threads"

// `template` is a gzip'd tarball of a freshly initialised data directory: a new directory is loaded from it (about
// 1.5 s) instead of running initdb (5 to 13 s here). Without one, the first initdb writes it for the next time.
const { dataDir, template } = workerData
let db
let server

const stop = async () => {
  try {
    await server?.stop()
  } finally {
    await db?.close()
  }
}

parentPort.on("message", (message) => {
  if (message?.type === "stop") {
    stop().then(
      () => parentPort.postMessage({ type: "stopped" }),
      (error) => parentPort.postMessage({ type: "stopped", error: String(error?.message ?? error) })
    )
  }
})

try {
  const fresh = !existsSync(join(dataDir, "PG_VERSION"))
  const loadDataDir = fresh && template && existsSync(template) ? new Blob([readFileSync(template)]) : undefined
  db = await PGlite.create(loadDataDir ? { dataDir, loadDataDir } : { dataDir })
  if (fresh && !loadDataDir && template) {
    try {
      const dump = Buffer.from(await (await db.dumpDataDir("gzip")).arrayBuffer())
      const partial = `${template}.${process.pid}.partial`
      writeFileSync(partial, dump)
      renameSync(partial, template)
    } catch {
      // A template is an optimisation only.
    }
  }
  // One connection only: above one, the socket server interleaves protocol messages of different clients.
  server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 1 })
  await server.start()
  const port = Number(server.getServerConn().split(":").pop())
  const [{ server_version }] = (await db.query("show server_version")).rows
  parentPort.postMessage({ type: "ready", port, version: server_version })
} catch (error) {
  parentPort.postMessage({ type: "error", message: String(error?.message ?? error) })
}
