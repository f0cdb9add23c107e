/**
 * Per-tenant quotas: documents, stored bytes, requests per UTC day and LLM tokens per UTC month, with defaults per
 * tier that a tenant's record overrides.
 *
 * `consume` is all-or-nothing and atomic in the store: on SQL each counter moves by one conditional upsert
 * (`… ON CONFLICT DO UPDATE … WHERE used + n <= limit`) in one transaction, so replicas sharing PostgreSQL never go
 * over a limit together, however their requests interleave. `release` gives back gauge quotas (documents, bytes) when
 * data is deleted; `record` adds usage known only afterwards (the tokens an answer took) without a check, so that
 * quota can overshoot by one call and then refuses the next `check`.
 *
 * A rate-like quota (`requestsPerDay`) is a 429 with `Retry-After` at the HTTP edge; the others are 403 (see
 * `QuotasHttp`).
 *
 * @since 0.1.0
 */
import type { TenantId } from "@ouroboros/kernel"
import { Clock, Context, Effect, Layer, Option, Schema } from "effect"
import { QuotaOverrides, type Tenant, TenantNotFound, type Tier } from "./Tenant.js"
import { Tenants } from "./Tenants.js"

/**
 * The quotas.
 *
 * @since 0.1.0
 * @category schemas
 */
export const QuotaName = Schema.Literals(["documents", "storedBytes", "requestsPerDay", "llmTokensPerMonth"])

/**
 * @since 0.1.0
 * @category models
 */
export type QuotaName = typeof QuotaName.Type

/**
 * Every quota, in the order counters are locked (one order everywhere: no deadlock between two consumers).
 *
 * @since 0.1.0
 * @category constants
 */
export const quotaNames: ReadonlyArray<QuotaName> = QuotaName.literals

/**
 * Amounts per quota (absent: 0).
 *
 * @since 0.1.0
 * @category models
 */
export type Amounts = { readonly [K in QuotaName]?: number }

/**
 * The effective limits of a tenant; `null` is unlimited.
 *
 * @since 0.1.0
 * @category models
 */
export type Limits = { readonly [K in QuotaName]: number | null }

/**
 * The built-in defaults per tier.
 *
 * @since 0.1.0
 * @category constants
 */
export const builtInDefaults: { readonly [T in Tier]: Limits } = {
  free: { documents: 1_000, storedBytes: 100 * 1024 * 1024, requestsPerDay: 10_000, llmTokensPerMonth: 1_000_000 },
  standard: {
    documents: 100_000,
    storedBytes: 10 * 1024 * 1024 * 1024,
    requestsPerDay: 1_000_000,
    llmTokensPerMonth: 50_000_000
  },
  enterprise: { documents: null, storedBytes: null, requestsPerDay: null, llmTokensPerMonth: null }
}

/**
 * Tier defaults as the config file's `quotas` section gives them: `{ free: { documents: 500 }, … }`, each over the
 * built-in defaults.
 *
 * @since 0.1.0
 * @category schemas
 */
export const QuotasSection = Schema.Struct({
  free: Schema.optionalKey(QuotaOverrides),
  standard: Schema.optionalKey(QuotaOverrides),
  enterprise: Schema.optionalKey(QuotaOverrides)
}).annotate({ identifier: "QuotasSection" })

/**
 * @since 0.1.0
 * @category models
 */
export type QuotasSection = typeof QuotasSection.Type

/**
 * A quota would be exceeded; nothing was consumed. `retryAfter` (seconds) is set for `requestsPerDay`: the time until
 * the next UTC day.
 *
 * @since 0.1.0
 * @category errors
 */
export class QuotaExceeded extends Schema.TaggedError<QuotaExceeded>()("QuotaExceeded", {
  tenantId: Schema.String,
  quota: QuotaName,
  limit: Schema.Number,
  usage: Schema.Number,
  requested: Schema.Number,
  retryAfter: Schema.optionalKey(Schema.Number)
}) {
  override get message(): string {
    return `tenant ${this.tenantId} is over its ${this.quota} quota ` +
      `(${this.usage} of ${this.limit} used, ${this.requested} requested)`
  }
}

/**
 * A counter: a quota in a period (`total` for gauges, `d:2025-01-31`, `m:2025-01`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Counter {
  readonly quota: QuotaName
  readonly period: string
}

/**
 * A counter to move by `amount`, refused beyond `limit` (`null`: unlimited, always moves).
 *
 * @since 0.1.0
 * @category models
 */
export interface Item extends Counter {
  readonly amount: number
  readonly limit: number | null
}

/**
 * The counter that refused a `consume`, with its usage at that moment.
 *
 * @since 0.1.0
 * @category models
 */
export interface Violation {
  readonly quota: QuotaName
  readonly limit: number
  readonly used: number
}

/**
 * Where counters are kept. `consume` moves every item or none, atomically with respect to other consumers (other
 * replicas included, for a shared store).
 *
 * @since 0.1.0
 * @category services
 */
export class QuotaStore extends Context.Service<QuotaStore, {
  readonly consume: (tenantId: TenantId.TenantId, items: ReadonlyArray<Item>) => Effect.Effect<Option.Option<Violation>>
  /** Moves counters without a check; a counter never goes below 0. */
  readonly add: (
    tenantId: TenantId.TenantId,
    items: ReadonlyArray<Counter & { readonly amount: number }>
  ) => Effect.Effect<void>
  readonly read: (tenantId: TenantId.TenantId, counters: ReadonlyArray<Counter>) => Effect.Effect<ReadonlyArray<number>>
  /** Forgets every counter of a tenant. */
  readonly purge: (tenantId: TenantId.TenantId) => Effect.Effect<void>
  /**
   * Deletes the counters of periods that ended: days before `day` (`YYYY-MM-DD`) and months before `month`
   * (`YYYY-MM`), every tenant's; gauges (`total`) stay. Yields how many went.
   */
  readonly prune: (before: { readonly day: string; readonly month: string }) => Effect.Effect<number>
}>()("@ouroboros/tenancy/QuotaStore") {}

/**
 * A tenant's limits and usage now.
 *
 * @since 0.1.0
 * @category models
 */
export interface Status {
  readonly limits: Limits
  readonly usage: { readonly [K in QuotaName]: number }
}

/**
 * The service.
 *
 * @since 0.1.0
 * @category services
 */
export class Quotas extends Context.Service<Quotas, {
  readonly limits: (tenantId: TenantId.TenantId) => Effect.Effect<Limits, TenantNotFound>
  readonly status: (tenantId: TenantId.TenantId) => Effect.Effect<Status, TenantNotFound>
  /** Whether `amounts` would fit now; consumes nothing (a check before work whose cost is known only after). */
  readonly check: (tenantId: TenantId.TenantId, amounts: Amounts) => Effect.Effect<void, QuotaExceeded | TenantNotFound>
  /** Consumes `amounts`, all or nothing. */
  readonly consume: (
    tenantId: TenantId.TenantId,
    amounts: Amounts
  ) => Effect.Effect<void, QuotaExceeded | TenantNotFound>
  /** Gives back documents and stored bytes (deleted data). */
  readonly release: (tenantId: TenantId.TenantId, amounts: Amounts) => Effect.Effect<void>
  /** Adds usage known after the fact (LLM tokens), without a check. */
  readonly record: (tenantId: TenantId.TenantId, amounts: Amounts) => Effect.Effect<void>
  /**
   * Deletes the counters of periods that ended before yesterday or last month (a late write to the period just
   * ended, a lease taken before midnight, still finds its row); runs every `pruneIntervalMillis` by itself.
   */
  readonly prune: Effect.Effect<number>
}>()("@ouroboros/tenancy/Quotas") {}

/**
 * The periods {@link Quotas.prune} deletes before, at `now`: yesterday's day and last month.
 *
 * @since 0.1.0
 * @category utils
 */
export const prunedBefore = (now: number): { readonly day: string; readonly month: string } => {
  const date = new Date(now)
  return {
    day: new Date(now - day).toISOString().slice(0, 10),
    month: new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() - 1, 1)).toISOString().slice(0, 7)
  }
}

const day = 86_400_000

/**
 * The counter of a quota at `now` (epoch milliseconds, UTC periods).
 *
 * @since 0.1.0
 * @category utils
 */
export const counterAt = (quota: QuotaName, now: number): Counter => {
  switch (quota) {
    case "requestsPerDay":
      return { quota, period: `d:${new Date(now).toISOString().slice(0, 10)}` }
    case "llmTokensPerMonth":
      return { quota, period: `m:${new Date(now).toISOString().slice(0, 7)}` }
    default:
      return { quota, period: "total" }
  }
}

/**
 * Seconds until a rate-like quota's period ends (the next UTC midnight, or the next month).
 *
 * @since 0.1.0
 * @category utils
 */
export const secondsUntilReset = (quota: QuotaName, now: number): number | undefined => {
  if (quota === "requestsPerDay") return Math.max(1, Math.ceil((day - (now % day)) / 1000))
  if (quota === "llmTokensPerMonth") {
    const date = new Date(now)
    const next = Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1)
    return Math.max(1, Math.ceil((next - now) / 1000))
  }
  return undefined
}

/**
 * The effective limits of a tenant: its overrides over its tier's defaults.
 *
 * @since 0.1.0
 * @category utils
 */
export const limitsOf = (
  tenant: Tenant,
  defaults: { readonly [T in Tier]?: Partial<Limits> | QuotaOverrides } = {}
): Limits => ({ ...builtInDefaults[tenant.tier], ...defaults[tenant.tier], ...tenant.quotas })

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Tier defaults over the built-in ones. */
  readonly defaults?: QuotasSection | undefined
  /** How often counters of ended periods are deleted, milliseconds (default 1 hour, at least 1 second). */
  readonly pruneIntervalMillis?: number | undefined
}

/**
 * The service on the store and tenants in context. Counters of a deleted tenant are purged with it; counters of ended
 * periods are deleted every `pruneIntervalMillis` (every replica does it; the deletes are idempotent).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}) =>
  Effect.gen(function*() {
    const store = yield* QuotaStore
    const tenants = yield* Tenants
    yield* tenants.onDelete((tenant) => store.purge(tenant.id))

    const limits = (tenantId: TenantId.TenantId) =>
      Effect.flatMap(tenants.lookup(tenantId), (tenant) =>
        Option.isNone(tenant)
          ? Effect.fail(new TenantNotFound({ tenantId }))
          : Effect.succeed(limitsOf(tenant.value, options.defaults)))

    const entries = (amounts: Amounts) =>
      quotaNames.flatMap((quota) => {
        const amount = amounts[quota]
        return amount === undefined || amount === 0 ? [] : [{ quota, amount }]
      })

    const exceeded = (tenantId: TenantId.TenantId, violation: Violation, requested: number, now: number) => {
      const retryAfter = violation.quota === "requestsPerDay" ? secondsUntilReset(violation.quota, now) : undefined
      return new QuotaExceeded({
        tenantId,
        quota: violation.quota,
        limit: violation.limit,
        usage: violation.used,
        requested,
        ...(retryAfter !== undefined ? { retryAfter } : {})
      })
    }

    const consume = Effect.fn("Quotas.consume")(function*(tenantId: TenantId.TenantId, amounts: Amounts) {
      const wanted = entries(amounts)
      if (wanted.length === 0) return
      const limit = yield* limits(tenantId)
      const now = yield* Clock.currentTimeMillis
      const items = wanted.map(({ amount, quota }) => ({ ...counterAt(quota, now), amount, limit: limit[quota] }))
      const violation = yield* store.consume(tenantId, items)
      if (Option.isSome(violation)) {
        return yield* exceeded(tenantId, violation.value, amounts[violation.value.quota] ?? 0, now)
      }
    })

    const check = Effect.fn("Quotas.check")(function*(tenantId: TenantId.TenantId, amounts: Amounts) {
      const wanted = entries(amounts)
      if (wanted.length === 0) return
      const limit = yield* limits(tenantId)
      const now = yield* Clock.currentTimeMillis
      const counters = wanted.map(({ quota }) => counterAt(quota, now))
      const used = yield* store.read(tenantId, counters)
      for (const [i, { amount, quota }] of wanted.entries()) {
        const max = limit[quota]
        const current = used[i] ?? 0
        if (max !== null && current + amount > max) {
          return yield* exceeded(tenantId, { quota, limit: max, used: current }, amount, now)
        }
      }
    })

    const move = (sign: 1 | -1) => (tenantId: TenantId.TenantId, amounts: Amounts) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const items = entries(amounts).map(({ amount, quota }) => ({ ...counterAt(quota, now), amount: sign * amount }))
        return items.length === 0 ? Effect.void : store.add(tenantId, items)
      })

    const status = Effect.fn("Quotas.status")(function*(tenantId: TenantId.TenantId) {
      const limit = yield* limits(tenantId)
      const now = yield* Clock.currentTimeMillis
      const used = yield* store.read(tenantId, quotaNames.map((quota) => counterAt(quota, now)))
      const usage = Object.fromEntries(quotaNames.map((quota, i) => [quota, used[i] ?? 0])) as Status["usage"]
      return { limits: limit, usage }
    })

    const prune = Effect.flatMap(Clock.currentTimeMillis, (now) => store.prune(prunedBefore(now))).pipe(
      Effect.withSpan("Quotas.prune")
    )
    // The first run is one interval after the start (nothing is urgent then).
    yield* Effect.forkScoped(
      prune.pipe(
        // The store dies on infrastructure failures: logged, and tried again at the next interval.
        Effect.catchDefect((defect) =>
          Effect.logWarning("quota counters of ended periods not deleted yet", defect).pipe(
            Effect.annotateLogs({ service: "tenancy" })
          )
        ),
        Effect.delay(Math.max(1_000, options.pruneIntervalMillis ?? 3_600_000)),
        Effect.forever
      )
    )

    return Quotas.of({
      prune,
      limits,
      status,
      check,
      consume,
      // Only gauges can be given back: a day's requests or a month's tokens were spent.
      release: (tenantId, amounts) =>
        move(-1)(tenantId, {
          ...(amounts.documents !== undefined ? { documents: amounts.documents } : {}),
          ...(amounts.storedBytes !== undefined ? { storedBytes: amounts.storedBytes } : {})
        }),
      record: move(1)
    })
  })

/**
 * The service on the `QuotaStore` and `Tenants` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Quotas, never, QuotaStore | Tenants> =>
  Layer.effect(Quotas, make(options))

const keyOf = (tenantId: string, counter: Counter) => `${tenantId}\u0000${counter.quota}\u0000${counter.period}`

/**
 * An in-memory store (one process): each operation is one synchronous step.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemoryStore = (): QuotaStore["Service"] => {
  const counters = new Map<string, number>()
  return QuotaStore.of({
    consume: (tenantId, items) =>
      Effect.sync(() => {
        for (const item of items) {
          const used = counters.get(keyOf(tenantId, item)) ?? 0
          if (item.limit !== null && used + item.amount > item.limit) {
            return Option.some({ quota: item.quota, limit: item.limit, used })
          }
        }
        for (const item of items) {
          const key = keyOf(tenantId, item)
          counters.set(key, (counters.get(key) ?? 0) + item.amount)
        }
        return Option.none()
      }),
    add: (tenantId, items) =>
      Effect.sync(() => {
        for (const item of items) {
          const key = keyOf(tenantId, item)
          counters.set(key, Math.max(0, (counters.get(key) ?? 0) + item.amount))
        }
      }),
    read: (tenantId, list) => Effect.sync(() => list.map((counter) => counters.get(keyOf(tenantId, counter)) ?? 0)),
    purge: (tenantId) =>
      Effect.sync(() => {
        for (const key of [...counters.keys()]) if (key.startsWith(`${tenantId}\u0000`)) counters.delete(key)
      }),
    prune: (before) =>
      Effect.sync(() => {
        let deleted = 0
        for (const key of [...counters.keys()]) {
          const period = key.split("\u0000")[2]!
          if (
            (period.startsWith("d:") && period < `d:${before.day}`) ||
            (period.startsWith("m:") && period < `m:${before.month}`)
          ) {
            counters.delete(key)
            deleted++
          }
        }
        return deleted
      })
  })
}

/**
 * The in-memory store.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemoryStore: Layer.Layer<QuotaStore> = Layer.sync(QuotaStore, makeMemoryStore)
