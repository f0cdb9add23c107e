/**
 * The HTTP side of versioning: negotiation at the edge, the version headers on every API response, and the
 * documents that tell clients which versions exist.
 *
 * **Negotiation** ({@link layer}, {@link make}): a global router middleware that runs once per request, before
 * routing. Under the API prefix (`/api`):
 *
 * - `/api/v1/...`: the URL segment names the version. A segment that starts with `v` and a digit is always read as a
 *   version (`/api/v9/...` is an unknown version, `/api/v1.5/...` a malformed one), never as a resource.
 * - `/api/...` without a segment: the `api-version` request header names it (`v1`, `V1`, `1`), else the default
 *   version (the newest stable one, or `API_VERSIONS_DEFAULT`); the request is then routed to that version's route
 *   (the URL is rewritten to `/api/<version>/...` before the router sees it) and the response carries
 *   `Vary: api-version`.
 * - A header that contradicts the URL segment is ignored: **the URL wins**, so a link always means one thing.
 * - "Under the prefix" is read as the router reads a target (decoded, `//` merged, case-insensitive with Effect's
 *   defaults; {@link Options.routerConfig}): `/API/v1/x`, `//api/v1/x` and `/%61pi/v1/x` are negotiated as
 *   `/api/v1/x` is. The version segment keeps its case (`/API/V1/x` is a malformed version).
 * - An unknown, malformed or disabled version answers a 400 problem (`UnsupportedApiVersion`) that lists the
 *   supported versions; a version past its sunset a 410 problem (`ApiVersionGone`) that names its successor, with
 *   `Link: <…>; rel="successor-version"` to the same path in that version.
 * - The negotiated version is in the request's context (`ApiVersion.CurrentApiVersion`, and kernel's
 *   `RequestContext.RequestInfo.apiVersion` when a `RequestContext` is provided) for handlers, logs, metrics and audit.
 *
 * **Headers** (through kernel's `ResponseHeaders`, so problems, the router's 404 and defects carry them too): every
 * response under the prefix carries `api-version` (the version served; for a 400, the default version) and
 * `api-supported-versions`; a deprecated version adds `Deprecation: @<epoch seconds>` (RFC 9745) and
 * `Link: <notes>; rel="deprecation"`, and one with a sunset date `Sunset: <HTTP-date>` (RFC 8594).
 *
 * **Documents** ({@link layerDocs}): each version's OpenAPI document at `/api/<version>/openapi.json`, the default
 * version's at `/openapi.json`, Swagger UI at `/docs` with a selector of versions, and the versions themselves with
 * their lifecycle and migration notes (the changes' descriptions) at `/api/versions` and `/api/versions/<version>`.
 *
 * @since 0.1.0
 */
import { Problem, RequestContext, ResponseHeaders } from "@ouroboros/kernel"
import { Clock, Context, Effect, Layer, Option } from "effect"
import { type FindMyWay, HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { type HttpApi, type HttpApiGroup, HttpApiSwagger, OpenApi } from "effect/http-api"
import * as ApiVersion from "./ApiVersion.js"
import * as RouterPath from "./internal/routerPath.js"
import * as VersionedApi from "./VersionedApi.js"
import * as VersionMetrics from "./VersionMetrics.js"
import * as VersionPolicy from "./VersionPolicy.js"

/**
 * Options of the negotiation middleware.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The path under which requests are versioned (default `/api`). */
  readonly prefix?: `/${string}` | undefined
  /** The request header that names a version on an unversioned path (default `api-version`). */
  readonly header?: string | undefined
  /**
   * Paths under the prefix that are not versioned, exactly or, ending in `/*`, with everything under them (default:
   * the versions documents, `<prefix>/versions` and `<prefix>/versions/*`). They get `api-supported-versions` only.
   */
  readonly unversioned?: ReadonlyArray<string> | undefined
  /**
   * The migration notes of a deprecated version that has no `link` setting (default `<prefix>/versions/<version>`,
   * served by {@link layerDocs}); `undefined` for no `Link`.
   */
  readonly link?: ((version: ApiVersion.ApiVersion) => string | undefined) | undefined
  /**
   * The router's configuration (`HttpRouter.serve`'s `routerConfig`; default: the `HttpRouter.RouterConfig` in
   * context, Effect's defaults unless provided): a request target is read as that router reads it, so that every
   * spelling it routes under the prefix (`/API/x`, `//api/x`, `/%61pi/x` with the defaults) is negotiated.
   */
  readonly routerConfig?: Partial<FindMyWay.RouterConfig> | undefined
}

const httpDate = (ms: number): string => new Date(ms).toUTCString()

/**
 * The `Deprecation` field value of RFC 9745: `@` and the epoch seconds.
 *
 * @since 0.1.0
 * @category formatting
 */
export const deprecationValue = (ms: number): string => `@${Math.floor(ms / 1000)}`

/**
 * The `Sunset` field value of RFC 8594: an HTTP-date.
 *
 * @since 0.1.0
 * @category formatting
 */
export const sunsetValue = (ms: number): string => httpDate(ms)

interface Compiled {
  /** Fields of every response of the version but `api-supported-versions`, as name, value, … */
  readonly fields: ReadonlyArray<string>
  /** The `Link` value to the version's migration notes, if it has one. */
  readonly deprecationLink: string | undefined
}

const setFields = (context: Context.Context<never>, fields: ReadonlyArray<string>): void => {
  for (let i = 0; i < fields.length; i += 2) ResponseHeaders.setUnsafe(context, fields[i]!, fields[i + 1]!)
}

const problem = (
  status: number,
  title: string,
  body: Record<string, unknown>,
  correlationId: Option.Option<string>,
  headers?: Record<string, string>
): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.jsonUnsafe(
    Problem.normalize(status, { title, ...body }, Option.getOrUndefined(correlationId)),
    { status, contentType: Problem.contentType, ...(headers !== undefined ? { headers } : {}) }
  )

/**
 * The negotiation middleware, for a server that composes its router middleware itself (put it inside
 * `ProblemHttp.middleware` and outside rate limits, which then see the routed, versioned path). {@link layer}
 * installs it as a global router middleware.
 *
 * @since 0.1.0
 * @category middleware
 */
export const make = Effect.fnUntraced(function*(options?: Options) {
  const policy = yield* VersionPolicy.VersionPolicy
  const context = yield* Effect.context<never>()
  const prefix = (options?.prefix ?? "/api").replace(/\/+$/, "")
  const header = (options?.header ?? "api-version").toLowerCase()
  // The target is read as the router reads it (decoded, `//` merged, in any case…): every spelling the router serves
  // under the prefix is negotiated and gets the headers.
  const routerConfig = options?.routerConfig ?? (yield* HttpRouter.RouterConfig)
  const caseSensitive = routerConfig.caseSensitive ?? false
  const fold = (text: string) => caseSensitive ? text : text.toLowerCase()
  const apiTarget = RouterPath.underPrefix(prefix, routerConfig)
  const unversioned = options?.unversioned ?? [`${prefix}/versions`, `${prefix}/versions/*`]
  const exact = new Set(unversioned.filter((p) => !p.endsWith("/*")).map(fold))
  const under = unversioned.filter((p) => p.endsWith("/*")).map((p) => fold(p.slice(0, -1)))
  const isUnversioned = (path: string) => {
    const folded = fold(path)
    return exact.has(folded) || under.some((p) => folded.startsWith(p))
  }
  const linkOf = options?.link ?? ((version: ApiVersion.ApiVersion) => `${prefix}/versions/${version}`)
  const counts = VersionMetrics.series(VersionMetrics.requests, context)

  const compiled = new Map<ApiVersion.ApiVersion, Compiled>()
  for (const lifecycle of policy.versions) {
    const fields = ["api-version", lifecycle.version]
    let deprecationLink: string | undefined
    if (lifecycle.deprecatedAt !== undefined) {
      fields.push("deprecation", deprecationValue(lifecycle.deprecatedAt))
      const link = lifecycle.link ?? linkOf(lifecycle.version)
      if (link !== undefined) fields.push("link", deprecationLink = `<${link}>; rel="deprecation"`)
    }
    if (lifecycle.sunsetAt !== undefined) fields.push("sunset", sunsetValue(lifecycle.sunsetAt))
    compiled.set(lifecycle.version, { fields, deprecationLink })
  }
  // `api-supported-versions` of a state (it changes when a sunset passes).
  let supportedOf: VersionPolicy.State | undefined
  let supported = ""
  const supportedValue = (state: VersionPolicy.State) => {
    if (state !== supportedOf) {
      supportedOf = state
      supported = state.supported.join(", ")
    }
    return supported
  }
  const servedCells = new Map(
    policy.versions.map((v) => [v.version, counts.get({ version: v.version, outcome: "served" })])
  )
  const unknownCell = counts.get({ version: "unknown", outcome: "unsupported" })
  const malformedCell = counts.get({ version: "malformed", outcome: "unsupported" })
  const unsupportedCell = (requested: string) =>
    ApiVersion.isCanonical(requested) || ApiVersion.parse(requested) !== undefined ? unknownCell : malformedCell

  return <E, R>(
    app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
  ): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest> =>
    Effect.withFiber((fiber) => {
      const request = Context.getUnsafe(fiber.context, HttpServerRequest.HttpServerRequest)
      // `/apidocs` is not under `/api`; `/API/x`, `//api/x` and `/%61pi/x` are, as for the router.
      const target = apiTarget(request.url)
      if (target === undefined) return app
      const path = target.path
      const requestContext = fiber.context
      if (isUnversioned(prefix + path)) {
        ResponseHeaders.setUnsafe(
          requestContext,
          "api-supported-versions",
          supportedValue(policy.state(fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()))
        )
        return app
      }
      const segment = target.segment
      const versioned = ApiVersion.isVersionSegment(segment)
      const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
      const negotiation = policy.negotiate(
        versioned ? { segment } : { header: request.headers[header] },
        now
      )
      ResponseHeaders.setUnsafe(requestContext, "api-supported-versions", supportedValue(negotiation.state))
      if (!versioned) ResponseHeaders.setUnsafe(requestContext, "vary", header)
      switch (negotiation._tag) {
        case "Served": {
          const version = negotiation.version
          setFields(requestContext, compiled.get(version)!.fields)
          servedCells.get(version)!.count++
          let effect: Effect.Effect<HttpServerResponse.HttpServerResponse, E, any> = app
          if (!versioned) {
            effect = Effect.provideService(
              effect,
              HttpServerRequest.HttpServerRequest,
              request.modify({ url: `${prefix}/${version}${target.restFrom(0)}` })
            )
          }
          const info = Context.getOrUndefined(requestContext, RequestContext.RequestContext)
          if (info !== undefined) {
            effect = Effect.provideService(effect, RequestContext.RequestContext, { ...info, apiVersion: version })
          }
          return Effect.provideService(effect, ApiVersion.CurrentApiVersion, version)
        }
        case "Unsupported": {
          const error = negotiation.error
          ResponseHeaders.setUnsafe(requestContext, "api-version", negotiation.state.defaultVersion)
          // Not the requested version as a label: one label per version a client makes up would grow the metric
          // without bound.
          unsupportedCell(error.requested).count++
          return Effect.succeed(problem(400, "Unsupported API version", {
            _tag: error._tag,
            detail: error.detail,
            requested: error.requested,
            supportedVersions: error.supportedVersions
          }, fiber.getRef(RequestContext.currentCorrelationId)))
        }
        case "Gone": {
          const error = negotiation.error
          const gone = compiled.get(error.version)!
          setFields(requestContext, gone.fields)
          counts.get({ version: error.version, outcome: "gone" }).count++
          const successorPath = `${prefix}/${error.successor}${target.restFrom(versioned ? 1 : 0)}`
          return Effect.succeed(problem(
            410,
            "Gone",
            {
              _tag: error._tag,
              detail: error.detail,
              version: error.version,
              sunset: error.sunset,
              successor: error.successor,
              successorUrl: successorPath,
              supportedVersions: error.supportedVersions
            },
            fiber.getRef(RequestContext.currentCorrelationId),
            {
              // The response's own `Link` replaces the one of the version's fields: both relations, in one field.
              link: gone.deprecationLink === undefined
                ? `<${successorPath}>; rel="successor-version"`
                : `<${successorPath}>; rel="successor-version", ${gone.deprecationLink}`
            }
          ))
        }
      }
    })
})

/**
 * Negotiation as a global router middleware: every request under the prefix, the router's 404 included.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: Options
): Layer.Layer<never, never, HttpRouter.HttpRouter | VersionPolicy.VersionPolicy> =>
  HttpRouter.middleware(
    Effect.map(make(options), (middleware) =>
      // The router's types ask a global middleware to pass on the errors it does not know; this one adds none.
      middleware as unknown as (
        effect: Effect.Effect<HttpServerResponse.HttpServerResponse, any>
      ) => Effect.Effect<HttpServerResponse.HttpServerResponse, any>),
    { global: true }
  ) as Layer.Layer<never, never, HttpRouter.HttpRouter | VersionPolicy.VersionPolicy>

// -----------------------------------------------------------------------------
// Documents
// -----------------------------------------------------------------------------

/**
 * The status of a version at one moment.
 *
 * @since 0.1.0
 * @category models
 */
export type Status = "preview" | "stable" | "deprecated" | "sunset"

/**
 * The status of a version at `now`.
 *
 * @since 0.1.0
 * @category utils
 */
export const statusOf = (lifecycle: VersionPolicy.Lifecycle, now: number): Status =>
  lifecycle.sunsetAt !== undefined && now >= lifecycle.sunsetAt
    ? "sunset"
    : lifecycle.deprecatedAt !== undefined
    ? "deprecated"
    : lifecycle.preview
    ? "preview"
    : "stable"

const operationId = (group: HttpApiGroup.Top, endpointId: string): string => {
  const endpoint = group.endpoints[endpointId]!
  return Context.getOrElse(
    endpoint.annotations,
    OpenApi.Identifier,
    () => group.topLevel ? endpoint.identifier : `${group.identifier}.${endpoint.identifier}`
  )
}

const methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace", "query", "QUERY"] as const

/**
 * The OpenAPI document of one version: its api's own document, with `info.version` the version, the operations of a
 * deprecated version (and those the next version removed) marked `deprecated: true`, the lifecycle under
 * `info["x-api-lifecycle"]`, and the paths, schemas and security schemes of `include` (an unversioned api: health,
 * admin) merged in.
 *
 * @since 0.1.0
 * @category documents
 */
export const openApi = (
  self: VersionedApi.Any,
  version: ApiVersion.ApiVersion,
  options?: {
    readonly lifecycle?: VersionPolicy.Lifecycle | undefined
    readonly include?: HttpApi.Constraint | undefined
    /** The moment the lifecycle's status is told for (epoch milliseconds; default now). */
    readonly now?: number | undefined
  }
): OpenApi.OpenAPISpec => {
  const entry = self.versions.find((v) => v.version === version)
  if (entry === undefined) throw new Error(`no API version ${version}`)
  const spec = OpenApi.fromApi(entry.api)
  const info = spec.info as OpenApi.OpenAPISpec["info"] & Record<string, unknown>
  info.version = version
  const lifecycle = options?.lifecycle
  const deprecatedVersion = lifecycle !== undefined &&
    (lifecycle.deprecatedAt !== undefined || lifecycle.sunsetAt !== undefined)
  if (lifecycle !== undefined) {
    info["x-api-lifecycle"] = {
      status: statusOf(lifecycle, options?.now ?? Date.now()),
      ...(lifecycle.deprecatedAt !== undefined ? { deprecated: new Date(lifecycle.deprecatedAt).toISOString() } : {}),
      ...(lifecycle.sunsetAt !== undefined ? { sunset: new Date(lifecycle.sunsetAt).toISOString() } : {}),
      ...(lifecycle.link !== undefined ? { link: lifecycle.link } : {})
    }
  }
  const removed = new Set<string>()
  for (const change of entry.changes) {
    for (const removal of change.removals) {
      const group = (entry.api.groups as unknown as Record<string, HttpApiGroup.Top>)[removal.group]
      if (group !== undefined) removed.add(operationId(group, removal.endpoint))
    }
  }
  for (const item of Object.values(spec.paths)) {
    for (const method of methods) {
      const operation = (item as Record<string, { operationId?: string; deprecated?: boolean } | undefined>)[method]
      if (operation === undefined) continue
      if (deprecatedVersion || (operation.operationId !== undefined && removed.has(operation.operationId))) {
        operation.deprecated = true
      }
    }
  }
  if (options?.include !== undefined) {
    const extra = OpenApi.fromApi(options.include as HttpApi.Top)
    spec.paths = { ...extra.paths, ...spec.paths }
    spec.components.schemas = { ...extra.components.schemas, ...spec.components.schemas }
    spec.components.securitySchemes = { ...extra.components.securitySchemes, ...spec.components.securitySchemes }
    spec.tags = [...extra.tags, ...spec.tags.filter((t) => !extra.tags.some((e) => e.name === t.name))]
  }
  return spec
}

/**
 * The versions document: each served version, newest first, with its status, dates, links and the changes that
 * separate it from the newest version (its migration notes).
 *
 * @since 0.1.0
 * @category documents
 */
export const versionsDocument = (
  self: VersionedApi.Any,
  policy: VersionPolicy.VersionPolicy["Service"],
  now: number,
  options?: {
    readonly prefix?: string | undefined
    readonly link?: ((version: string) => string | undefined) | undefined
  }
) => {
  const prefix = options?.prefix ?? self.prefix
  const state = policy.state(now)
  const notes = (version: ApiVersion.ApiVersion) => {
    const index = self.versions.findIndex((v) => v.version === version)
    const out: Array<{
      readonly from: string
      readonly to: string
      readonly description: string
      readonly endpoints: ReadonlyArray<{ readonly endpoint: string; readonly description: string }>
      readonly removed: ReadonlyArray<{ readonly endpoint: string; readonly description: string | undefined }>
    }> = []
    for (let i = index; i > 0; i--) {
      const entry = self.versions[i]!
      for (const change of entry.changes) {
        out.push({
          from: entry.version,
          to: self.versions[i - 1]!.version,
          description: change.description,
          endpoints: change.migrations.flatMap((m) =>
            m.description === undefined ? [] : [{ endpoint: `${m.group}.${m.endpoint}`, description: m.description }]
          ),
          removed: change.removals.map((r) => ({ endpoint: `${r.group}.${r.endpoint}`, description: r.description }))
        })
      }
    }
    return out
  }
  const entries = policy.versions.map((lifecycle) => {
    const status = statusOf(lifecycle, now)
    const link = lifecycle.link ?? options?.link?.(lifecycle.version) ??
      (lifecycle.deprecatedAt !== undefined ? `${prefix}/versions/${lifecycle.version}` : undefined)
    return {
      version: lifecycle.version,
      status,
      ...(lifecycle.deprecatedAt !== undefined ? { deprecated: new Date(lifecycle.deprecatedAt).toISOString() } : {}),
      ...(lifecycle.sunsetAt !== undefined ? { sunset: new Date(lifecycle.sunsetAt).toISOString() } : {}),
      ...(link !== undefined ? { link } : {}),
      openapi: `${prefix}/${lifecycle.version}/openapi.json`,
      changes: notes(lifecycle.version)
    }
  })
  return { defaultVersion: state.defaultVersion, supportedVersions: state.supported, versions: entries }
}

const escapeJson = (value: unknown) => JSON.stringify(value).replace(/</g, "\\u003c")

// Swagger UI with a selector of documents: the page of `HttpApiSwagger` (whose bundle also holds Swagger UI's
// standalone preset, the one with the top bar and its `urls` selector), started with `urls` instead of one spec.
const swaggerPage = (
  api: HttpApi.Top,
  urls: ReadonlyArray<{ readonly url: string; readonly name: string }>,
  primary: string
) =>
  Effect.gen(function*() {
    const page = yield* Effect.acquireUseRelease(
      Effect.sync(() =>
        HttpRouter.toWebHandler(HttpApiSwagger.layer(api as HttpApi.Top, { path: "/docs" }), { disableLogger: true })
      ),
      ({ handler }) =>
        Effect.promise(() =>
          (handler as (request: Request) => Promise<Response>)(new Request("http://localhost/docs")).then((r) =>
            r.text()
          )
        ),
      ({ dispose }) => Effect.promise(dispose)
    )
    const start = `<script>
window.onload = () => {
  const urls = ${escapeJson(urls)};
  const standalone = typeof SwaggerUIStandalonePreset !== "undefined";
  window.ui = SwaggerUIBundle(Object.assign({
    dom_id: "#swagger-ui",
    deepLinking: true,
    urls,
    "urls.primaryName": ${escapeJson(primary)}
  }, standalone
    ? { presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: "StandaloneLayout" }
    : { url: urls.find((u) => u.name === ${escapeJson(primary)}).url }));
};
</script>`
    const at = page.lastIndexOf("</body>")
    return at === -1 ? page + start : page.slice(0, at) + start + page.slice(at)
  })

/**
 * Options of {@link layerDocs}.
 *
 * @since 0.1.0
 * @category models
 */
export interface DocsOptions {
  /** The default version's document (default `/openapi.json`). */
  readonly openapiPath?: `/${string}` | undefined
  /** Swagger UI, with a selector of versions (default `/docs`); `false` for none. */
  readonly docsPath?: `/${string}` | false | undefined
  /** An unversioned api (health, admin) whose operations every document includes. */
  readonly include?: HttpApi.Constraint | undefined
  /**
   * Rewrites each version's finished document (after `include` is merged), e.g. `ProblemOpenApi.transform(...)`:
   * applied once per version when the layer is built.
   */
  readonly transform?:
    | ((document: OpenApi.OpenAPISpec, version: ApiVersion.ApiVersion) => Record<string, unknown>)
    | undefined
}

/**
 * The documents: `GET /openapi.json` (the default version), `GET <prefix>/<version>/openapi.json` for every served
 * version, `GET <prefix>/versions` and `GET <prefix>/versions/:version` (lifecycle and migration notes) and Swagger UI
 * at `/docs`, whose top bar switches between the versions' documents.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerDocs = (
  self: VersionedApi.Any,
  options?: DocsOptions
): Layer.Layer<never, never, HttpRouter.HttpRouter | VersionPolicy.VersionPolicy> =>
  Layer.effectDiscard(Effect.gen(function*() {
    const router = yield* HttpRouter.HttpRouter
    const policy = yield* VersionPolicy.VersionPolicy
    const prefix = self.prefix as `/${string}`
    const documents = new Map<ApiVersion.ApiVersion, HttpServerResponse.HttpServerResponse>()
    const now = yield* Clock.currentTimeMillis
    for (const lifecycle of policy.versions) {
      const document = openApi(self, lifecycle.version, { lifecycle, include: options?.include, now })
      const response = HttpServerResponse.jsonUnsafe(
        options?.transform === undefined ? document : options.transform(document, lifecycle.version)
      )
      documents.set(lifecycle.version, response)
      yield* router.add("GET", `${prefix}/${lifecycle.version}/openapi.json`, Effect.succeed(response))
    }
    yield* router.add(
      "GET",
      options?.openapiPath ?? "/openapi.json",
      Effect.map(Clock.currentTimeMillis, (now) => documents.get(policy.state(now).defaultVersion)!)
    )
    yield* router.add(
      "GET",
      `${prefix}/versions`,
      Effect.map(Clock.currentTimeMillis, (now) => HttpServerResponse.jsonUnsafe(versionsDocument(self, policy, now)))
    )
    yield* router.add(
      "GET",
      `${prefix}/versions/:version`,
      Effect.gen(function*() {
        const route = yield* HttpRouter.RouteContext
        const now = yield* Clock.currentTimeMillis
        const requested = ApiVersion.parse(route.params.version ?? "")
        const found = versionsDocument(self, policy, now).versions.find((v) => v.version === requested)
        if (found !== undefined) return HttpServerResponse.jsonUnsafe(found)
        const correlationId = yield* RequestContext.currentCorrelationId
        return problem(404, "Not Found", {
          _tag: "NotFound",
          detail: `no API version ${route.params.version}; supported versions: ${
            policy.state(now).supported.join(", ")
          }`
        }, correlationId)
      })
    )
    const docsPath = options?.docsPath ?? "/docs"
    if (docsPath !== false) {
      const newest = self.versions[0]!
      const urls = policy.versions.map((v) => ({ url: `${prefix}/${v.version}/openapi.json`, name: v.version }))
      const page = HttpServerResponse.html(
        yield* swaggerPage(newest.api, urls, policy.state(now).defaultVersion)
      )
      yield* router.add("GET", docsPath, Effect.succeed(page))
    }
  }))
