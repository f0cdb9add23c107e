// Creates the template of a fresh embedded data directory (see packages/sql/src/pglite-worker.mjs) if it is missing.
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Worker } from "node:worker_threads"

const template = process.env.OUROBOROS_PGLITE_TEMPLATE ?? join(tmpdir(), "ouroboros-pglite-0.5.14.tgz")
if (!existsSync(template)) {
  const dir = mkdtempSync(join(tmpdir(), "ouroboros-warm-"))
  const worker = new Worker(new URL("./dist/pglite-worker.mjs", import.meta.url), {
    workerData: { dataDir: dir, template }
  })
  await new Promise((resolve, reject) => {
    worker.on("message", (m) => {
      if (m.type === "ready") worker.postMessage({ type: "stop" })
      else if (m.type === "stopped") resolve()
      else if (m.type === "error") reject(new Error(m.message))
    })
    worker.on("error", reject)
  })
  await worker.terminate()
  rmSync(dir, { recursive: true, force: true })
}
