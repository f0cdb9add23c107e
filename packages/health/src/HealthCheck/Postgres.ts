/**
 * The PostgreSQL health check: `SELECT 1` through the `SqlClient` of `effect/sql` (so it checks whatever client the
 * application uses: `@effect/sql-pg` or the embedded default). The observed value is the response time in ms.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import * as HealthCheck from "../HealthCheck.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Default `postgres:responseTime`. */
  readonly name?: string | undefined
  /** Default true: the event store is the source of truth. */
  readonly critical?: boolean | undefined
  readonly timeout?: Duration.Input | undefined
  readonly cacheTtl?: Duration.Input | undefined
  readonly probes?: ReadonlyArray<HealthCheck.Probe> | undefined
  /** A round trip slower than this is `warn`. */
  readonly warnAfter?: Duration.Input | undefined
}

/**
 * The check.
 *
 * @since 0.1.0
 * @category constructors
 */
export const check = (options: Options = {}): HealthCheck.Check<SqlClient.SqlClient> => {
  const warnAfter = options.warnAfter === undefined ? undefined : Duration.fromInputUnsafe(options.warnAfter)
  return {
    name: options.name ?? "postgres:responseTime",
    componentType: "datastore",
    componentId: "postgres",
    critical: options.critical ?? true,
    ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
    ...(options.cacheTtl !== undefined ? { cacheTtl: options.cacheTtl } : {}),
    ...(options.probes !== undefined ? { probes: options.probes } : {}),
    run: Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const [elapsed] = yield* Effect.timed(sql`SELECT 1`.withoutTransform)
      const measured = { observedValue: Math.round(Duration.toMillis(elapsed)), observedUnit: "ms" }
      return warnAfter !== undefined && Duration.isGreaterThan(elapsed, warnAfter)
        ? HealthCheck.warn(`slower than ${Duration.format(warnAfter)}`, measured)
        : HealthCheck.pass(measured)
    })
  }
}

/**
 * Registers the check for the lifetime of the Layer.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { HealthCheck, HealthCheckPostgres } from "@ouroboros/health"
 * import { PgClient } from "@effect/sql-pg"
 * import { Layer, Redacted } from "effect"
 * const Health = HealthCheckPostgres.layer().pipe(
 *   Layer.provideMerge(HealthCheck.layer()),
 *   Layer.provide(PgClient.layer({ url: Redacted.make("postgres://localhost/app") }))
 * )
 */
export const layer = (options?: Options): Layer.Layer<never, never, HealthCheck.HealthCheck | SqlClient.SqlClient> =>
  HealthCheck.layerCheck(check(options))
