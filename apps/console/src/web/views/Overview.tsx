/**
 * Overview: every health check of `/health/ready` (and the live and startup probes), request and error rates, p50
 * and p99 latency and requests in flight from `/metrics`, drawn over the last minutes.
 *
 * @since 0.1.0
 */
import { useEffect } from "preact/hooks"
import * as Format from "../lib/format.js"
import * as Prometheus from "../lib/prometheus.js"
import * as Sampler from "../lib/sampler.js"
import * as Traffic from "../lib/traffic.js"
import { Badge, ErrorBox, Notice, TimeChart, ViewHeading } from "../ui.js"

const tone = (status: string | undefined) =>
  status === "pass" ? "ok" : status === "warn" ? "warn" : status === "fail" ? "bad" : "neutral"

const observed = (value: unknown, unit: string | undefined): string =>
  value === undefined || value === null
    ? "—"
    : `${typeof value === "number" ? Format.number(value) : String(value)}${unit === undefined ? "" : ` ${unit}`}`

const missingMetric = (what: string, names: ReadonlyArray<string>) => (
  <span>
    The server's <code>/metrics</code> has no {what} ({names.map((n, i) => (
      <span key={n}>
        {i > 0 ? " or " : ""}
        <code>{n}</code>
      </span>
    ))}).
  </span>
)

const breakerStates = ["closed", "open", "half-open", "forced-open", "disabled"] as const

/**
 * The Overview view.
 *
 * @since 0.1.0
 * @category views
 */
export const Overview = () => {
  const samples = Sampler.useSamples()
  useEffect(() => {
    // A reading right away rather than at the next tick.
    if (samples.length === 0) void Sampler.sample()
  }, [])
  const latest = samples.at(-1)
  const points = Sampler.points(samples)
  const series = (pick: (p: Traffic.Point) => number | undefined) => points.map((p) => [p.at, pick(p)] as const)
  const traffic = latest?.traffic
  const noRequests = traffic !== undefined && traffic.requestSeries === undefined
  const noLatency = traffic !== undefined && traffic.latencySeries === undefined
  const checks = Object.entries(latest?.ready?.checks ?? {}).flatMap(([key, results]) =>
    results.map((result, i) => ({ key: results.length > 1 ? `${key} #${i + 1}` : key, ...result }))
  )
  const breakers = latest?.metrics === undefined
    ? []
    : Prometheus.samples(latest.metrics, "circuit_breaker_state").map((s) => ({
      name: s.labels["breaker"] ?? "?",
      state: breakerStates[s.value] ?? String(s.value)
    }))
  return (
    <section aria-labelledby="overview-title">
      <ViewHeading>
        <span id="overview-title">Overview</span>
      </ViewHeading>
      <p class="hint">
        Read every {Sampler.intervalMs / 1000} s from <code>/health/ready</code>, <code>/health/live</code>,{" "}
        <code>/health/startup</code> and <code>/metrics</code> while this tab is visible.
        {latest !== undefined && <span>Last reading {Format.time(latest.at)}.</span>}
      </p>
      {latest?.errors.map((error, i) => <ErrorBox key={i} error={error} title="Reading failed" />)}
      <h2>Health</h2>
      {latest === undefined ? <p role="status">Reading the probes…</p> : (
        <div data-testid="health">
          <ul class="probe-list" aria-label="Probes">
            {(["ready", "live", "startup"] as const).map((probe) => (
              <li key={probe}>
                <span class="probe-name">{probe}</span>
                <Badge tone={tone(latest[probe]?.status)}>{latest[probe]?.status ?? "unknown"}</Badge>
              </li>
            ))}
          </ul>
          {latest.ready?.notes !== undefined && latest.ready.notes.length > 0 && (
            <Notice tone="warning">{latest.ready.notes.join(" ")}</Notice>
          )}
          <div class="table-wrap" tabIndex={0} role="region" aria-label="Readiness checks table">
            <table>
              <caption class="sr-only">Checks of the readiness probe</caption>
              <thead>
                <tr>
                  <th scope="col">Check</th>
                  <th scope="col">Status</th>
                  <th scope="col">Observed</th>
                  <th scope="col">Type</th>
                  <th scope="col">Output</th>
                </tr>
              </thead>
              <tbody>
                {checks.map((check) => (
                  <tr key={check.key} data-testid="health-check">
                    <th scope="row">{check.key}</th>
                    <td>
                      <Badge tone={tone(check.status)}>{check.status}</Badge>
                    </td>
                    <td>{observed(check.observedValue, check.observedUnit)}</td>
                    <td>{check.componentType ?? "—"}</td>
                    <td>{check.output ?? ""}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
      )}
      <h2>Traffic</h2>
      {noRequests && (
        <Notice tone="warning">
          {missingMetric("request counts", [
            ...Traffic.durationHistograms.map((n) => `${n}_count`),
            ...Traffic.requestCounters
          ])}
        </Notice>
      )}
      <div class="charts">
        <TimeChart
          title="Request rate"
          series={[{ label: "requests", points: series((p) => p.rate) }]}
          format={(v) => v === undefined ? "—" : `${Format.number(v)}/s`}
          empty={noRequests ? "Not exposed by this server." : undefined}
        />
        <TimeChart
          title="Error rate"
          series={[{ label: "5xx", points: series((p) => p.errorRatio) }]}
          format={Format.percent}
          empty={noRequests ? "Not exposed by this server." : undefined}
        />
        <TimeChart
          title="Latency"
          series={[
            { label: "p50", points: series((p) => p.p50) },
            { label: "p99", points: series((p) => p.p99) }
          ]}
          format={Format.millis}
          empty={noLatency ? "Not exposed by this server." : undefined}
        />
        <TimeChart
          title="In flight"
          series={[{ label: "requests", points: series((p) => p.inFlight) }]}
          format={Format.number}
          empty={traffic !== undefined && traffic.inFlight === undefined ? "Not exposed by this server." : undefined}
        />
      </div>
      {noLatency && !noRequests && (
        <Notice tone="warning">{missingMetric("latency histogram", Traffic.durationHistograms)}</Notice>
      )}
      {breakers.length > 0 && (
        <>
          <h2>Circuit breakers</h2>
          <ul class="probe-list" aria-label="Circuit breakers" data-testid="overview-breakers">
            {breakers.map((b) => (
              <li key={b.name}>
                <a href={`breakers`}>{b.name}</a>
                <Badge
                  tone={b.state === "closed"
                    ? "ok"
                    : b.state === "half-open" || b.state === "disabled"
                    ? "warn"
                    : "bad"}
                >
                  {b.state}
                </Badge>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  )
}
