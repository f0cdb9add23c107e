/**
 * The HTTP side of quotas: the problems a quota answers with, and a middleware that counts each authenticated request
 * against its tenant's `requestsPerDay`.
 *
 * - `requestsPerDay` (rate-like) is a 429 with `Retry-After` (until the next UTC day) and the IETF RateLimit fields
 *   `RateLimit-Policy: "requests-per-day";q=<limit>;w=86400` and `RateLimit: "requests-per-day";r=0;t=<seconds>`,
 *   formatted by `@ouroboros/rate-limit`'s `RateLimiterHttp.headers`.
 * - `documents`, `storedBytes`, `llmTokensPerMonth` (hard) are a 403.
 *
 * Both problems name the quota, its limit and its usage as extension members (`quota`, `limit`, `usage`).
 *
 * @since 0.1.0
 */
import { Problem, RequestContext, ResponseHeaders, type TenantId } from "@ouroboros/kernel"
import { RateLimiter, RateLimiterHttp } from "@ouroboros/rate-limit"
import { Clock, Context, Deferred, Effect, Layer, Option, Result, Schema } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { HttpApiMiddleware } from "effect/http-api"
import * as Quotas from "./Quotas.js"
import { CurrentAuthentication } from "./TenancyHttp.js"

/**
 * 429: the tenant's requests of the day are used up.
 *
 * @since 0.1.0
 * @category errors
 */
export class RequestQuotaExceeded extends Schema.TaggedError<RequestQuotaExceeded>()(
  "RequestQuotaExceeded",
  {
    type: Schema.Literal(RateLimiterHttp.quotaExceededType),
    title: Schema.String,
    detail: Schema.String,
    quota: Quotas.QuotaName,
    limit: Schema.Number,
    usage: Schema.Number,
    retryAfter: Schema.Number
  },
  { httpApiStatus: 429, description: "A rate-like quota (requests per day) is used up" }
) {}

/**
 * 403: a hard quota (documents, stored bytes, LLM tokens of the month) is used up.
 *
 * @since 0.1.0
 * @category errors
 */
export class QuotaExhausted extends Schema.TaggedError<QuotaExhausted>()(
  "QuotaExhausted",
  {
    type: Schema.Literal(RateLimiterHttp.quotaExceededType),
    title: Schema.String,
    detail: Schema.String,
    quota: Quotas.QuotaName,
    limit: Schema.Number,
    usage: Schema.Number
  },
  { httpApiStatus: 403, description: "A hard quota (documents, stored bytes, LLM tokens) is used up" }
) {}

/**
 * The errors to declare on endpoints that consume quotas.
 *
 * @since 0.1.0
 * @category errors
 */
export const errors = [RequestQuotaExceeded, QuotaExhausted] as const

/**
 * A middleware that only declares {@link errors}: add it to a group whose handlers consume quotas
 * (`Group.middleware(QuotasHttp.Errors)`), and provide {@link layerErrors}. Its errors become the group's (encoded as
 * problems, listed in OpenAPI), so a handler of a group defined elsewhere — or of an older API version served through
 * version changes — can fail with them without redefining the group's endpoints.
 *
 * @since 0.1.0
 * @category errors
 */
export class Errors extends HttpApiMiddleware.Service<Errors>()("@ouroboros/tenancy/QuotaErrors", {
  error: errors
}) {}

/**
 * The implementation of {@link Errors}: it passes every request through.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerErrors: Layer.Layer<Errors> = Layer.succeed(Errors, (effect) => effect)

const policyName = "requests-per-day"
const policies = new Map<number, RateLimiter.Policy>()

const policyOf = (limit: number): RateLimiter.Policy => {
  let policy = policies.get(limit)
  if (policy === undefined) {
    policy = new RateLimiter.Policy({ name: policyName, limit, window: 86_400_000 })
    if (policies.size > 1000) policies.clear()
    policies.set(limit, policy)
  }
  return policy
}

/**
 * The IETF RateLimit fields of an exhausted `requestsPerDay` quota.
 *
 * @since 0.1.0
 * @category utils
 */
export const rateLimitHeaders = (error: Quotas.QuotaExceeded): Record<string, string> => {
  const wait = (error.retryAfter ?? 1) * 1000
  return RateLimiterHttp.headers({
    allowed: false,
    policies: [{
      policy: policyOf(error.limit),
      key: error.tenantId,
      allowed: false,
      remaining: 0,
      resetAfterMillis: wait,
      retryAfterMillis: wait
    }],
    violated: [policyName],
    remaining: 0,
    resetAfterMillis: wait,
    retryAfterMillis: wait
  })
}

const detailOf = (error: Quotas.QuotaExceeded) =>
  `the ${error.quota} quota of tenant ${error.tenantId} is used up (${error.usage} of ${error.limit})`

/**
 * The problem of a quota error: a 429 for `requestsPerDay` (its RateLimit fields and `Retry-After` are set on the
 * response), a 403 for the others.
 *
 * @since 0.1.0
 * @category errors
 * @example
 * import { TenantId } from "@ouroboros/kernel"
 * import { Quotas, QuotasHttp } from "@ouroboros/tenancy"
 * import { Effect } from "effect"
 *
 * // in a handler: a used-up quota is a 429 (requests per day) or a 403 problem
 * const ingest = (tenantId: TenantId.TenantId, storedBytes: number) =>
 *   Effect.flatMap(Quotas.Quotas, (quotas) => quotas.consume(tenantId, { documents: 1, storedBytes })).pipe(
 *     Effect.catchTag("QuotaExceeded", QuotasHttp.toProblem)
 *   )
 */
export const toProblem = (
  error: Quotas.QuotaExceeded
): Effect.Effect<never, RequestQuotaExceeded | QuotaExhausted> => {
  if (error.quota === "requestsPerDay") {
    const headers = rateLimitHeaders(error)
    return Effect.andThen(
      Effect.forEach(Object.entries(headers), ([name, value]) => ResponseHeaders.set(name, value), { discard: true }),
      Effect.fail(
        new RequestQuotaExceeded({
          type: RateLimiterHttp.quotaExceededType,
          title: "Request cannot be satisfied as assigned quota has been exceeded",
          detail: detailOf(error),
          quota: error.quota,
          limit: error.limit,
          usage: error.usage,
          retryAfter: error.retryAfter ?? 1
        })
      )
    )
  }
  return Effect.fail(
    new QuotaExhausted({
      type: RateLimiterHttp.quotaExceededType,
      title: "Quota exhausted",
      detail: detailOf(error),
      quota: error.quota,
      limit: error.limit,
      usage: error.usage
    })
  )
}

/**
 * The 429 response of an exhausted `requestsPerDay` quota, for a middleware (outside HttpApi).
 *
 * @since 0.1.0
 * @category utils
 */
export const limitedResponse = (error: Quotas.QuotaExceeded): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  Effect.map(RequestContext.correlationId, (id) => {
    const retryAfter = error.retryAfter ?? 1
    const body = {
      type: RateLimiterHttp.quotaExceededType,
      title: "Request cannot be satisfied as assigned quota has been exceeded",
      status: 429,
      detail: detailOf(error),
      quota: error.quota,
      limit: error.limit,
      usage: error.usage,
      retryAfter,
      ...(Option.isSome(id) ? { correlationId: id.value } : {})
    }
    return HttpServerResponse.jsonUnsafe(body, {
      status: 429,
      contentType: Problem.contentType,
      headers: { ...rateLimitHeaders(error), "retry-after": String(retryAfter) }
    })
  })

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Paths not counted (default: `/health`, `/health/*`, `/metrics`). */
  readonly exempt?: ((path: string) => boolean) | undefined
  /** The largest block of requests a replica takes from the store at once (default 1000). */
  readonly maxLease?: number | undefined
}

const pathOf = (url: string) => {
  const q = url.indexOf("?")
  return q === -1 ? url : url.slice(0, q)
}

/**
 * Counts every request of an authenticated tenant principal against `requestsPerDay` and answers 429 once the day's
 * quota is used up (the admin key is not counted, nor is a tenant whose quota is unlimited). It reads the principal
 * that `TenancyHttp.middleware` resolved, so it must run inside it.
 *
 * Requests are counted in leases: a replica takes a block of the day's requests from the store at once (one atomic
 * `consume`, so replicas sharing PostgreSQL never take more than the quota together) and spends it in memory, one
 * request at a time, before it takes the next. A block is 1% of the quota (at least 1, at most `maxLease`); near the
 * limit a replica takes what is left. So the store is asked about once per block rather than per request, the quota is
 * never exceeded, and at worst each replica leaves the rest of one block unused at the end of a day. Once the quota is
 * used up, a replica refuses without asking the store for a second at a time. When the counter
 * store fails, the request is served and a warning logged (the daily quota fails open; hard quotas, checked by the
 * server at ingest and ask, do not).
 *
 * @since 0.1.0
 * @category middleware
 */
export const make = (options: Options = {}): Effect.Effect<
  <E, R>(
    app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
  ) => Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest>,
  never,
  Quotas.Quotas
> =>
  Effect.map(Effect.service(Quotas.Quotas), (quotas) => {
    const exempt = options.exempt ?? RateLimiterHttp.isExempt
    const maxLease = Math.max(1, Math.trunc(options.maxLease ?? 1000))
    const leases = new Map<string, Lease>()

    // Takes the next block of the day for a tenant: undefined when the request may go on, the refusal otherwise.
    const refill = (tenantId: TenantId.TenantId, lease: Lease, now: number) =>
      Effect.gen(function*() {
        const limits = yield* Effect.result(quotas.limits(tenantId))
        // A tenant deleted in the meantime is the handler's to answer.
        if (Result.isFailure(limits)) return undefined
        const limit = limits.success.requestsPerDay
        if (limit === null) {
          // Unlimited for now: asked again after a while (a tier or an override may change).
          lease.unlimitedUntil = now + unlimitedRecheckMillis
          return undefined
        }
        let want = Math.max(1, Math.min(maxLease, Math.floor(limit / 100)))
        for (let attempt = 0;; attempt++) {
          const taken = yield* Effect.result(quotas.consume(tenantId, { requestsPerDay: want }))
          if (Result.isSuccess(taken)) {
            lease.remaining += want - 1
            return undefined
          }
          const error = taken.failure
          if (error._tag !== "QuotaExceeded") return undefined
          // Less than a block is left: take what is left (another replica may take it first: try again).
          const left = error.limit - error.usage
          if (left <= 0 || attempt >= 3) {
            // Refused here without asking the store again for a while (the quota may be raised meanwhile).
            lease.refusedUntil = now + refusalRecheckMillis
            lease.refusal = error
            return error
          }
          want = left
        }
      }).pipe(
        // A counter store that fails does not stop traffic (the daily quota fails open): logged, and served.
        Effect.catchDefect((defect) =>
          Effect.as(
            Effect.logWarning("the request quota could not be counted", defect).pipe(
              Effect.annotateLogs({ service: "tenancy" })
            ),
            undefined
          )
        )
      )

    const admit = (tenantId: TenantId.TenantId, clock: Clock.Clock): Effect.Effect<Quotas.QuotaExceeded | undefined> =>
      Effect.suspend(() => {
        const now = clock.currentTimeMillisUnsafe()
        const day = Math.floor(now / dayMillis)
        let lease = leases.get(tenantId)
        if (lease === undefined || lease.day !== day) {
          // Yesterday's unused requests are gone with it.
          lease = { day, remaining: 0, unlimitedUntil: 0, refusedUntil: 0, refusal: undefined, refilling: undefined }
          leases.set(tenantId, lease)
        }
        if (lease.unlimitedUntil > now) return Effect.undefined
        if (lease.remaining > 0) {
          lease.remaining--
          return Effect.undefined
        }
        if (lease.refusedUntil > now) return Effect.succeed(lease.refusal)
        const pending = lease.refilling
        // One refill at a time per tenant: the others wait for it, then take from its block.
        if (pending !== undefined) return Effect.andThen(Deferred.await(pending), admit(tenantId, clock))
        const current = lease
        return Effect.flatMap(Deferred.make<void>(), (done) => {
          current.refilling = done
          return refill(tenantId, current, now).pipe(
            Effect.ensuring(Effect.suspend(() => {
              current.refilling = undefined
              return Deferred.succeed(done, undefined)
            }))
          )
        })
      })

    return <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
      Effect.withFiber<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest>((fiber) => {
        const outcome = fiber.getRef(CurrentAuthentication)
        if (outcome._tag !== "Authenticated" || outcome.principal.method === "admin-key") return app
        const request = Context.getUnsafe(fiber.context, HttpServerRequest.HttpServerRequest)
        if (exempt(pathOf(request.url))) return app
        const clock = fiber.getRef(Clock.Clock)
        const tenantId = outcome.principal.tenantId
        // The common case, a request taken from this replica's lease, allocates nothing.
        const lease = leases.get(tenantId)
        if (lease !== undefined && lease.remaining > 0) {
          const now = clock.currentTimeMillisUnsafe()
          if (lease.day === Math.floor(now / dayMillis)) {
            lease.remaining--
            return app
          }
        }
        return Effect.flatMap(admit(tenantId, clock), (exceeded) =>
          exceeded === undefined ? app : limitedResponse(exceeded))
      })
  })

const dayMillis = 86_400_000
const unlimitedRecheckMillis = 30_000
const refusalRecheckMillis = 1_000

interface Lease {
  readonly day: number
  /** Requests of this replica's block not spent yet. */
  remaining: number
  /** The tenant's quota is unlimited until then (epoch milliseconds). */
  unlimitedUntil: number
  /** The day's quota is used up: refused without asking the store until then (epoch milliseconds). */
  refusedUntil: number
  refusal: Quotas.QuotaExceeded | undefined
  refilling: Deferred.Deferred<void> | undefined
}

/**
 * {@link make} as a global router middleware (build it after `TenancyHttp.layer`: provide that layer to this one).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<never, never, HttpRouter.HttpRouter | Quotas.Quotas> =>
  HttpRouter.middleware(
    Effect.map(
      make(options),
      (count) => (effect: Effect.Effect<HttpServerResponse.HttpServerResponse, any>) =>
        count(effect) as Effect.Effect<HttpServerResponse.HttpServerResponse, any>
    ),
    { global: true }
  ) as Layer.Layer<never, never, HttpRouter.HttpRouter | Quotas.Quotas>
