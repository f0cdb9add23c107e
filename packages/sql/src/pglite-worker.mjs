// Runs PGlite (PostgreSQL compiled to WebAssembly) in a worker thread behind a PostgreSQL wire-protocol socket, so
// the main thread talks to it with the production driver (@effect/sql-pg) and its event loop never blocks on a query.
// Plain JavaScript on purpose: the same file is loaded from source in tests and copied next to the server bundle.
import { PGlite } from "@electric-sql/pglite"
import { PGLiteSocketServer } from "@electric-sql/pglite-socket"
import { parentPort, workerData } from "node:worker_threads"

const { dataDir } = workerData
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
  db = await PGlite.create({ dataDir })
  // One connection only: above one, the socket server interleaves protocol messages of different clients.
  server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 1 })
  await server.start()
  const port = Number(server.getServerConn().split(":").pop())
  const [{ server_version }] = (await db.query("show server_version")).rows
  parentPort.postMessage({ type: "ready", port, version: server_version })
} catch (error) {
  parentPort.postMessage({ type: "error", message: String(error?.message ?? error) })
}
