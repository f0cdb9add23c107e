import { assert, describe, it } from "@effect/vitest"
import { Testing } from "@ouroboros/server"
import { Effect } from "effect"
import { admin, call, tenantA } from "./helpers.js"

describe("backup and point-in-time recovery, end to end", () => {
  it.live(
    "recovery to an instant between two ingests returns exactly the first; the vectors follow",
    () =>
      Effect.gen(function*() {
        const server = yield* Testing.start()
        const api = `${server.url}/api/v1`
        const first = yield* call(`${api}/documents`, {
          headers: tenantA,
          body: { id: "first", text: "Otters hold hands while sleeping." }
        })
        assert.strictEqual(first.status, 201)
        yield* Effect.sleep("50 millis")
        const between = new Date().toISOString()
        yield* Effect.sleep("50 millis")
        const second = yield* call(`${api}/documents`, {
          headers: tenantA,
          body: { id: "second", text: "Penguins propose with pebbles." }
        })
        assert.strictEqual(second.status, 201)

        const created = yield* call(`${server.url}/admin/backups`, { headers: admin, method: "POST" })
        assert.strictEqual(created.status, 201, JSON.stringify(created.body))
        const id = created.body.id as string
        const listed = yield* call(`${server.url}/admin/backups`, { headers: admin })
        assert.include(listed.body.map((b: { manifest: { id: string } }) => b.manifest.id), id)
        // A tenant key cannot touch backups.
        assert.strictEqual((yield* call(`${server.url}/admin/backups`, { headers: tenantA })).status, 403)

        const verified = yield* call(`${server.url}/admin/backups/${id}/verify`, { headers: admin, method: "POST" })
        assert.strictEqual(verified.status, 200, JSON.stringify(verified.body))
        const restored = yield* call(`${server.url}/admin/backups/${id}/restore`, {
          headers: admin,
          body: { at: between }
        })
        assert.strictEqual(restored.status, 200, JSON.stringify(restored.body))

        assert.strictEqual((yield* call(`${api}/documents/first`, { headers: tenantA })).status, 200)
        assert.strictEqual((yield* call(`${api}/documents/second`, { headers: tenantA })).status, 404)
        const search = yield* call(`${api}/search`, { headers: tenantA, body: { query: "penguins pebbles" } })
        assert.deepStrictEqual(search.body.results.map((r: { documentId: string }) => r.documentId), ["first"])
        const unknown = yield* call(`${server.url}/admin/backups/nope/verify`, { headers: admin, method: "POST" })
        assert.strictEqual(unknown.status, 404)
      }),
    { timeout: 90_000 }
  )
})
