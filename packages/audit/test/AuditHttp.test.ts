import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { AuditHttp, AuditLog, AuditStore, Checkpoint, Merkle } from "@ouroboros/audit"
import { ProblemHttp } from "@ouroboros/kernel"
import { Effect, Layer, Result } from "effect"
import { HttpClient, HttpRouter, HttpServerRequest } from "effect/http"
import { HttpApiBuilder, OpenApi } from "effect/http-api"
import { event, keys, origin, verifier } from "./contract.js"

// What a server does: the scope from the caller (here a header stands in for the principal).
const ScopeFromHeader = AuditHttp.layerScope(
  Effect.map(Effect.service(HttpServerRequest.HttpServerRequest), (request) => request.headers["x-tenant"])
)

/** The audit api over a test HTTP server, on the given store. */
const serve = <E>(store: Layer.Layer<AuditStore.AuditStore, E>) =>
  HttpRouter.serve(
    HttpApiBuilder.layer(AuditHttp.Api).pipe(
      Layer.provide(AuditHttp.layerApi),
      Layer.provide(ScopeFromHeader),
      Layer.provide(ProblemHttp.layer)
    ),
    { disableLogger: true, disableListenLog: true }
  ).pipe(
    Layer.provideMerge(NodeHttpServer.layerTest),
    Layer.provideMerge(AuditLog.layer({ keys, origin, checkpointInterval: 0 }).pipe(Layer.provide(store)))
  )

const Served = serve(AuditStore.layerMemory)

// A store that stops answering when told to (a database that went away): every operation fails.
const storeDown = { now: false }
const UnreachableStore = Layer.effect(
  AuditStore.AuditStore,
  Effect.gen(function*() {
    const store = yield* AuditStore.AuditStore
    const failure = (operation: string) =>
      Effect.fail(new AuditStore.AuditStoreError({ operation, message: "connection refused" }))
    const wrapped = Object.fromEntries(
      Object.entries(store).map(([name, value]: [string, unknown]) => {
        if (typeof value === "function") {
          const f = value as (...args: Array<unknown>) => Effect.Effect<unknown, AuditStore.AuditStoreError>
          return [name, (...args: Array<unknown>) => storeDown.now ? failure(name) : f(...args)]
        }
        if (!Effect.isEffect(value)) return [name, value]
        return [name, Effect.suspend(() => storeDown.now ? failure(name) : value)]
      })
    )
    return AuditStore.AuditStore.of(wrapped as unknown as AuditStore.AuditStore["Service"])
  })
).pipe(Layer.provide(AuditStore.layerMemory))

const ServedUnreachable = serve(UnreachableStore)

const b64 = (text: string) => new Uint8Array(Buffer.from(text, "base64"))

const get = (path: string, headers: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.get(path, { headers })
    const text = yield* response.text
    return { status: response.status, type: response.headers["content-type"] ?? "", text, json: () => JSON.parse(text) }
  }).pipe(Effect.orDie)

describe("AuditHttp", () => {
  it.effect("queries with filters and a cursor; a tenant scope sees its own tenant only", () =>
    Effect.gen(function*() {
      const audit = yield* AuditLog.AuditLog
      for (let i = 0; i < 3; i++) {
        yield* audit.append(event({ subject: "alice", resource: { type: "document", id: `d${i}` } }))
      }
      yield* audit.append(event({ subject: "bob", tenant: "globex", type: "data.delete" }))
      const all = yield* get("/admin/audit?limit=2")
      assert.strictEqual(all.status, 200)
      const page = all.json()
      assert.deepStrictEqual(page.entries.map((e: any) => e.index), [3, 2])
      const next = (yield* get(`/admin/audit?limit=2&cursor=${page.nextCursor}`)).json()
      assert.deepStrictEqual(next.entries.map((e: any) => e.index), [1, 0])
      assert.deepStrictEqual((yield* get("/admin/audit?actor=bob")).json().entries.map((e: any) => e.index), [3])
      assert.deepStrictEqual(
        (yield* get("/admin/audit?type=data.delete")).json().entries.map((e: any) => e.actor.subject),
        ["bob"]
      )
      assert.deepStrictEqual((yield* get("/admin/audit?resourceType=document&resourceId=d1")).json().entries.length, 1)
      assert.deepStrictEqual(
        (yield* get("/admin/audit?from=1970-01-01T00:00:00Z&to=1970-01-01T00:00:01Z")).json().entries.length,
        4
      )
      const scoped = (yield* get("/admin/audit", { "x-tenant": "globex" })).json()
      assert.deepStrictEqual(scoped.entries.map((e: any) => e.tenantId), ["globex"])
      assert.deepStrictEqual((yield* get("/admin/audit?tenant=acme", { "x-tenant": "globex" })).json().entries, [])
      const bad = yield* get("/admin/audit?cursor=nope")
      assert.strictEqual(bad.status, 400)
      assert.strictEqual(bad.type, "application/problem+json")
      assert.strictEqual(bad.json().title, "Bad Request")
      assert.strictEqual((yield* get("/admin/audit?limit=0")).status, 400)
      assert.strictEqual((yield* get("/admin/audit?type=nonsense")).status, 400)
    }).pipe(Effect.provide(Served)))

  it.effect("serves the signed checkpoint as text/plain that verifies with the log's key", () =>
    Effect.gen(function*() {
      const audit = yield* AuditLog.AuditLog
      yield* audit.append(event())
      const response = yield* get("/admin/audit/checkpoint")
      assert.strictEqual(response.status, 200)
      assert.match(response.type, /^text\/plain/)
      const checkpoint = Result.getOrThrow(Checkpoint.openCheckpoint(response.text, verifier, origin))
      assert.strictEqual(checkpoint.size, 1)
      assert.isTrue(response.text.startsWith(`${origin}\n1\n`))
    }).pipe(Effect.provide(Served)))

  it.effect("proves inclusion (by id) and consistency (from, to); unknown entries are 404, bad sizes 400", () =>
    Effect.gen(function*() {
      const audit = yield* AuditLog.AuditLog
      const first = yield* audit.append(event())
      for (let i = 0; i < 9; i++) yield* audit.append(event())
      const other = yield* audit.append(event({ tenant: "globex" }))
      const inclusion = (yield* get(`/admin/audit/proof?id=${first.id}`)).json()
      assert.strictEqual(inclusion.kind, "inclusion")
      const signed = Result.getOrThrow(Checkpoint.openCheckpoint(inclusion.checkpoint, verifier, origin))
      assert.isTrue(
        Merkle.verifyInclusion(
          inclusion.index,
          inclusion.treeSize,
          b64(inclusion.leafHash),
          inclusion.proof.map(b64),
          signed.rootHash
        )
      )
      const consistency = (yield* get("/admin/audit/proof?from=4&to=11")).json()
      assert.strictEqual(consistency.kind, "consistency")
      assert.isTrue(
        Merkle.verifyConsistency(
          4,
          11,
          consistency.proof.map(b64),
          b64(consistency.firstRootHash),
          b64(consistency.secondRootHash)
        )
      )
      const missing = yield* get("/admin/audit/proof?id=8d4f0a0e-0000-4000-8000-000000000000")
      assert.strictEqual(missing.status, 404)
      assert.strictEqual(missing.type, "application/problem+json")
      assert.strictEqual((yield* get(`/admin/audit/proof?id=${other.id}`, { "x-tenant": "acme" })).status, 404)
      assert.strictEqual((yield* get("/admin/audit/proof?from=5&to=99")).status, 400)
      assert.strictEqual((yield* get("/admin/audit/proof")).status, 400)
      assert.strictEqual((yield* get(`/admin/audit/proof?id=${first.id}&from=1`)).status, 400)
    }).pipe(Effect.provide(Served)))

  it.effect("verifies over HTTP and reports as JSON", () =>
    Effect.gen(function*() {
      const audit = yield* AuditLog.AuditLog
      for (let i = 0; i < 3; i++) yield* audit.append(event())
      const response = yield* get("/admin/audit/verify")
      assert.strictEqual(response.status, 200)
      const result = response.json()
      assert.isTrue(result.ok)
      assert.strictEqual(result.size, 3)
      assert.strictEqual(result.verifierKey, keys.signer.verifierKey)
      assert.isNull(result.firstBadIndex)
    }).pipe(Effect.provide(Served)))

  it.effect("answers 503 when the store cannot be read, not 500", () =>
    Effect.gen(function*() {
      const audit = yield* AuditLog.AuditLog
      const appended = yield* audit.append(event())
      assert.strictEqual((yield* get("/admin/audit")).status, 200)
      storeDown.now = true
      try {
        for (
          const path of [
            "/admin/audit",
            "/admin/audit?actor=alice",
            "/admin/audit/verify",
            "/admin/audit/checkpoint",
            `/admin/audit/proof?id=${appended.id}`,
            "/admin/audit/proof?from=0&to=1"
          ]
        ) {
          const response = yield* get(path)
          assert.strictEqual(response.status, 503, path)
          assert.strictEqual(response.type, "application/problem+json", path)
          assert.include(response.json().detail, "connection refused", path)
        }
      } finally {
        storeDown.now = false
      }
      assert.strictEqual((yield* get("/admin/audit")).status, 200, "answers again once the store does")
    }).pipe(Effect.provide(ServedUnreachable)))
})

describe("AuditHttp OpenAPI", () => {
  it("documents the four endpoints, the checkpoint as text/plain and the errors as problems", () => {
    const spec = OpenApi.fromApi(AuditHttp.Api) as any
    assert.deepStrictEqual(
      Object.keys(spec.paths).sort(),
      ["/admin/audit", "/admin/audit/checkpoint", "/admin/audit/proof", "/admin/audit/verify"]
    )
    assert.property(spec.paths["/admin/audit/checkpoint"].get.responses["200"].content, "text/plain; charset=utf-8")
    assert.property(spec.paths["/admin/audit/proof"].get.responses, "404")
    assert.property(spec.paths["/admin/audit"].get.responses, "400")
  })
})
