/**
 * HTTP: requests per second and server CPU per request of the bundled server (`apps/server/dist/main.js`, the full
 * stack: shutdown tracking → correlation + server span → problem+json → load shedding → rate limits → concurrency →
 * body limit → HttpApi security middleware → handler) beside a bare Effect HttpApi (`bench/servers/bare-httpapi.ts`),
 * express 5 + express-rate-limit and fastify 5 + @fastify/rate-limit, all serving `GET /api/v1/whoami` with an API key
 * in `X-API-Key`, behind a rate limit keyed by that key that no run reaches (the peers that have one) — and the time
 * from process start to the first 200 of `/health/ready`.
 *
 * The harness: each round starts a fresh process of every server, warms each up, then loads each in turn with
 * autocannon (in this process, never in a server's), the order rotating and reversing from round to round so that the
 * machine's drift hits all alike; each server's CPU time (user + system, all threads) is read from `/proc` around its
 * load. Goals are judged on the paired per-round values (ours against the peer of the same round) by
 * `bench/paired/stats.ts`: met only when the median of the worse half of at least 5 rounds meets the goal.
 *
 * Run: `npm run bench -- http`. Sections: `HTTP_BENCH=peers,startup` (the default), `ablation` (the full stack and
 * the same stack with one piece turned off, `bench/servers/stack.ts`, loaded over HTTP), `inprocess` (the same variants
 * without sockets: the Effect side's CPU per request; `HTTP_BENCH_INPROCESS` requests per run, default 50000),
 * `profile` (a CPU profile of the bundled server under load, summarized by module and function; kept in
 * `HTTP_BENCH_PROFILE_KEEP` when set). `HTTP_BENCH_ROUNDS` (default 5), `BENCH_SECONDS` (per load, default
 * 3), `HTTP_BENCH_WARMUP` (seconds, default 2), `BENCH_CONNECTIONS` (default 50), `HTTP_BENCH_STARTS` (startup runs per case, default 5),
 * `HTTP_BENCH_ABLATION=shutdown,span,…` (the pieces to take out, default all of them), `HTTP_BENCH_BUILDS=label=main.js;…`
 * (other builds of the server measured in the same rounds, e.g. an earlier commit's).
 */
import autocannon from "autocannon"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { awaitOk, cpuMicros, freePort, machineJiffies, track } from "./internal/process.js"
import * as Profile from "./internal/profile.js"
import { benchKey, root, startBundled, stopChild } from "./internal/server.js"
import { median, show, showVerdict, verdict, verdictLegend } from "./paired/stats.js"

// Run from bench/ under tsx, or from bench/dist as bundled by `npm run bench`.
const bundled = import.meta.url.endsWith(".js")
const seconds = Number(process.env.BENCH_SECONDS ?? 3)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50)
const rounds = Math.max(1, Number(process.env.HTTP_BENCH_ROUNDS ?? 5))
// Long enough for the JIT to settle: its compiler threads' CPU time counts in the process's, and a stack of many
// middlewares has more to compile than a bare server.
const warmup = Number(process.env.HTTP_BENCH_WARMUP ?? 2)
const path = "/api/v1/whoami"

/** A server process under test. */
interface Running {
  readonly pid: number
  readonly port: number
  readonly stop: () => Promise<void>
}

/** A contestant: how to start a fresh process of it. */
interface Contestant {
  readonly name: string
  readonly start: () => Promise<Running>
}

/** Starts `node args` and waits for the `PORT=n` line it prints once it listens. */
const startWithPortLine = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  new Promise<Running>((resolve, reject) => {
    const child = track(spawn(process.execPath, args, {
      env: { ...process.env, ...env, BENCH_KEY: benchKey },
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

/** The bundled server on its own data directory (kept across rounds: each round is a restart). */
const ours = (
  name = "ours: bundled server (full stack)",
  env: Record<string, string> = {},
  main?: string
): Contestant => {
  const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-bench-http-"))
  process.once("exit", () => Fs.rmSync(dataDir, { recursive: true, force: true }))
  return {
    name,
    start: async () => {
      const { child, port } = await startBundled(dataDir, env, main)
      return { pid: child.pid!, port, stop: () => stopChild(child) }
    }
  }
}

const bare: Contestant = { name: "bare Effect 4 HttpApi", start: () => startWithPortLine(script("bare-httpapi")) }
const express: Contestant = {
  name: "express 5 + express-rate-limit",
  start: () => startWithPortLine([Path.join(root, "bench/servers/express.mjs")])
}
const fastify: Contestant = {
  name: "fastify 5 + @fastify/rate-limit",
  start: () => startWithPortLine([Path.join(root, "bench/servers/fastify.mjs")])
}

/** One load of one server. */
interface Sample {
  readonly rps: number
  readonly p99: number
  /** Server CPU time per request, µs (user + system). */
  readonly cpu: number
  readonly non2xx: number
  readonly errors: number
  /** The share of the machine's CPU time the hypervisor gave to other guests meanwhile. */
  readonly steal: number
}

const cannon = (port: number, duration: number) =>
  autocannon({
    url: `http://127.0.0.1:${port}${path}`,
    headers: { "x-api-key": benchKey },
    connections,
    duration
  })

const measure = async (server: Running): Promise<Sample> => {
  const [cpuBefore, machineBefore] = await Promise.all([cpuMicros(server.pid), machineJiffies()])
  const result = await cannon(server.port, seconds)
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

/** The order of round `round`: rotated by the round, reversed every other round. */
const orderOf = <A>(items: ReadonlyArray<A>, round: number): Array<A> => {
  const rotated = items.map((_, i) => items[(i + round) % items.length]!)
  return round % 2 === 0 ? rotated : rotated.reverse()
}

/**
 * Runs `rounds` rounds over the contestants: fresh processes each round (started together), a warm-up of each,
 * then one measured load of each in the round's order. Returns each contestant's samples, round by round.
 */
const paired = async (contestants: ReadonlyArray<Contestant>, label: string): Promise<Array<Array<Sample>>> => {
  const samples: Array<Array<Sample>> = contestants.map(() => [])
  for (let round = 0; round < rounds; round++) {
    const started = Date.now()
    const servers = await Promise.all(contestants.map((c) => c.start()))
    try {
      const order = orderOf(contestants.map((_, i) => i), round)
      for (const i of order) await cannon(servers[i]!.port, warmup)
      for (const i of order) samples[i]![round] = await measure(servers[i]!)
    } finally {
      await Promise.all(servers.map((s) => s.stop()))
    }
    console.log(
      `${label} round ${round + 1}/${rounds} (${Math.round((Date.now() - started) / 1000)} s): ` +
        contestants.map((c, i) => `${c.name.split(":")[0]} ${Math.round(samples[i]![round]!.rps)}/s`).join(", ")
    )
  }
  return samples
}

const table = (contestants: ReadonlyArray<Contestant>, samples: ReadonlyArray<ReadonlyArray<Sample>>) =>
  contestants.map((c, i) => {
    const s = samples[i]!
    return {
      server: c.name,
      "req/s median (min–max)": show(s.map((x) => x.rps)),
      "CPU µs/req median (min–max)": show(s.map((x) => x.cpu), 1),
      "p99 ms": median(s.map((x) => x.p99)),
      non2xx: s.reduce((a, x) => a + x.non2xx, 0),
      errors: s.reduce((a, x) => a + x.errors, 0)
    }
  })

const stealLine = (samples: ReadonlyArray<ReadonlyArray<Sample>>) => {
  const steal = samples.flat().map((x) => x.steal)
  return `CPU time taken by the VM's host (steal) during the loads: median ${(median(steal) * 100).toFixed(1)}%, ` +
    `at most ${(Math.max(...steal) * 100).toFixed(1)}%`
}

const peers = async () => {
  // `HTTP_BENCH_BUILDS=label=path/to/main.js;label=…`: other builds of the server (an earlier commit's, say), measured
  // in the same rounds beside ours and the peers.
  const builds = (process.env.HTTP_BENCH_BUILDS ?? "").split(";").filter((b) => b.includes("=")).map((b) => {
    const at = b.indexOf("=")
    return ours(`${b.slice(0, at)}: ${b.slice(at + 1)}`, {}, Path.resolve(b.slice(at + 1)))
  })
  const contestants = [ours(), bare, express, fastify, ...builds]
  const samples = await paired(contestants, "peers")
  const [o, b, e, f] = samples as [Array<Sample>, Array<Sample>, Array<Sample>, Array<Sample>]
  console.log(
    `\nHTTP, GET ${path} with an API key: ${rounds} rounds, fresh processes each round, ${connections} connections, ` +
      `${seconds} s per server per round (after ${warmup} s of warm-up), autocannon in the bench process`
  )
  console.table(table(contestants, samples))
  const ofBare = (xs: ReadonlyArray<Sample>) => xs.map((x, i) => x.rps / b[i]!.rps)
  const ofExpress = (xs: ReadonlyArray<Sample>) => xs.map((x, i) => x.rps / e[i]!.rps)
  const cpuOfFastify = (xs: ReadonlyArray<Sample>) => xs.map((x, i) => x.cpu / f[i]!.cpu)
  const cpuOfBare = (xs: ReadonlyArray<Sample>) => xs.map((x, i) => x.cpu / b[i]!.cpu)
  const percent = (x: number) => `${(x * 100).toFixed(0)}%`
  const times = (x: number) => `${x.toFixed(2)}×`
  const goals = (label: string, xs: ReadonlyArray<Sample>) => [
    {
      server: label,
      goal: "req/s ≥ 80% of bare Effect 4 HttpApi",
      "paired ratio median (min–max)": show(ofBare(xs).map((x) => x * 100), 0, "%"),
      verdict: showVerdict(verdict(ofBare(xs), (x) => x >= 0.8, "higher"), percent)
    },
    {
      server: label,
      goal: "req/s ≥ 2× express + express-rate-limit",
      "paired ratio median (min–max)": show(ofExpress(xs), 2, "×"),
      verdict: showVerdict(verdict(ofExpress(xs), (x) => x >= 2, "higher"), times)
    },
    {
      server: label,
      goal: "CPU/request ≤ 3× fastify + @fastify/rate-limit",
      "paired ratio median (min–max)": show(cpuOfFastify(xs), 2, "×"),
      verdict: showVerdict(verdict(cpuOfFastify(xs), (x) => x <= 3, "lower"), times)
    },
    {
      server: label,
      goal: "(information) CPU/request / bare's",
      "paired ratio median (min–max)": show(cpuOfBare(xs), 2, "×"),
      verdict: "-"
    }
  ]
  console.table([
    ...goals("ours", o),
    ...builds.flatMap((build, i) => goals(build.name.split(":")[0]!, samples[4 + i]!))
  ])
  console.log(verdictLegend)
  console.log(stealLine(samples))
}

/** The pieces of the stack that the ablation takes out one at a time (see bench/servers/stack.ts). */
const pieces = [
  "server",
  "shutdown",
  "correlation",
  "span",
  "problem",
  "shed",
  "rate",
  "concurrency",
  "body",
  "json",
  "auth",
  "router"
] as const

const ablation = async () => {
  const wanted = (process.env.HTTP_BENCH_ABLATION ?? pieces.join(",")).split(",").filter((p) => p !== "")
  // The bundled server's handler groups capture about 40 services; the stack's routes get as many.
  const stack = (off: string): Contestant => ({
    name: off === "" ? "stack (all on)" : `stack − ${off}`,
    start: () =>
      startWithPortLine(script("stack"), { STACK_OFF: off, STACK_PAD: "40", RATE_LIMIT_DEFAULT: "1000000000/1m" })
  })
  const contestants = [stack(""), ...wanted.map(stack), bare]
  const samples = await paired(contestants, "ablation")
  const full = samples[0]!
  console.log(
    `\nAblation, GET ${path}: the stack of bench/servers/stack.ts with one piece taken out; ${rounds} rounds, ` +
      `${connections} connections, ${seconds} s each`
  )
  console.table(contestants.map((c, i) => {
    const s = samples[i]!
    const saved = s.map((x, r) => full[r]!.cpu - x.cpu)
    return {
      server: c.name,
      "req/s median (min–max)": show(s.map((x) => x.rps)),
      "CPU µs/req median (min–max)": show(s.map((x) => x.cpu), 1),
      "CPU saved µs/req (paired) median (min–max)": i === 0 ? "-" : show(saved, 1),
      non2xx: s.reduce((a, x) => a + x.non2xx, 0)
    }
  }))
  console.log(stealLine(samples))
}

/**
 * The Effect side of the request path alone: each variant of the stack (all on, then one piece off at a time, then
 * everything off) runs `HTTP_BENCH_INPROCESS` requests in its own process without sockets (`STACK_INPROCESS`, see
 * bench/servers/stack.ts), rounds alternating; CPU per request. Free of the load generator's noise, it tells pieces
 * apart that differ by a fraction of a microsecond.
 */
const inProcess = async () => {
  // Without sockets there is no Node server to swap: `server` is left out.
  const wanted = (process.env.HTTP_BENCH_ABLATION ?? pieces.join(",")).split(",").filter((p) =>
    p !== "" && p !== "server"
  )
  const n = String(Number(process.env.HTTP_BENCH_INPROCESS ?? 50_000))
  const variants: Array<readonly [string, Record<string, string>]> = [
    ["stack (all on)", {}],
    ...wanted.map((off) => [`stack − ${off}`, { STACK_OFF: off }] as const),
    ["stack − everything (bare-like)", { STACK_OFF: "router,auth,shutdown,correlation,span", STACK_PAD: "0" }]
  ]
  const run = (env: Record<string, string>) =>
    new Promise<number>((resolve, reject) => {
      const child = track(spawn(process.execPath, script("stack"), {
        env: {
          ...process.env,
          STACK_PAD: "40",
          RATE_LIMIT_DEFAULT: "1000000000/1m",
          BENCH_KEY: benchKey,
          ...env,
          STACK_INPROCESS: n
        },
        stdio: ["ignore", "pipe", "inherit"]
      }))
      let output = ""
      child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()))
      child.once("exit", (code) => {
        const match = /RESULT=(.*)/.exec(output)
        if (code !== 0 || match === null) return reject(new Error(`in-process run failed (${code})`))
        const result = JSON.parse(match[1]!) as { cpuNanos: number; failures: number }
        if (result.failures > 0) return reject(new Error(`${result.failures} requests failed`))
        resolve(result.cpuNanos / 1000)
      })
    })
  const samples: Array<Array<number>> = variants.map(() => [])
  for (let round = 0; round < rounds; round++) {
    for (const i of orderOf(variants.map((_, j) => j), round)) samples[i]!.push(await run(variants[i]![1]))
    console.log(`in-process round ${round + 1}/${rounds}`)
  }
  console.log(
    `\nIn process, GET ${path} without sockets: CPU µs per request of the Effect side, ${n} requests per run after as ` +
      `many to warm up, ${rounds} rounds`
  )
  console.table(variants.map(([name], i) => ({
    variant: name,
    "CPU µs/req median (min–max)": show(samples[i]!, 2),
    "saved µs/req (paired) median (min–max)": i === 0 ? "-" : show(samples[i]!.map((x, r) => samples[0]![r]! - x), 2)
  })))
}

const profile = async () => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-bench-prof-"))
  const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-bench-http-"))
  try {
    const { child, port } = await startBundled(dataDir, {
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --cpu-prof --cpu-prof-dir=${dir}`
    })
    await cannon(port, 1)
    const result = await cannon(port, Math.max(seconds, 5))
    await stopChild(child)
    const files = Fs.readdirSync(dir).map((f) => Path.join(dir, f))
    // The main thread's profile is the largest (the other is the embedded database's worker).
    const main = files.sort((a, b) => Fs.statSync(b).size - Fs.statSync(a).size)[0]
    if (main === undefined) throw new Error("no profile was written")
    // `HTTP_BENCH_PROFILE_KEEP=<dir>`: the profiles are copied there (the main thread's and the workers').
    const keep = process.env.HTTP_BENCH_PROFILE_KEEP
    if (keep !== undefined) {
      Fs.mkdirSync(keep, { recursive: true })
      for (const file of files) Fs.copyFileSync(file, Path.join(keep, Path.basename(file)))
    }
    console.log(`\nCPU profile of the bundled server: ${Math.round(result.requests.average)} req/s under load`)
    Profile.print(Profile.summarize(main), 40)
  } finally {
    Fs.rmSync(dir, { recursive: true, force: true })
    Fs.rmSync(dataDir, { recursive: true, force: true })
  }
}

/** Lines of the bundled server's start-up, by the time they arrived (ms since spawn). */
const milestones: ReadonlyArray<readonly [string, RegExp]> = [
  ["worker thread started (bundle loaded, layers building)", /"bench:worker"/],
  ["embedded PostgreSQL started", /embedded PostgreSQL started/],
  // Each package runs its own migrations: the last of them counts.
  ["all migrations done", /Migrations complete|ran \d+ migration/],
  ["vector projection caught up", /vector projection catching up/],
  ["listening", /Listening on/]
]
const lastOf = new Set(["all migrations done"])

// Printed by the bundled server's threads as they start, so that the milestones of the main thread and of the
// embedded database's worker are told apart.
const marker = `data:text/javascript,${
  encodeURIComponent(
    `import { isMainThread } from "node:worker_threads";` +
      `if (!isMainThread) process.stdout.write(JSON.stringify({ message: "bench:worker" }) + "\\n")`
  )
}`

/** One start of the bundled server on `dataDir`: ms from spawn to each milestone and to the first ready 200. */
const startOnce = async (dataDir: string, env: Record<string, string> = {}): Promise<Record<string, number>> => {
  const port = await freePort()
  const started = performance.now()
  const child = track(spawn(process.execPath, ["--import", marker, Path.join(root, "apps/server/dist/main.js")], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: "127.0.0.1",
      DATA_DIR: dataDir,
      LOG_LEVEL: "debug",
      OUROBOROS_API_KEYS: `bench:${benchKey}`,
      RATE_LIMIT_DEFAULT: "1000000000/1m",
      SHUTDOWN_DRAIN_MS: "0",
      ...env
    },
    stdio: ["ignore", "pipe", "ignore"]
  }))
  const times: Record<string, number> = {}
  let buffer = ""
  child.stdout!.on("data", (chunk: Buffer) => {
    const now = performance.now() - started
    buffer += chunk.toString()
    const lines = buffer.split("\n")
    buffer = lines.pop()!
    for (const line of lines) {
      for (const [name, pattern] of milestones) {
        if ((times[name] === undefined || lastOf.has(name)) && pattern.test(line)) times[name] = now
      }
    }
  })
  try {
    await awaitOk(`http://127.0.0.1:${port}/health/ready`, {
      gone: () => child.exitCode !== null || child.signalCode !== null,
      intervalMillis: 10
    })
    times.ready = performance.now() - started
  } finally {
    await stopChild(child)
  }
  return times
}

const startup = async () => {
  const runs = Math.max(1, Number(process.env.HTTP_BENCH_STARTS ?? 5))
  const restartDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-bench-start-"))
  const cacheDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-bench-cc-"))
  const cases: Array<{ name: string; goal: string; run: () => Promise<Record<string, number>> }> = [
    { name: "restart (existing DATA_DIR)", goal: "< 1000 ms", run: () => startOnce(restartDir) },
    {
      name: "restart, Node's compile cache on (proposal)",
      goal: "< 1000 ms",
      run: () => startOnce(restartDir, { NODE_COMPILE_CACHE: cacheDir })
    },
    {
      name: "fresh DATA_DIR (template load, migrations)",
      goal: "-",
      run: async () => {
        const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-bench-start-"))
        try {
          return await startOnce(dir)
        } finally {
          Fs.rmSync(dir, { recursive: true, force: true })
        }
      }
    }
  ]
  try {
    // One start to create the data directory and fill the compile cache, then the cases alternate run by run.
    await startOnce(restartDir, { NODE_COMPILE_CACHE: cacheDir })
    const results: Array<Array<Record<string, number>>> = cases.map(() => [])
    for (let i = 0; i < runs; i++) {
      for (const c of orderOf(cases.map((_, j) => j), i)) results[c]!.push(await cases[c]!.run())
    }
    console.log(
      `\nStartup: ms from spawn to each milestone and to the first 200 of /health/ready, ${runs} runs per case`
    )
    console.table(cases.map((c, i) => {
      const row: Record<string, string> = { case: c.name }
      for (const [name] of milestones) row[name] = show(results[i]!.map((r) => r[name] ?? NaN))
      row["ready ms median (min–max)"] = show(results[i]!.map((r) => r.ready!))
      row.goal = c.goal
      if (c.goal !== "-") {
        row.verdict = showVerdict(
          verdict(results[i]!.map((r) => r.ready!), (x) => x < 1000, "lower"),
          (x) => `${Math.round(x)} ms`
        )
      }
      return row
    }))
  } finally {
    Fs.rmSync(restartDir, { recursive: true, force: true })
    Fs.rmSync(cacheDir, { recursive: true, force: true })
  }
}

export default async function run(): Promise<void> {
  const sections = (process.env.HTTP_BENCH ?? "peers,startup").split(",")
  if (sections.includes("profile")) await profile()
  if (sections.includes("ablation")) await ablation()
  if (sections.includes("inprocess")) await inProcess()
  if (sections.includes("peers")) await peers()
  if (sections.includes("startup")) await startup()
}
