/**
 * Feature flags (`/admin/flags`): variants and targeting, per-tenant overrides, evaluation counts per variant (from
 * `/metrics` `feature_flag_evaluations_total`), and the kill switch. A tenant administrator sees and sets only its
 * own tenant's overrides.
 *
 * @since 0.1.0
 */
import { useRef, useState } from "preact/hooks"
import * as Api from "../lib/api.js"
import * as Format from "../lib/format.js"
import * as Prometheus from "../lib/prometheus.js"
import * as Router from "../lib/router.js"
import * as Sampler from "../lib/sampler.js"
import type { Session } from "../lib/session.js"
import type { FlagDefinition, FlagView } from "../lib/types.js"
import {
  announce,
  Badge,
  BarChart,
  dataOf,
  ErrorBox,
  type Series,
  TimeChart,
  Unavailable,
  useAsync,
  useConfirm,
  useOffered,
  ViewHeading
} from "../ui.js"

const evaluations = "feature_flag_evaluations_total"

const definitionOf = (view: FlagView): FlagDefinition | undefined => {
  const d = view.definition as Partial<FlagDefinition>
  return typeof d.variants === "object" && d.variants !== null ? (d as FlagDefinition) : undefined
}

const json = (value: unknown) => JSON.stringify(value, null, 2)

const useEvaluations = (key: string | undefined) => {
  const samples = Sampler.useSamples()
  const latest = samples.at(-1)?.metrics
  const totals = latest === undefined
    ? new Map<string, number>()
    : Prometheus.sumBy(latest, evaluations, "variant", key === undefined ? undefined : { flag: key })
  const variants = [...totals.keys()].sort().slice(0, 4)
  const series: Array<Series> = variants.map((variant) => ({
    label: variant === "" ? "(none)" : variant,
    points: samples.slice(1).map((s, i) => {
      const before = samples[i]!
      const a = before.metrics === undefined
        ? undefined
        : Prometheus.sum(before.metrics, evaluations, { flag: key ?? "", variant })
      const b = s.metrics === undefined
        ? undefined
        : Prometheus.sum(s.metrics, evaluations, { flag: key ?? "", variant })
      const delta = Prometheus.increase(a ?? 0, b)
      return [s.at, delta === undefined ? undefined : delta / ((s.at - before.at) / 1000)] as const
    })
  }))
  return { totals, series, hasMetrics: latest !== undefined }
}

const FlagList = ({ session }: { readonly session: Session }) => {
  const [state] = useAsync((signal) => Api.get<ReadonlyArray<FlagView>>("/admin/flags", { signal }), [])
  const samples = Sampler.useSamples()
  const metrics = samples.at(-1)?.metrics
  const flags = dataOf(state)
  return (
    <>
      {state._tag === "failed" && <ErrorBox error={state.error} />}
      {flags === undefined ?
        <p role="status">Loading flags…</p> :
        flags.length === 0 ?
        <p>No flags are defined.</p> :
        (
          <div class="table-wrap" tabIndex={0} role="region" aria-label="Feature flags table">
            <table data-testid="flags">
              <caption class="sr-only">Feature flags</caption>
              <thead>
                <tr>
                  <th scope="col">Flag</th>
                  <th scope="col">State</th>
                  <th scope="col">Variants</th>
                  <th scope="col">Default</th>
                  <th scope="col">{session.role === "admin" ? "Overrides" : "Your override"}</th>
                  {session.role === "admin" && <th scope="col">Evaluations</th>}
                  <th scope="col">Source</th>
                </tr>
              </thead>
              <tbody>
                {flags.map((flag) => {
                  const d = definitionOf(flag)
                  const own = session.tenantId === undefined ? undefined : flag.overrides[session.tenantId]
                  return (
                    <tr key={flag.key} data-testid="flag-row">
                      <th scope="row">
                        <a href={Router.href(`flags/${encodeURIComponent(flag.key)}`)}>{flag.key}</a>
                      </th>
                      <td>
                        {flag.kill !== undefined
                          ? <Badge tone="bad">killed</Badge>
                          : d?.state === "DISABLED"
                          ? <Badge tone="warn">disabled</Badge>
                          : <Badge tone="ok">enabled</Badge>}
                      </td>
                      <td>{d === undefined ? "—" : Object.keys(d.variants).join(", ")}</td>
                      <td>{d?.defaultVariant ?? "—"}</td>
                      <td>{session.role === "admin" ? Object.keys(flag.overrides).length : own?.variant ?? "none"}</td>
                      {session.role === "admin" && (
                        <td>
                          {metrics === undefined
                            ? "—"
                            : Format.number(Prometheus.sum(metrics, evaluations, { flag: flag.key }) ?? 0)}
                        </td>
                      )}
                      <td>{flag.source}</td>
                    </tr>
                  )
                })}
              </tbody>
            </table>
          </div>
        )}
    </>
  )
}

const FlagDetail = ({ flagKey, session }: { readonly flagKey: string; readonly session: Session }) => {
  const path = `/admin/flags/${encodeURIComponent(flagKey)}`
  const [state, reload] = useAsync((signal) => Api.get<FlagView>(path, { signal }), [flagKey])
  const [dialog, confirm] = useConfirm(reload)
  const [overrideTenant, setOverrideTenant] = useState(session.tenantId ?? "")
  const [overrideVariant, setOverrideVariant] = useState("")
  const [overrideReason, setOverrideReason] = useState("")
  const [overrideError, setOverrideError] = useState<unknown>(undefined)
  const killInput = useRef({ variant: "" })
  const stats = useEvaluations(flagKey)
  const flag = dataOf(state)
  const d = flag === undefined ? undefined : definitionOf(flag)
  const variants = d === undefined ? [] : Object.keys(d.variants)
  const isAdmin = session.role === "admin"

  const setOverride = async (event: Event) => {
    event.preventDefault()
    setOverrideError(undefined)
    try {
      const tenant = overrideTenant.trim()
      const variant = overrideVariant || variants[0]
      if (tenant === "" || variant === undefined) throw new Error("Give a tenant and a variant.")
      await Api.call<FlagView>("PUT", `${path}/tenants/${encodeURIComponent(tenant)}`, {
        body: overrideReason.trim() === "" ? { variant } : { variant, reason: overrideReason.trim() }
      })
      announce(`${tenant} now gets ${variant} of ${flagKey}`)
      setOverrideReason("")
      reload()
    } catch (cause) {
      setOverrideError(cause)
    }
  }

  return (
    <>
      <p>
        <a href={Router.href("flags")}>← All flags</a>
      </p>
      {state._tag === "failed" && <ErrorBox error={state.error} />}
      {flag === undefined ? <p role="status">Loading {flagKey}…</p> : (
        <div class="grid-2">
          <section aria-labelledby="flag-definition" class="panel">
            <h2 id="flag-definition">Definition</h2>
            <dl class="facts">
              <dt>State</dt>
              <dd>{d?.state ?? "—"}</dd>
              <dt>Default variant</dt>
              <dd>{d?.defaultVariant ?? "—"}</dd>
              <dt>Source</dt>
              <dd>{flag.source}</dd>
            </dl>
            <h3>Variants</h3>
            {d === undefined ? <pre>{json(flag.definition)}</pre> : (
              <ul class="plain">
                {Object.entries(d.variants).map(([name, value]) => (
                  <li key={name}>
                    <strong>{name}</strong>: <code>{JSON.stringify(value)}</code>
                  </li>
                ))}
              </ul>
            )}
            <h3>Targeting</h3>
            {d?.targeting === undefined || Object.keys(d.targeting).length === 0
              ? <p>No targeting rules: everyone gets the default variant.</p>
              : <pre class="code" tabIndex={0} aria-label="Targeting rules (JsonLogic)">{json(d.targeting)}</pre>}
          </section>
          <section aria-labelledby="flag-kill" class="panel">
            <h2 id="flag-kill">Kill switch</h2>
            {flag.kill !== undefined
              ? (
                <div data-testid="kill-state">
                  <p>
                    <Badge tone="bad">killed</Badge> serving {flag.kill.variant ?? "the default variant"} everywhere
                  </p>
                  <p class="small">By {flag.kill.actor} at {Format.time(flag.kill.at)}: {flag.kill.reason}</p>
                </div>
              )
              : (
                <p data-testid="kill-state">
                  <Badge tone="ok">live</Badge> rules and overrides apply
                </p>
              )}
            {isAdmin && (flag.kill === undefined
              ? (
                <button
                  type="button"
                  class="button danger"
                  onClick={() => {
                    killInput.current = { variant: "" }
                    confirm({
                      title: `Kill ${flagKey}`,
                      description: (
                        <p>Every evaluation of {flagKey} serves one variant, whatever its rules and overrides.</p>
                      ),
                      extra: (
                        <div class="field">
                          <label for="kill-variant">Variant to serve</label>
                          <select
                            id="kill-variant"
                            onChange={(e) => (killInput.current.variant = e.currentTarget.value)}
                          >
                            <option value="">the off variant (default)</option>
                            {variants.map((v) => <option key={v} value={v}>{v}</option>)}
                          </select>
                        </div>
                      ),
                      confirmLabel: "Kill the flag",
                      danger: true,
                      reason: true,
                      run: async ({ reason }) => {
                        const variant = killInput.current.variant
                        await Api.call<FlagView>("POST", `${path}/kill`, {
                          body: variant === "" ? { reason } : { reason, variant }
                        })
                        announce(`${flagKey} killed`)
                      }
                    })
                  }}
                >
                  Kill…
                </button>
              )
              : (
                <button
                  type="button"
                  class="button"
                  onClick={() =>
                    confirm({
                      title: `Release the kill switch of ${flagKey}`,
                      description: <p>Its rules and overrides apply again.</p>,
                      confirmLabel: "Release",
                      reason: { required: false },
                      run: async ({ reason }) => {
                        await Api.call<FlagView>("DELETE", `${path}/kill`, { query: { reason } })
                        announce(`${flagKey} released`)
                      }
                    })}
                >
                  Release…
                </button>
              ))}
          </section>
          <section aria-labelledby="flag-overrides" class="panel">
            <h2 id="flag-overrides">{isAdmin ? "Tenant overrides" : "Your tenant's override"}</h2>
            {Object.keys(flag.overrides).length === 0 ?
              <p>No override.</p> :
              (
                <div class="table-wrap" tabIndex={0} role="region" aria-label="Tenant overrides table">
                  <table data-testid="overrides">
                    <thead>
                      <tr>
                        <th scope="col">Tenant</th>
                        <th scope="col">Variant</th>
                        <th scope="col">Set by</th>
                        <th scope="col">
                          <span class="sr-only">Actions</span>
                        </th>
                      </tr>
                    </thead>
                    <tbody>
                      {Object.entries(flag.overrides).map(([tenant, o]) => (
                        <tr key={tenant}>
                          <th scope="row">{tenant}</th>
                          <td>{o.variant}</td>
                          <td>{o.actor}, {Format.time(o.at)}{o.reason !== undefined ? `: ${o.reason}` : ""}</td>
                          <td>
                            <button
                              type="button"
                              class="button"
                              aria-label={`Remove the override of ${tenant}`}
                              onClick={() =>
                                confirm({
                                  title: `Remove the override of ${tenant}`,
                                  description: <p>{tenant} gets what the rules give it again.</p>,
                                  confirmLabel: "Remove",
                                  reason: { required: false },
                                  run: async ({ reason }) => {
                                    await Api.call<FlagView>(
                                      "DELETE",
                                      `${path}/tenants/${encodeURIComponent(tenant)}`,
                                      { query: { reason } }
                                    )
                                    announce(`Override of ${tenant} removed`)
                                  }
                                })}
                            >
                              Remove
                            </button>
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
              )}
            <form class="stack" onSubmit={setOverride}>
              <h3>Set an override</h3>
              <div class="field">
                <label for="override-tenant">Tenant</label>
                <input
                  id="override-tenant"
                  value={overrideTenant}
                  readOnly={!isAdmin}
                  required
                  onInput={(e) => setOverrideTenant(e.currentTarget.value)}
                />
              </div>
              <div class="field">
                <label for="override-variant">Variant</label>
                <select
                  id="override-variant"
                  value={overrideVariant || variants[0]}
                  onChange={(e) => setOverrideVariant(e.currentTarget.value)}
                >
                  {variants.map((v) => <option key={v} value={v}>{v}</option>)}
                </select>
              </div>
              <div class="field">
                <label for="override-reason">Reason (optional, goes to the audit log)</label>
                <input
                  id="override-reason"
                  value={overrideReason}
                  onInput={(e) => setOverrideReason(e.currentTarget.value)}
                />
              </div>
              <button type="submit" class="button primary">Set override</button>
              {overrideError !== undefined && <ErrorBox error={overrideError} />}
            </form>
          </section>
          {isAdmin && (
            <section aria-labelledby="flag-evaluations" class="panel">
              <h2 id="flag-evaluations">Evaluations</h2>
              <BarChart
                title="Evaluations per variant (since start)"
                bars={[...stats.totals.entries()].map(([label, value]) => ({
                  label: label === "" ? "(none)" : label,
                  value
                }))}
              />
              <TimeChart
                title="Evaluations per second"
                series={stats.series}
                format={(v) => v === undefined ? "—" : `${Format.number(v)}/s`}
                empty={stats.hasMetrics && stats.series.length === 0 ? "No evaluation of this flag yet." : undefined}
              />
            </section>
          )}
        </div>
      )}
      {dialog}
    </>
  )
}

/**
 * The Flags view: the list, or one flag (`flags/<key>`).
 *
 * @since 0.1.0
 * @category views
 */
export const Flags = ({ session, flagKey }: { readonly session: Session; readonly flagKey: string | undefined }) => {
  const { offered, missing } = useOffered("GET /admin/flags")
  return (
    <section aria-labelledby="flags-title">
      <ViewHeading>
        <span id="flags-title">{flagKey === undefined ? "Feature flags" : `Flag ${flagKey}`}</span>
      </ViewHeading>
      {offered === false ?
        <Unavailable missing={missing} /> :
        offered === undefined ?
        <p role="status">Loading…</p> :
        flagKey === undefined
        ? <FlagList session={session} />
        : <FlagDetail flagKey={flagKey} session={session} />}
    </section>
  )
}
