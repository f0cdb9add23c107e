/**
 * Rate limiting, per-key concurrency limits and load shedding for the server: policies from `RATE_LIMIT_*` and the
 * config file's `rateLimit` section, keys by API key, tenant (and its tier), client address and endpoint.
 *
 * @since 0.1.0
 */
import { HealthCheck } from "@ouroboros/health"
import {
  ConcurrencyLimiter,
  ConcurrencyLimiterHttp,
  LoadShedder,
  LoadShedderHttp,
  RateLimiter,
  RateLimiterHttp
} from "@ouroboros/rate-limit"
import { Config, Effect, Layer, Option } from "effect"
import type { HttpServerRequest, HttpServerResponse } from "effect/http"
import { KeyRing } from "./Authentication.js"
import type { ConfigFile } from "./ServerConfig.js"

/**
 * The limiter (memory, or Redis when `REDIS_URL` is set, failing open or closed as configured), the concurrency
 * limiter and the load shedder.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (file: ConfigFile) =>
  Layer.mergeAll(
    RateLimiter.layerConfig({ policies: file.rateLimit ?? [] }),
    ConcurrencyLimiter.layerConfig,
    LoadShedder.layerConfig
  )

/**
 * A `warn` while the shared limiter's Redis is unreachable (the limiter then fails open or closed as configured).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerHealth = HealthCheck.layerCheck({
  name: "rate-limit:store",
  componentType: "datastore",
  critical: false,
  run: Effect.flatMap(Effect.service(RateLimiter.RateLimiter), (limiter) =>
    Effect.map(limiter.status, (status) =>
      status === "pass" ? HealthCheck.pass() : HealthCheck.warn("the rate-limit store is unreachable")))
})

/**
 * The subject of a request: the default resolver's hashed API key, client address and endpoint, plus the tenant and
 * tier the key belongs to.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolver = (
  ring: KeyRing["Service"],
  tiers: ReadonlyMap<string, string>,
  trustedProxies: ReadonlyArray<string>
): RateLimiterHttp.KeyResolver => {
  const base = RateLimiterHttp.defaultResolver({ trustedProxies })
  return (request: HttpServerRequest.HttpServerRequest) => {
    const subject = base(request)
    const key = request.headers["x-api-key"]
    if (key === undefined || key === "") return subject
    const principal = ring.resolve(key)
    if (Option.isNone(principal)) return subject
    const tenant = principal.value.tenantId
    const tier = tiers.get(tenant)
    return { apiKey: subject.apiKey, client: subject.client, endpoint: subject.endpoint, tenant, tier }
  }
}

/**
 * The limiting middlewares, outermost first: load shedding, the request rate, concurrency per key.
 *
 * @since 0.1.0
 * @category middleware
 */
export const middleware = (file: ConfigFile) =>
  Effect.gen(function*() {
    const ring = yield* KeyRing
    const trustedProxies = yield* Config.String("RATE_LIMIT_TRUSTED_PROXIES").pipe(
      Config.withDefault(""),
      Config.map((s) => s.split(",").map((p) => p.trim()).filter((p) => p !== ""))
    )
    const tiers = new Map(file.tenants.map((t) => [t.id, t.tier] as const))
    const shed = yield* LoadShedderHttp.make()
    const rate = yield* RateLimiterHttp.make({ resolve: resolver(ring, tiers, trustedProxies) })
    const concurrency = yield* ConcurrencyLimiterHttp.make()
    return <E, R>(
      app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
    ): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest> =>
      shed(rate(concurrency(app)))
  })
