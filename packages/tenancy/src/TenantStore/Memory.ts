/**
 * The in-memory tenant store: for tests, and for a server whose tenants come from the config file alone (changes made
 * through the admin API then last until the process ends).
 *
 * @since 0.1.0
 */
import type { TenantId } from "@ouroboros/kernel"
import { Effect, Layer, Option } from "effect"
import { ApiKeyNotFound, type Tenant, TenantAlreadyExists, TenantNotFound } from "../Tenant.js"
import { isUsable, KeyIdTaken, type StoredKey, TenantStore } from "../TenantStore.js"

/**
 * A store in memory. Every operation is one synchronous step, so conditional writes are atomic.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (): TenantStore["Service"] => {
  const tenants = new Map<string, Tenant>()
  const keys = new Map<string, StoredKey>()
  return TenantStore.of({
    list: Effect.sync(() => [...tenants.values()].sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
    get: (id) => Effect.sync(() => Option.fromUndefinedOr(tenants.get(id))),
    insert: (tenant) =>
      Effect.suspend(() => {
        if (tenants.has(tenant.id)) return Effect.fail(new TenantAlreadyExists({ tenantId: tenant.id }))
        tenants.set(tenant.id, tenant)
        return Effect.void
      }),
    update: (tenant) =>
      Effect.suspend(() => {
        if (!tenants.has(tenant.id)) return Effect.fail(new TenantNotFound({ tenantId: tenant.id }))
        tenants.set(tenant.id, tenant)
        return Effect.void
      }),
    delete: (id) =>
      Effect.suspend(() => {
        if (!tenants.delete(id)) return Effect.fail(new TenantNotFound({ tenantId: id }))
        let deleted = 0
        for (const [keyId, key] of keys) {
          if (key.tenantId === id) {
            keys.delete(keyId)
            deleted++
          }
        }
        return Effect.succeed(deleted)
      }),
    listKeys: (tenantId: TenantId.TenantId) =>
      Effect.sync(() =>
        [...keys.values()].filter((k) => k.tenantId === tenantId).sort((a, b) => a.createdAt - b.createdAt)
      ),
    findKey: (id) => Effect.sync(() => Option.fromUndefinedOr(keys.get(id))),
    insertKey: (key) =>
      Effect.suspend((): Effect.Effect<void, TenantNotFound | KeyIdTaken> => {
        if (!tenants.has(key.tenantId)) return Effect.fail(new TenantNotFound({ tenantId: key.tenantId }))
        if (keys.has(key.id)) return Effect.fail(new KeyIdTaken({ id: key.id }))
        keys.set(key.id, key)
        return Effect.void
      }),
    rotateKey: ({ expiresAt, id, now, replacement, tenantId }) =>
      Effect.suspend((): Effect.Effect<StoredKey, ApiKeyNotFound | KeyIdTaken> => {
        const old = keys.get(id)
        if (old === undefined || old.tenantId !== tenantId || !isUsable(old, now)) {
          return Effect.fail(new ApiKeyNotFound({ tenantId, keyId: id }))
        }
        if (keys.has(replacement.id)) return Effect.fail(new KeyIdTaken({ id: replacement.id }))
        const updated: StoredKey = {
          ...old,
          expiresAt: old.expiresAt === undefined ? expiresAt : Math.min(old.expiresAt, expiresAt),
          replacedBy: replacement.id
        }
        keys.set(id, updated)
        keys.set(replacement.id, replacement)
        return Effect.succeed(updated)
      }),
    revokeKey: (tenantId, id, at) =>
      Effect.suspend(() => {
        const old = keys.get(id)
        if (old === undefined || old.tenantId !== tenantId) {
          return Effect.fail(new ApiKeyNotFound({ tenantId, keyId: id }))
        }
        const updated: StoredKey = old.revokedAt === undefined ? { ...old, revokedAt: at } : old
        keys.set(id, updated)
        return Effect.succeed(updated)
      }),
    touchKeys: (uses) =>
      Effect.sync(() => {
        for (const { at, id } of uses) {
          const key = keys.get(id)
          if (key !== undefined && (key.lastUsedAt === undefined || key.lastUsedAt < at)) {
            keys.set(id, { ...key, lastUsedAt: at })
          }
        }
      })
  })
}

/**
 * A fresh in-memory store.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<TenantStore> = Layer.sync(TenantStore, make)
