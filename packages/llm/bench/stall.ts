/**
 * Does ingesting the largest allowed document stall the process? The chunking and local embedding of an 8 MiB
 * document (the server's default `MAX_BODY_BYTES`) run on this event loop while
 *
 * - a plain `node:http` server on the same loop answers `GET /health/live`, requested every 5 ms by a client in a
 *   child process (open loop: a request's latency counts from when it was due, so a stall is not hidden by the
 *   client waiting for it), and
 * - a 2 ms interval timer on the same loop records how late it fires (event-loop lag).
 *
 * Two variants, in paired rounds of alternating order:
 *
 * - `one step`: what ingest did before: `Chunker.chunk` and every `hashEmbed` in one synchronous step (the previous
 *   `Embedder.makeLocal().embed` was `Effect.sync(() => texts.map(hashEmbed))`);
 * - `sliced`: `Chunker.chunkEffect` then `Embedder.makeLocal().embed`, which give the event loop back every 10 ms.
 *
 * Goal: `/health/live` p99 under 50 ms while the document is ingested. "met" only when every round of the worse half
 * (so every round) meets it.
 *
 * Run: `npx tsx packages/llm/bench/stall.ts [rounds=7] [bytes=8388608]`
 */
import { Effect } from "effect"
import { fork } from "node:child_process"
import { readFileSync } from "node:fs"
import * as Http from "node:http"
import { PerformanceObserver } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import { Chunker, Embedder } from "../src/index.js"

const rounds = Math.max(5, Number(process.argv[2] ?? 7))
const bytes = Number(process.argv[3] ?? 8 * 1024 * 1024)
const goalMillis = 50

// --- the document: prose of sentences and paragraphs, ASCII so that characters are bytes ---------------------------
const vocabulary = (
  "the of and to a in is that for it as with was on be by this are or from at an which have not they but all " +
  "retrieval augmented generation vector embedding tenant circuit breaker backup restore projection event store " +
  "latency throughput shutdown drain readiness liveness probe kubernetes cluster replica postgres qdrant ollama " +
  "chunk document search answer question source passage model prompt critique improve draft pipeline stream"
).split(" ")
let seed = 42
const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff
const makeDocument = (size: number): string => {
  const parts: Array<string> = []
  let length = 0
  while (length < size) {
    const sentences = 3 + Math.floor(random() * 6)
    let paragraph = ""
    for (let s = 0; s < sentences; s++) {
      const words = 8 + Math.floor(random() * 13)
      const sentence = Array.from({ length: words }, () => vocabulary[Math.floor(random() * vocabulary.length)]!)
      sentence[0] = sentence[0]!.charAt(0).toUpperCase() + sentence[0]!.slice(1)
      paragraph += (s === 0 ? "" : " ") + sentence.join(" ") + "."
    }
    parts.push(paragraph)
    length += paragraph.length + 2
  }
  return parts.join("\n\n").slice(0, size)
}
// The JSON body `{"text":"…"}` of MAX_BODY_BYTES leaves a few bytes less for the text.
const document = makeDocument(bytes - 64)

// --- the variants ---------------------------------------------------------------------------------------------------
const embedder = Embedder.makeLocal()
const variants = {
  "one step": Effect.sync(() => Chunker.chunk(document).map((chunk) => Embedder.hashEmbed(chunk.text))),
  sliced: Effect.flatMap(Chunker.chunkEffect(document), (chunks) => embedder.embed(chunks.map((chunk) => chunk.text)))
} as const
type Variant = keyof typeof variants

// --- probes --------------------------------------------------------------------------------------------------------
const now = () => performance.timeOrigin + performance.now()

const server = Http.createServer({ keepAliveTimeout: 60_000 }, (request, response) => {
  if (request.url === "/health/live") {
    response.writeHead(200, { "content-type": "application/health+json" })
    response.end("{\"status\":\"pass\"}")
  } else {
    response.writeHead(404)
    response.end()
  }
})
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
const port = (server.address() as { port: number }).port

interface Sample {
  readonly due: number
  readonly latency: number
}
const client = fork(fileURLToPath(new URL("./stall-client.mjs", import.meta.url)), [String(port)], {
  stdio: ["ignore", "inherit", "inherit", "ipc"]
})
const fromClient = <A>(message: string) =>
  new Promise<A>((resolve) => {
    client.once("message", (reply) => resolve(reply as A))
    client.send(message as string)
  })
await fromClient<"ready">("ping")

const lags: Array<Sample> = []
const period = 2
let expected = now() + period
const timer = setInterval(() => {
  const at = now()
  lags.push({ due: expected, latency: at - expected })
  expected = at + period
}, period)

// Garbage collections (their pauses stall the loop too) and the CPU this process got: on a busy machine a round can
// lose the CPU for a while, which shows as lag that neither variant caused.
const gcs: Array<{ readonly at: number; readonly duration: number }> = []
const gcObserver = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gcs.push({ at: performance.timeOrigin + entry.startTime, duration: entry.duration })
  }
})
gcObserver.observe({ entryTypes: ["gc"] })

/** Busy jiffies of the whole machine (user, nice, system, irq, softirq, steal), from /proc/stat (Linux). */
const machine = (): { readonly busy: number } => {
  try {
    const [user, nice, system, , , irq, softirq, steal] = readFileSync("/proc/stat", "utf8").split("\n")[0]!
      .trim().split(/\s+/).slice(1).map(Number)
    return { busy: user! + nice! + system! + irq! + softirq! + steal! }
  } catch {
    return { busy: Number.NaN }
  }
}

const percentile = (values: ReadonlyArray<number>, p: number) => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

interface Round {
  readonly millis: number
  readonly requests: number
  readonly p50: number
  readonly p99: number
  readonly max: number
  readonly lagP50: number
  readonly lagP99: number
  /** The longest garbage collection pause in the window. */
  readonly gcMax: number
  /** CPU time this process got over the wall time of the window (1 = one core all along). */
  readonly cpu: number
  /** Cores the rest of the machine kept busy meanwhile (from /proc/stat, minus ours). */
  readonly others: number
}

const pause = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

const measure = async (variant: Variant): Promise<Round> => {
  await fromClient<"started">("start")
  await pause(300)
  lags.length = 0
  gcs.length = 0
  const cpuBefore = process.cpuUsage()
  const machineBefore = machine()
  const start = now()
  await Effect.runPromise(variants[variant])
  const end = now()
  const cpuUsed = process.cpuUsage(cpuBefore)
  const machineAfter = machine()
  await pause(100)
  const samples = await fromClient<ReadonlyArray<Sample>>("stop")
  // Requests due while the document was ingested (their answer may come later: that is the stall).
  const during = samples.filter((s) => s.due >= start && s.due <= end).map((s) => s.latency)
  // Timer ticks that were due, or still waiting, while the document was ingested.
  const lag = lags.filter((s) => s.due + s.latency >= start && s.due <= end).map((s) => s.latency)
  return {
    millis: end - start,
    requests: during.length,
    p50: percentile(during, 50),
    p99: percentile(during, 99),
    max: Math.max(...during),
    lagP50: percentile(lag, 50),
    lagP99: percentile(lag, 99),
    gcMax: Math.max(0, ...gcs.filter((g) => g.at >= start && g.at <= end).map((g) => g.duration)),
    cpu: (cpuUsed.user + cpuUsed.system) / 1000 / (end - start),
    others: Math.max(
      0,
      (machineAfter.busy - machineBefore.busy) / 100 / ((end - start) / 1000) -
        (cpuUsed.user + cpuUsed.system) / 1000 / (end - start)
    )
  }
}

const chunks = Chunker.chunk(document).length
console.log(
  `stall: ${(bytes / 1024 / 1024).toFixed(1)} MiB document (${document.length} characters, ${chunks} chunks), ` +
    `${rounds} paired rounds, Node ${process.version}, GET /health/live every 5 ms from a child process`
)
// Warm-up (JIT), not counted.
await measure("one step")
await measure("sliced")

const results: Record<Variant, Array<Round>> = { "one step": [], sliced: [] }
for (let round = 0; round < rounds; round++) {
  const order: ReadonlyArray<Variant> = round % 2 === 0 ? ["one step", "sliced"] : ["sliced", "one step"]
  for (const variant of order) {
    const result = await measure(variant)
    results[variant].push(result)
    const f = (n: number) => n.toFixed(1).padStart(7)
    console.log(
      `round ${round + 1} ${variant.padEnd(8)} ingest ${f(result.millis)} ms | /health/live n=${
        String(result.requests).padStart(4)
      } p50 ${f(result.p50)} p99 ${f(result.p99)} max ${f(result.max)} ms | timer lag p99 ${f(result.lagP99)} ms | ` +
        `longest GC ${f(result.gcMax)} ms | cpu ours ${result.cpu.toFixed(2)}, others ${result.others.toFixed(2)}`
    )
  }
}

const median = (values: ReadonlyArray<number>) => percentile(values, 50)
console.log("\nmedian [min – max] over the rounds")
for (const variant of ["one step", "sliced"] as const) {
  const rs = results[variant]
  const line = (name: keyof Round) => {
    const values = rs.map((r) => r[name])
    const [low, high] = [Math.min(...values).toFixed(1), Math.max(...values).toFixed(1)]
    return `${name} ${median(values).toFixed(1)} [${low} – ${high}]`
  }
  const p99s = rs.map((r) => r.p99).sort((a, b) => a - b)
  const worseHalf = p99s.slice(Math.floor(p99s.length / 2))
  const met = worseHalf.every((p) => p < goalMillis)
  console.log(
    `${variant.padEnd(8)} ${line("millis")} ms ingest | /health/live ${line("p50")} ${line("p99")} ${line("max")} ms` +
      ` | timer lag ${line("lagP99")} ms | ${line("gcMax")} ms | ${line("cpu")} ${line("others")}` +
      ` | goal p99 < ${goalMillis} ms: ${met ? "met" : "not met"} (worst ${p99s[p99s.length - 1]!.toFixed(1)} ms)`
  )
}

clearInterval(timer)
gcObserver.disconnect()
client.kill()
server.close()
server.closeAllConnections()
