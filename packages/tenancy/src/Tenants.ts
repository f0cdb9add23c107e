/**
 * The tenants service: turns a credential (an API key or a bearer JWT) into a `Principal` — tenant, subject, roles,
 * tier — and manages tenants and their keys (create, rotate with a grace period, revoke).
 *
 * Authentication keeps no raw key: a presented key is digested (`ApiKey`), compared in constant time with the stored
 * digest, and only the digest is a cache key. The cache (Effect's `Cache`, bounded, per-entry time to live) keeps
 * successful resolutions only: a failed lookup is never stored, so random keys cannot grow it, and concurrent lookups
 * of one key share one store query. A rotated or revoked key leaves this replica's cache at once and other replicas'
 * within `API_KEY_CACHE_TTL`; a key's entry never outlives the key's own expiry.
 *
 * @since 0.1.0
 */
import { Principal, TenantId } from "@ouroboros/kernel"
import {
  Cache,
  Clock,
  Config,
  Context,
  Data,
  DateTime,
  Effect,
  Exit,
  Layer,
  Option,
  PubSub,
  Redacted,
  Ref,
  Schedule,
  Schema,
  type Scope,
  Stream
} from "effect"
import * as ApiKey from "./ApiKey.js"
import * as Settings from "./internal/config.js"
import { JwtVerifier } from "./Jwt.js"
import {
  adminPrincipal,
  ApiKeyInfo,
  ApiKeyNotFound,
  ApiKeyNotUsable,
  ApiKeyReadOnly,
  defaultKeyRoles,
  DeletedTenant,
  IssuedKey,
  type KeyInput,
  type KeyRole,
  type KeyStatus,
  type RotateInput,
  Tenant,
  TenantAlreadyExists,
  type TenantEvent,
  type TenantInput,
  TenantNotFound,
  type TenantPatch
} from "./Tenant.js"
import * as TenantConfig from "./TenantConfig.js"
import { isUsable, KeyIdTaken, type StoredKey, TenantStore } from "./TenantStore.js"

/**
 * A credential as a request presents it.
 *
 * @since 0.1.0
 * @category models
 */
export type Credential =
  | { readonly _tag: "ApiKey"; readonly key: Redacted.Redacted<string> }
  | { readonly _tag: "Bearer"; readonly token: Redacted.Redacted<string> }

/**
 * An API key credential.
 *
 * @since 0.1.0
 * @category constructors
 */
export const apiKey = (key: string | Redacted.Redacted<string>): Credential => ({
  _tag: "ApiKey",
  key: typeof key === "string" ? Redacted.make(key) : key
})

/**
 * A bearer token credential.
 *
 * @since 0.1.0
 * @category constructors
 */
export const bearer = (token: string | Redacted.Redacted<string>): Credential => ({
  _tag: "Bearer",
  token: typeof token === "string" ? Redacted.make(token) : token
})

/**
 * The credential was refused. `reason` (`malformed`, `unknown-key`, `expired`, `revoked`, `unknown-tenant`, a JWT
 * check's code, …) is for debug logs only: every refusal looks the same to the client.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unauthenticated extends Data.TaggedError("Unauthenticated")<{ readonly reason: string }> {}

/**
 * A successful authentication: the principal, and the tier the rate limiter should apply to it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Authenticated {
  readonly principal: Principal.Principal
  /** The tenant's `rateLimitTier`, or its tier; none for the admin key. */
  readonly limiterTier: string | undefined
}

/**
 * Called before a tenant's record is deleted: delete the tenant's data (documents, vectors, events). A failure stops
 * the deletion, which can then be retried.
 *
 * @since 0.1.0
 * @category models
 */
export type DeletionHook = (tenant: Tenant) => Effect.Effect<void>

/**
 * The service.
 *
 * @since 0.1.0
 * @category services
 */
export class Tenants extends Context.Service<Tenants, {
  /** Resolves a presented credential. */
  readonly authenticate: (credential: Credential) => Effect.Effect<Authenticated, Unauthenticated>
  /**
   * The same for a header value the caller holds anyway (the HTTP edge): no `Redacted` wrapper per request. Never log
   * `value`.
   */
  readonly authenticateValue: (
    kind: Credential["_tag"],
    value: string
  ) => Effect.Effect<Authenticated, Unauthenticated>
  readonly list: Effect.Effect<ReadonlyArray<Tenant>>
  readonly get: (id: TenantId.TenantId) => Effect.Effect<Tenant, TenantNotFound>
  /** A tenant through the cache (fresh within `API_KEY_CACHE_TTL`): for hot paths such as quota checks. */
  readonly lookup: (id: TenantId.TenantId) => Effect.Effect<Option.Option<Tenant>>
  readonly create: (input: TenantInput) => Effect.Effect<Tenant, TenantAlreadyExists>
  readonly update: (id: TenantId.TenantId, patch: TenantPatch) => Effect.Effect<Tenant, TenantNotFound>
  /** Runs the deletion hooks, then deletes the tenant and its keys, and publishes `TenantDeleted`. */
  readonly delete: (id: TenantId.TenantId) => Effect.Effect<DeletedTenant, TenantNotFound>
  /** Registers a deletion hook for the life of the scope. */
  readonly onDelete: (hook: DeletionHook) => Effect.Effect<void, never, Scope.Scope>
  readonly keys: {
    readonly list: (tenantId: TenantId.TenantId) => Effect.Effect<ReadonlyArray<ApiKeyInfo>, TenantNotFound>
    /** Creates a key; the result carries the key itself, which is never shown again. */
    readonly create: (tenantId: TenantId.TenantId, input?: KeyInput) => Effect.Effect<IssuedKey, TenantNotFound>
    /** A new key with the same name and roles; the old one works until the grace period ends. */
    readonly rotate: (
      tenantId: TenantId.TenantId,
      keyId: string,
      input?: RotateInput
    ) => Effect.Effect<IssuedKey, ApiKeyNotFound | ApiKeyNotUsable | ApiKeyReadOnly>
    readonly revoke: (
      tenantId: TenantId.TenantId,
      keyId: string
    ) => Effect.Effect<ApiKeyInfo, ApiKeyNotFound | ApiKeyReadOnly>
  }
  /** Changes to tenants and keys, from the moment of subscription, each with the principal that made it if any. */
  readonly events: Stream.Stream<TenantEvent>
  /** The startup line when no tenant exists (how to create the first one); none otherwise. */
  readonly startupNotice: Effect.Effect<Option.Option<string>>
  /** How many key resolutions are cached (bounded by `API_KEY_CACHE_SIZE`). */
  readonly cacheSize: Effect.Effect<number>
}>()("@ouroboros/tenancy/Tenants") {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Configured tenants and keys and the admin key (`TenantConfig`). */
  readonly bootstrap?: TenantConfig.Bootstrap | undefined
  /** HMAC pepper for key digests (`API_KEY_PEPPER`); SHA-256 without one. */
  readonly pepper?: Redacted.Redacted<string> | undefined
  /** How long a rotated key keeps working by default, milliseconds (default 24 h). */
  readonly rotationGraceMillis?: number | undefined
  /** Most key resolutions cached (default 10 000). */
  readonly cacheCapacity?: number | undefined
  /** How long a resolution and a tenant record are cached, milliseconds (default 30 s). */
  readonly cacheTtlMillis?: number | undefined
  /** Roles of a JWT without a roles claim (default `reader`). */
  readonly jwtDefaultRoles?: ReadonlyArray<Principal.Role> | undefined
  /**
   * How often the keys' last uses are written, milliseconds (default 60 s, at least 1 s): one store write per
   * interval for all the keys used in it, never one per request. A use also shows in this replica's key listings at
   * once.
   */
  readonly lastUsedIntervalMillis?: number | undefined
}

interface Hit extends Authenticated {
  readonly ttlMillis: number
  /** The id of a stored key (its last use is recorded); none for configured keys and tokens. */
  readonly storedKeyId?: string | undefined
}

interface ConfiguredEntry {
  readonly id: string
  readonly digest: Buffer
  readonly key: TenantConfig.ConfiguredKey
}

const isRole = Schema.is(Principal.Role)
const decodeTenantId = Schema.decodeUnknownOption(TenantId.TenantId)

const statusOf = (key: StoredKey, now: number): KeyStatus =>
  key.revokedAt !== undefined
    ? "revoked"
    : key.expiresAt !== undefined && key.expiresAt <= now
    ? "expired"
    : key.expiresAt !== undefined
    ? "expiring"
    : "active"

const utc = (millis: number) => DateTime.makeUnsafe(millis)

const toInfo = (key: StoredKey, now: number, lastUsedAt = key.lastUsedAt): ApiKeyInfo =>
  new ApiKeyInfo({
    id: key.id,
    tenantId: key.tenantId,
    ...(key.name !== undefined ? { name: key.name } : {}),
    roles: key.roles,
    source: "stored",
    status: statusOf(key, now),
    createdAt: utc(key.createdAt),
    ...(key.expiresAt !== undefined ? { expiresAt: utc(key.expiresAt) } : {}),
    ...(key.revokedAt !== undefined ? { revokedAt: utc(key.revokedAt) } : {}),
    ...(key.replacedBy !== undefined ? { replacedBy: key.replacedBy } : {}),
    ...(lastUsedAt !== undefined ? { lastUsedAt: utc(lastUsedAt) } : {})
  })

const reservedTenantIds = new Set(["system"])

// A key's entry in the resolution cache: its lookup prefix and its digest (base64: shorter to hash than hex).
const cacheKeyOf = (prefix: string, digest: Buffer): string => `${prefix}:${digest.toString("base64")}`

/**
 * Builds the service on the `TenantStore` and `JwtVerifier` in context: digests the configured keys, creates the
 * configured tenants that do not exist yet, and writes the stored keys' last uses every
 * {@link Options.lastUsedIntervalMillis} (and when the scope closes).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<Tenants["Service"], TenantConfig.BootstrapError, TenantStore | JwtVerifier | Scope.Scope> =>
  Effect.gen(function*() {
    const store = yield* TenantStore
    const jwt = yield* JwtVerifier
    const bootstrap = options.bootstrap ?? TenantConfig.empty
    const hasher = ApiKey.hasher(options.pepper)
    const cacheTtl = options.cacheTtlMillis ?? 30_000
    const grace = options.rotationGraceMillis ?? 86_400_000
    const jwtDefaultRoles = options.jwtDefaultRoles ?? ["reader"]

    const adminDigest = Option.map(bootstrap.adminKey, (key) => hasher.digest(Redacted.value(key)))
    const configured = new Map<string, ConfiguredEntry>()
    const seenDigests = new Set<string>()
    for (const key of bootstrap.keys) {
      const raw = Redacted.value(key.key)
      const digest = hasher.digest(raw)
      const hex = digest.toString("hex")
      if (seenDigests.has(hex)) {
        return yield* new TenantConfig.BootstrapError({ message: `${key.source}: the same API key is listed twice` })
      }
      if (Option.isSome(adminDigest) && ApiKey.digestsEqual(adminDigest.value, digest)) {
        return yield* new TenantConfig.BootstrapError({
          message: `${key.source}: the key of tenant ${key.tenantId} is the admin key (OUROBOROS_ADMIN_API_KEY)`
        })
      }
      seenDigests.add(hex)
      const id = ApiKey.lookupPrefix(raw, digest)
      configured.set(id, { id, digest, key })
    }

    const now = Clock.currentTimeMillis
    // Configured keys exist from the start of the service.
    const startedAt = yield* now

    // Tenants: cached for hot paths. An absent tenant is not cached, so a new one is seen at once.
    const tenantCache = yield* Cache.makeWith((id: TenantId.TenantId) => store.get(id), {
      capacity: options.cacheCapacity ?? 10_000,
      timeToLive: (exit) => Exit.isSuccess(exit) && Option.isSome(exit.value) ? cacheTtl : 0
    })
    const lookup = (id: TenantId.TenantId) => Cache.get(tenantCache, id)

    const refused = (reason: string) => Effect.fail(new Unauthenticated({ reason }))

    const principalOf = (
      tenantId: TenantId.TenantId,
      subject: string,
      roles: ReadonlyArray<Principal.Role>,
      method: "api-key" | "jwt"
    ) =>
      Effect.flatMap(lookup(tenantId), (tenant) =>
        Option.isNone(tenant)
          ? refused("unknown-tenant")
          : Effect.succeed<Authenticated>({
            principal: new Principal.Principal({ tenantId, subject, roles, method, tier: tenant.value.tier }),
            limiterTier: tenant.value.limiterTier
          }))

    // The cache key is `<prefix>:<digest, base64>` (see `cacheKeyOf`): the raw key is never kept.
    const resolveKey = (cacheKey: string): Effect.Effect<Hit, Unauthenticated> =>
      Effect.gen(function*() {
        const separator = cacheKey.indexOf(":")
        const id = cacheKey.slice(0, separator)
        const digest = Buffer.from(cacheKey.slice(separator + 1), "base64")
        const entry = configured.get(id)
        if (entry !== undefined) {
          if (!ApiKey.digestsEqual(digest, entry.digest)) return yield* refused("unknown-key")
          const authenticated = yield* principalOf(entry.key.tenantId, `key:${id}`, entry.key.roles, "api-key")
          return { ...authenticated, ttlMillis: cacheTtl }
        }
        const stored = yield* store.findKey(id)
        if (Option.isNone(stored) || !ApiKey.digestsEqual(digest, ApiKey.fromHex(stored.value.digest))) {
          return yield* refused("unknown-key")
        }
        const key = stored.value
        const at = yield* now
        if (key.revokedAt !== undefined) return yield* refused("revoked")
        if (key.expiresAt !== undefined && key.expiresAt <= at) return yield* refused("expired")
        const authenticated = yield* principalOf(key.tenantId, `key:${id}`, key.roles, "api-key")
        const ttlMillis = key.expiresAt === undefined ? cacheTtl : Math.min(cacheTtl, key.expiresAt - at)
        return { ...authenticated, ttlMillis, storedKeyId: id }
      })

    const keyCache = yield* Cache.makeWith(resolveKey, {
      capacity: options.cacheCapacity ?? 10_000,
      // Only successes are kept: a refused key never takes a slot.
      timeToLive: (exit) => Exit.isSuccess(exit) ? Math.max(0, exit.value.ttlMillis) : 0
    })

    const admin: Authenticated = { principal: adminPrincipal, limiterTier: undefined }

    // Last uses of stored keys not written yet: one map entry per key, however many requests; written in one store
    // call per interval. An entry stays until the time it holds is written (a newer use keeps it for the next write).
    const lastUsed = new Map<string, number>()
    const noteUse = (hit: Authenticated & Pick<Hit, "storedKeyId">): Effect.Effect<void> =>
      hit.storedKeyId === undefined
        ? Effect.void
        : Effect.clockWith((clock) => {
          lastUsed.set(hit.storedKeyId!, clock.currentTimeMillisUnsafe())
          return Effect.void
        })
    const writeLastUses = Effect.suspend(() => {
      if (lastUsed.size === 0) return Effect.void
      const uses = [...lastUsed].map(([id, at]) => ({ id, at }))
      return Effect.tap(store.touchKeys(uses), () =>
        Effect.sync(() => {
          for (const { at, id } of uses) if (lastUsed.get(id) === at) lastUsed.delete(id)
        }))
    }).pipe(
      // The store dies on infrastructure failures: the uses stay for the next write (an interruption is not caught).
      Effect.catchDefect((defect) =>
        Effect.logWarning("the keys' last uses are not written yet; retried at the next write", defect).pipe(
          Effect.annotateLogs({ service: "tenancy", keys: lastUsed.size })
        )
      ),
      Effect.withSpan("Tenants.writeLastUses")
    )
    yield* Effect.forkScoped(
      Effect.repeat(writeLastUses, Schedule.spaced(Math.max(1_000, options.lastUsedIntervalMillis ?? 60_000)))
    )
    // At the end, once more; a store already gone (its own scope closed first) loses them, with a warning.
    yield* Effect.addFinalizer(() =>
      writeLastUses.pipe(
        Effect.catchCause((cause) =>
          Effect.logWarning("the keys' last uses were not written at shutdown", cause).pipe(
            Effect.annotateLogs({ service: "tenancy", keys: lastUsed.size })
          )
        )
      )
    )
    const infoOf = (key: StoredKey, at: number): ApiKeyInfo => {
      const pending = lastUsed.get(key.id)
      return toInfo(
        key,
        at,
        pending !== undefined && (key.lastUsedAt === undefined || key.lastUsedAt < pending) ? pending : key.lastUsedAt
      )
    }

    const authenticateKey = (raw: string): Effect.Effect<Authenticated, Unauthenticated> => {
      if (raw.length === 0 || raw.length > ApiKey.maxLength) return refused("malformed")
      const digest = hasher.digest(raw)
      if (Option.isSome(adminDigest) && ApiKey.digestsEqual(digest, adminDigest.value)) return Effect.succeed(admin)
      return Effect.tap(Cache.get(keyCache, cacheKeyOf(ApiKey.lookupPrefix(raw, digest), digest)), noteUse)
    }

    const verifyToken = (raw: string): Effect.Effect<Hit, Unauthenticated> =>
      jwt.verify(raw).pipe(
        Effect.mapError((error) => new Unauthenticated({ reason: error.reason })),
        Effect.flatMap((claims) => {
          const tenantId = decodeTenantId(claims.tenant)
          if (Option.isNone(tenantId)) return refused("no-tenant-claim")
          const roles = claims.roles === undefined ? jwtDefaultRoles : claims.roles.filter(isRole)
          return Effect.flatMap(principalOf(tenantId.value, claims.subject, roles, "jwt"), (authenticated) =>
            Effect.map(now, (at): Hit => {
              const exp = claims.payload.exp
              // A verified token is remembered until its expiry at the latest.
              const ttlMillis = typeof exp === "number" ? Math.min(cacheTtl, exp * 1000 - at) : cacheTtl
              return { ...authenticated, ttlMillis }
            }))
        })
      )

    // Verified tokens by digest (the token itself is never a cache key), successes only, as keys are: a JWT's
    // signature is checked once per `API_KEY_CACHE_TTL` (and never past its `exp`) rather than on every request.
    // The token of a digest being looked up, for the cache's lookup (which gets the digest only), with the number of
    // requests presenting it right now.
    const tokensToVerify = new Map<string, { readonly raw: string; count: number }>()
    const tokenCache = yield* Cache.makeWith(
      (digest: string): Effect.Effect<Hit, Unauthenticated> => {
        const entry = tokensToVerify.get(digest)
        return entry === undefined ? refused("malformed") : verifyToken(entry.raw)
      },
      {
        capacity: options.cacheCapacity ?? 10_000,
        timeToLive: (exit) => Exit.isSuccess(exit) ? Math.max(0, exit.value.ttlMillis) : 0
      }
    )

    const authenticateToken = (raw: string): Effect.Effect<Authenticated, Unauthenticated> => {
      if (raw.length === 0 || raw.length > jwt.maxLength) return refused("malformed")
      const digest = hasher.digest(raw).toString("base64")
      const entry = tokensToVerify.get(digest)
      if (entry === undefined) tokensToVerify.set(digest, { raw, count: 1 })
      else entry.count++
      return Effect.ensuring(
        Cache.get(tokenCache, digest),
        Effect.sync(() => {
          const current = tokensToVerify.get(digest)
          if (current !== undefined && --current.count === 0) tokensToVerify.delete(digest)
        })
      )
    }

    const authenticate = (credential: Credential): Effect.Effect<Authenticated, Unauthenticated> =>
      credential._tag === "ApiKey"
        ? authenticateKey(Redacted.value(credential.key))
        : authenticateToken(Redacted.value(credential.token))

    const authenticateValue = (kind: Credential["_tag"], value: string) =>
      kind === "ApiKey" ? authenticateKey(value) : authenticateToken(value)

    const events = yield* PubSub.unbounded<TenantEvent>()
    // The caller's principal, when it has one (an admin API handler), goes with the event: its consumers (the audit
    // log) run on another fiber.
    const publish = (event: TenantEvent) =>
      Effect.flatMap(
        Effect.serviceOption(Principal.CurrentPrincipal),
        (actor) => PubSub.publish(events, Option.isSome(actor) ? { ...event, actor: actor.value } : event)
      )
    const hooks = yield* Ref.make<ReadonlyArray<DeletionHook>>([])

    const get = (id: TenantId.TenantId) =>
      Effect.flatMap(
        store.get(id),
        (tenant) =>
          Option.isNone(tenant) ? Effect.fail(new TenantNotFound({ tenantId: id })) : Effect.succeed(tenant.value)
      )

    const build = (input: TenantInput, at: number) => {
      const timestamp = utc(at)
      return new Tenant({
        id: input.id,
        name: input.name ?? input.id,
        tier: input.tier ?? "standard",
        quotas: input.quotas ?? {},
        ...(input.rateLimitTier !== undefined ? { rateLimitTier: input.rateLimitTier } : {}),
        ...(input.model !== undefined ? { model: input.model } : {}),
        // The enterprise tier asks for a collection of its own unless told otherwise (the server did so by tier).
        dedicatedCollection: input.dedicatedCollection ?? (input.tier === "enterprise"),
        createdAt: timestamp,
        updatedAt: timestamp
      })
    }

    const create = Effect.fn("Tenants.create")(function*(input: TenantInput) {
      if (reservedTenantIds.has(input.id)) return yield* new TenantAlreadyExists({ tenantId: input.id })
      const tenant = build(input, yield* now)
      yield* store.insert(tenant)
      yield* Cache.invalidate(tenantCache, tenant.id)
      yield* publish({ _tag: "TenantCreated", tenant })
      return tenant
    })

    const update = Effect.fn("Tenants.update")(function*(id: TenantId.TenantId, patch: TenantPatch) {
      const current = yield* get(id)
      const { model, rateLimitTier, ...rest } = patch
      const { model: _model, rateLimitTier: _rateLimitTier, ...kept } = current
      const nextModel = model === undefined ? current.model : model ?? undefined
      const nextTier = rateLimitTier === undefined ? current.rateLimitTier : rateLimitTier ?? undefined
      const tenant = new Tenant({
        ...kept,
        ...rest,
        ...(nextModel !== undefined ? { model: nextModel } : {}),
        ...(nextTier !== undefined ? { rateLimitTier: nextTier } : {}),
        updatedAt: utc(yield* now)
      })
      yield* store.update(tenant)
      yield* Cache.invalidate(tenantCache, id)
      // Cached principals carry the tier: drop them all (tenant changes are rare).
      yield* Cache.invalidateAll(keyCache)
      yield* Cache.invalidateAll(tokenCache)
      yield* publish({ _tag: "TenantUpdated", tenant })
      return tenant
    })

    const remove = Effect.fn("Tenants.delete")(function*(id: TenantId.TenantId) {
      const tenant = yield* get(id)
      for (const hook of yield* Ref.get(hooks)) yield* hook(tenant)
      const keysDeleted = yield* store.delete(id)
      yield* Cache.invalidate(tenantCache, id)
      yield* Cache.invalidateAll(keyCache)
      yield* Cache.invalidateAll(tokenCache)
      yield* publish({ _tag: "TenantDeleted", tenant, keysDeleted })
      return new DeletedTenant({ tenant, keysDeleted })
    })

    const configuredInfo = (entry: ConfiguredEntry): ApiKeyInfo =>
      new ApiKeyInfo({
        id: entry.id,
        tenantId: entry.key.tenantId,
        ...(entry.key.name !== undefined ? { name: entry.key.name } : {}),
        roles: entry.key.roles,
        source: "environment",
        status: "active",
        createdAt: utc(startedAt)
      })

    const readOnly = (tenantId: TenantId.TenantId, keyId: string) =>
      configured.get(keyId)?.key.tenantId === tenantId
        ? Effect.fail(new ApiKeyReadOnly({ tenantId, keyId }))
        : Effect.void

    const newKey = (
      tenantId: TenantId.TenantId,
      roles: ReadonlyArray<KeyRole>,
      name: string | undefined,
      at: number
    ) => {
      const generated = ApiKey.generate()
      const stored: StoredKey = {
        id: generated.prefix,
        tenantId,
        digest: hasher.digest(Redacted.value(generated.key)).toString("hex"),
        name,
        roles,
        createdAt: at,
        expiresAt: undefined,
        revokedAt: undefined,
        replacedBy: undefined
      }
      return { key: generated.key, stored }
    }

    const createKey = Effect.fn("Tenants.keys.create")(function*(tenantId: TenantId.TenantId, input: KeyInput = {}) {
      yield* get(tenantId)
      const at = yield* now
      for (let attempt = 0;; attempt++) {
        const made = newKey(tenantId, input.roles ?? defaultKeyRoles, input.name, at)
        const stored: StoredKey = input.expiresInSeconds === undefined
          ? made.stored
          : { ...made.stored, expiresAt: at + input.expiresInSeconds * 1000 }
        const inserted = yield* store.insertKey(stored).pipe(
          Effect.as(true),
          Effect.catchTag("KeyIdTaken", (error) => attempt < 3 ? Effect.succeed(false) : Effect.die(error))
        )
        if (!inserted) continue
        const info = toInfo(stored, at)
        yield* publish({ _tag: "KeyCreated", key: info })
        return new IssuedKey({ key: Redacted.value(made.key), info })
      }
    })

    const rotateKey = Effect.fn("Tenants.keys.rotate")(
      function*(tenantId: TenantId.TenantId, keyId: string, input: RotateInput = {}) {
        yield* readOnly(tenantId, keyId)
        const at = yield* now
        const current = yield* store.findKey(keyId)
        if (Option.isNone(current) || current.value.tenantId !== tenantId) {
          return yield* new ApiKeyNotFound({ tenantId, keyId })
        }
        if (!isUsable(current.value, at)) return yield* new ApiKeyNotUsable({ tenantId, keyId })
        const expiresAt = at + (input.gracePeriodSeconds === undefined ? grace : input.gracePeriodSeconds * 1000)
        for (let attempt = 0;; attempt++) {
          const made = newKey(tenantId, current.value.roles, current.value.name, at)
          const previous = yield* store.rotateKey({ tenantId, id: keyId, replacement: made.stored, expiresAt, now: at })
            .pipe(
              Effect.map(Option.some),
              Effect.catchIf(
                (error): error is KeyIdTaken => error instanceof KeyIdTaken,
                (error) => attempt < 3 ? Effect.succeed(Option.none<StoredKey>()) : Effect.die(error)
              )
            )
          if (Option.isNone(previous)) continue
          // The old key's cached resolution must not outlive its new expiry.
          yield* Cache.invalidate(keyCache, cacheKeyOf(previous.value.id, ApiKey.fromHex(previous.value.digest)))
          const info = toInfo(made.stored, at)
          const before = infoOf(previous.value, at)
          yield* publish({ _tag: "KeyRotated", key: info, previous: before })
          return new IssuedKey({ key: Redacted.value(made.key), info, previous: before })
        }
      }
    )

    const revokeKey = Effect.fn("Tenants.keys.revoke")(function*(tenantId: TenantId.TenantId, keyId: string) {
      yield* readOnly(tenantId, keyId)
      const at = yield* now
      const revoked = yield* store.revokeKey(tenantId, keyId, at)
      yield* Cache.invalidate(keyCache, cacheKeyOf(revoked.id, ApiKey.fromHex(revoked.digest)))
      const info = infoOf(revoked, at)
      yield* publish({ _tag: "KeyRevoked", key: info })
      return info
    })

    const listKeys = Effect.fn("Tenants.keys.list")(function*(tenantId: TenantId.TenantId) {
      yield* get(tenantId)
      const at = yield* now
      const stored = yield* store.listKeys(tenantId)
      const fromConfig = [...configured.values()].filter((e) => e.key.tenantId === tenantId).map(configuredInfo)
      return [...fromConfig, ...stored.map((key) => infoOf(key, at))]
    })

    // Configured tenants are created when missing; an existing record (changed through the API) is kept.
    for (const input of bootstrap.tenants) {
      const existing = yield* store.get(input.id)
      if (Option.isNone(existing)) {
        yield* store.insert(build(input, yield* now)).pipe(Effect.catchTag("TenantAlreadyExists", () => Effect.void))
      }
    }

    const hasAdminKey = Option.isSome(bootstrap.adminKey)

    return Tenants.of({
      authenticate,
      authenticateValue,
      list: store.list,
      get,
      lookup,
      create,
      update,
      delete: remove,
      onDelete: (hook) =>
        Effect.acquireRelease(
          Ref.update(hooks, (all) => [...all, hook]),
          () => Ref.update(hooks, (all) => all.filter((h) => h !== hook))
        ),
      keys: { list: listKeys, create: createKey, rotate: rotateKey, revoke: revokeKey },
      events: Stream.fromPubSub(events),
      startupNotice: Effect.map(
        store.list,
        (tenants) => tenants.length === 0 ? Option.some(TenantConfig.firstTenantHint(hasAdminKey)) : Option.none()
      ),
      cacheSize: Cache.size(keyCache)
    })
  })

/**
 * The service's own variables (the bootstrap ones are `TenantConfig.variables`; JWT ones are `Jwt.config`):
 * `API_KEY_PEPPER`, `API_KEY_ROTATION_GRACE`, `API_KEY_CACHE_SIZE`, `API_KEY_CACHE_TTL`, `API_KEY_LAST_USED_INTERVAL`,
 * `JWT_DEFAULT_ROLES`.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Omit<Options, "bootstrap">> = Config.all({
  pepper: Config.option(Config.Redacted("API_KEY_PEPPER")),
  rotationGraceMillis: Config.schema(Settings.Millis, "API_KEY_ROTATION_GRACE").pipe(Config.withDefault(86_400_000)),
  cacheCapacity: Config.schema(Settings.PositiveInt, "API_KEY_CACHE_SIZE").pipe(Config.withDefault(10_000)),
  cacheTtlMillis: Config.schema(Settings.Millis, "API_KEY_CACHE_TTL").pipe(Config.withDefault(30_000)),
  lastUsedIntervalMillis: Config.schema(Settings.Millis, "API_KEY_LAST_USED_INTERVAL").pipe(
    Config.withDefault(60_000)
  ),
  jwtDefaultRoles: Config.schema(Settings.commaList(Principal.Role), "JWT_DEFAULT_ROLES").pipe(
    Config.withDefault<ReadonlyArray<Principal.Role>>(["reader"])
  )
}).pipe(Config.map((c) => ({
  pepper: Option.getOrUndefined(c.pepper),
  rotationGraceMillis: c.rotationGraceMillis,
  cacheCapacity: c.cacheCapacity,
  cacheTtlMillis: c.cacheTtlMillis,
  lastUsedIntervalMillis: c.lastUsedIntervalMillis,
  jwtDefaultRoles: c.jwtDefaultRoles
})))

/**
 * The service from options, on the store and verifier in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<Tenants, TenantConfig.BootstrapError, TenantStore | JwtVerifier> => Layer.effect(Tenants, make(options))

/**
 * The service from the environment (`TenantConfig.variables`, {@link config}) and the config file's `tenants`
 * section.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  file: ReadonlyArray<TenantConfig.TenantEntry> = []
): Layer.Layer<Tenants, TenantConfig.BootstrapError | Config.ConfigError, TenantStore | JwtVerifier> =>
  Layer.effect(
    Tenants,
    Effect.gen(function*() {
      const bootstrap = yield* TenantConfig.fromEnv(file)
      const settings = yield* config
      return yield* make({ ...settings, bootstrap })
    })
  )
