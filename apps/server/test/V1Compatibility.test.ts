/**
 * v1 after v2: a v1 request to the server is migrated up to v2, handled by v2's handlers and its answer migrated back
 * down. Two properties hold it to what v1 answered before v2 existed:
 *
 * - over the recorded contract (`test/fixtures/contract.json`, recorded from the server before v2): every recorded v1
 *   answer, as v2's handler answers it (the same data in an envelope with any `meta`), migrates down to exactly the
 *   recorded answer;
 * - over random sequences of v1 requests by two tenants: the server answers exactly as a reference server built the
 *   way the server was before v2 (`@ouroboros/retrieval`'s own v1 groups and handlers over the same kind of stores),
 *   status and body, with only what differs from run to run (times, generated ids, correlation ids) left out.
 */
import { assert, describe, it } from "@effect/vitest"
import { Checkpoints, EventStore } from "@ouroboros/event-store"
import { Principal, Problem, TenantId } from "@ouroboros/kernel"
import { Embedder, Llm } from "@ouroboros/llm"
import { Pipeline, PipelinesHttp, Retrieval, RetrievalHttp } from "@ouroboros/retrieval"
import { ApiKey } from "@ouroboros/tenancy"
import { Embedded } from "@ouroboros/vector-store"
import { VersionedApi } from "@ouroboros/versioning"
import { Effect, Layer, Redacted, References } from "effect"
import { HttpRouter } from "effect/http"
import { HttpApi, HttpApiBuilder, HttpApiMiddleware, HttpApiSecurity } from "effect/http-api"
import * as fc from "fast-check"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Server from "../src/Server.js"
import * as Testing from "../src/Testing.js"
import { Versions } from "../src/Versions.js"

// -----------------------------------------------------------------------------
// normalization (as the contract test does)
// -----------------------------------------------------------------------------

const uuids = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi
const isoTime = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/

const normalize = (value: unknown, key?: string): unknown => {
  if (typeof value === "string") return isoTime.test(value) ? "<time>" : value.replace(uuids, "<uuid>")
  if (typeof value === "number" && (key === "durationMs")) return "<number>"
  if (Array.isArray(value)) return value.map((v) => normalize(v))
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {}
    for (const k of Object.keys(value).sort()) {
      if (k === "correlationId") continue
      out[k] = k === "createdAt" || k === "updatedAt" ? "<time>" : normalize((value as Record<string, unknown>)[k], k)
    }
    return out
  }
  return value
}

// -----------------------------------------------------------------------------
// the recorded contract
// -----------------------------------------------------------------------------

const fixture = JSON.parse(
  Fs.readFileSync(new URL("../../../test/fixtures/contract.json", import.meta.url), "utf8")
) as Record<string, { readonly status: number; readonly body: unknown }>

// The recorded successes of the tenant API, by group and endpoint.
const recorded: ReadonlyArray<{ readonly group: string; readonly endpoint: string; readonly body: unknown }> = [
  ["09 whoami", "documents", "whoami"],
  ["14 ingest zebras", "documents", "ingest"],
  ["18 get zebras", "documents", "get"],
  ["26 search", "documents", "search"],
  ["27 search filtered", "documents", "search"],
  ["31 ask", "documents", "ask"],
  ["32 ask without rag", "documents", "ask"],
  ["34 pipeline", "pipelines", "run"],
  ["35 pipeline read", "pipelines", "get"],
  ["53 get tea restored", "documents", "get"]
].map(([step, group, endpoint]) => {
  const reply = fixture[step!]
  if (reply === undefined || reply.status >= 300) throw new Error(`no recorded success for ${step}`)
  return { group: group!, endpoint: endpoint!, body: reply.body }
})

// What v2's handler answers for the data of a v1 answer.
const asV2 = (endpoint: string, body: any, meta: Record<string, unknown>) =>
  endpoint === "search" ? { data: body.results, meta } : { data: body, meta }

// -----------------------------------------------------------------------------
// the reference: the tenant API as the server served it before v2
// -----------------------------------------------------------------------------

class ReferenceAuthentication extends HttpApiMiddleware.Service<ReferenceAuthentication, {
  provides: Principal.CurrentPrincipal
}>()("ReferenceAuthentication", {
  error: Problem.Unauthorized,
  security: { apiKey: HttpApiSecurity.apiKey({ key: "X-API-Key", in: "header" }) }
}) {}

const tenantsByKey = new Map<string, string>([[Testing.keys.tenantA, "tenant-a"], [Testing.keys.tenantB, "tenant-b"]])

const ReferenceAuthenticationLive = Layer.succeed(ReferenceAuthentication, {
  apiKey: (effect, { credential }) => {
    const raw = Redacted.value(credential)
    const tenant = tenantsByKey.get(raw)
    if (tenant === undefined) return Effect.fail(new Problem.Unauthorized({ detail: "unknown key" }))
    // The subject the server gives a configured key.
    const subject = `key:${ApiKey.lookupPrefix(raw, ApiKey.hasher().digest(raw))}`
    const principal = new Principal.Principal({
      tenantId: TenantId.make(tenant),
      subject,
      roles: ["writer", "reader"],
      method: "api-key"
    })
    return Effect.provideService(effect, Principal.CurrentPrincipal, principal)
  }
})

class ReferenceApi extends HttpApi.make("reference")
  .add(RetrievalHttp.DocumentsGroup.middleware(ReferenceAuthentication).prefix("/api/v1"))
  .add(PipelinesHttp.PipelinesGroup.middleware(ReferenceAuthentication).prefix("/api/v1"))
{}

const reference = (directory: string) =>
  HttpApiBuilder.layer(ReferenceApi).pipe(
    Layer.provide([RetrievalHttp.layerDocuments(ReferenceApi), PipelinesHttp.layer(ReferenceApi)]),
    Layer.provide(ReferenceAuthenticationLive),
    Layer.provide(HttpRouter.middleware(
      (effect: any) => Server.problems(effect) as any,
      { global: true }
    )),
    Layer.provide(Pipeline.layer),
    Layer.provide(Retrieval.layer({ collection: "documents" })),
    Layer.provide(Layer.mergeAll(
      EventStore.layerMemory(),
      Checkpoints.layerMemory,
      Embedded.layer({ directory, fsync: false }),
      Llm.layerLocal,
      Embedder.layerLocal()
    )),
    Layer.provide(Layer.succeed(References.MinimumLogLevel, "None"))
  )

// -----------------------------------------------------------------------------
// requests
// -----------------------------------------------------------------------------

interface Sent {
  readonly method: string
  readonly path: string
  readonly key: string
  readonly body?: unknown
}

type Step =
  | { readonly _tag: "send"; readonly request: Sent }
  | { readonly _tag: "readPipeline"; readonly key: string; readonly index: number }

const texts = [
  "Zebras are African equines with distinctive black-and-white striped coats.",
  "Green tea is made from the leaves of Camellia sinensis. It is steamed or pan-fired to stop oxidation.",
  "Otters hold hands while they sleep. They float on their backs.",
  "   "
]
const keys = [Testing.keys.tenantA, Testing.keys.tenantB]
const key = fc.constantFrom(...keys)
// Ids are given (a generated id differs between the two servers, and so would the order of documents that tie).
const docId = fc.constantFrom("zebras", "tea", "otters", "bad$id")

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    key,
    id: docId,
    text: fc.constantFrom(...texts),
    metadata: fc.option(fc.record({ topic: fc.constantFrom("animals", "drinks"), n: fc.integer({ min: 0, max: 3 }) }), {
      nil: undefined
    })
  }).map((r): Step => ({
    _tag: "send",
    request: {
      method: "POST",
      path: "/api/v1/documents",
      key: r.key,
      body: { id: r.id, text: r.text, ...(r.metadata ? { metadata: r.metadata } : {}) }
    }
  })),
  fc.record({ key, id: docId, method: fc.constantFrom("GET", "DELETE") }).map((r): Step => ({
    _tag: "send",
    request: { method: r.method, path: `/api/v1/documents/${encodeURIComponent(r.id)}`, key: r.key }
  })),
  fc.record({
    key,
    query: fc.constantFrom("striped animals", "leaves", "sleep", " "),
    limit: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
    filter: fc.constantFrom<unknown>(undefined, { must: [{ key: "topic", match: { value: "drinks" } }] }, {
      must: [{ key: 3 }]
    })
  }).map((r): Step => ({
    _tag: "send",
    request: {
      method: "POST",
      path: "/api/v1/search",
      key: r.key,
      body: {
        query: r.query,
        ...(r.limit === undefined ? {} : { limit: r.limit }),
        ...(r.filter === undefined ? {} : { filter: r.filter })
      }
    }
  })),
  fc.record({ key, useRag: fc.boolean(), topK: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }) }).map(
    (r): Step => ({
      _tag: "send",
      request: {
        method: "POST",
        path: "/api/v1/ask",
        key: r.key,
        body: {
          question: "What do zebras look like?",
          useRag: r.useRag,
          ...(r.topK === undefined ? {} : { topK: r.topK })
        }
      }
    })
  ),
  fc.record({
    key,
    body: fc.constantFrom<unknown>(
      { topic: "zebras", steps: ["retrieve", "draft", "critique", "improve"] },
      { script: "SetTopic('tea') | UseRetrieval(2) | UseDraft" },
      { script: "SetTopic('x') | UseDarft" },
      { topic: "zebras" }
    )
  }).map((r): Step => ({
    _tag: "send",
    request: { method: "POST", path: "/api/v1/pipelines", key: r.key, body: r.body }
  })),
  fc.record({ key, index: fc.nat({ max: 4 }) }).map((r): Step => ({ _tag: "readPipeline", ...r })),
  key.map((k): Step => ({ _tag: "send", request: { method: "GET", path: "/api/v1/whoami", key: k } }))
)

interface Answer {
  readonly status: number
  readonly body: unknown
}

const answerOf = async (response: Response): Promise<Answer> => {
  const text = await response.text()
  let body: unknown = text === "" ? undefined : text
  try {
    body = text === "" ? undefined : JSON.parse(text)
  } catch {
    // not JSON
  }
  return { status: response.status, body }
}

const toRequest = (base: string, sent: Sent) =>
  new Request(`${base}${sent.path}`, {
    method: sent.method,
    headers: { "x-api-key": sent.key, ...(sent.body === undefined ? {} : { "content-type": "application/json" }) },
    ...(sent.body === undefined ? {} : { body: JSON.stringify(sent.body) })
  })

describe("v1 after v2", () => {
  it("every recorded v1 answer is what v2's answer migrates down to, whatever v2's meta", () =>
    fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...recorded),
        fc.record({ apiVersion: fc.string(), correlationId: fc.option(fc.string(), { nil: undefined }) }, {
          requiredKeys: ["apiVersion"]
        }),
        async ({ body, endpoint, group }, meta) => {
          const down = await Effect.runPromise(
            VersionedApi.migrateDown(Versions, { group, endpoint, part: "success", to: "v1" })(
              asV2(endpoint, body, meta)
            )
          )
          assert.deepStrictEqual(down, body)
        }
      ),
      { numRuns: 200 }
    ))

  it.live("random v1 requests: the server answers as the server before v2 did", () =>
    Effect.gen(function*() {
      const server = yield* Testing.start({ RATE_LIMIT_DEFAULT: "off", LOG_LEVEL: "error" })
      const directory = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-reference-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(directory, { recursive: true, force: true })))
      const web = HttpRouter.toWebHandler(
        reference(directory) as unknown as Layer.Layer<never, never, HttpRouter.HttpRouter>,
        { disableLogger: true }
      )
      const handler = web.handler as unknown as (request: Request) => Promise<Response>
      const dispose = web.dispose
      yield* Effect.addFinalizer(() => Effect.promise(() => dispose()))
      let sent = 0
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(fc.array(step, { minLength: 5, maxLength: 30 }), async (steps) => {
            const pipelines: Array<{ readonly reference: string; readonly server: string; readonly key: string }> = []
            for (const s of steps) {
              let request: Sent
              if (s._tag === "readPipeline") {
                const created = pipelines[s.index % Math.max(1, pipelines.length)]
                if (created === undefined) continue
                request = { method: "GET", path: `/api/v1/pipelines/${created.reference}`, key: s.key }
                const expected = await answerOf(await handler(toRequest("http://reference", request)))
                const actual = await answerOf(
                  await fetch(toRequest(server.url, { ...request, path: `/api/v1/pipelines/${created.server}` }))
                )
                assert.deepStrictEqual(normalize(actual), normalize(expected), `GET pipeline as ${s.key}`)
                continue
              }
              request = s.request
              sent++
              const expected = await answerOf(await handler(toRequest("http://reference", request)))
              const actual = await answerOf(await fetch(toRequest(server.url, request)))
              assert.deepStrictEqual(
                normalize(actual),
                normalize(expected),
                `${request.method} ${request.path} ${JSON.stringify(request.body)}`
              )
              if (request.path === "/api/v1/pipelines" && expected.status === 201) {
                pipelines.push({
                  reference: (expected.body as { id: string }).id,
                  server: (actual.body as { id: string }).id,
                  key: request.key
                })
              }
            }
          }),
          { numRuns: 25 }
        )
      )
      assert.isAbove(sent, 100)
    }), { timeout: 300_000 })
})
