/**
 * The HTTP contract as a client sees it, recorded once and compared on every run: the bundled server
 * (`apps/server/dist/main.js`) is started as a process and sent a fixed sequence of requests (every endpoint, success
 * and error), and each reply's status, contract headers and body must equal the recording in
 * `test/fixtures/contract.json`.
 *
 * This test uses no Effect API on purpose: it was recorded against the Effect 3 server and holds the Effect 4 port
 * (and later changes) to the same answers. Re-recorded on purpose once since, for the principal-first edge, API
 * versions and flags (issues 15, 16, 18): one 401 body with `WWW-Authenticate`, the version headers, unknown keys
 * limited by address, a configured key's subject is its key id, the new health check, metric families and admin
 * groups; the steps after the first 55 cover v2, negotiation, a sunset version (a second server) and tenancy. Re-recorded
 * again on purpose for the issue 21 contract change (problems with documented `type` URIs and no `_tag`, a `detail` on
 * router 404s and malformed JSON, 405 with `Allow`), the admin and documents rate-limit policies, compression's `Vary`,
 * the RED and audit metric families, the `/admin/audit` routes, keys' `lastUsedAt` and the `vector-projection:lag`
 * readiness check. Values that differ from run to run (times, durations, generated ids,
 * minted correlation ids) are replaced by placeholders before the comparison; everything else must match exactly.
 * Schema decode messages are worded by the Schema library, so for those only the problem's members (not the wording of
 * `detail`) are compared.
 *
 * `RECORD_CONTRACT=1 npx vitest run test/Contract.test.ts` rewrites the recording: do that only for a deliberate
 * change of the contract, and say so in the commit.
 */
import { SignJWT } from "jose"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type Running, startServer, stopServer } from "./server.js"

const fixture = new URL("./fixtures/contract.json", import.meta.url).pathname
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
  /** The server to ask: the main one, or the one whose v1 is past its sunset. */
  readonly server?: "main" | "sunset"
  readonly method?: string
  /** `{name}` is replaced by a value captured from an earlier reply (see `capture`). */
  readonly path: string
  /** Values may hold `{name}` too. */
  readonly headers?: Record<string, string>
  readonly body?: unknown
  /** Values to keep from the reply for later steps, each with the placeholder that stands for it in recordings. */
  readonly capture?: (body: any) => Record<string, { readonly value: string; readonly placeholder: string }>
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
  {
    name: "bad key",
    method: "POST",
    path: "/api/v1/search",
    headers: { "x-api-key": "wrong-key-0123456789", ...json },
    body: { query: "x" }
  },
  { name: "tenant on admin", path: "/admin/projections/vectors", headers: A },
  { name: "admin on api", method: "POST", path: "/api/v1/search", headers: admin, body: { query: "x" } },
  // Documents
  {
    name: "ingest zebras",
    method: "POST",
    path: "/api/v1/documents",
    headers: A,
    body: { id: "zebras", text: zebras, metadata: { topic: "animals", lang: "en" } }
  },
  {
    name: "ingest zebras again",
    method: "POST",
    path: "/api/v1/documents",
    headers: A,
    body: { id: "zebras", text: zebras, metadata: { topic: "animals", lang: "en" } }
  },
  {
    name: "ingest tea",
    method: "POST",
    path: "/api/v1/documents",
    headers: A,
    body: { id: "tea", text: tea, metadata: { topic: "drinks" } }
  },
  {
    name: "ingest without id",
    method: "POST",
    path: "/api/v1/documents",
    headers: B,
    body: { text: "Otters hold hands while they sleep." }
  },
  { name: "get zebras", path: "/api/v1/documents/zebras", headers: A },
  { name: "get zebras as B", path: "/api/v1/documents/zebras", headers: B },
  { name: "get unknown", path: "/api/v1/documents/unknown", headers: A },
  { name: "bad id", path: "/api/v1/documents/bad%24id", headers: A, schemaDetail: true },
  {
    name: "empty text",
    method: "POST",
    path: "/api/v1/documents",
    headers: A,
    body: { text: "   " },
    schemaDetail: true
  },
  {
    name: "missing text",
    method: "POST",
    path: "/api/v1/documents",
    headers: A,
    body: { id: "x" },
    schemaDetail: true
  },
  { name: "malformed json", method: "POST", path: "/api/v1/documents", headers: A, body: "{ not json" },
  { name: "too large", method: "POST", path: "/api/v1/documents", headers: A, body: { text: "x".repeat(5000) } },
  // Search and ask
  {
    name: "search",
    method: "POST",
    path: "/api/v1/search",
    headers: A,
    body: { query: "striped animals from Africa", limit: 5 }
  },
  {
    name: "search filtered",
    method: "POST",
    path: "/api/v1/search",
    headers: A,
    body: { query: "striped animals", filter: { must: [{ key: "topic", match: { value: "drinks" } }] } }
  },
  {
    name: "search bad filter",
    method: "POST",
    path: "/api/v1/search",
    headers: A,
    body: { query: "x", filter: { must: [{ key: 3 }] } },
    schemaDetail: true
  },
  { name: "search as B", method: "POST", path: "/api/v1/search", headers: B, body: { query: "zebras" } },
  {
    name: "search bad limit",
    method: "POST",
    path: "/api/v1/search",
    headers: A,
    body: { query: "x", limit: 0 },
    schemaDetail: true
  },
  { name: "ask", method: "POST", path: "/api/v1/ask", headers: A, body: { question: "What do zebras look like?" } },
  {
    name: "ask without rag",
    method: "POST",
    path: "/api/v1/ask",
    headers: A,
    body: { question: "What do zebras look like?", useRag: false }
  },
  { name: "ask over its limit", method: "POST", path: "/api/v1/ask", headers: A, body: { question: "Tea?" } },
  // Pipelines
  {
    name: "pipeline",
    method: "POST",
    path: "/api/v1/pipelines",
    headers: A,
    body: { script: "SetTopic('zebras') | UseRetrieval | UseDraft | UseCritique | UseImprove" }
  },
  { name: "pipeline read", path: "/api/v1/pipelines/{pipeline}", headers: A },
  { name: "pipeline read as B", path: "/api/v1/pipelines/{pipeline}", headers: B },
  {
    name: "pipeline syntax error",
    method: "POST",
    path: "/api/v1/pipelines",
    headers: A,
    body: { script: "SetTopic('x') | UseDarft" }
  },
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
  {
    name: "minted correlation id",
    path: "/api/v1/whoami",
    headers: { "x-api-key": keys.tenantA, "x-correlation-id": "bad id with spaces" }
  },
  // API v2: envelopes, cursor lists; negotiation on /api/...; a version past its sunset; a document per version
  { name: "v2 whoami", path: "/api/v2/whoami", headers: A },
  {
    name: "v2 ingest",
    method: "POST",
    path: "/api/v2/documents",
    headers: A,
    body: { id: "otters", text: "Otters hold hands while they sleep." }
  },
  { name: "v2 get", path: "/api/v2/documents/otters", headers: A },
  {
    name: "v2 search",
    method: "POST",
    path: "/api/v2/search",
    headers: A,
    body: { query: "sleeping otters", limit: 2 }
  },
  {
    name: "v2 list",
    path: "/api/v2/documents?limit=2",
    headers: A,
    capture: (body) => ({ cursor: { value: body.meta.nextCursor, placeholder: "<cursor>" } })
  },
  { name: "v2 list next page", path: "/api/v2/documents?limit=2&cursor={cursor}", headers: A },
  { name: "v2 list as B", path: "/api/v2/documents", headers: B },
  { name: "v2 list bad cursor", path: "/api/v2/documents?cursor=bm9wZQ", headers: A },
  { name: "v2 list bad limit", path: "/api/v2/documents?limit=0", headers: A, schemaDetail: true },
  { name: "v2 get unknown", path: "/api/v2/documents/unknown", headers: A },
  { name: "v2 no key", path: "/api/v2/whoami" },
  { name: "negotiated by default", path: "/api/whoami", headers: A },
  { name: "negotiated by header", path: "/api/whoami", headers: { ...A, "api-version": "v1" } },
  { name: "url wins over header", path: "/api/v1/whoami", headers: { ...A, "api-version": "v2" } },
  { name: "unknown version", path: "/api/v3/whoami", headers: A },
  { name: "versions", path: "/api/versions" },
  { name: "openapi v1", path: "/api/v1/openapi.json", summary: operations },
  { name: "openapi v2", path: "/api/v2/openapi.json", summary: operations },
  { name: "v1 after its sunset", server: "sunset", path: "/api/v1/documents/zebras", headers: A },
  { name: "v2 on the sunset server", server: "sunset", path: "/api/v2/whoami", headers: A },
  // Tenancy: tenants and keys, usage, a JWT, flags
  {
    name: "tenant create",
    method: "POST",
    path: "/admin/tenants",
    headers: admin,
    body: { id: "acme", name: "Acme", tier: "free" }
  },
  { name: "tenant create again", method: "POST", path: "/admin/tenants", headers: admin, body: { id: "acme" } },
  { name: "tenant create as tenant", method: "POST", path: "/admin/tenants", headers: A, body: { id: "other" } },
  { name: "tenant get", path: "/admin/tenants/acme", headers: admin },
  {
    name: "key create",
    method: "POST",
    path: "/admin/tenants/acme/keys",
    headers: admin,
    body: { name: "ci" },
    capture: (body) => ({
      key: { value: body.key, placeholder: "<api-key>" },
      keyId: { value: body.info.id, placeholder: "<key-id>" }
    })
  },
  { name: "new key whoami", path: "/api/v1/whoami", headers: { "x-api-key": "{key}" } },
  {
    name: "key rotate",
    method: "POST",
    path: "/admin/tenants/acme/keys/{keyId}/rotate",
    headers: admin,
    body: { gracePeriodSeconds: 0 },
    capture: (body) => ({
      rotated: { value: body.key, placeholder: "<api-key-2>" },
      rotatedId: { value: body.info.id, placeholder: "<key-id-2>" }
    })
  },
  { name: "old key after rotation", path: "/api/v1/whoami", headers: { "x-api-key": "{key}" } },
  { name: "rotated key whoami", path: "/api/v1/whoami", headers: { "x-api-key": "{rotated}" } },
  { name: "keys list", path: "/admin/tenants/acme/keys", headers: admin },
  { name: "key revoke", method: "DELETE", path: "/admin/tenants/acme/keys/{rotatedId}", headers: admin },
  { name: "revoked key", path: "/api/v1/whoami", headers: { "x-api-key": "{rotated}" } },
  { name: "key revoke unknown", method: "DELETE", path: "/admin/tenants/acme/keys/nope", headers: admin },
  { name: "usage", path: "/admin/tenants/tenant-a/usage?from={today}&to={today}", headers: admin },
  {
    name: "usage csv",
    path: "/admin/tenants/tenant-a/usage?from={today}&to={today}",
    headers: { ...admin, accept: "text/csv" },
    summary: (_, text) => text.replace(/\d{4}-\d{2}-\d{2}/g, "<date>")
  },
  { name: "usage bad range", path: "/admin/tenants/tenant-a/usage?from=2025-02-01&to=2025-01-01", headers: admin },
  { name: "usage of another tenant as its tenant", path: "/admin/tenants/tenant-b/usage", headers: A },
  { name: "jwt whoami", path: "/api/v1/whoami", headers: { authorization: "Bearer {token}" } },
  {
    name: "jwt v2 ingest",
    method: "POST",
    path: "/api/v2/documents",
    headers: { authorization: "Bearer {token}", ...json },
    body: { id: "jwt", text: "Written with a token." }
  },
  { name: "bad jwt", path: "/api/v1/whoami", headers: { authorization: "Bearer not.a.token" } },
  {
    name: "flags",
    path: "/admin/flags",
    headers: admin,
    summary: (body) => (body as ReadonlyArray<{ key: string }>).map((f) => f.key).sort()
  },
  { name: "flags as tenant", path: "/admin/flags", headers: A },
  { name: "tenant delete", method: "DELETE", path: "/admin/tenants/acme", headers: admin }
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
  "vary",
  "deprecation",
  "sunset",
  "link",
  "www-authenticate"
]

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const isoTime = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/
const isoDate = /^\d{4}-\d{2}-\d{2}$/
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
    if (isoDate.test(value)) return "<date>"
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

const jwtSecret = "contract-jwt-secret-of-at-least-32-bytes"

const startContractServer = (extra: Record<string, string>) =>
  startServer({
    LOG_LEVEL: "error",
    MAX_BODY_BYTES: "4096",
    OUROBOROS_ADMIN_API_KEY: keys.admin,
    OUROBOROS_API_KEYS: `tenant-a:${keys.tenantA},tenant-b:${keys.tenantB}`,
    JWT_SECRET: jwtSecret,
    // A bucket that refills one token every 36 s: the remaining counts in the RateLimit fields do not depend on how
    // long the run takes (100/1m refills one every 600 ms, and a slow machine saw one more token than recorded).
    RATE_LIMIT_DEFAULT: "100/1h",
    // The same for the admin and documents policies (per client address): one token a quarter of an hour.
    RATE_LIMIT_ADMIN: "100/24h",
    RATE_LIMIT_DOCS: "30/12h",
    RATE_LIMIT_POLICIES: JSON.stringify([
      { name: "ask", limit: 2, window: "1h", scope: ["api-key", "endpoint"], endpoints: ["POST /api/v1/ask"] }
    ]),
    ...extra
  })

let servers: { main?: Running; sunset?: Running } = {}
let token = ""

beforeAll(async () => {
  const [main_, sunset] = await Promise.all([
    startContractServer({}),
    // API v1 past its sunset (the lifecycle from the environment).
    startContractServer({ API_VERSIONS_DEPRECATED: "v1@2020-01-01", API_VERSIONS_SUNSET: "v1@2021-01-01" })
  ])
  servers = { main: main_, sunset }
  token = await new SignJWT({ tenant_id: "tenant-a", roles: ["writer", "reader"] })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject("contract-user")
    .setIssuedAt()
    .setExpirationTime("10m")
    .sign(new TextEncoder().encode(jwtSecret))
}, 90_000)

afterAll(async () => {
  await Promise.all([stopServer(servers.main), stopServer(servers.sunset)])
}, 60_000)

describe("HTTP contract", () => {
  it("answers a recorded sequence of requests exactly as recorded", async () => {
    const ids = new Map<string, string>()
    const vars: Record<string, string> = { token, today: new Date().toISOString().slice(0, 10) }
    ids.set(token, "<jwt>")
    const replies: Record<string, Recorded> = {}
    let n = 0
    for (const step of steps) {
      n++
      const fill = (template: string) => template.replace(/\{(\w+)\}/g, (_, name: string) => vars[name] ?? `{${name}}`)
      const path = fill(step.path)
      const headers: Record<string, string> = { "x-correlation-id": `c${n}-contract` }
      for (const [name, value] of Object.entries(step.headers ?? {})) headers[name] = fill(value)
      const correlationId = headers["x-correlation-id"]
      const url = servers[step.server ?? "main"]!.url
      const response = await fetch(`${url}${path}`, {
        method: step.method ?? "GET",
        headers,
        ...(step.body === undefined
          ? {}
          : { body: typeof step.body === "string" ? step.body : JSON.stringify(step.body) })
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
      for (const [name, { placeholder, value }] of Object.entries(step.capture?.(body) ?? {})) {
        vars[name] = value
        ids.set(value, placeholder)
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
