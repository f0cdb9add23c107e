/**
 * History routing under the console's base path (the document's `<base href>`, `/console/` by default): every view
 * and filter has a URL (`/console/audit?actor=…`), links and the back button work without a reload, and the server
 * answers every deep link with the application.
 *
 * @since 0.1.0
 */
import { useEffect, useState } from "preact/hooks"

/**
 * Where the console is: the path segments under the base and the query.
 *
 * @since 0.1.0
 * @category models
 */
export interface Location {
  readonly segments: ReadonlyArray<string>
  readonly query: URLSearchParams
}

/**
 * The base path, ending with `/`.
 *
 * @since 0.1.0
 * @category paths
 */
export const base = (): string => new URL(document.baseURI).pathname.replace(/\/?$/, "/")

/**
 * The current location.
 *
 * @since 0.1.0
 * @category paths
 */
export const current = (): Location => {
  const root = base()
  const path = window.location.pathname.startsWith(root) ? window.location.pathname.slice(root.length) : ""
  return {
    segments: path.split("/").filter((s) => s !== "").map((s) => decodeURIComponent(s)),
    query: new URLSearchParams(window.location.search)
  }
}

/**
 * The href of a console path (`audit`, `tenants/acme`) with a query.
 *
 * @since 0.1.0
 * @category paths
 */
export const href = (path: string, query?: Readonly<Record<string, string | undefined>> | URLSearchParams): string => {
  const params = query instanceof URLSearchParams ? new URLSearchParams(query) : new URLSearchParams()
  if (!(query instanceof URLSearchParams)) {
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== "") params.set(name, value)
    }
  }
  const search = params.toString()
  return `${base()}${path.replace(/^\//, "")}${search === "" ? "" : `?${search}`}`
}

const listeners = new Set<() => void>()
let navigations = 0

/**
 * Whether the console navigated since the page loaded (a view then takes the focus; on a fresh load it stays at the
 * top of the document, where the skip link is).
 *
 * @since 0.1.0
 * @category navigation
 */
export const hasNavigated = (): boolean => navigations > 0

/**
 * Counts a change of view that is not a URL change (signing in), so the view shown next takes the focus.
 *
 * @since 0.1.0
 * @category navigation
 */
export const markNavigated = (): void => {
  navigations++
}

/**
 * Goes to an href of the console without a reload.
 *
 * @since 0.1.0
 * @category navigation
 */
export const navigate = (to: string, options: { readonly replace?: boolean } = {}): void => {
  if (options.replace === true) window.history.replaceState(null, "", to)
  else {
    window.history.pushState(null, "", to)
    navigations++
  }
  for (const listener of listeners) listener()
}

/**
 * The current location, re-rendered on every navigation.
 *
 * @since 0.1.0
 * @category hooks
 */
export const useLocation = (): Location => {
  const [location, setLocation] = useState(current)
  useEffect(() => {
    const update = () => setLocation(current())
    const pop = () => {
      navigations++
      update()
    }
    listeners.add(update)
    window.addEventListener("popstate", pop)
    return () => {
      listeners.delete(update)
      window.removeEventListener("popstate", pop)
    }
  }, [])
  return location
}

/**
 * Same-document navigation for clicks on the console's own links (modified clicks open tabs as usual).
 *
 * @since 0.1.0
 * @category navigation
 */
export const interceptLinks = (root: HTMLElement): () => void => {
  const onClick = (event: MouseEvent) => {
    if (
      event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey
    ) {
      return
    }
    const target = event.target instanceof Element ? event.target.closest("a") : null
    if (target === null || target.target !== "" || target.hasAttribute("download")) return
    // In-page links (the skip link): with a `<base>`, `#main` would otherwise leave the current view.
    const raw = target.getAttribute("href") ?? ""
    if (raw.startsWith("#")) {
      event.preventDefault()
      const element = document.getElementById(raw.slice(1))
      element?.focus()
      element?.scrollIntoView()
      return
    }
    const url = new URL(target.href, document.baseURI)
    if (url.origin !== window.location.origin || !url.pathname.startsWith(base().replace(/\/$/, ""))) return
    event.preventDefault()
    navigate(url.pathname + url.search)
  }
  root.addEventListener("click", onClick)
  return () => root.removeEventListener("click", onClick)
}
