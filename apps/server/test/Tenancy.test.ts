/**
 * The principal-first edge of the whole server, over HTTP on 127.0.0.1: authentication once per request
 * (`@ouroboros/tenancy`), rate limits by principal (an address for everyone else, and no bucket for unknown keys),
 * roles instead of a shared key, the tenants admin API (tenants, keys, usage), JWTs, quotas and usage metering, and a
 * deleted tenant's data.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { SignJWT } from "jose"
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Testing from "../src/Testing.js"
import { call, type Reply } from "./helpers.js"

const key = (value: string) => ({ "x-api-key": value })
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
const admin = key(Testing.keys.admin)
const tenantA = key(Testing.keys.tenantA)

const unauthorized = {
  type: "https://ouroboros.dev/problems/unauthorized",
  title: "Unauthorized",
  status: 401,
  detail: "valid credentials are required: an X-API-Key header or an Authorization: Bearer token"
}

const problemOf = (reply: Reply) => {
  const { correlationId: _, ...rest } = reply.body
  return rest
}

const secret = "a-test-secret-of-at-least-32-bytes!!"

const sign = (claims: Record<string, unknown>, expiresIn: string | number = "5m") =>
  Effect.promise(() =>
    new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setSubject("user-1").setIssuedAt().setExpirationTime(
      expiresIn
    ).sign(new TextEncoder().encode(secret))
  )

const zebras = "Zebras are African equines with distinctive black-and-white striped coats."

describe("the principal-first edge", () => {
  it.live(
    "unknown keys share the address's bucket: from a limited address they get 429s, not 401s",
    () =>
      Effect.gen(function*() {
        const server = yield* Testing.start({ RATE_LIMIT_DEFAULT: "3/1h" })
        const whoami = `${server.url}/api/v1/whoami`
        // The address's budget, spent by requests without credentials.
        for (let i = 0; i < 3; i++) assert.strictEqual((yield* call(whoami)).status, 401)
        assert.strictEqual((yield* call(whoami)).status, 429)
        const statuses = yield* Effect.forEach(
          Array.from({ length: 150 }, () => randomBytes(24).toString("base64url")),
          (random) => Effect.map(call(whoami, { headers: key(random) }), (reply) => reply.status),
          { concurrency: 10 }
        )
        assert.deepStrictEqual([...new Set(statuses)], [429])
        // A valid key has a bucket of its own.
        const known = yield* call(whoami, { headers: tenantA })
        assert.strictEqual(known.status, 200)
        assert.match(known.headers.get("ratelimit") ?? "", /^"default";r=2;t=\d+$/)
      }),
    { timeout: 60_000 }
  )

  it.live("every refusal is the same 401 with WWW-Authenticate; roles decide the rest", () =>
    Effect.gen(function*() {
      const server = yield* Testing.start({ JWT_SECRET: secret })
      const api = `${server.url}/api/v1`
      const expired = yield* sign({ tenant_id: "tenant-a", roles: ["writer"] }, Math.floor(Date.now() / 1000) - 120)
      const none = `${Buffer.from(JSON.stringify({ alg: "none" })).toString("base64url")}.${
        Buffer.from(JSON.stringify({ tenant_id: "tenant-a", sub: "x" })).toString("base64url")
      }.`
      const refusals: ReadonlyArray<Record<string, string>> = [
        {},
        key(""),
        // Node's parser answers 431 before any middleware for headers over 16 KiB in all: 8 KiB is the longest here.
        key("x".repeat(8 * 1024)),
        key("unknown-key-0123456789"),
        bearer(expired),
        bearer(none),
        bearer("not.a.token"),
        bearer(yield* sign({ tenant_id: "no-such-tenant" })),
        { ...tenantA, ...bearer(yield* sign({ tenant_id: "tenant-a" })) }
      ]
      for (const headers of refusals) {
        const reply = yield* call(`${api}/search`, { headers, body: { query: "x" } })
        assert.strictEqual(reply.status, 401, JSON.stringify(Object.keys(headers)))
        assert.deepStrictEqual(problemOf(reply), unauthorized)
        assert.strictEqual(reply.headers.get("www-authenticate"), "Bearer, ApiKey header=\"X-API-Key\"")
      }
      // The admin key is a principal with the admin role: no tenant, and a tenant key is no admin.
      assert.strictEqual((yield* call(`${api}/whoami`, { headers: admin })).status, 403)
      assert.strictEqual((yield* call(`${server.url}/admin/tenants`, { headers: tenantA })).status, 403)
      assert.strictEqual((yield* call(`${server.url}/admin/circuit-breakers`, { headers: admin })).status, 200)

      // A JWT end to end: the tenant from tenant_id, the roles from roles.
      const token = yield* sign({ tenant_id: "tenant-a", roles: ["writer", "reader"] })
      const me = yield* call(`${api}/whoami`, { headers: bearer(token) })
      assert.deepStrictEqual(me.body, { tenantId: "tenant-a", subject: "user-1", roles: ["writer", "reader"] })
      const ingested = yield* call(`${api}/documents`, { headers: bearer(token), body: { id: "z", text: zebras } })
      assert.strictEqual(ingested.status, 201)
      assert.strictEqual((yield* call(`${api}/documents/z`, { headers: tenantA })).status, 200)
      // A token without roles gets the default reader role: it reads, it does not write.
      const reader = yield* sign({ tenant_id: "tenant-a" })
      assert.strictEqual((yield* call(`${api}/documents/z`, { headers: bearer(reader) })).status, 200)
      const refused = yield* call(`${api}/documents`, { headers: bearer(reader), body: { text: zebras } })
      assert.strictEqual(refused.status, 403)
      assert.strictEqual(refused.body.detail, "this needs the writer role")
      assert.strictEqual((yield* call(`${api}/documents/z`, { method: "DELETE", headers: bearer(reader) })).status, 403)
      // An admin token is an operator.
      const operator = yield* sign({ tenant_id: "tenant-a", roles: ["admin"] })
      assert.strictEqual((yield* call(`${server.url}/admin/tenants`, { headers: bearer(operator) })).status, 200)
    }), { timeout: 60_000 })

  it.live(
    "tenants, keys (create, rotate, revoke) and a tenant admin confined to its own tenant",
    () =>
      Effect.gen(function*() {
        const server = yield* Testing.start()
        const admin_ = `${server.url}/admin/tenants`
        const created = yield* call(admin_, { headers: admin, body: { id: "acme", tier: "free", name: "Acme" } })
        assert.strictEqual(created.status, 201)
        assert.strictEqual(created.body.tier, "free")
        assert.strictEqual((yield* call(admin_, { headers: admin, body: { id: "acme" } })).status, 409)
        const listed = yield* call(admin_, { headers: admin })
        assert.deepStrictEqual(listed.body.map((t: { id: string }) => t.id).sort(), ["acme", "tenant-a", "tenant-b"])

        const issued = yield* call(`${admin_}/acme/keys`, {
          headers: admin,
          body: { name: "ops", roles: ["tenant-admin"] }
        })
        assert.strictEqual(issued.status, 201)
        assert.strictEqual(issued.headers.get("cache-control"), "no-store")
        const opsKey = key(issued.body.key)
        // The tenant admin manages its own keys and reads its usage; another tenant is a 404; operators' actions 403.
        const writer = yield* call(`${admin_}/acme/keys`, { headers: opsKey, body: { roles: ["writer", "reader"] } })
        assert.strictEqual(writer.status, 201)
        const listedKeys = yield* call(`${admin_}/acme/keys`, { headers: opsKey })
        assert.strictEqual(listedKeys.body.length, 2)
        assert.notInclude(listedKeys.text, issued.body.key)
        assert.strictEqual((yield* call(`${admin_}/tenant-a/keys`, { headers: opsKey })).status, 404)
        assert.strictEqual((yield* call(`${admin_}/acme/usage`, { headers: opsKey })).status, 200)
        assert.strictEqual((yield* call(admin_, { headers: opsKey })).status, 403)
        assert.strictEqual((yield* call(`${admin_}/acme`, { method: "DELETE", headers: opsKey })).status, 403)
        // ...and it is no tenant principal of the documents API unless its key says so.
        const me = yield* call(`${server.url}/api/v1/whoami`, { headers: opsKey })
        assert.deepStrictEqual(me.body.roles, ["tenant-admin"])

        // The writer key works at once; rotating it with no grace replaces it; revoking the new one ends it.
        const writerKey = key(writer.body.key)
        assert.strictEqual((yield* call(`${server.url}/api/v1/whoami`, { headers: writerKey })).status, 200)
        const rotated = yield* call(`${admin_}/acme/keys/${writer.body.info.id}/rotate`, {
          headers: admin,
          body: { gracePeriodSeconds: 0 }
        })
        assert.strictEqual(rotated.status, 201)
        assert.strictEqual((yield* call(`${server.url}/api/v1/whoami`, { headers: writerKey })).status, 401)
        const newKey = key(rotated.body.key)
        assert.strictEqual((yield* call(`${server.url}/api/v1/whoami`, { headers: newKey })).status, 200)
        const revoked = yield* call(`${admin_}/acme/keys/${rotated.body.info.id}`, {
          method: "DELETE",
          headers: opsKey
        })
        assert.strictEqual(revoked.body.status, "revoked")
        assert.strictEqual((yield* call(`${server.url}/api/v1/whoami`, { headers: newKey })).status, 401)
        // A configured key is read-only for the API.
        const configured = (yield* call(`${admin_}/tenant-a/keys`, { headers: admin })).body[0]
        assert.strictEqual(configured.source, "environment")
        assert.strictEqual(
          (yield* call(`${admin_}/tenant-a/keys/${configured.id}`, { method: "DELETE", headers: admin })).status,
          409
        )
      }),
    { timeout: 60_000 }
  )

  it.live(
    "deleting a tenant erases its documents, vectors and events; other tenants keep theirs",
    () =>
      Effect.gen(function*() {
        const server = yield* Testing.start()
        const api = `${server.url}/api/v1`
        yield* call(`${server.url}/admin/tenants`, { headers: admin, body: { id: "gone", dedicatedCollection: true } })
        const goneKey = key(
          (yield* call(`${server.url}/admin/tenants/gone/keys`, { headers: admin, body: {} })).body.key
        )
        assert.strictEqual(
          (yield* call(`${api}/documents`, { headers: goneKey, body: { id: "z", text: zebras } })).status,
          201
        )
        assert.strictEqual(
          (yield* call(`${api}/documents`, { headers: tenantA, body: { id: "z", text: zebras } })).status,
          201
        )
        const pipeline = yield* call(`${api}/pipelines`, {
          headers: goneKey,
          body: { topic: "zebras", steps: ["draft"] }
        })
        assert.strictEqual(pipeline.status, 201)
        const found = yield* call(`${api}/search`, { headers: goneKey, body: { query: "zebras" } })
        assert.strictEqual(found.body.results[0].documentId, "z")

        const deleted = yield* call(`${server.url}/admin/tenants/gone`, { method: "DELETE", headers: admin })
        assert.strictEqual(deleted.status, 200)
        assert.strictEqual(deleted.body.keysDeleted, 1)
        assert.strictEqual((yield* call(`${api}/whoami`, { headers: goneKey })).status, 401)
        // The same id again is a new, empty tenant: no document, no pipeline, no vector.
        yield* call(`${server.url}/admin/tenants`, { headers: admin, body: { id: "gone" } })
        const again = key((yield* call(`${server.url}/admin/tenants/gone/keys`, { headers: admin, body: {} })).body.key)
        assert.strictEqual((yield* call(`${api}/documents/z`, { headers: again })).status, 404)
        assert.strictEqual((yield* call(`${api}/pipelines/${pipeline.body.id}`, { headers: again })).status, 404)
        assert.deepStrictEqual(
          (yield* call(`${api}/search`, { headers: again, body: { query: "zebras" } })).body.results,
          []
        )
        // Tenant A's document is untouched, and survives a rebuild of the vectors from the events.
        yield* call(`${server.url}/admin/projections/vectors/rebuild`, { method: "POST", headers: admin })
        const other = yield* call(`${api}/search`, { headers: tenantA, body: { query: "zebras" } })
        assert.strictEqual(other.body.results[0].documentId, "z")
        assert.deepStrictEqual(
          (yield* call(`${api}/search`, { headers: again, body: { query: "zebras" } })).body.results,
          []
        )
      }),
    { timeout: 60_000 }
  )

  it.live("a tenant that moves to a collection of its own keeps its vectors", () =>
    Effect.gen(function*() {
      const server = yield* Testing.start()
      const api = `${server.url}/api/v1`
      assert.strictEqual(
        (yield* call(`${api}/documents`, { headers: tenantA, body: { id: "z", text: zebras } })).status,
        201
      )
      const moved = yield* call(`${server.url}/admin/tenants/tenant-a`, {
        method: "PATCH",
        headers: admin,
        body: { dedicatedCollection: true }
      })
      assert.strictEqual(moved.body.dedicatedCollection, true)
      // The move runs after the update's answer: the search finds the document again once it is done.
      let results: ReadonlyArray<{ documentId: string }> = []
      for (let i = 0; i < 200 && results.length === 0; i++) {
        results = (yield* call(`${api}/search`, { headers: tenantA, body: { query: "zebras" } })).body.results
        if (results.length === 0) yield* Effect.sleep("25 millis")
      }
      assert.strictEqual(results[0]?.documentId, "z")
      const vectors = Fs.readdirSync(Path.join(server.dataDir, "vectors"))
      assert.include(vectors.join(","), "documents_tenant-a")
    }), { timeout: 60_000 })

  it.live(
    "quotas: documents and stored bytes are hard (403), requests per day rate-like (429), LLM tokens per month",
    () =>
      Effect.gen(function*() {
        const dir = yield* Testing.tempDir
        const file = Path.join(dir, "config.json")
        Fs.writeFileSync(
          file,
          JSON.stringify({
            tenants: [
              { id: "small", apiKeys: ["small-key-0123456789abc"], quotas: { documents: 1, llmTokensPerMonth: 10 } },
              { id: "bytes", apiKeys: ["bytes-key-0123456789abc"], quotas: { storedBytes: 100 } },
              { id: "daily", apiKeys: ["daily-key-0123456789abc"], quotas: { requestsPerDay: 3 } }
            ]
          })
        )
        const server = yield* Testing.start({ OUROBOROS_CONFIG: file })
        const api = `${server.url}/api/v1`
        const small = key("small-key-0123456789abc")
        assert.strictEqual(
          (yield* call(`${api}/documents`, { headers: small, body: { id: "a", text: zebras } })).status,
          201
        )
        // The same document again costs nothing; a second document is over the quota.
        assert.strictEqual(
          (yield* call(`${api}/documents`, { headers: small, body: { id: "a", text: zebras } })).status,
          201
        )
        const second = yield* call(`${api}/documents`, { headers: small, body: { id: "b", text: zebras } })
        assert.strictEqual(second.status, 403)
        assert.strictEqual(second.headers.get("content-type"), "application/problem+json")
        assert.deepInclude(second.body, { quota: "documents", limit: 1, usage: 1, status: 403 })
        // Deleting gives the document back.
        assert.strictEqual((yield* call(`${api}/documents/a`, { method: "DELETE", headers: small })).status, 204)
        assert.strictEqual(
          (yield* call(`${api}/documents`, { headers: small, body: { id: "b", text: zebras } })).status,
          201
        )
        // LLM tokens: the first answer goes over the month's 10 tokens (counted after the fact); the next is refused.
        assert.strictEqual(
          (yield* call(`${api}/ask`, { headers: small, body: { question: "What are zebras?" } })).status,
          200
        )
        const over = yield* call(`${api}/ask`, { headers: small, body: { question: "What are zebras?" } })
        assert.strictEqual(over.status, 403)
        assert.strictEqual(over.body.quota, "llmTokensPerMonth")

        const bytes = key("bytes-key-0123456789abc")
        const big = yield* call(`${api}/documents`, { headers: bytes, body: { text: "x ".repeat(60) } })
        assert.strictEqual(big.status, 403)
        assert.strictEqual(big.body.quota, "storedBytes")
        assert.strictEqual(
          (yield* call(`${api}/documents`, { headers: bytes, body: { text: "x ".repeat(40) } })).status,
          201
        )

        const daily = key("daily-key-0123456789abc")
        for (let i = 0; i < 3; i++) assert.strictEqual((yield* call(`${api}/whoami`, { headers: daily })).status, 200)
        const limited = yield* call(`${api}/whoami`, { headers: daily })
        assert.strictEqual(limited.status, 429)
        assert.strictEqual(limited.body.quota, "requestsPerDay")
        assert.isNotNull(limited.headers.get("retry-after"))
        assert.match(limited.headers.get("ratelimit-policy") ?? "", /^"requests-per-day";q=3;w=86400$/)
        assert.match(limited.headers.get("ratelimit") ?? "", /^"requests-per-day";r=0;t=\d+$/)
        // Health is never counted.
        assert.strictEqual((yield* call(`${server.url}/health/live`, { headers: daily })).status, 200)
      }),
    { timeout: 60_000 }
  )

  it.live("usage is metered per tenant and day: JSON, or CSV when asked", () =>
    Effect.gen(function*() {
      const server = yield* Testing.start({ USAGE_FLUSH_INTERVAL: "1h" })
      const api = `${server.url}/api/v1`
      yield* call(`${api}/documents`, { headers: tenantA, body: { id: "z", text: zebras } })
      yield* call(`${api}/search`, { headers: tenantA, body: { query: "stripes" } })
      yield* call(`${api}/ask`, { headers: tenantA, body: { question: "What do zebras look like?" } })
      const today = new Date().toISOString().slice(0, 10)
      const report = yield* call(`${server.url}/admin/tenants/tenant-a/usage?from=${today}&to=${today}`, {
        headers: admin
      })
      assert.strictEqual(report.status, 200)
      const { totals } = report.body
      assert.strictEqual(totals.requests, 3)
      assert.strictEqual(totals.storedBytes, Buffer.byteLength(zebras))
      assert.strictEqual(
        totals.embeddedCharacters,
        zebras.length + "stripes".length + "What do zebras look like?".length
      )
      assert.isAbove(totals.llmTokens, 0)
      const csv = yield* call(`${server.url}/admin/tenants/tenant-a/usage?from=${today}&to=${today}`, {
        headers: { ...admin, accept: "text/csv" }
      })
      assert.strictEqual(csv.status, 200)
      assert.match(csv.headers.get("content-type") ?? "", /^text\/csv/)
      const [header, row] = csv.text.trim().split("\n")
      assert.include(header, "requests")
      assert.include(row, today)
      // Tenant B used nothing.
      const b = yield* call(`${server.url}/admin/tenants/tenant-b/usage?from=${today}&to=${today}`, { headers: admin })
      assert.strictEqual(b.body.totals.requests, 0)
      assert.strictEqual(
        (yield* call(`${server.url}/admin/tenants/tenant-a/usage?from=bad`, { headers: admin })).status,
        400
      )
    }), { timeout: 60_000 })
})
