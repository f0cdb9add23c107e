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
import { type Check, type CheckResult, RateLimiterStore, RateLimitStoreError, toContext } from "../RateLimiterStore.js"

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
  /** A decision without a reply from Redis by then fails (default 1 second). */
  readonly timeout?: Duration.DurationInput | undefined
  /** How long to wait for the first connection before starting anyway (default 2 seconds). */
  readonly connectTimeout?: Duration.DurationInput | undefined
}

/**
 * The script behind `consume`: decides a batch of requests, one after another, each atomically over its checks.
 * KEYS: every check's key, request after request. ARGV per request: its number of checks, its cost, then (algorithm,
 * limit, window) per check. Returns (allowed, remaining, resetAfter, retryAfter) per check, in order. Mirrors
 * `internal/algorithms.ts`. A key's state is one string of three packed doubles (exact for the integers involved),
 * read with one GET and written with one SET PX.
 *
 * @since 0.1.0
 * @category scripts
 */
export const consumeScript = `
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local res = {}
local r = 0
local k = 0
local a = 1
while a <= #ARGV do
  local n = tonumber(ARGV[a])
  local cost = tonumber(ARGV[a + 1])
  a = a + 2
  local outs = {}
  local all = true
  for i = 1, n do
    local algo = ARGV[a]
    local limit = tonumber(ARGV[a + 1])
    local window = tonumber(ARGV[a + 2])
    a = a + 3
    -- A key of another type (an older layout) reads as fresh; SET replaces it.
    local raw = redis.pcall("GET", KEYS[k + i])
    local ha, hb, hc
    if type(raw) == "string" then ha, hb, hc = struct.unpack("ddd", raw) end
    local allowed, remaining, reset, retry, na, nb, nc
    if algo == "t" then
      local full = limit * window
      local level = full
      if ha then
        local elapsed = now - hb
        if elapsed < 0 then elapsed = 0 end
        level = math.min(full, ha + elapsed * limit)
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
      if ha then
        if ha == index then
          cur = hb
          prev = hc
        elseif ha == index - 1 then
          prev = hb
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
    outs[i] = { allowed, remaining, reset, retry, na, nb, nc, limit }
  end
  for i = 1, n do
    local o = outs[i]
    if all then
      if o[3] > 0 then
        redis.call("SET", KEYS[k + i], struct.pack("ddd", o[5], o[6], o[7]), "PX", o[3])
      else
        redis.call("DEL", KEYS[k + i])
      end
    elseif o[1] == 1 then
      -- Rejected: nothing is consumed, so a check that would have admitted reports what it had before.
      o[2] = math.min(o[8], o[2] + cost)
    end
    res[r + 1] = o[1]
    res[r + 2] = o[2]
    res[r + 3] = o[3]
    res[r + 4] = o[4]
    r = r + 4
  end
  k = k + n
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

class RedisTimeout extends Error {
  constructor(readonly millis: number) {
    super(`no reply from Redis within ${millis} ms`)
  }
}

/**
 * Deadlines of Redis calls. One interval timer (running only while calls are pending, unref'd) fails the calls older
 * than `millis`, oldest first; a per-call timer (ioredis' `commandTimeout`, or `Effect.timeout`) would cost a timer set
 * and cleared per call, about a tenth of a decision's CPU.
 */
const deadlines = (millis: number) => {
  interface Pending {
    readonly at: number
    settled: boolean
    readonly fail: (cause: RedisTimeout) => void
  }
  const pending = new Set<Pending>()
  let timer: ReturnType<typeof setInterval> | undefined
  const sweep = () => {
    const now = Date.now()
    // Insertion order is start order: stop at the first call still within its deadline.
    for (const call of pending) {
      if (now - call.at < millis) break
      pending.delete(call)
      call.settled = true
      call.fail(new RedisTimeout(millis))
    }
    if (pending.size === 0 && timer !== undefined) {
      clearInterval(timer)
      timer = undefined
    }
  }
  /** Runs `run`, settling exactly once: with its outcome, or with a `RedisTimeout` once the deadline passes. */
  return <A>(run: () => Promise<A>, onSuccess: (a: A) => void, onFailure: (cause: unknown) => void): void => {
    const call: Pending = { at: Date.now(), settled: false, fail: onFailure }
    pending.add(call)
    if (timer === undefined) {
      timer = setInterval(sweep, Math.max(5, Math.floor(millis / 4)))
      timer.unref()
    }
    const settle = () => {
      if (call.settled) return false
      call.settled = true
      pending.delete(call)
      return true
    }
    let promise: Promise<A>
    try {
      promise = run()
    } catch (cause) {
      if (settle()) onFailure(cause)
      return
    }
    promise.then((value) => settle() && onSuccess(value), (cause) => settle() && onFailure(cause))
  }
}

/**
 * At most this many keys go into one script call. Small batches keep several calls in flight, so that Redis decides
 * one batch while this process prepares the next (measured: 16 keys doubled the decisions per second at concurrency
 * 50 over one call per decision; 32 and 64 were slower than 16, as client and server took turns).
 */
const BATCH_KEYS = 16

/**
 * Installs the scripts on an ioredis client and builds the store on it (the caller owns the client).
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromClient = (
  redis: Redis,
  prefix = "ouroboros:rl:",
  options: {
    /** A call without a reply by then fails (default 1 second), so that a hung Redis cannot hold requests. */
    readonly timeout?: Duration.DurationInput | undefined
  } = {}
): RateLimiterStore["Type"] => {
  const call = deadlines(Duration.toMillis(options.timeout ?? "1 second"))
  const callEffect = <A, E>(run: () => Promise<A>, onError: (cause: unknown) => E): Effect.Effect<A, E> =>
    Effect.async<A, E>((resume) =>
      call(run, (value) => resume(Effect.succeed(value)), (cause) => resume(Effect.fail(onError(cause))))
    )
  redis.defineCommand("rlConsume", { lua: consumeScript })
  redis.defineCommand("rlFixedWindow", { lua: fixedWindowScript, numberOfKeys: 1 })
  redis.defineCommand("rlTokenBucket", { lua: tokenBucketScript, numberOfKeys: 1 })
  const commands = redis as unknown as Commands
  const experimentalPrefix = `${prefix}x:`

  // A decision with nothing in flight is sent at once. Behind a call awaiting its reply, the decisions asked for in
  // the same tick (concurrent requests) go to Redis as one script call: one write, one reply and one script run for
  // the lot, instead of one each. Each decision stays atomic over its own checks; a batch is decided in arrival order.
  interface Request {
    readonly checks: ReadonlyArray<Check>
    readonly cost: number
    readonly resume: (effect: Effect.Effect<ReadonlyArray<CheckResult>, RateLimitStoreError>) => void
  }
  let queue: Array<Request> = []
  let queuedKeys = 0
  let inFlight = 0
  const failAll = (requests: ReadonlyArray<Request>) => (cause: unknown) => {
    inFlight--
    const error = Effect.fail(storeError("consume")(cause))
    for (const request of requests) request.resume(error)
  }
  const flush = () => {
    const requests = queue
    if (requests.length === 0) return
    queue = []
    inFlight++
    const keyCount = queuedKeys
    queuedKeys = 0
    const args: Array<string | number> = new Array(1 + keyCount)
    args[0] = keyCount
    let k = 1
    for (const { checks, cost } of requests) {
      args.push(checks.length, cost)
      for (const check of checks) {
        args[k++] = `${prefix}${check.scope}=${check.key}`
        args.push(check.algorithm === "token-bucket" ? "t" : "s", check.limit, check.windowMillis)
      }
    }
    call(() => commands.rlConsume(...args), (reply) => {
      inFlight--
      let r = 0
      for (const { checks, resume } of requests) {
        const results: Array<CheckResult> = new Array(checks.length)
        for (let i = 0; i < checks.length; i++, r += 4) {
          results[i] = {
            allowed: reply[r] === 1,
            remaining: reply[r + 1]!,
            resetAfterMillis: reply[r + 2]!,
            retryAfterMillis: reply[r + 3]!
          }
        }
        resume(Effect.succeed(results))
      }
    }, failAll(requests))
  }
  return {
    consume: (checks, cost) =>
      Effect.async<ReadonlyArray<CheckResult>, RateLimitStoreError>((resume) => {
        queue.push({ checks, cost, resume })
        queuedKeys += checks.length
        // Nothing in flight: no batch to wait for, send at once. Otherwise gather what this tick asks for.
        if (inFlight === 0 || queuedKeys >= BATCH_KEYS) flush()
        else if (queue.length === 1) queueMicrotask(flush)
      }),
    status: Effect.sync(() => redis.status === "ready" ? "pass" : "warn"),
    experimental: Experimental.RateLimiterStore.of({
      fixedWindow: (options) =>
        callEffect(
          () =>
            commands.rlFixedWindow(
              experimentalPrefix + options.key,
              options.tokens,
              Duration.toMillis(options.refillRate),
              ...(options.limit === undefined ? [] : [options.limit])
            ),
          (cause) => new Experimental.RateLimitStoreError({ message: "Redis fixedWindow failed", cause })
        ),
      tokenBucket: (options) =>
        callEffect(
          () =>
            commands.rlTokenBucket(
              experimentalPrefix + options.key,
              options.tokens,
              Duration.toMillis(options.refillRate),
              options.limit,
              options.allowOverflow ? "1" : "0"
            ),
          (cause) => new Experimental.RateLimitStoreError({ message: "Redis tokenBucket failed", cause })
        )
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
        // Finalizers run uninterruptibly: the wait for QUIT's reply is made interruptible so that the timeout can end
        // it when Redis does not answer.
        Effect.interruptible(Effect.tryPromise(() => client.status === "ready" ? client.quit() : Promise.resolve("OK"))).pipe(
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
    return fromClient(redis, options.prefix, { timeout: options.timeout })
  })

/**
 * The Redis store as a layer, providing both our store and `@effect/experimental`'s.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<RateLimiterStore | Experimental.RateLimiterStore> =>
  Layer.scopedContext(Effect.map(make(options), toContext))
