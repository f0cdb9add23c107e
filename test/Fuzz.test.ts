/**
 * Requests made from the server's own OpenAPI documents, most of them wrong, sent to the bundled server: every
 * operation of every API version, with path parameters, queries, credentials, version and tracing headers and bodies
 * drawn by fast-check. Bodies come from the operation's request schema (valid ones, ones with fields of the wrong
 * type or missing, any JSON value, broken or too deep or too large JSON, other content types), so that requests also
 * get past decoding into the handlers.
 *
 * Whatever comes, no answer is a 5xx other than a problem+json (or health+json) 503, every error is problem+json with
 * its own status in the body, and the process keeps serving. Rate limits are off so that requests reach the
 * handlers. On a failure fast-check prints the seed and the smallest request it found.
 */
import fc from "fast-check"
import { SignJWT } from "jose"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type Running, startServer, stopServer } from "./server.js"

type JsonSchema = { readonly [key: string]: any }

interface Operation {
  readonly method: string
  /** The path template, `{name}` for a parameter. */
  readonly path: string
  readonly query: ReadonlyArray<{ readonly name: string; readonly schema: JsonSchema }>
  readonly body: JsonSchema | undefined
}

interface Request {
  readonly method: string
  readonly path: string
  readonly headers: Record<string, string>
  readonly body: string | undefined
}

// The requests authenticate as tenant-a (or the admin); the paths name tenant-b, which they may delete.
const keys = {
  admin: "fuzz-admin-key-0123456789abcdef",
  tenant: "fuzz-tenant-key-0123456789abcdef",
  other: "fuzz-other-key-0123456789abcdef"
}
const jwtSecret = "fuzz-jwt-secret-of-at-least-32-bytes!"
const maxBodyBytes = 65_536

let server: Running | undefined
let operations: ReadonlyArray<Operation> = []
let components: JsonSchema = {}
let token = ""

beforeAll(async () => {
  server = await startServer({
    LOG_LEVEL: "error",
    MAX_BODY_BYTES: String(maxBodyBytes),
    OUROBOROS_ADMIN_API_KEY: keys.admin,
    OUROBOROS_API_KEYS: `tenant-a:${keys.tenant},tenant-b:${keys.other}`,
    JWT_SECRET: jwtSecret,
    RATE_LIMIT_DEFAULT: "off",
    RATE_LIMIT_ADMIN: "off",
    RATE_LIMIT_DOCS: "off",
    BACKUP_ENABLED: "false"
  })
  token = await new SignJWT({ tenant_id: "tenant-a", roles: ["writer", "reader"] })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject("fuzz-user")
    .setIssuedAt()
    .setExpirationTime("30m")
    .sign(new TextEncoder().encode(jwtSecret))
  // Every version's document: the unversioned routes (health, admin) are in each, the tenant API once per version.
  const seen = new Set<string>()
  const found: Array<Operation> = []
  for (const version of ["v1", "v2"]) {
    const document = await fetch(`${server.url}/api/${version}/openapi.json`).then((r) => r.json()) as JsonSchema
    components = { ...components, ...document.components.schemas }
    for (const [path, item] of Object.entries(document.paths as Record<string, Record<string, JsonSchema>>)) {
      for (const [method, operation] of Object.entries(item)) {
        const name = `${method.toUpperCase()} ${path}`
        if (seen.has(name)) continue
        seen.add(name)
        const parameters = (operation.parameters ?? []) as ReadonlyArray<JsonSchema>
        found.push({
          method: method.toUpperCase(),
          path,
          query: parameters.filter((p) => p.in === "query").map((p) => ({ name: p.name, schema: p.schema ?? {} })),
          body: operation.requestBody?.content?.["application/json"]?.schema
        })
      }
    }
  }
  operations = found
}, 90_000)

afterAll(() => stopServer(server), 60_000)

// -----------------------------------------------------------------------------
// arbitraries
// -----------------------------------------------------------------------------

const oddStrings = fc.constantFrom(
  "",
  " ",
  "a".repeat(300),
  "../../etc/passwd",
  "tenant-b",
  "default",
  "valueOf",
  "constructor",
  "__proto__",
  "toString",
  "hasOwnProperty",
  "admin",
  "v1",
  "v2",
  "null",
  "0",
  "-1",
  "1e309",
  "true",
  "\u0000",
  "a\u0000b",
  "é",
  "💥",
  "<script>",
  "' OR 1=1 --"
)
/**
 * Strings, with NUL characters (which PostgreSQL refuses in text) and lone surrogates (which RFC 8785 canonical JSON
 * refuses) among them.
 */
const anyString = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 10 }).map((s) => `${s}\u0000`) },
  { weight: 2, arbitrary: oddStrings }
)
const anyJson = fc.jsonValue({ maxDepth: 3 })

const resolve = (schema: JsonSchema): JsonSchema =>
  typeof schema.$ref === "string" ? components[schema.$ref.replace("#/components/schemas/", "")] ?? {} : schema

/** Values of `schema`, by its type, enum and properties (formats and bounds aside: those are for the server to check). */
const valueOf = (raw: JsonSchema, depth: number): fc.Arbitrary<unknown> => {
  const schema = resolve(raw)
  if (depth > 5) return fc.constant(null)
  if ("const" in schema) return fc.constant(schema.const)
  if (Array.isArray(schema.enum)) return fc.constantFrom(...schema.enum)
  const alternatives = schema.anyOf ?? schema.oneOf
  if (Array.isArray(alternatives)) return fc.oneof(...alternatives.map((s: JsonSchema) => valueOf(s, depth + 1)))
  if (Array.isArray(schema.allOf)) {
    const parts = schema.allOf.map(resolve)
    return valueOf({
      type: "object",
      properties: Object.assign({}, ...parts.map((p: JsonSchema) => p.properties ?? {})),
      required: parts.flatMap((p: JsonSchema) => p.required ?? [])
    }, depth + 1)
  }
  switch (schema.type) {
    case "object": {
      const properties = (schema.properties ?? {}) as Record<string, JsonSchema>
      return fc.record(
        Object.fromEntries(Object.entries(properties).map(([name, s]) => [name, nearValueOf(s, depth + 1)])),
        { requiredKeys: (schema.required ?? []).filter((name: string) => name in properties) }
      )
    }
    case "array":
      return fc.array(nearValueOf(schema.items ?? {}, depth + 1), { maxLength: 4 })
    case "string":
      // A pattern's strings (ids, names) get requests past decoding; any string tests the decoder.
      return typeof schema.pattern === "string"
        ? fc.oneof({ weight: 3, arbitrary: matching(schema.pattern) }, { weight: 1, arbitrary: anyString })
        : schema.format === "date-time"
        ? fc.oneof(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), anyString)
        : anyString
    case "integer":
      return fc.oneof(fc.integer({ min: -5, max: 1000 }), fc.integer())
    case "number":
      return fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer({ min: 0, max: 100 }))
    case "boolean":
      return fc.boolean()
    case "null":
      return fc.constant(null)
    default:
      return anyJson
  }
}
/** Mostly a value of `schema`, now and then any JSON value in its place. */
const nearValueOf = (schema: JsonSchema, depth: number): fc.Arbitrary<unknown> =>
  fc.oneof({ weight: 6, arbitrary: valueOf(schema, depth) }, { weight: 1, arbitrary: anyJson })

const brokenJson = fc.constantFrom(
  "{",
  "[1,",
  "{\"a\":}",
  "nul",
  "{\"text\": \"\\ud800\"}",
  "\u0000",
  "[".repeat(5_000) + "]".repeat(5_000),
  JSON.stringify({ text: "x".repeat(maxBodyBytes + 1) })
)

const bodyOf = (operation: Operation): fc.Arbitrary<string | undefined> =>
  operation.body === undefined
    ? fc.oneof({ weight: 5, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: anyJson.map(JSON.stringify) })
    : fc.oneof(
      { weight: 6, arbitrary: valueOf(operation.body, 0).map((v) => JSON.stringify(v)) },
      { weight: 1, arbitrary: anyJson.map((v) => JSON.stringify(v)) },
      { weight: 1, arbitrary: brokenJson },
      { weight: 1, arbitrary: fc.constant(undefined) }
    )

/** Strings of a JSON Schema `pattern` (a pattern JavaScript cannot compile gives any string). */
const matching = (pattern: string): fc.Arbitrary<string> => {
  try {
    return fc.stringMatching(new RegExp(pattern, "u"))
  } catch {
    return anyString
  }
}

/**
 * Path parameters that name what exists (a tenant, the built-in flags), so that requests reach the handlers. The admin
 * routes name tenant-b only: the requests authenticate as tenant-a, which they must not delete.
 */
const known: Record<string, ReadonlyArray<string>> = {
  id: ["tenant-b"],
  tenantId: ["tenant-a", "tenant-b"],
  key: ["api-v2", "llm-model", "ollama"]
}

const pathParameter = (name: string) =>
  fc.oneof(
    { weight: 3, arbitrary: known[name] === undefined ? oddStrings : fc.constantFrom(...known[name]) },
    { weight: 3, arbitrary: fc.oneof(fc.string({ minLength: 1, maxLength: 30 }), oddStrings) },
    { weight: 1, arbitrary: fc.constantFrom("%", "%zz", "%C0%AF", "%00", "a%2Fb", "..", "%2e%2e") }
  ).map((value) => /^%|^\.\.$|%2[eEfF]/.test(value) ? value : encodeURIComponent(value))

const credentials = (admin: boolean) =>
  fc.oneof(
    { weight: 8, arbitrary: fc.constant({ "x-api-key": admin ? keys.admin : keys.tenant }) },
    { weight: 2, arbitrary: fc.constant(undefined).map(() => ({ authorization: `Bearer ${token}` })) },
    {
      weight: 1,
      arbitrary: fc.constantFrom<Record<string, string>>(
        {},
        { "x-api-key": "not-a-key" },
        { "x-api-key": "" },
        { "x-api-key": "k".repeat(5_000) },
        { authorization: "Bearer not.a.token" },
        { authorization: "Basic Zm9vOmJhcg==" },
        { authorization: "Bearer " },
        { "x-api-key": keys.tenant, authorization: "Bearer x" }
      )
    }
  )

const optionalHeaders = fc.record({
  "content-type": fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom("application/json", "application/json; charset=utf-8") },
    { weight: 1, arbitrary: fc.constantFrom("text/plain", "application/x-www-form-urlencoded", "multipart/form-data") }
  ),
  accept: fc.constantFrom("application/json", "*/*", "text/html", "application/problem+json"),
  "api-version": fc.oneof(fc.constantFrom("v1", "v2", "v3", "2", "v1, v2"), anyString.filter(isHeaderValue)),
  "x-correlation-id": fc.oneof(fc.uuid(), anyString.filter(isHeaderValue)),
  traceparent: fc.constantFrom(
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "00-00000000000000000000000000000000-0000000000000000-00",
    "ff-zz",
    "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"
  )
}, { requiredKeys: ["content-type"] })

/** What fetch accepts as a header value (no control characters, Latin-1 only). */
function isHeaderValue(value: string): boolean {
  return /^[\x20-\x7e]*$/.test(value)
}

const queryOf = (operation: Operation) =>
  fc.tuple(
    fc.record(
      Object.fromEntries(operation.query.map(({ name, schema }) => [
        name,
        fc.oneof(
          { weight: 3, arbitrary: valueOf(schema, 0).map((v) => typeof v === "string" ? v : JSON.stringify(v)) },
          { weight: 1, arbitrary: anyString }
        )
      ])),
      { requiredKeys: [] }
    ),
    fc.dictionary(fc.constantFrom("limit", "cursor", "from", "to", "x", "tenantId", "at"), anyString, { maxKeys: 2 })
  ).map(([declared, extra]) => {
    const entries = [...Object.entries(extra), ...Object.entries(declared)]
      .filter((entry): entry is [string, string] => typeof entry[1] === "string")
      .map(([name, value]): [string, string] => [name, value.replace(/[\ud800-\udfff]/g, "?")])
    return entries.length === 0 ? "" : `?${new URLSearchParams(entries).toString()}`
  })

const requestOf = (operation: Operation): fc.Arbitrary<Request> => {
  const parameters = [...operation.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!)
  return fc.record({
    values: fc.tuple(...parameters.map(pathParameter)),
    query: queryOf(operation),
    credentials: credentials(operation.path.startsWith("/admin")),
    headers: optionalHeaders,
    body: bodyOf(operation)
  }).map(({ body, credentials, headers, query, values }) => {
    let path = operation.path
    parameters.forEach((name, i) => (path = path.replace(`{${name}}`, values[i] as string)))
    return { method: operation.method, path: `${path}${query}`, headers: { ...headers, ...credentials }, body }
  })
}

// -----------------------------------------------------------------------------
// the property
// -----------------------------------------------------------------------------

const send = async (request: Request) => {
  const response = await fetch(`${server!.url}${request.path}`, {
    method: request.method,
    headers: request.headers,
    // fetch sends no body with GET (nor does a browser).
    ...(request.body === undefined || request.method === "GET" ? {} : { body: request.body })
  })
  const text = await response.text()
  return { status: response.status, contentType: response.headers.get("content-type") ?? "", text }
}

const problemOf = (text: string): { readonly status?: unknown; readonly type?: unknown; readonly title?: unknown } => {
  try {
    return JSON.parse(text)
  } catch {
    return {}
  }
}

describe("fuzzing the HTTP API from its OpenAPI documents", () => {
  it("finds the operations of both versions", () => {
    const names = new Set(operations.map((o) => `${o.method} ${o.path}`))
    for (
      const expected of ["POST /api/v1/documents", "POST /api/v2/search", "POST /admin/tenants", "GET /admin/audit"]
    ) {
      assert.isTrue(names.has(expected), `${expected} in ${[...names].join(", ")}`)
    }
    assert.isAtLeast(operations.filter((o) => o.body !== undefined).length, 10)
  })

  it("answers every request with a problem+json error or a success, never a 5xx, and keeps serving", async () => {
    const statuses = new Map<number, number>()
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...operations).chain(requestOf), async (request) => {
        const reply = await send(request)
        statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1)
        const what = `${request.method} ${request.path} → ${reply.status} ${reply.contentType}: ${
          reply.text.slice(0, 300)
        }`
        const health = reply.contentType.startsWith("application/health+json")
        assert.isTrue(reply.status < 500 || (reply.status === 503 && health), what)
        if (reply.status >= 400 && !health) {
          assert.isTrue(reply.contentType.startsWith("application/problem+json"), what)
          const problem = problemOf(reply.text)
          assert.strictEqual(problem.status, reply.status, what)
          assert.isString(problem.type, what)
          assert.isString(problem.title, what)
        }
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 1_500), endOnFailure: true }
    )
    // The requests went past the edge: handlers answered successes and errors of their own.
    const count = (predicate: (status: number) => boolean) =>
      [...statuses].filter(([status]) => predicate(status)).reduce((a, [, n]) => a + n, 0)
    assert.isAbove(count((s) => s >= 200 && s < 300), 50, JSON.stringify([...statuses]))
    assert.isAbove(count((s) => s === 400 || s === 422), 50, JSON.stringify([...statuses]))
    assert.isAbove(count((s) => s === 404), 20, JSON.stringify([...statuses]))
    const live = await fetch(`${server!.url}/health/live`)
    assert.strictEqual(live.status, 200)
    assert.isNull(server!.child.exitCode)
  }, 300_000)
})
