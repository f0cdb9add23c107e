/**
 * The RateLimiter service: named policies (token bucket or sliding window) applied by API key, tenant, client address
 * and endpoint, checked together and atomically against a store (memory or Redis), with the decision a caller needs:
 * allowed, remaining, reset time and retry-after.
 *
 * @since 0.1.0
 */
import {
  Clock,
  Config,
  Context,
  Duration,
  Effect,
  Layer,
  Metric,
  Option,
  Redacted,
  Schema,
  SchemaGetter,
  SchemaIssue
} from "effect"
import type { RateLimiter as Persistence } from "effect/persistence"
import * as Memory from "./RateLimiter/Memory.js"
import type * as Redis from "./RateLimiter/Redis.js"
import {
  Algorithm,
  type Check,
  type CheckResult,
  fullKey,
  RateLimiterStore,
  RateLimitStoreError,
  type Status,
  toContext
} from "./RateLimiterStore.js"

export {
  /**
   * @since 0.1.0
   * @category models
   */
  Algorithm,
  /**
   * @since 0.1.0
   * @category errors
   */
  RateLimitStoreError
}

/**
 * What a policy counts by. A policy with several kinds counts each combination separately (`["tenant", "endpoint"]`:
 * one counter per tenant and endpoint). `api-key` falls back to the client address for requests without a key, and
 * `tenant` to `anonymous`.
 *
 * @since 0.1.0
 * @category models
 */
export const KeyKind = Schema.Literals(["api-key", "tenant", "client", "endpoint", "global"])

/**
 * @since 0.1.0
 * @category models
 */
export type KeyKind = typeof KeyKind.Type

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

const parseWindow = (input: string): number | undefined => {
  const short = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(input)
  if (short !== null) return Math.round(Number(short[1]) * units[short[2]!]!)
  return Option.getOrUndefined(Option.map(Duration.fromInput(input as Duration.Input), Duration.toMillis))
}

/**
 * A window length: milliseconds, or a string such as `"1m"`, `"30s"`, `"1d"`, `"500ms"` or `"1 minute"`. Decodes to
 * whole milliseconds.
 *
 * @since 0.1.0
 * @category schemas
 */
export const WindowMillis = Schema.Union([
  Schema.Number,
  Schema.String.pipe(Schema.decodeTo(Schema.Number, {
    decode: SchemaGetter.transformEffect((input: string) => {
      const millis = parseWindow(input)
      return millis === undefined || !Number.isFinite(millis)
        ? Effect.fail(
          new SchemaIssue.InvalidValue({ message: `"${input}" is not a window such as "1m" or "30 seconds"` }, input)
        )
        : Effect.succeed(millis)
    }),
    encode: SchemaGetter.transform((millis: number) => `${millis}ms`)
  }))
]).pipe(
  Schema.decodeTo(Schema.Int.check(Schema.isGreaterThan(0, { message: "a window is at least 1 ms" }))),
  Schema.annotate({ identifier: "WindowMillis" })
)

/**
 * A rate-limit policy. `endpoints` restricts it to endpoints (`"/api/*"`, `"POST /api/v1/ask"`,
 * `"GET /api/v1/documents/:id"`; absent: every endpoint) and `tiers` to tenant tiers (absent: every tier).
 *
 * @since 0.1.0
 * @category models
 * @example
 * import { RateLimiter } from "@ouroboros/rate-limit"
 * const burst = RateLimiter.Policy.make({ name: "burst", limit: 10, window: 1000 })
 */
export class Policy extends Schema.Class<Policy>("@ouroboros/rate-limit/Policy")({
  name: Schema.String.check(
    Schema.isPattern(/^[A-Za-z0-9_.:-]{1,64}$/, { message: "a policy name is 1 to 64 of A-Z a-z 0-9 _ . : -" })
  ),
  algorithm: Algorithm.pipe(
    Schema.withDecodingDefaultTypeKey(Effect.succeed("token-bucket" as const)),
    Schema.withConstructorDefault(Effect.succeed("token-bucket" as const))
  ),
  limit: Schema.Int.check(Schema.isGreaterThan(0, { message: "a limit is a positive integer" })),
  window: WindowMillis,
  scope: Schema.Array(KeyKind).pipe(
    Schema.withDecodingDefaultTypeKey(Effect.succeed(["api-key" as const])),
    Schema.withConstructorDefault(Effect.succeed(["api-key" as const]))
  ),
  endpoints: Schema.optional(Schema.Array(Schema.String)),
  tiers: Schema.optional(Schema.Array(Schema.String))
}) {}

/**
 * A list of policies, as configuration files hold them.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PolicySet = Schema.Array(Policy).check(
  Schema.makeFilter((policies) => {
    const seen = new Set<string>()
    for (const policy of policies) {
      if (seen.has(policy.name)) return `policy "${policy.name}" is defined twice`
      seen.add(policy.name)
    }
    return undefined
  })
)

/**
 * `"100/1m"`: `limit/window`, the compact form of `RATE_LIMIT_DEFAULT`; `"off"` disables the default policy.
 *
 * @since 0.1.0
 * @category schemas
 */
export const LimitPerWindow = Schema.String.pipe(Schema.decodeTo(
  Schema.Struct({
    limit: Schema.Int.check(Schema.isGreaterThan(0)),
    window: Schema.Int.check(Schema.isGreaterThan(0))
  }),
  {
    decode: SchemaGetter.transformEffect((input: string) => {
      const parsed = parseLimitPerWindow(input)
      return parsed === undefined
        ? Effect.fail(new SchemaIssue.InvalidValue({ message: `"${input}" is not a limit such as "100/1m"` }, input))
        : Effect.succeed(parsed)
    }),
    encode: SchemaGetter.transform(({ limit, window }: { readonly limit: number; readonly window: number }) =>
      `${limit}/${window}ms`
    )
  }
))

const parseLimitPerWindow = (input: string): { readonly limit: number; readonly window: number } | undefined => {
  const match = /^\s*(\d+)\s*\/\s*(.+)$/.exec(input)
  const window = match === null ? undefined : parseWindow(match[2]!)
  return match === null || window === undefined || !(window > 0)
    ? undefined
    : { limit: Number(match[1]), window: Math.round(window) }
}

/**
 * The out-of-the-box policy: `limit` requests per `window` per API key on every `/api` route.
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaultPolicy = (limit = 100, window = 60_000): Policy =>
  Policy.make({ name: "default", limit, window, scope: ["api-key"], endpoints: ["/api/*"] })

/**
 * The policy that limits the operator endpoints: `limit` requests per `window` per client address on `/admin` and
 * everything under it, whatever the credentials (so that guessing admin keys is slow too).
 *
 * @since 0.1.0
 * @category constructors
 */
export const adminPolicy = (limit = 60, window = 60_000): Policy =>
  Policy.make({ name: "admin", limit, window, scope: ["client"], endpoints: ["/admin/*"] })

/**
 * The policy that limits the API documents: `limit` requests per `window` per client address on `/docs` (Swagger UI),
 * `/openapi.json` and `/api/<version>/openapi.json`, which are large and public.
 *
 * @since 0.1.0
 * @category constructors
 */
export const docsPolicy = (limit = 30, window = 60_000): Policy =>
  Policy.make({
    name: "docs",
    limit,
    window,
    scope: ["client"],
    endpoints: ["/docs/*", "/openapi.json", "/api/*/openapi.json"]
  })

/**
 * Who and what a request is, as far as limits care.
 *
 * @since 0.1.0
 * @category models
 */
export interface Subject {
  readonly apiKey?: string | undefined
  readonly tenant?: string | undefined
  readonly tier?: string | undefined
  /** The client address. */
  readonly client: string
  /** `METHOD /path`, e.g. `GET /api/v1/documents/abc`. */
  readonly endpoint: string
}

/**
 * The outcome of one policy for one request.
 *
 * @since 0.1.0
 * @category models
 */
export interface PolicyDecision extends CheckResult {
  readonly policy: Policy
  readonly key: string
}

/**
 * The decision for one request. `remaining` is the least remaining over the policies, `retryAfterMillis` the longest
 * wait among violated ones, `violated` their names.
 *
 * @since 0.1.0
 * @category models
 */
export interface Decision {
  readonly allowed: boolean
  readonly policies: ReadonlyArray<PolicyDecision>
  readonly violated: ReadonlyArray<string>
  readonly remaining: number
  readonly resetAfterMillis: number
  readonly retryAfterMillis: number
}

/**
 * The request is over one or more policies; nothing was consumed. `retryAfter` is in seconds.
 *
 * @since 0.1.0
 * @category errors
 */
export class RateLimitExceeded extends Schema.TaggedError<RateLimitExceeded>()(
  "RateLimitExceeded",
  {
    detail: Schema.String,
    violatedPolicies: Schema.Array(Schema.String),
    retryAfter: Schema.Number
  },
  { httpApiStatus: 429, description: "A rate limit is exhausted" }
) {}

/**
 * Every error of this module.
 *
 * @since 0.1.0
 * @category errors
 */
export type RateLimiterError = RateLimitExceeded | RateLimitStoreError

/**
 * Options of one decision: its cost (default 1) and the policies to check instead of the applicable ones.
 *
 * @since 0.1.0
 * @category models
 */
export interface DecideOptions {
  readonly cost?: number | undefined
  readonly policies?: ReadonlyArray<Policy> | undefined
}

/**
 * The rate limiter.
 *
 * @since 0.1.0
 * @category services
 */
export class RateLimiter extends Context.Service<RateLimiter, {
  /** The configured policies. */
  readonly policies: ReadonlyArray<Policy>
  /** The policies that apply to a subject. */
  readonly applicable: (subject: Subject) => ReadonlyArray<Policy>
  /** Decides (and, when allowed, consumes) for the applicable policies, or the given ones. */
  readonly decide: (subject: Subject, options?: DecideOptions) => Effect.Effect<Decision, RateLimitStoreError>
  /**
   * `decide` synchronously at `now` (ms), when the store needs no I/O (memory); undefined otherwise. For hot paths
   * outside a fiber, or in one fiber step.
   */
  readonly decideUnsafe: ((subject: Subject, now: number, options?: DecideOptions) => Decision) | undefined
  /** Like `decide`, failing with `RateLimitExceeded` when not allowed. */
  readonly consume: (subject: Subject, options?: DecideOptions) => Effect.Effect<Decision, RateLimiterError>
  /** `warn` while the store runs degraded (Redis unreachable). */
  readonly status: Effect.Effect<Status>
}>()("@ouroboros/rate-limit/RateLimiter") {}

const segment = /[.*+?^${}()|[\]\\]/g

/**
 * Compiles an endpoint pattern: `[METHOD ]path` where `*` matches the rest of the path (or, inside it, one or more
 * segments) and `:name` one segment. The path is compared in any case, as the router compares route text by default:
 * the endpoint of a request is its path as the router matches it (`RateLimiterHttp.routerPath`), lower-cased. A `GET`
 * pattern covers `HEAD` (the router answers a `HEAD` with the `GET` route; the HTTP resolver gives it as `GET`).
 *
 * @since 0.1.0
 * @category utils
 */
export const endpointMatcher = (pattern: string): (endpoint: string) => boolean => {
  const space = pattern.indexOf(" ")
  const declared = space === -1 ? undefined : pattern.slice(0, space).toUpperCase()
  const method = declared === "HEAD" ? "GET" : declared
  let path = space === -1 ? pattern : pattern.slice(space + 1)
  path = path.replace(/\/\/+/g, "/")
  if (path.length > 1 && path.endsWith("/")) path = path.slice(0, -1)
  const source = path.split("/").map((part) =>
    part === "*" ? ".*" : part.startsWith(":") ? "[^/]+" : part.replace(segment, "\\$&")
  ).join("/")
  const regex = new RegExp(`^${source.endsWith("/.*") ? source.slice(0, -3) + "(?:/.*)?" : source}$`, "is")
  return (endpoint) => {
    const at = endpoint.indexOf(" ")
    if (method !== undefined) {
      if (at === -1) return false
      const actual = endpoint.slice(0, at)
      if (actual !== method && !(method === "GET" && actual === "HEAD")) return false
    }
    return regex.test(at === -1 ? endpoint : endpoint.slice(at + 1))
  }
}

interface Compiled {
  readonly policy: Policy
  readonly matches: (endpoint: string) => string | undefined
  readonly tiers: ReadonlySet<string> | undefined
  /** The check of this policy for a subject (its scope and key), at an endpoint (or endpoint pattern). */
  readonly check: (subject: Subject, endpoint: string) => Check
  /** The counts of this policy's series of `decisions`. */
  readonly allowed: Count
  readonly limited: Count
}

const decisionsId = "ratelimit_decisions_total"
const decisionsDescription = "Rate-limit decisions by policy and outcome"

/**
 * Decisions by policy and outcome (`allowed` | `limited`, each policy its own), in the metric registry of the context
 * that built the limiter (`make` and the layers: the building fiber's; `makeUnsafe`: `Options.context`, else the
 * process-wide one).
 *
 * The limiters count these series themselves and the registry reads them when it is read (`Metric.registerUnsafe`):
 * a decision adds one to a number, where `Metric.update` would cost a third of a decision. So `Metric.value` and
 * snapshots see the counts, but updating a policy's series of this metric yourself does nothing.
 *
 * @since 0.1.0
 * @category metrics
 */
export const decisions = Metric.counter(decisionsId, { description: decisionsDescription, incremental: true })

/** The count of one series of `decisions`, shared by every limiter that counts into it. */
interface Count {
  count: number
}

/** Per metric registry, the counts of its series of `decisions`, by their attributes. */
const counts = new WeakMap<object, Map<string, Count>>()

/** The count of a policy's series with `outcome` in `context`'s registry, registered there on first use. */
const countOf = (context: Context.Context<never>, policy: string, outcome: "allowed" | "limited"): Count => {
  const registry = Context.get(context, Metric.MetricRegistry)
  const extra = Context.get(context, Metric.CurrentMetricAttributes)
  let series = counts.get(registry)
  if (series === undefined) counts.set(registry, series = new Map())
  const identity = JSON.stringify([policy, outcome, Object.entries(extra).sort()])
  let count = series.get(identity)
  if (count === undefined) {
    const cell: Count = { count: 0 }
    Metric.registerUnsafe(Metric.withAttributes(decisions, { policy, outcome }), context, {
      get: () => ({ count: cell.count, incremental: true }),
      update: () => {},
      modify: () => {}
    })
    series.set(identity, count = cell)
  }
  return count
}

const compile = (policy: Policy, context: Context.Context<never>): Compiled => {
  const matchers = policy.endpoints?.map((pattern) => [pattern, endpointMatcher(pattern)] as const)
  return {
    policy,
    matches: matchers === undefined
      ? (endpoint) => endpoint
      : (endpoint) => {
        for (const [pattern, matcher] of matchers) if (matcher(endpoint)) return pattern
        return undefined
      },
    tiers: policy.tiers === undefined ? undefined : new Set(policy.tiers),
    check: checkOf(policy),
    allowed: countOf(context, policy.name, "allowed"),
    limited: countOf(context, policy.name, "limited")
  }
}

/**
 * How a policy keys its checks. The scope names the policy and what it counts by (`default|k`: the default policy by
 * API key; `default|ip`: by address, for requests without a key), and the key is the subject's own string, so the
 * common single-kind policies build no string per decision.
 */
const checkOf = (policy: Policy): (subject: Subject, endpoint: string) => Check => {
  const { name, algorithm, limit, window: windowMillis } = policy
  const make = (scope: string, key: string): Check => ({ scope, key, algorithm, limit, windowMillis })
  const byKey = `${name}|k`
  const byAddress = `${name}|ip`
  const byTenant = `${name}|t`
  const byEndpoint = `${name}|e`
  if (policy.scope.length === 1) {
    switch (policy.scope[0]!) {
      case "api-key":
        return (subject) => subject.apiKey === undefined ? make(byAddress, subject.client) : make(byKey, subject.apiKey)
      case "tenant":
        return (subject) => make(byTenant, subject.tenant ?? "anonymous")
      case "client":
        return (subject) => make(byAddress, subject.client)
      case "endpoint":
        return (_, endpoint) => make(byEndpoint, endpoint)
      case "global":
        return () => make(`${name}|`, "")
    }
  }
  return (subject, endpoint) => {
    let scope = name
    let key = ""
    for (const kind of policy.scope) {
      const sep = key === "" && scope === name ? "|" : ","
      switch (kind) {
        case "api-key":
          scope += subject.apiKey === undefined ? `${sep}ip` : `${sep}k`
          key += `${key === "" ? "" : "|"}${subject.apiKey ?? subject.client}`
          break
        case "tenant":
          scope += `${sep}t`
          key += `${key === "" ? "" : "|"}${subject.tenant ?? "anonymous"}`
          break
        case "client":
          scope += `${sep}ip`
          key += `${key === "" ? "" : "|"}${subject.client}`
          break
        case "endpoint":
          scope += `${sep}e`
          key += `${key === "" ? "" : "|"}${endpoint}`
          break
        case "global":
          break
      }
    }
    return make(scope, key)
  }
}

/**
 * Options of `make`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly policies: ReadonlyArray<Policy>
  /**
   * The clock decisions read. `make` and the layers pass the clock of the fiber that builds them (a `TestClock` in
   * tests); without one, each decision reads the clock of the fiber that runs it, which costs an extra step.
   */
  readonly clock?: Clock.Clock | undefined
  /**
   * The context whose metric registry (and metric attributes) count `decisions`. `make` and the layers pass the
   * context of the fiber that builds them; without one, the process-wide registry counts them.
   */
  readonly context?: Context.Context<never> | undefined
}

/**
 * Builds the limiter on the store in context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<RateLimiter["Service"], never, RateLimiterStore> =>
  Effect.gen(function*() {
    const store = yield* RateLimiterStore
    const clock = yield* Clock.Clock
    const context = yield* Effect.context<never>()
    return makeUnsafe(store, { clock, context, ...options })
  })

/**
 * Builds the limiter on a given store.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeUnsafe = (store: RateLimiterStore["Service"], options: Options): RateLimiter["Service"] => {
  const context = options.context ?? Context.empty()
  const compiled = options.policies.map((policy) => compile(policy, context))
  const clock = options.clock
  const byPolicy = new Map(compiled.map((c) => [c.policy, c]))

  // Which policies apply depends only on endpoint and tier: remember it for recent ones (bounded).
  const selections = new Map<string, ReadonlyArray<readonly [Compiled, string]>>()
  const select = (subject: Subject): ReadonlyArray<readonly [Compiled, string]> => {
    const cacheKey = subject.tier === undefined ? subject.endpoint : `${subject.tier}\u0000${subject.endpoint}`
    const cached = selections.get(cacheKey)
    if (cached !== undefined) return cached
    const selected: Array<readonly [Compiled, string]> = []
    for (const c of compiled) {
      if (c.tiers !== undefined && (subject.tier === undefined || !c.tiers.has(subject.tier))) continue
      const endpoint = c.matches(subject.endpoint)
      if (endpoint !== undefined) selected.push([c, endpoint])
    }
    if (selections.size >= 10_000) selections.clear()
    selections.set(cacheKey, selected)
    return selected
  }

  interface Prepared {
    readonly selected: ReadonlyArray<readonly [Compiled, string]>
    readonly checks: ReadonlyArray<Check>
  }

  const prepare = (subject: Subject, decideOptions: DecideOptions | undefined): Prepared | undefined => {
    const selected = decideOptions?.policies === undefined
      ? select(subject)
      : decideOptions.policies.map((policy): readonly [Compiled, string] => [
        byPolicy.get(policy) ?? compile(policy, context),
        subject.endpoint
      ])
    if (selected.length === 0) return undefined
    const checks: Array<Check> = new Array(selected.length)
    for (let i = 0; i < selected.length; i++) {
      const [c, endpoint] = selected[i]!
      checks[i] = c.check(subject, endpoint)
    }
    return { selected, checks }
  }

  const finish = ({ checks, selected }: Prepared, results: ReadonlyArray<CheckResult>): Decision => {
    let allowed = true
    let remaining = Infinity
    let resetAfterMillis = 0
    let retryAfterMillis = 0
    let violated: Array<string> | undefined
    const policies: Array<PolicyDecision> = new Array(results.length)
    for (let i = 0; i < results.length; i++) {
      const result = results[i]!
      const c = selected[i]![0]
      // Explicit fields: spreading the store's result object is several times slower here.
      policies[i] = {
        allowed: result.allowed,
        remaining: result.remaining,
        resetAfterMillis: result.resetAfterMillis,
        retryAfterMillis: result.retryAfterMillis,
        policy: c.policy,
        key: fullKey(checks[i]!)
      }
      if (result.remaining < remaining) remaining = result.remaining
      if (result.resetAfterMillis > resetAfterMillis) resetAfterMillis = result.resetAfterMillis
      if (!result.allowed) {
        allowed = false
        if (violated === undefined) violated = []
        violated.push(c.policy.name)
        if (result.retryAfterMillis > retryAfterMillis) retryAfterMillis = result.retryAfterMillis
      }
    }
    // Each policy counts its own outcome: a policy that had room is `allowed` even when another one refused the
    // request (nothing was consumed then).
    for (let i = 0; i < results.length; i++) {
      const c = selected[i]![0]
      if (results[i]!.allowed) c.allowed.count++
      else c.limited.count++
    }
    return { allowed, policies, violated: violated ?? noneViolated, remaining, resetAfterMillis, retryAfterMillis }
  }

  const consumeUnsafe = store.consumeUnsafe
  const decideUnsafe = consumeUnsafe === undefined ? undefined : (
    subject: Subject,
    now: number,
    decideOptions?: DecideOptions
  ): Decision => {
    const prepared = prepare(subject, decideOptions)
    return prepared === undefined
      ? noPolicy
      : finish(prepared, consumeUnsafe(prepared.checks, decideOptions?.cost ?? 1, now))
  }

  const decide = (subject: Subject, decideOptions?: DecideOptions): Effect.Effect<Decision, RateLimitStoreError> => {
    if (decideUnsafe !== undefined) {
      return clock === undefined
        ? Effect.clockWith((clock) =>
          Effect.sync(() => decideUnsafe(subject, clock.currentTimeMillisUnsafe(), decideOptions))
        )
        : Effect.sync(() => decideUnsafe(subject, clock.currentTimeMillisUnsafe(), decideOptions))
    }
    const prepared = prepare(subject, decideOptions)
    if (prepared === undefined) return Effect.succeed(noPolicy)
    return Effect.map(store.consume(prepared.checks, decideOptions?.cost ?? 1), (results) => finish(prepared, results))
  }

  return RateLimiter.of({
    policies: options.policies,
    applicable: (subject) => select(subject).map(([c]) => c.policy),
    decide,
    decideUnsafe,
    consume: (subject, consumeOptions) =>
      Effect.flatMap(
        decide(subject, consumeOptions),
        (decision) => decision.allowed ? Effect.succeed(decision) : Effect.fail(exceeded(decision))
      ),
    status: store.status
  })
}

const noneViolated: ReadonlyArray<string> = Object.freeze([])

const noPolicy: Decision = {
  allowed: true,
  policies: [],
  violated: [],
  remaining: Infinity,
  resetAfterMillis: 0,
  retryAfterMillis: 0
}

/**
 * The error for a rejected decision.
 *
 * @since 0.1.0
 * @category constructors
 */
export const exceeded = (decision: Decision): RateLimitExceeded => {
  const retryAfter = Math.max(1, Math.ceil(decision.retryAfterMillis / 1000))
  return new RateLimitExceeded({
    detail: `Rate limit exceeded (${decision.violated.map((name) => `"${name}"`).join(", ")}); ` +
      `retry in ${retryAfter} s`,
    violatedPolicies: decision.violated,
    retryAfter
  })
}

/**
 * What happens to requests while Redis is unreachable: `open` decides them with an in-memory limiter (per process),
 * `closed` rejects them (`RateLimitStoreError`, a 503 over HTTP).
 *
 * @since 0.1.0
 * @category models
 */
export type FailureMode = "open" | "closed"

/**
 * Wraps a primary store (Redis) so that its failures are handled by `mode`. While the primary is down it is retried at
 * most every `probeInterval` (other requests go straight to the fallback or are rejected), the status is `warn`, and
 * the first success switches back.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withFallback = (
  primary: RateLimiterStore["Service"],
  options: {
    readonly mode: FailureMode
    readonly fallback?: RateLimiterStore["Service"] | undefined
    readonly probeInterval?: Duration.Input | undefined
  }
): RateLimiterStore["Service"] => {
  const fallback = options.fallback ?? Memory.makeUnsafe({ maxKeys: 100_000 })
  const probeMillis = Duration.toMillis(options.probeInterval ?? "1 second")
  let healthy = true
  let nextProbe = 0
  const degraded = (checks: ReadonlyArray<Check>, cost: number, cause?: RateLimitStoreError) =>
    options.mode === "open"
      ? fallback.consume(checks, cost)
      : Effect.fail(cause ?? new RateLimitStoreError({ message: "The rate-limit store is unavailable" }))
  // While healthy a decision is the primary's plus one failure handler: no clock read, no extra step on success.
  const onFailure = (checks: ReadonlyArray<Check>, cost: number) => (error: RateLimitStoreError) =>
    Effect.clockWith((clock) => {
      nextProbe = clock.currentTimeMillisUnsafe() + probeMillis
      const log = healthy
        ? Effect.logWarning(`Rate-limit store unavailable, failing ${options.mode}: ${String(error.cause)}`)
        : Effect.void
      healthy = false
      return Effect.andThen(log, degraded(checks, cost, error))
    })
  const probe = (checks: ReadonlyArray<Check>, cost: number) =>
    Effect.clockWith((clock) => {
      if (clock.currentTimeMillisUnsafe() < nextProbe) return degraded(checks, cost)
      return primary.consume(checks, cost).pipe(
        Effect.tap(() => {
          if (healthy) return Effect.void
          healthy = true
          return Effect.logInfo("Rate-limit store recovered")
        }),
        Effect.catch(onFailure(checks, cost))
      )
    })
  return {
    consume: (checks, cost) =>
      Effect.suspend(() =>
        healthy ? Effect.catch(primary.consume(checks, cost), onFailure(checks, cost)) : probe(checks, cost)
      ),
    status: Effect.suspend(() => healthy ? primary.status : Effect.succeed("warn" as const)),
    persistence: primary.persistence
  }
}

/** `"off"`, or a limit per window: the setting of `RATE_LIMIT_DEFAULT`. */
const DefaultPolicySetting = Schema.String.pipe(Schema.decodeTo(
  Schema.Union([Schema.Literal("off"), LimitPerWindow.to]),
  {
    decode: SchemaGetter.transformEffect((input: string): Effect.Effect<DefaultPolicySetting, SchemaIssue.Issue> => {
      if (input.trim() === "off") return Effect.succeed("off")
      const parsed = parseLimitPerWindow(input)
      return parsed === undefined
        ? Effect.fail(
          new SchemaIssue.InvalidValue({ message: `"${input}" is not a limit such as "100/1m", nor "off"` }, input)
        )
        : Effect.succeed(parsed)
    }),
    encode: SchemaGetter.transform((setting: DefaultPolicySetting) =>
      setting === "off" ? setting : `${setting.limit}/${setting.window}ms`
    )
  }
))

type DefaultPolicySetting = "off" | { readonly limit: number; readonly window: number }

/**
 * The configuration: environment variable names are given in full (the server does not nest them).
 *
 * - `RATE_LIMIT_DEFAULT` (`100/1m`): the default per-API-key policy on `/api` routes, `limit/window` (e.g. `100/1m`),
 *   or `off` to disable it.
 * - `RATE_LIMIT_ADMIN` (`60/1m`): requests per client address to `/admin` and below ({@link adminPolicy}), or `off`.
 * - `RATE_LIMIT_DOCS` (`30/1m`): requests per client address to `/docs`, `/openapi.json` and
 *   `/api/<version>/openapi.json` ({@link docsPolicy}), or `off`.
 * - `RATE_LIMIT_POLICIES` (`[]`): more policies as a JSON array of `Policy`.
 * - `REDIS_URL` (secret): share limits across replicas through Redis; without it limits are per process, in memory.
 * - `RATE_LIMIT_REDIS_FAILURE` (`open`): while Redis is unreachable, `open` (an in-memory limiter) or `closed`
 *   (reject with 503).
 * - `RATE_LIMIT_REDIS_PREFIX` (`ouroboros:rl:`): key prefix of rate-limit state in Redis.
 * - `RATE_LIMIT_TRUSTED_PROXIES` (empty): comma-separated proxy addresses or CIDRs (`loopback`, `private`, `*`) whose
 *   `X-Forwarded-For` is trusted.
 * - `RATE_LIMIT_MAX_KEYS` (`1000000`): at most this many keys in the in-memory store.
 *
 * @since 0.1.0
 * @category config
 */
export const config = Config.all({
  defaultPolicy: Config.schema(DefaultPolicySetting, "RATE_LIMIT_DEFAULT").pipe(
    Config.withDefault<typeof DefaultPolicySetting.Type>({ limit: 100, window: 60_000 }),
    Config.map((setting) => setting === "off" ? Option.none() : Option.some(setting))
  ),
  adminPolicy: Config.schema(DefaultPolicySetting, "RATE_LIMIT_ADMIN").pipe(
    Config.withDefault<typeof DefaultPolicySetting.Type>({ limit: 60, window: 60_000 }),
    Config.map((setting) => setting === "off" ? Option.none() : Option.some(setting))
  ),
  docsPolicy: Config.schema(DefaultPolicySetting, "RATE_LIMIT_DOCS").pipe(
    Config.withDefault<typeof DefaultPolicySetting.Type>({ limit: 30, window: 60_000 }),
    Config.map((setting) => setting === "off" ? Option.none() : Option.some(setting))
  ),
  policies: Config.schema(Schema.fromJsonString(PolicySet), "RATE_LIMIT_POLICIES").pipe(
    Config.withDefault<ReadonlyArray<Policy>>([])
  ),
  redisUrl: Config.option(Config.Redacted("REDIS_URL")),
  redisFailure: Config.Literals(["open", "closed"], "RATE_LIMIT_REDIS_FAILURE").pipe(
    Config.withDefault<FailureMode>("open")
  ),
  redisPrefix: Config.String("RATE_LIMIT_REDIS_PREFIX").pipe(Config.withDefault("ouroboros:rl:")),
  trustedProxies: Config.String("RATE_LIMIT_TRUSTED_PROXIES").pipe(
    Config.withDefault(""),
    Config.map((input) => input.split(",").map((s) => s.trim()).filter((s) => s.length > 0))
  ),
  maxKeys: Config.Int("RATE_LIMIT_MAX_KEYS").pipe(Config.withDefault(1_000_000))
})

/**
 * @since 0.1.0
 * @category config
 */
export type RateLimitConfig = Config.Success<typeof config>

/**
 * The policies a configuration asks for: the default, admin and docs ones (unless `off`), then `RATE_LIMIT_POLICIES`,
 * then `extra` (e.g. decoded from the config file with `PolicySet`). A later policy with the same name replaces an
 * earlier one.
 *
 * @since 0.1.0
 * @category config
 */
export const policiesOf = (settings: RateLimitConfig, extra: ReadonlyArray<Policy> = []): ReadonlyArray<Policy> => {
  const byName = new Map<string, Policy>()
  Option.map(settings.defaultPolicy, ({ limit, window }) => byName.set("default", defaultPolicy(limit, window)))
  Option.map(settings.adminPolicy, ({ limit, window }) => byName.set("admin", adminPolicy(limit, window)))
  Option.map(settings.docsPolicy, ({ limit, window }) => byName.set("docs", docsPolicy(limit, window)))
  for (const policy of [...settings.policies, ...extra]) byName.set(policy.name, policy)
  return [...byName.values()]
}

/**
 * The limiter on the store in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<RateLimiter, never, RateLimiterStore> =>
  Layer.effect(RateLimiter, make(options))

/**
 * The limiter with an in-memory store, which also serves as `effect/persistence`'s store.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (
  options: Options & Memory.Options
): Layer.Layer<RateLimiter | RateLimiterStore | Persistence.RateLimiterStore> =>
  layer(options).pipe(Layer.provideMerge(Memory.layer(options)))

/**
 * Loads the Redis store module (and with it ioredis) on first use, so that a program on the memory store never loads
 * it. Fails with `RateLimitStoreError` when the module cannot be loaded (ioredis is not installed).
 *
 * @since 0.1.0
 * @category constructors
 */
export const loadRedis: Effect.Effect<typeof Redis, RateLimitStoreError> = Effect.tryPromise({
  try: () => import("./RateLimiter/Redis.js"),
  catch: (cause) =>
    new RateLimitStoreError({ message: "Cannot load the Redis rate-limit store (is ioredis installed?)", cause })
})

/**
 * The limiter with a Redis store, wrapped by `withFallback` with `failure` (default `open`). The store also serves as
 * `effect/persistence`'s store (without the fallback). The Redis module and ioredis are loaded when the layer is built
 * ({@link loadRedis}).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedis = (
  options: Options & Redis.Options & { readonly failure?: FailureMode | undefined }
): Layer.Layer<RateLimiter | RateLimiterStore | Persistence.RateLimiterStore, RateLimitStoreError> =>
  layer(options).pipe(Layer.provideMerge(Layer.effectContext(Effect.flatMap(loadRedis, (module) =>
    Effect.map(
      module.make(options),
      (store) => toContext(withFallback(store, { mode: options.failure ?? "open" }))
    )))))

/**
 * The limiter from `config`: Redis when `REDIS_URL` is set (with `RATE_LIMIT_REDIS_FAILURE`), memory otherwise.
 * `policies` are added to the configured ones (pass the config file's section here). Only the Redis choice loads the
 * Redis module; failing to load it is a `RateLimitStoreError`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: { readonly policies?: ReadonlyArray<Policy> | undefined } = {}
): Layer.Layer<
  RateLimiter | RateLimiterStore | Persistence.RateLimiterStore,
  Config.ConfigError | RateLimitStoreError
> =>
  Layer.unwrap(Effect.map(config, (settings) => {
    const policies = policiesOf(settings, options.policies)
    return Option.match(settings.redisUrl, {
      onNone: () => layerMemory({ policies, maxKeys: settings.maxKeys }),
      onSome: (url: Redacted.Redacted<string>) =>
        layerRedis({ policies, url, prefix: settings.redisPrefix, failure: settings.redisFailure })
    })
  }))
