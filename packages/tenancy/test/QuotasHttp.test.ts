/**
 * The requests-per-day middleware counts in leases: blocks of 1% of the quota taken from the store at once and spent
 * in memory. Two replicas sharing a store never admit more than the quota together, admit all of it when requests keep
 * coming, ask the store about once per block, and an app's own failures are never counted twice.
 */
import { assert, describe, it } from "@effect/vitest"
import { Principal, TenantId } from "@ouroboros/kernel"
import { Effect, Layer, Option } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import * as Jwt from "../src/Jwt.js"
import * as Quotas from "../src/Quotas.js"
import * as QuotasHttp from "../src/QuotasHttp.js"
import { CurrentAuthentication } from "../src/TenancyHttp.js"
import * as Tenants from "../src/Tenants.js"
import * as Memory from "../src/TenantStore/Memory.js"

const acme = TenantId.make("acme")

const principal = new Principal.Principal({ tenantId: acme, subject: "key:1", roles: ["reader"], method: "api-key" })

const services = (requestsPerDay: number | null) =>
  Quotas.layer().pipe(
    Layer.provideMerge(Tenants.layer({
      bootstrap: { adminKey: Option.none(), keys: [], tenants: [{ id: acme, quotas: { requestsPerDay } }] }
    })),
    Layer.provideMerge(Layer.mergeAll(Quotas.layerMemoryStore, Memory.layer, Jwt.layerDisabled))
  )

const ok = Effect.succeed(HttpServerResponse.empty({ status: 204 }))

// One request through a replica's middleware, as an authenticated principal.
const request = (
  middleware: Effect.Success<ReturnType<typeof QuotasHttp.make>>,
  app: Effect.Effect<HttpServerResponse.HttpServerResponse> = ok
) =>
  middleware(app).pipe(
    Effect.provideService(
      HttpServerRequest.HttpServerRequest,
      HttpServerRequest.fromWeb(new Request("http://x/api/v1/x"))
    ),
    Effect.provideService(CurrentAuthentication, { _tag: "Authenticated", principal, limiterTier: undefined }),
    Effect.map((response) => response.status)
  )

// Counts the store's consumptions.
const counting = Effect.gen(function*() {
  const quotas = yield* Quotas.Quotas
  let calls = 0
  const counted = Quotas.Quotas.of({
    ...quotas,
    consume: (tenantId, amounts) => Effect.andThen(Effect.sync(() => calls++), quotas.consume(tenantId, amounts))
  })
  return { counted, calls: () => calls }
})

describe("QuotasHttp: requests per day", () => {
  it.effect("two replicas admit exactly the quota together, asking the store about once per block", () =>
    Effect.gen(function*() {
      const { calls, counted } = yield* counting
      const [one, two] = yield* Effect.all([QuotasHttp.make(), QuotasHttp.make()]).pipe(
        Effect.provideService(Quotas.Quotas, counted)
      )
      const statuses: Array<number> = []
      for (let i = 0; i < 1200; i++) statuses.push(yield* request(i % 3 === 0 ? one : two))
      assert.strictEqual(statuses.filter((s) => s === 204).length, 1000)
      assert.strictEqual(statuses.filter((s) => s === 429).length, 200)
      // Blocks of 10 (1% of 1000): about 100 consumptions, not 1000.
      assert.isBelow(calls(), 130)
      const quotas = yield* Quotas.Quotas
      assert.strictEqual((yield* quotas.status(acme)).usage.requestsPerDay, 1000)
    }).pipe(Effect.provide(services(1000))))

  it.effect("concurrent requests share one refill, and never go over", () =>
    Effect.gen(function*() {
      const middleware = yield* QuotasHttp.make()
      const statuses = yield* Effect.forEach(Array.from({ length: 300 }), () => request(middleware), {
        concurrency: 50
      })
      assert.strictEqual(statuses.filter((s) => s === 204).length, 250)
    }).pipe(Effect.provide(services(250))))

  it.effect("an unlimited quota is not counted; a small one is counted request by request", () =>
    Effect.gen(function*() {
      const { calls, counted } = yield* counting
      const middleware = yield* Effect.provideService(QuotasHttp.make(), Quotas.Quotas, counted)
      for (let i = 0; i < 50; i++) assert.strictEqual(yield* request(middleware), 204)
      assert.strictEqual(calls(), 0)
    }).pipe(Effect.provide(services(null))))

  it.effect("a failing app runs once", () =>
    Effect.gen(function*() {
      const middleware = yield* QuotasHttp.make()
      let runs = 0
      const failing = Effect.suspend(() => {
        runs++
        return Effect.die(new Error("the app's own defect"))
      })
      yield* Effect.exit(request(middleware, failing))
      assert.strictEqual(runs, 1)
    }).pipe(Effect.provide(services(3))))
})
