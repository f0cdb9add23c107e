import { assert, describe, it } from "@effect/vitest"
import { Principal, TenantId } from "@ouroboros/kernel"
import { Effect, Exit, Fiber, Layer, Option, Redacted, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import { randomBytes } from "node:crypto"
import * as Jwt from "../src/Jwt.js"
import * as TenantConfig from "../src/TenantConfig.js"
import * as Tenants from "../src/Tenants.js"
import * as TenantStore from "../src/TenantStore.js"
import * as Memory from "../src/TenantStore/Memory.js"

const acme = TenantId.make("acme")
const globex = TenantId.make("globex")
const adminKey = "admin-key-0123456789abcdef"
const acmeKey = "acme-key-0123456789abcdef"

const stores = Layer.mergeAll(Memory.layer, Jwt.layerDisabled)

const bootstrap = (
  apiKeys: string,
  admin: string | undefined = adminKey,
  file: ReadonlyArray<TenantConfig.TenantEntry> = []
) =>
  TenantConfig.make({
    adminKey: admin === undefined ? Option.none() : Option.some(Redacted.make(admin)),
    apiKeys: Redacted.make(apiKeys)
  }, file)

const service = (options: Tenants.Options = {}) =>
  Effect.gen(function*() {
    const configured = yield* bootstrap(`acme:${acmeKey}`)
    return yield* Tenants.make({ bootstrap: configured, ...options })
  })

const reason = <A>(exit: Exit.Exit<A, Tenants.Unauthenticated>) =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Exit.findErrorOption(exit))?.reason : "authenticated"

describe("Tenants: authentication", () => {
  it.effect("resolves configured keys, the admin key and stored keys to principals", () =>
    Effect.gen(function*() {
      const tenants = yield* service()
      const configured = yield* tenants.authenticate(Tenants.apiKey(acmeKey))
      assert.strictEqual(configured.principal.tenantId, acme)
      assert.deepStrictEqual(configured.principal.roles, ["writer", "reader"])
      assert.strictEqual(configured.principal.method, "api-key")
      assert.strictEqual(configured.principal.tier, "standard")
      assert.match(configured.principal.subject, /^key:h[0-9a-f]{11}$/)
      // The subject never contains the key.
      assert.notInclude(configured.principal.subject, acmeKey)
      const admin = yield* tenants.authenticate(Tenants.apiKey(adminKey))
      assert.isTrue(admin.principal.hasRole("admin"))
      assert.strictEqual(admin.principal.method, "admin-key")
      const issued = yield* tenants.keys.create(acme, { name: "ci", roles: ["reader"] })
      assert.match(issued.key, /^ouro_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/)
      assert.strictEqual(issued.key.slice(5, 17), issued.info.id)
      const stored = yield* tenants.authenticate(Tenants.apiKey(issued.key))
      assert.strictEqual(stored.principal.subject, `key:${issued.info.id}`)
      assert.deepStrictEqual(stored.principal.roles, ["reader"])
    }).pipe(Effect.provide(stores)))

  it.effect("refuses malformed, oversized, unknown and near-miss keys, and never caches a refusal", () =>
    Effect.gen(function*() {
      const tenants = yield* service()
      const issued = yield* tenants.keys.create(acme)
      const last = issued.key.slice(-1) === "A" ? "B" : "A"
      const cases = [
        "",
        "x".repeat(16 * 1024),
        "short",
        "unknown-key-0123456789",
        `${issued.key.slice(0, -1)}${last}`, // the right prefix, a wrong secret
        `ouro_000000000000_${"A".repeat(43)}`,
        acmeKey.toUpperCase()
      ]
      for (const key of cases) {
        const exit = yield* Effect.exit(tenants.authenticate(Tenants.apiKey(key)))
        assert.isTrue(Exit.isFailure(exit), key.slice(0, 40))
      }
      assert.strictEqual(reason(yield* Effect.exit(tenants.authenticate(Tenants.apiKey("")))), "malformed")
      assert.strictEqual(
        reason(yield* Effect.exit(tenants.authenticate(Tenants.apiKey("x".repeat(16 * 1024))))),
        "malformed"
      )
      // Refusals take no cache entry: the cache holds the valid key only.
      yield* tenants.authenticate(Tenants.apiKey(issued.key))
      assert.strictEqual(yield* tenants.cacheSize, 1)
    }).pipe(Effect.provide(stores)))

  it.effect("stays bounded after 10k random keys: the cache grows with valid keys only", () =>
    Effect.gen(function*() {
      const tenants = yield* service({ cacheCapacity: 100 })
      const valid = yield* Effect.forEach(Array.from({ length: 5 }, () => 0), () => tenants.keys.create(acme))
      for (let i = 0; i < 10_000; i++) {
        const random = i % 2 === 0
          ? `ouro_${randomBytes(6).toString("hex")}_${randomBytes(32).toString("base64url")}`
          : randomBytes(1 + (i % 64)).toString("base64")
        const exit = yield* Effect.exit(tenants.authenticate(Tenants.apiKey(random)))
        assert.isTrue(Exit.isFailure(exit))
        if (i % 1000 === 0) {
          for (const key of valid) yield* tenants.authenticate(Tenants.apiKey(key.key))
        }
      }
      assert.strictEqual(yield* tenants.cacheSize, valid.length)
      // The bound holds for valid keys too.
      const many = yield* Effect.forEach(Array.from({ length: 150 }, () => 0), () => tenants.keys.create(acme))
      for (const key of many) yield* tenants.authenticate(Tenants.apiKey(key.key))
      assert.isAtMost(yield* tenants.cacheSize, 100)
    }).pipe(Effect.provide(stores)), { timeout: 60_000 })

  it.effect("a rotated key works until its grace period ends; a revoked key stops at once, cached or not", () =>
    Effect.gen(function*() {
      const tenants = yield* service({ rotationGraceMillis: 60_000, cacheTtlMillis: 3_600_000 })
      const first = yield* tenants.keys.create(acme, { name: "deploy" })
      yield* tenants.authenticate(Tenants.apiKey(first.key)) // cached now, for an hour
      const second = yield* tenants.keys.rotate(acme, first.info.id)
      assert.strictEqual(second.previous?.id, first.info.id)
      assert.strictEqual(second.previous?.status, "expiring")
      assert.strictEqual(second.previous?.replacedBy, second.info.id)
      assert.strictEqual(second.info.name, "deploy")
      assert.deepStrictEqual(second.info.roles, first.info.roles)
      yield* TestClock.adjust("59 seconds")
      yield* tenants.authenticate(Tenants.apiKey(first.key))
      yield* tenants.authenticate(Tenants.apiKey(second.key))
      yield* TestClock.adjust("1 second")
      // The cached entry did not outlive the grace period.
      assert.strictEqual(reason(yield* Effect.exit(tenants.authenticate(Tenants.apiKey(first.key)))), "expired")
      yield* tenants.authenticate(Tenants.apiKey(second.key))
      const revoked = yield* tenants.keys.revoke(acme, second.info.id)
      assert.strictEqual(revoked.status, "revoked")
      assert.strictEqual(reason(yield* Effect.exit(tenants.authenticate(Tenants.apiKey(second.key)))), "revoked")
      // An expired or revoked key cannot be rotated; a key of another tenant is not found.
      assert.include(String(yield* Effect.exit(tenants.keys.rotate(acme, first.info.id))), "ApiKeyNotUsable")
      assert.include(String(yield* Effect.exit(tenants.keys.rotate(acme, second.info.id))), "ApiKeyNotUsable")
      yield* tenants.create({ id: globex })
      const third = yield* tenants.keys.create(acme)
      assert.include(String(yield* Effect.exit(tenants.keys.rotate(globex, third.info.id))), "ApiKeyNotFound")
      assert.include(String(yield* Effect.exit(tenants.keys.revoke(globex, third.info.id))), "ApiKeyNotFound")
      // Grace 0: the old key stops at once.
      const fourth = yield* tenants.keys.rotate(acme, third.info.id, { gracePeriodSeconds: 0 })
      assert.strictEqual(reason(yield* Effect.exit(tenants.authenticate(Tenants.apiKey(third.key)))), "expired")
      yield* tenants.authenticate(Tenants.apiKey(fourth.key))
    }).pipe(Effect.provide(stores)))

  it.effect("a key created with an expiry stops when it expires", () =>
    Effect.gen(function*() {
      const tenants = yield* service({ cacheTtlMillis: 3_600_000 })
      const issued = yield* tenants.keys.create(acme, { expiresInSeconds: 10 })
      assert.strictEqual(issued.info.status, "expiring")
      yield* tenants.authenticate(Tenants.apiKey(issued.key))
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(reason(yield* Effect.exit(tenants.authenticate(Tenants.apiKey(issued.key)))), "expired")
    }).pipe(Effect.provide(stores)))

  it.effect("configured keys cannot be rotated or revoked through the API; lists show ids and metadata only", () =>
    Effect.gen(function*() {
      const tenants = yield* service()
      const stored = yield* tenants.keys.create(acme, { name: "ci" })
      const keys = yield* tenants.keys.list(acme)
      assert.deepStrictEqual(keys.map((k) => k.source), ["environment", "stored"])
      const configuredId = keys[0]!.id
      assert.include(String(yield* Effect.exit(tenants.keys.rotate(acme, configuredId))), "ApiKeyReadOnly")
      assert.include(String(yield* Effect.exit(tenants.keys.revoke(acme, configuredId))), "ApiKeyReadOnly")
      const text = JSON.stringify(keys)
      assert.notInclude(text, acmeKey)
      assert.notInclude(text, stored.key)
      assert.notInclude(text, stored.key.slice(18))
      assert.notInclude(text, "digest")
    }).pipe(Effect.provide(stores)))

  it.effect("keys stay valid under concurrent rotation: every request with a valid key is admitted", () =>
    Effect.gen(function*() {
      const tenants = yield* service({ rotationGraceMillis: 3_600_000, cacheTtlMillis: 1 })
      const chains = yield* Effect.forEach([0, 1, 2, 3], () => tenants.keys.create(acme))
      // Every key issued so far is valid (no time passes, the grace period is an hour).
      const issued = chains.map((c) => [c])
      const rotators = chains.map((_, chain) =>
        Effect.gen(function*() {
          for (let i = 0; i < 25; i++) {
            const current = issued[chain]!.at(-1)!
            issued[chain]!.push(yield* tenants.keys.rotate(acme, current.info.id))
            yield* Effect.yieldNow
          }
        })
      )
      let admitted = 0
      const clients = Array.from({ length: 8 }, (_, n) =>
        Effect.gen(function*() {
          for (let i = 0; i < 100; i++) {
            const chain = issued[(n + i) % issued.length]!
            const key = chain[(i * 7) % chain.length]!
            yield* tenants.authenticate(Tenants.apiKey(key.key))
            admitted++
            yield* Effect.yieldNow
          }
        }))
      yield* Effect.all([...rotators, ...clients], { concurrency: "unbounded" })
      assert.strictEqual(admitted, 800)
      for (const chain of issued) {
        assert.strictEqual(chain.length, 26)
        for (const key of chain) yield* tenants.authenticate(Tenants.apiKey(key.key))
      }
    }).pipe(Effect.provide(stores)))

  // fast-check drives the scenarios; each runs in its own Effect runtime with a TestClock of its own.
  const scenario = (steps: ReadonlyArray<{ op: "rotate"; grace: number } | { op: "wait"; seconds: number }>) =>
    Effect.gen(function*() {
      const tenants = yield* service({ cacheTtlMillis: 3_600_000 })
      const first = yield* tenants.keys.create(acme)
      const keys: Array<{ key: string; expiresAt: number }> = [{ key: first.key, expiresAt: Infinity }]
      let current = first
      let now = 0
      for (const step of steps) {
        if (step.op === "rotate") {
          const next = yield* tenants.keys.rotate(acme, current.info.id, { gracePeriodSeconds: step.grace })
          keys[keys.length - 1]!.expiresAt = now + step.grace * 1000
          keys.push({ key: next.key, expiresAt: Infinity })
          current = next
        } else {
          yield* TestClock.adjust(`${step.seconds} seconds`)
          now += step.seconds * 1000
        }
        for (const k of keys) {
          const exit = yield* Effect.exit(tenants.authenticate(Tenants.apiKey(k.key)))
          assert.strictEqual(Exit.isSuccess(exit), now < k.expiresAt, `at ${now}, key expiring at ${k.expiresAt}`)
        }
      }
    }).pipe(Effect.scoped, Effect.provide(Layer.mergeAll(stores, TestClock.layer())))

  it.effect(
    "rotations and time (property): a key authenticates exactly while it is valid",
    () =>
      Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(
            fc.array(
              fc.oneof(
                fc.record({ op: fc.constant("rotate" as const), grace: fc.integer({ min: 0, max: 120 }) }),
                fc.record({ op: fc.constant("wait" as const), seconds: fc.integer({ min: 1, max: 90 }) })
              ),
              { maxLength: 12 }
            ),
            (steps) => Effect.runPromise(scenario(steps))
          ),
          { numRuns: 60 }
        )
      ),
    { timeout: 30_000 }
  )
})

describe("Tenants: last use of a key", () => {
  // Counts the store's writes of last uses.
  const counting = Effect.gen(function*() {
    const store = Memory.make()
    const writes: Array<ReadonlyArray<{ readonly id: string; readonly at: number }>> = []
    const layer = Layer.mergeAll(
      Layer.succeed(
        TenantStore.TenantStore,
        TenantStore.TenantStore.of({
          ...store,
          touchKeys: (uses) => Effect.andThen(Effect.sync(() => writes.push(uses)), store.touchKeys(uses))
        })
      ),
      Jwt.layerDisabled
    )
    return { store, writes, layer }
  })

  it.effect("is written once per interval for every key used in it, never per request, and listed at once", () =>
    Effect.gen(function*() {
      const { layer, store, writes } = yield* counting
      yield* Effect.gen(function*() {
        const tenants = yield* service({ lastUsedIntervalMillis: 60_000 })
        const one = yield* tenants.keys.create(acme)
        const two = yield* tenants.keys.create(acme)
        const unused = yield* tenants.keys.create(acme)
        yield* TestClock.adjust("10 seconds")
        for (let i = 0; i < 50; i++) yield* tenants.authenticate(Tenants.apiKey(one.key))
        yield* TestClock.adjust("5 seconds")
        yield* tenants.authenticate(Tenants.apiKey(two.key))
        yield* tenants.authenticate(Tenants.apiKey(one.key))
        // Configured keys and the admin key are not stored keys: nothing to write for them.
        yield* tenants.authenticate(Tenants.apiKey(acmeKey))
        yield* tenants.authenticate(Tenants.apiKey(adminKey))
        assert.deepStrictEqual(writes.filter((w) => w.length > 0), [], "nothing written per request")
        // This replica lists the uses before they are written.
        const listed = new Map((yield* tenants.keys.list(acme)).map((k) => [k.id, k]))
        assert.strictEqual(listed.get(one.info.id)?.lastUsedAt?.epochMilliseconds, 15_000)
        assert.strictEqual(listed.get(two.info.id)?.lastUsedAt?.epochMilliseconds, 15_000)
        assert.isUndefined(listed.get(unused.info.id)?.lastUsedAt)
        // The interval ends: one write holding both keys.
        yield* TestClock.adjust("45 seconds")
        const written = writes.filter((w) => w.length > 0)
        assert.strictEqual(written.length, 1)
        assert.deepStrictEqual(
          [...written[0]!].sort((a, b) => a.id < b.id ? -1 : 1),
          [{ id: one.info.id, at: 15_000 }, { id: two.info.id, at: 15_000 }].sort((a, b) => a.id < b.id ? -1 : 1)
        )
        assert.strictEqual(Option.getOrThrow(yield* store.findKey(one.info.id)).lastUsedAt, 15_000)
        assert.isUndefined(Option.getOrThrow(yield* store.findKey(unused.info.id)).lastUsedAt)
        // A quiet interval writes nothing.
        yield* TestClock.adjust("60 seconds")
        assert.strictEqual(writes.filter((w) => w.length > 0).length, 1)
        // A use just before the scope closes is written when it closes.
        yield* tenants.authenticate(Tenants.apiKey(two.key))
      }).pipe(Effect.scoped, Effect.provide(layer))
      assert.strictEqual(writes.filter((w) => w.length > 0).length, 2)
      const [last] = writes.filter((w) => w.length > 0).slice(-1)
      assert.deepStrictEqual(last!.map((u) => u.at), [120_000])
    }).pipe(Effect.provide(TestClock.layer())))

  it.effect("keeps the uses when the write fails, and writes them at the next interval", () =>
    Effect.gen(function*() {
      const store = Memory.make()
      let failing = true
      const layer = Layer.mergeAll(
        Layer.succeed(
          TenantStore.TenantStore,
          TenantStore.TenantStore.of({
            ...store,
            touchKeys: (uses) => failing ? Effect.die(new Error("connection refused")) : store.touchKeys(uses)
          })
        ),
        Jwt.layerDisabled
      )
      yield* Effect.gen(function*() {
        const tenants = yield* service({ lastUsedIntervalMillis: 60_000 })
        const key = yield* tenants.keys.create(acme)
        yield* TestClock.adjust("1 second")
        yield* tenants.authenticate(Tenants.apiKey(key.key))
        yield* TestClock.adjust("60 seconds")
        assert.isUndefined(Option.getOrThrow(yield* store.findKey(key.info.id)).lastUsedAt)
        failing = false
        yield* TestClock.adjust("60 seconds")
        assert.strictEqual(Option.getOrThrow(yield* store.findKey(key.info.id)).lastUsedAt, 1_000)
      }).pipe(Effect.scoped, Effect.provide(layer))
    }).pipe(Effect.provide(TestClock.layer())))
})

describe("Tenants: management", () => {
  it.effect("creates, reads, updates and deletes tenants; the reserved id and duplicates are refused", () =>
    Effect.gen(function*() {
      const tenants = yield* service()
      const created = yield* tenants.create({ id: globex, name: "Globex", tier: "free", quotas: { documents: 10 } })
      assert.strictEqual(created.name, "Globex")
      assert.strictEqual(created.dedicatedCollection, false)
      // The enterprise tier asks for a collection of its own unless told otherwise.
      const big = yield* tenants.create({ id: TenantId.make("big"), tier: "enterprise" })
      assert.strictEqual(big.dedicatedCollection, true)
      assert.strictEqual(
        (yield* tenants.create({ id: TenantId.make("big-shared"), tier: "enterprise", dedicatedCollection: false }))
          .dedicatedCollection,
        false
      )
      yield* tenants.delete(big.id)
      yield* tenants.delete(TenantId.make("big-shared"))
      assert.include(String(yield* Effect.exit(tenants.create({ id: globex }))), "TenantAlreadyExists")
      assert.include(String(yield* Effect.exit(tenants.create({ id: TenantId.make("system") }))), "TenantAlreadyExists")
      assert.deepStrictEqual((yield* tenants.list).map((t) => t.id), [acme, globex])
      const key = yield* tenants.keys.create(globex)
      assert.strictEqual((yield* tenants.authenticate(Tenants.apiKey(key.key))).principal.tier, "free")
      const updated = yield* tenants.update(globex, { tier: "enterprise", model: "llama3.2:3b", rateLimitTier: "gold" })
      assert.strictEqual(updated.tier, "enterprise")
      assert.strictEqual(updated.name, "Globex")
      assert.deepStrictEqual(updated.quotas, { documents: 10 })
      // The change is seen at once by authentication (cached principals are dropped).
      const after = yield* tenants.authenticate(Tenants.apiKey(key.key))
      assert.strictEqual(after.principal.tier, "enterprise")
      assert.strictEqual(after.limiterTier, "gold")
      const cleared = yield* tenants.update(globex, { model: null })
      assert.strictEqual(cleared.model, undefined)
      assert.strictEqual(cleared.rateLimitTier, "gold")
      assert.include(String(yield* Effect.exit(tenants.update(TenantId.make("nope"), {}))), "TenantNotFound")
    }).pipe(Effect.provide(stores)))

  it.effect("deleting a tenant runs the deletion hooks first, then its keys stop working", () =>
    Effect.gen(function*() {
      const tenants = yield* service()
      yield* tenants.create({ id: globex })
      const key = yield* tenants.keys.create(globex)
      yield* tenants.authenticate(Tenants.apiKey(key.key))
      const seen: Array<string> = []
      yield* tenants.onDelete((tenant) =>
        Effect.gen(function*() {
          // The tenant still exists while its data is deleted.
          const still = yield* tenants.get(tenant.id).pipe(Effect.orDie)
          seen.push(still.id)
        })
      )
      const events = yield* Stream.runCollect(Stream.take(tenants.events, 1)).pipe(Effect.forkChild)
      yield* Effect.yieldNow
      const deleted = yield* tenants.delete(globex)
      assert.strictEqual(deleted.keysDeleted, 1)
      assert.deepStrictEqual(seen, [globex])
      assert.strictEqual(reason(yield* Effect.exit(tenants.authenticate(Tenants.apiKey(key.key)))), "unknown-key")
      assert.include(String(yield* Effect.exit(tenants.get(globex))), "TenantNotFound")
      const [event] = yield* Fiber.join(events)
      assert.strictEqual(event?._tag, "TenantDeleted")
      assert.isUndefined(event?.actor, "no principal in context: no actor")
    }).pipe(Effect.provide(stores)))

  it.effect("events carry the principal that made the change, when the call has one", () =>
    Effect.gen(function*() {
      const tenants = yield* service()
      const operator = new Principal.Principal({
        tenantId: acme,
        subject: "key:0123456789ab",
        roles: ["tenant-admin"],
        method: "api-key",
        tier: "standard"
      })
      const events = yield* Stream.runCollect(Stream.take(tenants.events, 3)).pipe(Effect.forkChild)
      yield* Effect.yieldNow
      const created = yield* tenants.keys.create(acme).pipe(Effect.provideService(Principal.CurrentPrincipal, operator))
      yield* tenants.keys.rotate(acme, created.info.id).pipe(
        Effect.provideService(Principal.CurrentPrincipal, operator)
      )
      yield* tenants.keys.revoke(acme, created.info.id)
      const seen = [...yield* Fiber.join(events)]
      assert.deepStrictEqual(seen.map((e) => e._tag), ["KeyCreated", "KeyRotated", "KeyRevoked"])
      assert.strictEqual(seen[0]?.actor?.subject, "key:0123456789ab")
      assert.strictEqual(seen[1]?.actor?.subject, "key:0123456789ab")
      assert.isUndefined(seen[2]?.actor)
    }).pipe(Effect.provide(stores)))
})

describe("TenantConfig: bootstrap", () => {
  const failure = <A>(effect: Effect.Effect<A, TenantConfig.BootstrapError>) =>
    Effect.map(
      Effect.exit(effect),
      (exit) => Exit.isFailure(exit) ? Option.getOrUndefined(Exit.findErrorOption(exit))?.message : undefined
    )

  it.effect("refuses a key listed twice or equal to the admin key, in one line that never shows the key", () =>
    Effect.gen(function*() {
      const twice = yield* failure(bootstrap(`acme:${acmeKey},globex:${acmeKey}`))
      assert.strictEqual(
        twice,
        "OUROBOROS_API_KEYS entry 1 and OUROBOROS_API_KEYS entry 2: the same API key is listed twice (tenants acme and globex); every key must appear once"
      )
      const sameTenant = yield* failure(bootstrap(`acme:${acmeKey}, acme:${acmeKey}`))
      assert.include(sameTenant, "for tenant acme")
      const envAndFile = yield* failure(
        bootstrap(`acme:${acmeKey}`, adminKey, [{ id: globex, apiKeys: [{ key: acmeKey }] }])
      )
      assert.include(envAndFile, "OUROBOROS_API_KEYS entry 1 and OUROBOROS_CONFIG tenants[0].apiKeys[0]")
      const admin = yield* failure(bootstrap(`acme:${adminKey}`))
      assert.strictEqual(
        admin,
        "OUROBOROS_API_KEYS entry 1: the key of tenant acme is the admin key (OUROBOROS_ADMIN_API_KEY); give it another key"
      )
      const bad = yield* failure(bootstrap("acme:short"))
      assert.include(bad, "OUROBOROS_API_KEYS: entry 1 is not tenant:key")
      const shortAdmin = yield* failure(bootstrap("", "short"))
      assert.include(shortAdmin, "OUROBOROS_ADMIN_API_KEY")
      const declaredTwice = yield* failure(bootstrap("", adminKey, [{ id: acme }, { id: acme }]))
      assert.include(declaredTwice, "tenants[1]: tenant acme is declared twice")
      for (const message of [twice, sameTenant, envAndFile, admin, bad, shortAdmin, declaredTwice]) {
        assert.isDefined(message)
        assert.notInclude(message!, acmeKey)
        assert.notInclude(message!, adminKey)
        assert.notInclude(message!, "\n")
      }
    }))

  it.effect("creates configured tenants (today's file shape, extended) and says how to create the first tenant", () =>
    Effect.gen(function*() {
      const onlyAdmin = yield* Tenants.make({ bootstrap: yield* bootstrap("") })
      const notice = yield* onlyAdmin.startupNotice
      assert.isTrue(Option.isSome(notice))
      assert.include(Option.getOrThrow(notice), "POST http://localhost:8080/admin/tenants")
      // Once a tenant exists there is nothing to say.
      yield* onlyAdmin.create({ id: acme })
      assert.isTrue(Option.isNone(yield* onlyAdmin.startupNotice))
    }).pipe(Effect.provide(stores)))

  it.effect("decodes the config file section and seeds its tenants with their keys", () =>
    Effect.gen(function*() {
      const { Schema } = yield* Effect.promise(() => import("effect"))
      const file = Schema.decodeUnknownSync(TenantConfig.TenantsSection)([
        { id: "acme", name: "Acme", tier: "free", apiKeys: ["acme-file-key-0123456789"] },
        {
          id: "globex",
          apiKeys: [{ key: "globex-admin-key-012345", roles: ["tenant-admin"] }],
          quotas: { documents: 5 },
          rateLimitTier: "gold",
          model: "llama3.2:3b",
          dedicatedCollection: true
        }
      ])
      const tenants = yield* Tenants.make({ bootstrap: yield* bootstrap("", undefined, file) })
      const list = yield* tenants.list
      assert.deepStrictEqual(list.map((t) => [t.id, t.name, t.tier]), [["acme", "Acme", "free"], [
        "globex",
        "globex",
        "standard"
      ]])
      assert.strictEqual(list[1]!.dedicatedCollection, true)
      const admin = yield* tenants.authenticate(Tenants.apiKey("globex-admin-key-012345"))
      assert.deepStrictEqual(admin.principal.roles, ["tenant-admin"])
      assert.strictEqual(admin.limiterTier, "gold")
      const notice = Option.getOrThrow(
        yield* Tenants.make({ bootstrap: TenantConfig.empty }).pipe(
          Effect.provide(Layer.fresh(stores)),
          Effect.flatMap((t) => t.startupNotice)
        )
      )
      assert.include(notice, "set OUROBOROS_ADMIN_API_KEY")
      // A bad entry names its field.
      const bad = Schema.decodeUnknownExit(TenantConfig.TenantsSection)([{ id: "Acme!", apiKeys: ["short"] }])
      assert.isTrue(Exit.isFailure(bad))
    }).pipe(Effect.provide(stores)))
})
