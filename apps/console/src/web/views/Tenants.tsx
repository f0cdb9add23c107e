/**
 * Tenants (`/admin/tenants`): the tenants (admin), and for one tenant its keys (create, rotate, revoke; a new key is
 * shown once and kept nowhere), its quotas against its usage, and its daily usage as a chart and a CSV download. A
 * tenant administrator sees only its own tenant.
 *
 * @since 0.1.0
 */
import { useRef, useState } from "preact/hooks"
import * as Api from "../lib/api.js"
import * as Format from "../lib/format.js"
import * as Router from "../lib/router.js"
import type { Session } from "../lib/session.js"
import type { ApiKeyInfo, DailyUsage, IssuedKey, KeyRole, Tenant, UsageReport } from "../lib/types.js"
import {
  announce,
  Badge,
  dataOf,
  ErrorBox,
  Notice,
  Unavailable,
  useAsync,
  useConfirm,
  useOffered,
  ViewHeading
} from "../ui.js"

const keyRoles: ReadonlyArray<KeyRole> = ["tenant-admin", "writer", "reader"]

const day = (millis: number) => new Date(millis).toISOString().slice(0, 10)

// -----------------------------------------------------------------------------
// the list (admin)
// -----------------------------------------------------------------------------

const TenantList = () => {
  const [state, reload] = useAsync((signal) => Api.get<ReadonlyArray<Tenant>>("/admin/tenants", { signal }), [])
  const [id, setId] = useState("")
  const [name, setName] = useState("")
  const [tier, setTier] = useState<Tenant["tier"]>("standard")
  const [error, setError] = useState<unknown>(undefined)
  const tenants = dataOf(state)
  const create = async (event: Event) => {
    event.preventDefault()
    setError(undefined)
    try {
      const reply = await Api.call<Tenant>("POST", "/admin/tenants", {
        body: { id: id.trim(), tier, ...(name.trim() === "" ? {} : { name: name.trim() }) }
      })
      announce(`Tenant ${reply.data.id} created`)
      Router.navigate(Router.href(`tenants/${encodeURIComponent(reply.data.id)}`))
    } catch (cause) {
      setError(cause)
      reload()
    }
  }
  return (
    <>
      {state._tag === "failed" && <ErrorBox error={state.error} />}
      {tenants === undefined ?
        <p role="status">Loading tenants…</p> :
        tenants.length === 0 ?
        <p>No tenants.</p> :
        (
          <div class="table-wrap" tabIndex={0} role="region" aria-label="Tenants table">
            <table data-testid="tenants">
              <caption class="sr-only">Tenants</caption>
              <thead>
                <tr>
                  <th scope="col">Tenant</th>
                  <th scope="col">Name</th>
                  <th scope="col">Tier</th>
                  <th scope="col">Collection</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {tenants.map((t) => (
                  <tr key={t.id}>
                    <th scope="row">
                      <a href={Router.href(`tenants/${encodeURIComponent(t.id)}`)}>{t.id}</a>
                    </th>
                    <td>{t.name}</td>
                    <td>{t.tier}</td>
                    <td>{t.dedicatedCollection ? "dedicated" : "shared"}</td>
                    <td>{Format.time(t.createdAt)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      <form class="panel stack" onSubmit={create} aria-labelledby="create-tenant">
        <h2 id="create-tenant">Create a tenant</h2>
        <div class="field">
          <label for="tenant-id">Id</label>
          <input
            id="tenant-id"
            required
            value={id}
            autocomplete="off"
            spellcheck={false}
            onInput={(e) => setId(e.currentTarget.value)}
          />
        </div>
        <div class="field">
          <label for="tenant-name">Name (optional)</label>
          <input id="tenant-name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="tenant-tier">Tier</label>
          <select id="tenant-tier" value={tier} onChange={(e) => setTier(e.currentTarget.value as Tenant["tier"])}>
            <option value="free">free</option>
            <option value="standard">standard</option>
            <option value="enterprise">enterprise</option>
          </select>
        </div>
        <button type="submit" class="button primary">Create tenant</button>
        {error !== undefined && <ErrorBox error={error} />}
      </form>
    </>
  )
}

// -----------------------------------------------------------------------------
// one tenant
// -----------------------------------------------------------------------------

const keyTone = (status: ApiKeyInfo["status"]) =>
  status === "active" ? "ok" : status === "expiring" ? "warn" : "neutral"

/** A key shown once: the operator copies it, then it is gone from the page. */
const NewKey = ({ issued, onDismiss }: { readonly issued: IssuedKey; readonly onDismiss: () => void }) => {
  const [copied, setCopied] = useState(false)
  return (
    <div class="message success new-key" role="alert" data-testid="new-key">
      <p class="message-title">New key {issued.info.id} for {issued.info.tenantId}</p>
      <p>This is the only time the key is shown. Copy it now and keep it somewhere safe.</p>
      <p>
        <code class="secret" data-testid="new-key-value">{issued.key}</code>
      </p>
      {issued.previous !== undefined && (
        <p class="small">
          It replaces {issued.previous.id}, which works until {Format.time(issued.previous.expiresAt)}.
        </p>
      )}
      <div class="card-actions">
        <button
          type="button"
          class="button"
          onClick={() =>
            void navigator.clipboard.writeText(issued.key).then(
              () => {
                setCopied(true)
                announce("Key copied")
              },
              () => announce("The browser did not allow copying: select the key and copy it")
            )}
        >
          {copied ? "Copied" : "Copy key"}
        </button>
        <button type="button" class="button primary" onClick={onDismiss}>I have stored it</button>
      </div>
    </div>
  )
}

const Keys = ({ tenantId }: { readonly tenantId: string }) => {
  const base = `/admin/tenants/${encodeURIComponent(tenantId)}/keys`
  const [state, reload] = useAsync((signal) => Api.get<ReadonlyArray<ApiKeyInfo>>(base, { signal }), [tenantId])
  const [issued, setIssued] = useState<IssuedKey | undefined>(undefined)
  const [name, setName] = useState("")
  const [roles, setRoles] = useState<ReadonlyArray<KeyRole>>(["writer", "reader"])
  const [expiryDays, setExpiryDays] = useState("")
  const [error, setError] = useState<unknown>(undefined)
  const grace = useRef({ hours: "24" })
  const [dialog, confirm] = useConfirm(reload)
  const keys = dataOf(state)
  const create = async (event: Event) => {
    event.preventDefault()
    setError(undefined)
    try {
      if (roles.length === 0) throw new Error("Give the key at least one role.")
      const days = expiryDays.trim()
      if (days !== "" && !/^\d+$/.test(days)) throw new Error("The expiry is a whole number of days.")
      const reply = await Api.call<IssuedKey>("POST", base, {
        body: {
          roles,
          ...(name.trim() === "" ? {} : { name: name.trim() }),
          ...(days === "" || days === "0" ? {} : { expiresInSeconds: Number(days) * 86_400 })
        }
      })
      setIssued(reply.data)
      setName("")
      reload()
    } catch (cause) {
      setError(cause)
    }
  }
  return (
    <section aria-labelledby="keys-title" class="panel">
      <h2 id="keys-title">API keys</h2>
      {issued !== undefined && <NewKey issued={issued} onDismiss={() => setIssued(undefined)} />}
      {state._tag === "failed" && <ErrorBox error={state.error} />}
      {keys === undefined ?
        <p role="status">Loading keys…</p> :
        keys.length === 0 ?
        <p>No keys.</p> :
        (
          <div class="table-wrap" tabIndex={0} role="region" aria-label="API keys table">
            <table data-testid="keys">
              <caption class="sr-only">Keys of {tenantId}</caption>
              <thead>
                <tr>
                  <th scope="col">Key</th>
                  <th scope="col">Roles</th>
                  <th scope="col">Status</th>
                  <th scope="col">Created</th>
                  <th scope="col">Expires</th>
                  <th scope="col">Last used</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {keys.map((k) => (
                  <tr key={k.id} data-testid="key-row" data-id={k.id}>
                    <th scope="row">
                      <code>{k.id}</code>
                      {k.name !== undefined ? ` ${k.name}` : ""}
                    </th>
                    <td>{k.roles.join(", ")}</td>
                    <td>
                      <Badge tone={keyTone(k.status)}>
                        <span data-testid="key-status">{k.status}</span>
                      </Badge>
                      {k.source === "environment" ? " (configured)" : ""}
                    </td>
                    <td>{Format.time(k.createdAt)}</td>
                    <td>{k.expiresAt === undefined ? "never" : Format.time(k.expiresAt)}</td>
                    <td data-testid="key-last-used">
                      {k.lastUsedAt !== undefined ? Format.time(k.lastUsedAt) : k.source === "stored" ? "not yet" : "—"}
                    </td>
                    <td class="row-actions">
                      {k.source === "stored" && k.status !== "revoked" && k.status !== "expired" && (
                        <>
                          <button
                            type="button"
                            class="button"
                            aria-label={`Rotate key ${k.id}`}
                            onClick={() => {
                              grace.current = { hours: "24" }
                              confirm({
                                title: `Rotate key ${k.id}`,
                                description: (
                                  <p>A new key replaces this one; the old one keeps working for the grace period.</p>
                                ),
                                extra: (
                                  <div class="field">
                                    <label for="grace-hours">Grace period (hours)</label>
                                    <input
                                      id="grace-hours"
                                      inputMode="numeric"
                                      defaultValue="24"
                                      onInput={(e) => (grace.current.hours = e.currentTarget.value)}
                                    />
                                  </div>
                                ),
                                confirmLabel: "Rotate",
                                run: async () => {
                                  const hours = grace.current.hours.trim()
                                  if (!/^\d+$/.test(hours)) {
                                    throw new Error("The grace period is a whole number of hours.")
                                  }
                                  const reply = await Api.call<IssuedKey>(
                                    "POST",
                                    `${base}/${encodeURIComponent(k.id)}/rotate`,
                                    {
                                      body: { gracePeriodSeconds: Number(hours) * 3600 }
                                    }
                                  )
                                  setIssued(reply.data)
                                }
                              })
                            }}
                          >
                            Rotate…
                          </button>
                          <button
                            type="button"
                            class="button danger-outline"
                            aria-label={`Revoke key ${k.id}`}
                            onClick={() =>
                              confirm({
                                title: `Revoke key ${k.id}`,
                                description: <p>The key stops working at once. Clients that use it get 401.</p>,
                                confirmLabel: "Revoke",
                                danger: true,
                                run: async () => {
                                  await Api.call<ApiKeyInfo>("DELETE", `${base}/${encodeURIComponent(k.id)}`)
                                  announce(`Key ${k.id} revoked`)
                                }
                              })}
                          >
                            Revoke…
                          </button>
                        </>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      <form class="stack" onSubmit={create} aria-labelledby="create-key">
        <h3 id="create-key">Create a key</h3>
        <div class="field">
          <label for="key-name">Name (optional)</label>
          <input id="key-name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </div>
        <fieldset>
          <legend>Roles</legend>
          {keyRoles.map((role) => (
            <label key={role} class="choice">
              <input
                type="checkbox"
                checked={roles.includes(role)}
                onChange={(e) => setRoles(e.currentTarget.checked ? [...roles, role] : roles.filter((r) => r !== role))}
              />
              {role}
            </label>
          ))}
        </fieldset>
        <div class="field">
          <label for="key-expiry">Expires in (days, empty: never)</label>
          <input
            id="key-expiry"
            inputMode="numeric"
            value={expiryDays}
            onInput={(e) => setExpiryDays(e.currentTarget.value)}
          />
        </div>
        <button type="submit" class="button primary">Create key</button>
        {error !== undefined && <ErrorBox error={error} />}
      </form>
      {dialog}
    </section>
  )
}

const metricsOfUsage = [
  { id: "requests", label: "Requests", format: Format.number },
  { id: "embeddedCharacters", label: "Embedded characters", format: Format.number },
  { id: "llmTokens", label: "LLM tokens", format: Format.number },
  { id: "storedBytes", label: "Stored bytes (net change)", format: Format.bytes }
] as const

type UsageMetric = typeof metricsOfUsage[number]["id"]

const DailyChart = (
  { days, metric }: { readonly days: ReadonlyArray<DailyUsage>; readonly metric: typeof metricsOfUsage[number] }
) => {
  const values = days.map((d) => d[metric.id])
  const max = Math.max(...values.map(Math.abs), 0)
  const width = 640
  const height = 160
  const left = 64
  const bottom = 18
  const w = days.length === 0 ? 0 : (width - left - 4) / days.length
  const y = (v: number) => (height - bottom) - (max === 0 ? 0 : (Math.max(v, 0) / max) * (height - bottom - 8))
  const summary = `${metric.label} per day from ${days[0]?.day ?? "—"} to ${days.at(-1)?.day ?? "—"}: total ${
    metric.format(values.reduce((a, b) => a + b, 0))
  }, highest ${metric.format(max)}`
  return (
    <figure class="chart" data-testid="usage-chart">
      <figcaption>{metric.label} per day</figcaption>
      <svg class="wide" viewBox={`0 0 ${width} ${height}`} role="img" aria-label={summary}>
        <line class="axis" x1={left} y1={height - bottom} x2={width} y2={height - bottom} />
        {max > 0 && <text class="tick" x={left - 4} y={12} text-anchor="end">{metric.format(max)}</text>}
        <text class="tick" x={left - 4} y={height - bottom + 4} text-anchor="end">0</text>
        <text class="tick" x={left} y={height - 4}>{days[0]?.day.slice(5) ?? ""}</text>
        <text class="tick" x={width} y={height - 4} text-anchor="end">{days.at(-1)?.day.slice(5) ?? ""}</text>
        {days.map((d, i) => (
          <rect
            key={d.day}
            class="bar bar-0"
            x={left + i * w + 1}
            y={y(values[i]!)}
            width={Math.max(w - 2, 1)}
            height={(height - bottom) - y(values[i]!)}
          >
            <title>{`${d.day}: ${metric.format(values[i]!)}`}</title>
          </rect>
        ))}
      </svg>
    </figure>
  )
}

const quotaRows = (tenant: Tenant, usage: UsageReport | undefined) => {
  const today = day(Date.now())
  const month = today.slice(0, 7)
  const todayRequests = usage?.days.find((d) => d.day === today)?.requests
  const monthTokens = usage === undefined || usage.from > `${month}-01`
    ? undefined
    : usage.days.filter((d) => d.day.startsWith(month)).reduce((total, d) => total + d.llmTokens, 0)
  return [
    {
      quota: "Requests per day",
      limit: tenant.quotas.requestsPerDay,
      used: todayRequests,
      format: Format.number,
      note: "today (UTC)"
    },
    {
      quota: "LLM tokens per month",
      limit: tenant.quotas.llmTokensPerMonth,
      used: monthTokens,
      format: Format.number,
      note: "this month (UTC)"
    },
    {
      quota: "Documents",
      limit: tenant.quotas.documents,
      used: undefined,
      format: Format.number,
      note: "not reported by the usage API"
    },
    {
      quota: "Stored bytes",
      limit: tenant.quotas.storedBytes,
      used: undefined,
      format: Format.bytes,
      note: "not reported by the usage API"
    }
  ]
}

const TenantDetail = (
  { tenantId, query, session }: {
    readonly tenantId: string
    readonly query: URLSearchParams
    readonly session: Session
  }
) => {
  const encoded = encodeURIComponent(tenantId)
  const to = query.get("to") ?? day(Date.now())
  const from = query.get("from") ?? day(Date.parse(`${to}T00:00:00Z`) - 29 * 86_400_000)
  const metricId = (query.get("metric") ?? "requests") as UsageMetric
  const metric = metricsOfUsage.find((m) => m.id === metricId) ?? metricsOfUsage[0]
  const [tenantState] = useAsync((signal) => Api.get<Tenant>(`/admin/tenants/${encoded}`, { signal }), [tenantId])
  const [usageState] = useAsync(
    (signal) => Api.get<UsageReport>(`/admin/tenants/${encoded}/usage`, { signal, query: { from, to } }),
    [tenantId, from, to]
  )
  const [downloadError, setDownloadError] = useState<unknown>(undefined)
  const tenant = dataOf(tenantState)
  const usage = dataOf(usageState)
  const setQuery = (changes: Record<string, string>) => {
    const next = new URLSearchParams(query)
    for (const [k, v] of Object.entries(changes)) next.set(k, v)
    Router.navigate(Router.href(`tenants/${encoded}`, next), { replace: true })
  }
  return (
    <>
      {session.role === "admin" && (
        <p>
          <a href={Router.href("tenants")}>← All tenants</a>
        </p>
      )}
      {tenantState._tag === "failed" && <ErrorBox error={tenantState.error} />}
      {tenant !== undefined && (
        <section class="panel" aria-labelledby="tenant-facts">
          <h2 id="tenant-facts">{tenant.name}</h2>
          <dl class="facts">
            <dt>Tier</dt>
            <dd>{tenant.tier}{tenant.rateLimitTier !== undefined ? ` (rate limits: ${tenant.rateLimitTier})` : ""}</dd>
            <dt>Model</dt>
            <dd>{tenant.model ?? "the server's default"}</dd>
            <dt>Vectors</dt>
            <dd>{tenant.dedicatedCollection ? "a collection of its own" : "the shared collection"}</dd>
            <dt>Created</dt>
            <dd>{Format.time(tenant.createdAt)}</dd>
          </dl>
          <h3>Quotas and usage</h3>
          <div class="table-wrap" tabIndex={0} role="region" aria-label="Quotas and usage table">
            <table data-testid="quotas">
              <thead>
                <tr>
                  <th scope="col">Quota</th>
                  <th scope="col">Limit</th>
                  <th scope="col">Used</th>
                  <th scope="col">Share</th>
                </tr>
              </thead>
              <tbody>
                {quotaRows(tenant, usage).map((row) => (
                  <tr key={row.quota}>
                    <th scope="row">{row.quota}</th>
                    <td>
                      {row.limit === undefined
                        ? "tier default"
                        : row.limit === null
                        ? "unlimited"
                        : row.format(row.limit)}
                    </td>
                    <td>
                      {row.used === undefined ? "—" : row.format(row.used)} <span class="small">{row.note}</span>
                    </td>
                    <td>
                      {typeof row.limit === "number" && row.used !== undefined && row.limit > 0
                        ? (
                          <meter
                            min={0}
                            max={row.limit}
                            value={row.used}
                            high={row.limit * 0.8}
                            aria-label={`${row.quota} used`}
                          >
                            {Format.percent(row.used / row.limit)}
                          </meter>
                        )
                        : "—"}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
      )}
      <Keys tenantId={tenantId} />
      <section class="panel" aria-labelledby="usage-title">
        <h2 id="usage-title">Daily usage</h2>
        <form class="toolbar" onSubmit={(e) => e.preventDefault()}>
          <div class="field inline">
            <label for="usage-from">From</label>
            <input
              id="usage-from"
              type="date"
              value={from}
              onChange={(e) => setQuery({ from: e.currentTarget.value })}
            />
          </div>
          <div class="field inline">
            <label for="usage-to">To</label>
            <input id="usage-to" type="date" value={to} onChange={(e) => setQuery({ to: e.currentTarget.value })} />
          </div>
          <div class="field inline">
            <label for="usage-metric">Show</label>
            <select id="usage-metric" value={metric.id} onChange={(e) => setQuery({ metric: e.currentTarget.value })}>
              {metricsOfUsage.map((m) => <option key={m.id} value={m.id}>{m.label}</option>)}
            </select>
          </div>
          <button
            type="button"
            class="button"
            onClick={() => {
              setDownloadError(undefined)
              Api.download(`/admin/tenants/${encoded}/usage`, `usage-${tenantId}-${from}-${to}.csv`, {
                query: { from, to, format: "csv" },
                accept: "text/csv"
              }).then(() => announce("Usage downloaded"), setDownloadError)
            }}
          >
            Download CSV
          </button>
        </form>
        {downloadError !== undefined && <ErrorBox error={downloadError} />}
        {usageState._tag === "failed" && <ErrorBox error={usageState.error} />}
        {usage === undefined ? <p role="status">Loading usage…</p> : (
          <>
            <DailyChart days={usage.days} metric={metric} />
            <p class="small">
              Totals from {usage.from} to {usage.to}: {Format.number(usage.totals.requests)} requests,{" "}
              {Format.number(usage.totals.embeddedCharacters)} embedded characters,{" "}
              {Format.number(usage.totals.llmTokens)} LLM tokens, {Format.bytes(usage.totals.storedBytes)} stored (net).
            </p>
          </>
        )}
      </section>
    </>
  )
}

/**
 * The Tenants view: the list (admin), or one tenant (`tenants/<id>`); a tenant administrator always sees its own.
 *
 * @since 0.1.0
 * @category views
 */
export const Tenants = (
  { session, tenantId, query }: {
    readonly session: Session
    readonly tenantId: string | undefined
    readonly query: URLSearchParams
  }
) => {
  const { offered, missing } = useOffered("GET /admin/tenants/{id}/keys")
  const shown = session.role === "tenant-admin" ? session.tenantId : tenantId
  return (
    <section aria-labelledby="tenants-title">
      <ViewHeading>
        <span id="tenants-title">{shown === undefined ? "Tenants" : `Tenant ${shown}`}</span>
      </ViewHeading>
      {session.role === "tenant-admin" && tenantId !== undefined && tenantId !== session.tenantId && (
        <Notice tone="warning">A tenant administrator sees only its own tenant, {session.tenantId}.</Notice>
      )}
      {offered === false ?
        <Unavailable missing={missing} /> :
        offered === undefined ?
        <p role="status">Loading…</p> :
        shown === undefined
        ? <TenantList />
        : <TenantDetail tenantId={shown} query={query} session={session} />}
    </section>
  )
}
