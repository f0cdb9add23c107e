/**
 * The console's live feed: `/metrics` and the three health probes, read every few seconds while an administrator is
 * signed in and the tab is visible, kept for the last minutes so the charts have a history when a view opens.
 *
 * @since 0.1.0
 */
import { useEffect, useState } from "preact/hooks"
import { call } from "./api.js"
import * as Prometheus from "./prometheus.js"
import * as Traffic from "./traffic.js"

/**
 * A health report (draft-inadarei-api-health-check).
 *
 * @since 0.1.0
 * @category models
 */
export interface HealthReport {
  readonly status: "pass" | "warn" | "fail"
  readonly serviceId?: string
  readonly description?: string
  readonly notes?: ReadonlyArray<string>
  readonly output?: string
  readonly checks?: Readonly<
    Record<
      string,
      ReadonlyArray<{
        readonly componentId?: string
        readonly componentType?: string
        readonly observedValue?: unknown
        readonly observedUnit?: string
        readonly status: "pass" | "warn" | "fail"
        readonly time?: string
        readonly output?: string
      }>
    >
  >
}

/**
 * One reading.
 *
 * @since 0.1.0
 * @category models
 */
export interface Sample {
  readonly at: number
  readonly metrics: Prometheus.Metrics | undefined
  readonly traffic: Traffic.Scrape | undefined
  readonly ready: HealthReport | undefined
  readonly live: HealthReport | undefined
  readonly startup: HealthReport | undefined
  /** What failed in this reading, if anything. */
  readonly errors: ReadonlyArray<unknown>
}

/**
 * Seconds between readings.
 *
 * @since 0.1.0
 * @category constants
 */
export const intervalMs = 5000

const keep = 72

let samples: ReadonlyArray<Sample> = []
let timer: ReturnType<typeof setTimeout> | undefined
let running = false
const listeners = new Set<(samples: ReadonlyArray<Sample>) => void>()

const probe = (path: string) =>
  call<HealthReport>("GET", path, { accept: "application/health+json", accepted: [503] }).then((r) => r.data)

/**
 * Takes one reading now.
 *
 * @since 0.1.0
 * @category sampling
 */
export const sample = async (): Promise<Sample> => {
  const at = Date.now()
  const errors: Array<unknown> = []
  const [metricsText, ready, live, startup] = await Promise.all([
    call<string>("GET", "/metrics", { text: true, accept: "text/plain" }).then((r) => r.data, (e: unknown) => {
      errors.push(e)
      return undefined
    }),
    ...["/health/ready", "/health/live", "/health/startup"].map((path) =>
      probe(path).catch((e: unknown) => {
        errors.push(e)
        return undefined
      })
    )
  ])
  const metrics = metricsText === undefined ? undefined : Prometheus.parse(metricsText)
  const reading: Sample = {
    at,
    metrics,
    traffic: metrics === undefined ? undefined : Traffic.read(metrics, at),
    ready,
    live,
    startup,
    errors
  }
  samples = [...samples, reading].slice(-keep)
  for (const listener of listeners) listener(samples)
  return reading
}

const loop = () => {
  if (!running) return
  const next = () => {
    if (running) timer = setTimeout(loop, intervalMs)
  }
  if (document.visibilityState === "visible") void sample().finally(next)
  else next()
}

/**
 * Starts reading (idempotent).
 *
 * @since 0.1.0
 * @category sampling
 */
export const start = (): void => {
  if (running) return
  running = true
  loop()
}

/**
 * Stops reading and forgets every reading (sign-out).
 *
 * @since 0.1.0
 * @category sampling
 */
export const stop = (): void => {
  running = false
  if (timer !== undefined) clearTimeout(timer)
  timer = undefined
  samples = []
  for (const listener of listeners) listener(samples)
}

/**
 * The readings so far, re-rendered on each new one.
 *
 * @since 0.1.0
 * @category hooks
 */
export const useSamples = (): ReadonlyArray<Sample> => {
  const [state, setState] = useState(samples)
  useEffect(() => {
    listeners.add(setState)
    setState(samples)
    return () => {
      listeners.delete(setState)
    }
  }, [])
  return state
}

/**
 * The points between consecutive readings.
 *
 * @since 0.1.0
 * @category reading
 */
export const points = (readings: ReadonlyArray<Sample>): Array<Traffic.Point> => {
  const out: Array<Traffic.Point> = []
  for (let i = 1; i < readings.length; i++) {
    const before = readings[i - 1]!.traffic
    const after = readings[i]!.traffic
    if (before !== undefined && after !== undefined) out.push(Traffic.between(before, after))
  }
  return out
}
