import { assert, describe, it } from "@effect/vitest"
import { Services } from "@ouroboros/testkit"
import { Duration, Effect, Schema } from "effect"
import { RateLimiter as Persistence } from "effect/persistence"
import { Redis } from "ioredis"
import { spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { connect, createServer, type Socket } from "node:net"
import { fileURLToPath } from "node:url"
import { afterAll } from "vitest"
import * as RateLimiter from "../src/RateLimiter.js"
import * as Memory from "../src/RateLimiter/Memory.js"
import * as RedisStore from "../src/RateLimiter/Redis.js"
import { RateLimiterStore } from "../src/RateLimiterStore.js"
import { testStore } from "./storeContract.js"

const prefix = `test:rl:${randomUUID()}:`

/** Arbitraries as schemas (`effect/Arbitrary` derives them). */
const int = (minimum: number, maximum: number) => Schema.Int.check(Schema.isBetween({ minimum, maximum }))

const cleanup = async () => {
  const redis = new Redis(Services.redisUrl)
  let cursor = "0"
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
    cursor = next
    if (keys.length > 0) await redis.del(...keys)
  } while (cursor !== "0")
  await redis.quit()
}

describe.runIf(await Services.redis())("Redis store", () => {
  afterAll(cleanup)
  const layer = RedisStore.layer({ url: Services.redisUrl, prefix })
  let n = 0
  testStore(layer, () => `c${n++}:`)

  it.effect("concurrent decisions share one script call and stay exact and atomic", () =>
    Effect.gen(function*() {
      const store = yield* RateLimiterStore
      const burst = {
        scope: "batch",
        key: "burst",
        algorithm: "token-bucket" as const,
        limit: 5,
        windowMillis: 3_600_000
      }
      const quota = {
        scope: "batch",
        key: "quota",
        algorithm: "sliding-window" as const,
        limit: 8,
        windowMillis: 3_600_000
      }
      // 20 decisions asked for in the same tick, most of them on the same keys: decided one after another in Redis.
      const results = yield* Effect.all(
        Array.from({ length: 20 }, (_, i) => store.consume(i % 2 === 0 ? [burst, quota] : [quota], 1)),
        { concurrency: "unbounded" }
      )
      const admitted = results.filter((r) => r.every((c) => c.allowed)).length
      // The quota admits 8 in all, of which the burst+quota requests can take at most 5 (their burst).
      assert.strictEqual(admitted, 8)
      const both = results.filter((r, i) => i % 2 === 0 && r.every((c) => c.allowed)).length
      assert.isAtMost(both, 5)
      // A request rejected by its quota consumed nothing of its burst.
      const burstLeft = (yield* store.consume([{ ...burst, key: "burst" }], 0))[0]!.remaining
      assert.strictEqual(burstLeft, 5 - both)
    }).pipe(Effect.provide(layer)))

  it.effect("every key gets a TTL, ours and effect/persistence's", () =>
    Effect.gen(function*() {
      const store = yield* RateLimiterStore
      yield* store.consume([
        { scope: "ttl", key: "tb", algorithm: "token-bucket", limit: 10, windowMillis: 60_000 },
        { scope: "ttl", key: "sw", algorithm: "sliding-window", limit: 10, windowMillis: 60_000 }
      ], 1)
      const limiter = yield* Persistence.make
      yield* limiter.consume({ key: "ttl:x", limit: 5, window: "1 minute", algorithm: "token-bucket" })
      yield* limiter.consume({ key: "ttl:f", limit: 5, window: "1 minute", algorithm: "fixed-window" })
      const ttls = yield* Effect.promise(async () => {
        const redis = new Redis(Services.redisUrl)
        // effect/persistence's keys are escaped as its own Redis store escapes them (`:` is `%3A`).
        const keys = ["ttl=tb", "ttl=sw", "x:ttl%3Ax", "x:ttl%3Ax:refill", "x:ttl%3Af"].map((k) => prefix + k)
        const result = await Promise.all(keys.map((k) => redis.pttl(k)))
        const states = await Promise.all(keys.slice(0, 2).map((k) => redis.getBuffer(k)))
        await redis.quit()
        return [result, states.map((state) => [0, 8, 16, 24].map((at) => state!.readDoubleLE(at)))] as const
      }).pipe(Effect.map(([ttls, states]) => {
        const [tb, sw] = states
        // A key lives one window beyond the time its state takes to be fresh again, by the script's clock (kept in
        // the state, its expiry last): one token of 10/min is back in 6 s after the decision (the bucket's second
        // double); the window key (its index first) is fresh once the next window has passed.
        assert.strictEqual(tb![3]! - tb![1]!, 66_000)
        assert.strictEqual(sw![3]!, (sw![0]! + 3) * 60_000)
        return ttls
      }))
      // Redis' own TTLs agree (they only fall from there).
      assert.isAtMost(ttls[0]!, 66_000)
      assert.isAbove(ttls[0]!, 0)
      assert.isAtMost(ttls[1]!, 180_000)
      assert.isAbove(ttls[1]!, 0)
      for (const ttl of ttls.slice(2)) {
        assert.isAbove(ttl, 0)
        assert.isAtMost(ttl, 60_000)
      }
      const exceeded = yield* Effect.flip(Effect.repeat(
        limiter.consume({ key: "ttl:x", limit: 5, window: "1 minute", algorithm: "token-bucket" }),
        { times: 10 }
      ))
      assert.strictEqual(exceeded.reason._tag, "RateLimitExceeded")
    }).pipe(Effect.provide(layer)))

  it.effect("effect/persistence's adaptive limiter: a 429 with Retry-After cools the key down, in Redis", () =>
    Effect.gen(function*() {
      const limiter = yield* Persistence.make
      const options = { key: "adaptive", tokens: 1, fallbackLimit: 10, fallbackWindow: Duration.minutes(1) }
      const first = yield* limiter.adaptiveConsume(options)
      assert.deepStrictEqual([first.phase, first.epoch, Duration.toMillis(first.delay)], ["inactive", 0, 0])
      yield* limiter.adaptiveFeedback({
        key: "adaptive",
        epoch: first.epoch,
        tokens: 1,
        status: 429,
        retryAfter: Duration.seconds(30)
      })
      const cooling = yield* limiter.adaptiveConsume(options)
      assert.strictEqual(cooling.phase, "cooldown")
      assert.isAbove(Duration.toMillis(cooling.delay), 25_000)
      assert.isAtMost(Duration.toMillis(cooling.delay), 30_000)
      const ttl = yield* Effect.promise(async () => {
        const redis = new Redis(Services.redisUrl)
        const result = await redis.pttl(`${prefix}x:adaptive:adaptive`)
        await redis.quit()
        return result
      })
      // Cooldown plus a minute of grace.
      assert.isAbove(ttl, 60_000)
      assert.isAtMost(ttl, 90_000)
    }).pipe(Effect.provide(layer)))
})

describe.runIf(await Services.redis())("Redis store: keys and script", () => {
  afterAll(cleanup)
  const layer = RedisStore.layer({ url: Services.redisUrl, prefix })
  const withRedis = <A>(f: (redis: Redis) => Promise<A>) =>
    Effect.promise(async () => {
      const redis = new Redis(Services.redisUrl)
      try {
        return await f(redis)
      } finally {
        await redis.quit()
      }
    })
  const check = (key: string, limit: number, windowMillis: number) => ({
    scope: "keys",
    key,
    algorithm: "token-bucket" as const,
    limit,
    windowMillis
  })

  it.effect("a key's expiry is kept while it covers the state, and moved on when it no longer does", () =>
    Effect.gen(function*() {
      const store = yield* RateLimiterStore
      const key = `${prefix}keys=ttl-${randomUUID()}`
      // 10 per minute. No step waits for time to pass: the script's own clock is in the state (a token bucket's second
      // double is the time of its decision, the last one the expiry it gave the key), so each expectation is exact.
      const consume = store.consume([check(key.slice(prefix.length + 5), 10, 60_000)], 1)
      const state = withRedis(async (redis) => {
        const raw = (await redis.getBuffer(key))!
        return { decidedAt: raw.readDoubleLE(8), expiry: raw.readDoubleLE(24), pttl: await redis.pttl(key), raw }
      })
      // A fresh key: one token is back in 6 s, and the key lives one window beyond that.
      const first = (yield* consume)[0]!
      assert.strictEqual(first.resetAfterMillis, 6_000)
      const fresh = yield* state
      assert.strictEqual(fresh.expiry - fresh.decidedAt, 66_000)
      assert.isAbove(fresh.pttl, 0)
      assert.isAtMost(fresh.pttl, 66_000)
      // A decision within the expiry keeps it (written with KEEPTTL): the state needs at most 12 s more, the key has
      // up to 66 s.
      yield* consume
      const kept = yield* state
      assert.strictEqual(kept.expiry, fresh.expiry)
      assert.isAtMost(kept.pttl, fresh.pttl)
      // A key whose expiry no longer covers its state (here: the expiry in the state set back to the time of the last
      // decision, the key itself given an hour) gets a new one, from this decision: its reset plus a window.
      const stale = Buffer.from(kept.raw)
      stale.writeDoubleLE(kept.decidedAt, 24)
      yield* withRedis((redis) => redis.set(key, stale, "PX", 3_600_000))
      const third = (yield* consume)[0]!
      assert.isTrue(third.allowed)
      const moved = yield* state
      assert.strictEqual(moved.expiry - moved.decidedAt, third.resetAfterMillis + 60_000)
      assert.isAtMost(moved.pttl, third.resetAfterMillis + 60_000)
      assert.isAbove(moved.pttl, 0)
    }).pipe(Effect.provide(layer)))

  it.effect("a key in an older layout reads as its state, or as fresh when it is not a string", () =>
    Effect.gen(function*() {
      const store = yield* RateLimiterStore
      const hour = 3_600_000
      const [old, hash] = [`old-${randomUUID()}`, `hash-${randomUUID()}`]
      yield* withRedis(async (redis) => {
        // Three doubles, as the previous version wrote them: a token bucket holding one token, refilled just now.
        const [seconds, micros] = await redis.time()
        const state = Buffer.alloc(24)
        state.writeDoubleLE(hour, 0)
        state.writeDoubleLE(Number(seconds) * 1000 + Math.floor(Number(micros) / 1000), 8)
        await redis.set(`${prefix}keys=${old}`, state, "PX", hour)
        await redis.hset(`${prefix}keys=${hash}`, "tokens", "0")
      })
      const fromOld = []
      for (let i = 0; i < 2; i++) fromOld.push((yield* store.consume([check(old, 5, hour)], 1))[0]!.allowed)
      assert.deepStrictEqual(fromOld, [true, false])
      const fromHash = (yield* store.consume([check(hash, 5, hour)], 1))[0]!
      assert.isTrue(fromHash.allowed)
      assert.strictEqual(fromHash.remaining, 4)
      const ttls = yield* withRedis((redis) =>
        Promise.all([redis.pttl(`${prefix}keys=${old}`), redis.pttl(`${prefix}keys=${hash}`)])
      )
      for (const ttl of ttls) assert.isAbove(ttl, 0)
    }).pipe(Effect.provide(layer)))

  it.effect("decisions go on after Redis forgets the script", () =>
    Effect.gen(function*() {
      const store = yield* RateLimiterStore
      const key = `flush-${randomUUID()}`
      assert.isTrue((yield* store.consume([check(key, 2, 60_000)], 1))[0]!.allowed)
      yield* withRedis((redis) => redis.script("FLUSH"))
      const results = yield* Effect.all([
        store.consume([check(key, 2, 60_000)], 1),
        store.consume([check(key, 2, 60_000)], 1)
      ], { concurrency: "unbounded" })
      assert.deepStrictEqual(results.map((r) => r[0]!.allowed), [true, false])
    }).pipe(Effect.provide(layer)))

  // The script with its clock taken from an argument, so that it can be compared with the memory store at any instant.
  // Windows are long so that no key expires in real time during a run.
  it.effect.prop(
    "the script decides as the memory store does, policies checked together",
    [
      Schema.Array(Schema.Struct({
        algorithm: Schema.Literals(["token-bucket", "sliding-window"]),
        limit: int(1, 8),
        windowMillis: int(10_000, 90_000)
      })).check(Schema.isBetweenLength(1, 3)),
      Schema.Array(Schema.Struct({ advance: int(0, 60_000), cost: int(0, 4), batch: int(1, 3) })).check(
        Schema.isBetweenLength(1, 30)
      )
    ],
    ([policies, ops]) =>
      withRedis(async (redis) => {
        const script = RedisStore.consumeScript.replace(
          /local t = redis\.call\("TIME"\)\nlocal now = [^\n]*\n/,
          "local now = tonumber(ARGV[2])\n"
        )
        assert.notStrictEqual(script, RedisStore.consumeScript)
        const run = `${randomUUID()}`
        const checks = policies.map((p, i) => ({ ...p, scope: "prop", key: `${run}-${i}` }))
        const memory = Memory.makeUnsafe()
        let now = 1_700_000_000_000
        for (const { advance, batch, cost } of ops) {
          now += advance
          // `batch` requests in one script call, decided one after another, as concurrent requests are.
          const spec = Buffer.alloc(8 * batch * (2 + 3 * checks.length))
          let offset = 0
          const keys: Array<string> = []
          for (let b = 0; b < batch; b++) {
            offset = spec.writeDoubleLE(checks.length, offset)
            offset = spec.writeDoubleLE(cost, offset)
            for (const c of checks) {
              keys.push(`${prefix}${c.scope}=${c.key}`)
              offset = spec.writeDoubleLE(c.algorithm === "token-bucket" ? 0 : 1, offset)
              offset = spec.writeDoubleLE(c.limit, offset)
              offset = spec.writeDoubleLE(c.windowMillis, offset)
            }
          }
          const reply = await redis.callBuffer("EVAL", script, keys.length, ...keys, spec, String(now)) as Buffer
          for (let b = 0; b < batch; b++) {
            const expected = memory.consumeUnsafe!(checks, cost, now)
            const actual = expected.map((_, i) => {
              const at = 32 * (b * checks.length + i)
              return {
                allowed: reply.readDoubleLE(at) === 1,
                remaining: reply.readDoubleLE(at + 8),
                resetAfterMillis: reply.readDoubleLE(at + 16),
                retryAfterMillis: reply.readDoubleLE(at + 24)
              }
            })
            assert.deepStrictEqual(actual, expected.map((r) => ({ ...r })))
          }
        }
      }),
    { arbitrary: { runs: 60, size: 30 } }
  )
})

describe("Redis unreachable", () => {
  it.live("fails open to memory with a warn status", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.RateLimiter
      const subject = { client: "1.2.3.4", endpoint: "GET /api/x" }
      assert.isTrue((yield* limiter.decide(subject)).allowed)
      assert.isTrue((yield* limiter.decide(subject)).allowed)
      assert.isFalse((yield* limiter.decide(subject)).allowed)
      assert.strictEqual(yield* limiter.status, "warn")
    }).pipe(
      Effect.provide(RateLimiter.layerRedis({
        url: "redis://127.0.0.1:1",
        policies: [RateLimiter.defaultPolicy(2)],
        connectTimeout: "200 millis",
        redis: { retryStrategy: () => 1000 }
      }))
    ))

  it.live("fails closed with a store error", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.RateLimiter
      const error = yield* Effect.flip(limiter.decide({ client: "1.2.3.4", endpoint: "GET /api/x" }))
      assert.strictEqual(error._tag, "RateLimitStoreError")
    }).pipe(
      Effect.provide(RateLimiter.layerRedis({
        url: "redis://127.0.0.1:1",
        policies: [RateLimiter.defaultPolicy(2)],
        failure: "closed",
        connectTimeout: "200 millis",
        redis: { retryStrategy: () => 1000 }
      }))
    ))
})

/** A TCP proxy to Redis that can be cut and restored, to stage an outage. */
const startProxy = (target: URL) =>
  new Promise<{
    port: number
    down: () => void
    up: () => void
    stall: (stalled: boolean) => void
    close: () => Promise<void>
  }>((resolve) => {
    let isDown = false
    const sockets = new Set<Socket>()
    const upstreams = new Set<Socket>()
    const server = createServer((client) => {
      if (isDown) return void client.destroy()
      const upstream = connect(Number(target.port || 6379), target.hostname)
      upstreams.add(upstream)
      upstream.on("close", () => upstreams.delete(upstream))
      for (const socket of [client, upstream]) {
        sockets.add(socket)
        socket.on("error", () => {})
        socket.on("close", () => {
          sockets.delete(socket)
          client.destroy()
          upstream.destroy()
        })
      }
      client.pipe(upstream).pipe(client)
    })
    server.listen(0, "127.0.0.1", () =>
      resolve({
        port: (server.address() as { port: number }).port,
        down: () => {
          isDown = true
          for (const socket of sockets) socket.destroy()
        },
        up: () => {
          isDown = false
        },
        // Replies stop coming back (connections stay open), as from a Redis that hangs.
        stall: (stalled) => {
          for (const upstream of upstreams) stalled ? upstream.pause() : upstream.resume()
        },
        close: () =>
          new Promise((done) => {
            for (const socket of sockets) socket.destroy()
            server.close(() => done())
          })
      }))
  })

describe.runIf(await Services.redis())("Redis outage", () => {
  afterAll(cleanup)
  /** A proxy in front of the test Redis, closed with the scope. */
  const redisProxy = Effect.acquireRelease(
    Effect.promise(() => startProxy(new URL(Services.redisUrl))),
    (p) => Effect.promise(() => p.close())
  )
  it.live("fails open while Redis is away, reports warn, and recovers when it returns", () =>
    Effect.gen(function*() {
      const proxy = yield* redisProxy
      const subject = { apiKey: "outage", client: "1.2.3.4", endpoint: "GET /api/x" }
      yield* Effect.gen(function*() {
        const limiter = yield* RateLimiter.RateLimiter
        assert.isTrue((yield* limiter.decide(subject)).allowed)
        assert.strictEqual(yield* limiter.status, "pass")
        proxy.down()
        // Redis is away (once the client has seen its connection close): decisions go on, in memory. Polled; the
        // deadline only bounds the test.
        let status = yield* limiter.status
        for (const deadline = Date.now() + 15_000; status !== "warn" && Date.now() < deadline;) {
          assert.isTrue((yield* limiter.decide(subject)).allowed)
          status = yield* limiter.status
          if (status !== "warn") yield* Effect.sleep("10 millis")
        }
        assert.strictEqual(status, "warn")
        assert.isTrue((yield* limiter.decide(subject)).allowed)
        proxy.up()
        for (const deadline = Date.now() + 15_000; status !== "pass" && Date.now() < deadline;) {
          yield* Effect.sleep("20 millis")
          yield* limiter.decide(subject)
          status = yield* limiter.status
        }
        assert.strictEqual(status, "pass")
        // And the decisions are Redis' again: its count went on from where it was before the outage.
        const decision = yield* limiter.decide(subject)
        assert.isTrue(decision.allowed)
        assert.isBelow(decision.remaining, 998)
      }).pipe(Effect.provide(RateLimiter.layerRedis({
        url: `redis://127.0.0.1:${proxy.port}`,
        prefix: `${prefix}outage:`,
        policies: [RateLimiter.defaultPolicy(1000, 3_600_000)],
        redis: { retryStrategy: () => 100 }
      })))
    }).pipe(Effect.scoped), 40_000)

  it.live(
    "a Redis that stops answering fails decisions at the deadline, then closed or open as configured",
    () =>
      Effect.gen(function*() {
        const proxy = yield* redisProxy
        const subject = { apiKey: "hung", client: "1.2.3.4", endpoint: "GET /api/x" }
        const options = {
          url: `redis://127.0.0.1:${proxy.port}`,
          prefix: `${prefix}hung:`,
          policies: [RateLimiter.defaultPolicy(1000, 3_600_000)],
          timeout: "300 millis"
        } as const
        const closed = yield* Effect.gen(function*() {
          const limiter = yield* RateLimiter.RateLimiter
          assert.isTrue((yield* limiter.decide(subject)).allowed)
          proxy.stall(true)
          const started = Date.now()
          const error = yield* Effect.flip(limiter.decide(subject))
          return { error, elapsed: Date.now() - started }
        }).pipe(Effect.provide(RateLimiter.layerRedis({ ...options, failure: "closed" })))
        assert.strictEqual(closed.error._tag, "RateLimitStoreError")
        assert.include(String((closed.error as { cause?: unknown }).cause), "no reply from Redis within 300 ms")
        // Not before its deadline (how long after it depends on the machine: the error's text names the deadline).
        assert.isAtLeast(closed.elapsed, 250)
        proxy.stall(false)
        yield* Effect.gen(function*() {
          const limiter = yield* RateLimiter.RateLimiter
          assert.isTrue((yield* limiter.decide(subject)).allowed)
          proxy.stall(true)
          // Open: the decision falls back to memory once the deadline passes.
          assert.isTrue((yield* limiter.decide(subject)).allowed)
          assert.strictEqual(yield* limiter.status, "warn")
          proxy.stall(false)
        }).pipe(Effect.provide(RateLimiter.layerRedis({ ...options, failure: "open" })))
      }).pipe(Effect.scoped),
    20_000
  )
})

const startServer = (env: Record<string, string>) =>
  new Promise<{ port: number; kill: () => void }>((resolve, reject) => {
    const child = spawn(process.execPath, [
      "--import",
      "tsx",
      fileURLToPath(new URL("./fixture/server.ts", import.meta.url))
    ], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`fixture did not start: ${output}`))
    }, 30_000)
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString()
      const match = /PORT=(\d+)/.exec(output)
      if (match !== null) {
        clearTimeout(timer)
        resolve({ port: Number(match[1]), kill: () => child.kill("SIGTERM") })
      }
    })
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`fixture exited with ${code}: ${output}`))
    })
  })

describe.runIf(await Services.redis())("two server processes sharing one Redis", () => {
  afterAll(cleanup)
  it("never admit more than the limit in total under concurrent load", async () => {
    const limit = 100
    const env = {
      REDIS_URL: Services.redisUrl,
      RATE_LIMIT_REDIS_PREFIX: `${prefix}2p:`,
      RATE_LIMIT_DEFAULT: "off",
      RATE_LIMIT_POLICIES: JSON.stringify([
        { name: "burst", limit, window: "1h", scope: ["api-key"] },
        { name: "hourly", algorithm: "sliding-window", limit: 1000, window: "1h", scope: ["api-key"] }
      ])
    }
    const servers = await Promise.all([startServer(env), startServer(env)])
    try {
      const total = 400
      let next = 0
      const counts = new Map<number, number>()
      const worker = async (w: number) => {
        while (next < total) {
          next++
          const port = servers[w % 2]!.port
          const response = await fetch(`http://127.0.0.1:${port}/api/v1/things`, { headers: { "x-api-key": "shared" } })
          await response.arrayBuffer()
          counts.set(response.status, (counts.get(response.status) ?? 0) + 1)
        }
      }
      await Promise.all(Array.from({ length: 40 }, (_, w) => worker(w)))
      assert.strictEqual(counts.get(200), limit)
      assert.strictEqual(counts.get(429), total - limit)
    } finally {
      for (const server of servers) server.kill()
    }
  }, 60_000)
})
