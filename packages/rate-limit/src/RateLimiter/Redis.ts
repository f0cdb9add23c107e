/**
 * The Redis rate-limit store: one Lua script decides every policy of a request atomically in one round trip, on
 * Redis' clock (`TIME`), so replicas share limits exactly. Every key carries a TTL equal to the time its state takes to
 * become fresh again, so idle keys disappear on their own.
 *
 * The store also implements `@effect/experimental`'s store operations (`fixedWindow`, `tokenBucket`) with the same
 * scripts as `@effect/experimental/RateLimiter/Redis`, plus the TTLs its token-bucket keys lack.
 *
 * @since 0.1.0
 */
import * as Experimental from "@effect/experimental/RateLimiter"
import { Duration, Effect, Layer, Redacted, type Scope } from "effect"
import { Redis, type RedisOptions } from "ioredis"
import { type CheckResult, RateLimiterStore, RateLimitStoreError, toContext } from "../RateLimiterStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `redis://…` URL; ignored when `client` is given. */
  readonly url?: string | Redacted.Redacted<string> | undefined
  /** Extra ioredis options. */
  readonly redis?: RedisOptions | undefined
  /** Key prefix (default `ouroboros:rl:`). */
  readonly prefix?: string | undefined
  /** How long to wait for the first connection before starting anyway (default 2 seconds). */
  readonly connectTimeout?: Duration.DurationInput | undefined
}

/**
 * The script behind `consume`. KEYS: one per check. ARGV: cost, then (algorithm, limit, window) per check. Returns
 * (allowed, remaining, resetAfter, retryAfter) per check. Mirrors `internal/algorithms.ts`.
 *
 * @since 0.1.0
 * @category scripts
 */
export const consumeScript = `
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cost = tonumber(ARGV[1])
local n = #KEYS
local res = {}
local nexts = {}
local all = true
for i = 1, n do
  local algo = ARGV[3 * i - 1]
  local limit = tonumber(ARGV[3 * i])
  local window = tonumber(ARGV[3 * i + 1])
  local h = redis.call("HMGET", KEYS[i], "a", "b", "c")
  local allowed, remaining, reset, retry, na, nb, nc
  if algo == "t" then
    local full = limit * window
    local level = full
    if h[1] then
      local elapsed = now - tonumber(h[2])
      if elapsed < 0 then elapsed = 0 end
      level = math.min(full, tonumber(h[1]) + elapsed * limit)
    end
    local need = cost * window
    if level >= need then
      local left = level - need
      allowed = 1
      remaining = math.floor(left / window)
      reset = math.ceil((full - left) / limit)
      retry = 0
      na = left
    else
      allowed = 0
      remaining = math.floor(level / window)
      reset = math.ceil((full - level) / limit)
      if need > full then retry = window else retry = math.ceil((need - level) / limit) end
      na = level
    end
    nb = now
    nc = 0
  else
    local index = math.floor(now / window)
    local cur = 0
    local prev = 0
    if h[1] then
      local a = tonumber(h[1])
      if a == index then
        cur = tonumber(h[2])
        prev = tonumber(h[3])
      elseif a == index - 1 then
        prev = tonumber(h[2])
      end
    end
    local rest = window - (now - index * window)
    allowed = 0
    if prev * rest + (cur + cost) * window <= limit * window then
      allowed = 1
      cur = cur + cost
    end
    local used = math.ceil((prev * rest + cur * window) / window)
    remaining = limit - used
    if remaining < 0 then remaining = 0 end
    if cur > 0 then reset = rest + window elseif prev > 0 then reset = rest else reset = 0 end
    retry = 0
    if allowed == 0 then
      if cost > limit then
        retry = rest + window
      elseif cur + cost <= limit then
        retry = math.max(0, math.ceil(rest - ((limit - cur - cost) * window) / prev))
      else
        retry = rest + math.max(0, math.ceil(window - ((limit - cost) * window) / cur))
      end
    end
    na = index
    nb = cur
    nc = prev
  end
  if allowed == 0 then all = false end
  res[4 * i - 3] = allowed
  res[4 * i - 2] = remaining
  res[4 * i - 1] = reset
  res[4 * i] = retry
  nexts[i] = { na, nb, nc, reset }
end
if all then
  for i = 1, n do
    local s = nexts[i]
    if s[4] > 0 then
      redis.call("HSET", KEYS[i], "a", string.format("%.0f", s[1]), "b", string.format("%.0f", s[2]),
        "c", string.format("%.0f", s[3]))
      redis.call("PEXPIRE", KEYS[i], s[4])
    else
      redis.call("DEL", KEYS[i])
    end
  end
else
  for i = 1, n do
    if res[4 * i - 3] == 1 then
      res[4 * i - 2] = math.min(tonumber(ARGV[3 * i]), res[4 * i - 2] + cost)
    end
  end
end
return res
`

const fixedWindowScript = `
local key = KEYS[1]
local tokens = tonumber(ARGV[1])
local refillms = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local current = tonumber(redis.call("GET", key))
if not current then
  local nextpttl = refillms * tokens
  redis.call("SET", key, tokens, "PX", nextpttl)
  return { tokens, nextpttl }
end
local currentpttl = tonumber(redis.call("PTTL", key) or "0")
local next = current + tokens
if limit and next > limit then
  return { next, currentpttl }
end
local nextpttl = currentpttl + (refillms * tokens)
redis.call("SET", key, next, "PX", nextpttl)
return { next, nextpttl }
`

// @effect/experimental's token bucket, on Redis' clock and with a TTL: once `limit - tokens` refills have passed the
// bucket is full, i.e. equivalent to a missing key, so both keys may expire then.
const tokenBucketScript = `
local key = KEYS[1]
local last_refill_key = key .. ":refill"
local tokens = tonumber(ARGV[1])
local refill_ms = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local overflow = ARGV[4] == "1"
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local current = tonumber(redis.call("GET", key))
local last_refill = tonumber(redis.call("GET", last_refill_key))
if not current or not last_refill then
  current = limit
  last_refill = now
end
local refill_amount = math.floor((now - last_refill) / refill_ms)
if refill_amount > 0 then
  current = math.min(current + refill_amount, limit)
  last_refill = last_refill + (refill_amount * refill_ms)
end
local next = current - tokens
local stored = next
if next < 0 and not overflow then stored = current end
local ttl = math.ceil(last_refill + math.max(1, (limit - stored) * refill_ms) - now)
if ttl < 1 then ttl = 1 end
redis.call("SET", key, string.format("%.0f", stored), "PX", ttl)
redis.call("SET", last_refill_key, string.format("%.0f", last_refill), "PX", ttl)
return next
`

interface Commands {
  readonly rlConsume: (...args: ReadonlyArray<string | number>) => Promise<ReadonlyArray<number>>
  readonly rlFixedWindow: (...args: ReadonlyArray<string | number>) => Promise<readonly [number, number]>
  readonly rlTokenBucket: (...args: ReadonlyArray<string | number>) => Promise<number>
}

const storeError = (operation: string) => (cause: unknown) =>
  new RateLimitStoreError({ message: `Redis rate-limit ${operation} failed`, cause })

/**
 * Installs the scripts on an ioredis client and builds the store on it (the caller owns the client).
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromClient = (redis: Redis, prefix = "ouroboros:rl:"): RateLimiterStore["Type"] => {
  redis.defineCommand("rlConsume", { lua: consumeScript })
  redis.defineCommand("rlFixedWindow", { lua: fixedWindowScript, numberOfKeys: 1 })
  redis.defineCommand("rlTokenBucket", { lua: tokenBucketScript, numberOfKeys: 1 })
  const commands = redis as unknown as Commands
  const experimentalPrefix = `${prefix}x:`
  return {
    consume: (checks, cost) => {
      const n = checks.length
      const args: Array<string | number> = new Array(1 + n + 1 + 3 * n)
      args[0] = n
      for (let i = 0; i < n; i++) {
        const check = checks[i]!
        args[1 + i] = prefix + check.key
        args[2 + n + 3 * i] = check.algorithm === "token-bucket" ? "t" : "s"
        args[3 + n + 3 * i] = check.limit
        args[4 + n + 3 * i] = check.windowMillis
      }
      args[1 + n] = cost
      return Effect.tryPromise({
        try: () => commands.rlConsume(...args),
        catch: storeError("consume")
      }).pipe(Effect.map((reply) => {
        const results: Array<CheckResult> = new Array(n)
        for (let i = 0; i < n; i++) {
          results[i] = {
            allowed: reply[4 * i] === 1,
            remaining: reply[4 * i + 1]!,
            resetAfterMillis: reply[4 * i + 2]!,
            retryAfterMillis: reply[4 * i + 3]!
          }
        }
        return results
      }))
    },
    status: Effect.sync(() => redis.status === "ready" ? "pass" : "warn"),
    experimental: Experimental.RateLimiterStore.of({
      fixedWindow: (options) =>
        Effect.tryPromise({
          try: () =>
            commands.rlFixedWindow(
              experimentalPrefix + options.key,
              options.tokens,
              Duration.toMillis(options.refillRate),
              ...(options.limit === undefined ? [] : [options.limit])
            ),
          catch: (cause) =>
            new Experimental.RateLimitStoreError({ message: "Redis fixedWindow failed", cause })
        }),
      tokenBucket: (options) =>
        Effect.tryPromise({
          try: () =>
            commands.rlTokenBucket(
              experimentalPrefix + options.key,
              options.tokens,
              Duration.toMillis(options.refillRate),
              options.limit,
              options.allowOverflow ? "1" : "0"
            ),
          catch: (cause) =>
            new Experimental.RateLimitStoreError({ message: "Redis tokenBucket failed", cause })
        })
    })
  }
}

/**
 * Connects to Redis (released with the scope) and builds the store. Commands fail fast while Redis is unreachable
 * (no offline queue) so that a fallback can take over; ioredis keeps reconnecting in the background.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<RateLimiterStore["Type"], never, Scope.Scope> =>
  Effect.gen(function*() {
    const redisOptions: RedisOptions = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: 1000,
      connectTimeout: 2000,
      ...options.redis
    }
    const url = options.url === undefined ? undefined : Redacted.isRedacted(options.url)
      ? Redacted.value(options.url)
      : options.url
    const redis = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const client = url === undefined ? new Redis(redisOptions) : new Redis(url, redisOptions)
        // Connection errors surface as failed commands (and a `warn` status); the event itself is noise.
        client.on("error", () => {})
        return client
      }),
      (client) =>
        Effect.tryPromise(() => client.status === "ready" ? client.quit() : Promise.resolve("OK")).pipe(
          Effect.timeout("1 second"),
          Effect.catchAll(() => Effect.void),
          Effect.ensuring(Effect.sync(() => client.disconnect()))
        )
    )
    yield* Effect.async<void>((resume) => {
      if (redis.status === "ready") return resume(Effect.void)
      const onReady = () => resume(Effect.void)
      redis.once("ready", onReady)
      return Effect.sync(() => redis.off("ready", onReady))
    }).pipe(Effect.timeoutOption(options.connectTimeout ?? "2 seconds"))
    return fromClient(redis, options.prefix)
  })

/**
 * The Redis store as a layer, providing both our store and `@effect/experimental`'s.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<RateLimiterStore | Experimental.RateLimiterStore> =>
  Layer.scopedContext(Effect.map(make(options), toContext))
