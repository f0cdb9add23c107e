/**
 * HTTP: requests per second and server CPU per request of the bundled server (full stack: shutdown tracking,
 * correlation + server span, problem+json, API-key authentication, rate limiting) beside a bare Effect HttpApi
 * (`effect/http-api`, no request logger), express 5 + express-rate-limit and fastify 5 + @fastify/rate-limit serving
 * the same endpoint (`GET /api/v1/whoami` with an API key), each in its own process, loaded by autocannon on
 * 127.0.0.1 in the same run.
 * Also: time from process start to the first 200 of /health/ready for a fresh and an existing data directory.
 *
 * Run: `npm run bench -- http`
 */
import autocannon from "autocannon"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { cpuMicros } from "./internal/process.js"
import { benchKey, root, startBundled, type Started, stopChild } from "./internal/server.js"

// Run from bench/ under tsx, or from bench/dist as bundled by `npm run bench`.
const bundled = import.meta.url.endsWith(".js")
const seconds = Number(process.env.BENCH_SECONDS ?? 5)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 20)

const startChild = (args: ReadonlyArray<string>, env: Record<string, string>, portOf: (line: string) => number | undefined) =>
  new Promise<Started>((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, ...env, BENCH_KEY: benchKey }, stdio: ["ignore", "pipe", "pipe"] })
    let buffer = ""
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString()
      for (const line of buffer.split("\n")) {
        const port = portOf(line)
        if (port !== undefined) {
          child.stdout!.off("data", onData)
          resolve({ child, port })
          return
        }
      }
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", (d) => process.env.BENCH_DEBUG && process.stderr.write(d))
    child.once("exit", (code) => reject(new Error(`${args.join(" ")} exited with ${code}`)))
    setTimeout(() => reject(new Error(`${args.join(" ")} did not start`)), 60_000).unref()
  })

const load = async (port: number) => {
  const options = {
    url: `http://127.0.0.1:${port}/api/v1/whoami`,
    headers: { "x-api-key": benchKey },
    connections,
    duration: seconds
  }
  await autocannon({ ...options, duration: 1 }) // warm-up
  return autocannon(options)
}

const portFromLine = (line: string) => {
  const match = /PORT=(\d+)/.exec(line)
  return match ? Number(match[1]) : undefined
}

export default async function run(): Promise<void> {
  const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-bench-"))
  const startup: Array<Record<string, unknown>> = []
  const fresh = await startBundled(dataDir)
  startup.push({ case: "fresh DATA_DIR (template load, migrations)", "ready ms": Math.round(fresh.readyMillis) })
  await stopChild(fresh.child)
  const restart = await startBundled(dataDir)
  startup.push({ case: "existing DATA_DIR (restart)", "ready ms": Math.round(restart.readyMillis), goal: "< 1500" })

  const rows: Array<Record<string, unknown>> = []
  const measure = async (name: string, server: Started) => {
    const cpuBefore = await cpuMicros(server.child.pid!)
    const result = await load(server.port)
    const cpuAfter = await cpuMicros(server.child.pid!)
    const cpu = cpuAfter.user + cpuAfter.system - cpuBefore.user - cpuBefore.system
    const requests = result.requests.total
    rows.push({
      server: name,
      "req/s": Math.round(result.requests.average),
      "p99 ms": result.latency.p99,
      "CPU µs/req": Math.round(cpu / Math.max(1, requests)),
      non2xx: result.non2xx,
      errors: result.errors
    })
  }
  try {
    await measure("ouroboros (bundled, full stack)", restart)
  } finally {
    await stopChild(restart.child)
  }
  const peers: Array<[string, Array<string>]> = [
    [
      "bare Effect HttpApi (effect/http-api)",
      bundled
        ? [Path.join(root, "bench/dist/servers/bare-httpapi.js")]
        : ["--import", "tsx", Path.join(root, "bench/servers/bare-httpapi.ts")]
    ],
    ["express 5 + express-rate-limit", [Path.join(root, "bench/servers/express.mjs")]],
    ["fastify 5 + @fastify/rate-limit", [Path.join(root, "bench/servers/fastify.mjs")]]
  ]
  for (const [name, args] of peers) {
    const server = await startChild(args, {}, portFromLine)
    try {
      await measure(name, server)
    } finally {
      await stopChild(server.child)
    }
  }
  Fs.rmSync(dataDir, { recursive: true, force: true })
  const bare = rows.find((r) => String(r.server).startsWith("bare"))
  const ours = rows[0]
  console.log(`\nHTTP: ${connections} connections, ${seconds} s per server, GET /api/v1/whoami with an API key`)
  console.table(rows)
  if (bare && ours) {
    console.log(
      `full stack keeps ${Math.round((Number(ours["req/s"]) / Number(bare["req/s"])) * 100)}% of the bare HttpApi throughput (goal: at least 70%)`
    )
  }
  console.log("\nStartup: process start to the first 200 of /health/ready")
  console.table(startup)
}
