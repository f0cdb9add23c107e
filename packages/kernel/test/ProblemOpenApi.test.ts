/**
 * The OpenAPI transform: the document it gives is structurally sound (every reference resolves, every component name
 * is valid, every error response is `application/problem+json` with the shared schema, the responses and header fields
 * the middleware adds are declared), and every real response of the served api, success and error, body and header
 * fields, validates against it (ajv, JSON Schema 2020-12 as OpenAPI 3.1 uses it).
 */
import { assert, describe, it } from "@effect/vitest"
import addFormats from "ajv-formats"
import Ajv2020 from "ajv/dist/2020.js"
import { Effect } from "effect"
import { HttpClient, HttpClientRequest } from "effect/http"
import { OpenApi } from "effect/http-api"
import { Problem, ProblemOpenApi } from "../src/index.js"
import { Api, DocumentedApi, openApiOptions, Served } from "./fixtures/ProblemApi.js"

type Json = Record<string, any>

const document = OpenApi.fromApi(DocumentedApi) as unknown as Json
const methods = ["get", "put", "post", "delete", "patch"] as const

const operations = (spec: Json) =>
  Object.entries<Json>(spec.paths).flatMap(([path, item]) =>
    methods.filter((m) => item[m] !== undefined).map((m) => ({ path, method: m.toUpperCase(), op: item[m] as Json }))
  )

const refs = (value: unknown): Array<string> => {
  const out: Array<string> = []
  const stack = [value]
  while (stack.length > 0) {
    const v = stack.pop()
    if (Array.isArray(v)) stack.push(...v)
    else if (typeof v === "object" && v !== null) {
      if (typeof (v as Json).$ref === "string") out.push((v as Json).$ref)
      stack.push(...Object.values(v))
    }
  }
  return out
}

const resolvePointer = (spec: Json, ref: string): unknown =>
  ref.slice(2).split("/").map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~")).reduce<any>((v, t) => v?.[t], spec)

// A response, and the JSON pointer (without `#`) of where it is written: shared responses are components.
const responseAt = (spec: Json, template: string, method: string, status: string): [Json, string] => {
  const response = spec.paths[template][method].responses[status]
  if (response === undefined) return [response, ""]
  if (typeof response.$ref === "string") return [resolvePointer(spec, response.$ref) as Json, response.$ref.slice(1)]
  return [response, `/${pointer("paths", template, method, "responses", status)}`]
}

describe("ProblemOpenApi.transform", () => {
  it("declares every error as a problem with the shared schema, and the responses and fields the middleware adds", () => {
    assert.strictEqual(document.info.version, "1.2.3")
    assert.strictEqual(document.info.title, "Test API")
    assert.deepStrictEqual(document.servers, [{ url: "http://localhost:8080", description: "local" }])
    // Every reference resolves; every component name is valid.
    for (const ref of refs(document)) assert.isDefined(resolvePointer(document, ref), ref)
    for (const section of Object.values<Json>(document.components)) {
      for (const key of Object.keys(section)) assert.match(key, /^[a-zA-Z0-9._-]+$/)
    }
    assert.strictEqual(document.components.schemas.Problem.additionalProperties, true)
    assert.notProperty(document.components.schemas.Problem.properties, "_tag")
    // The error classes' own components (`{ _tag, detail }`, no extension allowed) are gone.
    assert.deepStrictEqual(
      Object.keys(document.components.schemas).sort(),
      ["Problem", "ProblemIssue", "_ouroboros_backup_ManifestEncoded"]
    )
    const expected: Record<string, ReadonlyArray<string>> = {
      "GET /api/v1/manifests/{id}": ["200", "400", "401", "404", "429", "500", "503"],
      "POST /api/v1/manifests": ["201", "400", "401", "409", "413", "429", "500", "503"],
      "GET /health/ready": ["200", "500", "503"]
    }
    for (const { method, op, path } of operations(document)) {
      const name = `${method} ${path}`
      assert.deepStrictEqual(Object.keys(op.responses).sort(), expected[name], name)
      assert.isString(op.summary)
      for (const status of Object.keys(op.responses)) {
        const [response] = responseAt(document, path, method.toLowerCase(), status)
        assert.property(response.headers, "X-Correlation-ID", `${name} ${status}`)
        if (path.startsWith("/api/")) {
          for (
            const field of [
              "api-version",
              "api-supported-versions",
              "Deprecation",
              "Sunset",
              "Link",
              "RateLimit",
              "RateLimit-Policy"
            ]
          ) {
            assert.property(response.headers, field, `${name} ${status}`)
          }
        } else {
          assert.notProperty(response.headers, "RateLimit")
        }
        if (Number(status) < 400) {
          assert.notMatch(response.description, /\//)
          continue
        }
        const problem = response.content[Problem.contentType]
        assert.isDefined(problem, `${name} ${status}`)
        assert.notProperty(response.content, "application/json")
        const schema = problem.schema as Json
        const parts = schema.allOf ?? [schema]
        assert.strictEqual(parts[0].$ref, "#/components/schemas/Problem")
        assert.deepStrictEqual(parts[1].properties.status, { const: Number(status) })
        assert.include(response.description, Problem.typeBase)
      }
    }
    const create = (status: string) => responseAt(document, "/api/v1/manifests", "post", status)[0]
    // Responses that are the same in several operations are shared.
    assert.strictEqual(
      document.paths["/api/v1/manifests/{id}"].get.responses["500"].$ref,
      document.paths["/api/v1/manifests"].post.responses["500"].$ref
    )
    assert.match(
      document.paths["/api/v1/manifests"].post.responses["500"].$ref,
      /^#\/components\/responses\/InternalServerError/
    )
    // The declared error's extension members are documented; the middleware's problem types are named.
    assert.deepStrictEqual(Object.keys(create("400").content[Problem.contentType].schema.allOf[1].properties), [
      "line",
      "column",
      "status"
    ])
    for (const type of ["pipeline-syntax-error", "request-validation", "malformed-json", "json-too-deep"]) {
      assert.include(create("400").description, `${Problem.typeBase}${type}`)
    }
    assert.strictEqual(create("429").headers["Retry-After"].required, true)
    assert.property(create("401").headers, "WWW-Authenticate")
    // The health check's 503 keeps its own media type, and may be a problem too (load shedding, draining).
    const [ready] = responseAt(document, "/health/ready", "get", "503")
    assert.deepStrictEqual(Object.keys(ready.content).sort(), ["application/health+json", Problem.contentType])
  })

  it("renames components whose names OpenAPI refuses, and every reference follows", () => {
    const before = {
      openapi: "3.1.0",
      info: { title: "x", version: "0" },
      paths: {
        "/m": {
          get: {
            operationId: "m",
            responses: {
              "200": {
                description: "@ouroboros/backup/Manifest",
                content: {
                  "application/json": { schema: { $ref: "#/components/schemas/@ouroboros~1backup~1Manifest" } }
                }
              }
            }
          }
        }
      },
      components: {
        schemas: {
          "@ouroboros/backup/Manifest": {
            type: "object",
            properties: {
              at: { $ref: "#/components/schemas/@ouroboros~1backup~1Manifest/properties/files" },
              files: {}
            }
          },
          "_ouroboros_backup_Manifest": { type: "string" }
        }
      }
    }
    const after = ProblemOpenApi.transform({ internalError: false, serviceUnavailable: false, correlationId: false })(
      before
    )
    // The last segment of the identifier is free, so it is the new name.
    assert.deepStrictEqual(Object.keys(after.components.schemas).sort(), [
      "Manifest",
      "Problem",
      "ProblemIssue",
      "_ouroboros_backup_Manifest"
    ])
    const response = after.paths["/m"].get.responses["200"]
    assert.strictEqual(response.content["application/json"].schema.$ref, "#/components/schemas/Manifest")
    assert.strictEqual(response.description, "OK")
    assert.strictEqual(
      after.components.schemas.Manifest.properties.at.$ref,
      "#/components/schemas/Manifest/properties/files"
    )
    // The input is left as it was.
    assert.property(before.components.schemas, "@ouroboros/backup/Manifest")
    // When the last segment is taken, the whole identifier is kept, made valid.
    const taken = ProblemOpenApi.transform({ internalError: false, serviceUnavailable: false, correlationId: false })({
      ...before,
      components: { schemas: { ...before.components.schemas, Manifest: { type: "number" } } }
    })
    assert.strictEqual(
      taken.paths["/m"].get.responses["200"].content["application/json"].schema.$ref,
      "#/components/schemas/_ouroboros_backup_Manifest_1"
    )
    for (const key of Object.keys(taken.components.schemas)) assert.match(key, /^[a-zA-Z0-9._-]+$/)
  })

  it("names the type a declared error fixes for itself, else the one of its tag", () => {
    const own = "https://iana.org/assignments/http-problem-types#quota-exceeded"
    const spec = ProblemOpenApi.transform({ types: "documented", tags: "omit", rateLimited: true })({
      openapi: "3.1.0",
      info: { title: "x", version: "0" },
      paths: {
        "/q": {
          get: {
            operationId: "q",
            responses: {
              "200": { description: "OK" },
              "403": {
                description: "Forbidden",
                content: {
                  "application/json": {
                    schema: {
                      anyOf: [
                        { type: "object", properties: { _tag: { const: "QuotaExhausted" }, type: { const: own } } },
                        { type: "object", properties: { _tag: { const: "Forbidden" } } }
                      ]
                    }
                  }
                }
              }
            }
          }
        }
      }
    })
    const forbidden = spec.paths["/q"].get.responses["403"]
    assert.include(forbidden.description, own)
    assert.include(forbidden.description, `${Problem.typeBase}forbidden`)
    assert.notInclude(forbidden.description, "quota-exhausted")
    const limited = spec.paths["/q"].get.responses["429"]
    const described = typeof limited.$ref === "string"
      ? (resolvePointer(spec, limited.$ref) as Json).description
      : limited.description
    assert.include(described, Problem.quotaExceededType)
  })

  it("makes a body optional when its schema accepts null (HttpApi decodes an empty body as null)", () => {
    const body = (schema: Json) => ({
      openapi: "3.1.0",
      info: { title: "x", version: "0" },
      paths: {
        "/r": {
          post: {
            operationId: "r",
            requestBody: { required: true, content: { "application/json": { schema } } },
            responses: { "200": { description: "OK" } }
          }
        }
      },
      components: { schemas: { Restore: { type: "object", properties: { force: { type: "boolean" } } } } }
    })
    const optional = ProblemOpenApi.transform()(
      body({ anyOf: [{ $ref: "#/components/schemas/Restore" }, { type: "null" }] })
    )
    assert.strictEqual(optional.paths["/r"].post.requestBody.required, false)
    const required = ProblemOpenApi.transform()(body({ $ref: "#/components/schemas/Restore" }))
    assert.strictEqual(required.paths["/r"].post.requestBody.required, true)
  })

  it("in today's style documents _tag and about:blank", () => {
    const legacy = OpenApi.fromApi(ProblemOpenApi.annotate()(Api)) as unknown as Json
    assert.property(legacy.components.schemas.Problem.properties, "_tag")
    const [notFound] = responseAt(legacy, "/api/v1/manifests/{id}", "get", "404")
    assert.notInclude(notFound.description, Problem.typeBase)
    assert.notProperty(notFound.headers, "RateLimit")
  })
})

// ---------------------------------------------------------------------------------------------------------------------
// every real response against the document
// ---------------------------------------------------------------------------------------------------------------------

const ajv = new Ajv2020.default({ strict: false, allErrors: true })
addFormats.default(ajv)
const documentId = "https://ouroboros.test/openapi.json"
ajv.addSchema({ ...document, $id: documentId })

const pointer = (...tokens: ReadonlyArray<string>) =>
  tokens.map((t) => t.replace(/~/g, "~0").replace(/\//g, "~1")).join("/")

const matchPath = (template: string, path: string) =>
  new RegExp(`^${template.replace(/\{[^}]+\}/g, "[^/]+")}$`).test(path.split("?")[0]!)

interface Call {
  readonly method: "GET" | "POST"
  readonly path: string
  readonly headers?: Record<string, string>
  readonly body?: string
  readonly status: number
}

const key = { "x-api-key": "key" }
const calls: ReadonlyArray<Call> = [
  { method: "GET", path: "/api/v1/manifests/abc", headers: key, status: 200 },
  { method: "GET", path: "/api/v1/manifests/missing", headers: key, status: 404 },
  { method: "GET", path: "/api/v1/manifests/BAD1", headers: key, status: 400 },
  { method: "GET", path: "/api/v1/manifests/abc", status: 401 },
  { method: "GET", path: "/api/v1/manifests/abc", headers: { ...key, "x-test": "limit" }, status: 429 },
  { method: "GET", path: "/api/v1/manifests/abc", headers: { ...key, "x-test": "shed" }, status: 503 },
  { method: "POST", path: "/api/v1/manifests", headers: key, body: `{"id":"a","script":"ok"}`, status: 201 },
  { method: "POST", path: "/api/v1/manifests", headers: key, body: `{"id":"taken","script":"ok"}`, status: 409 },
  { method: "POST", path: "/api/v1/manifests", headers: key, body: `{"id":"a","script":"bad"}`, status: 400 },
  { method: "POST", path: "/api/v1/manifests", headers: key, body: `{"id":3}`, status: 400 },
  { method: "POST", path: "/api/v1/manifests", headers: key, body: `{ not json`, status: 400 },
  { method: "POST", path: "/api/v1/manifests", headers: key, body: "[".repeat(100) + "]".repeat(100), status: 400 },
  { method: "GET", path: "/api/v1/manifests/boom", headers: key, status: 500 },
  {
    method: "POST",
    path: "/api/v1/manifests",
    headers: key,
    body: JSON.stringify({ id: "a", script: "x".repeat(2000) }),
    status: 413
  },
  { method: "GET", path: "/health/ready", status: 200 },
  { method: "GET", path: "/health/ready", headers: { "x-test": "shed" }, status: 503 }
]

describe("real responses against the document", () => {
  it.effect("every response of every documented operation validates, body and header fields", () =>
    Effect.gen(function*() {
      const client = yield* HttpClient.HttpClient
      for (const call of calls) {
        const name = `${call.method} ${call.path} ${JSON.stringify(call.headers ?? {})} → ${call.status}`
        let request = HttpClientRequest.make(call.method)(call.path).pipe(
          HttpClientRequest.setHeaders(call.headers ?? {})
        )
        if (call.body !== undefined) request = HttpClientRequest.bodyText(request, call.body, "application/json")
        const response = yield* Effect.orDie(client.execute(request))
        const text = yield* Effect.orDie(response.text)
        assert.strictEqual(response.status, call.status, `${name}: ${text}`)
        const template = Object.keys(document.paths).find((t) => matchPath(t, call.path))!
        const [documented, at] = responseAt(document, template, call.method.toLowerCase(), String(response.status))
        assert.isDefined(documented, `${name}: the status is documented`)
        const contentType = (response.headers["content-type"] ?? "").split(";")[0]!
        assert.property(documented.content, contentType, name)
        const validate = ajv.getSchema(`${documentId}#${at}/${pointer("content", contentType, "schema")}`)!
        assert.isTrue(validate(JSON.parse(text)), `${name}: ${text} ${JSON.stringify(validate.errors)}`)
        for (const [field, declared] of Object.entries<Json>(documented.headers ?? {})) {
          const header = (declared.$ref === undefined ? declared : resolvePointer(document, declared.$ref)) as Json
          const value = response.headers[field.toLowerCase()]
          if (header.required === true) assert.isDefined(value, `${name}: ${field}`)
          if (value === undefined) continue
          const typed = header.schema.type === "integer" ? Number(value) : value
          assert.isTrue(ajv.validate(header.schema, typed), `${name}: ${field}: ${value}`)
        }
      }
      // The schemas do refuse what is not the documented problem.
      const [, notFoundAt] = responseAt(document, "/api/v1/manifests/{id}", "get", "404")
      const notFound = ajv.getSchema(
        `${documentId}#${notFoundAt}/${pointer("content", Problem.contentType, "schema")}`
      )!
      assert.isTrue(notFound({ type: "about:blank", title: "Not Found", status: 404 }))
      assert.isFalse(notFound({ title: "Not Found", status: 404 }))
      assert.isFalse(notFound({ type: "about:blank", title: "Not Found", status: 500 }))
      assert.isFalse(notFound({ type: "about:blank", title: "Not Found", status: 404, issues: [{ path: "x" }] }))
      void openApiOptions
    }).pipe(Effect.provide(Served)))
})
