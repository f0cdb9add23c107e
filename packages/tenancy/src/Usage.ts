/**
 * Usage metering: requests, embedded characters, LLM tokens and stored bytes per tenant per UTC day.
 *
 * `record` only adds to an in-memory buffer (no I/O on the request path). Every `USAGE_FLUSH_INTERVAL`, and when the
 * service's scope closes, the buffer becomes one batch: one CloudEvent (spec 1.0, the shape OpenMeter and Stripe
 * meters ingest) per tenant, kind and day, under a fresh batch id. The store applies a batch in one transaction that
 * first records its id; a batch whose id is known is skipped, so retrying a batch whose outcome was lost (a dropped
 * connection after the commit, a crash between commit and acknowledgement) cannot count twice. A batch that fails is
 * kept, with its id, and retried first at the next flush. Daily sums are upserts (`amount = amount + n`), correct
 * with any number of replicas flushing at once.
 *
 * Usage recorded since the last flush is lost if the process is killed without closing its scope: at most one flush
 * interval of metering.
 *
 * @since 0.1.0
 */
import type { TenantId } from "@ouroboros/kernel"
import { Clock, Config, Context, Data, Effect, Layer, Schedule, Schema, Semaphore } from "effect"
import { randomUUID } from "node:crypto"
import * as Settings from "./internal/config.js"

/**
 * What is metered.
 *
 * @since 0.1.0
 * @category schemas
 */
export const UsageKind = Schema.Literals(["requests", "embeddedCharacters", "llmTokens", "storedBytes"])

/**
 * @since 0.1.0
 * @category models
 */
export type UsageKind = typeof UsageKind.Type

/**
 * Every kind, in report order.
 *
 * @since 0.1.0
 * @category constants
 */
export const usageKinds: ReadonlyArray<UsageKind> = UsageKind.literals

/**
 * The `data` of a usage CloudEvent. `value` is the amount (`storedBytes` may be negative: bytes deleted).
 *
 * @since 0.1.0
 * @category schemas
 */
export const UsageData = Schema.Struct({
  tenantId: Schema.String,
  kind: UsageKind,
  value: Schema.Finite,
  /** The UTC day the usage belongs to, `YYYY-MM-DD`. */
  day: Schema.String
})

/**
 * A usage event in CloudEvents 1.0 JSON format. `type` is `dev.ouroboros.usage.<kind>`, `subject` the tenant id.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CloudEvent = Schema.Struct({
  specversion: Schema.Literal("1.0"),
  id: Schema.String,
  source: Schema.String,
  type: Schema.String,
  subject: Schema.String,
  time: Schema.String,
  datacontenttype: Schema.Literal("application/json"),
  data: UsageData
}).annotate({ identifier: "CloudEvent" })

/**
 * @since 0.1.0
 * @category models
 */
export type CloudEvent = typeof CloudEvent.Type

/**
 * One day of a tenant's usage.
 *
 * @since 0.1.0
 * @category schemas
 */
export const DailyUsage = Schema.Struct({
  day: Schema.String,
  requests: Schema.Finite,
  embeddedCharacters: Schema.Finite,
  llmTokens: Schema.Finite,
  storedBytes: Schema.Finite
}).annotate({ identifier: "DailyUsage" })

/**
 * @since 0.1.0
 * @category models
 */
export type DailyUsage = typeof DailyUsage.Type

/**
 * A batch of events, applied once.
 *
 * @since 0.1.0
 * @category models
 */
export interface Batch {
  readonly id: string
  readonly events: ReadonlyArray<CloudEvent>
}

/**
 * The store could not apply a batch; it will be retried.
 *
 * @since 0.1.0
 * @category errors
 */
export class UsageStoreError extends Data.TaggedError("UsageStoreError")<{ readonly cause: unknown }> {
  override get message(): string {
    return `usage could not be stored: ${String(this.cause)}`
  }
}

/**
 * Where usage is kept.
 *
 * @since 0.1.0
 * @category services
 */
export class UsageStore extends Context.Service<UsageStore, {
  /** Applies a batch unless its id was applied before; yields whether it was applied now. */
  readonly apply: (batch: Batch) => Effect.Effect<boolean, UsageStoreError>
  /** Sums per day and kind, `from` to `to` inclusive (`YYYY-MM-DD`). */
  readonly daily: (
    tenantId: TenantId.TenantId,
    from: string,
    to: string
  ) => Effect.Effect<ReadonlyArray<{ readonly day: string; readonly kind: UsageKind; readonly amount: number }>>
  /** The events of a tenant whose day is in the range. */
  readonly events: (tenantId: TenantId.TenantId, from: string, to: string) => Effect.Effect<ReadonlyArray<CloudEvent>>
  /**
   * Deletes the events and daily sums of days before `day` (`YYYY-MM-DD`), and the ids of batches applied before
   * `batchesBefore` (epoch milliseconds); yields how many rows of each went.
   */
  readonly prune: (
    before: { readonly day: string; readonly batchesBefore: number }
  ) => Effect.Effect<Pruned, UsageStoreError>
}>()("@ouroboros/tenancy/UsageStore") {}

/**
 * What a prune deleted.
 *
 * @since 0.1.0
 * @category models
 */
export interface Pruned {
  readonly events: number
  readonly days: number
  readonly batches: number
}

/**
 * The service.
 *
 * @since 0.1.0
 * @category services
 */
export class Usage extends Context.Service<Usage, {
  /** Adds to the buffer (no I/O). */
  readonly record: (tenantId: TenantId.TenantId, amounts: { readonly [K in UsageKind]?: number }) => Effect.Effect<void>
  /** Writes the buffer and any batch that failed before. */
  readonly flush: Effect.Effect<void, UsageStoreError>
  /** One row per day from `from` to `to` (at most 366 days), zeros included. Flushes this replica first. */
  readonly daily: (
    tenantId: TenantId.TenantId,
    from: string,
    to: string
  ) => Effect.Effect<ReadonlyArray<DailyUsage>, UsageStoreError>
  /** The CloudEvents of a tenant for days in the range, to ship to a meter. */
  readonly events: (tenantId: TenantId.TenantId, from: string, to: string) => Effect.Effect<ReadonlyArray<CloudEvent>>
  /** Buffered aggregates plus events of batches not yet stored. */
  readonly pending: Effect.Effect<number>
  /**
   * Deletes what is older than the retention: events and daily sums of days before it, and applied batch ids after
   * {@link batchIdRetentionMillis} (or the retention, if shorter). Runs every `pruneIntervalMillis` by itself.
   */
  readonly prune: Effect.Effect<Pruned, UsageStoreError>
}>()("@ouroboros/tenancy/Usage") {}

/**
 * How long an applied batch's id is kept (7 days): a batch is retried only by the process that made it, at its next
 * flush, so an id older than this cannot come back.
 *
 * @since 0.1.0
 * @category constants
 */
export const batchIdRetentionMillis = 7 * 86_400_000

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** How often the buffer is written, milliseconds (default 10 s). */
  readonly flushIntervalMillis?: number | undefined
  /** The CloudEvents `source` (default `/ouroboros/usage`). */
  readonly source?: string | undefined
  /** How long usage is kept, milliseconds (default 400 days, at least 1 day): older days are deleted. */
  readonly retentionMillis?: number | undefined
  /** How often what is past the retention is deleted, milliseconds (default 1 hour, at least 1 second). */
  readonly pruneIntervalMillis?: number | undefined
}

const dayMillis = 86_400_000

/**
 * `USAGE_FLUSH_INTERVAL`, `USAGE_EVENT_SOURCE`, `USAGE_RETENTION` (`400d`, at least `1d`), `USAGE_PRUNE_INTERVAL`
 * (`1h`, at least `1s`).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  flushIntervalMillis: Config.schema(Settings.Millis, "USAGE_FLUSH_INTERVAL").pipe(Config.withDefault(10_000)),
  source: Config.String("USAGE_EVENT_SOURCE").pipe(Config.withDefault("/ouroboros/usage")),
  retentionMillis: Config.schema(
    Settings.Millis.check(Schema.isGreaterThanOrEqualTo(dayMillis, { message: "must be at least 1d" })),
    "USAGE_RETENTION"
  ).pipe(Config.withDefault(400 * dayMillis)),
  pruneIntervalMillis: Config.schema(
    Settings.Millis.check(Schema.isGreaterThanOrEqualTo(1_000, { message: "must be at least 1s" })),
    "USAGE_PRUNE_INTERVAL"
  ).pipe(Config.withDefault(3_600_000))
})

const dayOf = (millis: number) => new Date(millis).toISOString().slice(0, 10)

const dayPattern = /^\d{4}-\d{2}-\d{2}$/

/**
 * The days from `from` to `to` inclusive, or undefined when either is not a date, `from` is after `to`, or the range
 * is longer than `maxDays`.
 *
 * @since 0.1.0
 * @category utils
 */
export const daysBetween = (from: string, to: string, maxDays = 366): ReadonlyArray<string> | undefined => {
  if (!dayPattern.test(from) || !dayPattern.test(to)) return undefined
  const start = Date.parse(`${from}T00:00:00Z`)
  const end = Date.parse(`${to}T00:00:00Z`)
  if (!Number.isFinite(start) || !Number.isFinite(end) || dayOf(start) !== from || dayOf(end) !== to || start > end) {
    return undefined
  }
  const days: Array<string> = []
  for (let t = start; t <= end; t += 86_400_000) {
    days.push(dayOf(t))
    if (days.length > maxDays) return undefined
  }
  return days
}

/**
 * Usage rows as CSV: `day,requests,embedded_characters,llm_tokens,stored_bytes`.
 *
 * @since 0.1.0
 * @category utils
 */
export const toCsv = (rows: ReadonlyArray<DailyUsage>): string =>
  ["day,requests,embedded_characters,llm_tokens,stored_bytes"].concat(
    rows.map((r) => `${r.day},${r.requests},${r.embeddedCharacters},${r.llmTokens},${r.storedBytes}`)
  ).join("\r\n") + "\r\n"

interface Aggregate {
  readonly tenantId: string
  readonly kind: UsageKind
  readonly day: string
  amount: number
  time: number
}

/**
 * Builds the service on the store in context and starts its flush loop; the buffer is flushed when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}) =>
  Effect.gen(function*() {
    const store = yield* UsageStore
    const source = options.source ?? "/ouroboros/usage"
    let buffer = new Map<string, Aggregate>()
    const failed: Array<Batch> = []
    const lock = yield* Semaphore.make(1)

    // The day of a time, remembered for the current day: most records fall on the same day.
    let cachedDay = -1
    let cachedDayString = ""
    const dayOfCached = (now: number) => {
      const n = Math.floor(now / 86_400_000)
      if (n !== cachedDay) {
        cachedDay = n
        cachedDayString = dayOf(now)
      }
      return cachedDayString
    }

    const record = (tenantId: TenantId.TenantId, amounts: { readonly [K in UsageKind]?: number }) =>
      Effect.withFiber<void>((fiber) => {
        const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
        const day = dayOfCached(now)
        for (const kind of usageKinds) {
          const amount = amounts[kind]
          if (amount === undefined || amount === 0 || !Number.isFinite(amount)) continue
          const key = `${tenantId}\u0000${kind}\u0000${day}`
          const aggregate = buffer.get(key)
          if (aggregate === undefined) buffer.set(key, { tenantId, kind, day, amount, time: now })
          else {
            aggregate.amount += amount
            aggregate.time = now
          }
        }
        return Effect.void
      })

    const toBatch = (aggregates: Iterable<Aggregate>): Batch => {
      const id = randomUUID()
      const events: Array<CloudEvent> = []
      for (const a of aggregates) {
        events.push({
          specversion: "1.0",
          id: `${id}:${events.length}`,
          source,
          type: `dev.ouroboros.usage.${a.kind}`,
          subject: a.tenantId,
          time: new Date(a.time).toISOString(),
          datacontenttype: "application/json",
          data: { tenantId: a.tenantId, kind: a.kind, value: a.amount, day: a.day }
        })
      }
      return { id, events }
    }

    // The batches that failed go first, with their own ids: a retry is recognised by the store.
    const flush = Effect.suspend(() => {
      if (buffer.size > 0) {
        failed.push(toBatch(buffer.values()))
        buffer = new Map()
      }
      return Effect.whileLoop({
        while: () => failed.length > 0,
        body: () => store.apply(failed[0]!),
        step: () => {
          failed.shift()
        }
      })
    }).pipe(Semaphore.withPermits(lock, 1), Effect.withSpan("Usage.flush"))

    const loop = flush.pipe(
      Effect.catch((error) =>
        Effect.logWarning("usage not stored yet; retried at the next flush", error.cause).pipe(
          Effect.annotateLogs({ service: "tenancy", batches: failed.length })
        )
      ),
      Effect.repeat(Schedule.spaced(options.flushIntervalMillis ?? 10_000))
    )
    yield* Effect.forkScoped(loop)

    const retention = Math.max(dayMillis, options.retentionMillis ?? 400 * dayMillis)
    const prune = Effect.clockWith((clock) => {
      const now = clock.currentTimeMillisUnsafe()
      return store.prune({
        day: dayOf(now - retention),
        batchesBefore: now - Math.min(retention, batchIdRetentionMillis)
      })
    }).pipe(
      Effect.tap((pruned) =>
        pruned.events + pruned.days + pruned.batches === 0
          ? Effect.void
          : Effect.logInfo("usage past its retention deleted").pipe(
            Effect.annotateLogs({ service: "tenancy", ...pruned })
          )
      ),
      Effect.withSpan("Usage.prune")
    )
    // Every replica prunes, one interval after its start and then at every interval; the deletes are idempotent.
    yield* Effect.forkScoped(
      prune.pipe(
        Effect.catch((error) =>
          Effect.logWarning("usage past its retention not deleted yet; retried later", error.cause).pipe(
            Effect.annotateLogs({ service: "tenancy" })
          )
        ),
        Effect.delay(Math.max(1_000, options.pruneIntervalMillis ?? 3_600_000)),
        Effect.forever
      )
    )
    yield* Effect.addFinalizer(() =>
      flush.pipe(
        Effect.catch((error) =>
          Effect.logError("usage lost at shutdown: the store did not accept it", error.cause).pipe(
            Effect.annotateLogs({ service: "tenancy", batches: failed.length })
          )
        )
      )
    )

    const daily = Effect.fn("Usage.daily")(function*(tenantId: TenantId.TenantId, from: string, to: string) {
      yield* flush
      const days = daysBetween(from, to) ?? []
      const rows = new Map<string, { -readonly [K in keyof DailyUsage]: DailyUsage[K] }>(
        days.map((day) => [day, { day, requests: 0, embeddedCharacters: 0, llmTokens: 0, storedBytes: 0 }])
      )
      for (const { amount, day, kind } of yield* store.daily(tenantId, from, to)) {
        const row = rows.get(day)
        if (row !== undefined) row[kind] += amount
      }
      return [...rows.values()]
    })

    return Usage.of({
      record,
      flush,
      daily,
      events: store.events,
      pending: Effect.sync(() => buffer.size + failed.reduce((n, b) => n + b.events.length, 0)),
      prune
    })
  })

/**
 * The service on the `UsageStore` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Usage, never, UsageStore> =>
  Layer.effect(Usage, make(options))

/**
 * The service from {@link config}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<Usage, Config.ConfigError, UsageStore> = Layer.effect(
  Usage,
  Effect.flatMap(config, make)
)

/**
 * An in-memory store (tests, a single process).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemoryStore = (): UsageStore["Service"] => {
  // Batch id → when it was applied.
  const applied = new Map<string, number>()
  let events: Array<CloudEvent> = []
  const sums = new Map<string, number>()
  return UsageStore.of({
    apply: (batch) =>
      Effect.clockWith((clock) => {
        if (applied.has(batch.id)) return Effect.succeed(false)
        applied.set(batch.id, clock.currentTimeMillisUnsafe())
        for (const event of batch.events) {
          events.push(event)
          const key = `${event.data.tenantId}\u0000${event.data.day}\u0000${event.data.kind}`
          sums.set(key, (sums.get(key) ?? 0) + event.data.value)
        }
        return Effect.succeed(true)
      }),
    daily: (tenantId, from, to) =>
      Effect.sync(() => {
        const rows: Array<{ day: string; kind: UsageKind; amount: number }> = []
        for (const [key, amount] of sums) {
          const [tenant, day, kind] = key.split("\u0000") as [string, string, UsageKind]
          if (tenant === tenantId && day >= from && day <= to) rows.push({ day, kind, amount })
        }
        return rows.sort((a, b) => a.day < b.day ? -1 : a.day > b.day ? 1 : 0)
      }),
    events: (tenantId, from, to) =>
      Effect.sync(() => events.filter((e) => e.data.tenantId === tenantId && e.data.day >= from && e.data.day <= to)),
    prune: ({ batchesBefore, day }) =>
      Effect.sync(() => {
        const before = events.length
        events = events.filter((e) => e.data.day >= day)
        let days = 0
        for (const key of [...sums.keys()]) {
          if (key.split("\u0000")[1]! < day) {
            sums.delete(key)
            days++
          }
        }
        let batches = 0
        for (const [id, at] of applied) {
          if (at < batchesBefore) {
            applied.delete(id)
            batches++
          }
        }
        return { events: before - events.length, days, batches }
      })
  })
}

/**
 * The in-memory store.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemoryStore: Layer.Layer<UsageStore> = Layer.sync(UsageStore, makeMemoryStore)
