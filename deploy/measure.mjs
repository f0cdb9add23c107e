// Measures the bundled server's memory and CPU, the figures behind the Deployment's requests and limits.
//
//   cd /work/main && npx node deploy/measure.mjs          (needs apps/server/dist: `node apps/server/build.mjs`)
//
// It starts `node apps/server/dist/main.js` as the image does (NODE_ENV=production, embedded database and vector
// store in a scratch DATA_DIR, LOG_LEVEL=warning), then reads VmRSS / VmHWM of /proc/<pid>/status and the process's
// CPU time (utime + stime of /proc/<pid>/stat) at idle, after ingesting documents, and under 10 s of autocannon load
// on three routes (whoami, search, ask) at 127.0.0.1. RATE_LIMIT_DEFAULT=off so that the load reaches the handlers.
// MEASURE_DATABASE_URL=postgres://… measures with PostgreSQL instead (no PGlite worker in the process).
// Ends with SIGTERM and prints the exit code. Linux only (reads /proc).
import autocannon from "autocannon"
import { spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const seconds = Number(process.env.MEASURE_SECONDS ?? 10)
const key = "measure-key-0123456789abcdef"

const freePort = () =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })

const status = (pid) => {
  const text = readFileSync(`/proc/${pid}/status`, "utf8")
  const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN)
  return {
    rssMiB: kb("VmRSS") / 1024,
    hwmMiB: kb("VmHWM") / 1024,
    threads: Number(/^Threads:\s+(\d+)/m.exec(text)?.[1])
  }
}
const ticksPerSecond = 100 // USER_HZ on Linux
const cpuSeconds = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond // utime, stime (fields 14 and 15)
}
const mib = (n) => `${n.toFixed(0)} MiB`

const dataDir = mkdtempSync(join(tmpdir(), "ouroboros-measure-"))
const port = await freePort()
const base = `http://127.0.0.1:${port}`
const child = spawn(process.execPath, ["apps/server/dist/main.js"], {
  cwd: root,
  env: {
    PATH: process.env.PATH,
    NODE_ENV: "production",
    PORT: String(port),
    DATA_DIR: join(dataDir, "data"),
    LOG_LEVEL: "warning",
    RATE_LIMIT_DEFAULT: "off",
    OUROBOROS_API_KEYS: `bench:${key}`,
    // MEASURE_DATABASE_URL: PostgreSQL instead of the embedded PGlite (the production overlay's shape).
    ...(process.env.MEASURE_DATABASE_URL ? { DATABASE_URL: process.env.MEASURE_DATABASE_URL } : {})
  },
  stdio: ["ignore", "inherit", "inherit"]
})
const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })))

const deadline = Date.now() + 60_000
for (;;) {
  if (Date.now() > deadline) throw new Error("not ready within 60 s")
  const ok = await fetch(`${base}/health/ready`).then((r) => r.status === 200, () => false)
  if (ok) break
  await new Promise((r) => setTimeout(r, 100))
}

const sample = async (label, ms) => {
  let peak = 0
  const start = Date.now()
  while (Date.now() - start < ms) {
    peak = Math.max(peak, status(child.pid).rssMiB)
    await new Promise((r) => setTimeout(r, 100))
  }
  const s = status(child.pid)
  console.log(
    `${label}: RSS ${mib(s.rssMiB)} (peak while sampling ${mib(peak)}, high-water ${
      mib(s.hwmMiB)
    }), threads ${s.threads}`
  )
}

const headers = { "x-api-key": key, "content-type": "application/json" }
await sample("idle after ready (3 s)", 3000)

const words = "zebra equine stripe savanna herd graze migrate predator lion water river grass africa mane hoof".split(
  " "
)
const text = (i) => Array.from({ length: 300 }, (_, j) => words[(i * 7 + j * 13) % words.length]).join(" ")
const documents = Number(process.env.MEASURE_DOCUMENTS ?? 300)
const ingestCpu = cpuSeconds(child.pid)
const ingestStart = Date.now()
for (let i = 0; i < documents; i++) {
  const response = await fetch(`${base}/api/v1/documents`, {
    method: "POST",
    headers,
    body: JSON.stringify({ id: `doc-${i}`, text: text(i) })
  })
  if (response.status !== 201) throw new Error(`ingest ${i}: ${response.status} ${await response.text()}`)
}
const ingestWall = (Date.now() - ingestStart) / 1000
console.log(
  `ingested ${documents} documents (~2 KB each) in ${ingestWall.toFixed(1)} s, CPU ${
    ((cpuSeconds(child.pid) - ingestCpu) / ingestWall).toFixed(2)
  } cores`
)
await sample("after ingest (2 s)", 2000)

const load = async (title, options) => {
  const cpu0 = cpuSeconds(child.pid)
  let peak = 0
  const timer = setInterval(() => (peak = Math.max(peak, status(child.pid).rssMiB)), 100)
  const { path, ...rest } = options
  const result = await autocannon({ url: `${base}${path}`, duration: seconds, headers, ...rest })
  clearInterval(timer)
  const cpu = (cpuSeconds(child.pid) - cpu0) / seconds
  const codes = Object.entries(result.statusCodeStats ?? {}).map(([code, s]) => `${code}:${s.count}`).join(" ")
  console.log(
    `${title}: ${result.requests.average.toFixed(0)} req/s, p99 ${result.latency.p99} ms, statuses ${codes}, ` +
      `errors ${result.errors}, CPU ${cpu.toFixed(2)} cores, RSS peak ${mib(peak)}`
  )
}
await load(`GET /api/v1/whoami, 50 connections, ${seconds} s`, { connections: 50, path: "/api/v1/whoami" })
await load(`POST /api/v1/search, 20 connections, ${seconds} s`, {
  connections: 20,
  method: "POST",
  path: "/api/v1/search",
  body: JSON.stringify({ query: "striped equines of the savanna", limit: 5 })
})
await load(`POST /api/v1/ask, 20 connections, ${seconds} s`, {
  connections: 20,
  method: "POST",
  path: "/api/v1/ask",
  body: JSON.stringify({ question: "What do zebras look like?" })
})
await sample("after load (3 s)", 3000)

child.kill("SIGTERM")
const exit = await Promise.race([exited, new Promise((r) => setTimeout(() => r({ code: "timeout" }), 40_000))])
console.log(`SIGTERM: exit ${JSON.stringify(exit)}`)
if (exit.code === "timeout") child.kill("SIGKILL")
rmSync(dataDir, { recursive: true, force: true })
