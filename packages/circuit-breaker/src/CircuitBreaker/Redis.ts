/**
 * Breaker state shared across replicas through Redis.
 *
 * Each breaker has one hash (`<prefix>:<name>`) holding the shared record. Every operation is one Lua script call
 * that applies the same transition as `internal/machine.ts` atomically: a versioned compare-and-set for opening,
 * reopening and operator actions, and counted trial permits for half-open, so the whole fleet admits at most
 * `halfOpenMaxCalls` trials. Every status change is published on `<prefix>:changes`; each replica applies it to its
 * local copy, which is all that the closed hot path reads (no round trip per call).
 *
 * When Redis cannot be reached an operation applies the transition to the local copy instead (the breaker degrades
 * to per-process state) and says so in a warning. After the subscriber reconnects, every known breaker re-reads its
 * record, so a transition published while away is not lost.
 *
 * Times in the record (`openUntil`, trial leases) are the writing replica's clock: replicas are assumed to keep their
 * clocks in sync (NTP); a skew of `d` shifts the end of a break by `d` on the skewed replica. While half-open or at
 * the end of a break, each call costs one round trip (asking for a trial permit); a closed or open breaker costs none.
 *
 * @since 0.1.0
 */
import { Connection } from "@ouroboros/kernel"
import { Duration, Effect, Layer, Queue, Stream } from "effect"
import { Redis } from "ioredis"
import type { RedisOptions } from "ioredis"
import * as CircuitBreaker from "../CircuitBreaker.js"
import { CircuitBreakerStore, type RemoteChange, type Store } from "../CircuitBreakerStore.js"
import * as Machine from "../internal/machine.js"

const lua = `
local key = KEYS[1]
local op = ARGV[1]
local channel = ARGV[2]
local name = ARGV[3]
local f = redis.call('HMGET', key, 'status', 'version', 'since', 'openUntil', 'attempts', 'lastOpenMs', 'trials',
  'successes', 'leaseUntil')
local r = {
  status = f[1] or 'closed',
  version = tonumber(f[2]) or 0,
  since = tonumber(f[3]) or 0,
  openUntil = tonumber(f[4]) or 0,
  attempts = tonumber(f[5]) or 0,
  lastOpenMs = tonumber(f[6]) or 0,
  trials = tonumber(f[7]) or 0,
  successes = tonumber(f[8]) or 0,
  leaseUntil = tonumber(f[9]) or 0
}
local function n(x) return string.format('%.0f', x) end
local function ser()
  return r.status .. '|' .. n(r.version) .. '|' .. n(r.since) .. '|' .. n(r.openUntil) .. '|' .. n(r.attempts) ..
    '|' .. n(r.lastOpenMs) .. '|' .. n(r.trials) .. '|' .. n(r.successes) .. '|' .. n(r.leaseUntil)
end
local function save(publish)
  redis.call('HSET', key, 'status', r.status, 'version', n(r.version), 'since', n(r.since), 'openUntil',
    n(r.openUntil), 'attempts', n(r.attempts), 'lastOpenMs', n(r.lastOpenMs), 'trials', n(r.trials), 'successes',
    n(r.successes), 'leaseUntil', n(r.leaseUntil))
  if publish then redis.call('PUBLISH', channel, ser() .. '|' .. name) end
end
if op == 'get' then
  return '0|' .. ser()
elseif op == 'cas' then
  local expected = tonumber(ARGV[4])
  if expected == -1 or r.version == expected then
    r.status = ARGV[5]
    r.since = tonumber(ARGV[6])
    r.openUntil = tonumber(ARGV[7])
    r.attempts = tonumber(ARGV[8])
    r.lastOpenMs = tonumber(ARGV[9])
    r.trials = tonumber(ARGV[10])
    r.successes = tonumber(ARGV[11])
    r.leaseUntil = tonumber(ARGV[12])
    r.version = r.version + 1
    save(true)
    return '1|' .. ser()
  end
  return '0|' .. ser()
elseif op == 'acquire' then
  local now = tonumber(ARGV[4])
  local max = tonumber(ARGV[5])
  local lease = tonumber(ARGV[6])
  if r.status == 'open' then
    if now < r.openUntil then return '0|' .. ser() end
    r.status = 'half-open'
    r.version = r.version + 1
    r.since = now
    r.trials = 1
    r.successes = 0
    r.leaseUntil = now + lease
    save(true)
    return '1|' .. ser()
  elseif r.status == 'half-open' then
    local trials = r.trials
    if now >= r.leaseUntil then trials = 0 end
    if trials >= max then return '0|' .. ser() end
    r.trials = trials + 1
    r.leaseUntil = now + lease
    save(false)
    return '1|' .. ser()
  end
  return '0|' .. ser()
elseif op == 'success' then
  local version = tonumber(ARGV[4])
  local now = tonumber(ARGV[5])
  local threshold = tonumber(ARGV[6])
  if r.version ~= version or r.status ~= 'half-open' then return '0|' .. ser() end
  r.successes = r.successes + 1
  if r.successes >= threshold then
    r.status = 'closed'
    r.version = r.version + 1
    r.since = now
    r.openUntil = 0
    r.trials = 0
    r.successes = 0
    r.leaseUntil = 0
    save(true)
  else
    r.trials = math.max(0, r.trials - 1)
    save(false)
  end
  return '1|' .. ser()
elseif op == 'release' then
  local version = tonumber(ARGV[4])
  if r.version ~= version or r.status ~= 'half-open' or r.trials == 0 then return '0|' .. ser() end
  r.trials = r.trials - 1
  save(false)
  return '1|' .. ser()
end
return redis.error_reply('unknown op ' .. tostring(op))
`

const statuses = new Set<string>(["closed", "open", "half-open", "forced-open", "disabled"])

/**
 * Parses `status|version|since|openUntil|attempts|lastOpenMs|trials|successes|leaseUntil` from `parts[offset]` on.
 *
 * @internal
 */
export const parseRecord = (parts: ReadonlyArray<string>, offset: number): Machine.Shared | undefined => {
  const status = parts[offset]
  if (status === undefined || !statuses.has(status)) return undefined
  const num = (i: number) => Number(parts[offset + i])
  const record: Machine.Shared = {
    status: status as Machine.Status,
    version: num(1),
    since: num(2),
    openUntil: num(3),
    attempts: num(4),
    lastOpenMs: num(5),
    trials: num(6),
    successes: num(7),
    leaseUntil: num(8)
  }
  return Object.values(record).every((v) => typeof v === "string" || Number.isFinite(v)) ? record : undefined
}

/**
 * How to reach Redis.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `redis://…` (e.g. `REDIS_URL`). */
  readonly url?: string | undefined
  readonly redisOptions?: RedisOptions | undefined
  /** Key prefix (default `ouroboros:cb`); the channel is `<prefix>:changes`. */
  readonly prefix?: string | undefined
  /** Longest wait for one operation before degrading to local state (default 1 second). */
  readonly timeout?: Duration.Input | undefined
}

type Runner = (key: string, ...args: Array<string | number>) => Promise<string>

/**
 * Builds the Redis store; the connections close with the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}) =>
  Effect.gen(function*() {
    const prefix = options.prefix ?? "ouroboros:cb"
    const channel = `${prefix}:changes`
    const timeout = options.timeout ?? Duration.seconds(1)
    const connect = () => {
      const redis = options.url === undefined
        ? new Redis({ ...options.redisOptions })
        : new Redis(options.url, { ...options.redisOptions })
      // Failed operations are reported (and degrade to local state) where they happen.
      redis.on("error", () => {})
      return redis
    }
    // QUIT waits for Redis' reply, which a hung or unreachable Redis never sends: wait at most `timeout`.
    const close = (c: Redis) => Connection.close(c, timeout)
    const client = yield* Effect.acquireRelease(Effect.sync(connect), close)
    const subscriber = yield* Effect.acquireRelease(Effect.sync(connect), close)
    client.defineCommand("ouroborosBreaker", { numberOfKeys: 1, lua })
    const run = (client as unknown as { ouroborosBreaker: Runner }).ouroborosBreaker.bind(client)

    const queue = yield* Effect.acquireRelease(Queue.unbounded<RemoteChange>(), Queue.shutdown)
    const known = new Set<string>()

    const onMessage = (ch: string, message: string) => {
      if (ch !== channel) return
      const parts = message.split("|")
      const record = parseRecord(parts, 0)
      if (record === undefined) return
      Queue.offerUnsafe(queue, { name: parts.slice(9).join("|"), record })
    }
    subscriber.on("message", onMessage)
    yield* Effect.tryPromise(() => subscriber.subscribe(channel)).pipe(
      Effect.timeout(Duration.seconds(5)),
      Effect.catch((error) => Effect.logWarning("circuit breaker: cannot subscribe to Redis", error))
    )
    // After a reconnection, catch up with what was published while away.
    let connections = 0
    const onReady = () => {
      if (connections++ === 0) return
      for (const name of known) {
        run(`${prefix}:${name}`, "get", channel, name).then((reply) => {
          const record = parseRecord(reply.split("|"), 1)
          if (record !== undefined) Queue.offerUnsafe(queue, { name, record })
        }, () => {})
      }
    }
    subscriber.on("ready", onReady)
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        subscriber.off("message", onMessage)
        subscriber.off("ready", onReady)
      })
    )

    const call = (
      name: string,
      args: ReadonlyArray<string | number>,
      local: () => readonly [boolean, Machine.Shared]
    ): Effect.Effect<readonly [boolean, Machine.Shared]> =>
      Effect.tryPromise(() => run(`${prefix}:${name}`, args[0]!, channel, name, ...args.slice(1))).pipe(
        Effect.timeout(timeout),
        Effect.flatMap((reply) => {
          const parts = reply.split("|")
          const record = parseRecord(parts, 1)
          return record === undefined
            ? Effect.fail(new Error(`unexpected reply ${reply}`))
            : Effect.succeed([parts[0] === "1", record] as const)
        }),
        Effect.catch((error) =>
          Effect.andThen(
            Effect.logWarning(`circuit breaker ${name}: Redis unavailable, using local state`, error).pipe(
              Effect.annotateLogs({ service: "circuit-breaker", breaker: name })
            ),
            Effect.sync(() => {
              const [granted, record] = local()
              return [granted, { ...record, local: true as const }] as const
            })
          )
        )
      )

    const recordOf = (
      name: string,
      args: ReadonlyArray<string | number>,
      local: () => Machine.Shared
    ): Effect.Effect<Machine.Shared> => Effect.map(call(name, args, () => [true, local()]), ([, r]) => r)

    const fields = (next: Machine.Fields) => [
      next.status,
      next.since,
      next.openUntil,
      next.attempts,
      next.lastOpenMs,
      next.trials,
      next.successes,
      next.leaseUntil
    ]

    const store: Store = {
      load: (name) =>
        Effect.sync(() => known.add(name)).pipe(
          Effect.andThen(recordOf(name, ["get"], () => Machine.initial))
        ),
      cas: (name, current, expectedVersion, next) =>
        recordOf(
          name,
          ["cas", expectedVersion, ...fields(next)],
          () => Machine.cas(current, expectedVersion, next)
        ),
      set: (name, current, next) => recordOf(name, ["cas", -1, ...fields(next)], () => Machine.cas(current, -1, next)),
      acquireTrial: (name, current, now, max, leaseMs) =>
        call(name, ["acquire", now, max, leaseMs], () => Machine.acquireTrial(current, now, max, leaseMs)),
      trialSuccess: (name, current, version, now, threshold) =>
        recordOf(
          name,
          ["success", version, now, threshold],
          () => Machine.trialSuccess(current, version, now, threshold)
        ),
      release: (name, current, version) =>
        recordOf(name, ["release", version], () => Machine.release(current, version)),
      changes: Stream.fromQueue(queue)
    }
    return store
  })

/**
 * The Redis store.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStore = (options: Options = {}): Layer.Layer<CircuitBreakerStore> =>
  Layer.effect(CircuitBreakerStore, make(options))

/**
 * The breaker registry with state shared through Redis.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { CircuitBreaker, CircuitBreakerRedis } from "@ouroboros/circuit-breaker"
 * const live = CircuitBreakerRedis.layerRedis({ url: "redis://127.0.0.1:6379" }, { defaults: CircuitBreaker.defaultOptions })
 */
export const layerRedis = (
  options: Options,
  registry: CircuitBreaker.RegistryOptions = {}
): Layer.Layer<CircuitBreaker.CircuitBreaker> => Layer.provide(CircuitBreaker.layerStore(registry), layerStore(options))
