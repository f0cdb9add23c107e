/**
 * Circuit breakers (`/admin/circuit-breakers`): state, failure rate, counts and transitions; force-open,
 * force-close and reset after a confirmation with a reason (sent as `{ reason }`, for the audit log).
 *
 * @since 0.1.0
 */
import * as Api from "../lib/api.js"
import * as Format from "../lib/format.js"
import * as Prometheus from "../lib/prometheus.js"
import * as Sampler from "../lib/sampler.js"
import type { BreakerSnapshot, BreakerState } from "../lib/types.js"
import { announce, Badge, dataOf, ErrorBox, useAsync, useConfirm, ViewHeading } from "../ui.js"

const tone = (state: BreakerState) =>
  state === "closed" ? "ok" : state === "half-open" || state === "disabled" ? "warn" : "bad"

/** Transitions this console saw, by breaker (its polls and its own actions). */
const seen = new Map<string, Array<{ readonly at: number; readonly from: BreakerState; readonly to: BreakerState }>>()
const lastState = new Map<string, BreakerState>()

const observe = (snapshots: ReadonlyArray<BreakerSnapshot>, at: number) => {
  for (const snapshot of snapshots) {
    const before = lastState.get(snapshot.name)
    if (before !== undefined && before !== snapshot.state) {
      const list = seen.get(snapshot.name) ?? []
      list.unshift({ at, from: before, to: snapshot.state })
      seen.set(snapshot.name, list.slice(0, 5))
    }
    lastState.set(snapshot.name, snapshot.state)
  }
}

const failureRate = (b: BreakerSnapshot): string =>
  b.window !== null
    ? b.window.total === 0
      ? "0 % (no calls)"
      : `${Format.percent(b.window.failures / b.window.total)} of ${b.window.total}`
    : `${b.consecutiveFailures} in a row`

const actions = [
  {
    id: "force-open",
    label: "Force open",
    title: "Force the breaker open",
    effect: "Every call is rejected at once until the breaker is reset or force-closed.",
    danger: true
  },
  {
    id: "force-close",
    label: "Force close",
    title: "Force the breaker closed",
    effect: "Every call goes through and nothing is counted until the breaker is reset or forced open.",
    danger: true
  },
  {
    id: "reset",
    label: "Reset",
    title: "Reset the breaker",
    effect: "The breaker closes with empty counters and no backoff.",
    danger: false
  }
] as const

/**
 * The Breakers view.
 *
 * @since 0.1.0
 * @category views
 */
export const Breakers = () => {
  const [state, reload] = useAsync(
    async (signal) => {
      const breakers = await Api.get<ReadonlyArray<BreakerSnapshot>>("/admin/circuit-breakers", { signal })
      observe(breakers, Date.now())
      return breakers
    },
    [],
    { pollMs: Sampler.intervalMs }
  )
  const [dialog, confirm] = useConfirm(reload)
  const samples = Sampler.useSamples()
  const metrics = samples.at(-1)?.metrics
  const breakers = dataOf(state)
  // A declared counter without a series for this breaker is 0; an undeclared one is unknown.
  const counter = (name: string, breaker: string) =>
    metrics === undefined
      ? undefined
      : Prometheus.sum(metrics, name, { breaker }) ?? (metrics.has(name) ? 0 : undefined)
  return (
    <section aria-labelledby="breakers-title">
      <ViewHeading>
        <span id="breakers-title">Circuit breakers</span>
      </ViewHeading>
      <p class="hint">The state of every breaker, refreshed every {Sampler.intervalMs / 1000} s.</p>
      {state._tag === "failed" && <ErrorBox error={state.error} />}
      {breakers === undefined ? <p role="status">Loading breakers…</p> : breakers.length === 0
        ? <p>No circuit breakers: the server has no remote dependency configured (Ollama, Qdrant).</p>
        : (
          <ul class="cards" aria-label="Breakers">
            {breakers.map((b) => {
              const transitions = metrics === undefined
                ? new Map<string, number>()
                : Prometheus.sumBy(metrics, "circuit_breaker_transitions_total", "state", { breaker: b.name })
              const history = seen.get(b.name) ?? []
              return (
                <li key={b.name} class="card" data-testid={`breaker-${b.name}`}>
                  <div class="card-head">
                    <h2>{b.name}</h2>
                    <Badge tone={tone(b.state)}>
                      <span data-testid="breaker-state">{b.state}</span>
                    </Badge>
                  </div>
                  <dl class="facts">
                    <dt>Failure rate</dt>
                    <dd>{failureRate(b)}</dd>
                    {b.window !== null && (
                      <>
                        <dt>Slow calls</dt>
                        <dd>{b.window.slow}</dd>
                      </>
                    )}
                    <dt>Opened</dt>
                    <dd>{b.openedAt === null ? "—" : Format.time(b.openedAt)}</dd>
                    <dt>Retry after</dt>
                    <dd>{b.retryAfter === null ? "—" : Format.duration(b.retryAfter)}</dd>
                    <dt>Opens in a row</dt>
                    <dd>{b.attempts}</dd>
                    <dt>Calls · failures · rejected</dt>
                    <dd>
                      {Format.number(counter("circuit_breaker_calls_total", b.name))} ·{" "}
                      {Format.number(counter("circuit_breaker_failures_total", b.name))} ·{" "}
                      {Format.number(counter("circuit_breaker_rejections_total", b.name))}
                    </dd>
                    <dt>Transitions (since start)</dt>
                    <dd>
                      {transitions.size === 0
                        ? "none"
                        : [...transitions.entries()].map(([to, n]) => `${n}× ${to}`).join(", ")}
                    </dd>
                  </dl>
                  {history.length > 0 && (
                    <details>
                      <summary>Last transitions seen by this console</summary>
                      <ol class="plain">
                        {history.map((t) => <li key={t.at}>{Format.time(t.at)}: {t.from} → {t.to}</li>)}
                      </ol>
                    </details>
                  )}
                  <div class="card-actions">
                    {actions.map((action) => (
                      <button
                        key={action.id}
                        type="button"
                        class={action.danger ? "button danger-outline" : "button"}
                        onClick={() =>
                          confirm({
                            title: `${action.title}: ${b.name}`,
                            description: <p>{action.effect}</p>,
                            confirmLabel: action.label,
                            danger: action.danger,
                            reason: true,
                            run: async ({ reason }) => {
                              const reply = await Api.call<BreakerSnapshot>(
                                "POST",
                                `/admin/circuit-breakers/${encodeURIComponent(b.name)}/${action.id}`,
                                { body: { reason } }
                              )
                              observe([reply.data], Date.now())
                              announce(`${b.name} is now ${reply.data.state}`)
                            }
                          })}
                      >
                        {action.label}
                      </button>
                    ))}
                  </div>
                </li>
              )
            })}
          </ul>
        )}
      {dialog}
    </section>
  )
}
