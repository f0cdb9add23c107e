/**
 * The route templates of a router, to name the route of any request — also of requests answered before the router
 * matched them (a rate limit's 429, a load shedder's 503, a body-limit 413) — in access logs and metrics.
 *
 * A route table mirrors an `HttpRouter`: {@link layer} wraps the router that route layers register with, so every
 * route added (by `HttpApiBuilder`, `HttpRouter.add`, a prefixed router…) is recorded with its method and template.
 * {@link RouteTable.lookup} then finds a request's route the way the router does: Effect's `FindMyWay` matcher with
 * the router's configuration, `HEAD` answered by the `GET` route, a wildcard route also serving its bare prefix.
 *
 * @since 0.1.0
 */
import { Effect, Layer } from "effect"
import { FindMyWay, HttpRouter } from "effect/http"

/**
 * A route of the router: its template, e.g. `/api/v1/documents/:id` (as registered, prefixes included).
 *
 * @since 0.1.0
 * @category models
 */
export interface Route {
  readonly path: string
}

/**
 * The route of requests that no route matches (the router's 404).
 *
 * @since 0.1.0
 * @category constants
 */
export const unmatched: Route = Object.freeze({ path: "unmatched" })

/**
 * The routes of a router and a lookup by request.
 *
 * @since 0.1.0
 * @category models
 */
export interface RouteTable {
  /** The route the router serves `method url` with (`url` as `HttpServerRequest.url` holds it), if any. */
  readonly lookup: (method: string, url: string) => Route | undefined
  /** Records a route (what {@link layer} does for every route added to the router). */
  readonly add: (method: string, path: string) => void
  /** The recorded routes, `METHOD template`, in the order they were added. */
  readonly routes: () => ReadonlyArray<string>
}

// The methods a `*` route answers, as the router registers them (FindMyWay's list).
const allMethods = [
  "ACL",
  "BIND",
  "CHECKOUT",
  "CONNECT",
  "COPY",
  "DELETE",
  "GET",
  "HEAD",
  "LINK",
  "LOCK",
  "M-SEARCH",
  "MERGE",
  "MKACTIVITY",
  "MKCALENDAR",
  "MKCOL",
  "MOVE",
  "NOTIFY",
  "OPTIONS",
  "PATCH",
  "POST",
  "PROPFIND",
  "PROPPATCH",
  "PURGE",
  "PUT",
  "QUERY",
  "REBIND",
  "REPORT",
  "SEARCH",
  "SOURCE",
  "SUBSCRIBE",
  "TRACE",
  "UNBIND",
  "UNLINK",
  "UNLOCK",
  "UNSUBSCRIBE"
]

/**
 * Options of {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The router's configuration: `HttpRouter.serve`'s `routerConfig` (default: Effect's defaults). */
  readonly routerConfig?: Partial<FindMyWay.RouterConfig> | undefined
}

/**
 * An empty route table. Give it to {@link layer} and to what reads routes (`AccessLog.make`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): RouteTable => {
  const recorded: Array<readonly [method: string, path: string]> = []
  const byPath = new Map<string, Route>()
  let router: FindMyWay.Router<Route> | undefined

  const routeOf = (path: string): Route => {
    let route = byPath.get(path)
    if (route === undefined) byPath.set(path, route = Object.freeze({ path }))
    return route
  }

  // Built on the first lookup after routes were added (routes are added while the server starts): declared routes
  // first, then the bare prefixes of wildcard routes that no declared route takes, as the router resolves them.
  const build = (): FindMyWay.Router<Route> => {
    const next = FindMyWay.make<Route>(options.routerConfig)
    const fallbacks: Array<readonly [string, string, Route]> = []
    for (const [method, path] of recorded) {
      const route = routeOf(path)
      try {
        if (method === "*") next.all(path as FindMyWay.PathInput, route)
        else next.on(method, path as FindMyWay.PathInput, route)
      } catch {
        // The router refused it too (a route declared twice): the server did not start.
      }
      if (path.endsWith("/*")) fallbacks.push([method, path.slice(0, -2) || "/", route])
    }
    for (const [method, bare, route] of fallbacks) {
      for (const m of method === "*" ? allMethods : [method]) {
        try {
          next.on(m, bare as FindMyWay.PathInput, route)
        } catch {
          // A route of its own is declared there: it wins.
        }
      }
    }
    return next
  }

  return {
    add: (method, path) => {
      recorded.push([method, path])
      router = undefined
    },
    lookup: (method, url) => {
      const current = router ??= build()
      const found = current.find(method, url) ?? (method === "HEAD" ? current.find("GET", url) : undefined)
      return found?.handler
    },
    routes: () => recorded.map(([method, path]) => `${method} ${path}`)
  }
}

type AnyRouter = HttpRouter.HttpRouter

// The router that route layers see: each route added is recorded (with the prefixes of prefixed routers), then added to
// the router itself.
const recording = (router: AnyRouter, table: RouteTable, prefix: string | undefined): AnyRouter => {
  const record = (method: string, path: string) =>
    table.add(method, prefix === undefined ? path : HttpRouter.prefixPath(path, prefix))
  const self: AnyRouter = {
    ...router,
    addAll: (routes) => {
      for (const route of routes) record(route.method, route.path)
      return router.addAll(routes)
    },
    add: (method, path, handler, options) => {
      record(method, path)
      return router.add(method, path, handler, options)
    },
    prefixed: (next: string) =>
      recording(router.prefixed(next), table, prefix === undefined ? next : HttpRouter.prefixPath(next, prefix))
  }
  return self
}

/**
 * Records every route added to the router into `table`. Provide it to the routes (inside `HttpRouter.serve`), so that
 * the route layers register through it:
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { RouteTable } from "@ouroboros/correlation"
 * import { Layer } from "effect"
 * import { HttpRouter } from "effect/http"
 * declare const Routes: Layer.Layer<never, never, HttpRouter.HttpRouter>
 * const routes = RouteTable.make()
 * const Served = HttpRouter.serve(Routes.pipe(Layer.provide(RouteTable.layer(routes))))
 */
export const layer = (table: RouteTable): Layer.Layer<HttpRouter.HttpRouter, never, HttpRouter.HttpRouter> =>
  Layer.effect(
    HttpRouter.HttpRouter,
    Effect.map(Effect.service(HttpRouter.HttpRouter), (router) => recording(router, table, undefined))
  )
