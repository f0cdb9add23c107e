/**
 * Benchmarks of the problem layer (issue 20 items 3 and 5), each beside its peer in the same run, in paired rounds
 * that alternate the order (fresh server processes per round for the HTTP rows).
 *
 * 1. HTTP: three concurrent requests whose metadata holds a 7 MB value in a five-member union (decoded with
 *    `reportInput`, the worst case: the reported 84 MB answers), while `/health/live` is polled every 10 ms. Ours:
 *    `ProblemHttp.middleware` (bounded issues). Peer: the same server with the decode failure formatted as before
 *    (`SchemaError.message` for `detail` plus Effect's standard formatter for `issues`). Per variant: answer size, time
 *    until the three answers arrived, the slowest `/health/live`, the server's peak RSS.
 * 2. The issue formatter alone on that failure: `Issues.format` against Effect's standard formatter plus the message.
 * 3. The JSON depth check on an 8 MB body against `JSON.parse` of the same body (the cost it adds to a request that
 *    is parsed anyway).
 * 4. The cost of the depth guard per request: `ProblemHttp.make()` against `make({ maxJsonDepth: Infinity })`, CPU
 *    per small JSON POST through a web handler.
 *
 * Run: `npx tsx packages/kernel/bench/problems.ts` (ROUNDS=5 by default).
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Cause, Effect, Exit, Layer, Schema, SchemaIssue } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiError, HttpApiGroup } from "effect/http-api"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import { fileURLToPath } from "node:url"
import { Issues, JsonDepth, ProblemHttp } from "../src/index.js"

const rounds = Number(process.env.ROUNDS ?? 5)

// -----------------------------------------------------------------------------
// the server (child process mode)
// -----------------------------------------------------------------------------

const Scalar = Schema.Union([Schema.String, Schema.Finite, Schema.Boolean])
const Metadata = Schema.Record(
  Schema.String,
  Schema.Union([Schema.String, Schema.Finite, Schema.Boolean, Schema.Null, Schema.Array(Scalar)])
)
const Ingest = Schema.Struct({ text: Schema.String, metadata: Schema.optional(Metadata) })

class Group extends HttpApiGroup.make("docs").add(
  HttpApiEndpoint.post("ingest", "/documents", { payload: Ingest, success: Schema.Struct({ ok: Schema.Boolean }) })
) {}
class Api extends HttpApi.make("bench").add(Group).annotate(HttpApi.ParseOptions, { reportInput: true }) {}

const standardFormatter = SchemaIssue.makeFormatterStandardSchemaV1()
const segment = (key: PropertyKey | { readonly key: PropertyKey }): string | number => {
  const k = typeof key === "object" ? key.key : key
  return typeof k === "number" ? k : String(k)
}

// The decode failure as ProblemHttp answered it before (the peer).
const previousDecodeFailure = (error: HttpApiError.HttpApiSchemaError) =>
  HttpServerResponse.jsonUnsafe({
    _tag: "HttpApiDecodeError",
    detail: error.cause.message,
    issues: standardFormatter(error.cause.issue).issues.map((issue) => ({
      path: (issue.path ?? []).map(segment),
      message: issue.message
    }))
  }, { status: 400 })

const previous = <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
  Effect.catchCause(app, (cause) => {
    for (const reason of cause.reasons) {
      const defect = reason._tag === "Die" ? reason.defect : undefined
      if (HttpApiError.HttpApiSchemaError.is(defect) && defect.kind === "Payload") {
        return Effect.succeed(previousDecodeFailure(defect))
      }
    }
    return Effect.failCause(cause)
  })

const serve = (variant: string) => {
  const ours = ProblemHttp.make()
  const peer = ProblemHttp.make({ maxJsonDepth: Infinity })
  const middleware = variant === "ours"
    ? (effect: Effect.Effect<HttpServerResponse.HttpServerResponse, any>) => ours(effect)
    : (effect: Effect.Effect<HttpServerResponse.HttpServerResponse, any>) => peer(previous(effect))
  const app = Layer.mergeAll(
    HttpApiBuilder.layer(Api).pipe(
      Layer.provide(HttpApiBuilder.group(Api, "docs", (h) => h.handle("ingest", () => Effect.succeed({ ok: true }))))
    ),
    HttpRouter.add("GET", "/health/live", HttpServerResponse.text("ok"))
  ).pipe(Layer.provide(HttpRouter.middleware(middleware as any, { global: true })))
  const server = Http.createServer()
  const main = HttpRouter.serve(app, { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provide(NodeHttpServer.layer(() => server, { port: 0, host: "127.0.0.1" }))
  )
  server.on("listening", () => {
    const address = server.address()
    if (typeof address === "object" && address !== null) process.stdout.write(`port ${address.port}\n`)
  })
  Effect.runFork(Layer.launch(main) as Effect.Effect<never>)
}

// -----------------------------------------------------------------------------
// the client (parent mode)
// -----------------------------------------------------------------------------

const self = fileURLToPath(import.meta.url)

interface ServerProcess {
  readonly port: number
  readonly pid: number
  readonly stop: () => Promise<void>
}

const start = (variant: string) =>
  new Promise<ServerProcess>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", self, "serve", variant], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    child.stdout.on("data", (chunk) => {
      out += String(chunk)
      const match = /port (\d+)/.exec(out)
      if (match) {
        resolve({
          port: Number(match[1]),
          pid: child.pid!,
          stop: () =>
            new Promise<void>((done) => {
              child.once("exit", () => done())
              child.kill("SIGKILL")
            })
        })
      }
    })
    child.once("exit", (code) => reject(new Error(`server exited ${code}`)))
  })

const request = (port: number, method: string, path: string, body?: string) =>
  new Promise<{ status: number; bytes: number }>((resolve, reject) => {
    const req = Http.request(
      { host: "127.0.0.1", port, method, path, headers: { "content-type": "application/json" } },
      (res) => {
        let bytes = 0
        res.on("data", (chunk: Buffer) => (bytes += chunk.length))
        res.on("end", () => resolve({ status: res.statusCode ?? 0, bytes }))
        res.on("error", reject)
      }
    )
    req.on("error", reject)
    req.end(body)
  })

// Peak resident set of a process, in MB (VmHWM).
const peakRss = (pid: number): number => {
  const status = Fs.readFileSync(`/proc/${pid}/status`, "utf8")
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0)
  return kb / 1024
}

interface HttpRow {
  readonly answerBytes: number
  readonly seconds: number
  readonly liveMaxMs: number
  readonly peakMb: number
}

const huge = "x".repeat(7 * 1024 * 1024)
const badBody = JSON.stringify({ text: "a", metadata: { big: { value: huge } } })

const httpRound = async (variant: string): Promise<HttpRow> => {
  const server = await start(variant)
  try {
    // Warm up: one small bad request and a few probes.
    await request(server.port, "POST", "/documents", JSON.stringify({ text: 1 }))
    for (let i = 0; i < 5; i++) await request(server.port, "GET", "/health/live")
    let done = false
    let liveMax = 0
    const probes = (async () => {
      while (!done) {
        const t = performance.now()
        await request(server.port, "GET", "/health/live")
        liveMax = Math.max(liveMax, performance.now() - t)
        await new Promise((r) => setTimeout(r, 10))
      }
    })()
    const t0 = performance.now()
    const answers = await Promise.all([1, 2, 3].map(() => request(server.port, "POST", "/documents", badBody)))
    const seconds = (performance.now() - t0) / 1000
    done = true
    await probes
    for (const answer of answers) if (answer.status !== 400) throw new Error(`${variant}: status ${answer.status}`)
    return { answerBytes: answers[0]!.bytes, seconds, liveMaxMs: liveMax, peakMb: peakRss(server.pid) }
  } finally {
    await server.stop()
  }
}

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const spread = (xs: ReadonlyArray<number>) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`
// Met when the worse half of the rounds meets the goal: the median of the worse half is within it.
const worseHalf = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => b - a).slice(0, Math.ceil(xs.length / 2))

const row = (label: string, ours: ReadonlyArray<number>, peer: ReadonlyArray<number>, unit: string, goal?: number) => {
  const met = goal === undefined
    ? ""
    : worseHalf(ours).every((x) => x <= goal)
    ? `met (≤ ${goal} ${unit})`
    : `not met (≤ ${goal} ${unit})`
  console.log(
    `${label.padEnd(34)} ours ${median(ours).toFixed(2).padStart(12)} [${spread(ours)}]   peer ${
      median(peer).toFixed(2).padStart(12)
    } [${spread(peer)}] ${unit}  ${met}`
  )
}

const http = async () => {
  const ours: Array<HttpRow> = []
  const peer: Array<HttpRow> = []
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? ["ours", "peer"] : ["peer", "ours"]
    for (const variant of order) (variant === "ours" ? ours : peer).push(await httpRound(variant))
  }
  console.log(`\n1. HTTP: 3 concurrent 7 MB metadata values in a union (reportInput), ${rounds} paired rounds`)
  row("answer size (KB)", ours.map((r) => r.answerBytes / 1024), peer.map((r) => r.answerBytes / 1024), "KB", 16)
  row("three answers (s)", ours.map((r) => r.seconds), peer.map((r) => r.seconds), "s", 1)
  row("slowest /health/live meanwhile (ms)", ours.map((r) => r.liveMaxMs), peer.map((r) => r.liveMaxMs), "ms", 250)
  row("server peak RSS (MB)", ours.map((r) => r.peakMb), peer.map((r) => r.peakMb), "MB", 300)
}

const time = <A>(f: () => A): [A, number] => {
  const t = performance.now()
  const a = f()
  return [a, performance.now() - t]
}

const formatter = () => {
  const exit = Schema.decodeUnknownExit(Ingest)(JSON.parse(badBody), { reportInput: true })
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const error = Cause.squash(exit.cause) as Schema.SchemaError
  const ours: Array<number> = []
  const peer: Array<number> = []
  const oursSize: Array<number> = []
  const peerSize: Array<number> = []
  for (let round = 0; round < rounds; round++) {
    const runOurs = () => {
      const [out, ms] = time(() => JSON.stringify({ ...Issues.format(error.issue), detail: "" }))
      ours.push(ms)
      oursSize.push(out.length / 1024)
    }
    const runPeer = () => {
      const [out, ms] = time(() =>
        JSON.stringify({ issues: standardFormatter(error.issue).issues, detail: error.message })
      )
      peer.push(ms)
      peerSize.push(out.length / 1024)
    }
    if (round % 2 === 0) {
      runOurs()
      runPeer()
    } else {
      runPeer()
      runOurs()
    }
  }
  console.log(`\n2. Formatting that failure, ${rounds} paired rounds`)
  row("time (ms)", ours, peer, "ms", 5)
  row("output (KB)", oursSize, peerSize, "KB", 16)
}

const depthScan = () => {
  const nested = JSON.stringify({
    text: "y".repeat(4 * 1024 * 1024),
    metadata: Object.fromEntries(Array.from({ length: 50_000 }, (_, i) => [`k${i}`, [i, "v", true]]))
  })
  const bytes = new TextEncoder().encode(nested)
  const ours: Array<number> = []
  const peer: Array<number> = []
  for (let round = 0; round < rounds; round++) {
    const a = () => ours.push(time(() => JsonDepth.depth(bytes, 64))[1])
    const b = () => peer.push(time(() => JSON.parse(nested))[1])
    if (round % 2 === 0) {
      a()
      b()
    } else {
      b()
      a()
    }
  }
  console.log(
    `\n3. Depth check of a ${
      (bytes.length / 1024 / 1024).toFixed(1)
    } MB body (peer: JSON.parse of it), ${rounds} rounds`
  )
  row("time (ms)", ours, peer, "ms")
}

const guardCost = async () => {
  const handlerFor = (problems: ReturnType<typeof ProblemHttp.make>) =>
    HttpRouter.toWebHandler(
      HttpRouter.add("POST", "/echo", HttpServerResponse.text("ok")).pipe(
        Layer.provide(HttpRouter.middleware(
          (effect: Effect.Effect<HttpServerResponse.HttpServerResponse, any>) =>
            problems(effect) as Effect.Effect<HttpServerResponse.HttpServerResponse, any>,
          { global: true }
        ))
      ),
      { disableLogger: true }
    )
  const guarded = handlerFor(ProblemHttp.make())
  const unguarded = handlerFor(ProblemHttp.make({ maxJsonDepth: Infinity }))
  const body = JSON.stringify({ query: "striped animals", limit: 5 })
  const run = async (handler: (request: Request) => Promise<Response>, n: number) => {
    const start = process.cpuUsage()
    for (let i = 0; i < n; i++) {
      const response = await handler(
        new Request("http://local/echo", { method: "POST", body, headers: { "content-type": "application/json" } })
      )
      await response.text()
    }
    const used = process.cpuUsage(start)
    return (used.user + used.system) / n
  }
  await run((r) => guarded.handler(r), 2000)
  await run((r) => unguarded.handler(r), 2000)
  const ours: Array<number> = []
  const peer: Array<number> = []
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) {
      ours.push(await run((r) => guarded.handler(r), 20_000))
      peer.push(await run((r) => unguarded.handler(r), 20_000))
    } else {
      peer.push(await run((r) => unguarded.handler(r), 20_000))
      ours.push(await run((r) => guarded.handler(r), 20_000))
    }
  }
  console.log(`\n4. CPU per small JSON POST through a web handler (peer: no depth guard), ${rounds} paired rounds`)
  row("CPU (µs per request)", ours, peer, "µs")
  await guarded.dispose()
  await unguarded.dispose()
}

if (process.argv[2] === "serve") {
  serve(process.argv[3] ?? "ours")
} else {
  console.log(`node ${process.version}`)
  await http()
  formatter()
  depthScan()
  await guardCost()
  process.exit(0)
}
