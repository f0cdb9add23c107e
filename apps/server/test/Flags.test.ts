/**
 * Feature flags in the whole server, over HTTP: the admin API (operators, and tenant administrators on their own
 * tenant's overrides), the model chosen per tenant (`llm-model`, in an evaluation context made of the principal and
 * the API version), the Ollama kill switch (`ollama`: answers from the local model), the v2 rollout per tenant
 * (`api-v2`), flags from a file under the database's, and the health check.
 */
import { assert, describe, it } from "@effect/vitest"
import { OllamaStandIn } from "@ouroboros/testkit"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as Testing from "../src/Testing.js"
import { call, eventually } from "./helpers.js"

const A = { "x-api-key": Testing.keys.tenantA }
const B = { "x-api-key": Testing.keys.tenantB }
const admin = { "x-api-key": Testing.keys.admin }
const example = fileURLToPath(new URL("../../../packages/feature-flags/examples/ouroboros-flags.yaml", import.meta.url))
const zebras = "Zebras are African equines with distinctive black-and-white striped coats."

const ollama = OllamaStandIn.scoped({ models: ["llama3.2", "llama3.1:70b", "nomic-embed-text"] })

describe("feature flags in the server", () => {
  it.live(
    "the admin API: operators see and change flags; a tenant admin only its own tenant's overrides",
    () =>
      Effect.gen(function*() {
        const server = yield* Testing.start({ FLAGS_FILE: example })
        const flags = `${server.url}/admin/flags`
        const listed = yield* call(flags, { headers: admin })
        assert.strictEqual(listed.status, 200)
        assert.includeMembers(listed.body.map((f: { key: string }) => f.key), ["llm-model", "api-v2", "ollama"])
        assert.strictEqual((yield* call(flags, { headers: A })).status, 403)
        const ops = (yield* call(`${server.url}/admin/tenants/tenant-a/keys`, {
          headers: admin,
          body: { roles: ["tenant-admin"] }
        })).body.key
        const tenantAdmin = { "x-api-key": ops }
        const own = yield* call(`${flags}/llm-model/tenants/tenant-a`, {
          method: "PUT",
          headers: tenantAdmin,
          body: { variant: "large" }
        })
        assert.strictEqual(own.status, 200)
        assert.strictEqual(
          (yield* call(`${flags}/llm-model/tenants/tenant-b`, {
            method: "PUT",
            headers: tenantAdmin,
            body: { variant: "large" }
          })).status,
          404
        )
        assert.strictEqual(
          (yield* call(`${flags}/ollama/kill`, { headers: tenantAdmin, body: { reason: "mine" } })).status,
          403
        )
        const overrides = yield* call(`${flags}/llm-model/tenants`, { headers: tenantAdmin })
        assert.deepStrictEqual(Object.keys(overrides.body), ["tenant-a"])
      }),
    { timeout: 60_000 }
  )

  it.live(
    "llm-model per tenant and version; the ollama kill switch answers from the local model",
    () =>
      Effect.gen(function*() {
        const standIn = yield* ollama
        const dir = yield* Testing.tempDir
        // The example's rules, and one on the API version: v1 callers keep the default model.
        const file = Path.join(dir, "flags.yaml")
        Fs.writeFileSync(
          file,
          Fs.readFileSync(example, "utf8").replace(
            "        - $ref: isPremium\n        - large\n        - null",
            "        - $ref: isPremium\n        - large\n        - \"==\": [{ var: apiVersion }, v2]\n        - large\n        - null"
          )
        )
        const server = yield* Testing.start({
          OLLAMA_URL: standIn.url,
          OLLAMA_EMBED_DIMENSIONS: "768",
          FLAGS_FILE: file,
          FLAGS_POLL_INTERVAL: "100 millis"
        })
        // The example rolls v2 out to 10% of principals: these two tenants get it by override.
        for (const tenant of ["tenant-a", "tenant-b"]) {
          yield* call(`${server.url}/admin/flags/api-v2/tenants/${tenant}`, {
            method: "PUT",
            headers: admin,
            body: { variant: "on" }
          })
        }
        yield* call(`${server.url}/api/v2/documents`, { headers: A, body: { id: "z", text: zebras } })
        yield* call(`${server.url}/api/v2/documents`, { headers: B, body: { id: "z", text: zebras } })
        const ask = (headers: Record<string, string>, version: "v1" | "v2", model?: string) =>
          Effect.map(
            call(`${server.url}/api/${version}/ask`, {
              headers,
              body: { question: "What do zebras look like?", ...(model === undefined ? {} : { model }) }
            }),
            (reply) => version === "v2" ? reply.body.data : reply.body
          )
        assert.match((yield* ask(A, "v1")).model, /^llama3\.2/)
        assert.match((yield* ask(A, "v2")).model, /^llama3\.1:70b/)
        // A tenant override beats the rules; a model the request names beats both.
        yield* call(`${server.url}/admin/flags/llm-model/tenants/tenant-b`, {
          method: "PUT",
          headers: admin,
          body: { variant: "standard" }
        })
        assert.match((yield* ask(B, "v2")).model, /^llama3\.2/)
        assert.match((yield* ask(B, "v2", "llama3.1:70b")).model, /^llama3\.1:70b/)
        const remote = yield* ask(A, "v2")
        assert.isFalse(remote.degraded)

        const killed = yield* call(`${server.url}/admin/flags/ollama/kill`, {
          headers: admin,
          body: { reason: "Ollama is overloaded" }
        })
        assert.strictEqual(killed.status, 200)
        const local = yield* ask(A, "v2")
        assert.isTrue(local.degraded)
        assert.strictEqual(local.model, "local:extractive")
        assert.strictEqual(local.sources[0].documentId, "z")
        const pipeline = yield* call(`${server.url}/api/v2/pipelines`, {
          headers: A,
          body: { topic: "zebras", steps: ["draft"] }
        })
        assert.isTrue(pipeline.body.data.degraded)
        yield* call(`${server.url}/admin/flags/ollama/kill`, { method: "DELETE", headers: admin })
        assert.isFalse((yield* ask(A, "v2")).degraded)
      }),
    { timeout: 90_000 }
  )

  it.live(
    "api-v2 rolls v2 out per tenant: a tenant without it gets the 400 of an unknown version",
    () =>
      Effect.gen(function*() {
        const server = yield* Testing.start({ API_VERSIONS_PREVIEW: "v2" })
        const off = yield* call(`${server.url}/admin/flags/api-v2/tenants/tenant-a`, {
          method: "PUT",
          headers: admin,
          body: { variant: "off", reason: "not yet" }
        })
        assert.strictEqual(off.status, 200)
        const refused = yield* call(`${server.url}/api/v2/whoami`, { headers: A })
        assert.strictEqual(refused.status, 400)
        assert.deepStrictEqual(refused.body.supportedVersions, ["v1"])
        assert.strictEqual(refused.headers.get("content-type"), "application/problem+json")
        assert.strictEqual((yield* call(`${server.url}/api/v2/whoami`, { headers: B })).status, 200)
        assert.strictEqual((yield* call(`${server.url}/api/v1/whoami`, { headers: A })).status, 200)
        // During the rollout v2 is a preview: requests naming no version get v1.
        const unversioned = yield* call(`${server.url}/api/whoami`, { headers: A })
        assert.strictEqual(unversioned.headers.get("api-version"), "v1")
        assert.strictEqual(unversioned.body.tenantId, "tenant-a")
        yield* call(`${server.url}/admin/flags/api-v2/tenants/tenant-a`, { method: "DELETE", headers: admin })
        assert.strictEqual((yield* call(`${server.url}/api/v2/whoami`, { headers: A })).status, 200)
      }),
    { timeout: 60_000 }
  )

  it.live("feature-flags:status warns while the flag file is broken, and recovers", () =>
    Effect.gen(function*() {
      const dir = yield* Testing.tempDir
      const file = Path.join(dir, "flags.yaml")
      Fs.copyFileSync(example, file)
      // The example opens v2 to the tenant beta.
      const beta = "beta-key-0123456789abcdef"
      const server = yield* Testing.start({
        FLAGS_FILE: file,
        FLAGS_POLL_INTERVAL: "100 millis",
        OUROBOROS_API_KEYS: `tenant-a:${Testing.keys.tenantA},beta:${beta}`
      })
      assert.strictEqual((yield* call(`${server.url}/api/v2/whoami`, { headers: { "x-api-key": beta } })).status, 200)
      const check = Effect.map(call(`${server.url}/health/ready`), (reply) =>
        reply.body.checks["feature-flags:status"][0])
      assert.strictEqual((yield* check).status, "pass")
      Fs.writeFileSync(file, "flags: [not, a, flag, set")
      const stale = yield* eventually("a warning", check, (c) =>
        c.status === "warn")
      assert.include(stale.output, "stale")
      // The last good flags are still in use.
      assert.strictEqual((yield* call(`${server.url}/api/v2/whoami`, { headers: { "x-api-key": beta } })).status, 200)
      Fs.copyFileSync(example, file)
      yield* eventually("the recovery", check, (c) => c.status === "pass")
      assert.strictEqual((yield* call(`${server.url}/health/ready`)).status, 200)
    }), { timeout: 60_000 })
})
