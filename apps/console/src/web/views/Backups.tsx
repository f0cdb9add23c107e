/**
 * Backups (`/admin/backups`): list, create, verify (checksums, or a trial restore), and restore — as it is or to a
 * point in time — after the operator types the backup's id.
 *
 * @since 0.1.0
 */
import { useRef, useState } from "preact/hooks"
import * as Api from "../lib/api.js"
import * as Format from "../lib/format.js"
import type { BackupInfo, Manifest, RestoreResult, Verification } from "../lib/types.js"
import {
  announce,
  Badge,
  dataOf,
  ErrorBox,
  Notice,
  Progress,
  useAsync,
  useConfirm,
  useElapsed,
  ViewHeading
} from "../ui.js"

interface RestoreInput {
  mode: "as-is" | "time" | "sequence"
  time: string
  sequence: string
  vectors: "" | "snapshot" | "rebuild"
  force: boolean
}

const RestoreFields = ({ input, verified }: { readonly input: RestoreInput; readonly verified: boolean }) => {
  const [, rerender] = useState(0)
  const set = <K extends keyof RestoreInput>(key: K, value: RestoreInput[K]) => {
    input[key] = value
    rerender((n) => n + 1)
  }
  return (
    <div class="dialog-fields">
      <fieldset>
        <legend>Restore to</legend>
        <label class="choice">
          <input
            type="radio"
            name="restore-mode"
            checked={input.mode === "as-is"}
            onChange={() => set("mode", "as-is")}
          />
          the backup as it is
        </label>
        <label class="choice">
          <input
            type="radio"
            name="restore-mode"
            checked={input.mode === "time"}
            onChange={() => set("mode", "time")}
          />
          a point in time (the backup, then the live store's events up to it)
        </label>
        {input.mode === "time" && (
          <div class="field">
            <label for="restore-time">Time (your local time)</label>
            <input
              id="restore-time"
              type="datetime-local"
              step={1}
              value={input.time}
              onInput={(e) => set("time", e.currentTarget.value)}
            />
          </div>
        )}
        <label class="choice">
          <input
            type="radio"
            name="restore-mode"
            checked={input.mode === "sequence"}
            onChange={() => set("mode", "sequence")}
          />
          an event sequence number
        </label>
        {input.mode === "sequence" && (
          <div class="field">
            <label for="restore-sequence">Sequence</label>
            <input
              id="restore-sequence"
              inputMode="numeric"
              pattern="[0-9]*"
              value={input.sequence}
              onInput={(e) => set("sequence", e.currentTarget.value)}
            />
          </div>
        )}
      </fieldset>
      <div class="field">
        <label for="restore-vectors">Vectors</label>
        <select
          id="restore-vectors"
          value={input.vectors}
          onChange={(e) => set("vectors", e.currentTarget.value as RestoreInput["vectors"])}
        >
          <option value="">server's choice</option>
          <option value="snapshot">restore the snapshot</option>
          <option value="rebuild">rebuild from the events</option>
        </select>
      </div>
      {!verified && (
        <label class="choice">
          <input type="checkbox" checked={input.force} onChange={(e) => set("force", e.currentTarget.checked)} />
          Restore although this backup has not passed a verification
        </label>
      )}
    </div>
  )
}

const restoreBody = (input: RestoreInput): Record<string, unknown> => {
  const body: Record<string, unknown> = {}
  if (input.mode === "time") {
    const at = Format.localInputToIso(input.time)
    if (at === undefined) throw new Error("Give the time to restore to.")
    body.at = at
  } else if (input.mode === "sequence") {
    if (!/^\d+$/.test(input.sequence)) throw new Error("A sequence number is a whole number (0 or more).")
    body.at = Number(input.sequence)
  }
  if (input.vectors !== "") body.vectors = input.vectors
  if (input.force) body.force = true
  return body
}

const VerificationBadge = ({ verification }: { readonly verification: Verification | undefined }) =>
  verification === undefined
    ? <Badge tone="neutral">not verified</Badge>
    : verification.ok
    ? <Badge tone="ok">verified ({verification.tier})</Badge>
    : <Badge tone="bad">failed ({verification.tier})</Badge>

type Running = { readonly what: string } | undefined

/**
 * The Backups view.
 *
 * @since 0.1.0
 * @category views
 */
export const Backups = () => {
  const [state, reload] = useAsync((signal) => Api.get<ReadonlyArray<BackupInfo>>("/admin/backups", { signal }), [])
  const [running, setRunning] = useState<Running>(undefined)
  const [outcome, setOutcome] = useState<{ readonly ok: boolean; readonly text: string } | undefined>(undefined)
  const [error, setError] = useState<unknown>(undefined)
  const [kind, setKind] = useState<"" | "full" | "incremental">("")
  const [tier, setTier] = useState<"checksums" | "restore">("checksums")
  const [restored, setRestored] = useState<RestoreResult | undefined>(undefined)
  const restoreInput = useRef<RestoreInput>({ mode: "as-is", time: "", sequence: "", vectors: "", force: false })
  const [dialog, confirm] = useConfirm(reload)
  const elapsed = useElapsed(running !== undefined)
  const backups = dataOf(state)

  const run = async (what: string, action: () => Promise<string>) => {
    setRunning({ what })
    setOutcome(undefined)
    setError(undefined)
    announce(`${what}…`)
    try {
      const text = await action()
      setOutcome({ ok: true, text })
      announce(text)
    } catch (cause) {
      setError(cause)
      announce(`${what} failed`)
    } finally {
      setRunning(undefined)
      reload()
    }
  }

  const create = () =>
    run("Taking a backup", async () => {
      const reply = await Api.call<Manifest>("POST", "/admin/backups", {
        query: { kind: kind === "" ? undefined : kind }
      })
      return `Backup ${reply.data.id} taken (${reply.data.kind}, events ${reply.data.events.from}–${reply.data.events.to}).`
    })

  const verify = (id: string) =>
    run(`Verifying ${id}`, async () => {
      const reply = await Api.call<Verification>("POST", `/admin/backups/${encodeURIComponent(id)}/verify`, {
        query: { tier }
      })
      if (!reply.data.ok) throw new Error(`Backup ${id} failed its verification: ${reply.data.problems.join("; ")}`)
      return `Backup ${id} verified (${reply.data.tier}).`
    })

  const restore = (id: string, verified: boolean) => {
    restoreInput.current = {
      mode: id === "latest" ? "time" : "as-is",
      time: "",
      sequence: "",
      vectors: "",
      force: false
    }
    setRestored(undefined)
    confirm({
      title: id === "latest" ? "Point-in-time recovery" : `Restore backup ${id}`,
      description: (
        <p>
          The live event store is replaced by{" "}
          {id === "latest" ? "the newest verified backup before the point you give" : "this backup"}{" "}
          and the vectors are restored or rebuilt. Requests may fail while it runs. This cannot be undone except by
          restoring another backup.
        </p>
      ),
      extra: <RestoreFields input={restoreInput.current} verified={verified} />,
      confirmLabel: "Restore",
      danger: true,
      typeToConfirm: id,
      run: async () => {
        const body = restoreBody(restoreInput.current)
        setRunning({ what: `Restoring ${id}` })
        announce(`Restoring ${id}…`)
        try {
          const reply = await Api.call<RestoreResult>("POST", `/admin/backups/${encodeURIComponent(id)}/restore`, {
            body
          })
          setRestored(reply.data)
          setOutcome({
            ok: true,
            text:
              `Restored ${reply.data.id}: ${reply.data.restoredEvents} events from the backups, ${reply.data.replayedEvents} replayed.`
          })
          announce(`Restore of ${id} done`)
        } finally {
          setRunning(undefined)
        }
      }
    })
  }

  return (
    <section aria-labelledby="backups-title">
      <ViewHeading>
        <span id="backups-title">Backups</span>
      </ViewHeading>
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault()
          void create()
        }}
      >
        <div class="field inline">
          <label for="backup-kind">Kind</label>
          <select id="backup-kind" value={kind} onChange={(e) => setKind(e.currentTarget.value as typeof kind)}>
            <option value="">incremental when possible</option>
            <option value="full">full</option>
            <option value="incremental">incremental</option>
          </select>
        </div>
        <button type="submit" class="button primary" disabled={running !== undefined}>Create backup</button>
        <div class="field inline">
          <label for="verify-tier">Verification</label>
          <select id="verify-tier" value={tier} onChange={(e) => setTier(e.currentTarget.value as typeof tier)}>
            <option value="checksums">checksums</option>
            <option value="restore">trial restore into scratch stores</option>
          </select>
        </div>
        <button type="button" class="button" disabled={running !== undefined} onClick={() => restore("latest", true)}>
          Point-in-time recovery…
        </button>
      </form>
      <div aria-live="polite" class="live-area">
        {running !== undefined && <Progress label={running.what} elapsedMs={elapsed} />}
        {outcome !== undefined && (
          <Notice tone="success">
            <p data-testid="backup-outcome">{outcome.text}</p>
          </Notice>
        )}
        {restored !== undefined && (
          <dl class="facts" data-testid="restore-result">
            <dt>Chain</dt>
            <dd>{restored.chain.join(" → ")}</dd>
            <dt>Events restored · replayed</dt>
            <dd>{restored.restoredEvents} · {restored.replayedEvents}</dd>
            <dt>Last sequence</dt>
            <dd>{restored.lastSequence}</dd>
            <dt>Vectors</dt>
            <dd>{restored.vectors}</dd>
          </dl>
        )}
      </div>
      {error !== undefined && <ErrorBox error={error} />}
      {state._tag === "failed" && <ErrorBox error={state.error} />}
      {backups === undefined ?
        <p role="status">Loading backups…</p> :
        backups.length === 0 ?
        <p>No backups yet.</p> :
        (
          <div class="table-wrap" tabIndex={0} role="region" aria-label="Backups table">
            <table data-testid="backups">
              <caption class="sr-only">Backups, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Backup</th>
                  <th scope="col">Kind</th>
                  <th scope="col">Taken</th>
                  <th scope="col">Events</th>
                  <th scope="col">Size</th>
                  <th scope="col">Verification</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {backups.map((b) => (
                  <tr key={b.manifest.id} data-testid="backup-row" data-id={b.manifest.id}>
                    <th scope="row">
                      <code>{b.manifest.id}</code>
                    </th>
                    <td>{b.manifest.kind}{b.manifest.parent !== undefined ? ` (on ${b.manifest.parent})` : ""}</td>
                    <td>{Format.time(b.manifest.completedAt)}</td>
                    <td>
                      {b.manifest.events.count === 0
                        ? "none"
                        : `${b.manifest.events.from}–${b.manifest.events.to} (${b.manifest.events.count})`}
                    </td>
                    <td>{Format.bytes(b.bytes)}</td>
                    <td>
                      <VerificationBadge verification={b.verification} />
                      {b.verification !== undefined && !b.verification.ok && (
                        <ul class="plain small">{b.verification.problems.map((p) => <li key={p}>{p}</li>)}</ul>
                      )}
                    </td>
                    <td class="row-actions">
                      <button
                        type="button"
                        class="button"
                        disabled={running !== undefined}
                        onClick={() => void verify(b.manifest.id)}
                        aria-label={`Verify ${b.manifest.id}`}
                      >
                        Verify
                      </button>
                      <button
                        type="button"
                        class="button danger-outline"
                        disabled={running !== undefined}
                        onClick={() => restore(b.manifest.id, b.verification?.ok === true)}
                        aria-label={`Restore ${b.manifest.id}`}
                      >
                        Restore…
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      {dialog}
    </section>
  )
}
