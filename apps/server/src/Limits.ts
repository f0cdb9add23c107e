/**
 * Rate limiting, per-principal concurrency limits and load shedding for the server: policies from `RATE_LIMIT_*` and
 * the config file's `rateLimit` section, keyed by the request's principal (tenant, tier and subject, as
 * `@ouroboros/tenancy` resolved it once), and by client address for anonymous and refused requests.
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
import { TenancyHttp } from "@ouroboros/tenancy"
import { Config, Effect, Layer } from "effect"
import type { HttpServerRequest, HttpServerResponse } from "effect/http"
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
  run: Effect.flatMap(
    Effect.service(RateLimiter.RateLimiter),
    (limiter) =>
      Effect.map(
        limiter.status,
        (status) => status === "pass" ? HealthCheck.pass() : HealthCheck.warn("the rate-limit store is unreachable")
      )
  )
})

// The limiter's own resolver gives the client address and the endpoint. It would also hash `X-API-Key` for a subject
// of its own, which the principal replaces: pointing it at a header no request carries saves a SHA-256 per request.
const noKeyHeader = "x-ouroboros-no-key"

/**
 * The subject of a request: its principal (tenant, tier, subject) when it authenticated, else its client address
 * only — a refused or unknown key never gets a bucket of its own.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolver = (trustedProxies: ReadonlyArray<string>): RateLimiterHttp.KeyResolver =>
  TenancyHttp.limiterResolver(RateLimiterHttp.defaultResolver({ trustedProxies, apiKeyHeader: noKeyHeader }))

/**
 * The client's address as the limiter resolves it (trusted `X-Forwarded-For`), for the access log and the audit log.
 *
 * @since 0.1.0
 * @category constructors
 */
export const clientAddress = (
  trustedProxies: ReadonlyArray<string>
): (request: HttpServerRequest.HttpServerRequest) => string => {
  const base = RateLimiterHttp.defaultResolver({ trustedProxies, apiKeyHeader: noKeyHeader })
  return (request) => base(request).client
}

/**
 * The key of the concurrency limiter: the principal, else the client address.
 *
 * @since 0.1.0
 * @category constructors
 */
export const concurrencyKey = (
  trustedProxies: ReadonlyArray<string>
): (request: HttpServerRequest.HttpServerRequest) => string => {
  const base = RateLimiterHttp.defaultResolver({ trustedProxies, apiKeyHeader: noKeyHeader })
  return (request) => {
    const outcome = TenancyHttp.authenticationOf(request)
    return outcome._tag === "Authenticated"
      ? `p=${outcome.principal.tenantId}/${outcome.principal.subject}`
      : `ip=${base(request).client}`
  }
}

/**
 * `RATE_LIMIT_TRUSTED_PROXIES`: the proxies whose `X-Forwarded-For` is believed.
 *
 * @since 0.1.0
 * @category config
 */
export const trustedProxies = Config.String("RATE_LIMIT_TRUSTED_PROXIES").pipe(
  Config.withDefault(""),
  Config.map((s) => s.split(",").map((p) => p.trim()).filter((p) => p !== ""))
)

/**
 * The limiting middlewares, outermost first: load shedding, the request rate, concurrency per principal. They run
 * inside `TenancyHttp`'s middleware, whose outcome they read.
 *
 * @since 0.1.0
 * @category middleware
 */
export const middleware = Effect.gen(function*() {
  const proxies = yield* trustedProxies
  const shed = yield* LoadShedderHttp.make()
  const rate = yield* RateLimiterHttp.make({ resolve: resolver(proxies) })
  const concurrency = yield* ConcurrencyLimiterHttp.make({ key: concurrencyKey(proxies) })
  return <E, R>(
    app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
  ): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest> =>
    shed(rate(concurrency(app)))
})
