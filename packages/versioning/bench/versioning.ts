/**
 * What versioning costs per request: negotiation at the edge, and serving an old version through a two-step chain of
 * version changes (v1 → v2 → v3 and back down), beside a request to the newest version and beside the same api
 * served without versioning at all.
 *
 * In-process: each request is a `Request` given to `HttpRouter.toWebHandler` and its body read, one at a time, so the
 * figures are the server's own work per request, without sockets. A round is `BENCH_REQUESTS` requests (default
 * 10000) per contestant, sent in blocks of `BENCH_BLOCK` (200) that take turns in an order alternating from block to
 * block, so the machine's drift falls on every contestant alike; `BENCH_ROUNDS` rounds (default 7, at least 5), cut
 * short after `BENCH_SECONDS` (default 120) once 5 are done. The cost is this process's CPU time per request
 * (`process.cpuUsage`: other processes on a loaded machine do not count in it), with the elapsed time beside it.
 * Printed: each contestant's median over rounds with the min–max, and the paired differences per round (median,
 * min–max).
 *
 * Run: `cd /work/main && npx tsx packages/versioning/bench/versioning.ts`.
 */
import { ProblemHttp } from "@ouroboros/kernel"
import { Effect, Layer } from "effect"
import { HttpRouter } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import { VersionedApi, VersioningHttp, VersionPolicy } from "../src/index.js"
import {
  ApiV3,
  DocumentsLive,
  DocumentStore,
  layerAuthentication,
  layerStore,
  Versions
} from "../test/fixtures/Documents.js"

type Handler = (request: Request) => Promise<Response>

const requests = Number(process.env.BENCH_REQUESTS ?? 10000)
const roundCount = Math.max(5, Number(process.env.BENCH_ROUNDS ?? 7))
const budgetMs = Number(process.env.BENCH_SECONDS ?? 120) * 1000

const webHandler = (layer: Layer.Layer<never, any, any>): { handler: Handler; dispose: () => Promise<void> } => {
  const { dispose, handler } = HttpRouter.toWebHandler(layer as Layer.Layer<never, never, HttpRouter.HttpRouter>, {
    disableLogger: true
  })
  return { handler: handler as unknown as Handler, dispose }
}

// The versioned server: negotiation, v3's handlers, v1 and v2 through their changes.
const versioned = webHandler(
  VersionedApi.layer(Versions).pipe(
    Layer.provide(DocumentsLive),
    Layer.provide(layerAuthentication),
    Layer.provide(VersioningHttp.layer()),
    Layer.provide(ProblemHttp.layer),
    Layer.provide(VersionPolicy.layer(VersionedApi.versions(Versions), {
      versions: { v1: { deprecated: "2027-01-01", sunset: "2099-01-01" } }
    })),
    Layer.provide(layerStore)
  )
)

// The same v3 api and handlers, without versioning: what a server without this package does.
const plain = webHandler(
  HttpApiBuilder.layer(ApiV3).pipe(
    Layer.provide(HttpApiBuilder.group(ApiV3, "documents", (handlers) =>
      Effect.gen(function*() {
        const store = yield* DocumentStore
        const meta = Effect.succeed({ apiVersion: "v3" })
        return handlers
          .handle("ingest", ({ payload }) =>
            Effect.all({
              data: store.ingest({ id: payload.id, content: payload.content, labels: payload.labels }),
              meta
            }))
          .handle("get", ({ params }) => Effect.all({ data: store.get(params.id), meta }))
          .handle("list", () => Effect.all({ data: store.list, meta }))
      }))),
    Layer.provide(layerAuthentication),
    Layer.provide(ProblemHttp.layer),
    Layer.provide(layerStore)
  )
)

const headers = { "x-api-key": "key-bench", "content-type": "application/json" }

interface Contestant {
  readonly name: string
  readonly send: () => Promise<Response>
}

const get = (handler: Handler, path: string, extra?: Record<string, string>) => () =>
  handler(new Request(`http://localhost${path}`, { headers: { ...headers, ...extra } }))
const post = (handler: Handler, path: string, body: unknown, extra?: Record<string, string>) => {
  const text = JSON.stringify(body)
  return () =>
    handler(new Request(`http://localhost${path}`, { method: "POST", headers: { ...headers, ...extra }, body: text }))
}

const contestants: ReadonlyArray<Contestant> = [
  { name: "GET plain v3 (no versioning)", send: get(plain.handler, "/api/v3/documents/a") },
  { name: "GET /api/v3 (newest)", send: get(versioned.handler, "/api/v3/documents/a") },
  { name: "GET /api/v1 (2 changes)", send: get(versioned.handler, "/api/v1/documents/a") },
  { name: "GET /api + api-version: v1", send: get(versioned.handler, "/api/documents/a", { "api-version": "v1" }) },
  {
    name: "POST plain v3 (no versioning)",
    send: post(plain.handler, "/api/v3/documents", { id: "a", content: "hello", labels: { lang: "en" } })
  },
  {
    name: "POST /api/v3 (newest)",
    send: post(versioned.handler, "/api/v3/documents", { id: "a", content: "hello", labels: { lang: "en" } })
  },
  {
    name: "POST /api/v1 (2 changes)",
    send: post(versioned.handler, "/api/v1/documents", { id: "a", text: "hello", metadata: { lang: "en" } })
  }
]

interface Cost {
  /** CPU time of this process (user + system), µs per request: what the server's work costs. */
  readonly cpu: number
  /** Elapsed time, µs per request (on a loaded machine it includes other processes' turns). */
  readonly wall: number
}

const block = Number(process.env.BENCH_BLOCK ?? 200)

const send = async (contestant: Contestant, n: number) => {
  for (let i = 0; i < n; i++) {
    const response = await contestant.send()
    await response.arrayBuffer()
    if (response.status >= 300) throw new Error(`${contestant.name}: ${response.status}`)
  }
}

/**
 * One round: `requests` requests per contestant, sent in blocks of `block` that take turns (in an order that
 * alternates from block to block), so that the machine's drift during the round falls on every contestant alike.
 */
const round = async (requests: number): Promise<ReadonlyArray<Cost>> => {
  const cpu = contestants.map(() => 0)
  const wall = contestants.map(() => 0)
  const blocks = Math.ceil(requests / block)
  for (let b = 0; b < blocks; b++) {
    const order = b % 2 === 0 ? contestants.map((_, i) => i) : contestants.map((_, i) => contestants.length - 1 - i)
    for (const i of order) {
      const cpuStart = process.cpuUsage()
      const start = process.hrtime.bigint()
      await send(contestants[i]!, block)
      wall[i]! += Number(process.hrtime.bigint() - start) / 1000
      const used = process.cpuUsage(cpuStart)
      cpu[i]! += used.user + used.system
    }
  }
  const n = blocks * block
  return contestants.map((_, i) => ({ cpu: cpu[i]! / n, wall: wall[i]! / n }))
}

const median = (xs: ReadonlyArray<number>) => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}
const f = (n: number) => n.toFixed(1)
const spread = (xs: ReadonlyArray<number>) => `${f(Math.min(...xs))}–${f(Math.max(...xs))}`

const main = async () => {
  // The document every request reads or re-ingests (an idempotent ingest).
  for (const { handler } of [versioned, plain]) {
    await post(handler, "/api/v3/documents", { id: "a", content: "hello", labels: { lang: "en" } })()
  }
  await round(Math.min(2000, requests)) // warm-up
  const rounds: Array<ReadonlyArray<Cost>> = []
  const started = Date.now()
  while (rounds.length < roundCount && (rounds.length < 5 || Date.now() - started < budgetMs)) {
    rounds.push(await round(requests))
  }
  const of = (i: number, metric: keyof Cost) => rounds.map((r) => r[i]![metric])
  console.log(
    `versioning, in-process (HttpRouter.toWebHandler): ${rounds.length} rounds × ${requests} requests per contestant ` +
      `(blocks of ${block} taking turns), node ${process.version}`
  )
  console.log("")
  console.log("| contestant | CPU µs/request (median) | min–max | wall µs/request (median) | min–max |")
  console.log("| --- | ---: | ---: | ---: | ---: |")
  contestants.forEach((c, i) =>
    console.log(
      `| ${c.name} | ${f(median(of(i, "cpu")))} | ${spread(of(i, "cpu"))} | ${f(median(of(i, "wall")))} | ${
        spread(of(i, "wall"))
      } |`
    )
  )
  const paired = (label: string, a: number, b: number) => {
    const diffs = of(a, "cpu").map((x, r) => x - of(b, "cpu")[r]!)
    const ratio = of(a, "cpu").map((x, r) => (x / of(b, "cpu")[r]! - 1) * 100)
    console.log(`| ${label} | ${f(median(diffs))} | ${spread(diffs)} | ${f(median(ratio))}% |`)
  }
  console.log("")
  console.log("| paired difference per round (CPU) | µs/request (median) | min–max | relative (median) |")
  console.log("| --- | ---: | ---: | ---: |")
  paired("negotiation + headers: GET /api/v3 − plain v3", 1, 0)
  paired("2-step chain: GET /api/v1 − GET /api/v3", 2, 1)
  paired("header + URL rewrite: GET /api (v1) − GET /api/v1", 3, 2)
  paired("negotiation + headers: POST /api/v3 − plain v3", 5, 4)
  paired("2-step chain: POST /api/v1 − POST /api/v3", 6, 5)
  await versioned.dispose()
  await plain.dispose()
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
