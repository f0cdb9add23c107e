import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { HealthCheck, HealthCheckPostgres, HealthHttp } from "@ouroboros/health"
import { Services } from "@ouroboros/testkit"
import { Duration, Effect, Layer, Redacted, References, Schedule } from "effect"
import type { Scope } from "effect"
import * as Net from "node:net"

/** A TCP proxy to PostgreSQL that the test can stop (dropping every connection) and start again on the same port. */
interface Proxy {
  readonly port: number
  readonly stop: Effect.Effect<void>
  readonly start: Effect.Effect<void>
}

const proxy = (host: string, port: number): Effect.Effect<Proxy, never, Scope.Scope> =>
  Effect.gen(function*() {
    const sockets = new Set<Net.Socket>()
    let server: Net.Server | undefined
    let listening = 0
    const listen = (at: number) =>
      Effect.callback<number>((resume) => {
        const next = Net.createServer((client) => {
          const upstream = Net.connect(port, host)
          sockets.add(client)
          sockets.add(upstream)
          const drop = () => {
            client.destroy()
            upstream.destroy()
            sockets.delete(client)
            sockets.delete(upstream)
          }
          client.on("error", drop).on("close", drop)
          upstream.on("error", drop).on("close", drop)
          client.pipe(upstream).pipe(client)
        })
        server = next
        next.listen(at, "127.0.0.1", () => resume(Effect.succeed((next.address() as Net.AddressInfo).port)))
      })
    const stop = Effect.callback<void>((resume) => {
      for (const socket of sockets) socket.destroy()
      sockets.clear()
      if (server === undefined) return resume(Effect.void)
      const current = server
      server = undefined
      current.close(() => resume(Effect.void))
    })
    listening = yield* listen(0)
    yield* Effect.addFinalizer(() => stop)
    return { port: listening, stop, start: Effect.asVoid(listen(listening)) }
  })

const quiet = Layer.succeed(References.MinimumLogLevel, "None")

describe.runIf(await Services.postgres())("Postgres health check", () => {
  it.live("a PostgreSQL that goes down turns ready to 503 while live stays 200, and ready recovers", () =>
    Effect.gen(function*() {
      const target = new URL(Services.postgresUrl)
      const tcp = yield* proxy(target.hostname, Number(target.port === "" ? 5432 : target.port))
      const url = new URL(Services.postgresUrl)
      url.hostname = "127.0.0.1"
      url.port = String(tcp.port)
      const context = yield* Layer.build(
        HealthCheckPostgres.layer({ timeout: "1 second", cacheTtl: 0 }).pipe(
          Layer.provideMerge(HealthCheck.layer({ initialPhase: "serving" })),
          Layer.provide(PgClient.layer({ url: Redacted.make(url.toString()), connectTimeout: "500 millis" })),
          Layer.provideMerge(quiet)
        )
      )
      const status = (probe: HealthCheck.Probe) =>
        Effect.map(HealthCheck.report(probe), (report) => ({
          code: HealthHttp.statusCode(report),
          report
        })).pipe(Effect.provide(context))

      const up = yield* status("ready")
      assert.strictEqual(up.code, 200)
      const result = up.report.checks["postgres:responseTime"]![0]!
      assert.strictEqual(result.status, "pass")
      assert.strictEqual(result.componentType, "datastore")
      assert.strictEqual(result.observedUnit, "ms")
      assert.isNumber(result.observedValue)

      yield* tcp.stop
      const [elapsed, down] = yield* Effect.timed(status("ready"))
      assert.strictEqual(down.code, 503)
      assert.strictEqual(down.report.status, "fail")
      assert.strictEqual(down.report.output, "failing: postgres:responseTime")
      const failed = down.report.checks["postgres:responseTime"]![0]!
      assert.strictEqual(failed.status, "fail")
      assert.isTrue(
        failed.output === "check failed (SqlError)" || failed.output === "timed out after 1s",
        `unexpected output ${failed.output}`
      )
      assert.isAtMost(Duration.toMillis(elapsed), 1500)
      assert.strictEqual((yield* status("live")).code, 200)

      yield* tcp.start
      const recovered = yield* status("ready").pipe(
        Effect.filterOrFail((s) => s.code === 200, () => "still down"),
        Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo({ duration: "10 seconds" })))
      )
      assert.strictEqual(recovered.code, 200)
      assert.strictEqual(recovered.report.status, "pass")
      assert.strictEqual((yield* status("live")).code, 200)
    }), 30_000)

  it.live("warns when the round trip is slower than warnAfter", () =>
    Effect.gen(function*() {
      const health = yield* HealthCheck.make({ initialPhase: "serving" })
      yield* health.register(HealthCheckPostgres.check({ name: "postgres:slow", warnAfter: 0, critical: true }))
      yield* health.register(HealthCheckPostgres.check({ warnAfter: "10 seconds" }))
      const report = yield* health.report("ready")
      assert.strictEqual(report.status, "warn")
      assert.strictEqual(report.checks["postgres:slow"]![0]!.output, "slower than 0")
      assert.strictEqual(report.checks["postgres:responseTime"]![0]!.status, "pass")
    }).pipe(
      Effect.provide(PgClient.layer({ url: Redacted.make(Services.postgresUrl) })),
      Effect.provide(quiet)
    ))
})
