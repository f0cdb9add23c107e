/**
 * Tenant isolation of the whole server, as a property: random sequences of API calls by two tenants (ingest, read,
 * delete, search, ask, pipelines, their reads, the v2 list) over HTTP, on the embedded database and on PostgreSQL
 * (where the event store runs tenant-scoped work under row-level security). A model of each tenant's documents says
 * what every answer must be; neither tenant ever sees, changes or deletes the other's data: the same document ids are
 * used by both, the other's resources are 404, and no answer to one tenant ever carries the other's words.
 */
import { assert, describe, it } from "@effect/vitest"
import { Testing } from "@ouroboros/server"
import { Json, PgSchema, Services } from "@ouroboros/testkit"
import { Effect, Layer } from "effect"
import * as fc from "fast-check"

const request = Json.request

type Who = "a" | "b"

// Words only one tenant ever writes: an answer to the other that contains one is a leak.
const words: Record<Who, ReadonlyArray<string>> = {
  a: ["alphazebra", "alphatiger", "alphaotter", "alphaheron"],
  b: ["bravozebra", "bravotiger", "bravootter", "bravoheron"]
}
const other = (who: Who): Who => who === "a" ? "b" : "a"

type Command =
  | { readonly _tag: "ingest"; readonly who: Who; readonly id: number; readonly word: number; readonly n: number }
  | { readonly _tag: "get"; readonly who: Who; readonly id: number }
  | { readonly _tag: "delete"; readonly who: Who; readonly id: number }
  | { readonly _tag: "search"; readonly who: Who; readonly word: number; readonly foreign: boolean }
  | { readonly _tag: "ask"; readonly who: Who; readonly word: number }
  | { readonly _tag: "pipeline"; readonly who: Who; readonly word: number }
  | { readonly _tag: "readPipeline"; readonly who: Who; readonly index: number }
  | { readonly _tag: "list"; readonly who: Who }

const who = fc.constantFrom<Who>("a", "b")
const id = fc.integer({ min: 0, max: 3 })
const word = fc.integer({ min: 0, max: 3 })

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ _tag: fc.constant("ingest" as const), who, id, word, n: fc.integer({ min: 0, max: 9 }) })
  },
  { weight: 3, arbitrary: fc.record({ _tag: fc.constant("get" as const), who, id }) },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("delete" as const), who, id }) },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("search" as const), who, word, foreign: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("ask" as const), who, word }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("pipeline" as const), who, word }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("readPipeline" as const), who, index: fc.nat({ max: 5 }) }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("list" as const), who }) }
)

let runs = 0

/** One sequence against the server at `url`, for a fresh pair of tenants. */
const runSequence = async (url: string, commands: ReadonlyArray<Command>) => {
  const run = ++runs
  const tenants = { a: `iso${run}a`, b: `iso${run}b` }
  const keys = {} as Record<Who, Record<string, string>>
  for (const w of ["a", "b"] as const) {
    const admin = { "x-api-key": Testing.keys.admin }
    assert.strictEqual(
      (await request(`${url}/admin/tenants`, { headers: admin, body: { id: tenants[w] } })).status,
      201
    )
    const issued = await request(`${url}/admin/tenants/${tenants[w]}/keys`, { headers: admin, body: {} })
    keys[w] = { "x-api-key": issued.body.key }
  }
  const model: Record<Who, Map<string, string>> = { a: new Map(), b: new Map() }
  const pipelines: Array<{ readonly owner: Who; readonly id: string }> = []
  const api = `${url}/api/v1`
  const noLeak = (w: Who, reply: Json.Reply, what: string) => {
    for (const foreign of words[other(w)]) assert.notInclude(reply.text, foreign, `${what}: a word of the other tenant`)
  }
  const ownText = (w: Who, documentId: string, text: string, what: string) => {
    const own = model[w].get(documentId)
    assert.isDefined(own, `${what}: ${documentId} is not a document of this tenant now`)
    assert.include(own!, text, what)
  }
  for (const c of commands) {
    const docId = "id" in c ? `doc-${c.id}` : ""
    switch (c._tag) {
      case "ingest": {
        const text = `The ${words[c.who][c.word]} number ${c.n} lives here.`
        const reply = await request(`${api}/documents`, { headers: keys[c.who], body: { id: docId, text } })
        assert.strictEqual(reply.status, 201, reply.text)
        model[c.who].set(docId, text)
        noLeak(c.who, reply, "ingest")
        break
      }
      case "get": {
        const reply = await request(`${api}/documents/${docId}`, { headers: keys[c.who] })
        const own = model[c.who].get(docId)
        if (own === undefined) assert.strictEqual(reply.status, 404, `${c.who} reads ${docId}: ${reply.text}`)
        else {
          assert.strictEqual(reply.status, 200)
          assert.strictEqual(reply.body.text, own)
        }
        noLeak(c.who, reply, "get")
        break
      }
      case "delete": {
        const reply = await request(`${api}/documents/${docId}`, { method: "DELETE", headers: keys[c.who] })
        if (model[c.who].has(docId)) {
          assert.strictEqual(reply.status, 204)
          model[c.who].delete(docId)
        } else assert.strictEqual(reply.status, 404, `${c.who} deletes ${docId}: ${reply.text}`)
        break
      }
      case "search": {
        // Searching for the other tenant's words finds nothing of theirs.
        const query = words[c.foreign ? other(c.who) : c.who][c.word]!
        const reply = await request(`${api}/search`, { headers: keys[c.who], body: { query, limit: 20 } })
        assert.strictEqual(reply.status, 200)
        for (const hit of reply.body.results) ownText(c.who, hit.documentId, hit.text, "search")
        assert.strictEqual(reply.body.results.length, model[c.who].size, "every own document, nothing else")
        noLeak(c.who, reply, "search")
        break
      }
      case "ask": {
        const reply = await request(`${api}/ask`, {
          headers: keys[c.who],
          body: { question: `Where does the ${words[c.who][c.word]} live?`, topK: 8 }
        })
        assert.strictEqual(reply.status, 200)
        for (const hit of reply.body.sources) ownText(c.who, hit.documentId, hit.text, "ask")
        noLeak(c.who, reply, "ask")
        break
      }
      case "pipeline": {
        const reply = await request(`${api}/pipelines`, {
          headers: keys[c.who],
          body: { topic: words[c.who][c.word], steps: ["retrieve", "draft"] }
        })
        assert.strictEqual(reply.status, 201, reply.text)
        pipelines.push({ owner: c.who, id: reply.body.id })
        for (const step of reply.body.steps) {
          for (const source of step.sources ?? []) assert.isTrue(model[c.who].has(source.documentId), "pipeline")
        }
        noLeak(c.who, reply, "pipeline")
        break
      }
      case "readPipeline": {
        const pipeline = pipelines[c.index % Math.max(1, pipelines.length)]
        if (pipeline === undefined) break
        const reply = await request(`${api}/pipelines/${pipeline.id}`, { headers: keys[c.who] })
        assert.strictEqual(reply.status, pipeline.owner === c.who ? 200 : 404, reply.text)
        noLeak(c.who, reply, "read pipeline")
        break
      }
      case "list": {
        const reply = await request(`${url}/api/v2/documents?limit=100`, { headers: keys[c.who] })
        assert.strictEqual(reply.status, 200, reply.text)
        const listed = new Map<string, string>(reply.body.data.map((d: { id: string; text: string }) => [d.id, d.text]))
        assert.deepStrictEqual(listed, model[c.who])
        noLeak(c.who, reply, "list")
        break
      }
    }
  }
  // In the end each tenant still has exactly what it wrote.
  for (const w of ["a", "b"] as const) {
    for (const [documentId, text] of model[w]) {
      const reply = await request(`${api}/documents/${documentId}`, { headers: keys[w] })
      assert.strictEqual(reply.body.text, text)
    }
  }
}

const property = (url: string) =>
  Effect.promise(() =>
    fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 10, maxLength: 40 }), (commands) => runSequence(url, commands)),
      { numRuns: 20 }
    )
  )

// Plenty of requests from one address: the rate limit is not what this test is about.
const env = { RATE_LIMIT_DEFAULT: "off", LOG_LEVEL: "error" }

const postgres = await Services.postgres()

describe("tenant isolation over HTTP", () => {
  it.live("on the embedded database", () =>
    Effect.gen(function*() {
      const server = yield* Testing.start(env)
      yield* property(server.url)
    }), { timeout: 300_000 })

  it.live.runIf(postgres)("on PostgreSQL, under row-level security", () =>
    Effect.gen(function*() {
      const schema = `isolation_${Math.random().toString(36).slice(2, 10)}`
      yield* Layer.build(PgSchema.layer({ schema }))
      const server = yield* Testing.start({
        ...env,
        DATABASE_URL: PgSchema.withSearchPath(Services.postgresUrl, schema)
      })
      yield* property(server.url)
    }), { timeout: 300_000 })
})
