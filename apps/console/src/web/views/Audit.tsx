/**
 * The audit log (`/admin/audit`): a query by actor, type, resource, time and correlation id, page by page (every
 * filter and page in the URL); each entry's RFC 9162 inclusion proof checked here, with WebCrypto, against the latest
 * signed checkpoint, whose Ed25519 signature is checked against the verifier key the operator pinned; and the whole
 * log verified in the browser (every leaf hash against the checkpoint's root, with progress) or by the server.
 *
 * @since 0.1.0
 */
import { useEffect, useRef, useState } from "preact/hooks"
import * as Api from "../lib/api.js"
import * as Format from "../lib/format.js"
import * as Merkle from "../lib/merkle.js"
import * as Note from "../lib/note.js"
import * as Router from "../lib/router.js"
import type { Session } from "../lib/session.js"
import {
  auditEventTypes,
  type AuditPage,
  type AuditRecord,
  type AuditVerifyResult,
  type InclusionProof
} from "../lib/types.js"
import {
  announce,
  Badge,
  dataOf,
  ErrorBox,
  Notice,
  Progress,
  Unavailable,
  useAsync,
  useOffered,
  ViewHeading
} from "../ui.js"

// -----------------------------------------------------------------------------
// the checkpoint
// -----------------------------------------------------------------------------

/**
 * The latest checkpoint as this browser checked it.
 */
interface CheckedCheckpoint {
  readonly note: string
  readonly checkpoint: Note.Checkpoint
  readonly signature: Note.SignatureCheck | "no-key" | "bad-key"
  readonly keyProblem?: string
  readonly keyName?: string
}

const pinStorage = "ouroboros-console:audit-verifier-key"

// The verifier key is public (it checks signatures, it cannot make them): pinning it across sessions is the point.
const pinnedKey = (): string => {
  try {
    return localStorage.getItem(pinStorage) ?? ""
  } catch {
    return ""
  }
}

const checkCheckpoint = async (note: string, key: string): Promise<CheckedCheckpoint> => {
  const parsed = Note.parseNote(note)
  if (parsed === undefined) throw new Error("The checkpoint is not a signed note.")
  const checkpoint = Note.parseCheckpoint(parsed.text)
  if (checkpoint === undefined) throw new Error("The checkpoint's text is not a checkpoint (origin, size, root hash).")
  if (key.trim() === "") return { note, checkpoint, signature: "no-key" }
  const verifier = await Note.parseVerifierKey(key)
  if (typeof verifier === "string") return { note, checkpoint, signature: "bad-key", keyProblem: verifier }
  return { note, checkpoint, signature: await Note.verifyNote(parsed, verifier), keyName: verifier.name }
}

const signatureBadge = (c: CheckedCheckpoint) => {
  switch (c.signature) {
    case "verified":
      return <Badge tone="ok">signature verified ({c.keyName})</Badge>
    case "bad-signature":
      return <Badge tone="bad">bad signature</Badge>
    case "no-signature":
      return <Badge tone="bad">not signed by the pinned key</Badge>
    case "unsupported":
      return <Badge tone="warn">this browser cannot check Ed25519</Badge>
    case "bad-key":
      return <Badge tone="bad">the pinned key is not valid: {c.keyProblem}</Badge>
    case "no-key":
      return <Badge tone="warn">signature not checked: no verifier key pinned</Badge>
  }
}

// -----------------------------------------------------------------------------
// proofs
// -----------------------------------------------------------------------------

type ProofStatus =
  | { readonly _tag: "checking" }
  | { readonly _tag: "verified" }
  | { readonly _tag: "unsigned" }
  | { readonly _tag: "failed"; readonly reason: string }

const b64 = (text: string, what: string): Uint8Array => {
  const bytes = Merkle.fromBase64(text)
  if (bytes === undefined) throw new Error(`${what} is not base64`)
  return bytes
}

/** Checks one entry against the checkpoint: same leaf, same tree, and a proof that leads to the signed root. */
const checkEntry = async (
  entry: AuditRecord,
  checkpoint: Note.Checkpoint,
  signal: AbortSignal
): Promise<ProofStatus> => {
  if (entry.index >= checkpoint.size) return { _tag: "unsigned" }
  try {
    const proof = await Api.get<InclusionProof>("/admin/audit/proof", {
      signal,
      query: { id: entry.id, size: checkpoint.size }
    })
    if (proof.kind !== "inclusion") return { _tag: "failed", reason: "the server answered another kind of proof" }
    if (proof.index !== entry.index) {
      return { _tag: "failed", reason: `the proof is for position ${proof.index}, not ${entry.index}` }
    }
    if (proof.treeSize !== checkpoint.size) {
      return { _tag: "failed", reason: `the proof is for a tree of ${proof.treeSize}` }
    }
    const leaf = b64(proof.leafHash, "the leaf hash")
    if (!Merkle.equal(leaf, b64(entry.leafHash, "the entry's leaf hash"))) {
      return { _tag: "failed", reason: "the proof's leaf is not this entry's" }
    }
    const ok = await Merkle.verifyInclusion(
      proof.index,
      proof.treeSize,
      leaf,
      proof.proof.map((h, i) => b64(h, `proof hash ${i}`)),
      checkpoint.rootHash
    )
    return ok ? { _tag: "verified" } : { _tag: "failed", reason: "the proof does not lead to the checkpoint's root" }
  } catch (cause) {
    if (cause instanceof DOMException && cause.name === "AbortError") throw cause
    return { _tag: "failed", reason: cause instanceof Error ? cause.message : String(cause) }
  }
}

const ProofBadge = ({ status }: { readonly status: ProofStatus | undefined }) => {
  if (status === undefined || status._tag === "checking") return <Badge tone="neutral">checking…</Badge>
  if (status._tag === "verified") return <Badge tone="ok">included</Badge>
  if (status._tag === "unsigned") return <Badge tone="neutral">after the checkpoint</Badge>
  return <Badge tone="bad">not proven: {status.reason}</Badge>
}

// -----------------------------------------------------------------------------
// whole-log verification
// -----------------------------------------------------------------------------

type WholeLog =
  | { readonly _tag: "idle" }
  | { readonly _tag: "fetching"; readonly done: number; readonly total: number }
  | { readonly _tag: "hashing"; readonly done: number; readonly total: number }
  | { readonly _tag: "done"; readonly ok: boolean; readonly text: string }
  | { readonly _tag: "failed"; readonly error: unknown }

const WholeLogVerification = ({ checked }: { readonly checked: CheckedCheckpoint }) => {
  const [state, setState] = useState<WholeLog>({ _tag: "idle" })
  const [server, setServer] = useState<
    Api.Reply<AuditVerifyResult> | { readonly error: unknown } | "running" | undefined
  >(undefined)
  const controller = useRef<AbortController | undefined>(undefined)
  useEffect(() => () => controller.current?.abort(), [])
  const size = checked.checkpoint.size

  const run = async () => {
    controller.current?.abort()
    const abort = new AbortController()
    controller.current = abort
    const leaves: Array<Uint8Array | undefined> = new Array(size)
    let found = 0
    setState({ _tag: "fetching", done: 0, total: size })
    announce(`Verifying ${size} entries`)
    try {
      let cursor: string | undefined
      do {
        const page: AuditPage = await Api.get<AuditPage>("/admin/audit", {
          signal: abort.signal,
          query: { limit: 1000, cursor }
        })
        for (const entry of page.entries) {
          if (entry.index < size && leaves[entry.index] === undefined) {
            leaves[entry.index] = b64(entry.leafHash, `the leaf hash of ${entry.index}`)
            found++
          }
        }
        setState({ _tag: "fetching", done: found, total: size })
        cursor = page.nextCursor
        // Newest first: once the oldest entry is in, the rest of the pages are older than the log's start.
      } while (cursor !== undefined && found < size)
      const missing: Array<number> = []
      for (let i = 0; i < size && missing.length < 10; i++) if (leaves[i] === undefined) missing.push(i)
      if (missing.length > 0) {
        setState({
          _tag: "done",
          ok: false,
          text: `The log does not list every entry of the checkpoint: missing ${missing.join(", ")}${
            found < size - 10 ? "…" : ""
          }.`
        })
        announce("Verification failed: entries are missing")
        return
      }
      setState({ _tag: "hashing", done: 0, total: Math.max(size - 1, 0) })
      const root = await Merkle.root(leaves as Array<Uint8Array>, (done, total) => {
        if (!abort.signal.aborted) setState({ _tag: "hashing", done, total })
      })
      if (abort.signal.aborted) return
      const ok = Merkle.equal(root, checked.checkpoint.rootHash)
      const text = ok
        ? `The ${size} entries hash to the checkpoint's root ${Merkle.toBase64(root)}.`
        : `The ${size} entries hash to ${Merkle.toBase64(root)}, not to the checkpoint's root ${
          Merkle.toBase64(checked.checkpoint.rootHash)
        }.`
      setState({ _tag: "done", ok, text })
      announce(ok ? "The whole log verifies" : "The whole log does not verify")
    } catch (cause) {
      if (cause instanceof DOMException && cause.name === "AbortError") {
        setState({ _tag: "idle" })
        return
      }
      setState({ _tag: "failed", error: cause })
    }
  }

  const runServer = async () => {
    setServer("running")
    try {
      const reply = await Api.call<AuditVerifyResult>("GET", "/admin/audit/verify")
      setServer(reply)
      announce(reply.data.ok ? "The server verified the log" : "The server found problems in the log")
    } catch (error) {
      setServer({ error })
    }
  }

  const busy = state._tag === "fetching" || state._tag === "hashing"
  return (
    <section class="panel" aria-labelledby="whole-log">
      <h2 id="whole-log">Whole-log verification</h2>
      <p class="small">
        In this browser: every entry's leaf hash up to the checkpoint, hashed into a Merkle tree whose root must be the
        signed one. By the server: every entry's content and every stored checkpoint, recomputed.
      </p>
      <div class="toolbar">
        <button type="button" class="button primary" disabled={busy || size === 0} onClick={() => void run()}>
          Verify {Format.number(size)} entries here
        </button>
        {busy && <button type="button" class="button" onClick={() => controller.current?.abort()}>Cancel</button>}
        <button type="button" class="button" disabled={server === "running"} onClick={() => void runServer()}>
          Ask the server to verify
        </button>
      </div>
      <div aria-live="polite" class="live-area" data-testid="whole-log-result">
        {state._tag === "fetching" && <Progress label="Reading leaf hashes" value={state.done} max={state.total} />}
        {state._tag === "hashing" && <Progress label="Hashing the tree" value={state.done} max={state.total} />}
        {state._tag === "done" && (
          <Notice tone={state.ok ? "success" : "warning"}>
            <p>{state.text}</p>
          </Notice>
        )}
        {server === "running" && <Progress label="The server is verifying" />}
        {server !== undefined && server !== "running" && "data" in server && (
          <Notice tone={server.data.ok ? "success" : "warning"}>
            <p>
              Server: {server.data.ok
                ? "the log verifies"
                : `${server.data.problemCount} problem(s), first at ${server.data.firstBadIndex}`} ({server.data.size}
              {" "}
              positions, {server.data.checkpoints} checkpoints, {server.data.pruned} pruned,{" "}
              {server.data.unsignedEntries} after the latest checkpoint).
            </p>
            {server.data.problems.length > 0 && (
              <ul class="plain small">
                {server.data.problems.slice(0, 10).map((p, i) => (
                  <li key={i}>{p.kind} at {p.index ?? "?"}: {p.detail}</li>
                ))}
              </ul>
            )}
            <p class="small">
              Its verifier key: <code>{server.data.verifierKey}</code>
            </p>
          </Notice>
        )}
      </div>
      {state._tag === "failed" && <ErrorBox error={state.error} />}
      {server !== undefined && server !== "running" && "error" in server && <ErrorBox error={server.error} />}
    </section>
  )
}

// -----------------------------------------------------------------------------
// the view
// -----------------------------------------------------------------------------

const filterNames = [
  "actor",
  "type",
  "resourceType",
  "resourceId",
  "correlationId",
  "from",
  "to",
  "tenant",
  "limit"
] as const

const Filters = ({ query, session }: { readonly query: URLSearchParams; readonly session: Session }) => {
  const [values, setValues] = useState<Record<string, string>>(() =>
    Object.fromEntries(
      filterNames.map((
        n
      ) => [n, n === "from" || n === "to" ? Format.isoToLocalInput(query.get(n)) : query.get(n) ?? ""])
    )
  )
  useEffect(() => {
    setValues(
      Object.fromEntries(
        filterNames.map((
          n
        ) => [n, n === "from" || n === "to" ? Format.isoToLocalInput(query.get(n)) : query.get(n) ?? ""])
      )
    )
  }, [query.toString()])
  const set = (name: string) => (e: Event) =>
    setValues({ ...values, [name]: (e.currentTarget as HTMLInputElement).value })
  const submit = (event: Event) => {
    event.preventDefault()
    const next: Record<string, string | undefined> = {}
    for (const name of filterNames) {
      const value = values[name]?.trim() ?? ""
      next[name] = name === "from" || name === "to" ? Format.localInputToIso(value) : value === "" ? undefined : value
    }
    Router.navigate(Router.href("audit", next))
  }
  const text = (name: string, label: string) => (
    <div class="field">
      <label for={`audit-${name}`}>{label}</label>
      <input id={`audit-${name}`} value={values[name]} autocomplete="off" spellcheck={false} onInput={set(name)} />
    </div>
  )
  return (
    <form class="filters" onSubmit={submit} aria-label="Audit query">
      {text("actor", "Actor")}
      <div class="field">
        <label for="audit-type">Type</label>
        <select id="audit-type" value={values.type} onChange={set("type")}>
          <option value="">any</option>
          {auditEventTypes.map((t) => <option key={t} value={t}>{t}</option>)}
        </select>
      </div>
      {text("resourceType", "Resource type")}
      {text("resourceId", "Resource id")}
      {text("correlationId", "Correlation id")}
      {session.role === "admin" && text("tenant", "Tenant")}
      <div class="field">
        <label for="audit-from">From (local time)</label>
        <input id="audit-from" type="datetime-local" step={1} value={values.from} onInput={set("from")} />
      </div>
      <div class="field">
        <label for="audit-to">To (local time)</label>
        <input id="audit-to" type="datetime-local" step={1} value={values.to} onInput={set("to")} />
      </div>
      <div class="field">
        <label for="audit-limit">Per page</label>
        <select id="audit-limit" value={values.limit || "50"} onChange={set("limit")}>
          <option value="25">25</option>
          <option value="50">50</option>
          <option value="100">100</option>
          <option value="250">250</option>
        </select>
      </div>
      <div class="filter-actions">
        <button type="submit" class="button primary">Search</button>
        <a class="button" href={Router.href("audit")}>Clear</a>
      </div>
    </form>
  )
}

const Entries = (
  { query, checked }: { readonly query: URLSearchParams; readonly checked: CheckedCheckpoint | undefined }
) => {
  const params: Record<string, string | undefined> = {}
  for (const name of [...filterNames, "cursor"]) params[name] = query.get(name) ?? undefined
  params.limit ??= "50"
  const [state] = useAsync((signal) => Api.get<AuditPage>("/admin/audit", { signal, query: params }), [
    query.toString()
  ])
  const [proofs, setProofs] = useState<ReadonlyMap<string, ProofStatus>>(new Map())
  const page = dataOf(state)
  useEffect(() => {
    if (page === undefined || checked === undefined) return
    const abort = new AbortController()
    const results = new Map<string, ProofStatus>()
    setProofs(new Map())
    const queue = [...page.entries]
    // A few proofs at a time: enough to fill the page quickly without a burst of requests.
    const worker = async () => {
      for (let entry = queue.shift(); entry !== undefined; entry = queue.shift()) {
        const status = await checkEntry(entry, checked.checkpoint, abort.signal)
        if (abort.signal.aborted) return
        results.set(entry.id, status)
        setProofs(new Map(results))
      }
    }
    void Promise.all([worker(), worker(), worker(), worker()]).then(() => {
      if (abort.signal.aborted) return
      const failed = [...results.values()].filter((s) => s._tag === "failed").length
      announce(failed === 0 ? "Inclusion proofs of this page verified" : `${failed} entries could not be proven`)
    }, () => undefined)
    return () => abort.abort()
  }, [page, checked])
  const next = page?.nextCursor
  return (
    <>
      {state._tag === "failed" && <ErrorBox error={state.error} />}
      {state._tag === "loading" && page !== undefined && <p role="status" class="small">Loading entries…</p>}
      {page === undefined ?
        <p role="status">Loading entries…</p> :
        page.entries.length === 0 ?
        <p>No entry matches.</p> :
        (
          <div class="table-wrap" tabIndex={0} role="region" aria-label="Audit entries table">
            <table data-testid="audit-entries" aria-busy={state._tag === "loading"}>
              <caption class="sr-only">Audit entries, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">#</th>
                  <th scope="col">Time</th>
                  <th scope="col">Type</th>
                  <th scope="col">Actor</th>
                  <th scope="col">Action</th>
                  <th scope="col">Resource</th>
                  <th scope="col">Outcome</th>
                  <th scope="col">Correlation id</th>
                  <th scope="col">Proof</th>
                </tr>
              </thead>
              <tbody>
                {page.entries.map((e) => (
                  <tr key={e.id} data-testid="audit-row">
                    <td>{e.index}</td>
                    <td>{Format.time(e.time)}</td>
                    <td>{e.type}</td>
                    <td>
                      <a href={Router.href("audit", { actor: e.actor.subject })}>{e.actor.subject ?? "—"}</a>
                      {e.actor.tenantId !== undefined ? <span class="small">({e.actor.tenantId})</span> : ""}
                    </td>
                    <td>{e.action}{e.reason !== undefined ? <span class="small">— {e.reason}</span> : ""}</td>
                    <td>{e.resource.type}{e.resource.id !== undefined ? `/${e.resource.id}` : ""}</td>
                    <td>{e.outcome}</td>
                    <td>
                      {e.correlationId === undefined ?
                        "—" :
                        (
                          <a href={Router.href("audit", { correlationId: e.correlationId })}>
                            <code>{e.correlationId}</code>
                          </a>
                        )}
                    </td>
                    <td data-testid="proof">
                      <ProofBadge status={checked === undefined ? undefined : proofs.get(e.id)} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      <nav class="pager" aria-label="Pages">
        {query.has("cursor") && (
          <a
            class="button"
            href={Router.href(
              "audit",
              (() => {
                const q = new URLSearchParams(query)
                q.delete("cursor")
                return q
              })()
            )}
          >
            Newest
          </a>
        )}
        {next !== undefined && (
          <a
            class="button"
            rel="next"
            href={Router.href(
              "audit",
              (() => {
                const q = new URLSearchParams(query)
                q.set("cursor", next)
                return q
              })()
            )}
          >
            Older entries
          </a>
        )}
      </nav>
    </>
  )
}

/**
 * The Audit view.
 *
 * @since 0.1.0
 * @category views
 */
export const Audit = ({ session, query }: { readonly session: Session; readonly query: URLSearchParams }) => {
  const { offered, missing } = useOffered("GET /admin/audit", "GET /admin/audit/checkpoint", "GET /admin/audit/proof")
  const [key, setKey] = useState(pinnedKey)
  const [keyInput, setKeyInput] = useState(key)
  const [noteState, reloadNote] = useAsync(
    (signal) =>
      Api.call<string>("GET", "/admin/audit/checkpoint", { signal, text: true, accept: "text/plain" }).then((r) =>
        r.data
      ),
    [offered]
  )
  const [checked, setChecked] = useState<CheckedCheckpoint | undefined>(undefined)
  const [checkError, setCheckError] = useState<unknown>(undefined)
  const note = dataOf(noteState)
  useEffect(() => {
    if (note === undefined) return
    let live = true
    checkCheckpoint(note, key).then(
      (c) => {
        if (live) {
          setChecked(c)
          setCheckError(undefined)
        }
      },
      (e: unknown) => live && setCheckError(e)
    )
    return () => {
      live = false
    }
  }, [note, key])
  const pin = (event: Event) => {
    event.preventDefault()
    const value = keyInput.trim()
    try {
      if (value === "") localStorage.removeItem(pinStorage)
      else localStorage.setItem(pinStorage, value)
    } catch {
      // storage refused (private mode): the key still applies to this page
    }
    setKey(value)
    announce(value === "" ? "Verifier key removed" : "Verifier key pinned")
  }
  if (offered === false) {
    return (
      <section aria-labelledby="audit-title">
        <ViewHeading>
          <span id="audit-title">Audit log</span>
        </ViewHeading>
        <Unavailable missing={missing} />
      </section>
    )
  }
  return (
    <section aria-labelledby="audit-title">
      <ViewHeading>
        <span id="audit-title">Audit log</span>
      </ViewHeading>
      <div class="grid-2">
        <section class="panel" aria-labelledby="checkpoint-title">
          <h2 id="checkpoint-title">Latest signed checkpoint</h2>
          {noteState._tag === "failed" && <ErrorBox error={noteState.error} />}
          {checkError !== undefined && <ErrorBox error={checkError} title="The checkpoint cannot be read" />}
          {checked === undefined ? <p role="status">Loading the checkpoint…</p> : (
            <div data-testid="checkpoint">
              <dl class="facts">
                <dt>Log</dt>
                <dd>{checked.checkpoint.origin}</dd>
                <dt>Entries</dt>
                <dd>{Format.number(checked.checkpoint.size)}</dd>
                <dt>Root hash</dt>
                <dd>
                  <code class="wrap">{Merkle.toBase64(checked.checkpoint.rootHash)}</code>
                </dd>
                <dt>Signature</dt>
                <dd data-testid="checkpoint-signature">{signatureBadge(checked)}</dd>
              </dl>
              <button type="button" class="button" onClick={reloadNote}>Fetch the latest checkpoint</button>
            </div>
          )}
          <form class="stack" onSubmit={pin}>
            <div class="field">
              <label for="verifier-key">Verifier key of the log (public; kept in this browser)</label>
              <input
                id="verifier-key"
                value={keyInput}
                spellcheck={false}
                autocomplete="off"
                placeholder="name+1a2b3c4d+AQ…"
                onInput={(e) => setKeyInput(e.currentTarget.value)}
              />
            </div>
            <button type="submit" class="button">Pin key</button>
          </form>
        </section>
        {session.role === "admin" && checked !== undefined && <WholeLogVerification checked={checked} />}
      </div>
      <h2>Entries</h2>
      <Filters query={query} session={session} />
      {offered === undefined ? <p role="status">Loading…</p> : <Entries query={query} checked={checked} />}
    </section>
  )
}
