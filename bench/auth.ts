/**
 * Authentication at the edge: requests per second and server CPU per request of the bundled server
 * (`apps/server/dist/main.js`, the full stack of issue 15: shutdown tracking → correlation + server span →
 * problem+json → version negotiation → authentication once (`@ouroboros/tenancy`) → flags' evaluation context → load
 * shedding → rate limit by principal → concurrency → requests-per-day quota → usage metering → body limit → handler)
 * serving `GET /api/v1/whoami`
 *
 * - with an API key (`X-API-Key`),
 * - with an HS256 JWT (`JWT_SECRET`),
 * - with an RS256 JWT (`JWT_JWKS_URL`, a JWKS served by this process),
 * - and, without authentication, the public `GET /health/live` of the same stack,
 *
 * beside a bare Effect HttpApi (`bench/servers/bare-httpapi.ts`: an API-key security middleware, nothing else) and
 * express 5 + express-rate-limit (`bench/servers/express.mjs`), both serving `GET /api/v1/whoami` with the key.
 *
 * The harness is the paired one of the HTTP benchmarks: each round starts a fresh process of every contestant, warms
 * each up, then loads each in turn with autocannon (in this process), the order rotating and reversing from round to
 * round; each server's CPU time is read from `/proc` around its load. Goals (issue 15), judged on the paired rounds by
 * `bench/paired/stats.ts` (met only when the median of the worse half of at least 5 rounds meets it):
 *
 * - the full stack with an API key keeps at least 80% of the bare HttpApi's requests per second;
 * - it is faster than express 5 + express-rate-limit.
 *
 * Run: `npm run bench -- auth` (or `npx tsx bench/auth.ts`). `AUTH_BENCH_ROUNDS` (default 5), `BENCH_SECONDS` (per
 * load, default 3), `AUTH_BENCH_WARMUP` (seconds, default 2), `BENCH_CONNECTIONS` (default 50).
 */
import autocannon from "autocannon"
import { exportJWK, generateKeyPair, SignJWT } from "jose"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { cpuMicros, machineJiffies, track } from "./internal/process.js"
import { benchKey, root, startBundled, stopChild } from "./internal/server.js"
import { median, show, showVerdict, verdict, verdictLegend } from "./paired/stats.js"

const bundled = import.meta.url.endsWith(".js")
const seconds = Number(process.env.BENCH_SECONDS ?? 3)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50)
const rounds = Math.max(1, Number(process.env.AUTH_BENCH_ROUNDS ?? 5))
const warmup = Number(process.env.AUTH_BENCH_WARMUP ?? 2)

interface Running {
  readonly pid: number
  readonly port: number
  readonly stop: () => Promise<void>
}

interface Contestant {
  readonly name: string
  readonly path: string
  readonly headers: Record<string, string>
  readonly start: () => Promise<Running>
}

const startWithPortLine = (args: ReadonlyArray<string>) =>
  new Promise<Running>((resolve, reject) => {
    const child = track(spawn(process.execPath, args, {
      env: { ...process.env, BENCH_KEY: benchKey },
      stdio: ["ignore", "pipe", process.env.BENCH_DEBUG ? "inherit" : "ignore"]
    }))
    let output = ""
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`${args.join(" ")} did not start`))
    }, 60_000)
    const onExit = (code: number | null) => {
      clearTimeout(timer)
      reject(new Error(`${args.join(" ")} exited with ${code}`))
    }
    child.once("exit", onExit)
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      const match = /PORT=(\d+)/.exec(output)
      if (match === null) return
      clearTimeout(timer)
      child.off("exit", onExit)
      child.stdout!.off("data", onData)
      child.stdout!.resume()
      resolve({ pid: child.pid!, port: Number(match[1]), stop: () => stopChild(child) })
    }
    child.stdout!.on("data", onData)
  })

const script = (name: string) =>
  bundled
    ? [Path.join(root, `bench/dist/servers/${name}.js`)]
    : ["--import", "tsx", Path.join(root, `bench/servers/${name}.ts`)]

/** The bundled server on a data directory of its own (kept across rounds: each round is a restart). */
const ours = (name: string, path: string, headers: Record<string, string>, env: Record<string, string>): Contestant => {
  const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-bench-auth-"))
  process.once("exit", () => Fs.rmSync(dataDir, { recursive: true, force: true }))
  return {
    name,
    path,
    headers,
    start: async () => {
      const { child, port } = await startBundled(dataDir, env)
      return { pid: child.pid!, port, stop: () => stopChild(child) }
    }
  }
}

interface Sample {
  readonly rps: number
  readonly p99: number
  readonly cpu: number
  readonly non2xx: number
  readonly errors: number
  readonly steal: number
}

const cannon = (contestant: Contestant, port: number, duration: number) =>
  autocannon({ url: `http://127.0.0.1:${port}${contestant.path}`, headers: contestant.headers, connections, duration })

const measure = async (contestant: Contestant, server: Running): Promise<Sample> => {
  const [cpuBefore, machineBefore] = await Promise.all([cpuMicros(server.pid), machineJiffies()])
  const result = await cannon(contestant, server.port, seconds)
  const [cpuAfter, machineAfter] = await Promise.all([cpuMicros(server.pid), machineJiffies()])
  const requests = Math.max(1, result.requests.total)
  return {
    rps: result.requests.average,
    p99: result.latency.p99,
    cpu: (cpuAfter.user + cpuAfter.system - cpuBefore.user - cpuBefore.system) / requests,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    steal: (machineAfter.steal - machineBefore.steal) / Math.max(1, machineAfter.total - machineBefore.total)
  }
}

const orderOf = <A>(items: ReadonlyArray<A>, round: number): Array<A> => {
  const rotated = items.map((_, i) => items[(i + round) % items.length]!)
  return round % 2 === 0 ? rotated : rotated.reverse()
}

const paired = async (contestants: ReadonlyArray<Contestant>): Promise<Array<Array<Sample>>> => {
  const samples: Array<Array<Sample>> = contestants.map(() => [])
  for (let round = 0; round < rounds; round++) {
    const started = Date.now()
    const servers = await Promise.all(contestants.map((c) => c.start()))
    try {
      const order = orderOf(contestants.map((_, i) => i), round)
      for (const i of order) await cannon(contestants[i]!, servers[i]!.port, warmup)
      for (const i of order) samples[i]![round] = await measure(contestants[i]!, servers[i]!)
    } finally {
      await Promise.all(servers.map((s) => s.stop()))
    }
    console.log(
      `round ${round + 1}/${rounds} (${Math.round((Date.now() - started) / 1000)} s): ` +
        contestants.map((c, i) => `${c.name} ${Math.round(samples[i]![round]!.rps)}/s`).join(", ")
    )
  }
  return samples
}

/** A JWKS endpoint for the RS256 contestant, in this process; closed when it exits. */
const jwks = async () => {
  const { privateKey, publicKey } = await generateKeyPair("RS256")
  const jwk = { ...(await exportJWK(publicKey)), kid: "bench", alg: "RS256", use: "sig" }
  const server = Http.createServer((_, res) => {
    res.writeHead(200, { "content-type": "application/json" })
    res.end(JSON.stringify({ keys: [jwk] }))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  server.unref()
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`
  const token = await new SignJWT({ tenant_id: "bench", roles: ["writer", "reader"] })
    .setProtectedHeader({ alg: "RS256", kid: "bench" })
    .setSubject("bench-user")
    .setIssuedAt()
    .setExpirationTime("2h")
    .sign(privateKey)
  return { url, token }
}

/** Runs the benchmark and prints its tables. */
const run = async (): Promise<void> => {
  const secret = "bench-jwt-secret-of-at-least-32-bytes!!"
  const hs256 = await new SignJWT({ tenant_id: "bench", roles: ["writer", "reader"] })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject("bench-user")
    .setIssuedAt()
    .setExpirationTime("2h")
    .sign(new TextEncoder().encode(secret))
  const rs256 = await jwks()
  const whoami = "/api/v1/whoami"
  const key = { "x-api-key": benchKey }
  const contestants: ReadonlyArray<Contestant> = [
    ours("ours: API key", whoami, key, {}),
    ours("ours: HS256 JWT", whoami, { authorization: `Bearer ${hs256}` }, { JWT_SECRET: secret }),
    ours("ours: RS256 JWT", whoami, { authorization: `Bearer ${rs256.token}` }, { JWT_JWKS_URL: rs256.url }),
    ours("ours: no authentication (GET /health/live)", "/health/live", {}, {}),
    {
      name: "bare Effect 4 HttpApi (API key)",
      path: whoami,
      headers: key,
      start: () => startWithPortLine(script("bare-httpapi"))
    },
    {
      name: "express 5 + express-rate-limit (API key)",
      path: whoami,
      headers: key,
      start: () => startWithPortLine([Path.join(root, "bench/servers/express.mjs")])
    }
  ]
  console.log(
    `${rounds} paired rounds of ${seconds} s per server (${warmup} s warm-up), ${connections} connections, ` +
      `${Os.cpus().length} CPUs`
  )
  const samples = await paired(contestants)
  console.table(contestants.map((c, i) => {
    const s = samples[i]!
    return {
      server: c.name,
      "req/s median (min–max)": show(s.map((x) => x.rps)),
      "CPU µs/req median (min–max)": show(s.map((x) => x.cpu), 1),
      "p99 ms": median(s.map((x) => x.p99)),
      non2xx: s.reduce((a, x) => a + x.non2xx, 0),
      errors: s.reduce((a, x) => a + x.errors, 0)
    }
  }))
  const steal = samples.flat().map((x) => x.steal)
  console.log(
    `CPU time taken by the VM's host (steal) during the loads: median ${(median(steal) * 100).toFixed(1)}%, ` +
      `at most ${(Math.max(...steal) * 100).toFixed(1)}%`
  )
  const rps = (i: number) => samples[i]!.map((x) => x.rps)
  const ratio = (a: number, b: number) => rps(a).map((x, round) => x / rps(b)[round]!)
  const bareShare = ratio(0, 4)
  const overExpress = ratio(0, 5)
  console.table([
    {
      goal: "full stack (API key) ≥ 80% of the bare HttpApi's req/s",
      "paired ratio median (min–max)": show(bareShare, 2),
      verdict: showVerdict(verdict(bareShare, (r) => r >= 0.8, "higher"), (r) => r.toFixed(2))
    },
    {
      goal: "full stack (API key) faster than express 5 + express-rate-limit",
      "paired ratio median (min–max)": show(overExpress, 2),
      verdict: showVerdict(verdict(overExpress, (r) => r > 1, "higher"), (r) => r.toFixed(2))
    },
    { goal: "HS256 JWT / API key", "paired ratio median (min–max)": show(ratio(1, 0), 2), verdict: "" },
    { goal: "RS256 JWT / API key", "paired ratio median (min–max)": show(ratio(2, 0), 2), verdict: "" },
    { goal: "no authentication (health) / API key", "paired ratio median (min–max)": show(ratio(3, 0), 2), verdict: "" }
  ])
  console.log(verdictLegend)
}

export default run

// `npx tsx bench/auth.ts` runs it on its own (`npm run bench -- auth` through bench/index.ts once it is listed there).
if (process.argv[1] !== undefined && /bench[\\/]auth\.ts$/.test(process.argv[1])) {
  await run()
  process.exit(0)
}
