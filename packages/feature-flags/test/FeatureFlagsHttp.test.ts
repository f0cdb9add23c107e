import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Principal, Problem, ProblemHttp, TenantId } from "@ouroboros/kernel"
import { Duration, Effect, Layer, Redacted } from "effect"
import { HttpClient, HttpClientRequest, HttpRouter } from "effect/http"
import { HttpApi, HttpApiBuilder, HttpApiClient, HttpApiMiddleware, HttpApiSecurity } from "effect/http-api"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { FeatureFlags, FeatureFlagsHttp, FlagAudit, type FlagDefinition, FlagProviderFile } from "../src/index.js"

const flagSet: FlagDefinition.FlagSet = {
  flags: {
    "v2-rollout": {
      state: "ENABLED",
      variants: { on: true, off: false },
      defaultVariant: "off",
      targeting: { fractional: [["on", 10], ["off", 90]] }
    },
    "llm-model": { state: "ENABLED", variants: { small: "s", large: "l" }, defaultVariant: "small" }
  }
}

const served = <E, R>(app: Layer.Layer<never, E, R>) =>
  HttpRouter.serve(app, { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provideMerge(NodeHttpServer.layerTest)
  )

/** The standalone api, unguarded (the default scope: an unconfined administrator). */
const standalone = (flags: Layer.Layer<FeatureFlags.FeatureFlags, unknown>) =>
  served(
    HttpApiBuilder.layer(FeatureFlagsHttp.Api).pipe(
      Layer.provide(FeatureFlagsHttp.layerApi),
      Layer.provide(flags),
      Layer.provide(ProblemHttp.layer)
    )
  )

const call = (method: "GET" | "PUT" | "POST" | "DELETE", path: string, body?: unknown, key?: string) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    let request = HttpClientRequest.make(method)(path)
    if (body !== undefined) request = HttpClientRequest.bodyJsonUnsafe(request, body)
    if (key !== undefined) request = HttpClientRequest.setHeader(request, "x-api-key", key)
    const response = yield* client.execute(request)
    const text = yield* response.text
    return {
      status: response.status,
      type: response.headers["content-type"] ?? "",
      body: text === "" ? undefined : JSON.parse(text) as any
    }
  }).pipe(Effect.orDie)

describe("FeatureFlagsHttp", () => {
  it.effect("lists, reads, writes, kills and releases flags; errors are problems", () =>
    Effect.gen(function*() {
      const flags = yield* Layer.build(Flags)
      yield* scenario.pipe(Effect.provide(standalone(Layer.succeedContext(flags))), Effect.provide(flags))
    }))

  const scenario = Effect.gen(function*() {
    const client = yield* HttpApiClient.make(FeatureFlagsHttp.Api)
    const list = yield* client.featureFlags.list()
    assert.deepStrictEqual(list.map((f) => f.key), ["llm-model", "v2-rollout"])

    const created = yield* client.featureFlags.put({
      params: { key: "new-search" },
      query: { reason: "launch" },
      payload: { state: "ENABLED", variants: { on: true, off: false }, defaultVariant: "on" }
    })
    assert.deepStrictEqual([created.key, created.source], ["new-search", "memory"])

    const killed = yield* client.featureFlags.kill({ params: { key: "v2-rollout" }, payload: { reason: "500s" } })
    assert.deepStrictEqual([killed.kill?.reason, killed.kill?.actor], ["500s", "admin"])
    assert.strictEqual((yield* FeatureFlags.details(FeatureFlags.boolean("v2-rollout", true))).reason, "DISABLED")
    const revived = yield* client.featureFlags.revive({ params: { key: "v2-rollout" }, query: {} })
    assert.isUndefined(revived.kill)

    const override = yield* client.featureFlags.setOverride({
      params: { key: "llm-model", tenantId: TenantId.make("acme") },
      payload: { variant: "large", reason: "pilot" }
    })
    assert.strictEqual(override.overrides.acme?.variant, "large")
    assert.deepStrictEqual(Object.keys(yield* client.featureFlags.listOverrides({ params: { key: "llm-model" } })), [
      "acme"
    ])
    yield* client.featureFlags.removeOverride({
      params: { key: "llm-model", tenantId: TenantId.make("acme") },
      query: {}
    })
    yield* client.featureFlags.remove({ params: { key: "new-search" }, query: {} })

    const missing = yield* call("GET", "/admin/flags/nope")
    assert.deepStrictEqual([missing.status, missing.type, missing.body.title], [
      404,
      "application/problem+json",
      "Not Found"
    ])
    const invalid = yield* call("PUT", "/admin/flags/x", {
      state: "ENABLED",
      variants: { a: true },
      defaultVariant: "b"
    })
    assert.deepStrictEqual([invalid.status, invalid.type], [422, "application/problem+json"])
    assert.include(invalid.body.detail, "b")
    const malformed = yield* call("PUT", "/admin/flags/x", { state: "MAYBE", variants: {} })
    assert.deepStrictEqual([malformed.status, malformed.type], [400, "application/problem+json"])
    const noReason = yield* call("POST", "/admin/flags/v2-rollout/kill", { reason: "" })
    assert.strictEqual(noReason.status, 400)
    const badVariant = yield* call("POST", "/admin/flags/v2-rollout/kill", { reason: "r", variant: "maybe" })
    assert.strictEqual(badVariant.status, 422)
    const killMissing = yield* call("POST", "/admin/flags/nope/kill", { reason: "r" })
    assert.strictEqual(killMissing.status, 404)
    const badTenant = yield* call("PUT", "/admin/flags/llm-model/tenants/Not%20A%20Tenant", { variant: "large" })
    assert.strictEqual(badTenant.status, 400)
    // PostgreSQL stores no NUL character (U+0000): a key, a reason or a definition with one is refused up front.
    const nul = [
      yield* call("GET", "/admin/flags/a%00b"),
      yield* call("PUT", "/admin/flags/a%00b", { state: "ENABLED", variants: { on: true }, defaultVariant: "on" }),
      yield* call("POST", "/admin/flags/v2-rollout/kill", { reason: "r\u0000" }),
      yield* call("PUT", "/admin/flags/llm-model/tenants/acme", { variant: "large", reason: "\u0000" }),
      yield* call("DELETE", "/admin/flags/llm-model/tenants/acme?reason=%00")
    ]
    assert.deepStrictEqual(nul.map((r) => r.status), [400, 400, 400, 400, 400])
    for (const reply of nul) assert.include(reply.body.detail, "NUL character (U+0000)")
    const nulDefinition = yield* call("PUT", "/admin/flags/nul-value", {
      state: "ENABLED",
      variants: { on: "a\u0000", off: "b" },
      defaultVariant: "off"
    })
    assert.deepStrictEqual([nulDefinition.status, nulDefinition.body.detail], [
      422,
      "the definition of nul-value may not contain the NUL character (U+0000)"
    ])
    yield* client.featureFlags.setOverride({
      params: { key: "llm-model", tenantId: TenantId.make("acme") },
      payload: { variant: "large" }
    })
    const inUse = yield* call("PUT", "/admin/flags/llm-model", {
      state: "ENABLED",
      variants: { small: "s" },
      defaultVariant: "small"
    })
    assert.deepStrictEqual([inUse.status, inUse.body.title], [409, "Conflict"])
  })

  it.effect("a flag file is read-only: changes are a 409", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "feature-flags-http-"))),
        (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
      )
      const path = Path.join(dir, "flags.json")
      Fs.writeFileSync(path, JSON.stringify(flagSet))
      const fromFile = FeatureFlags.layer().pipe(
        Layer.provide(FlagProviderFile.layer({ path, pollInterval: Duration.hours(1) }))
      )
      yield* Effect.gen(function*() {
        const killed = yield* call("POST", "/admin/flags/v2-rollout/kill", { reason: "r" })
        assert.deepStrictEqual([killed.status, killed.type], [409, "application/problem+json"])
        assert.include(killed.body.detail, "read-only")
        const listed = yield* call("GET", "/admin/flags")
        assert.strictEqual(listed.body[0].source, `file:${path}`)
      }).pipe(Effect.provide(standalone(fromFile)))
    }))
})

// ---------------------------------------------------------------------------------------------------------------------
// A server that guards the group and scopes tenant administrators
// ---------------------------------------------------------------------------------------------------------------------

class Admin extends HttpApiMiddleware.Service<Admin, { provides: Principal.CurrentPrincipal }>()("test/Admin", {
  error: Problem.Unauthorized,
  security: { key: HttpApiSecurity.apiKey({ key: "X-API-Key", in: "header" }) }
}) {}

const principals: Record<string, Principal.Principal> = {
  root: new Principal.Principal({
    tenantId: TenantId.make("system"),
    subject: "root",
    roles: ["admin"],
    method: "admin-key"
  }),
  "acme-admin": new Principal.Principal({
    tenantId: TenantId.make("acme"),
    subject: "ann@acme",
    roles: ["tenant-admin"],
    method: "api-key"
  })
}

const AdminLive = Layer.succeed(Admin, {
  key: (effect, { credential }) => {
    const principal = principals[Redacted.value(credential)]
    return principal === undefined
      ? Effect.fail(new Problem.Unauthorized({ detail: "no such key" }))
      : Effect.provideService(effect, Principal.CurrentPrincipal, principal)
  }
})

class ServerApi extends HttpApi.make("server").add(
  FeatureFlagsHttp.Group.middleware(FeatureFlagsHttp.ScopeFromPrincipal).middleware(Admin)
) {}

const Flags = FeatureFlags.layerMemory(flagSet)

describe("FeatureFlagsHttp inside a server's api, scoped by the principal", () => {
  it.effect("a tenant administrator sees and sets only its own tenant's overrides", () =>
    Effect.gen(function*() {
      const recorded: Array<FlagAudit.Change> = []
      const flags = yield* Layer.build(
        Flags.pipe(Layer.provide(FlagAudit.layer({ record: (c) => Effect.sync(() => recorded.push(c)) })))
      )
      const server = served(
        HttpApiBuilder.layer(ServerApi).pipe(
          Layer.provide(FeatureFlagsHttp.layer(ServerApi)),
          Layer.provide(AdminLive),
          Layer.provide(FeatureFlagsHttp.layerScopeFromPrincipal),
          Layer.provide(Layer.succeedContext(flags)),
          Layer.provide(ProblemHttp.layer)
        )
      )
      yield* Effect.gen(function*() {
        assert.strictEqual((yield* call("GET", "/admin/flags")).status, 401)
        // The full administrator sets overrides for two tenants.
        for (const tenant of ["acme", "globex"]) {
          const set = yield* call("PUT", `/admin/flags/llm-model/tenants/${tenant}`, { variant: "large" }, "root")
          assert.strictEqual(set.status, 200)
        }
        const all = yield* call("GET", "/admin/flags/llm-model", undefined, "root")
        assert.deepStrictEqual(Object.keys(all.body.overrides).sort(), ["acme", "globex"])

        // The tenant administrator of acme sees only acme's.
        const own = yield* call("GET", "/admin/flags/llm-model", undefined, "acme-admin")
        assert.deepStrictEqual(Object.keys(own.body.overrides), ["acme"])
        const listed = yield* call("GET", "/admin/flags", undefined, "acme-admin")
        assert.isTrue(listed.body.every((f: any) => Object.keys(f.overrides).every((t) => t === "acme")))
        const tenants = yield* call("GET", "/admin/flags/llm-model/tenants", undefined, "acme-admin")
        assert.deepStrictEqual(Object.keys(tenants.body), ["acme"])
        // Sets its own, not another tenant's (which does not exist for it).
        const mine = yield* call("PUT", "/admin/flags/llm-model/tenants/acme", { variant: "small" }, "acme-admin")
        assert.deepStrictEqual([mine.status, mine.body.overrides.acme.actor], [200, "ann@acme"])
        const theirs = yield* call("PUT", "/admin/flags/llm-model/tenants/globex", { variant: "small" }, "acme-admin")
        assert.strictEqual(theirs.status, 404)
        const removeTheirs = yield* call("DELETE", "/admin/flags/llm-model/tenants/globex", undefined, "acme-admin")
        assert.strictEqual(removeTheirs.status, 404)
        // Definitions and kill switches are for full administrators.
        const put = yield* call("PUT", "/admin/flags/llm-model", flagSet.flags["llm-model"], "acme-admin")
        assert.strictEqual(put.status, 403)
        const kill = yield* call("POST", "/admin/flags/llm-model/kill", { reason: "r" }, "acme-admin")
        assert.strictEqual(kill.status, 403)
        const rootKill = yield* call("POST", "/admin/flags/llm-model/kill", { reason: "outage" }, "root")
        assert.strictEqual(rootKill.body.kill.actor, "root")
      }).pipe(Effect.provide(server))
      assert.deepStrictEqual(recorded.map((c) => [c.action, c.actor, c.tenantId]), [
        ["override.set", "root", "acme"],
        ["override.set", "root", "globex"],
        ["override.set", "ann@acme", "acme"],
        ["flag.kill", "root", undefined]
      ])
    }))
})
