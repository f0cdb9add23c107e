/**
 * Signing in with an admin key or a tenant administrator's key. The role comes from the server: `GET /api/v1/whoami`
 * names a tenant key's tenant and roles; the admin key, which belongs to no tenant, is refused there (403) and
 * recognised by an admin endpoint answering it.
 *
 * @since 0.1.0
 */
import { useState } from "preact/hooks"
import * as Api from "../lib/api.js"
import type { Session } from "../lib/session.js"
import type { WhoAmI } from "../lib/types.js"
import { ErrorBox, Notice } from "../ui.js"

/**
 * Finds out what a key may do, or fails with what the server said (or why the console cannot use the key).
 *
 * @since 0.1.0
 * @category sign-in
 */
const sessionOf = async (key: string): Promise<Session> => {
  const who = await Api.call<WhoAmI>("GET", "/api/v1/whoami", { key, accepted: [403] })
  if (who.status === 200) {
    // `tenantId` is the server's name for it; `tenant` is accepted too.
    const { roles, subject } = who.data
    const tenantId = who.data.tenantId ?? (who.data as { readonly tenant?: string }).tenant
    if (roles.includes("admin")) return { key, role: "admin", subject }
    if (roles.includes("tenant-admin")) return { key, role: "tenant-admin", tenantId, subject }
    throw new Error(
      `This key of tenant ${tenantId} has the roles ${roles.join(", ") || "(none)"}: the console needs an admin key ` +
        "or a key with the tenant-admin role."
    )
  }
  // The admin key belongs to no tenant: whoami refuses it, an admin endpoint accepts it.
  await Api.call("GET", "/admin/circuit-breakers", { key })
  return { key, role: "admin", subject: "admin" }
}

/**
 * The sign-in form.
 *
 * @since 0.1.0
 * @category views
 */
export const SignIn = (
  { onSignedIn, message }: { readonly onSignedIn: (session: Session) => void; readonly message?: string | undefined }
) => {
  const [key, setKey] = useState("")
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<unknown>(undefined)
  const submit = async (event: Event) => {
    event.preventDefault()
    setBusy(true)
    setError(undefined)
    try {
      onSignedIn(await sessionOf(key.trim()))
    } catch (cause) {
      setError(cause)
      setBusy(false)
    }
  }
  return (
    <section class="sign-in" aria-labelledby="sign-in-title">
      <h1 id="sign-in-title" tabIndex={-1}>Sign in</h1>
      {message !== undefined && (
        <Notice tone="warning">
          <p>{message}</p>
        </Notice>
      )}
      <form class="stack" onSubmit={submit}>
        <div class="field">
          <label for="api-key">API key (admin, or a tenant administrator's)</label>
          <input
            id="api-key"
            name="api-key"
            type="password"
            autocomplete="off"
            spellcheck={false}
            required
            value={key}
            onInput={(e) => setKey(e.currentTarget.value)}
          />
        </div>
        <p class="small">
          The key stays in this tab only (session storage) and is sent as <code>X-API-Key</code>{" "}
          to this server. It is forgotten when you sign out or close the tab.
        </p>
        <button type="submit" class="button primary" disabled={busy || key.trim() === ""}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
      {error !== undefined && <ErrorBox error={error} title="Cannot sign in" />}
    </section>
  )
}
