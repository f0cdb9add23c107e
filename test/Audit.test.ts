/**
 * The audit log as the server wires it (issue 17): events come from the request path and the features' hooks, not
 * from handlers; `GET /admin/audit` filters and paginates, a tenant admin sees its own tenant only; a change is in the
 * log before its answer; and the command line verifies the log, naming the first bad index of a tampered export.
 */
import { assert, describe, it } from "@effect/vitest"
import { Testing } from "@ouroboros/server"
import { OllamaStandIn } from "@ouroboros/testkit"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { admin, call, eventually, tenantA, tenantB } from "./helpers.js"

const query = (url: string, params: Record<string, string>, headers: Record<string, string> = admin) =>
  Effect.map(call(`${url}/admin/audit?${new URLSearchParams(params)}`, { headers }), (reply) => {
    assert.strictEqual(reply.status, 200, JSON.stringify(reply.body))
    return reply.body as { entries: ReadonlyArray<any>; nextCursor?: string }
  })

describe("the audit log in the server", () => {
  it.live(
    "a request that fails authentication, or is denied, leaves an entry before its answer",
    () =>
      Effect.gen(function*() {
        // Behind a trusted proxy: the client's address is the forwarded one, as for the rate limiter.
        const server = yield* Testing.start({ RATE_LIMIT_TRUSTED_PROXIES: "loopback" })
        const refused = yield* call(`${server.url}/api/v1/documents/x`, {
          headers: { "x-api-key": "not-a-key", "x-forwarded-for": "203.0.113.7", "user-agent": "audit-test/1" }
        })
        assert.strictEqual(refused.status, 401)
        const none = yield* call(`${server.url}/api/v1/documents/x`)
        assert.strictEqual(none.status, 401)
        const failures = yield* query(server.url, { type: "authentication.failure" })
        // Newest first: the request without credentials, then the refused key.
        assert.deepStrictEqual(
          failures.entries.map((e) => [e.outcome, e.resource.id, e.actor.subject]),
          [["failure", "GET /api/v1/documents/x", "anonymous"], ["failure", "GET /api/v1/documents/x", "anonymous"]]
        )
        assert.strictEqual(failures.entries[0].reason, "no credentials")
        assert.match(failures.entries[1].reason, /^credentials refused: /)
        assert.strictEqual(failures.entries[1].actor.clientAddress, "203.0.113.7")
        assert.strictEqual(failures.entries[1].actor.userAgent, "audit-test/1")
        // Each carries the correlation id its answer carried.
        assert.strictEqual(failures.entries[0].correlationId, none.headers.get("x-correlation-id"))
        assert.strictEqual(failures.entries[1].correlationId, refused.headers.get("x-correlation-id"))

        // A tenant's key on an operator endpoint: a 403, and an authorization.denied entry of that tenant.
        const denied = yield* call(`${server.url}/admin/circuit-breakers`, { headers: tenantA })
        assert.strictEqual(denied.status, 403)
        const denials = yield* query(server.url, { type: "authorization.denied" })
        assert.strictEqual(denials.entries.length, 1)
        assert.deepInclude(denials.entries[0], {
          outcome: "denied",
          tenantId: "tenant-a",
          reason: "this endpoint needs the admin role",
          correlationId: denied.headers.get("x-correlation-id")
        })
        assert.deepStrictEqual(denials.entries[0].resource, { type: "route", id: "GET /admin/circuit-breakers" })
        assert.strictEqual(denials.entries[0].actor.tenantId, "tenant-a")
      }).pipe(Effect.scoped),
    { timeout: 120_000 }
  )

  it.live(
    "a document created or deleted is in the log when its answer arrives; queries filter and paginate",
    () =>
      Effect.gen(function*() {
        const server = yield* Testing.start()
        const created = yield* call(`${server.url}/api/v1/documents`, {
          headers: tenantA,
          body: { id: "doc-0", text: "the audit log records who did what" }
        })
        assert.strictEqual(created.status, 201)
        // No waiting: the entry was committed before the 201 was sent.
        const found = yield* query(server.url, { type: "data.create", resourceId: "doc-0" })
        assert.strictEqual(found.entries.length, 1)
        assert.deepInclude(found.entries[0], {
          type: "data.create",
          action: "documents.create",
          outcome: "success",
          tenantId: "tenant-a",
          correlationId: created.headers.get("x-correlation-id")
        })
        assert.deepStrictEqual(found.entries[0].resource, { type: "document", id: "doc-0" })

        for (let i = 1; i <= 4; i++) {
          const reply = yield* call(`${server.url}/api/v1/documents`, {
            headers: tenantA,
            body: { id: `doc-${i}`, text: `document number ${i}` }
          })
          assert.strictEqual(reply.status, 201)
        }
        const other = yield* call(`${server.url}/api/v1/documents`, {
          headers: tenantB,
          body: { id: "doc-b", text: "tenant b's document" }
        })
        assert.strictEqual(other.status, 201)
        const deleted = yield* call(`${server.url}/api/v1/documents/doc-1`, { method: "DELETE", headers: tenantA })
        assert.strictEqual(deleted.status, 204)
        const deletions = yield* query(server.url, { type: "data.delete" })
        assert.deepStrictEqual(deletions.entries.map((e) => e.resource.id), ["doc-1"])

        // Pages of 2, newest first, every tenant-a creation exactly once.
        const seen: Array<any> = []
        let cursor: string | undefined
        for (let page = 0; page < 10; page++) {
          const params: Record<string, string> = { type: "data.create", tenant: "tenant-a", limit: "2" }
          if (cursor !== undefined) params.cursor = cursor
          const result = yield* query(server.url, params)
          assert.isAtMost(result.entries.length, 2)
          seen.push(...result.entries)
          cursor = result.nextCursor
          if (cursor === undefined) break
        }
        assert.deepStrictEqual(seen.map((e) => e.resource.id), ["doc-4", "doc-3", "doc-2", "doc-1", "doc-0"])
        assert.isTrue(seen.every((e, i) => i === 0 || e.index < seen[i - 1].index))
        // A time range that ends before the first creation holds none of them.
        const before = yield* query(server.url, { type: "data.create", to: seen[4].time })
        assert.strictEqual(before.entries.length, 0)
        const bad = yield* call(`${server.url}/admin/audit?cursor=nonsense`, { headers: admin })
        assert.strictEqual(bad.status, 400)

        const verified = yield* call(`${server.url}/admin/audit/verify`, { headers: admin })
        assert.strictEqual(verified.status, 200)
        assert.deepInclude(verified.body, { ok: true, firstBadIndex: null })
        const proof = yield* call(`${server.url}/admin/audit/proof?id=${found.entries[0].id}`, { headers: admin })
        assert.strictEqual(proof.status, 200)
        assert.strictEqual(proof.body.index, found.entries[0].index)
      }).pipe(Effect.scoped),
    { timeout: 120_000 }
  )

  it.live(
    "a tenant admin sees its own tenant's events only; operator actions carry their reason",
    () =>
      Effect.gen(function*() {
        // Ollama (a stand-in) for a breaker to act on.
        const ollama = yield* OllamaStandIn.scoped()
        const server = yield* Testing.start({ OLLAMA_URL: ollama.url, OLLAMA_EMBED_DIMENSIONS: "768" })
        const issued = yield* call(`${server.url}/admin/tenants/tenant-a/keys`, {
          headers: admin,
          body: { roles: ["tenant-admin"], name: "auditor" }
        })
        assert.strictEqual(issued.status, 201, JSON.stringify(issued.body))
        const tenantAdmin = { "x-api-key": issued.body.key as string }
        for (const [headers, id] of [[tenantA, "a-doc"], [tenantB, "b-doc"]] as const) {
          const reply = yield* call(`${server.url}/api/v1/documents`, { headers, body: { id, text: `text of ${id}` } })
          assert.strictEqual(reply.status, 201)
        }
        const forced = yield* call(`${server.url}/admin/circuit-breakers/ollama/force-open`, {
          headers: admin,
          body: { reason: "Ollama is being upgraded" }
        })
        assert.strictEqual(forced.status, 200, JSON.stringify(forced.body))

        const own = yield* query(server.url, { type: "data.create" }, tenantAdmin)
        assert.deepStrictEqual(own.entries.map((e) => e.resource.id), ["a-doc"])
        // Asking for another tenant changes nothing: the scope wins.
        const other = yield* query(server.url, { type: "data.create", tenant: "tenant-b" }, tenantAdmin)
        assert.deepStrictEqual(other.entries, [])
        const everything = yield* query(server.url, { limit: "1000" }, tenantAdmin)
        assert.isTrue(everything.entries.length > 0)
        assert.isTrue(everything.entries.every((e) => e.tenantId === "tenant-a"), JSON.stringify(everything.entries))
        // And the admin sees both, and the key it issued, and the operator action with its reason.
        const all = yield* query(server.url, { type: "data.create" })
        assert.deepStrictEqual(all.entries.map((e) => e.resource.id).sort(), ["a-doc", "b-doc"])
        const keys = yield* query(server.url, { type: "key.created" })
        assert.deepStrictEqual(keys.entries.map((e) => e.resource.id), [issued.body.info.id])
        // Made through the admin API: the admin is its actor.
        assert.strictEqual(keys.entries[0].actor.subject, "admin")
        assert.strictEqual(keys.entries[0].tenantId, "tenant-a")
        const actions = yield* query(server.url, { type: "admin.action", resourceType: "circuit-breaker" })
        assert.strictEqual(actions.entries.length, 1)
        assert.deepInclude(actions.entries[0], {
          action: "circuit-breaker.force-open",
          reason: "Ollama is being upgraded",
          outcome: "success"
        })
        assert.deepStrictEqual(actions.entries[0].details, { state: "forced-open" })
        assert.strictEqual(actions.entries[0].actor.subject, "admin")
        // A flag's kill switch (the FlagAudit hook): a flag.change with the reason, by the admin.
        const killed = yield* call(`${server.url}/admin/flags/ollama/kill`, {
          headers: admin,
          body: { reason: "Ollama answers garbage" }
        })
        assert.strictEqual(killed.status, 200, JSON.stringify(killed.body))
        const flagChanges = yield* query(server.url, { type: "flag.change" })
        assert.strictEqual(flagChanges.entries.length, 1)
        assert.deepInclude(flagChanges.entries[0], { action: "flag.kill", reason: "Ollama answers garbage" })
        assert.deepStrictEqual(flagChanges.entries[0].resource, { type: "flag", id: "ollama" })
        assert.strictEqual(flagChanges.entries[0].actor.subject, "admin")
        // A backup (the backup package's Auditor): a backup event, durable before the 201.
        const backup = yield* call(`${server.url}/admin/backups`, { headers: admin, method: "POST" })
        assert.strictEqual(backup.status, 201, JSON.stringify(backup.body))
        const backups = yield* query(server.url, { type: "backup" })
        assert.deepStrictEqual(
          backups.entries.map((e) => [e.action, e.resource.id, e.outcome, e.actor.subject]),
          [["backup.create", backup.body.id, "success", "admin"]]
        )
        // A reader of tenant a is not a tenant admin.
        const refused = yield* call(`${server.url}/admin/audit`, { headers: tenantA })
        assert.strictEqual(refused.status, 403)
      }).pipe(Effect.scoped),
    { timeout: 120_000 }
  )

  // Successes are queued: a request from a further user agent, recorded after the others (one queue, in order), is
  // the barrier after which every earlier success is in the log.
  const successes = (url: string, agents: ReadonlyArray<string>, barrier: string) =>
    Effect.gen(function*() {
      for (const agent of agents) {
        const reply = yield* call(`${url}/api/v1/whoami`, { headers: { ...tenantA, "user-agent": agent } })
        assert.strictEqual(reply.status, 200)
      }
      const last = yield* call(`${url}/api/v1/whoami`, { headers: { ...tenantA, "user-agent": barrier } })
      assert.strictEqual(last.status, 200)
      const entries = yield* eventually(
        "the barrier's authentication.success",
        Effect.map(query(url, { type: "authentication.success", limit: "200" }), (r) => r.entries),
        (entries) => entries.some((e) => e.actor.userAgent === barrier)
      )
      const count = new Map<string, number>()
      for (const e of entries) count.set(e.actor.userAgent, (count.get(e.actor.userAgent) ?? 0) + 1)
      return count
    })

  it.live(
    "an authenticated client's successes: one per principal, address and user agent in AUDIT_AUTH_SUCCESS_WINDOW",
    () =>
      Effect.gen(function*() {
        const agents = ["agent-1", "agent-1", "agent-1", "agent-2", "agent-1", "agent-2"]
        const windowed = yield* Testing.start()
        const once = yield* successes(windowed.url, agents, "barrier")
        assert.deepStrictEqual([once.get("agent-1"), once.get("agent-2")], [1, 1])
        // `0`: every request.
        const every = yield* Testing.start({ AUDIT_AUTH_SUCCESS_WINDOW: "0 millis" })
        const all = yield* successes(every.url, agents, "barrier")
        assert.deepStrictEqual([all.get("agent-1"), all.get("agent-2")], [4, 2])
      }).pipe(Effect.scoped),
    { timeout: 120_000 }
  )
})

const cli = Path.resolve(import.meta.dirname, "../apps/server/dist/cli.js")

const run = (dataDir: string, ...args: ReadonlyArray<string>) => {
  const result = spawnSync(process.execPath, [cli, ...args], {
    env: { PATH: process.env.PATH ?? "", DATA_DIR: dataDir },
    encoding: "utf8"
  })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

describe.runIf(Fs.existsSync(cli))("ouroboros audit verify | export", () => {
  it.live(
    "verifies the database and an export; a tampered export names its first bad index",
    () =>
      Effect.gen(function*() {
        const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-audit-cli-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dataDir, { recursive: true, force: true })))
        // Some history, then the server stops (the embedded database is locked while it runs).
        yield* Effect.scoped(Effect.gen(function*() {
          const server = yield* Testing.start({ DATA_DIR: dataDir })
          for (let i = 0; i < 5; i++) {
            const reply = yield* call(`${server.url}/api/v1/documents`, {
              headers: tenantA,
              body: { id: `doc-${i}`, text: `document ${i}` }
            })
            assert.strictEqual(reply.status, 201)
          }
          yield* call(`${server.url}/api/v1/documents/x`, { headers: { "x-api-key": "wrong" } })
        }))

        const fromDb = run(dataDir, "audit", "verify", "--json")
        assert.strictEqual(fromDb.code, 0, fromDb.stderr + fromDb.stdout)
        const report = JSON.parse(fromDb.stdout)
        assert.deepInclude(report, { ok: true, firstBadIndex: null })
        assert.isAtLeast(report.size, 6)

        const file = Path.join(dataDir, "audit.ndjson")
        const exported = run(dataDir, "audit", "export", "--output", file)
        assert.strictEqual(exported.code, 0, exported.stderr)
        const good = run(dataDir, "audit", "verify", "--file", file, "--json")
        assert.strictEqual(good.code, 0, good.stderr + good.stdout)
        assert.deepInclude(JSON.parse(good.stdout), { ok: true, size: report.size })

        // Change one entry's content (a document id) in the export.
        const lines = Fs.readFileSync(file, "utf8").trim().split("\n")
        const at = lines.findIndex((line) => line.includes("doc-3"))
        assert.isAbove(at, 0)
        const target = JSON.parse(lines[at]!) as { index: number; content: string }
        lines[at] = JSON.stringify({ ...target, content: target.content.replace("doc-3", "doc-9") })
        const tampered = Path.join(dataDir, "tampered.ndjson")
        Fs.writeFileSync(tampered, lines.join("\n") + "\n")
        const bad = run(dataDir, "audit", "verify", "--file", tampered, "--json")
        assert.strictEqual(bad.code, 1)
        const badReport = JSON.parse(bad.stdout)
        assert.strictEqual(badReport.ok, false)
        assert.strictEqual(badReport.firstBadIndex, target.index)
        const human = run(dataDir, "audit", "verify", "--file", tampered)
        assert.strictEqual(human.code, 1)
        assert.include(human.stderr, `first bad index ${target.index}`)

        // Another key is not the log's key.
        const otherKey = run(dataDir, "audit", "verify", "--file", file, "--key", "other+00000000+AQ==")
        assert.strictEqual(otherKey.code, 1)
      }).pipe(Effect.scoped),
    { timeout: 180_000 }
  )
})
