/**
 * The HTTP contract as a client sees it, recorded once and compared on every run: the bundled server
 * (`apps/server/dist/main.js`) is started as a process and sent a fixed sequence of requests (every endpoint, success
 * and error), and each reply's status, contract headers and body must equal the recording in
 * `test/fixtures/contract.json`.
 *
 * This test uses no Effect API on purpose: it was recorded against the Effect 3 server and holds the Effect 4 port
 * (and later changes) to the same answers. Values that differ from run to run (times, durations, generated ids,
 * minted correlation ids) are replaced by placeholders before the comparison; everything else must match exactly.
 * Schema decode messages are worded by the Schema library, so for those only the problem's members (not the wording of
 * `detail`) are compared.
 *
 * `RECORD_CONTRACT=1 npx vitest run test/Contract.test.ts` rewrites the recording: do that only for a deliberate
 * change of the contract, and say so in the commit.
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "vitest"

const fixture = new URL("./fixtures/contract.json", import.meta.url).pathname
const main = new URL("../apps/server/dist/main.js", import.meta.url).pathname
const record = process.env.RECORD_CONTRACT === "1"

const keys = {
  admin: "contract-admin-key-0123456789",
  tenantA: "contract-tenant-a-key-0123456789",
  tenantB: "contract-tenant-b-key-0123456789"
}
const json = { "content-type": "application/json" }
const A = { "x-api-key": keys.tenantA, ...json }
const B = { "x-api-key": keys.tenantB, ...json }
const admin = { "x-api-key": keys.admin, ...json }

interface Step {
  readonly name: string
  readonly method?: string
  readonly path: string
  readonly headers?: Record<string, string>
  readonly body?: unknown
  /** A Schema decode failure: its `detail` is the Schema library's wording, compared for presence only. */
  readonly schemaDetail?: boolean
  /** Keep only this much of the body (large or library-made documents). */
  readonly summary?: (body: unknown, text: string) => unknown
}

const zebras = "Zebras are African equines with distinctive black-and-white striped coats. " +
  "Each zebra has its own pattern of stripes."
const tea = "Green tea is made from the leaves of Camellia sinensis. It is steamed or pan-fired to stop oxidation."

const operations = (body: unknown) => {
  const paths = (body as { paths: Record<string, Record<string, unknown>> }).paths
  return Object.entries(paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
    .sort()
}

// Our own metric families (the runtime's own, such as Effect's fiber metrics, are not part of the contract).
const families = (_: unknown, text: string) =>
  [...new Set(text.split("\n").filter((l) => l.startsWith("# TYPE ")).map((l) => l.split(" ").slice(2).join(" ")))]
    .filter((l) => !l.startsWith("effect_")).sort()

const steps: ReadonlyArray<Step> = [
  // Probes and documents
  { name: "live", path: "/health/live" },
  { name: "ready", path: "/health/ready" },
  { name: "startup", path: "/health/startup" },
  { name: "openapi", path: "/openapi.json", summary: operations },
  { name: "docs", path: "/docs", summary: () => "html" },
  { name: "unknown route", path: "/nope" },
  { name: "unknown api route", path: "/api/v1/nope", headers: A },
  { name: "wrong method", method: "GET", path: "/api/v1/search", headers: A },
  // Authentication
  { name: "whoami", path: "/api/v1/whoami", headers: A },
  { name: "no key", method: "POST", path: "/api/v1/search", headers: json, body: { query: "x" } },
  { name: "bad key", method: "POST", path: "/api/v1/search", headers: { "x-api-key": "wrong-key-0123456789", ...json }, body: { query: "x" } },
  { name: "tenant on admin", path: "/admin/projections/vectors", headers: A },
  { name: "admin on api", method: "POST", path: "/api/v1/search", headers: admin, body: { query: "x" } },
  // Documents
  { name: "ingest zebras", method: "POST", path: "/api/v1/documents", headers: A, body: { id: "zebras", text: zebras, metadata: { topic: "animals", lang: "en" } } },
  { name: "ingest zebras again", method: "POST", path: "/api/v1/documents", headers: A, body: { id: "zebras", text: zebras, metadata: { topic: "animals", lang: "en" } } },
  { name: "ingest tea", method: "POST", path: "/api/v1/documents", headers: A, body: { id: "tea", text: tea, metadata: { topic: "drinks" } } },
  { name: "ingest without id", method: "POST", path: "/api/v1/documents", headers: B, body: { text: "Otters hold hands while they sleep." } },
  { name: "get zebras", path: "/api/v1/documents/zebras", headers: A },
  { name: "get zebras as B", path: "/api/v1/documents/zebras", headers: B },
  { name: "get unknown", path: "/api/v1/documents/unknown", headers: A },
  { name: "bad id", path: "/api/v1/documents/bad%24id", headers: A, schemaDetail: true },
  { name: "empty text", method: "POST", path: "/api/v1/documents", headers: A, body: { text: "   " }, schemaDetail: true },
  { name: "missing text", method: "POST", path: "/api/v1/documents", headers: A, body: { id: "x" }, schemaDetail: true },
  { name: "malformed json", method: "POST", path: "/api/v1/documents", headers: A, body: "{ not json" },
  { name: "too large", method: "POST", path: "/api/v1/documents", headers: A, body: { text: "x".repeat(5000) } },
  // Search and ask
  { name: "search", method: "POST", path: "/api/v1/search", headers: A, body: { query: "striped animals from Africa", limit: 5 } },
  { name: "search filtered", method: "POST", path: "/api/v1/search", headers: A, body: { query: "striped animals", filter: { must: [{ key: "topic", match: { value: "drinks" } }] } } },
  { name: "search bad filter", method: "POST", path: "/api/v1/search", headers: A, body: { query: "x", filter: { must: [{ key: 3 }] } }, schemaDetail: true },
  { name: "search as B", method: "POST", path: "/api/v1/search", headers: B, body: { query: "zebras" } },
  { name: "search bad limit", method: "POST", path: "/api/v1/search", headers: A, body: { query: "x", limit: 0 }, schemaDetail: true },
  { name: "ask", method: "POST", path: "/api/v1/ask", headers: A, body: { question: "What do zebras look like?" } },
  { name: "ask without rag", method: "POST", path: "/api/v1/ask", headers: A, body: { question: "What do zebras look like?", useRag: false } },
  { name: "ask over its limit", method: "POST", path: "/api/v1/ask", headers: A, body: { question: "Tea?" } },
  // Pipelines
  { name: "pipeline", method: "POST", path: "/api/v1/pipelines", headers: A, body: { script: "SetTopic('zebras') | UseRetrieval | UseDraft | UseCritique | UseImprove" } },
  { name: "pipeline read", path: "/api/v1/pipelines/{pipeline}", headers: A },
  { name: "pipeline read as B", path: "/api/v1/pipelines/{pipeline}", headers: B },
  { name: "pipeline syntax error", method: "POST", path: "/api/v1/pipelines", headers: A, body: { script: "SetTopic('x') | UseDarft" } },
  // Admin
  { name: "projection status", path: "/admin/projections/vectors", headers: admin },
  { name: "projection rebuild", method: "POST", path: "/admin/projections/vectors/rebuild", headers: admin },
  { name: "breakers", path: "/admin/circuit-breakers", headers: admin },
  { name: "breaker force-open", method: "POST", path: "/admin/circuit-breakers/ollama/force-open", headers: admin },
  { name: "breaker force-close", method: "POST", path: "/admin/circuit-breakers/ollama/force-close", headers: admin },
  { name: "breaker reset", method: "POST", path: "/admin/circuit-breakers/ollama/reset", headers: admin },
  { name: "breaker unknown", method: "POST", path: "/admin/circuit-breakers/nope/reset", headers: admin },
  { name: "backup create", method: "POST", path: "/admin/backups", headers: admin, body: {} },
  { name: "backup list", path: "/admin/backups", headers: admin },
  { name: "backup verify", method: "POST", path: "/admin/backups/{backup}/verify", headers: admin },
  { name: "backup verify unknown", method: "POST", path: "/admin/backups/nope/verify", headers: admin },
  { name: "delete tea", method: "DELETE", path: "/api/v1/documents/tea", headers: A },
  { name: "delete tea again", method: "DELETE", path: "/api/v1/documents/tea", headers: A },
  { name: "get tea deleted", path: "/api/v1/documents/tea", headers: A },
  { name: "backup restore", method: "POST", path: "/admin/backups/{backup}/restore", headers: admin, body: {} },
  { name: "get tea restored", path: "/api/v1/documents/tea", headers: A },
  { name: "metrics", path: "/metrics", summary: families },
  // Correlation: an invalid id is replaced, a valid one echoed (every other step sends its own valid id)
  { name: "minted correlation id", path: "/api/v1/whoami", headers: { "x-api-key": keys.tenantA, "x-correlation-id": "bad id with spaces" } }
]

// The response fields that are part of the contract.
const contractHeaders = [
  "content-type",
  "x-correlation-id",
  "retry-after",
  "ratelimit",
  "ratelimit-policy",
  "allow",
  "cache-control",
  "connection",
  "location",
  "api-version",
  "api-supported-versions",
  "deprecation",
  "sunset",
  "link"
]

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const isoTime = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/
// Fields whose values are measured or generated per run.
const volatileNumbers = new Set([
  "observedValue",
  "durationMs",
  "elapsedMs",
  "tookMs",
  "bytes",
  "sizeBytes",
  "retryAfter",
  "openedAt",
  "lastTransitionAt",
  "nextAttemptAt",
  "uptime",
  "version",
  "sequence",
  "appliedSequence",
  "lastSequence",
  "events",
  "size"
])

const normalize = (value: unknown, key: string | undefined, ids: Map<string, string>): unknown => {
  if (typeof value === "string") {
    if (isoTime.test(value)) return "<time>"
    if (/^[0-9a-f]{64}$/.test(value)) return "<sha256>"
    let out = value
    for (const [id, placeholder] of ids) out = out.split(id).join(placeholder)
    return uuid.test(out) ? "<uuid>" : out
  }
  if (typeof value === "number") {
    if (key !== undefined && volatileNumbers.has(key)) return "<number>"
    if (key === "score") return Math.round(value * 1e4) / 1e4
    return value
  }
  if (Array.isArray(value)) return value.map((v) => normalize(v, undefined, ids))
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {}
    for (const k of Object.keys(value).sort()) {
      if (k === "time" || k === "timestamp" || k === "createdAt" || k === "startedAt" || k === "finishedAt") {
        out[k] = "<time>"
      } else {
        out[k] = normalize((value as Record<string, unknown>)[k], k, ids)
      }
    }
    return out
  }
  return value
}

const normalizeHeader = (name: string, value: string, correlationId: string | undefined): string => {
  if (name === "x-correlation-id") return value === correlationId ? "<sent>" : uuid.test(value) ? "<uuid>" : value
  if (name === "retry-after") return "<seconds>"
  if (name === "ratelimit") return value.replace(/t=\d+/g, "t=<seconds>")
  return value
}

interface Recorded {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: unknown
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as Net.AddressInfo
      server.close(() => resolve(address.port))
    })
  })

let url = ""
let dataDir = ""
let child: ReturnType<typeof spawn> | undefined
let output = ""

beforeAll(async () => {
  dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-contract-"))
  const port = await freePort()
  url = `http://127.0.0.1:${port}`
  child = spawn(process.execPath, [main], {
    env: {
      PATH: process.env.PATH ?? "",
      PORT: String(port),
      HOST: "127.0.0.1",
      DATA_DIR: dataDir,
      LOG_LEVEL: "error",
      MAX_BODY_BYTES: "4096",
      SHUTDOWN_DRAIN_MS: "0",
      OUROBOROS_ADMIN_API_KEY: keys.admin,
      OUROBOROS_API_KEYS: `tenant-a:${keys.tenantA},tenant-b:${keys.tenantB}`,
      // A bucket that refills one token every 36 s: the remaining counts in the RateLimit fields do not depend on how
      // long the run takes (100/1m refills one every 600 ms, and a slow machine saw one more token than recorded).
      RATE_LIMIT_DEFAULT: "100/1h",
      RATE_LIMIT_POLICIES: JSON.stringify([
        { name: "ask", limit: 2, window: "1h", scope: ["api-key", "endpoint"], endpoints: ["POST /api/v1/ask"] }
      ])
    },
    stdio: ["ignore", "pipe", "pipe"]
  })
  child.stdout?.on("data", (chunk) => (output += String(chunk)))
  child.stderr?.on("data", (chunk) => (output += String(chunk)))
  // Poll until ready; the deadline only bounds the test.
  const deadline = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited: ${output}`)
    const ready = await fetch(`${url}/health/ready`).then((r) => r.status === 200, () => false)
    if (ready) break
    if (Date.now() > deadline) throw new Error(`the server did not get ready: ${output}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}, 90_000)

afterAll(async () => {
  if (child !== undefined && child.exitCode === null) {
    const exited = new Promise((resolve) => child!.once("exit", resolve))
    child.kill("SIGTERM")
    await exited
  }
  Fs.rmSync(dataDir, { recursive: true, force: true })
}, 60_000)

describe("HTTP contract", () => {
  it("answers a recorded sequence of requests exactly as recorded", async () => {
    const ids = new Map<string, string>()
    const vars: Record<string, string> = {}
    const replies: Record<string, Recorded> = {}
    let n = 0
    for (const step of steps) {
      n++
      const path = step.path.replace(/\{(\w+)\}/g, (_, name: string) => vars[name] ?? `{${name}}`)
      const headers: Record<string, string> = { "x-correlation-id": `c${n}-contract`, ...step.headers }
      const correlationId = headers["x-correlation-id"]
      const response = await fetch(`${url}${path}`, {
        method: step.method ?? "GET",
        headers,
        ...(step.body === undefined ? {} : { body: typeof step.body === "string" ? step.body : JSON.stringify(step.body) })
      })
      const text = await response.text()
      let body: unknown = text === "" ? undefined : text
      try {
        body = text === "" ? undefined : JSON.parse(text)
      } catch {
        // not JSON
      }
      if (step.name === "pipeline" && typeof (body as { id?: unknown }).id === "string") {
        vars.pipeline = (body as { id: string }).id
        ids.set(vars.pipeline, "<pipeline-id>")
      }
      if (step.name === "backup create" && typeof (body as { id?: unknown }).id === "string") {
        vars.backup = (body as { id: string }).id
        ids.set(vars.backup, "<backup-id>")
      }
      if (step.name === "ingest without id" && typeof (body as { id?: unknown }).id === "string") {
        ids.set((body as { id: string }).id, "<document-id>")
      }
      if (typeof correlationId === "string") ids.set(correlationId, "<sent>")
      let shown = step.summary !== undefined ? step.summary(body, text) : normalize(body, undefined, ids)
      if (step.schemaDetail === true && typeof shown === "object" && shown !== null && "detail" in shown) {
        // The wording is the Schema library's; the paths it names are ours.
        const issues = (shown as { issues?: ReadonlyArray<{ path: unknown }> }).issues
        shown = {
          ...shown,
          detail: "<schema message>",
          ...(issues === undefined ? {} : { issues: [...new Set(issues.map((i) => JSON.stringify(i.path)))] })
        }
      }
      const recordedHeaders: Record<string, string> = {}
      for (const name of contractHeaders) {
        const value = response.headers.get(name)
        if (value !== null) recordedHeaders[name] = normalizeHeader(name, value, correlationId)
      }
      replies[`${String(n).padStart(2, "0")} ${step.name}`] = {
        status: response.status,
        headers: recordedHeaders,
        body: shown ?? null
      }
    }
    if (record) {
      Fs.mkdirSync(Path.dirname(fixture), { recursive: true })
      Fs.writeFileSync(fixture, JSON.stringify(replies, null, 2) + "\n")
      return
    }
    const expected = JSON.parse(Fs.readFileSync(fixture, "utf8")) as Record<string, Recorded>
    assert.deepStrictEqual(Object.keys(replies), Object.keys(expected), "the same steps")
    for (const [name, reply] of Object.entries(replies)) {
      assert.deepStrictEqual(reply, expected[name], `step "${name}"`)
    }
  }, 120_000)
})
