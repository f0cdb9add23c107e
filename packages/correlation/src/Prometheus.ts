/**
 * `/metrics` in the Prometheus text format that `promtool check metrics` accepts, for every metric of the registry.
 *
 * Effect's `PrometheusMetrics` writes each metric as its id, type and description say. Metrics that do not follow
 * Prometheus' conventions come out as they are: a counter without `_total` (Effect's own fiber counters,
 * `child_fibers_started`…), a family without `# HELP`, a `Metric.timer` histogram in milliseconds, a gauge named
 * `…_total`. This module corrects the registry's snapshot first, then lets `PrometheusMetrics` render it:
 *
 * - a counter's name ends in `_total` (added when missing); a gauge's does not (removed);
 * - a `Frequency` is a counter per key (`key` label), named `…_total`;
 * - a histogram or summary in milli-, micro- or nanoseconds (its `time_unit` or `unit` attribute) is converted to
 *   seconds, its name ending in `_seconds` instead of the unit;
 * - names are snake_case; every family has `# HELP` (the description, else the name);
 * - a series that repeats a name and labels already written, or whose family already has another type, is left out.
 *
 * `overrides` decides per metric id: rename, retype (`counter` ↔ `gauge`), describe, or `drop`.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Metric } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { PrometheusMetrics } from "effect/observability"

/**
 * What to do with one metric (by its id): `drop` it, or write it with another name, type or help text.
 *
 * @since 0.1.0
 * @category models
 */
export type Override = "drop" | {
  readonly name?: string | undefined
  readonly type?: "counter" | "gauge" | undefined
  readonly help?: string | undefined
}

/**
 * Options of the renderer.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Per metric id. */
  readonly overrides?: Readonly<Record<string, Override>> | undefined
}

/**
 * The content type of the text exposition format.
 *
 * @since 0.1.0
 * @category constants
 */
export const contentType = "text/plain; version=0.0.4; charset=utf-8"

type Snapshot = Metric.Metric.Snapshot

const timeUnits: Readonly<Record<string, number>> = {
  nanoseconds: 1e-9,
  nanos: 1e-9,
  ns: 1e-9,
  microseconds: 1e-6,
  micros: 1e-6,
  us: 1e-6,
  milliseconds: 1e-3,
  millis: 1e-3,
  ms: 1e-3,
  seconds: 1,
  s: 1
}

const unitSuffix = /_(?:nanoseconds|nanos|ns|microseconds|micros|us|milliseconds|millis|ms|seconds)$/

const snakeCase = (id: string): string =>
  id.replace(/([a-z0-9])([A-Z])/g, "$1_$2").replace(/[^a-zA-Z0-9_:]/g, "_").replace(/_+/g, "_").toLowerCase()

const withoutUnits = (attributes: Metric.Metric.AttributeSet | undefined): Metric.Metric.AttributeSet | undefined => {
  if (attributes === undefined || (!("unit" in attributes) && !("time_unit" in attributes))) return attributes
  const { time_unit: _, unit: __, ...rest } = attributes
  return rest
}

const seriesKey = (name: string, attributes: Metric.Metric.AttributeSet | undefined) =>
  JSON.stringify([name, Object.entries(attributes ?? {}).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)])

/**
 * The registry's snapshot, corrected as the module describes: what {@link formatUnsafe} renders.
 *
 * @since 0.1.0
 * @category formatting
 */
export const conform = (snapshots: ReadonlyArray<Snapshot>, options: Options = {}): ReadonlyArray<Snapshot> => {
  const out: Array<Snapshot> = []
  const seen = new Set<string>()
  const families = new Map<string, Snapshot["type"]>()
  const push = (snapshot: Snapshot) => {
    const family = families.get(snapshot.id)
    if (family !== undefined && family !== snapshot.type) return
    const key = seriesKey(snapshot.id, snapshot.attributes)
    if (seen.has(key)) return
    seen.add(key)
    families.set(snapshot.id, snapshot.type)
    out.push(snapshot)
  }
  for (const snapshot of snapshots) {
    const override = options.overrides?.[snapshot.id]
    if (override === "drop") continue
    let name = override?.name ?? snakeCase(snapshot.id)
    const described = override?.help ?? snapshot.description
    const attributes = withoutUnits(snapshot.attributes)
    const unit = snapshot.attributes?.["time_unit"] ?? snapshot.attributes?.["unit"]
    const scale = unit === undefined ? undefined : timeUnits[unit.toLowerCase()]
    switch (snapshot.type) {
      case "Counter":
      case "Gauge": {
        const value = snapshot.type === "Counter" ? snapshot.state.count : snapshot.state.value
        const type = override?.type ?? (snapshot.type === "Counter" ? "counter" : "gauge")
        if (type === "counter") {
          if (!name.endsWith("_total")) name += "_total"
          push(
            {
              ...snapshot,
              id: name,
              description: described ?? name,
              attributes,
              type: "Counter",
              state: { count: value, incremental: true }
            } as Snapshot
          )
        } else {
          if (name.endsWith("_total")) name = name.slice(0, -6)
          push(
            {
              ...snapshot,
              id: name,
              description: described ?? name,
              attributes,
              type: "Gauge",
              state: { value }
            } as Snapshot
          )
        }
        break
      }
      case "Frequency": {
        if (!name.endsWith("_total")) name += "_total"
        for (const [key, count] of snapshot.state.occurrences) {
          push({
            id: name,
            type: "Counter",
            description: described ?? name,
            attributes: { ...attributes, key },
            state: { count, incremental: true }
          } as Snapshot)
        }
        break
      }
      case "Histogram": {
        const state = snapshot.state
        if (scale !== undefined && scale !== 1) {
          name = `${name.replace(unitSuffix, "")}_seconds`
          push({
            ...snapshot,
            id: name,
            description: described ?? name,
            attributes,
            state: {
              buckets: state.buckets.map(([boundary, count]) => [boundary * scale, count] as [number, number]),
              count: state.count,
              sum: state.sum * scale,
              min: state.min * scale,
              max: state.max * scale
            }
          })
        } else {
          if (scale === 1 && !name.endsWith("_seconds")) name = `${name.replace(unitSuffix, "")}_seconds`
          push({ ...snapshot, id: name, description: described ?? name, attributes })
        }
        break
      }
      case "Summary": {
        const state = snapshot.state
        if (scale !== undefined) {
          name = `${name.replace(unitSuffix, "")}_seconds`
          push({
            ...snapshot,
            id: name,
            description: described ?? name,
            attributes,
            state: {
              quantiles: state.quantiles.map(([q, value]) =>
                [q, value === undefined ? undefined : value * scale] as const
              ),
              count: state.count,
              sum: state.sum * scale,
              min: state.min * scale,
              max: state.max * scale
            }
          } as Snapshot)
        } else {
          push({ ...snapshot, id: name, description: described ?? name, attributes })
        }
        break
      }
    }
  }
  return out
}

const noop = () => {}

/**
 * Every metric of `context`'s registry in the text exposition format, corrected by {@link conform} and rendered by
 * Effect's `PrometheusMetrics`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatUnsafe = (context: Context.Context<never>, options: Options = {}): string => {
  const registry: Metric.MetricRegistry = new Map()
  const conformed = conform(Metric.snapshotUnsafe(context), options)
  for (let i = 0; i < conformed.length; i++) {
    const { state, ...metadata } = conformed[i]!
    registry.set(String(i), { ...metadata, hooks: { get: () => state, update: noop, modify: noop } })
  }
  return PrometheusMetrics.formatUnsafe(Context.make(Metric.MetricRegistry, registry))
}

/**
 * Every metric of the current registry in the text exposition format (see {@link formatUnsafe}).
 *
 * @since 0.1.0
 * @category formatting
 */
export const format = (options: Options = {}): Effect.Effect<string> =>
  Effect.map(Effect.context<never>(), (context) => formatUnsafe(context, options))

/**
 * Adds `GET /metrics` (or `path`) to the router: the registry of the context the route runs in, in the text format.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerHttp = (
  options: Options & { readonly path?: HttpRouter.PathInput | undefined } = {}
): Layer.Layer<never, never, HttpRouter.HttpRouter> =>
  Layer.effectDiscard(Effect.flatMap(Effect.service(HttpRouter.HttpRouter), (router) =>
    router.add(
      "GET",
      options.path ?? "/metrics",
      Effect.map(format(options), (body) => HttpServerResponse.text(body, { contentType }))
    )))
