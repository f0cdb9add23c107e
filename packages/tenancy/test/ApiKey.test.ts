import { assert, describe, it } from "@effect/vitest"
import { TenantId } from "@ouroboros/kernel"
import { Effect, Exit, Layer, Redacted } from "effect"
import { createHash, createHmac } from "node:crypto"
import * as ApiKey from "../src/ApiKey.js"
import * as Jwt from "../src/Jwt.js"
import * as TenantConfig from "../src/TenantConfig.js"
import * as Tenants from "../src/Tenants.js"
import * as Memory from "../src/TenantStore/Memory.js"

describe("ApiKey", () => {
  it("generates ouro_<12 hex>_<43 base64url> keys with 256 random bits, all different", () => {
    const seen = new Set<string>()
    for (let i = 0; i < 1000; i++) {
      const { key, prefix } = ApiKey.generate()
      const raw = Redacted.value(key)
      assert.match(raw, /^ouro_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/)
      assert.isTrue(ApiKey.isGenerated(raw))
      assert.strictEqual(ApiKey.lookupPrefix(raw, ApiKey.hasher().digest(raw)), prefix)
      seen.add(raw)
    }
    assert.strictEqual(seen.size, 1000)
    // A generated key's Redacted does not print it.
    assert.notInclude(String(ApiKey.generate().key), "ouro_")
  })

  it("digests with SHA-256, or HMAC-SHA-256 under a pepper; configured keys get a digest-derived prefix", () => {
    const plain = ApiKey.hasher()
    const peppered = ApiKey.hasher(Redacted.make("pepper-of-the-server"))
    const key = "configured-key-0123456789"
    assert.strictEqual(plain.digest(key).toString("hex"), createHash("sha256").update(key).digest("hex"))
    assert.strictEqual(
      peppered.digest(key).toString("hex"),
      createHmac("sha256", "pepper-of-the-server").update(key).digest("hex")
    )
    const prefix = ApiKey.lookupPrefix(key, plain.digest(key))
    assert.match(prefix, /^h[0-9a-f]{11}$/)
    assert.strictEqual(prefix, `h${plain.digest(key).toString("hex").slice(0, 11)}`)
    assert.isTrue(ApiKey.digestsEqual(plain.digest(key), plain.digest(key)))
    assert.isFalse(ApiKey.digestsEqual(plain.digest(key), plain.digest(`${key}x`)))
    assert.isFalse(ApiKey.digestsEqual(plain.digest(key), plain.digest(key).subarray(0, 16)))
  })

  it.effect("a key digested under one pepper does not authenticate under another", () =>
    Effect.gen(function*() {
      const acme = TenantId.make("acme")
      const bootstrap = { ...TenantConfig.empty, tenants: [{ id: acme }] }
      const first = yield* Tenants.make({ bootstrap, pepper: Redacted.make("one") })
      const issued = yield* first.keys.create(acme)
      yield* first.authenticate(Tenants.apiKey(issued.key))
      const second = yield* Tenants.make({ bootstrap: TenantConfig.empty, pepper: Redacted.make("two") })
      assert.isTrue(Exit.isFailure(yield* Effect.exit(second.authenticate(Tenants.apiKey(issued.key)))))
    }).pipe(Effect.provide(Layer.mergeAll(Memory.layer, Jwt.layerDisabled))))
})
