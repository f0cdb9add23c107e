import { assert, describe, it } from "@effect/vitest"
import { TenantId } from "@ouroboros/kernel"
import { Services } from "@ouroboros/testkit"
import { Effect, Layer, Option, Redacted } from "effect"
import * as Jwt from "../src/Jwt.js"
import type { IssuedKey } from "../src/Tenant.js"
import * as TenantConfig from "../src/TenantConfig.js"
import * as Tenants from "../src/Tenants.js"
import * as TenantStoreSql from "../src/TenantStore/Sql.js"
import { layerEmbedded, layerPgSchema } from "./layers.js"

const acme = TenantId.make("acme")

const suite = (name: string, sql: () => Layer.Layer<any, unknown>, concurrency: number) =>
  describe(name, () => {
    it.live("keys stay valid under concurrent rotation against the database (no cache between)", () =>
      Effect.gen(function*() {
        const bootstrap = yield* TenantConfig.make({ adminKey: Option.none(), apiKeys: Redacted.make("") }, [{
          id: acme
        }])
        // A cache entry lives 1 ms: nearly every authentication reads the store while rotations write it.
        const tenants = yield* Tenants.make({ bootstrap, rotationGraceMillis: 3_600_000, cacheTtlMillis: 1 })
        const chains: Array<Array<IssuedKey>> = []
        for (let i = 0; i < 4; i++) {
          chains.push([yield* tenants.keys.create(acme)])
        }
        const rotators = chains.map((chain) =>
          Effect.gen(function*() {
            for (let i = 0; i < 10; i++) {
              chain.push(yield* tenants.keys.rotate(acme, chain.at(-1)!.info.id))
            }
          })
        )
        let admitted = 0
        const clients = Array.from({ length: concurrency }, (_, n) =>
          Effect.gen(function*() {
            for (let i = 0; i < 25; i++) {
              const chain = chains[(n + i) % chains.length]!
              yield* tenants.authenticate(Tenants.apiKey(chain[(i * 5) % chain.length]!.key))
              admitted++
            }
          }))
        yield* Effect.all([...rotators, ...clients], { concurrency: "unbounded" })
        assert.strictEqual(admitted, concurrency * 25)
        // Every key issued on the way is still valid (within its grace period) and resolves to its tenant.
        for (const chain of chains) {
          assert.strictEqual(chain.length, 11)
          for (const key of chain) {
            assert.strictEqual((yield* tenants.authenticate(Tenants.apiKey(key.key))).principal.tenantId, acme)
          }
        }
      }).pipe(
        // The service (and its last-use writer) ends before the store it writes to.
        Effect.scoped,
        Effect.provide(Layer.mergeAll(TenantStoreSql.layer, Jwt.layerDisabled).pipe(Layer.provide(sql())))
      ), { timeout: 60_000 })
  })

suite("Tenants on the embedded database (PGlite)", () => layerEmbedded, 4)

describe.runIf(await Services.postgres())("Tenants on PostgreSQL", () => {
  suite("PostgreSQL", () => layerPgSchema({ maxConnections: 8 }), 16)
})
