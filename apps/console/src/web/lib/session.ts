/**
 * The signed-in operator: the API key (kept in `sessionStorage` only: it goes with the tab, never into a URL or
 * `localStorage`) and the role the server gave it.
 *
 * @since 0.1.0
 */

/**
 * What the console lets a key do: `admin` sees everything; `tenant-admin` its own tenant's keys, usage, audit events
 * and flag overrides.
 *
 * @since 0.1.0
 * @category models
 */
export type Role = "admin" | "tenant-admin"

/**
 * @since 0.1.0
 * @category models
 */
export interface Session {
  readonly key: string
  readonly role: Role
  /** The tenant of a tenant administrator. */
  readonly tenantId?: string | undefined
  /** Who the server says the key is (`key:<id>`, or `admin`). */
  readonly subject: string
}

const storageKey = "ouroboros-console:session"

const isSession = (value: unknown): value is Session => {
  if (typeof value !== "object" || value === null) return false
  const v = value as Record<string, unknown>
  return typeof v.key === "string" && v.key.length > 0 && (v.role === "admin" || v.role === "tenant-admin") &&
    typeof v.subject === "string" && (v.tenantId === undefined || typeof v.tenantId === "string") &&
    (v.role === "admin" || typeof v.tenantId === "string")
}

/**
 * The session of this tab, if any.
 *
 * @since 0.1.0
 * @category storage
 */
export const load = (): Session | undefined => {
  try {
    const text = sessionStorage.getItem(storageKey)
    if (text === null) return undefined
    const value: unknown = JSON.parse(text)
    return isSession(value) ? value : undefined
  } catch {
    return undefined
  }
}

/**
 * Keeps the session for this tab.
 *
 * @since 0.1.0
 * @category storage
 */
export const save = (session: Session): void => {
  sessionStorage.setItem(storageKey, JSON.stringify(session))
}

/**
 * Forgets the session.
 *
 * @since 0.1.0
 * @category storage
 */
export const clear = (): void => {
  sessionStorage.removeItem(storageKey)
}
