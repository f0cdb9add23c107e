import { assert, describe, it } from "@effect/vitest"
import { TenantId } from "@ouroboros/kernel"
import { Effect, Exit, Layer, Option, Redacted } from "effect"
import { TestClock } from "effect/testing"
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from "jose"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Jwt from "../src/Jwt.js"
import * as TenantConfig from "../src/TenantConfig.js"
import * as Tenants from "../src/Tenants.js"
import * as Memory from "../src/TenantStore/Memory.js"

const secret = "a-test-secret-of-at-least-32-bytes!!"
const T = 1_750_000_000 // seconds: the tests' "now"
const key = new TextEncoder().encode(secret)

const sign = (
  claims: Record<string, unknown>,
  options: {
    readonly alg?: string
    readonly key?: Uint8Array | CryptoKey
    readonly kid?: string
    readonly exp?: number
  } = {}
) => {
  const jwt = new SignJWT({ tenant_id: "acme", roles: ["writer"], ...claims })
    .setProtectedHeader({ alg: options.alg ?? "HS256", ...(options.kid !== undefined ? { kid: options.kid } : {}) })
    .setSubject("user-1")
    .setIssuedAt(T)
    .setExpirationTime(options.exp ?? T + 300)
  return Effect.promise(() => jwt.sign(options.key ?? key))
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")

const reasonOf = (exit: Exit.Exit<unknown, Jwt.InvalidToken>) =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Exit.findErrorOption(exit))?.reason : "valid"

const hs = (options: Partial<Jwt.Options> = {}) => Jwt.make({ secret: Redacted.make(secret), ...options })

describe("Jwt: HS256", () => {
  it.effect("accepts a valid token and reads subject, tenant and roles", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T * 1000)
      const verifier = yield* hs()
      const claims = yield* verifier.verify(yield* sign({ roles: "writer reader" }))
      assert.strictEqual(claims.subject, "user-1")
      assert.strictEqual(claims.tenant, "acme")
      assert.deepStrictEqual(claims.roles, ["writer", "reader"])
      const custom = yield* hs({ tenantClaim: "org", rolesClaim: "perms" })
      const other = yield* custom.verify(yield* sign({ org: "globex", perms: ["reader"] }))
      assert.strictEqual(other.tenant, "globex")
      assert.deepStrictEqual(other.roles, ["reader"])
    }))

  it.effect("checks exp and nbf with the clock skew", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T * 1000)
      const verifier = yield* hs({ clockSkewMillis: 30_000 })
      const token = yield* sign({}, { exp: T + 60 })
      yield* verifier.verify(token)
      yield* TestClock.adjust("89 seconds") // 29 s past exp: within the skew
      yield* verifier.verify(token)
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual(reasonOf(yield* Effect.exit(verifier.verify(token))), "ERR_JWT_EXPIRED")
      yield* TestClock.setTime(T * 1000)
      const later = yield* sign({ nbf: T + 120 })
      assert.strictEqual(reasonOf(yield* Effect.exit(verifier.verify(later))), "ERR_JWT_CLAIM_VALIDATION_FAILED")
      yield* TestClock.adjust("91 seconds")
      yield* verifier.verify(later)
    }))

  it.effect("refuses alg none, other algorithms, wrong signatures, malformed and oversized tokens", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T * 1000)
      const verifier = yield* hs({ maxLength: 4096 })
      const valid = yield* sign({})
      const [, payload] = valid.split(".")
      const none = `${b64({ alg: "none", typ: "JWT" })}.${payload}.`
      const noneSigned = `${b64({ alg: "none", typ: "JWT" })}.${payload}.${valid.split(".")[2]}`
      const hs512 = yield* sign({}, { alg: "HS512", key: new TextEncoder().encode(secret + secret) })
      const wrongSecret = yield* sign({}, { key: new TextEncoder().encode("another-secret-of-at-least-32-bytes") })
      const tampered = `${valid.split(".")[0]}.${b64({ sub: "user-1", tenant_id: "globex", exp: T + 300 })}.${
        valid.split(".")[2]
      }`
      const noExp = yield* Effect.promise(() =>
        new SignJWT({ tenant_id: "acme" }).setProtectedHeader({ alg: "HS256" }).setSubject("u").sign(key)
      )
      const noSub = yield* Effect.promise(() =>
        new SignJWT({ tenant_id: "acme" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime(T + 60).sign(key)
      )
      const cases: Record<string, string> = {
        none,
        noneSigned,
        hs512,
        wrongSecret,
        tampered,
        noExp,
        noSub,
        empty: "",
        garbage: "not a token",
        twoParts: "abc.def",
        badJson: `${b64({ alg: "HS256" }).slice(0, -2)}!!.${payload}.${valid.split(".")[2]}`,
        huge: `${valid}${"A".repeat(5000)}`
      }
      for (const [name, token] of Object.entries(cases)) {
        const exit = yield* Effect.exit(verifier.verify(token))
        assert.isTrue(Exit.isFailure(exit), name)
      }
      assert.strictEqual(reasonOf(yield* Effect.exit(verifier.verify(cases.huge!))), "too-long")
      assert.strictEqual(reasonOf(yield* Effect.exit(verifier.verify(none))), "malformed")
    }))

  it.effect("checks issuer and audience when configured", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T * 1000)
      const verifier = yield* hs({ issuer: "https://idp.example", audience: ["ouroboros", "api"] })
      yield* verifier.verify(yield* sign({ iss: "https://idp.example", aud: "api" }))
      for (
        const claims of [{ iss: "https://evil.example", aud: "api" }, { iss: "https://idp.example", aud: "other" }, {}]
      ) {
        assert.strictEqual(
          reasonOf(yield* Effect.exit(verifier.verify(yield* sign(claims)))),
          "ERR_JWT_CLAIM_VALIDATION_FAILED"
        )
      }
    }))

  it.effect("refuses unsafe configurations with a line naming the variable", () =>
    Effect.gen(function*() {
      const message = (options: Jwt.Options) =>
        Effect.map(Effect.exit(Jwt.make(options)), (exit) =>
          Exit.isFailure(exit) ? Option.getOrUndefined(Exit.findErrorOption(exit))?.message : undefined)
      assert.include(
        yield* message({ secret: Redacted.make(secret), algorithms: ["none"] }),
        "'none' is never accepted"
      )
      assert.include(
        yield* message({ secret: Redacted.make(secret), algorithms: ["RS256"] }),
        "RS256 cannot be used with JWT_SECRET"
      )
      assert.include(
        yield* message({ jwksUrl: new URL("http://127.0.0.1:1/jwks"), algorithms: ["HS256"] }),
        "HS256 cannot be used with JWT_JWKS_URL"
      )
      assert.include(yield* message({ secret: Redacted.make("short") }), "JWT_SECRET: at least 32 bytes")
      assert.include(
        yield* message({ secret: Redacted.make(secret), jwksUrl: new URL("http://127.0.0.1:1/jwks") }),
        "set one of them"
      )
      const disabled = yield* Jwt.make({})
      assert.isFalse(disabled.enabled)
      assert.strictEqual(reasonOf(yield* Effect.exit(disabled.verify("a.b.c"))), "jwt-not-configured")
    }))
})

// A JWKS endpoint whose keys can change; counts the requests it serves.
const jwksServer = Effect.acquireRelease(
  Effect.callback<{ url: URL; state: { keys: Array<JWK>; status: number; requests: number }; close: () => void }>(
    (resume) => {
      const state = { keys: [] as Array<JWK>, status: 200, requests: 0 }
      const server = Http.createServer((_req, res) => {
        state.requests++
        res.writeHead(state.status, { "content-type": "application/json" })
        res.end(JSON.stringify({ keys: state.keys }))
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resume(Effect.succeed({ url: new URL(`http://127.0.0.1:${port}/jwks`), state, close: () => server.close() }))
      })
    }
  ),
  (server) => Effect.sync(server.close)
)

const rsaKey = (kid: string) =>
  Effect.promise(async () => {
    const { privateKey, publicKey } = await generateKeyPair("RS256")
    const jwk = await exportJWK(publicKey)
    return { privateKey, jwk: { ...jwk, kid, alg: "RS256", use: "sig" } as JWK }
  })

describe("Jwt: RS256 from a JWKS", () => {
  it.effect("fetches the JWKS once, and again for an unknown kid", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T * 1000)
      const server = yield* jwksServer
      const k1 = yield* rsaKey("k1")
      const k2 = yield* rsaKey("k2")
      server.state.keys = [k1.jwk]
      const verifier = yield* Jwt.make({ jwksUrl: server.url, jwksCooldownMillis: 0 })
      for (let i = 0; i < 5; i++) {
        yield* verifier.verify(yield* sign({}, { alg: "RS256", key: k1.privateKey, kid: "k1" }))
      }
      assert.strictEqual(server.state.requests, 1)
      // The identity provider rotates its keys: a token with the new kid makes the verifier fetch again.
      server.state.keys = [k1.jwk, k2.jwk]
      const claims = yield* verifier.verify(yield* sign({}, { alg: "RS256", key: k2.privateKey, kid: "k2" }))
      assert.strictEqual(claims.subject, "user-1")
      assert.strictEqual(server.state.requests, 2)
      // An RS256 token signed by a key the JWKS does not hold is refused.
      const stranger = yield* rsaKey("k1")
      assert.isTrue(
        Exit.isFailure(
          yield* Effect.exit(verifier.verify(yield* sign({}, { alg: "RS256", key: stranger.privateKey, kid: "k1" })))
        )
      )
      // An HS256 token is refused by a JWKS verifier (no algorithm confusion).
      assert.isTrue(Exit.isFailure(yield* Effect.exit(verifier.verify(yield* sign({}, { alg: "HS256" })))))
    }))

  it.effect("unknown kids cannot make it hammer the JWKS endpoint: refreshes are bounded by the cooldown", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T * 1000)
      const server = yield* jwksServer
      const k1 = yield* rsaKey("k1")
      server.state.keys = [k1.jwk]
      const verifier = yield* Jwt.make({ jwksUrl: server.url, jwksCooldownMillis: 3_600_000 })
      yield* verifier.verify(yield* sign({}, { alg: "RS256", key: k1.privateKey, kid: "k1" }))
      assert.strictEqual(server.state.requests, 1)
      const tokens = yield* Effect.forEach(
        Array.from({ length: 50 }, (_, i) => i),
        (i) => sign({}, { alg: "RS256", key: k1.privateKey, kid: `random-${i}` })
      )
      const exits = yield* Effect.forEach(tokens, (token) => Effect.exit(verifier.verify(token)), { concurrency: 10 })
      assert.isTrue(exits.every(Exit.isFailure))
      assert.strictEqual(server.state.requests, 1)
      // The known key keeps working meanwhile.
      yield* verifier.verify(yield* sign({}, { alg: "RS256", key: k1.privateKey, kid: "k1" }))
    }))

  it.effect("a failing JWKS endpoint is not retried before the cooldown either", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T * 1000)
      const server = yield* jwksServer
      const k1 = yield* rsaKey("k1")
      server.state.status = 500
      const verifier = yield* Jwt.make({ jwksUrl: server.url, jwksCooldownMillis: 3_600_000 })
      for (let i = 0; i < 20; i++) {
        assert.isTrue(
          Exit.isFailure(
            yield* Effect.exit(verifier.verify(yield* sign({}, { alg: "RS256", key: k1.privateKey, kid: "k1" })))
          )
        )
      }
      assert.strictEqual(server.state.requests, 1)
    }))
})

describe("Tenants with JWT", () => {
  const layer = (options: Jwt.Options) => Layer.mergeAll(Memory.layer, Jwt.layer(options))

  it.effect("a token becomes a principal of its tenant; unknown tenants, missing claims and unknown roles are handled", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T * 1000)
      const tenants = yield* Tenants.make({ bootstrap: TenantConfig.empty, jwtDefaultRoles: ["reader"] })
      yield* tenants.create({ id: TenantId.make("acme"), tier: "enterprise" })
      const authenticated = yield* tenants.authenticate(Tenants.bearer(yield* sign({ roles: ["writer", "superuser"] })))
      assert.strictEqual(authenticated.principal.tenantId, "acme")
      assert.strictEqual(authenticated.principal.subject, "user-1")
      assert.strictEqual(authenticated.principal.method, "jwt")
      assert.strictEqual(authenticated.principal.tier, "enterprise")
      assert.deepStrictEqual(authenticated.principal.roles, ["writer"])
      const noRoles = yield* tenants.authenticate(Tenants.bearer(yield* sign({ roles: undefined })))
      assert.deepStrictEqual(noRoles.principal.roles, ["reader"])
      const reason = (token: string) =>
        Effect.map(
          Effect.exit(tenants.authenticate(Tenants.bearer(token))),
          (exit) => Exit.isFailure(exit) ? Option.getOrUndefined(Exit.findErrorOption(exit))?.reason : "valid"
        )
      assert.strictEqual(yield* reason(yield* sign({ tenant_id: "globex" })), "unknown-tenant")
      assert.strictEqual(yield* reason(yield* sign({ tenant_id: "Not A Tenant!" })), "no-tenant-claim")
      assert.strictEqual(yield* reason(yield* sign({ tenant_id: 42 })), "no-tenant-claim")
      assert.strictEqual(yield* reason("x".repeat(20_000)), "malformed")
    }).pipe(Effect.provide(layer({ secret: Redacted.make(secret) }))))

  it.effect("a verified token is remembered by its digest until its expiry at the latest, successes only", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T * 1000)
      const inner = yield* Jwt.make({ secret: Redacted.make(secret) })
      let verified = 0
      const counting = Jwt.JwtVerifier.of({
        ...inner,
        verify: (token) => Effect.andThen(Effect.sync(() => verified++), inner.verify(token))
      })
      const tenants = yield* Tenants.make({ bootstrap: TenantConfig.empty, cacheTtlMillis: 30_000 }).pipe(
        Effect.provideService(Jwt.JwtVerifier, counting)
      )
      const acme = yield* tenants.create({ id: TenantId.make("acme") })
      // Expires in 10 s, before the cache's 30 s: the second request within them verifies nothing.
      const token = yield* sign({}, { exp: T + 10 })
      for (let i = 0; i < 5; i++) yield* tenants.authenticate(Tenants.bearer(token))
      assert.strictEqual(verified, 1)
      // A refused token is not remembered.
      const bad = `${token.slice(0, -4)}AAAA`
      for (let i = 0; i < 3; i++) yield* Effect.exit(tenants.authenticate(Tenants.bearer(bad)))
      assert.strictEqual(verified, 4)
      // Past its expiry (and the skew), the token is verified again, and refused.
      yield* TestClock.adjust("41 seconds")
      const expired = yield* Effect.exit(tenants.authenticate(Tenants.bearer(token)))
      assert.isTrue(Exit.isFailure(expired))
      assert.strictEqual(verified, 5)
      // A deleted tenant's tokens stop working at once.
      const fresh = yield* sign({}, { exp: T + 3600 })
      yield* tenants.authenticate(Tenants.bearer(fresh))
      yield* tenants.delete(acme.id)
      assert.isTrue(Exit.isFailure(yield* Effect.exit(tenants.authenticate(Tenants.bearer(fresh)))))
    }).pipe(Effect.provide(Memory.layer)))
})
