/**
 * JSON Web Token verification with `jose`: a shared secret (HS256/384/512) or a JWKS endpoint (RS256, ES256, EdDSA,
 * …), an algorithm allow-list (`alg: none` is never accepted), `exp` and `nbf` with a clock skew, `iss` and `aud` when
 * configured, and a bound on the token's length before anything parses it.
 *
 * A JWKS is fetched when first needed, kept for `JWT_JWKS_CACHE_MAX_AGE`, and fetched again when a token names a
 * `kid` it does not hold — at most once per `JWT_JWKS_COOLDOWN`, whatever the outcome of the last fetch (`jose`'s own
 * cooldown starts only after a successful fetch; a wrapper around its fetch bounds failed ones too), so tokens with
 * made-up key ids cannot make this service hammer the identity provider.
 *
 * Every failure is one `InvalidToken` whose `reason` (the jose error code, or ours) is for debug logs only: a client is
 * never told which check failed.
 *
 * @since 0.1.0
 */
import { Clock, Config, Context, Data, Effect, Layer, Option, Redacted } from "effect"
import {
  createRemoteJWKSet,
  type CryptoKey,
  customFetch,
  type JWTPayload,
  jwtVerify,
  type JWTVerifyGetKey,
  type JWTVerifyOptions
} from "jose"
import * as Settings from "./internal/config.js"

/**
 * The token was refused. `reason` says why, for logs; never send it to a client.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidToken extends Data.TaggedError("InvalidToken")<{ readonly reason: string }> {}

/**
 * The JWT configuration is not acceptable (a weak secret, `none` in the allow-list, an algorithm that does not fit the
 * key source, both or neither of a secret and a JWKS URL). The message names the variable.
 *
 * @since 0.1.0
 * @category errors
 */
export class JwtConfigError extends Data.TaggedError("JwtConfigError")<{ readonly message: string }> {}

/**
 * What a verified token says about its bearer.
 *
 * @since 0.1.0
 * @category models
 */
export interface Claims {
  /** `sub`. */
  readonly subject: string
  /** The tenant claim, when it is a string. */
  readonly tenant: string | undefined
  /** The roles claim as strings (an array, or a space-separated string), when present. */
  readonly roles: ReadonlyArray<string> | undefined
  readonly payload: JWTPayload
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** HS256/384/512 shared secret; at least as many bytes as the hash (32 for HS256). */
  readonly secret?: Redacted.Redacted<string> | undefined
  /** A JWKS endpoint for asymmetric algorithms. */
  readonly jwksUrl?: URL | undefined
  /** The accepted algorithms (default `HS256` with a secret, `RS256, ES256, EdDSA` with a JWKS). */
  readonly algorithms?: ReadonlyArray<string> | undefined
  readonly issuer?: string | undefined
  /** Accepted audiences (any of them). */
  readonly audience?: ReadonlyArray<string> | undefined
  /** Clock skew allowed on `exp` and `nbf`, milliseconds (default 30 s). */
  readonly clockSkewMillis?: number | undefined
  /** The claim that names the tenant (default `tenant_id`). */
  readonly tenantClaim?: string | undefined
  /** The claim that lists the roles (default `roles`). */
  readonly rolesClaim?: string | undefined
  /** The longest token accepted, in characters (default 8192). */
  readonly maxLength?: number | undefined
  /** The least time between two JWKS fetches, milliseconds (default 30 s). */
  readonly jwksCooldownMillis?: number | undefined
  /** How long fetched keys are used before a fetch, milliseconds (default 10 min). */
  readonly jwksCacheMaxAgeMillis?: number | undefined
  /** A JWKS fetch that takes longer fails, milliseconds (default 5 s). */
  readonly jwksTimeoutMillis?: number | undefined
}

/**
 * The verifier. `enabled` is false when no secret and no JWKS are configured; every token is then refused.
 *
 * @since 0.1.0
 * @category services
 */
export class JwtVerifier extends Context.Service<JwtVerifier, {
  readonly enabled: boolean
  readonly maxLength: number
  readonly verify: (token: string) => Effect.Effect<Claims, InvalidToken>
}>()("@ouroboros/tenancy/JwtVerifier") {}

const symmetric = new Set(["HS256", "HS384", "HS512"])
const asymmetric = new Set([
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519"
])
const minSecretBytes: Record<string, number> = { HS256: 32, HS384: 48, HS512: 64 }

// Three base64url segments; the signature may not be empty (an unsecured JWT has an empty one).
const compactJws = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

/**
 * A verifier that refuses every token (no JWT configured).
 *
 * @since 0.1.0
 * @category constructors
 */
export const disabled: JwtVerifier["Service"] = JwtVerifier.of({
  enabled: false,
  maxLength: 8192,
  verify: () => Effect.fail(new InvalidToken({ reason: "jwt-not-configured" }))
})

const rolesOf = (value: unknown): ReadonlyArray<string> | undefined => {
  if (typeof value === "string") return value.split(/\s+/).filter((s) => s !== "")
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === "string")
  return undefined
}

/**
 * Checks the options and builds the verifier.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<JwtVerifier["Service"], JwtConfigError> =>
  Effect.gen(function*() {
    const { jwksUrl, secret } = options
    if (secret === undefined && jwksUrl === undefined) return disabled
    if (secret !== undefined && jwksUrl !== undefined) {
      return yield* new JwtConfigError({ message: "JWT_SECRET and JWT_JWKS_URL: set one of them, not both" })
    }
    const algorithms = options.algorithms !== undefined && options.algorithms.length > 0
      ? [...options.algorithms]
      : secret !== undefined
      ? ["HS256"]
      : ["RS256", "ES256", "EdDSA"]
    for (const alg of algorithms) {
      if (alg.toLowerCase() === "none") {
        return yield* new JwtConfigError({ message: "JWT_ALGORITHMS: 'none' is never accepted" })
      }
      const allowed = secret !== undefined ? symmetric : asymmetric
      if (!allowed.has(alg)) {
        return yield* new JwtConfigError({
          message: `JWT_ALGORITHMS: ${alg} cannot be used with ` +
            `${secret !== undefined ? "JWT_SECRET" : "JWT_JWKS_URL"} (allowed: ${[...allowed].join(", ")})`
        })
      }
    }
    let key: JWTVerifyGetKey
    if (secret !== undefined) {
      const bytes = new TextEncoder().encode(Redacted.value(secret))
      const needed = Math.max(...algorithms.map((alg) => minSecretBytes[alg] ?? 32))
      if (bytes.length < needed) {
        return yield* new JwtConfigError({
          message: `JWT_SECRET: at least ${needed} bytes are needed for ${algorithms.join(", ")}`
        })
      }
      // Imported once per algorithm: importing the raw secret on every verification costs more than verifying.
      const keys = new Map<string, CryptoKey>()
      for (const alg of algorithms) {
        keys.set(
          alg,
          yield* Effect.promise(() =>
            globalThis.crypto.subtle.importKey("raw", bytes, { name: "HMAC", hash: `SHA-${alg.slice(2)}` }, false, [
              "verify"
            ])
          )
        )
      }
      // An algorithm outside the allow-list is refused by jose before a key is asked for.
      key = (header) => {
        const found = header.alg === undefined ? undefined : keys.get(header.alg)
        if (found === undefined) throw new Error("no key for this algorithm")
        return found
      }
    } else {
      const cooldown = options.jwksCooldownMillis ?? 30_000
      let lastAttempt = Number.NEGATIVE_INFINITY
      // jose's cooldown applies after a successful fetch only: this bounds every attempt, failed ones included.
      const throttled = (url: string, init: RequestInit): Promise<Response> => {
        const now = Date.now()
        if (now - lastAttempt < cooldown) return Promise.reject(new Error("JWKS fetch throttled"))
        lastAttempt = now
        return fetch(url, init)
      }
      key = createRemoteJWKSet(jwksUrl!, {
        cooldownDuration: cooldown,
        cacheMaxAge: options.jwksCacheMaxAgeMillis ?? 600_000,
        timeoutDuration: options.jwksTimeoutMillis ?? 5_000,
        [customFetch]: throttled
      })
    }
    const maxLength = options.maxLength ?? 8192
    const tenantClaim = options.tenantClaim ?? "tenant_id"
    const rolesClaim = options.rolesClaim ?? "roles"
    const base: JWTVerifyOptions = {
      algorithms,
      clockTolerance: Math.ceil((options.clockSkewMillis ?? 30_000) / 1000),
      requiredClaims: ["exp", "sub"],
      ...(options.issuer !== undefined ? { issuer: options.issuer } : {}),
      ...(options.audience !== undefined && options.audience.length > 0 ? { audience: [...options.audience] } : {})
    }
    const verify = (token: string): Effect.Effect<Claims, InvalidToken> => {
      if (token.length > maxLength) return Effect.fail(new InvalidToken({ reason: "too-long" }))
      if (!compactJws.test(token)) return Effect.fail(new InvalidToken({ reason: "malformed" }))
      return Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.tryPromise({
          try: () => jwtVerify(token, key, { ...base, currentDate: new Date(now) }),
          catch: (error) =>
            new InvalidToken({
              reason: typeof (error as { code?: unknown }).code === "string"
                ? (error as { code: string }).code
                : error instanceof Error
                ? error.message
                : "invalid"
            })
        }).pipe(
          Effect.flatMap(({ payload }) =>
            typeof payload.sub !== "string" || payload.sub === ""
              ? Effect.fail(new InvalidToken({ reason: "no-subject" }))
              : Effect.succeed<Claims>({
                subject: payload.sub,
                tenant: typeof payload[tenantClaim] === "string" ? payload[tenantClaim] : undefined,
                roles: rolesOf(payload[rolesClaim]),
                payload
              })
          )
        ))
    }
    return JwtVerifier.of({ enabled: true, maxLength, verify })
  })

/**
 * The configuration of {@link layerConfig} (see the README for each variable).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  secret: Config.option(Config.Redacted("JWT_SECRET")),
  jwksUrl: Config.option(Config.URL("JWT_JWKS_URL")),
  algorithms: Config.String("JWT_ALGORITHMS").pipe(Config.withDefault(""), Config.map(Settings.splitList)),
  issuer: Config.option(Config.String("JWT_ISSUER")),
  audience: Config.String("JWT_AUDIENCE").pipe(Config.withDefault(""), Config.map(Settings.splitList)),
  clockSkewMillis: Config.schema(Settings.Millis, "JWT_CLOCK_SKEW").pipe(Config.withDefault(30_000)),
  tenantClaim: Config.String("JWT_TENANT_CLAIM").pipe(Config.withDefault("tenant_id")),
  rolesClaim: Config.String("JWT_ROLES_CLAIM").pipe(Config.withDefault("roles")),
  maxLength: Config.schema(Settings.PositiveInt, "JWT_MAX_LENGTH").pipe(Config.withDefault(8192)),
  jwksCooldownMillis: Config.schema(Settings.Millis, "JWT_JWKS_COOLDOWN").pipe(Config.withDefault(30_000)),
  jwksCacheMaxAgeMillis: Config.schema(Settings.Millis, "JWT_JWKS_CACHE_MAX_AGE").pipe(Config.withDefault(600_000)),
  jwksTimeoutMillis: Config.schema(Settings.Millis, "JWT_JWKS_TIMEOUT").pipe(Config.withDefault(5_000))
}).pipe(Config.map((c) => ({
  secret: Option.getOrUndefined(c.secret),
  jwksUrl: Option.getOrUndefined(c.jwksUrl),
  algorithms: c.algorithms,
  issuer: Option.getOrUndefined(c.issuer),
  audience: c.audience,
  clockSkewMillis: c.clockSkewMillis,
  tenantClaim: c.tenantClaim,
  rolesClaim: c.rolesClaim,
  maxLength: c.maxLength,
  jwksCooldownMillis: c.jwksCooldownMillis,
  jwksCacheMaxAgeMillis: c.jwksCacheMaxAgeMillis,
  jwksTimeoutMillis: c.jwksTimeoutMillis
})))

/**
 * The verifier from options.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<JwtVerifier, JwtConfigError> =>
  Layer.effect(JwtVerifier, make(options))

/**
 * The verifier from `JWT_*` (disabled when neither `JWT_SECRET` nor `JWT_JWKS_URL` is set).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config<Options> = config
): Layer.Layer<JwtVerifier, JwtConfigError | Config.ConfigError> =>
  Layer.effect(JwtVerifier, Effect.flatMap(options, make))

/**
 * No JWT: every bearer token is refused.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerDisabled: Layer.Layer<JwtVerifier> = Layer.succeed(JwtVerifier, disabled)
