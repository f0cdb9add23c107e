/**
 * The whole server in process from a vitest suite (`Testing.start()` from `@ouroboros/server`: a real HTTP server on
 * a free port over a temporary embedded database, stopped with the scope), called through a client derived from the
 * server's `Api`. Each call's errors are typed: a missing tenant is `Problem.NotFound` (a value to match on), a
 * forbidden list is `Problem.Forbidden`, not an `unknown` to inspect. The server writes problems as RFC 9457 has them
 * (a documented `type` URI, no internal `_tag`), so the client puts the tag back from the type before it decodes
 * (`ProblemClient.restoreTags`). Starting is typed too: a server that cannot start fails with a `Testing.StartError`
 * (here `ConfigFileError`).
 */
import { assert, describe, it } from "@effect/vitest"
import { Problem, ProblemClient, TenantId } from "@ouroboros/kernel"
import { Api, Testing } from "@ouroboros/server"
import { Effect } from "effect"
import { FetchHttpClient, HttpClient, HttpClientRequest } from "effect/http"
import { HttpApiClient } from "effect/http-api"

/** A client of the server's api presenting `key`. */
const clientOf = (url: string, key: string) =>
  HttpApiClient.make(Api.Api, {
    baseUrl: url,
    transformClient: (client) =>
      ProblemClient.restoreTags(HttpClient.mapRequest(client, HttpClientRequest.setHeader("x-api-key", key)))
  })

describe("the typed in-process test API", () => {
  it.live(
    "an operator lists tenants; a missing tenant and a tenant's key fail with typed problems",
    () =>
      Effect.gen(function*() {
        const server = yield* Testing.start()
        const admin = yield* clientOf(server.url, Testing.keys.admin)
        const tenants = yield* admin.tenants.list()
        assert.includeMembers(tenants.map((tenant) => tenant.id), ["tenant-a", "tenant-b"])

        // The error channel is a tagged union: the endpoint's problem (NotFound), the authentication middleware's
        // (Unauthorized, Forbidden, ServiceUnavailable) and the client's own (HttpClientError, SchemaError).
        const missing = yield* Effect.flip(admin.tenants.get({ params: { id: TenantId.make("no-such-tenant") } }))
        if (missing._tag !== "NotFound") return assert.fail(`expected NotFound, got ${missing._tag}`)
        const notFound: Problem.NotFound = missing // narrowed by its tag alone
        assert.instanceOf(notFound, Problem.NotFound)

        const tenant = yield* clientOf(server.url, Testing.keys.tenantA)
        const forbidden = yield* Effect.flip(tenant.tenants.list())
        assert.strictEqual(forbidden._tag, "Forbidden")
      }).pipe(Effect.scoped, Effect.provide(FetchHttpClient.layer)),
    { timeout: 120_000 }
  )

  it.live("a server that cannot start fails with a typed error, not an unknown", () =>
    Effect.gen(function*() {
      // `Testing.StartError` is the union of what the server's configuration and layers fail with.
      const error = yield* Effect.flip(Testing.start({ OUROBOROS_CONFIG: "/nonexistent/ouroboros.yaml" }))
      if (error._tag !== "ConfigFileError") return assert.fail(`expected ConfigFileError, got ${error._tag}`)
      assert.include(error.message, "cannot read /nonexistent/ouroboros.yaml")
    }).pipe(Effect.scoped))
})
