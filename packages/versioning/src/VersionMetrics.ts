/**
 * Requests by API version, so an operator sees who still calls a deprecated version before its sunset.
 *
 * - `api_version_requests_total{version, outcome}`: every request under the API prefix, counted by the negotiation
 *   middleware. `outcome` is `served`, `gone` (410 after the sunset) or `unsupported` (400; `version` is then
 *   `unknown` for a version the service does not serve, `malformed` for one that is not a version at all).
 * - `api_version_caller_requests_total{version, caller}`: requests that reached a versioned handler, by caller (the
 *   tenant, from `VersionAccess.caller`), counted only when the server supplies a caller.
 *
 * The series are counted in plain numbers and read by the metric registry when it is read
 * (`Metric.registerUnsafe`), so counting costs an increment on the hot path.
 *
 * @since 0.1.0
 */
import { Context, Metric } from "effect"

/**
 * Requests by version and outcome.
 *
 * @since 0.1.0
 * @category metrics
 */
export const requests = Metric.counter("api_version_requests_total", {
  description: "API requests by negotiated version and outcome (served, gone, unsupported)",
  incremental: true
})

/**
 * Requests that reached a versioned handler, by version and caller.
 *
 * @since 0.1.0
 * @category metrics
 */
export const callerRequests = Metric.counter("api_version_caller_requests_total", {
  description: "API requests that reached a handler, by version and caller (tenant)",
  incremental: true
})

/**
 * One series: a number the registry reads.
 *
 * @since 0.1.0
 * @category models
 */
export interface Cell {
  count: number
}

/**
 * The series of a metric in one registry, by attribute values, created on first use.
 *
 * @since 0.1.0
 * @category models
 */
export interface Series {
  readonly get: (attributes: Readonly<Record<string, string>>) => Cell
}

// Per registry, per metric: one set of cells, whoever counts into them (every versioned group, the middleware).
const registries = new WeakMap<object, Map<string, Series>>()

/**
 * The series of `metric` in the registry of `context` (a fiber's or a layer's context), shared by everything that
 * counts into that registry.
 *
 * @since 0.1.0
 * @category constructors
 */
export const series = (metric: Metric.Metric<number, unknown>, context: Context.Context<never>): Series => {
  const registry = Context.get(context, Metric.MetricRegistry)
  let byMetric = registries.get(registry)
  if (byMetric === undefined) registries.set(registry, byMetric = new Map())
  const existing = byMetric.get(metric.id)
  if (existing !== undefined) return existing
  const cells = new Map<string, Cell>()
  const created: Series = {
    get: (attributes) => {
      const key = Object.values(attributes).join("\u0000")
      let cell = cells.get(key)
      if (cell === undefined) {
        const fresh: Cell = { count: 0 }
        Metric.registerUnsafe(Metric.withAttributes(metric, attributes), context, {
          get: () => ({ count: fresh.count, incremental: true }) as never,
          update: () => {},
          modify: () => {}
        })
        cells.set(key, cell = fresh)
      }
      return cell
    }
  }
  byMetric.set(metric.id, created)
  return created
}

/**
 * The most callers {@link callerRequests} labels one by one; later ones share the label `other`.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxCallers = 10_000

const callerSets = new WeakMap<Series, Set<string>>()

/**
 * The cell of `caller`'s requests to `version` in {@link callerRequests}: `anonymous` without a caller, `other` past
 * {@link maxCallers} callers.
 *
 * @since 0.1.0
 * @category utils
 */
export const callerCell = (
  callers: Series,
  version: string,
  caller: string | undefined
): Cell => {
  let known = callerSets.get(callers)
  if (known === undefined) callerSets.set(callers, known = new Set())
  let label = "anonymous"
  if (caller !== undefined) {
    if (known.has(caller)) label = caller
    else if (known.size < maxCallers) {
      known.add(caller)
      label = caller
    } else label = "other"
  }
  return callers.get({ version, caller: label })
}
