/**
 * `GET /metrics`: every Effect metric of the process (breakers, rate-limit decisions, in-flight requests, …) in the
 * Prometheus text exposition format. Never rate limited; meant for a scraper on the cluster network.
 *
 * @since 0.1.0
 */
import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { Effect, Metric, MetricState, Option } from "effect"
import type { MetricPair } from "effect"

const name = (raw: string) => raw.replace(/[^a-zA-Z0-9_:]/g, "_")
const escape = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')
const labels = (tags: ReadonlyArray<{ readonly key: string; readonly value: string }>, extra?: string) => {
  const parts = tags.map((t) => `${name(t.key)}="${escape(t.value)}"`)
  if (extra !== undefined) parts.push(extra)
  return parts.length === 0 ? "" : `{${parts.join(",")}}`
}

/**
 * Renders metric pairs as Prometheus text (one `# TYPE` per family).
 *
 * @since 0.1.0
 * @category utils
 */
export const render = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, { type: string; help: string | undefined; lines: Array<string> }>()
  const family = (metric: string, type: string, help: Option.Option<string>) => {
    let entry = families.get(metric)
    if (entry === undefined) {
      entry = { type, help: Option.getOrUndefined(help), lines: [] }
      families.set(metric, entry)
    }
    return entry.lines
  }
  for (const pair of pairs) {
    const metric = name(pair.metricKey.name)
    const tags = pair.metricKey.tags
    const state = pair.metricState
    const help = pair.metricKey.description
    if (MetricState.isCounterState(state)) {
      family(metric, "counter", help).push(`${metric}${labels(tags)} ${Number(state.count)}`)
    } else if (MetricState.isGaugeState(state)) {
      family(metric, "gauge", help).push(`${metric}${labels(tags)} ${Number(state.value)}`)
    } else if (MetricState.isHistogramState(state)) {
      const lines = family(metric, "histogram", help)
      for (const [bound, count] of state.buckets) {
        lines.push(`${metric}_bucket${labels(tags, `le="${Number.isFinite(bound) ? bound : "+Inf"}"`)} ${count}`)
      }
      lines.push(`${metric}_sum${labels(tags)} ${state.sum}`, `${metric}_count${labels(tags)} ${state.count}`)
    } else if (MetricState.isSummaryState(state)) {
      const lines = family(metric, "summary", help)
      for (const [quantile, value] of state.quantiles) {
        if (Option.isSome(value)) lines.push(`${metric}${labels(tags, `quantile="${quantile}"`)} ${value.value}`)
      }
      lines.push(`${metric}_sum${labels(tags)} ${state.sum}`, `${metric}_count${labels(tags)} ${state.count}`)
    } else if (MetricState.isFrequencyState(state)) {
      const lines = family(metric, "counter", help)
      for (const [key, count] of state.occurrences) lines.push(`${metric}${labels(tags, `key="${escape(key)}"`)} ${count}`)
    }
  }
  let out = ""
  for (const [metric, { help, lines, type }] of families) {
    if (help !== undefined) out += `# HELP ${metric} ${escape(help)}\n`
    out += `# TYPE ${metric} ${type}\n${lines.join("\n")}\n`
  }
  return out
}

/**
 * Adds `GET /metrics` to the api's router.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = HttpApiBuilder.Router.use((router) =>
  router.get(
    "/metrics",
    Effect.map(Metric.snapshot, (pairs) =>
      HttpServerResponse.text(render(pairs), { contentType: "text/plain; version=0.0.4; charset=utf-8" }))
  )
)
