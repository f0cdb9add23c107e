/**
 * Rate limiting, ours beside rate-limiter-flexible, in paired rounds (and, with `BENCH_E3_TREE`, beside the same code
 * on Effect 3, its worker alternating with ours round by round):
 * - `memory`: decisions per second in memory, 1 key and 100k keys, like against like (see `paired/rate-limit.ts`):
 *   synchronous with synchronous, asynchronous with asynchronous;
 * - `redis`: decisions per second and p99 through Redis at concurrency 1 and 50 (the peer's ioredis client with
 *   `enableAutoPipelining`);
 * - `http`: the overhead of the HTTP middleware (limiter on against off) on a minimal HttpApi server;
 * - `server`: the same on the bundled server (`RATE_LIMIT_DEFAULT=off` against a policy no run reaches).
 * The HTTP sections start fresh server processes every round (off and on, for each tree) and load them one after
 * another with autocannon from this process.
 *
 * Run: `npm run bench -- rate-limit`. Environment: `RATE_LIMIT_BENCH=memory,redis,http,server` (sections),
 * `RATE_LIMIT_BENCH_ROUNDS` (paired rounds of each section, default 6 for memory and redis, 5 for HTTP),
 * `RATE_LIMIT_BENCH_SECONDS` (autocannon seconds per server and round, default 1), `RATE_LIMIT_BENCH_AA=1` (HTTP:
 * off against off, an A/A control of the machine's noise), `BENCH_E3_TREE`.
 */
import { RateLimiter, RateLimiterHttp, RateLimiterMemory } from "@ouroboros/rate-limit"
import { Services } from "@ouroboros/testkit"
import autocannon from "autocannon"
import { Duration, Effect, Layer, ManagedRuntime } from "effect"
import { HttpRouter, type HttpServerResponse } from "effect/http"
import { RateLimiter as EffectRateLimiter } from "effect/persistence"
import { randomUUID } from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import type { RateLimiterMemory as FlexMemory, RateLimiterRedis as FlexRedis } from "rate-limiter-flexible"
import { startPingServer } from "./internal/ping.js"
import { cpuMicros, machineJiffies } from "./internal/process.js"
import { benchKey, root } from "./internal/server.js"
import {
  HUGE,
  type LoadResult,
  loadResult,
  type MemoryContestant,
  memoryFixtures,
  memoryRounds,
  type RedisContestant,
  redisKeys,
  redisRounds,
  type Subject
} from "./paired/rate-limit.js"
import { serveTasks } from "./paired/serve.js"
import { show, showPercent, showVerdict, verdict, verdictLegend } from "./paired/stats.js"
import {
  e3Tree,
  envInt,
  machineWatch,
  nodeArgs,
  noE3Note,
  pairedRounds,
  type ServerChild,
  sides,
  startBuiltServer,
  startServerChild
} from "./paired/workers.js"

const policy = RateLimiter.Policy.make({ name: "bench", limit: HUGE, window: 60_000, scope: ["api-key"] })

const DECISIONS = 200_000

/** The Effect 4 side of the in-memory rounds: ours built as an application builds it. */
const memoryOurs = (keys: ReadonlyArray<string>, subjects: ReadonlyArray<Subject>) => {
  const count = keys.length
  // The layer captures the clock of the fiber that builds it.
  const ours = Effect.runSync(
    Effect.provide(Effect.service(RateLimiter.RateLimiter), RateLimiter.layerMemory({ policies: [policy] }))
  )
  const decideUnsafe = ours.decideUnsafe!
  const effectLimiter = Effect.runSync(Effect.provide(EffectRateLimiter.make, EffectRateLimiter.layerStoreMemory))
  const effectKeys = keys.map((key) => ({
    key,
    limit: HUGE,
    window: Duration.seconds(60),
    algorithm: "token-bucket" as const,
    onExceeded: "fail" as const
  }))
  return {
    sync: (n: number) => {
      for (let i = 0; i < n; i++) decideUnsafe(subjects[i % count]!, Date.now())
    },
    fiber: (n: number) =>
      Effect.runPromise(Effect.gen(function*() {
        for (let i = 0; i < n; i++) yield* ours.decide(subjects[i % count]!)
      })),
    peerInFiber: (peer: FlexMemory) => (n: number) =>
      Effect.runPromise(Effect.gen(function*() {
        for (let i = 0; i < n; i++) yield* Effect.tryPromise(() => peer.consume(keys[i % count]!))
      })),
    effectLimiter: (n: number) =>
      Effect.runPromise(Effect.gen(function*() {
        for (let i = 0; i < n; i++) yield* effectLimiter.consume(effectKeys[i % count]!)
      }))
  }
}

/** `concurrency` fibers in one runtime deciding for `millis`, as a server runs them. */
const loadEffect = <E>(
  runtime: ManagedRuntime.ManagedRuntime<any, any>,
  concurrency: number,
  millis: number,
  op: (i: number) => Effect.Effect<unknown, E>
): Promise<LoadResult> =>
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
      () => loadResult(latencies, millis)
    )
  }))

/** The worker of this tree (Effect 4) for the memory and Redis sections. */
export const worker = async (): Promise<void> => {
  let memory: ReturnType<typeof memoryRounds> | undefined
  let redis: ReturnType<typeof redisRounds> | undefined
  const redisRunner = async () => {
    if (redis !== undefined) return redis
    const prefix = `bench:rl:${randomUUID()}:`
    // As the server builds it: the Redis store behind the fail-open fallback.
    const runtime = ManagedRuntime.make(RateLimiter.layerRedis({ url: Services.redisUrl, prefix, policies: [policy] }))
    const ours = await runtime.runPromise(Effect.service(RateLimiter.RateLimiter))
    const subjects = redisKeys.map((apiKey) => ({ apiKey, client: "127.0.0.1", endpoint: "GET /api/v1/ping" }))
    return redis = redisRounds(Services.redisUrl, prefix, {
      ours: (c, ms) => loadEffect(runtime, c, ms, (i) => ours.decide(subjects[i % 1000]!)),
      peerInFibers: (peer: FlexRedis, c, ms) =>
        loadEffect(runtime, c, ms, (i) => Effect.tryPromise(() => peer.consume(redisKeys[i % 1000]!))),
      close: () => runtime.dispose()
    }, envInt("RATE_LIMIT_BENCH_REDIS_MILLIS", 600))
  }
  serveTasks({
    memoryWarmUp: () => (memory ??= memoryRounds(memoryOurs, DECISIONS)).warmUp(),
    memory: (round: number) => memory!.round(round),
    redisWarmUp: async () => (await redisRunner()).warmUp(),
    redis: async (round: number) => (await redisRunner()).round(round)
  }, async () => {
    await redis?.close()
  })
}

/** The server of the minimal-server section, in a child process: prints `PORT=n`. */
export const serveForBench = async (mode: "on" | "off"): Promise<void> => {
  const limiter = RateLimiter.makeUnsafe(RateLimiterMemory.makeUnsafe(), { policies: [policy] })
  // "off" still passes a (no-op) middleware: any middleware changes how the server runs a request, and a real server
  // has several; this isolates the limiter's own cost.
  const middleware: RateLimiterHttp.Middleware = mode === "off" ? (app) => app : await Effect.runPromise(
    RateLimiterHttp.make().pipe(Effect.provideService(RateLimiter.RateLimiter, limiter))
  )
  await startPingServer((app) =>
    HttpRouter.serve(
      // As the bundled server runs its limits: the router's global middleware. The router's types ask a global
      // middleware to pass on the errors it does not know: this one passes them on.
      app.pipe(Layer.provide(HttpRouter.middleware(
        (effect: Effect.Effect<HttpServerResponse.HttpServerResponse, any>) =>
          middleware(effect) as Effect.Effect<HttpServerResponse.HttpServerResponse, any>,
        { global: true }
      ))),
      { disableLogger: true, disableListenLog: true }
    )
  ).then((server) => console.log(`PORT=${server.port}`))
}

const memoryContestants: ReadonlyArray<MemoryContestant> = [
  "ours sync (decideUnsafe)",
  "peer sync (consume's body)",
  "ours async (decide, one fiber)",
  "peer async (await consume)",
  "peer in the fiber (tryPromise)",
  "Effect's limiter (one fiber)"
]

type MemoryRound = Record<string, Partial<Record<MemoryContestant, number>>>

const memorySection = async () => {
  const rounds = envInt("RATE_LIMIT_BENCH_ROUNDS", 6)
  const bySide = await pairedRounds<MemoryRound>({
    sides: await sides(import.meta.url, "rate-limit"),
    rounds,
    processes: 2,
    warmUp: "memoryWarmUp",
    task: "memory"
  })
  const labels = Object.keys(bySide)
  const rate = (side: string, fixture: string, c: MemoryContestant) => bySide[side]!.map((r) => r[fixture]![c]!)
  console.log(
    `\nIn-memory decisions per CPU second (all admitted; one policy; ${DECISIONS} decisions per timing, timed in ` +
      `the process's CPU time), median ` +
      `(min–max) of ${rounds} paired rounds over 2 sets of worker processes. The HTTP middleware takes the ` +
      `synchronous path (decideUnsafe) with the memory store, and decide through Redis.`
  )
  console.table(memoryFixtures.flatMap(([fixture]) =>
    memoryContestants.map((c) => ({
      keys: fixture,
      contestant: c,
      ...Object.fromEntries(labels.map((side) => [`${side} decisions/s`, show(rate(side, fixture, c))]))
    }))
  ))
  // Each pair is judged on the ratio of the same round in the same worker.
  const pairs: ReadonlyArray<[string, MemoryContestant, MemoryContestant]> = [
    ["sync: decideUnsafe vs the peer's consume body", "ours sync (decideUnsafe)", "peer sync (consume's body)"],
    [
      "async, each in its idiom: decide in a fiber vs await consume",
      "ours async (decide, one fiber)",
      "peer async (await consume)"
    ],
    [
      "async, both in one fiber: decide vs tryPromise(consume)",
      "ours async (decide, one fiber)",
      "peer in the fiber (tryPromise)"
    ]
  ]
  console.table(labels.flatMap((side) =>
    memoryFixtures.flatMap(([fixture]) =>
      pairs.map(([label, a, b]) => {
        const ratios = rate(side, fixture, a).map((x, i) => x / rate(side, fixture, b)[i]!)
        return {
          "goal: ours ≥ peer": label,
          keys: fixture,
          tree: side,
          "ours / peer": show(ratios, 2),
          verdict: showVerdict(verdict(ratios, (r) => r >= 1, "higher"), (r) => r.toFixed(2))
        }
      })
    )
  ))
  if (labels.length === 2) {
    console.log(
      "Effect 4 / Effect 3 (paired rounds; the peer rows are the same code in both workers: their ratio is " +
        "the difference between the two processes alone)"
    )
    console.table(memoryFixtures.flatMap(([fixture]) =>
      memoryContestants.map((c) => ({
        keys: fixture,
        contestant: c,
        "Effect 4 / Effect 3": show(rate("Effect 4", fixture, c).map((x, i) => x / rate("Effect 3", fixture, c)[i]!), 2)
      }))
    ))
  } else {
    console.log(noE3Note)
  }
}

type RedisRound = Record<string, Partial<Record<RedisContestant, LoadResult>>>

const redisSection = async () => {
  if (!(await Services.redis())) {
    console.log("\nRedis: not reachable at", Services.redisUrl, "— skipped")
    return
  }
  const rounds = envInt("RATE_LIMIT_BENCH_ROUNDS", 6)
  const bySide = await pairedRounds<RedisRound>({
    sides: await sides(import.meta.url, "rate-limit"),
    rounds,
    warmUp: "redisWarmUp",
    task: "redis"
  })
  const labels = Object.keys(bySide)
  const of = (side: string, c: string, who: RedisContestant) => bySide[side]!.map((r) => r[c]![who]!)
  const contestants: ReadonlyArray<RedisContestant> = ["ours", "peer (await consume)", "peer in fibers (tryPromise)"]
  console.log(
    `\nRedis decisions (1000 keys; ${envInt("RATE_LIMIT_BENCH_REDIS_MILLIS", 600)} ms per load), median (min–max) of ` +
      `${rounds} paired rounds. Ours: behind the fail-open fallback, Lua on Redis TIME, the decisions of a tick ` +
      `batched; the peer: RateLimiterRedis on ioredis with enableAutoPipelining.`
  )
  console.table(["c=1", "c=50"].flatMap((c) =>
    contestants.map((who) => ({
      concurrency: c,
      contestant: who,
      ...Object.fromEntries(labels.flatMap((side) => [
        [`${side} decisions/s`, show(of(side, c, who).map((x) => x.perSecond))],
        [`${side} p99 ms`, show(of(side, c, who).map((x) => x.p99), 2)]
      ]))
    }))
  ))
  console.table(
    labels.flatMap((side) =>
      ["c=1", "c=50"].flatMap((c) =>
        (["peer (await consume)", "peer in fibers (tryPromise)"] as const).map((peer) => {
          const ratios = of(side, c, "ours").map((x, i) => x.perSecond / of(side, c, peer)[i]!.perSecond)
          return {
            "goal: ours ≥ peer": `ours vs ${peer}`,
            concurrency: c,
            tree: side,
            "ours / peer": show(ratios, 2),
            verdict: showVerdict(verdict(ratios, (r) => r >= 1, "higher"), (r) => r.toFixed(2))
          }
        })
      )
    )
  )
  if (labels.length === 2) {
    console.table(["c=1", "c=50"].flatMap((c) =>
      contestants.map((who) => ({
        concurrency: c,
        contestant: who,
        "decisions/s Effect 4 / Effect 3": show(
          of("Effect 4", c, who).map((x, i) => x.perSecond / of("Effect 3", c, who)[i]!.perSecond),
          2
        )
      }))
    ))
  } else {
    console.log(noE3Note)
  }
}

/** One server of an HTTP round. */
interface HttpTarget {
  readonly side: string
  readonly mode: "off" | "on"
  readonly start: () => Promise<ServerChild>
}

interface HttpSample {
  readonly rps: number
  readonly p99: number
  readonly non2xx: number
  /** Server CPU per request, µs (user + system). */
  readonly cpu: number
  readonly steal: number
}

const cannon = (port: number, path: string, seconds: number, connections = 50) =>
  autocannon({
    url: `http://127.0.0.1:${port}${path}`,
    connections,
    duration: seconds,
    headers: { "x-api-key": benchKey }
  })

const httpSection = async (title: string, path: string, targets: ReadonlyArray<HttpTarget>) => {
  const rounds = envInt("RATE_LIMIT_BENCH_ROUNDS", 5)
  const seconds = envInt("RATE_LIMIT_BENCH_SECONDS", 1)
  const samples = new Map<HttpTarget, Array<HttpSample>>(targets.map((t) => [t, []]))
  for (let round = 0; round < rounds; round++) {
    // Fresh processes every round (each process has its own luck: where the JIT and the heap landed), started
    // together, warmed up, then loaded one after another in an order that rotates by round.
    const servers = await Promise.all(targets.map((t) => t.start()))
    try {
      // Warmed up together (10 connections each), then loaded one at a time.
      await Promise.all(servers.map((server) => cannon(server.port, path, 2, 10)))
      for (let k = 0; k < targets.length; k++) {
        const i = (k + round) % targets.length
        const server = servers[i]!
        const [cpuBefore, machineBefore] = await Promise.all([cpuMicros(server.pid), machineJiffies()])
        const result = await cannon(server.port, path, seconds)
        const [cpuAfter, machineAfter] = await Promise.all([cpuMicros(server.pid), machineJiffies()])
        samples.get(targets[i]!)!.push({
          rps: result.requests.average,
          p99: result.latency.p99,
          non2xx: result.non2xx,
          cpu: (cpuAfter.user + cpuAfter.system - cpuBefore.user - cpuBefore.system) /
            Math.max(1, result.requests.total),
          steal: (machineAfter.steal - machineBefore.steal) / Math.max(1, machineAfter.total - machineBefore.total)
        })
      }
    } finally {
      await Promise.all(servers.map((s) => s.stop()))
    }
  }
  const labels = [...new Set(targets.map((t) => t.side))]
  const of = (side: string, mode: "off" | "on") =>
    samples.get(targets.find((t) => t.side === side && t.mode === mode)!)!
  console.log(
    `\nHTTP: ${title}; autocannon 50 connections from this process, ${rounds} rounds × ${seconds} s per server, ` +
      `fresh server processes every round`
  )
  console.table(labels.flatMap((side) =>
    (["off", "on"] as const).map((mode) => ({
      tree: side,
      limiter: mode,
      "req/s": show(of(side, mode).map((x) => x.rps)),
      "p99 ms": show(of(side, mode).map((x) => x.p99)),
      "server CPU µs/request": show(of(side, mode).map((x) => x.cpu), 1),
      non2xx: of(side, mode).reduce((a, x) => a + x.non2xx, 0)
    }))
  ))
  // Two readings of the same overhead: the req/s lost under autocannon, and the req/s a saturated server loses by
  // the CPU each request costs it (1 − CPU off / CPU on). On a machine shared with other work the first swings with
  // the CPU the server was given; the second counts only the server's own CPU time per request.
  console.table(labels.map((side) => {
    const overheads = of(side, "on").map((x, i) => 1 - x.rps / of(side, "off")[i]!.rps)
    const byCpu = of(side, "on").map((x, i) => 1 - of(side, "off")[i]!.cpu / x.cpu)
    const cpu = of(side, "on").map((x, i) => x.cpu - of(side, "off")[i]!.cpu)
    const percent = (o: number) => `${(o * 100).toFixed(1)}%`
    return {
      tree: side,
      "overhead, % of req/s": showPercent(overheads),
      "goal < 10% on req/s": showVerdict(verdict(overheads, (o) => o < 0.1, "lower"), percent),
      "CPU µs/request on − off": show(cpu, 1),
      "overhead by CPU/request": showPercent(byCpu),
      "goal < 10% by CPU/request": showVerdict(verdict(byCpu, (o) => o < 0.1, "lower"), percent)
    }
  }))
  if (labels.length === 2) {
    console.table((["off", "on"] as const).map((mode) => ({
      limiter: mode,
      "req/s Effect 4 / Effect 3 (paired rounds)": show(
        of("Effect 4", mode).map((x, i) => x.rps / of("Effect 3", mode)[i]!.rps),
        2
      ),
      "CPU/request Effect 4 / Effect 3": show(
        of("Effect 4", mode).map((x, i) => x.cpu / of("Effect 3", mode)[i]!.cpu),
        2
      )
    })))
  } else {
    console.log(noE3Note)
  }
  const steal = [...samples.values()].flat().map((x) => x.steal)
  console.log(`host steal during the loads: ${showPercent(steal)}`)
}

const minimalTargets = async (): Promise<ReadonlyArray<HttpTarget>> => {
  const onMode = process.env.RATE_LIMIT_BENCH_AA === "1" ? "off" : "on"
  return (await sides(import.meta.url, "rate-limit")).flatMap((side) =>
    (["off", "on"] as const).map((mode) => ({
      side: side.label,
      mode,
      start: () => startServerChild(nodeArgs(side.url, "serveForBench", mode === "on" ? onMode : "off"))
    }))
  )
}

const bundledTargets = (): ReadonlyArray<HttpTarget> => {
  const onEnv = process.env.RATE_LIMIT_BENCH_AA === "1" ? { RATE_LIMIT_DEFAULT: "off" } : {}
  const tree = e3Tree()
  const mains = [
    ["Effect 4", Path.join(root, "apps/server/dist/main.js")],
    ...(tree === undefined ? [] : [["Effect 3", Path.join(tree, "apps/server/dist/main.js")]])
  ] as const
  return mains.flatMap(([side, main]) =>
    (["off", "on"] as const).map((mode) => {
      // One data directory per server, kept across rounds (the first round creates it, as a first start does).
      const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-bench-rl-"))
      process.once("exit", () => Fs.rmSync(dataDir, { recursive: true, force: true }))
      return {
        side,
        mode,
        // On: startBuiltServer's default policy, which no run reaches; off: no policy at all.
        start: () => startBuiltServer(main, dataDir, mode === "on" ? onEnv : { RATE_LIMIT_DEFAULT: "off" })
      }
    })
  )
}

export default async function run(): Promise<void> {
  const watch = await machineWatch()
  const only = (process.env.RATE_LIMIT_BENCH ?? "memory,redis,http,server").split(",")
  if (only.includes("memory")) await memorySection()
  if (only.includes("redis")) await redisSection()
  if (only.includes("http")) {
    await httpSection(
      "minimal HttpApi server, GET /api/v1/ping, limiter as the router's global middleware (off = a no-op middleware)",
      "/api/v1/ping",
      await minimalTargets()
    )
  }
  if (only.includes("server")) {
    await httpSection(
      "bundled server (full stack), GET /api/v1/whoami (off = RATE_LIMIT_DEFAULT=off)",
      "/api/v1/whoami",
      bundledTargets()
    )
  }
  console.log(verdictLegend)
  console.log(await watch())
}
