/**
 * The console's building blocks: data loading hooks, error and status messages, the confirmation dialog, small SVG
 * charts. Everything keyboard-operable and announced to assistive technology.
 *
 * @since 0.1.0
 */
import type { ComponentChildren, JSX } from "preact"
import { useCallback, useEffect, useId, useRef, useState } from "preact/hooks"
import { ApiError, documentedOperations } from "./lib/api.js"
import * as Format from "./lib/format.js"
import { hasNavigated } from "./lib/router.js"

// -----------------------------------------------------------------------------
// announcements
// -----------------------------------------------------------------------------

let announcer: ((message: string) => void) | undefined

/**
 * Says something to screen readers through the console's polite live region.
 *
 * @since 0.1.0
 * @category announcements
 */
export const announce = (message: string): void => announcer?.(message)

/**
 * The live region {@link announce} writes to (rendered once by the app).
 *
 * @since 0.1.0
 * @category announcements
 */
export const Announcer = () => {
  const [message, setMessage] = useState("")
  useEffect(() => {
    announcer = (next) => {
      // Clearing first makes a repeated message be read again.
      setMessage("")
      setTimeout(() => setMessage(next), 50)
    }
    return () => {
      announcer = undefined
    }
  }, [])
  return (
    <div class="sr-only" role="status" aria-live="polite" aria-atomic="true" data-testid="announcer">{message}</div>
  )
}

// -----------------------------------------------------------------------------
// data
// -----------------------------------------------------------------------------

/**
 * The state of a load.
 *
 * @since 0.1.0
 * @category models
 */
export type Async<A> =
  | { readonly _tag: "loading"; readonly previous: A | undefined }
  | { readonly _tag: "done"; readonly data: A }
  | { readonly _tag: "failed"; readonly error: unknown; readonly previous: A | undefined }

/**
 * The data of a state, or the data it had before a reload.
 *
 * @since 0.1.0
 * @category models
 */
export function dataOf<A>(state: Async<A>): A | undefined {
  return state._tag === "done" ? state.data : state.previous
}

/**
 * Loads data when `deps` change (aborting the previous load), and again on `reload()` or every `pollMs`.
 *
 * @since 0.1.0
 * @category hooks
 */
export function useAsync<A>(
  load: (signal: AbortSignal) => Promise<A>,
  deps: ReadonlyArray<unknown>,
  options: { readonly pollMs?: number | undefined } = {}
): [Async<A>, () => void] {
  const [state, setState] = useState<Async<A>>({ _tag: "loading", previous: undefined })
  const [tick, setTick] = useState(0)
  const last = useRef<A | undefined>(undefined)
  useEffect(() => {
    const controller = new AbortController()
    setState((s) => s._tag === "loading" ? s : { _tag: "loading", previous: last.current })
    load(controller.signal).then(
      (data) => {
        if (controller.signal.aborted) return
        last.current = data
        setState({ _tag: "done", data })
      },
      (error: unknown) => {
        if (controller.signal.aborted) return
        setState({ _tag: "failed", error, previous: last.current })
      }
    )
    return () => controller.abort()
  }, [...deps, tick])
  useEffect(() => {
    if (options.pollMs === undefined) return
    const timer = setInterval(() => {
      if (document.visibilityState === "visible") setTick((t) => t + 1)
    }, options.pollMs)
    return () => clearInterval(timer)
  }, [options.pollMs, ...deps])
  const reload = useCallback(() => setTick((t) => t + 1), [])
  return [state, reload]
}

/**
 * Whether the server documents every operation (`GET /admin/flags`) in `/openapi.json`: `undefined` while unknown,
 * and `true` when the document cannot be read (the view then tries, and shows the server's answer).
 *
 * @since 0.1.0
 * @category hooks
 */
export const useOffered = (
  ...required: ReadonlyArray<string>
): { offered: boolean | undefined; missing: Array<string> } => {
  const [missing, setMissing] = useState<Array<string> | undefined>(undefined)
  useEffect(() => {
    let live = true
    void documentedOperations().then((operations) => {
      if (live) setMissing(operations === undefined ? [] : required.filter((op) => !operations.has(op)))
    })
    return () => {
      live = false
    }
  }, [required.join(",")])
  return { offered: missing === undefined ? undefined : missing.length === 0, missing: missing ?? [] }
}

// -----------------------------------------------------------------------------
// messages
// -----------------------------------------------------------------------------

/**
 * An error as the console shows it: the problem's title and detail, its status, the request, and the correlation id
 * to look up in the logs. Announced at once (`role="alert"`).
 *
 * @since 0.1.0
 * @category messages
 */
export const ErrorBox = ({ error, title }: { readonly error: unknown; readonly title?: string }) => {
  if (error instanceof ApiError) {
    return (
      <div class="message error" role="alert" data-testid="error">
        <p class="message-title">
          {title !== undefined ? `${title}: ` : ""}
          {error.title}
          {error.status > 0 ? ` (${error.status})` : ""}
        </p>
        {error.detail !== undefined && <p>{error.detail}</p>}
        <p class="message-meta">
          <span>{error.request}</span>
          {error.correlationId !== undefined && (
            <span>
              {" · correlation id "}
              <code data-testid="correlation-id">{error.correlationId}</code>
            </span>
          )}
        </p>
      </div>
    )
  }
  return (
    <div class="message error" role="alert" data-testid="error">
      <p class="message-title">{title ?? "Something went wrong"}</p>
      <p>{error instanceof Error ? error.message : String(error)}</p>
    </div>
  )
}

/**
 * A neutral or positive message.
 *
 * @since 0.1.0
 * @category messages
 */
export const Notice = (
  { children, tone = "info", live = false }: {
    readonly children: ComponentChildren
    readonly tone?: "info" | "success" | "warning"
    readonly live?: boolean
  }
) => (
  <div class={`message ${tone}`} {...(live ? { role: "status" } : {})}>
    {children}
  </div>
)

/**
 * What a view shows when the server does not offer its API yet.
 *
 * @since 0.1.0
 * @category messages
 */
export const Unavailable = ({ missing }: { readonly missing: ReadonlyArray<string> }) => (
  <Notice tone="warning">
    <p class="message-title">This server does not offer this part of the admin API</p>
    <p>
      Not in its <code>/openapi.json</code>: {missing.map((op, i) => (
        <span key={op}>
          {i > 0 ? ", " : ""}
          <code>{op}</code>
        </span>
      ))}. The view works as soon as the server serves these routes.
    </p>
  </Notice>
)

/**
 * A state in words and colour (never colour alone).
 *
 * @since 0.1.0
 * @category display
 */
export const Badge = (
  { tone, children }: { readonly tone: "ok" | "warn" | "bad" | "neutral"; readonly children: ComponentChildren }
) => (
  <span class={`badge badge-${tone}`}>{children}</span>
)

/**
 * The heading of a view: focused after each navigation so keyboard and screen reader users land on it.
 *
 * @since 0.1.0
 * @category display
 */
export const ViewHeading = (
  { children, actions }: { readonly children: ComponentChildren; readonly actions?: ComponentChildren }
) => {
  const ref = useRef<HTMLHeadingElement>(null)
  useEffect(() => {
    // After a navigation from the menu (or back and forward), the new view takes the focus; inside a view (a filter,
    // a pager) the focus stays where the operator is.
    const active = document.activeElement
    if (hasNavigated() && (active === null || active === document.body || active.closest("nav.side") !== null)) {
      ref.current?.focus({ preventScroll: false })
    }
  }, [])
  return (
    <div class="view-heading">
      <h1 tabIndex={-1} ref={ref}>{children}</h1>
      {actions !== undefined && <div class="view-actions">{actions}</div>}
    </div>
  )
}

/**
 * An elapsed-time counter for long operations.
 *
 * @since 0.1.0
 * @category hooks
 */
export const useElapsed = (running: boolean): number => {
  const [elapsed, setElapsed] = useState(0)
  useEffect(() => {
    if (!running) return
    const started = Date.now()
    setElapsed(0)
    const timer = setInterval(() => setElapsed(Date.now() - started), 250)
    return () => clearInterval(timer)
  }, [running])
  return elapsed
}

/**
 * Progress of an operation: a determinate bar when `value` is known, an indeterminate one otherwise, with a label.
 *
 * @since 0.1.0
 * @category display
 */
export const Progress = (
  { label, value, max, elapsedMs }: {
    readonly label: string
    readonly value?: number | undefined
    readonly max?: number | undefined
    readonly elapsedMs?: number | undefined
  }
) => {
  const id = useId()
  return (
    <div class="progress" data-testid="progress">
      <label for={id}>
        {label}
        {elapsedMs !== undefined ? ` (${Format.duration(elapsedMs)})` : ""}
        {value !== undefined && max !== undefined && max > 0
          ? ` — ${Format.number(value)} of ${Format.number(max)}`
          : ""}
      </label>
      {value !== undefined && max !== undefined && max > 0
        ? <progress id={id} value={value} max={max} />
        : <progress id={id} />}
    </div>
  )
}

// -----------------------------------------------------------------------------
// confirmation
// -----------------------------------------------------------------------------

/**
 * What a confirmation asks.
 *
 * @since 0.1.0
 * @category confirmation
 */
export interface ConfirmOptions {
  readonly title: string
  readonly description: ComponentChildren
  readonly confirmLabel: string
  readonly danger?: boolean
  /** Ask for a reason, which goes to the audit log. */
  readonly reason?: boolean | { readonly required: boolean }
  /** The operator must type this text to confirm (e.g. the backup's id). */
  readonly typeToConfirm?: string | undefined
  /** More fields, rendered above the reason. */
  readonly extra?: ComponentChildren
  /** Runs the action; an error is shown in the dialog and keeps it open. */
  readonly run: (input: { readonly reason: string }) => Promise<unknown>
}

/**
 * A modal confirmation (the native `<dialog>`: focus moves into it and stays there, Escape cancels). `options`
 * undefined closes it.
 *
 * @since 0.1.0
 * @category confirmation
 */
const ConfirmDialog = (
  { options, onClose }: { readonly options: ConfirmOptions | undefined; readonly onClose: (done: boolean) => void }
) => {
  const ref = useRef<HTMLDialogElement>(null)
  const [reason, setReason] = useState("")
  const [typed, setTyped] = useState("")
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<unknown>(undefined)
  const titleId = useId()
  const reasonId = useId()
  const typedId = useId()
  const opener = useRef<Element | null>(null)
  useEffect(() => {
    const dialog = ref.current
    if (dialog === null) return
    if (options !== undefined && !dialog.open) {
      opener.current = document.activeElement
      setReason("")
      setTyped("")
      setError(undefined)
      setBusy(false)
      dialog.showModal()
    } else if (options === undefined && dialog.open) {
      dialog.close()
    }
  }, [options])
  const close = (done: boolean) => {
    ref.current?.close()
    if (opener.current instanceof HTMLElement && opener.current.isConnected) opener.current.focus()
    onClose(done)
  }
  const reasonRequired = options?.reason !== undefined && options.reason !== false &&
    (options.reason === true || options.reason.required)
  const canConfirm = options !== undefined && !busy && (!reasonRequired || reason.trim() !== "") &&
    (options.typeToConfirm === undefined || typed === options.typeToConfirm)
  const submit = async (event: Event) => {
    event.preventDefault()
    if (options === undefined || !canConfirm) return
    setBusy(true)
    setError(undefined)
    try {
      await options.run({ reason: reason.trim() })
      close(true)
    } catch (cause) {
      setError(cause)
      setBusy(false)
    }
  }
  return (
    <dialog
      ref={ref}
      aria-labelledby={titleId}
      class="dialog"
      onCancel={(event) => {
        event.preventDefault()
        if (!busy) close(false)
      }}
    >
      {options !== undefined && (
        <form onSubmit={submit}>
          <h2 id={titleId}>{options.title}</h2>
          <div class="dialog-body">{options.description}</div>
          {options.extra}
          {options.reason !== undefined && options.reason !== false && (
            <div class="field">
              <label for={reasonId}>
                Reason {reasonRequired ? "(required, goes to the audit log)" : "(optional, goes to the audit log)"}
              </label>
              <textarea
                id={reasonId}
                rows={2}
                value={reason}
                required={reasonRequired}
                onInput={(e) => setReason(e.currentTarget.value)}
              />
            </div>
          )}
          {options.typeToConfirm !== undefined && (
            <div class="field">
              <label for={typedId}>
                Type <code>{options.typeToConfirm}</code> to confirm
              </label>
              <input
                id={typedId}
                autocomplete="off"
                spellcheck={false}
                value={typed}
                onInput={(e) => setTyped(e.currentTarget.value)}
              />
            </div>
          )}
          {busy && <Progress label="Working" />}
          {error !== undefined && <ErrorBox error={error} />}
          <div class="dialog-actions">
            <button type="button" class="button" onClick={() => close(false)} disabled={busy}>Cancel</button>
            <button
              type="submit"
              class={options.danger === true ? "button danger" : "button primary"}
              disabled={!canConfirm}
            >
              {options.confirmLabel}
            </button>
          </div>
        </form>
      )}
    </dialog>
  )
}

/**
 * A confirmation to open from event handlers: `[dialog, confirm]`.
 *
 * @since 0.1.0
 * @category confirmation
 */
export const useConfirm = (onDone?: () => void): [JSX.Element, (options: ConfirmOptions) => void] => {
  const [options, setOptions] = useState<ConfirmOptions | undefined>(undefined)
  const dialog = (
    <ConfirmDialog
      options={options}
      onClose={(done) => {
        setOptions(undefined)
        if (done) onDone?.()
      }}
    />
  )
  return [dialog, setOptions]
}

// -----------------------------------------------------------------------------
// charts
// -----------------------------------------------------------------------------

/**
 * A series of a time chart.
 *
 * @since 0.1.0
 * @category charts
 */
export interface Series {
  readonly label: string
  readonly points: ReadonlyArray<readonly [number, number | undefined]>
}

const width = 320
const height = 120
const pad = { left: 44, right: 8, top: 8, bottom: 18 }

/**
 * A small line chart over time: one line per series (each with its own stroke pattern, so colour is not the only
 * difference), the latest values in text beside it, and a description for screen readers.
 *
 * @since 0.1.0
 * @category charts
 */
export const TimeChart = (
  { title, series, format, empty }: {
    readonly title: string
    readonly series: ReadonlyArray<Series>
    readonly format: (value: number | undefined) => string
    readonly empty?: ComponentChildren
  }
) => {
  const all = series.flatMap((s) => s.points.filter((p): p is readonly [number, number] => p[1] !== undefined))
  const latest = series.map((s) => {
    const last = [...s.points].reverse().find((p) => p[1] !== undefined)
    return { label: s.label, value: last?.[1] }
  })
  const summary = `${title}: ${latest.map((l) => `${l.label} ${format(l.value)}`).join(", ")}`
  if (all.length === 0) {
    return (
      <figure class="chart" data-testid={`chart-${title}`}>
        <figcaption>{title}</figcaption>
        <div class="chart-empty">{empty ?? "Waiting for data…"}</div>
      </figure>
    )
  }
  const t0 = Math.min(...all.map((p) => p[0]))
  const t1 = Math.max(...all.map((p) => p[0]), t0 + 1)
  const max = Math.max(...all.map((p) => p[1]), 0)
  const top = max === 0 ? 1 : max * 1.1
  const x = (t: number) => pad.left + ((t - t0) / (t1 - t0)) * (width - pad.left - pad.right)
  const y = (v: number) => height - pad.bottom - (v / top) * (height - pad.top - pad.bottom)
  const paths = series.map((s) => {
    let d = ""
    let pen = false
    for (const [t, v] of s.points) {
      if (v === undefined) {
        pen = false
        continue
      }
      d += `${pen ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`
      pen = true
    }
    return d
  })
  return (
    <figure class="chart" data-testid={`chart-${title}`}>
      <figcaption>
        {title}
        <span class="chart-latest">
          {latest.map((l, i) => (
            <span key={l.label} class={`legend legend-${i}`}>
              {l.label} <strong>{format(l.value)}</strong>
            </span>
          ))}
        </span>
      </figcaption>
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={summary}>
        <line class="axis" x1={pad.left} y1={height - pad.bottom} x2={width - pad.right} y2={height - pad.bottom} />
        <line class="grid" x1={pad.left} y1={y(top / 1.1)} x2={width - pad.right} y2={y(top / 1.1)} />
        <text class="tick" x={pad.left - 4} y={y(top / 1.1) + 4} text-anchor="end">{format(top / 1.1)}</text>
        <text class="tick" x={pad.left - 4} y={height - pad.bottom + 4} text-anchor="end">0</text>
        <text class="tick" x={pad.left} y={height - 4}>{Format.duration(Math.round((t1 - t0) / 1000) * 1000)} ago</text>
        <text class="tick" x={width - pad.right} y={height - 4} text-anchor="end">now</text>
        {paths.map((d, i) => <path key={i} d={d} class={`line line-${i}`} />)}
      </svg>
    </figure>
  )
}

/**
 * A horizontal bar chart of labelled values, with the values written out.
 *
 * @since 0.1.0
 * @category charts
 */
export const BarChart = (
  { title, bars, format = Format.number }: {
    readonly title: string
    readonly bars: ReadonlyArray<{ readonly label: string; readonly value: number }>
    readonly format?: (value: number) => string
  }
) => {
  const max = Math.max(...bars.map((b) => b.value), 0)
  const row = 22
  const labelWidth = 110
  const chartHeight = Math.max(row, bars.length * row)
  const summary = `${title}: ${bars.map((b) => `${b.label} ${format(b.value)}`).join(", ") || "no data"}`
  return (
    <figure class="chart" data-testid={`chart-${title}`}>
      <figcaption>{title}</figcaption>
      {bars.length === 0 ?
        <div class="chart-empty">No data yet.</div> :
        (
          <svg viewBox={`0 0 ${width} ${chartHeight}`} role="img" aria-label={summary}>
            {bars.map((bar, i) => {
              const w = max === 0 ? 0 : (bar.value / max) * (width - labelWidth - 70)
              return (
                <g key={bar.label}>
                  <text class="tick" x={labelWidth - 6} y={i * row + 15} text-anchor="end">
                    {bar.label.length > 16 ? `${bar.label.slice(0, 15)}…` : bar.label}
                  </text>
                  <rect
                    class={`bar bar-${i % 4}`}
                    x={labelWidth}
                    y={i * row + 4}
                    width={Math.max(w, 1)}
                    height={row - 8}
                  />
                  <text class="tick" x={labelWidth + Math.max(w, 1) + 4} y={i * row + 15}>{format(bar.value)}</text>
                </g>
              )
            })}
          </svg>
        )}
    </figure>
  )
}
