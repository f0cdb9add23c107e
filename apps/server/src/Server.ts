/**
 * The composition of the bundled server: every feature is a Layer, wired here in the order the request flows
 * through them and the order resources must outlive each other (SQL and stores are acquired before the HTTP server
 * and released after it).
 *
 * @since 0.1.0
 */
import { AuditHttp } from "@ouroboros/audit"
import { Backup, BackupHttp, BackupSource, Scheduler } from "@ouroboros/backup"
import { CircuitBreakerHttp } from "@ouroboros/circuit-breaker"
import { ConsoleHttp } from "@ouroboros/console"
import { AccessLog, CorrelationHttp, HttpMetrics, RouteTable } from "@ouroboros/correlation"
import { Checkpoints, EventStore } from "@ouroboros/event-store"
import { FeatureFlagsHttp } from "@ouroboros/feature-flags"
import { HealthCheck, HealthCheckOllama, HealthCheckPostgres, HealthCheckQdrant, HealthHttp } from "@ouroboros/health"
import { ProblemHttp, ProblemOpenApi } from "@ouroboros/kernel"
import { CompressionHttp } from "@ouroboros/rate-limit"
import { Pipeline, ProjectorLease, Retrieval } from "@ouroboros/retrieval"
import { Shutdown, ShutdownHttp } from "@ouroboros/shutdown"
import { Database } from "@ouroboros/sql"
import { QuotasHttp, TenancyHttp, type TenantConfig, Tenants, TenantsHttp, UsageHttp } from "@ouroboros/tenancy"
import { VersionedApi, VersioningHttp, VersionPolicy } from "@ouroboros/versioning"
import { ByteSize, Config, Context, Effect, Layer, Option } from "effect"
import {
  FetchHttpClient,
  HttpClient,
  HttpIncomingMessage,
  HttpRouter,
  HttpServer,
  HttpServerRequest,
  HttpServerResponse
} from "effect/http"
import { HttpApiBuilder, type OpenApi } from "effect/http-api"
import * as Path from "node:path"
import packageJson from "../package.json" with { type: "json" }
import { Api } from "./Api.js"
import * as Audit from "./Audit.js"
import * as BackupSources from "./BackupSources.js"
import * as Breakers from "./Breakers.js"
import * as Documents from "./Documents.js"
import * as Flags from "./Flags.js"
import * as Handlers from "./Handlers.js"
import * as Limits from "./Limits.js"
import * as Metrics from "./Metrics.js"
import * as Models from "./Models.js"
import { type ConfigFile, consoleConfig, type ServerConfig } from "./ServerConfig.js"
import * as Tenancy from "./Tenancy.js"
import * as Vectors from "./Vectors.js"
import { Versions } from "./Versions.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly config: ServerConfig
  readonly file: ConfigFile
  /** The configured tenants and keys (`DevSetup.resolveCredentials`). */
  readonly bootstrap: TenantConfig.Bootstrap
}

/**
 * The limit on request bodies: a declared length over it is refused before the body is read (413, and the
 * connection is closed); the body reader stops at it for chunked bodies (see {@link layerMaxBodySize}).
 *
 * @since 0.1.0
 * @category middleware
 */
export const bodyLimit = (maxBytes: number) => {
  // One response for every refusal: it is immutable, and the same as the one for a chunked body over the limit.
  const tooLarge = Effect.succeed(ProblemHttp.payloadTooLarge(maxBytes))
  return <E, R>(
    app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
  ): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest> =>
    Effect.withFiber((fiber) => {
      const request = Context.getUnsafe(fiber.context, HttpServerRequest.HttpServerRequest)
      const declared = request.headers["content-length"]
      return declared !== undefined && Number(declared) > maxBytes ? tooLarge : app
    })
}

/**
 * Every route the server's router serves, for 405 with `Allow` on a wrong method (`ProblemHttp.routes`): the
 * unversioned api, every version of the tenant API, the documents of `VersioningHttp.layerDocs` and `/metrics`. A route
 * added to the router elsewhere must be listed here, or a wrong method on it stays a 404.
 *
 * @since 0.1.0
 * @category routes
 */
export const routeTable: ProblemHttp.Routes = ProblemHttp.routes([
  ...ProblemHttp.routesOf(Api, ...Versions.versions.map((v) => v.api)),
  { method: "GET", path: "/openapi.json" },
  ...Versions.versions.map((v) => ({ method: "GET", path: `${Versions.prefix}/${v.version}/openapi.json` })),
  { method: "GET", path: `${Versions.prefix}/versions` },
  { method: "GET", path: `${Versions.prefix}/versions/:version` },
  { method: "GET", path: "/docs" },
  { method: "GET", path: "/metrics" },
  // The console at its default path (`CONSOLE_PATH`): elsewhere, a wrong method on it is a 404.
  { method: "GET", path: "/console" },
  { method: "GET", path: "/console/*" }
])

/**
 * How error responses are written (issue 21): RFC 9457 problem+json with a documented `type` URI and no internal
 * `_tag`, a `detail` on router 404s and malformed JSON, 405 with `Allow` for a wrong method on a served path, JSON
 * bodies nested deeper than `ProblemHttp.defaultMaxJsonDepth` refused with a 400 before they are decoded, and at most
 * 20 issues, each value quoted to 100 characters, in a decode failure.
 *
 * @since 0.1.0
 * @category middleware
 */
export const problems = ProblemHttp.make({ ...ProblemHttp.rfc9457, routes: routeTable })

/**
 * The OpenAPI documents as clients need them (`ProblemOpenApi.transform`): every error as `application/problem+json`
 * with the shared `Problem` schema, on every operation for each status the edge can answer, the response header fields
 * (correlation id, rate limits, API versions and their deprecation), valid component names, `info.version` the
 * server's version and `servers`.
 *
 * @since 0.1.0
 * @category documents
 */
export const openApiTransform = (document: OpenApi.OpenAPISpec): Record<string, unknown> =>
  ProblemOpenApi.transform({
    version: packageJson.version,
    license: { name: "MIT", identifier: "MIT" },
    servers: [{ url: "/", description: "The server that serves this document" }],
    tags: "omit",
    types: "documented",
    rateLimited: ProblemOpenApi.pathPrefix("/api/", "/admin/"),
    versioned: ProblemOpenApi.pathPrefix("/api/")
  })(document as unknown as Record<string, unknown>)

/**
 * The body reader's limit for every request, set once for the server rather than per request. A chunked body over
 * it fails the reader; {@link problems} answers that with the 413 of {@link bodyLimit}, and the server of
 * `ShutdownHttp.layerServer` keeps the connection open until that answer is sent.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMaxBodySize = (maxBytes: number): Layer.Layer<never> =>
  Layer.succeed(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(maxBytes))

/**
 * Health checks of the remote dependencies that are configured (Qdrant is critical, Ollama is not: the local models
 * stand in for it).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRemoteChecks = Layer.unwrap(
  Effect.gen(function*() {
    const qdrant = yield* Vectors.config
    const ollama = yield* Config.option(Config.String("OLLAMA_URL"))
    return Layer.mergeAll(
      Option.match(qdrant.url, {
        onNone: () => Layer.empty,
        onSome: (url) => HealthCheckQdrant.layer({ url: url.toString(), apiKey: Option.getOrUndefined(qdrant.apiKey) })
      }),
      Option.match(ollama, { onNone: () => Layer.empty, onSome: (url) => HealthCheckOllama.layer({ url }) })
    )
  })
)

/**
 * The vector projection in readiness: `pass` when it has applied the event store's head, `warn` while it catches up
 * (startup does not wait for it), with the lag in events; whether this replica holds the projector lease.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerProjectionHealth = HealthCheck.layerCheck({
  name: "vector-projection:lag",
  componentType: "component",
  critical: false,
  probes: ["ready"],
  run: Effect.gen(function*() {
    const retrieval = yield* Retrieval.Retrieval
    const lag = yield* retrieval.lag
    const role = (yield* retrieval.projecting) ? "projecting here" : "projected by another replica"
    return lag === 0
      ? HealthCheck.pass({ observedValue: 0, observedUnit: "events", output: role })
      : HealthCheck.warn(`catching up: ${lag} events behind (${role})`, { observedValue: lag, observedUnit: "events" })
  })
})

/**
 * Everything but the HTTP server: storage, models, the retrieval pipeline, health.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerServices = (options: Options) => {
  const { config, file } = options
  const SqlLive = Database.layerConfig()
  const EventsLive = Layer.mergeAll(EventStore.layer, Checkpoints.layer).pipe(Layer.provideMerge(SqlLive))
  const TenancyLive = Tenancy.layer({ bootstrap: options.bootstrap, file }).pipe(Layer.provideMerge(SqlLive))
  // The audit log on the same database; the features' hooks are provided to them where they are built.
  const AuditLive = Audit.layer(config.dataDir).pipe(Layer.provide(SqlLive))
  const FlagsLive = Flags.layer.pipe(Layer.provide(SqlLive), Layer.provide(Audit.layerFlagAudit))
  // The vector projector runs on one replica at a time: a PostgreSQL advisory lock when the database is shared.
  const LeaseLive = Layer.unwrap(
    Effect.map(Database.config, (database) =>
      Database.isEmbedded(database)
        ? ProjectorLease.layerLocal
        : ProjectorLease.layerConfig(ProjectorLease.config.pipe(Config.nested("PROJECTOR_LEASE"))))
  ).pipe(Layer.provide(SqlLive))
  // A tenant's vectors live in a collection of their own when its record says so (`dedicatedCollection`).
  const RetrievalLive = Layer.unwrap(
    Effect.map(Tenancy.retrievalOptions, (tenants) => Retrieval.layer({ collection: "documents", ...tenants }))
  ).pipe(
    Layer.provide(LeaseLive),
    Layer.provideMerge(
      Layer.mergeAll(EventsLive, Vectors.layer(Path.resolve(config.dataDir, "vectors")), Models.layer)
    ),
    Layer.provideMerge(TenancyLive)
  )
  // Backups of the event store, the vectors and registered tables; a restore rebuilds the vector projection. The
  // vector store's calls go through the same guard as retrieval's.
  // The tenants, keys, usage and flags are backed up with the events (`BackupSources`); the audit log is not.
  const BackupLive = Backup.layerConfig({ dataDir: config.dataDir }).pipe(
    Layer.provideMerge(
      BackupSources.layer.pipe(Layer.provideMerge(BackupSource.layerRegistry), Layer.provide(SqlLive))
    ),
    Layer.provide(Layer.effect(
      Backup.Projections,
      Effect.map(Effect.service(Retrieval.Retrieval), (retrieval) => ({ rebuild: Effect.asVoid(retrieval.rebuild) }))
    )),
    Layer.provide(Vectors.layerGuarded),
    Layer.provide(Audit.layerBackupAuditor)
  )
  // Scheduled backups run on one replica at a time: a PostgreSQL advisory lock when the database is shared.
  const SchedulerLive = Layer.unwrap(
    Effect.gen(function*() {
      const settings = yield* Backup.config.pipe(Config.nested("BACKUP"))
      const database = yield* Database.config
      return Scheduler.layerConfig(settings).pipe(
        Layer.provide(Database.isEmbedded(database) ? Scheduler.layerLocalLock : Scheduler.layerAdvisoryLock)
      )
    })
  )
  // `HEALTH_SERVICE_ID`, `HEALTH_VERSION`, `HEALTH_CACHE_TTL`, …: a stray `VERSION` in a container changes nothing.
  const HealthLive = HealthCheck.layerConfig(
    { serviceId: "ouroboros", description: "Ouroboros retrieval service" },
    Config.nested(HealthCheck.config, "HEALTH")
  )
  const Checks = Layer.mergeAll(
    HealthCheckPostgres.layer(),
    Breakers.layerHealth,
    Breakers.layerTransitionSpans,
    Limits.layerHealth,
    Flags.layerHealth,
    layerProjectionHealth,
    layerRemoteChecks
  )
  const ProductLive = Documents.layer.pipe(
    Layer.provideMerge(Pipeline.layer),
    Layer.provide(Models.layerChoice)
  )
  return Layer.mergeAll(Checks, SchedulerLive, ProductLive, Tenancy.layerHooks, Audit.layerTenantEvents).pipe(
    Layer.provideMerge(BackupLive),
    Layer.provideMerge(RetrievalLive),
    Layer.provideMerge(Limits.layer(file)),
    Layer.provideMerge(Breakers.layerBreakers),
    Layer.provideMerge(FlagsLive),
    Layer.provideMerge(HealthLive),
    Layer.provideMerge(AuditLive),
    Layer.provide(FetchHttpClient.layer)
  )
}

/**
 * The lifecycle of the API versions: the config file's `apiVersions`, under `API_VERSIONS_*`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerVersionPolicy = (file: ConfigFile) =>
  VersionPolicy.layerConfig(VersionedApi.versions(Versions), file.apiVersions ?? {})

/**
 * What every route of the server's router goes through, the router's 404 included: compression (`CompressionHttp`,
 * outermost) → problem+json for every error → API version negotiation and headers (`VersioningHttp`, under `/api`) →
 * (the routed URL recorded for the access log) → authentication, once (`TenancyHttp`: the
 * principal every later step reads; the feature flags' evaluation context is made from it and the version) → load
 * shedding → rate limits (by principal; by client address without one) →
 * concurrency per principal → the tenant's requests of the day (`QuotasHttp`) → usage metering (`UsageHttp`) → audit
 * of the authentication outcome and of denials (`Audit.middleware`, which sees the answer of everything after it) →
 * body limit. Error answers are written by {@link problems}.
 *
 * @since 0.1.0
 * @category middleware
 */
export const layerRouterMiddleware = (options: Options) =>
  HttpRouter.middleware(
    Effect.gen(function*() {
      const compress = yield* CompressionHttp.makeConfig()
      const version = yield* VersioningHttp.make()
      const authenticate = yield* TenancyHttp.make
      const limits = yield* Limits.middleware
      const quota = yield* QuotasHttp.make()
      const meter = yield* UsageHttp.make()
      const audit = yield* Audit.middleware
      const limitBody = bodyLimit(options.config.maxBodyBytes)
      // The router's types ask a global middleware to pass on the errors it does not know; this one answers them all.
      return (effect: Effect.Effect<HttpServerResponse.HttpServerResponse, any>) =>
        compress(problems(
          version(AccessLog.recordRoutedUrl(authenticate(limits(quota(meter(audit(limitBody(effect))))))))
        )) as unknown as Effect.Effect<HttpServerResponse.HttpServerResponse, any>
    }),
    { global: true }
  )

/**
 * The routes of the server: the unversioned api (health, admin), every version of the tenant API (`Versions`), the
 * documents (`GET /openapi.json` of the default version, `/api/<version>/openapi.json`, `/api/versions`, the Swagger
 * UI at `/docs` switching between versions, each including the unversioned api), `GET /metrics` and the operator
 * console (`GET /console` and below, `ConsoleHttp`: a public page whose calls to the admin API carry `X-API-Key`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRoutes = (options: Options) =>
  Layer.mergeAll(
    HttpApiBuilder.layer(Api),
    VersionedApi.layer(Versions),
    VersioningHttp.layerDocs(Versions, { include: Api, transform: openApiTransform }),
    Metrics.layer,
    ConsoleHttp.layerConfig(consoleConfig)
  ).pipe(
    Layer.provide([
      HealthHttp.layer(Api),
      CircuitBreakerHttp.layer(Api),
      BackupHttp.layer(Api),
      TenantsHttp.layer(Api),
      FeatureFlagsHttp.layer(Api),
      AuditHttp.layer(Api),
      Handlers.layer
    ]),
    Layer.provide([
      TenancyHttp.layerSecurity,
      QuotasHttp.layerErrors,
      FeatureFlagsHttp.layerScopeFromPrincipal,
      Flags.layerVersionAccess,
      Audit.layerScope,
      Audit.layerBreakerAudit
    ]),
    Layer.provide(layerRouterMiddleware(options)),
    Layer.provide(layerVersionPolicy(options.file))
  )

/**
 * The fields the server adds to each access-log line: the tenant and the principal's subject (a key id or a token's
 * subject, never a credential) when the request authenticated, and the API version of the route that served it.
 */
const accessLogFields: AccessLog.Annotate = (request, _context, { route }) => {
  const outcome = TenancyHttp.authenticationOf(request)
  const apiVersion = /^\/api\/(v\d+)(?:\/|$)/.exec(route.path)?.[1]
  return outcome._tag === "Authenticated"
    ? { tenant: outcome.principal.tenantId, principal: outcome.principal.subject, apiVersion }
    : { apiVersion }
}

/**
 * The HTTP server with the request path of DESIGN.md: shutdown tracking, correlation (id, trace, server span, log
 * annotations) and the access log with the RED metrics (`AccessLog`, `HttpMetrics`; `LOG_REQUESTS`) in the `serve`
 * position, so they also cover writing the response → the router's middleware ({@link layerRouterMiddleware}) → the
 * api. Routes are recorded in a `RouteTable`, so every line and series names the route template (`unmatched` for the
 * router's 404), also for requests answered before routing (429, 503, 413). The platform's request log and listen log
 * are off: the access log replaces the one, the server logs the address it listens on itself.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerHttp = (options: Options) =>
  Layer.unwrap(Effect.gen(function*() {
    const { log } = yield* AccessLog.config
    const client = Limits.clientAddress(yield* Limits.trustedProxies)
    const routes = RouteTable.make()
    const observe = AccessLog.make({
      routes,
      log,
      format: options.config.logFormat,
      metrics: yield* HttpMetrics.make,
      client,
      annotate: accessLogFields
    })
    return HttpRouter.serve(layerRoutes(options).pipe(Layer.provide(RouteTable.layer(routes))), {
      disableLogger: true,
      disableListenLog: true,
      middleware: (app) => ShutdownHttp.middleware(CorrelationHttp.middleware(observe(app)))
    })
  })).pipe(CorrelationHttp.withServerSpan, HttpServer.withLogAddress)

/**
 * Readiness follows the lifecycle: serving once the server listens, draining as soon as a shutdown signal arrives.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerPhase: Layer.Layer<never, never, Shutdown.Shutdown | HealthCheck.HealthCheck> = Layer.effectDiscard(
  Effect.gen(function*() {
    const shutdown = yield* Shutdown.Shutdown
    const health = yield* HealthCheck.HealthCheck
    yield* shutdown.onDrain(health.setPhase("draining"))
    yield* health.setPhase("serving")
  })
)

/**
 * Once the server listens: with no tenant yet, one line that says how to create the first one, with the address the
 * server listens on.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStartupNotice: Layer.Layer<never, never, Tenants.Tenants | HttpServer.HttpServer> = Layer
  .effectDiscard(
    Effect.gen(function*() {
      const tenants = yield* Tenants.Tenants
      const server = yield* HttpServer.HttpServer
      const notice = yield* Tenancy.startupNotice(tenants, server.address)
      if (Option.isSome(notice)) yield* Effect.logWarning(notice.value)
    })
  )

/**
 * Outgoing calls keep their span names, `http.client GET` and so on (Effect 4's client names its spans by the method
 * alone; the server span was always named by the method).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSpanNames: Layer.Layer<never> = Layer.succeed(
  HttpClient.SpanNameGenerator,
  (request) => `http.client ${request.method}`
)

/**
 * The whole server. It needs the `Shutdown` coordinator (see `Program`), which owns signals and the drain.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options) => {
  const { config } = options
  const HttpLive = layerHttp(options).pipe(
    Layer.provideMerge(ShutdownHttp.layerServerConfig({ port: config.port, host: config.host })),
    Layer.provide(layerMaxBodySize(config.maxBodyBytes))
  )
  // Services are acquired before the HTTP server and released after it has drained.
  return Layer.merge(layerPhase, layerStartupNotice).pipe(
    Layer.provideMerge(HttpLive),
    Layer.provideMerge(layerServices(options)),
    Layer.provide(layerSpanNames)
  )
}
