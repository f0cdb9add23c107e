/**
 * The console application: sign-in, the role's views, history routing, and the layout (banner, navigation, main
 * content, live region).
 *
 * @since 0.1.0
 */
import "./styles.css"
import { render } from "preact"
import { useEffect, useState } from "preact/hooks"
import * as Api from "./lib/api.js"
import * as Router from "./lib/router.js"
import * as Sampler from "./lib/sampler.js"
import * as SessionStore from "./lib/session.js"
import type { Role, Session } from "./lib/session.js"
import { Announcer, ViewHeading } from "./ui.js"
import { Audit } from "./views/Audit.js"
import { Backups } from "./views/Backups.js"
import { Breakers } from "./views/Breakers.js"
import { Flags } from "./views/Flags.js"
import { Overview } from "./views/Overview.js"
import { SignIn } from "./views/SignIn.js"
import { Tenants } from "./views/Tenants.js"

interface ViewEntry {
  readonly id: string
  readonly label: (session: Session) => string
  readonly roles: ReadonlyArray<Role>
}

const views: ReadonlyArray<ViewEntry> = [
  { id: "overview", label: () => "Overview", roles: ["admin"] },
  { id: "breakers", label: () => "Circuit breakers", roles: ["admin"] },
  { id: "flags", label: () => "Feature flags", roles: ["admin", "tenant-admin"] },
  { id: "tenants", label: (s) => s.role === "admin" ? "Tenants" : "Keys and usage", roles: ["admin", "tenant-admin"] },
  { id: "audit", label: () => "Audit log", roles: ["admin", "tenant-admin"] },
  { id: "backups", label: () => "Backups", roles: ["admin"] }
]

const defaultView = (session: Session) => session.role === "admin" ? "overview" : "tenants"

const NotFound = ({ session }: { readonly session: Session }) => (
  <section aria-labelledby="not-found-title">
    <ViewHeading>
      <span id="not-found-title">Not found</span>
    </ViewHeading>
    <p>
      There is no such view for your role. Go to{" "}
      <a href={Router.href(defaultView(session))}>{views.find((v) => v.id === defaultView(session))?.label(session)}
      </a>.
    </p>
  </section>
)

const Content = ({ session, location }: { readonly session: Session; readonly location: Router.Location }) => {
  const [id = defaultView(session), sub] = location.segments
  const entry = views.find((v) => v.id === id)
  if (entry === undefined || !entry.roles.includes(session.role)) return <NotFound session={session} />
  switch (id) {
    case "overview":
      return <Overview />
    case "breakers":
      return <Breakers />
    case "flags":
      return <Flags key={sub ?? ""} session={session} flagKey={sub} />
    case "tenants":
      return <Tenants key={sub ?? ""} session={session} tenantId={sub} query={location.query} />
    case "audit":
      return <Audit session={session} query={location.query} />
    case "backups":
      return <Backups />
    default:
      return <NotFound session={session} />
  }
}

const App = () => {
  const [session, setSession] = useState<Session | undefined>(() => {
    const stored = SessionStore.load()
    Api.setKey(stored?.key)
    return stored
  })
  const [message, setMessage] = useState<string | undefined>(undefined)
  const location = Router.useLocation()

  const signOut = (reason?: string) => {
    SessionStore.clear()
    Api.setKey(undefined)
    Sampler.stop()
    setSession(undefined)
    setMessage(reason)
  }

  useEffect(() => {
    Api.setOnUnauthorized((error) =>
      signOut(`The server no longer accepts your key (${error.detail ?? error.title}). Sign in again.`)
    )
    return Router.interceptLinks(document.body)
  }, [])

  useEffect(() => {
    if (session?.role === "admin") Sampler.start()
    else Sampler.stop()
  }, [session?.role])

  const [id = session === undefined ? "" : defaultView(session)] = location.segments
  const current = session === undefined ? undefined : views.find((v) => v.id === id)
  useEffect(() => {
    const label = session === undefined ? "Sign in" : current?.label(session) ?? "Not found"
    document.title = `${label} · Ouroboros console`
  }, [session, current])

  return (
    <>
      <a class="skip-link" href="#main">Skip to content</a>
      <header class="top">
        <a class="brand" href={Router.href("")}>
          Ouroboros <span>console</span>
        </a>
        {session !== undefined && (
          <div class="who">
            <span data-testid="who">
              {session.role === "admin" ? "admin" : `tenant-admin of ${session.tenantId}`}
            </span>
            <button type="button" class="button small" onClick={() => signOut()}>Sign out</button>
          </div>
        )}
      </header>
      <div class={session === undefined ? "layout signed-out" : "layout"}>
        {session !== undefined && (
          <nav aria-label="Views" class="side">
            <ul>
              {views.filter((v) => v.roles.includes(session.role)).map((v) => (
                <li key={v.id}>
                  <a href={Router.href(v.id)} aria-current={v.id === id ? "page" : undefined}>{v.label(session)}</a>
                </li>
              ))}
            </ul>
          </nav>
        )}
        <main id="main" tabIndex={-1}>
          {session === undefined
            ? (
              <SignIn
                message={message}
                onSignedIn={(next) => {
                  SessionStore.save(next)
                  Api.setKey(next.key)
                  Router.markNavigated()
                  setMessage(undefined)
                  setSession(next)
                }}
              />
            )
            : <Content session={session} location={location} />}
        </main>
      </div>
      <Announcer />
    </>
  )
}

render(<App />, document.getElementById("app")!)
