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
import { Problem, RequestContext, ResponseHeaders } from "@ouroboros/kernel"
import { RateLimiter, RateLimiterHttp } from "@ouroboros/rate-limit"
import { Context, Effect, Layer, Option, Schema } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
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
 * import { QuotasHttp } from "@ouroboros/tenancy"
 * import { Effect } from "effect"
 * // quotas.consume(tenantId, { documents: 1, storedBytes })
 * //   .pipe(Effect.catchTag("QuotaExceeded", QuotasHttp.toProblem))
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
}

const pathOf = (url: string) => {
  const q = url.indexOf("?")
  return q === -1 ? url : url.slice(0, q)
}

/**
 * Counts every request of an authenticated tenant principal against `requestsPerDay` (one atomic increment; the admin
 * key is not counted) and answers 429 once the day's quota is used up. It reads the principal that
 * `TenancyHttp.middleware` resolved, so it must run inside it. When the counter store fails, the request is served
 * and a warning logged (the daily quota fails open; hard quotas, checked by the server at ingest and ask, do not).
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
    return <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
      Effect.withFiber<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest>((fiber) => {
        const outcome = fiber.getRef(CurrentAuthentication)
        if (outcome._tag !== "Authenticated" || outcome.principal.method === "admin-key") return app
        const request = Context.getUnsafe(fiber.context, HttpServerRequest.HttpServerRequest)
        if (exempt(pathOf(request.url))) return app
        return quotas.consume(outcome.principal.tenantId, { requestsPerDay: 1 }).pipe(
          Effect.matchEffect({
            onFailure: (error) => error._tag === "QuotaExceeded" ? limitedResponse(error) : app,
            onSuccess: () => app
          }),
          // A counter store that fails does not stop traffic (the daily quota fails open): logged, and served.
          Effect.catchDefect((defect) =>
            Effect.andThen(
              Effect.logWarning("the request quota could not be counted", defect).pipe(
                Effect.annotateLogs({ service: "tenancy" })
              ),
              app
            )
          )
        )
      })
  })

/**
 * {@link make} as a global router middleware (build it after `TenancyHttp.layer`: provide that layer to this one).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<never, never, HttpRouter.HttpRouter | Quotas.Quotas> =>
  HttpRouter.middleware(
    Effect.map(make(options), (count) => (effect: Effect.Effect<HttpServerResponse.HttpServerResponse, any>) =>
      count(effect) as Effect.Effect<HttpServerResponse.HttpServerResponse, any>),
    { global: true }
  ) as Layer.Layer<never, never, HttpRouter.HttpRouter | Quotas.Quotas>
