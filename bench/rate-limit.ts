/**
 * Rate limiting: decisions per second in memory (ours vs rate-limiter-flexible's RateLimiterMemory, 1 key and 100k
 * keys), decisions per second and p99 through Redis (ours vs RateLimiterRedis on ioredis, concurrency 1 and 50), and
 * HTTP requests per second with the rate-limit middleware on and off (autocannon) of two servers: a minimal HttpApi
 * server (section `http`: the limiter against almost nothing else) and the bundled server (section `server`).
 *
 * Run: `npm run bench -- rate-limit` (bundled; from source: `node --import tsx --input-type=module -e
 * 'import("./bench/rate-limit.ts").then(m => m.default())'`; a CommonJS `-e` defines a global `__filename` that
 * @effect/platform-node mistakes for its own).
 * `RATE_LIMIT_BENCH=memory,redis,http,server` picks sections; `RATE_LIMIT_BENCH_AA=1` runs the HTTP sections off
 * against off (an A/A control that shows the machine's noise); `RATE_LIMIT_BENCH_PAIRS=n` sets how many pairs of
 * server processes each HTTP section measures (default 4).
 */
import { RateLimiter, RateLimiterHttp, RateLimiterMemory } from "@ouroboros/rate-limit"
import { Services } from "@ouroboros/testkit"
import autocannon from "autocannon"
import { Duration, Effect, Layer, ManagedRuntime } from "effect"
import { HttpRouter, type HttpServerResponse } from "effect/http"
import { RateLimiter as EffectRateLimiter } from "effect/persistence"
import { Redis } from "ioredis"
import { spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { RateLimiterMemory as FlexMemory, RateLimiterRedis as FlexRedis } from "rate-limiter-flexible"
import { startPingServer } from "./internal/ping.js"
import { cpuMicros, machineJiffies } from "./internal/process.js"
import { benchKey, startBundled, stopChild } from "./internal/server.js"

const HUGE = 1_000_000_000
const policy = RateLimiter.Policy.make({ name: "bench", limit: HUGE, window: 60_000, scope: ["api-key"] })

const keysOf = (n: number): ReadonlyArray<string> => Array.from({ length: n }, (_, i) => `key-${i}`)

const perSecond = (n: number, millis: number) => Math.round((n * 1000) / millis)
const fmt = (n: number) => n.toLocaleString("en-US")

const median = (xs: ReadonlyArray<number>) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!

/**
 * Decisions per second of each contestant: a warm-up each, then 7 rounds in which every contestant runs `n`
 * decisions in turn (so that the machine's drift hits all alike); the median round of each.
 */
const rates = async (n: number, contestants: ReadonlyArray<(n: number) => Promise<void>>) => {
  for (const run of contestants) await run(Math.min(n, 50_000))
  const rounds: Array<Array<number>> = contestants.map(() => [])
  for (let round = 0; round < 7; round++) {
    for (let c = 0; c < contestants.length; c++) {
      const start = performance.now()
      await contestants[c]!(n)
      rounds[c]!.push(perSecond(n, performance.now() - start))
    }
  }
  return rounds.map(median)
}

const memory = async () => {
  const rows: Array<Record<string, string>> = []
  for (const [label, keyCount, n] of [["1 key", 1, 300_000], ["100k keys", 100_000, 300_000]] as const) {
    const keys = keysOf(keyCount)
    // Built as an application builds it (the layer captures the clock of the fiber that builds it).
    const ours = Effect.runSync(
      Effect.provide(Effect.service(RateLimiter.RateLimiter), RateLimiter.layerMemory({ policies: [policy] }))
    )
    const subjects = keys.map((apiKey) => ({ apiKey, client: "127.0.0.1", endpoint: "GET /api/v1/ping" }))
    const decideUnsafe = ours.decideUnsafe!
    const peer = new FlexMemory({ points: HUGE, duration: 60 })
    // Effect's own limiter (`effect/persistence`, on its own memory store), for what one decision costs through an
    // Effect API in the same fiber loop.
    const effectLimiter = Effect.runSync(Effect.provide(EffectRateLimiter.make, EffectRateLimiter.layerStoreMemory))
    const effectKeys = keys.map((key) => ({
      key,
      limit: HUGE,
      window: Duration.seconds(60),
      algorithm: "token-bucket" as const,
      onExceeded: "fail" as const
    }))
    const [inFiber, sync, flexible, flexibleInFiber, effectPersistence] = await rates(n, [
      (count) =>
        Effect.runPromise(Effect.gen(function*() {
          for (let i = 0; i < count; i++) yield* ours.decide(subjects[i % keyCount]!)
        })),
      async (count) => {
        for (let i = 0; i < count; i++) decideUnsafe(subjects[i % keyCount]!, Date.now())
      },
      async (count) => {
        for (let i = 0; i < count; i++) await peer.consume(keys[i % keyCount]!)
      },
      // The peer as an Effect application calls a Promise API: the same fiber loop as ours.
      (count) =>
        Effect.runPromise(Effect.gen(function*() {
          for (let i = 0; i < count; i++) yield* Effect.tryPromise(() => peer.consume(keys[i % keyCount]!))
        })),
      (count) =>
        Effect.runPromise(Effect.gen(function*() {
          for (let i = 0; i < count; i++) yield* effectLimiter.consume(effectKeys[i % keyCount]!)
        }))
    ]) as [number, number, number, number, number]
    rows.push({
      keys: label,
      "ours decisions/s (one fiber)": fmt(inFiber),
      "ours decisions/s (decideUnsafe)": fmt(sync),
      "RateLimiterMemory decisions/s": fmt(flexible),
      "RateLimiterMemory decisions/s (one fiber)": fmt(flexibleInFiber),
      "ours / peer (decideUnsafe)": (sync / flexible).toFixed(2),
      "ours / peer (fiber)": (inFiber / flexible).toFixed(2),
      "ours / peer (both in a fiber)": (inFiber / flexibleInFiber).toFixed(2),
      "effect/persistence RateLimiter decisions/s (one fiber)": fmt(effectPersistence)
    })
  }
  console.log("\nIn-memory decisions (all admitted; one policy; medians of 7 alternating rounds)")
  console.table(rows)
}

const percentile = (sorted: Float64Array, p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!

/** Runs `concurrency` loops for `millis`, each timing `op`; returns ops/s and p99 latency. */
const load = async (concurrency: number, millis: number, op: (i: number) => Promise<unknown>) => {
  const latencies: Array<number> = []
  let count = 0
  const deadline = performance.now() + millis
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < deadline) {
      const i = count++
      const start = performance.now()
      await op(i)
      latencies.push(performance.now() - start)
    }
  }))
  const sorted = Float64Array.from(latencies).sort()
  return { perSecond: perSecond(latencies.length, millis), p99: percentile(sorted, 0.99) }
}

/** Like `load`, for an Effect: `concurrency` fibers in one runtime, as a server runs them. */
const loadEffect = <E>(
  runtime: ManagedRuntime.ManagedRuntime<never, never>,
  concurrency: number,
  millis: number,
  op: (i: number) => Effect.Effect<unknown, E>
) =>
  runtime.runPromise(Effect.suspend(() => {
    const latencies: Array<number> = []
    let count = 0
    const deadline = performance.now() + millis
    const worker = Effect.gen(function*() {
      while (performance.now() < deadline) {
        const start = performance.now()
        yield* op(count++)
        latencies.push(performance.now() - start)
      }
    })
    return Effect.map(
      Effect.forEach(Array.from({ length: concurrency }), () => worker, { concurrency: "unbounded", discard: true }),
      () => {
        const sorted = Float64Array.from(latencies).sort()
        return { perSecond: perSecond(latencies.length, millis), p99: percentile(sorted, 0.99) }
      }
    )
  }))

const redis = async () => {
  if (!(await Services.redis())) {
    console.log("\nRedis: not reachable at", Services.redisUrl, "— skipped")
    return
  }
  const prefix = `bench:rl:${randomUUID()}:`
  const keys = keysOf(1000)
  // As the server builds it: the Redis store behind the fail-open fallback.
  const runtime = ManagedRuntime.make(RateLimiter.layerRedis({ url: Services.redisUrl, prefix, policies: [policy] }))
  const ours = await runtime.runPromise(RateLimiter.RateLimiter)
  const client = new Redis(Services.redisUrl)
  const peer = new FlexRedis({ storeClient: client, points: HUGE, duration: 60, keyPrefix: `${prefix}flex` })
  const subjects = keys.map((apiKey) => ({ apiKey, client: "127.0.0.1", endpoint: "GET /api/v1/ping" }))
  const rows: Array<Record<string, string>> = []
  try {
    // Rounds alternate between ours and the peer so that the machine's drift (load, CPU frequency, wake-up latency of
    // loopback round trips) hits both alike; the medians of the rounds are reported.
    for (const concurrency of [1, 50]) {
      const contestants = [
        (millis: number) => loadEffect(runtime, concurrency, millis, (i) => ours.decide(subjects[i % 1000]!)),
        (millis: number) => load(concurrency, millis, (i) => peer.consume(keys[i % 1000]!)),
        // The peer as an Effect application calls a Promise API: the same fibers as ours.
        (millis: number) =>
          loadEffect(runtime, concurrency, millis, (i) => Effect.tryPromise(() => peer.consume(keys[i % 1000]!)))
      ]
      for (const run of contestants) await run(500)
      const rounds = contestants.map(() => [] as Array<{ perSecond: number; p99: number }>)
      for (let round = 0; round < 6; round++) {
        for (let c = 0; c < contestants.length; c++) rounds[c]!.push(await contestants[c]!(1000))
      }
      const [a, b, e] = rounds.map((r) => ({
        perSecond: median(r.map((x) => x.perSecond)),
        p99: median(r.map((x) => x.p99))
      })) as [{ perSecond: number; p99: number }, { perSecond: number; p99: number }, { perSecond: number; p99: number }]
      rows.push({
        concurrency: String(concurrency),
        "ours decisions/s": fmt(a.perSecond),
        "ours p99 ms": a.p99.toFixed(2),
        "RateLimiterRedis decisions/s": fmt(b.perSecond),
        "RateLimiterRedis p99 ms": b.p99.toFixed(2),
        "RateLimiterRedis in fibers decisions/s": fmt(e.perSecond),
        "RateLimiterRedis in fibers p99 ms": e.p99.toFixed(2),
        "ours / peer": (a.perSecond / b.perSecond).toFixed(2),
        "ours / peer (both in fibers)": (a.perSecond / e.perSecond).toFixed(2)
      })
    }
  } finally {
    const cleaner = new Redis(Services.redisUrl)
    let cursor = "0"
    do {
      const [next, found] = await cleaner.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
      cursor = next
      if (found.length > 0) await cleaner.del(...found)
    } while (cursor !== "0")
    await cleaner.quit()
    await client.quit()
    await runtime.dispose()
  }
  console.log(
    "\nRedis decisions (1000 keys; medians of 6 alternating 1 s rounds; ours: Lua on Redis TIME, batched per tick;" +
      " 'in fibers': the peer called through Effect.tryPromise from the same fibers as ours)"
  )
  console.table(rows)
}

/**
 * Serves the ping API with `middleware` as the router's global middleware (where the bundled server runs its limits)
 * and returns the port and a stop function.
 */
const startServer = (middleware: RateLimiterHttp.Middleware) =>
  startPingServer((app) =>
    HttpRouter.serve(
      app.pipe(Layer.provide(HttpRouter.middleware(
        // The router's types ask a global middleware to pass on the errors it does not know: this one passes them on.
        (effect: Effect.Effect<HttpServerResponse.HttpServerResponse, any>) =>
          middleware(effect) as Effect.Effect<HttpServerResponse.HttpServerResponse, any>,
        { global: true }
      ))),
      { disableLogger: true, disableListenLog: true }
    )
  )

/** The server side of the minimal-server benchmark, run in a child process so autocannon does not share its loop. */
export const serveForBench = async (mode: "on" | "off"): Promise<void> => {
  const limiter = RateLimiter.makeUnsafe(RateLimiterMemory.makeUnsafe(), { policies: [policy] })
  // "off" still passes a (no-op) middleware: any middleware changes how the server runs a request, and a real server
  // has several; this isolates the limiter's own cost.
  const middleware: RateLimiterHttp.Middleware = mode === "off" ? (app) => app : await Effect.runPromise(
    RateLimiterHttp.make().pipe(Effect.provideService(RateLimiter.RateLimiter, limiter))
  )
  const server = await startServer(middleware)
  console.log(`PORT=${server.port}`)
  // Stop when the parent goes away (the parent stops it with SIGTERM).
  process.stdin.resume()
  process.stdin.once("end", () => void server.stop().then(() => process.exit(0)))
}

/** A server process of the HTTP sections. */
interface Running {
  readonly pid: number
  readonly port: number
  readonly stop: () => Promise<void>
}

const spawnPingServer = (mode: "on" | "off") =>
  new Promise<Running>((resolve, reject) => {
    // Bundled (`npm run bench`), the child loads this same bundle; from the TypeScript source it needs tsx. The script
    // is evaluated as a module: a CommonJS eval defines a global `__filename` ("[eval]"), which
    // @effect/platform-node takes for its own module's path.
    const child = spawn(process.execPath, [
      ...(import.meta.url.endsWith(".ts") ? ["--import", "tsx"] : []),
      "--input-type=module",
      "-e",
      `import(${JSON.stringify(import.meta.url)}).then((m) => m.serveForBench(${JSON.stringify(mode)}))`
    ], { stdio: ["pipe", "pipe", "inherit"] })
    let output = ""
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error("bench server did not start"))
    }, 30_000)
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      const match = /PORT=(\d+)/.exec(output)
      if (match === null) return
      clearTimeout(timer)
      child.stdout!.off("data", onData)
      child.stdout!.resume()
      resolve({
        pid: child.pid!,
        port: Number(match[1]),
        stop: () => stopChild(child)
      })
    }
    child.stdout!.on("data", onData)
  })

/** The two servers the HTTP sections compare, each started with the limiter on and off. */
interface Target {
  readonly title: string
  readonly path: string
  /** Starts the server in `slot` (the sample it is measured as) with the limiter `mode`. */
  readonly start: (slot: "on" | "off", mode: "on" | "off") => Promise<Running>
}

const minimalServer: Target = {
  title: "minimal HttpApi server, GET /api/v1/ping (off = a no-op middleware)",
  path: "/api/v1/ping",
  start: (_slot, mode) => spawnPingServer(mode)
}

/** The bundled server, limits on (a default policy no run reaches) or off (`RATE_LIMIT_DEFAULT=off`). */
const bundledServer = (): Target => {
  const dataDirs = {
    on: Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-bench-rl-")),
    off: Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-bench-rl-"))
  }
  process.once("exit", () => {
    for (const dir of Object.values(dataDirs)) Fs.rmSync(dir, { recursive: true, force: true })
  })
  return {
    title: "bundled server (full stack), GET /api/v1/whoami (off = RATE_LIMIT_DEFAULT=off)",
    path: "/api/v1/whoami",
    start: async (slot, mode) => {
      // On: startBundled's default policy, which no run reaches.
      const { child, port } = await startBundled(dataDirs[slot], mode === "on" ? {} : { RATE_LIMIT_DEFAULT: "off" })
      return { pid: child.pid!, port, stop: () => stopChild(child) }
    }
  }
}

const cannon = (port: number, path: string, seconds: number) =>
  autocannon({
    url: `http://127.0.0.1:${port}${path}`,
    connections: 50,
    duration: seconds,
    headers: { "x-api-key": benchKey }
  })

const http = async (target: Target) => {
  // Two servers side by side in child processes, one with the limiter and one without; autocannon alternates between
  // them in short bursts so that the noise of a shared machine hits both alike. Each process also has its own luck (the
  // JIT's choices, where its heap lands): an A/A run of one pair showed one "off" process 5% slower than the other.
  // So the pair is replaced several times, the order of spawning alternating, and the overhead is the median of all
  // paired ratios.
  const pairs = Number(process.env.RATE_LIMIT_BENCH_PAIRS ?? 4)
  const roundsPerPair = 3
  const seconds = 2
  const onMode = process.env.RATE_LIMIT_BENCH_AA === "1" ? "off" : "on"
  const samples: Record<
    "off" | "on",
    Array<{ rps: number; p99: number; non2xx: number; cpu: number; user: number; system: number }>
  > = {
    off: [],
    on: []
  }
  const fields: Record<"off" | "on", string> = { off: "(none)", on: "(none)" }
  // The share of the machine's CPU time the hypervisor gave to other guests during each round: this machine is a VM
  // on a shared host, and rounds with much steal are the noisy ones.
  const steal: Array<number> = []
  for (let pair = 0; pair < pairs; pair++) {
    const [off, on] = pair % 2 === 0
      ? await Promise.all([target.start("off", "off"), target.start("on", onMode)])
      : await Promise.all([target.start("on", onMode), target.start("off", "off")]).then(([on, off]) => [off, on] as const)
    try {
      await cannon(off.port, target.path, 1)
      await cannon(on.port, target.path, 1)
      for (let round = 0; round < roundsPerPair; round++) {
        const order = (pair + round) % 2 === 0
          ? [["off", off], ["on", on]] as const
          : [["on", on], ["off", off]] as const
        for (const [mode, server] of order) {
          const [cpuBefore, machineBefore] = await Promise.all([cpuMicros(server.pid), machineJiffies()])
          const result = await cannon(server.port, target.path, seconds)
          const [cpuAfter, machineAfter] = await Promise.all([cpuMicros(server.pid), machineJiffies()])
          steal.push((machineAfter.steal - machineBefore.steal) / Math.max(1, machineAfter.total - machineBefore.total))
          const user = (cpuAfter.user - cpuBefore.user) / result.requests.total
          const system = (cpuAfter.system - cpuBefore.system) / result.requests.total
          samples[mode].push({
            rps: result.requests.average,
            p99: result.latency.p99,
            non2xx: result.non2xx,
            cpu: user + system,
            user,
            system
          })
        }
      }
      const fieldOf = async (port: number) => {
        const probe = await fetch(`http://127.0.0.1:${port}${target.path}`, { headers: { "x-api-key": benchKey } })
        await probe.arrayBuffer()
        return probe.headers.get("ratelimit") ?? "(none)"
      }
      fields.off = await fieldOf(off.port)
      fields.on = await fieldOf(on.port)
    } finally {
      await Promise.all([off.stop(), on.stop()])
    }
  }
  const row = (mode: "off" | "on") => ({
    limiter: mode,
    "median req/s": fmt(Math.round(median(samples[mode].map((x) => x.rps)))),
    "median p99 ms": median(samples[mode].map((x) => x.p99)),
    "server CPU µs/request": median(samples[mode].map((x) => x.cpu)).toFixed(1),
    "of which user": median(samples[mode].map((x) => x.user)).toFixed(1),
    "of which system": median(samples[mode].map((x) => x.system)).toFixed(1),
    non2xx: samples[mode].reduce((a, x) => a + x.non2xx, 0),
    RateLimit: fields[mode]
  })
  console.log(
    `\nHTTP: ${target.title}; child processes, autocannon 50 connections, 127.0.0.1, ${pairs} pairs of processes × ` +
      `${roundsPerPair} rounds × ${seconds} s each`
  )
  console.table([row("off"), row("on")])
  const cpuDeltas = samples.on.map((x, i) => x.cpu - samples.off[i]!.cpu)
  const cpuOff = median(samples.off.map((x) => x.cpu))
  const cpuDelta = median(cpuDeltas)
  console.log(
    `server CPU per request: +${cpuDelta.toFixed(1)} µs (${((cpuDelta / cpuOff) * 100).toFixed(1)}%) with the ` +
      `limiter (median of the paired differences; they ranged ${Math.min(...cpuDeltas).toFixed(1)} to ` +
      `${Math.max(...cpuDeltas).toFixed(1)} µs)`
  )
  console.log(
    `CPU time taken by the host (steal) during the rounds: median ${(median(steal) * 100).toFixed(1)}%, ` +
      `at most ${(Math.max(...steal) * 100).toFixed(1)}%`
  )
  const ratios = samples.on.map((x, i) => x.rps / samples.off[i]!.rps)
  console.log(
    `overhead: ${((1 - median(ratios)) * 100).toFixed(1)}% of req/s (median of ${ratios.length} paired runs; ` +
      `pairs ranged ${((1 - Math.max(...ratios)) * 100).toFixed(1)}% to ${((1 - Math.min(...ratios)) * 100).toFixed(1)}%)`
  )
}

export default async function run(): Promise<void> {
  // RATE_LIMIT_BENCH=memory,redis,http,server runs a subset.
  const only = (process.env.RATE_LIMIT_BENCH ?? "memory,redis,http,server").split(",")
  if (only.includes("memory")) await memory()
  if (only.includes("redis")) await redis()
  if (only.includes("http")) await http(minimalServer)
  if (only.includes("server")) await http(bundledServer())
}
