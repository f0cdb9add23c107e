/**
 * The contract every tenant store meets (memory, PGlite, PostgreSQL): one suite, run per backend.
 */
import { assert, describe, layer } from "@effect/vitest"
import { TenantId } from "@ouroboros/kernel"
import { DateTime, Effect, Exit, type Layer, Option } from "effect"
import { Tenant } from "../src/Tenant.js"
import { type StoredKey, TenantStore } from "../src/TenantStore.js"

const unique = (prefix: string) => TenantId.make(`${prefix}-${Math.random().toString(36).slice(2, 10)}`)

const tenant = (id: TenantId.TenantId, at = 1_000) =>
  new Tenant({
    id,
    name: `Tenant ${id}`,
    tier: "free",
    quotas: { documents: 5, storedBytes: null },
    rateLimitTier: "gold",
    model: "llama3.2:3b",
    dedicatedCollection: true,
    createdAt: DateTime.makeUnsafe(at),
    updatedAt: DateTime.makeUnsafe(at)
  })

const key = (tenantId: TenantId.TenantId, id: string, overrides: Partial<StoredKey> = {}): StoredKey => ({
  id,
  tenantId,
  digest: "ab".repeat(32),
  name: "ci",
  roles: ["writer", "reader"],
  createdAt: 2_000,
  expiresAt: undefined,
  revokedAt: undefined,
  replacedBy: undefined,
  ...overrides
})

const keyId = () => Math.random().toString(16).slice(2, 14).padEnd(12, "0")

export const contract = (name: string, store: Layer.Layer<TenantStore, unknown>) =>
  describe(name, () => {
    layer(store, { timeout: "60 seconds" })((it) => {
      it.effect("keeps tenants: insert, get, list, update, duplicate, missing", () =>
        Effect.gen(function*() {
          const s = yield* TenantStore
          const id = unique("t")
          const t = tenant(id)
          yield* s.insert(t)
          const got = yield* s.get(id)
          assert.isTrue(Option.isSome(got))
          const value = Option.getOrThrow(got)
          assert.strictEqual(value.name, t.name)
          assert.strictEqual(value.tier, "free")
          assert.deepStrictEqual(value.quotas, { documents: 5, storedBytes: null })
          assert.strictEqual(value.rateLimitTier, "gold")
          assert.strictEqual(value.model, "llama3.2:3b")
          assert.strictEqual(value.dedicatedCollection, true)
          assert.strictEqual(DateTime.toEpochMillis(value.createdAt), 1_000)
          assert.isTrue((yield* s.list).some((x) => x.id === id))
          const duplicate = yield* Effect.exit(s.insert(t))
          assert.isTrue(Exit.isFailure(duplicate))
          assert.include(String(duplicate), "TenantAlreadyExists")
          const { model: _m, rateLimitTier: _r, ...rest } = t
          yield* s.update(
            new Tenant({ ...rest, name: "renamed", tier: "enterprise", updatedAt: DateTime.makeUnsafe(5_000) })
          )
          const updated = Option.getOrThrow(yield* s.get(id))
          assert.strictEqual(updated.name, "renamed")
          assert.strictEqual(updated.tier, "enterprise")
          assert.strictEqual(updated.model, undefined)
          assert.strictEqual(updated.rateLimitTier, undefined)
          assert.strictEqual(DateTime.toEpochMillis(updated.updatedAt), 5_000)
          const missing = unique("missing")
          assert.isTrue(Option.isNone(yield* s.get(missing)))
          assert.include(String(yield* Effect.exit(s.update(tenant(missing)))), "TenantNotFound")
          assert.include(String(yield* Effect.exit(s.delete(missing))), "TenantNotFound")
        }))

      it.effect("keeps keys by id, per tenant; a key of an unknown tenant or a taken id is refused", () =>
        Effect.gen(function*() {
          const s = yield* TenantStore
          const a = unique("a")
          const b = unique("b")
          yield* s.insert(tenant(a))
          yield* s.insert(tenant(b))
          const ka = keyId()
          const kb = keyId()
          yield* s.insertKey(key(a, ka, { expiresAt: 9_000 }))
          yield* s.insertKey(key(b, kb))
          const found = Option.getOrThrow(yield* s.findKey(ka))
          assert.deepStrictEqual(found, key(a, ka, { expiresAt: 9_000 }))
          assert.deepStrictEqual((yield* s.listKeys(a)).map((k) => k.id), [ka])
          assert.deepStrictEqual((yield* s.listKeys(b)).map((k) => k.id), [kb])
          assert.include(String(yield* Effect.exit(s.insertKey(key(a, ka)))), "KeyIdTaken")
          assert.include(String(yield* Effect.exit(s.insertKey(key(unique("none"), keyId())))), "TenantNotFound")
          assert.isTrue(Option.isNone(yield* s.findKey("000000000000")))
        }))

      it.effect("rotates atomically: only a usable key of the tenant, keeping an earlier expiry", () =>
        Effect.gen(function*() {
          const s = yield* TenantStore
          const a = unique("a")
          const b = unique("b")
          yield* s.insert(tenant(a))
          yield* s.insert(tenant(b))
          const old = keyId()
          yield* s.insertKey(key(a, old))
          const next = keyId()
          // Another tenant cannot rotate it.
          assert.include(
            String(
              yield* Effect.exit(
                s.rotateKey({ tenantId: b, id: old, replacement: key(b, next), expiresAt: 10_000, now: 3_000 })
              )
            ),
            "ApiKeyNotFound"
          )
          assert.isTrue(Option.isNone(yield* s.findKey(next)))
          const rotated = yield* s.rotateKey({
            tenantId: a,
            id: old,
            replacement: key(a, next),
            expiresAt: 10_000,
            now: 3_000
          })
          assert.strictEqual(rotated.expiresAt, 10_000)
          assert.strictEqual(rotated.replacedBy, next)
          assert.isTrue(Option.isSome(yield* s.findKey(next)))
          // A second rotation keeps the earlier expiry.
          const third = keyId()
          const again = yield* s.rotateKey({
            tenantId: a,
            id: old,
            replacement: key(a, third),
            expiresAt: 50_000,
            now: 4_000
          })
          assert.strictEqual(again.expiresAt, 10_000)
          // Expired: refused, and nothing inserted.
          const fourth = keyId()
          assert.include(
            String(
              yield* Effect.exit(
                s.rotateKey({ tenantId: a, id: old, replacement: key(a, fourth), expiresAt: 90_000, now: 10_000 })
              )
            ),
            "ApiKeyNotFound"
          )
          assert.isTrue(Option.isNone(yield* s.findKey(fourth)))
          // A taken replacement id: refused, and the old key unchanged.
          const fresh = keyId()
          yield* s.insertKey(key(a, fresh))
          assert.include(
            String(
              yield* Effect.exit(
                s.rotateKey({ tenantId: a, id: fresh, replacement: key(a, next), expiresAt: 90_000, now: 4_000 })
              )
            ),
            "KeyIdTaken"
          )
          const unchanged = Option.getOrThrow(yield* s.findKey(fresh))
          assert.strictEqual(unchanged.expiresAt, undefined)
          assert.strictEqual(unchanged.replacedBy, undefined)
        }))

      it.effect("revokes once, per tenant; deleting a tenant deletes its keys", () =>
        Effect.gen(function*() {
          const s = yield* TenantStore
          const a = unique("a")
          yield* s.insert(tenant(a))
          const k1 = keyId()
          const k2 = keyId()
          yield* s.insertKey(key(a, k1))
          yield* s.insertKey(key(a, k2))
          assert.include(String(yield* Effect.exit(s.revokeKey(unique("x"), k1, 5_000))), "ApiKeyNotFound")
          assert.strictEqual((yield* s.revokeKey(a, k1, 5_000)).revokedAt, 5_000)
          assert.strictEqual((yield* s.revokeKey(a, k1, 7_000)).revokedAt, 5_000)
          // A revoked key cannot be rotated.
          assert.include(
            String(
              yield* Effect.exit(
                s.rotateKey({ tenantId: a, id: k1, replacement: key(a, keyId()), expiresAt: 9_000, now: 6_000 })
              )
            ),
            "ApiKeyNotFound"
          )
          assert.strictEqual(yield* s.delete(a), 2)
          assert.isTrue(Option.isNone(yield* s.findKey(k2)))
          assert.isTrue(Option.isNone(yield* s.get(a)))
        }))

      it.effect("records last uses in one call: the later time wins, unknown ids are ignored", () =>
        Effect.gen(function*() {
          const s = yield* TenantStore
          const a = unique("a")
          yield* s.insert(tenant(a))
          const k1 = keyId()
          const k2 = keyId()
          const k3 = keyId()
          for (const id of [k1, k2, k3]) yield* s.insertKey(key(a, id))
          const lastUsed = (id: string) => Effect.map(s.findKey(id), (k) => Option.getOrThrow(k).lastUsedAt)
          assert.isUndefined(yield* lastUsed(k1))
          yield* s.touchKeys([])
          yield* s.touchKeys([{ id: k1, at: 10_000 }, { id: k2, at: 12_345 }, { id: "unknown00000", at: 10_000 }])
          assert.strictEqual(yield* lastUsed(k1), 10_000)
          assert.strictEqual(yield* lastUsed(k2), 12_345)
          assert.isUndefined(yield* lastUsed(k3))
          // Another replica's older use does not move it back; a newer one moves it on.
          yield* s.touchKeys([{ id: k1, at: 9_000 }, { id: k2, at: 20_000 }])
          assert.strictEqual(yield* lastUsed(k1), 10_000)
          assert.strictEqual(yield* lastUsed(k2), 20_000)
          const listed = new Map((yield* s.listKeys(a)).map((k) => [k.id, k.lastUsedAt]))
          assert.strictEqual(listed.get(k2), 20_000)
        }))
    })
  })
