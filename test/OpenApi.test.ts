/**
 * The HTTP contract as generated clients see it (issue 21): the real server's OpenAPI documents are valid
 * (`@apidevtools/swagger-parser`), lint clean (`@redocly/cli`, recommended rules, no errors), and tell the truth: every
 * documented operation is sent a success case and error cases, and each real response (status, media type, body and
 * header fields) is validated against the document with ajv (JSON Schema 2020-12, as OpenAPI 3.1 uses it).
 *
 * Every error must be `application/problem+json` with a documented `type` URI and no internal `_tag`; a wrong method on
 * a served path is a 405 with `Allow`; an unknown route's 404 has a `detail`. At the end, every operation of every
 * document must have been seen answering a documented success and a documented client error.
 *
 * Not exercised here (declared by the document, answered by code tested elsewhere): 500 (a defect: kernel tests) and
 * 503 (load shedding, a dependency down, draining: `test/CircuitBreaker.test.ts`, `test/Shutdown.test.ts`).
 *
 * It holds the server's wiring of `ProblemHttp.make(ProblemHttp.rfc9457 + routes)` and of `ProblemOpenApi.transform`
 * (through `VersioningHttp.layerDocs`'s `transform`): without them every check of a document or a problem fails.
 * An endpoint added to the server must be given a success and a client-error call here (the last case lists gaps).
 */
import SwaggerParser from "@apidevtools/swagger-parser"
import { assert, describe, it } from "@effect/vitest"
import { Testing } from "@ouroboros/server"
import { OllamaStandIn } from "@ouroboros/testkit"
import addFormats from "ajv-formats"
import Ajv2020 from "ajv/dist/2020.js"
import { Effect, Exit, Scope } from "effect"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, beforeAll } from "vitest"

type Json = Record<string, any>

const typeBase = "https://ouroboros.dev/problems/"
const keys = Testing.keys
const json = { "content-type": "application/json" }
const A = { "x-api-key": keys.tenantA, ...json }
const B = { "x-api-key": keys.tenantB, ...json }
const admin = { "x-api-key": keys.admin, ...json }
const maxBodyBytes = 65_536

// -----------------------------------------------------------------------------
// documents
// -----------------------------------------------------------------------------

interface Document {
  readonly name: string
  readonly spec: Json
  readonly ajv: InstanceType<typeof Ajv2020.default>
  readonly id: string
}

const methods = ["get", "put", "post", "delete", "patch"] as const

const escape = (token: string) => token.replace(/~/g, "~0").replace(/\//g, "~1")

const resolvePointer = (spec: Json, ref: string): any =>
  ref.slice(2).split("/").map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~")).reduce<any>((v, t) => v?.[t], spec)

const makeDocument = (name: string, spec: Json): Document => {
  const ajv = new Ajv2020.default({ strict: false, allErrors: true })
  addFormats.default(ajv)
  const id = `https://ouroboros.test/${name}`
  ajv.addSchema({ ...spec, $id: id })
  return { name, spec, ajv, id }
}

const operationsOf = (spec: Json): Array<{ readonly method: string; readonly template: string }> =>
  Object.entries<Json>(spec.paths).flatMap(([template, item]) =>
    methods.filter((m) => item[m] !== undefined).map((method) => ({ method, template }))
  )

// The template of a request path: the one with the most literal segments among those that match.
const templateOf = (spec: Json, method: string, path: string): string | undefined => {
  const segments = path.split("?")[0]!.split("/")
  let best: { template: string; literals: number } | undefined
  for (const template of Object.keys(spec.paths)) {
    if (spec.paths[template][method] === undefined) continue
    const parts = template.split("/")
    if (parts.length !== segments.length) continue
    let literals = 0
    const matches = parts.every((part, i) => {
      if (/^\{[^}]+\}$/.test(part)) return segments[i] !== ""
      literals++
      return part === segments[i]
    })
    if (matches && (best === undefined || literals > best.literals)) best = { template, literals }
  }
  return best?.template
}

// -----------------------------------------------------------------------------
// calls, each validated against the document
// -----------------------------------------------------------------------------

interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  readonly body: any
}

const seen = new Map<string, Set<number>>()
const documents = new Map<string, Document>()
let url = ""

const documentFor = (path: string): Document => {
  const version = /^\/api\/(v\d+)\//.exec(path)?.[1]
  return documents.get(version ?? "default")!
}

const send = async (
  name: string,
  method: string,
  path: string,
  options: {
    readonly headers?: Record<string, string>
    readonly body?: unknown
    readonly expect: number
    readonly base?: string
  }
): Promise<Reply> => {
  const raw = options.body === undefined
    ? undefined
    : typeof options.body === "string"
    ? options.body
    : JSON.stringify(options.body)
  const response = await fetch(`${options.base ?? url}${path}`, {
    method,
    headers: options.headers ?? {},
    ...(raw === undefined ? {} : { body: raw })
  })
  const text = await response.text()
  let body: unknown = undefined
  try {
    body = text === "" ? undefined : JSON.parse(text)
  } catch {
    body = text
  }
  const reply: Reply = { status: response.status, headers: response.headers, text, body }
  assert.strictEqual(reply.status, options.expect, `${name}: ${method} ${path} → ${reply.status} ${text.slice(0, 500)}`)
  validate(name, method, path, reply)
  return reply
}

/** The response against the document: status, media type, body, header fields; problems in the RFC 9457 style. */
const validate = (name: string, method: string, path: string, reply: Reply): void => {
  const document = documentFor(path)
  const { spec } = document
  const lower = method.toLowerCase()
  const template = templateOf(spec, lower, path)
  assert.isDefined(template, `${name}: ${method} ${path} is a documented operation of ${document.name}`)
  const key = `${document.name} ${method} ${template}`
  const statuses = seen.get(key) ?? new Set<number>()
  statuses.add(reply.status)
  seen.set(key, statuses)
  const responses = spec.paths[template!][lower].responses as Json
  const declared = responses[String(reply.status)] ?? responses[`${String(reply.status)[0]}XX`] ?? responses.default
  assert.isDefined(declared, `${name}: ${reply.status} is declared for ${key} (declared: ${Object.keys(responses)})`)
  const pointer = typeof declared.$ref === "string"
    ? declared.$ref.slice(1)
    : `/${["paths", template!, lower, "responses", String(reply.status)].map(escape).join("/")}`
  const response = resolvePointer(spec, `#${pointer}`) as Json
  const contentType = (reply.headers.get("content-type") ?? "").split(";")[0]!.trim()
  if (reply.text === "") {
    assert.oneOf(reply.status, [204, 304], `${name}: an empty body only for 204`)
  } else {
    // A declared media type may carry parameters (`text/plain; charset=utf-8`).
    const declaredType = Object.keys(response.content ?? {}).find((k) => k.split(";")[0]!.trim() === contentType)
    assert.isDefined(declaredType, `${name}: ${contentType} is declared for ${reply.status}`)
    const schema = document.ajv.getSchema(`${document.id}#${pointer}/content/${escape(declaredType!)}/schema`)
    assert.isDefined(schema, `${name}: a schema for ${contentType}`)
    const valid = schema!(reply.body)
    assert.isTrue(valid, `${name}: the body validates: ${reply.text.slice(0, 500)} ${JSON.stringify(schema!.errors)}`)
  }
  for (const [field, value] of Object.entries<Json>(response.headers ?? {})) {
    const header = (typeof value.$ref === "string" ? resolvePointer(spec, value.$ref) : value) as Json
    const actual = reply.headers.get(field)
    if (header.required === true) assert.isNotNull(actual, `${name}: the required field ${field} is sent`)
    if (actual === null || header.schema === undefined) continue
    const typed = header.schema.type === "integer" || header.schema.type === "number" ? Number(actual) : actual
    assert.isTrue(document.ajv.validate(header.schema, typed), `${name}: ${field}: ${actual} matches its schema`)
  }
  if (reply.status >= 400) problem(name, reply)
}

const problem = (name: string, reply: Reply): void => {
  assert.strictEqual(reply.headers.get("content-type"), "application/problem+json", `${name}: problem+json`)
  assert.notProperty(reply.body, "_tag", `${name}: no internal _tag`)
  assert.strictEqual(reply.body.status, reply.status, name)
  // A documented type: ours (`https://ouroboros.dev/problems/…`) or a registered one (IANA's `quota-exceeded`).
  assert.match(String(reply.body.type), /^https:\/\/[^\s]+$/, `${name}: a documented type URI`)
  assert.isString(reply.body.title, name)
  assert.isString(reply.body.correlationId, name)
}

// -----------------------------------------------------------------------------
// the server
// -----------------------------------------------------------------------------

let scope: Scope.Closeable
let limited = ""

beforeAll(async () => {
  scope = await Effect.runPromise(Scope.make())
  const start = (env: Record<string, string>) => Effect.runPromise(Scope.provide(scope)(Testing.start(env)))
  url = (await start({ MAX_BODY_BYTES: String(maxBodyBytes) })).url
  limited = (await start({ RATE_LIMIT_DEFAULT: "1/1m" })).url
  const versions = (await (await fetch(`${url}/api/versions`)).json()) as { versions: Array<{ version: string }> }
  documents.set("default", makeDocument("default", await (await fetch(`${url}/openapi.json`)).json() as Json))
  for (const { version } of versions.versions) {
    documents.set(
      version,
      makeDocument(version, await (await fetch(`${url}/api/${version}/openapi.json`)).json() as Json)
    )
  }
}, 180_000)

afterAll(async () => {
  if (scope !== undefined) await Effect.runPromise(Scope.close(scope, Exit.void))
})

// -----------------------------------------------------------------------------
// the documents themselves
// -----------------------------------------------------------------------------

describe("the OpenAPI documents", () => {
  it("one per served version, each valid for swagger-parser, with the server's version, servers and valid names", async () => {
    assert.isAtLeast(documents.size, 3)
    for (const document of documents.values()) {
      await SwaggerParser.validate(structuredClone(document.spec) as never)
      assert.match(document.spec.openapi, /^3\.1\./)
      assert.strictEqual(document.spec.info.version, "0.1.0", document.name)
      assert.isAbove(document.spec.servers?.length ?? 0, 0, `${document.name}: servers`)
      for (const section of Object.values<Json>(document.spec.components)) {
        for (const key of Object.keys(section)) assert.match(key, /^[a-zA-Z0-9._-]+$/, `${document.name}: ${key}`)
      }
      assert.property(document.spec.components.schemas, "Problem")
      // Every error response of every operation is a problem; every response names the correlation id.
      for (const { method, template } of operationsOf(document.spec)) {
        for (const [status, value] of Object.entries<Json>(document.spec.paths[template][method].responses)) {
          const response = typeof value.$ref === "string" ? resolvePointer(document.spec, value.$ref) : value
          assert.property(
            response.headers ?? {},
            "X-Correlation-ID",
            `${document.name} ${method} ${template} ${status}`
          )
          if (Number(status) < 400) continue
          assert.property(response.content, "application/problem+json", `${method} ${template} ${status}`)
          assert.notProperty(response.content, "application/json", `${method} ${template} ${status}`)
        }
      }
    }
  })

  it("lint clean with @redocly/cli's recommended rules (no errors)", () => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-openapi-"))
    try {
      for (const document of documents.values()) {
        const file = Path.join(dir, `${document.name}.json`)
        Fs.writeFileSync(file, JSON.stringify(document.spec))
        const cli = new URL("../node_modules/@redocly/cli/bin/cli.js", import.meta.url).pathname
        const run = spawnSync(process.execPath, [cli, "lint", "--extends", "recommended", "--format", "json", file], {
          encoding: "utf8",
          env: { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" },
          maxBuffer: 64 * 1024 * 1024
        })
        const report = JSON.parse(run.stdout.slice(run.stdout.indexOf("{"))) as {
          totals: { errors: number }
          problems: Array<{ ruleId: string; severity: string; message: string }>
        }
        const errors = report.problems.filter((p) => p.severity === "error")
        assert.strictEqual(report.totals.errors, 0, `${document.name}: ${JSON.stringify(errors.slice(0, 5))}`)
      }
    } finally {
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 120_000)
})

// -----------------------------------------------------------------------------
// every operation, its success and its errors
// -----------------------------------------------------------------------------

const zebras = "Zebras are African equines with distinctive black-and-white striped coats."
const deep = (levels: number) => `{"query":"x","filter":${"{\"must\":[".repeat(levels)}{}${"]}".repeat(levels)}}`
const today = () => new Date().toISOString().slice(0, 10)

describe("real responses against the documents", () => {
  it("probes and the unversioned admin api", async () => {
    for (const probe of ["live", "ready", "startup"]) await send(probe, "GET", `/health/${probe}`, { expect: 200 })

    await send("projections", "GET", "/admin/projections/vectors", { headers: admin, expect: 200 })
    await send("projections without a key", "GET", "/admin/projections/vectors", { expect: 401 })
    await send("projections as a tenant", "GET", "/admin/projections/vectors", { headers: A, expect: 403 })
    await send("rebuild", "POST", "/admin/projections/vectors/rebuild", { headers: admin, expect: 200 })
    await send("rebuild as a tenant", "POST", "/admin/projections/vectors/rebuild", { headers: A, expect: 403 })

    const created = await send("backup create", "POST", "/admin/backups", { headers: admin, expect: 201 })
    const backup = created.body.id as string
    assert.isString(backup)
    await send("backup create bad kind", "POST", "/admin/backups?kind=nope", { headers: admin, expect: 400 })
    await send("backup list", "GET", "/admin/backups", { headers: admin, expect: 200 })
    await send("backup list as a tenant", "GET", "/admin/backups", { headers: A, expect: 403 })
    await send("backup verify", "POST", `/admin/backups/${backup}/verify`, { headers: admin, expect: 200 })
    await send("backup verify unknown", "POST", "/admin/backups/nope/verify", { headers: admin, expect: 404 })
    // No body: the restore body is optional.
    await send("backup restore", "POST", `/admin/backups/${backup}/restore`, { headers: admin, expect: 200 })
    await send("backup restore unknown", "POST", "/admin/backups/nope/restore", { headers: admin, expect: 404 })
    await send("backup restore malformed", "POST", `/admin/backups/${backup}/restore`, {
      headers: admin,
      body: "{ not json",
      expect: 400
    })
  }, 120_000)

  it("circuit breakers (a server with Ollama, a stand-in, behind its breaker)", async () => {
    const ollama = await Effect.runPromise(Scope.provide(scope)(OllamaStandIn.scoped()))
    const base = (await Effect.runPromise(
      Scope.provide(scope)(Testing.start({
        OLLAMA_URL: ollama.url,
        OLLAMA_EMBED_DIMENSIONS: "768"
      }))
    )).url
    // The breaker exists once Ollama was called.
    await send("ingest through Ollama", "POST", "/api/v1/documents", {
      base,
      headers: A,
      body: { text: zebras },
      expect: 201
    })
    const breakers = await send("breakers", "GET", "/admin/circuit-breakers", { base, headers: admin, expect: 200 })
    assert.include((breakers.body as Array<{ name: string }>).map((b) => b.name), "ollama")
    await send("breakers as a tenant", "GET", "/admin/circuit-breakers", { base, headers: A, expect: 403 })
    for (const action of ["force-open", "force-close", "reset"]) {
      // The body is optional: none, or a reason.
      await send(`breaker ${action}`, "POST", `/admin/circuit-breakers/ollama/${action}`, {
        base,
        headers: admin,
        expect: 200
      })
      await send(`breaker ${action} with a reason`, "POST", `/admin/circuit-breakers/ollama/${action}`, {
        base,
        headers: admin,
        body: { reason: "maintenance" },
        expect: 200
      })
      await send(`breaker ${action} unknown`, "POST", `/admin/circuit-breakers/nope/${action}`, {
        base,
        headers: admin,
        body: { reason: "test" },
        expect: 404
      })
      await send(`breaker ${action} malformed`, "POST", `/admin/circuit-breakers/ollama/${action}`, {
        base,
        headers: admin,
        body: "{ not json",
        expect: 400
      })
    }
  }, 180_000)

  it("tenants and keys", async () => {
    await send("tenants", "GET", "/admin/tenants", { headers: admin, expect: 200 })
    await send("tenants as a tenant", "GET", "/admin/tenants", { headers: A, expect: 403 })
    const tenant = { id: "openapi", name: "OpenAPI", tier: "free" }
    await send("tenant create", "POST", "/admin/tenants", { headers: admin, body: tenant, expect: 201 })
    await send("tenant create again", "POST", "/admin/tenants", { headers: admin, body: tenant, expect: 409 })
    await send("tenant create bad", "POST", "/admin/tenants", { headers: admin, body: { id: 3 }, expect: 400 })
    await send("tenant get", "GET", "/admin/tenants/openapi", { headers: admin, expect: 200 })
    await send("tenant get unknown", "GET", "/admin/tenants/nope", { headers: admin, expect: 404 })
    await send("tenant update", "PATCH", "/admin/tenants/openapi", {
      headers: admin,
      body: { name: "Open" },
      expect: 200
    })
    await send("tenant update unknown", "PATCH", "/admin/tenants/nope", {
      headers: admin,
      body: { name: "x" },
      expect: 404
    })
    const issued = await send("key create", "POST", "/admin/tenants/openapi/keys", {
      headers: admin,
      body: { name: "ci" },
      expect: 201
    })
    const keyId = issued.body.info.id as string
    await send("key create bad", "POST", "/admin/tenants/openapi/keys", {
      headers: admin,
      body: { roles: [] },
      expect: 400
    })
    await send("keys", "GET", "/admin/tenants/openapi/keys", { headers: admin, expect: 200 })
    await send("keys unknown tenant", "GET", "/admin/tenants/nope/keys", { headers: admin, expect: 404 })
    const rotated = await send("key rotate", "POST", `/admin/tenants/openapi/keys/${keyId}/rotate`, {
      headers: admin,
      body: { gracePeriodSeconds: 0 },
      expect: 201
    })
    await send("key rotate unknown", "POST", "/admin/tenants/openapi/keys/nope/rotate", {
      headers: admin,
      body: {},
      expect: 404
    })
    await send("key revoke", "DELETE", `/admin/tenants/openapi/keys/${rotated.body.info.id}`, {
      headers: admin,
      expect: 200
    })
    await send("key revoke unknown", "DELETE", "/admin/tenants/openapi/keys/nope", { headers: admin, expect: 404 })
    await send("usage", "GET", `/admin/tenants/tenant-a/usage?from=${today()}&to=${today()}`, {
      headers: admin,
      expect: 200
    })
    await send("usage bad date", "GET", "/admin/tenants/tenant-a/usage?from=yesterday", { headers: admin, expect: 400 })
    await send("tenant delete", "DELETE", "/admin/tenants/openapi", { headers: admin, expect: 200 })
    await send("tenant delete again", "DELETE", "/admin/tenants/openapi", { headers: admin, expect: 404 })
  }, 120_000)

  it("feature flags", async () => {
    const flag = { state: "ENABLED", variants: { on: true, off: false }, defaultVariant: "on" }
    await send("flags", "GET", "/admin/flags", { headers: admin, expect: 200 })
    await send("flags without a key", "GET", "/admin/flags", { expect: 401 })
    await send("flag put", "PUT", "/admin/flags/openapi-flag", { headers: admin, body: flag, expect: 200 })
    await send("flag put bad", "PUT", "/admin/flags/openapi-flag", {
      headers: admin,
      body: { state: "ON" },
      expect: 400
    })
    await send("flag get", "GET", "/admin/flags/openapi-flag", { headers: admin, expect: 200 })
    await send("flag get unknown", "GET", "/admin/flags/nope", { headers: admin, expect: 404 })
    await send("flag kill", "POST", "/admin/flags/openapi-flag/kill", {
      headers: admin,
      body: { reason: "test" },
      expect: 200
    })
    await send("flag kill unknown", "POST", "/admin/flags/nope/kill", {
      headers: admin,
      body: { reason: "t" },
      expect: 404
    })
    await send("flag revive", "DELETE", "/admin/flags/openapi-flag/kill?reason=test", { headers: admin, expect: 200 })
    await send("flag revive unknown", "DELETE", "/admin/flags/nope/kill?reason=test", { headers: admin, expect: 404 })
    await send("override set", "PUT", "/admin/flags/openapi-flag/tenants/tenant-a", {
      headers: admin,
      body: { variant: "off" },
      expect: 200
    })
    await send("override set bad", "PUT", "/admin/flags/openapi-flag/tenants/tenant-a", {
      headers: admin,
      body: {},
      expect: 400
    })
    await send("overrides", "GET", "/admin/flags/openapi-flag/tenants", { headers: admin, expect: 200 })
    await send("overrides unknown", "GET", "/admin/flags/nope/tenants", { headers: admin, expect: 404 })
    await send("override remove", "DELETE", "/admin/flags/openapi-flag/tenants/tenant-a?reason=test", {
      headers: admin,
      expect: 200
    })
    await send("override remove unknown", "DELETE", "/admin/flags/nope/tenants/tenant-a?reason=test", {
      headers: admin,
      expect: 404
    })
    await send("flag remove", "DELETE", "/admin/flags/openapi-flag?reason=test", { headers: admin, expect: 204 })
    await send("flag remove again", "DELETE", "/admin/flags/openapi-flag?reason=test", { headers: admin, expect: 404 })
  }, 120_000)

  it("the audit log", async () => {
    // Earlier cases (admin calls, tenants, keys, flags) left entries.
    await send("audit", "GET", "/admin/audit?limit=5", { headers: admin, expect: 200 })
    await send("audit without a key", "GET", "/admin/audit", { expect: 401 })
    await send("audit bad date", "GET", "/admin/audit?from=yesterday", { headers: admin, expect: 400 })
    await send("audit verify", "GET", "/admin/audit/verify", { headers: admin, expect: 200 })
    await send("audit verify as a tenant", "GET", "/admin/audit/verify", { headers: A, expect: 403 })
    await send("audit checkpoint", "GET", "/admin/audit/checkpoint", { headers: admin, expect: 200 })
    await send("audit checkpoint without a key", "GET", "/admin/audit/checkpoint", { expect: 401 })
    await send("audit proof", "GET", "/admin/audit/proof?index=0", { headers: admin, expect: 200 })
    await send("audit proof out of range", "GET", "/admin/audit/proof?index=99999999", { headers: admin, expect: 400 })
    await send("audit proof unknown id", "GET", "/admin/audit/proof?id=nope", { headers: admin, expect: 404 })
  }, 60_000)

  for (const version of ["v1", "v2"]) {
    it(`the tenant API ${version}`, async () => {
      const api = `/api/${version}`
      await send("whoami", "GET", `${api}/whoami`, { headers: A, expect: 200 })
      await send("whoami without a key", "GET", `${api}/whoami`, { expect: 401 })
      await send("whoami with a bad key", "GET", `${api}/whoami`, {
        headers: { "x-api-key": "wrong-key-0123456789" },
        expect: 401
      })

      const id = `zebras-${version}`
      const doc = { id, text: zebras, metadata: { topic: "animals" } }
      await send("ingest", "POST", `${api}/documents`, { headers: A, body: doc, expect: 201 })
      await send("ingest again (an update)", "POST", `${api}/documents`, { headers: A, body: doc, expect: 201 })
      await send("ingest empty text", "POST", `${api}/documents`, { headers: A, body: { text: " " }, expect: 400 })
      await send("ingest malformed", "POST", `${api}/documents`, { headers: A, body: "{ not json", expect: 400 })
      await send("ingest too large", "POST", `${api}/documents`, {
        headers: A,
        body: { text: "x".repeat(maxBodyBytes + 1) },
        expect: 413
      })
      await send("ingest as an admin", "POST", `${api}/documents`, { headers: admin, body: doc, expect: 403 })

      await send("get", "GET", `${api}/documents/${id}`, { headers: A, expect: 200 })
      await send("get as another tenant", "GET", `${api}/documents/${id}`, { headers: B, expect: 404 })
      await send("get bad id", "GET", `${api}/documents/bad%24id`, { headers: A, expect: 400 })
      if (version !== "v1") {
        await send("list", "GET", `${api}/documents?limit=2`, { headers: A, expect: 200 })
        await send("list bad limit", "GET", `${api}/documents?limit=0`, { headers: A, expect: 400 })
      }

      await send("search", "POST", `${api}/search`, {
        headers: A,
        body: { query: "striped animals", limit: 3 },
        expect: 200
      })
      await send("search filtered", "POST", `${api}/search`, {
        headers: A,
        body: { query: "striped", filter: { must: [{ key: "topic", match: { value: "animals" } }] } },
        expect: 200
      })
      // The filter is typed in the document (issue 21): the filters the server takes validate against the request
      // schema, and the ones it refuses with a 400 for their shape do not.
      const searchBody = documents.get(version)!.ajv.getSchema(
        `${documents.get(version)!.id}#/${
          ["paths", `${api}/search`, "post", "requestBody", "content", "application/json", "schema"].map(escape).join(
            "/"
          )
        }`
      )
      assert.isDefined(searchBody, "the search request has a schema")
      const filters = {
        good: [
          { must: [{ key: "topic", match: { value: "animals" } }] },
          {
            should: [{ key: "n", range: { gte: 1, lt: 3 } }, { must_not: [{ key: "tags", match: { any: ["a", 2] } }] }]
          },
          { must: [{ key: "topic", match: { value: true } }], must_not: null }
        ],
        bad: [
          { must: [{ key: 3 }] },
          { must: [{ key: "topic", match: { nope: 1 } }] },
          { must: [{ key: "topic", match: { any: [] } }] },
          { must: [{ key: "", match: { value: 1 } }] },
          { must: [{ key: "n", range: { gt: "1" } }] },
          { must: "topic" },
          { must: Array.from({ length: 65 }, () => ({ key: "k", match: { value: 1 } })) },
          { musts: [] }
        ]
      }
      for (const filter of filters.good) {
        assert.isTrue(
          searchBody!({ query: "x", filter }),
          `${JSON.stringify(filter)}: ${JSON.stringify(searchBody!.errors)}`
        )
        await send("search filtered", "POST", `${api}/search`, {
          headers: A,
          body: { query: "x", filter },
          expect: 200
        })
      }
      for (const filter of filters.bad) {
        assert.isFalse(searchBody!({ query: "x", filter }), `${JSON.stringify(filter)} is refused by the document`)
        await send("search bad filter", "POST", `${api}/search`, {
          headers: A,
          body: { query: "x", filter },
          expect: 400
        })
      }
      await send("search bad limit", "POST", `${api}/search`, {
        headers: A,
        body: { query: "x", limit: 0 },
        expect: 400
      })
      const tooDeep = await send("search nested too deep", "POST", `${api}/search`, {
        headers: A,
        body: deep(1000),
        expect: 400
      })
      assert.strictEqual(tooDeep.body.type, `${typeBase}json-too-deep`)
      const huge = await send("search huge invalid value", "POST", `${api}/search`, {
        headers: A,
        body: { query: 1, limit: "y".repeat(50_000) },
        expect: 400
      })
      assert.isBelow(huge.text.length, 2_000, "an invalid value is not echoed in full")

      await send("ask", "POST", `${api}/ask`, {
        headers: A,
        body: { question: "What do zebras look like?" },
        expect: 200
      })
      await send("ask bad", "POST", `${api}/ask`, { headers: A, body: { question: "" }, expect: 400 })

      const run = await send("pipeline", "POST", `${api}/pipelines`, {
        headers: A,
        body: { script: "SetTopic('zebras') | UseRetrieval | UseDraft" },
        expect: 201
      })
      const pipeline = (run.body.data ?? run.body).id as string
      assert.isString(pipeline)
      await send("pipeline syntax error", "POST", `${api}/pipelines`, {
        headers: A,
        body: { script: "SetTopic('x') | UseDarft" },
        expect: 400
      })
      await send("pipeline get", "GET", `${api}/pipelines/${pipeline}`, { headers: A, expect: 200 })
      await send("pipeline get as another tenant", "GET", `${api}/pipelines/${pipeline}`, { headers: B, expect: 404 })

      await send("delete", "DELETE", `${api}/documents/${id}`, { headers: A, expect: 204 })
      await send("delete again", "DELETE", `${api}/documents/${id}`, { headers: A, expect: 404 })
    }, 180_000)
  }

  it("429 with Retry-After and the rate-limit fields, as documented", async () => {
    await send("first", "GET", "/api/v1/whoami", { base: limited, headers: A, expect: 200 })
    const refused = await send("over the limit", "GET", "/api/v1/whoami", { base: limited, headers: A, expect: 429 })
    assert.match(refused.headers.get("retry-after") ?? "", /^\d+$/)
    assert.isNotNull(refused.headers.get("ratelimit-policy"))
  }, 60_000)

  it("a wrong method on a served path is a 405 with Allow; an unknown route's 404 says which", async () => {
    const wrong = await fetch(`${url}/api/v1/search`, { method: "DELETE", headers: A })
    assert.strictEqual(wrong.status, 405)
    assert.strictEqual(wrong.headers.get("allow"), "POST")
    const body = await wrong.json() as Json
    assert.strictEqual(body.type, `${typeBase}method-not-allowed`)
    assert.deepStrictEqual(body.allow, ["POST"])
    assert.notProperty(body, "_tag")
    const get = await fetch(`${url}/admin/flags/x/kill`, { method: "GET", headers: admin })
    assert.strictEqual(get.status, 405)
    assert.deepStrictEqual(get.headers.get("allow")?.split(", ").sort(), ["DELETE", "POST"])
    const unknown = await fetch(`${url}/api/v1/nope`, { headers: A })
    assert.strictEqual(unknown.status, 404)
    const missing = await unknown.json() as Json
    assert.include(missing.detail, "/api/v1/nope")
    assert.strictEqual(missing.type, `${typeBase}not-found`)
  })

  it("every documented operation was seen answering a documented success and a documented client error", () => {
    const gaps: Array<string> = []
    for (const document of [...documents.values()].filter((d) => d.name !== "default")) {
      for (const { method, template } of operationsOf(document.spec)) {
        // The unversioned operations were checked against the default document.
        const key = template.startsWith("/api/")
          ? `${document.name} ${method.toUpperCase()} ${template}`
          : `default ${method.toUpperCase()} ${template}`
        const statuses = [...(seen.get(key) ?? [])]
        const declared = Object.keys(document.spec.paths[template][method].responses)
        if (!statuses.some((s) => s < 300)) gaps.push(`${key}: no success`)
        if (declared.some((s) => s.startsWith("4")) && !statuses.some((s) => s >= 400 && s < 500)) {
          gaps.push(`${key}: no client error`)
        }
      }
    }
    assert.deepStrictEqual(gaps, [])
  })
})
