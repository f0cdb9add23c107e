/**
 * The composition of the bundled server: every feature is a Layer, wired here in the order the request flows
 * through them and the order resources must outlive each other (SQL and stores are acquired before the HTTP server
 * and released after it).
 *
 * @since 0.1.0
 */
import { Backup, BackupHttp, BackupSource, Scheduler } from "@ouroboros/backup"
import { FeatureFlagsHttp } from "@ouroboros/feature-flags"
import { CircuitBreakerHttp } from "@ouroboros/circuit-breaker"
import { CorrelationHttp } from "@ouroboros/correlation"
import { Checkpoints, EventStore } from "@ouroboros/event-store"
import {
  HealthCheck,
  HealthCheckOllama,
  HealthCheckPostgres,
  HealthCheckQdrant,
  HealthHttp
} from "@ouroboros/health"
import { ProblemHttp } from "@ouroboros/kernel"
import { Pipeline, Retrieval } from "@ouroboros/retrieval"
import { Shutdown, ShutdownHttp } from "@ouroboros/shutdown"
import { Database } from "@ouroboros/sql"
import {
  QuotasHttp,
  TenancyHttp,
  type TenantConfig,
  Tenants,
  TenantsHttp,
  UsageHttp
} from "@ouroboros/tenancy"
import { ByteSize, type Cause, Config, Context, Effect, Layer, Option } from "effect"
import {
  FetchHttpClient,
  HttpClient,
  HttpIncomingMessage,
  HttpRouter,
  HttpServer,
  HttpServerRequest,
  HttpServerResponse
} from "effect/http"
import { VersionedApi, VersioningHttp, VersionPolicy } from "@ouroboros/versioning"
import { HttpApiBuilder, HttpApiError } from "effect/http-api"
import * as Path from "node:path"
import { Api } from "./Api.js"
import * as Breakers from "./Breakers.js"
import * as Documents from "./Documents.js"
import * as Flags from "./Flags.js"
import * as Handlers from "./Handlers.js"
import * as Limits from "./Limits.js"
import * as Metrics from "./Metrics.js"
import * as Models from "./Models.js"
import type { ConfigFile, ServerConfig } from "./ServerConfig.js"
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

// A body that is not JSON at all: HttpApi reports it as a payload whose root value is invalid ("Expected a valid JSON
// body"), with no field to name. The contract answers it with a bare 400 problem, as Effect 3 did.
const isMalformedJson = (cause: Cause.Cause<unknown>): boolean =>
  cause.reasons.some((reason) => {
    const defect = reason._tag === "Die" ? reason.defect : undefined
    if (!HttpApiError.HttpApiSchemaError.is(defect) || defect.kind !== "Payload") return false
    const issue = defect.cause.issue
    return issue._tag === "InvalidValue" && issue.annotations?.message === "Expected a valid JSON body"
  })

const badRequest = Effect.succeed(HttpServerResponse.empty({ status: 400 }))

/**
 * Answers a request body that is not JSON with a bare 400 (a problem once through `ProblemHttp.middleware`), rather
 * than a decode problem with issues.
 *
 * @since 0.1.0
 * @category middleware
 */
export const malformedJson = <E, R>(
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R> =>
  Effect.catchCauseIf(app, isMalformedJson, () => badRequest)

/**
 * The body reader's limit for every request, set once for the server rather than per request. A chunked body over
 * it fails the reader; `ProblemHttp.middleware` answers that with the 413 of {@link bodyLimit}, and the server of
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
        onSome: (url) =>
          HealthCheckQdrant.layer({ url: url.toString(), apiKey: Option.getOrUndefined(qdrant.apiKey) })
      }),
      Option.match(ollama, { onNone: () => Layer.empty, onSome: (url) => HealthCheckOllama.layer({ url }) })
    )
  })
)

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
  const FlagsLive = Flags.layer.pipe(Layer.provide(SqlLive))
  // A tenant's vectors live in a collection of their own when its record says so (`dedicatedCollection`).
  const RetrievalLive = Layer.unwrap(
    Effect.map(Tenancy.retrievalOptions, (tenants) => Retrieval.layer({ collection: "documents", ...tenants }))
  ).pipe(
    Layer.provideMerge(Layer.mergeAll(EventsLive, Vectors.layer(Path.resolve(config.dataDir, "vectors")), Models.layer)),
    Layer.provideMerge(TenancyLive)
  )
  // Backups of the event store, the vectors and registered tables; a restore rebuilds the vector projection. The
  // vector store's calls go through the same guard as retrieval's.
  const BackupLive = Backup.layerConfig({ dataDir: config.dataDir }).pipe(
    Layer.provideMerge(BackupSource.layerRegistry),
    Layer.provide(Layer.effect(
      Backup.Projections,
      Effect.map(Effect.service(Retrieval.Retrieval), (retrieval) => ({ rebuild: Effect.asVoid(retrieval.rebuild) }))
    )),
    Layer.provide(Vectors.layerGuarded)
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
  const HealthLive = HealthCheck.layerConfig({ serviceId: "ouroboros", description: "Ouroboros retrieval service" })
  const Checks = Layer.mergeAll(
    HealthCheckPostgres.layer(),
    Breakers.layerHealth,
    Breakers.layerTransitionSpans,
    Limits.layerHealth,
    Flags.layerHealth,
    layerRemoteChecks
  )
  const ProductLive = Documents.layer.pipe(
    Layer.provideMerge(Pipeline.layer),
    Layer.provide(Models.layerChoice)
  )
  return Layer.mergeAll(Checks, SchedulerLive, ProductLive, Tenancy.layerHooks).pipe(
    Layer.provideMerge(BackupLive),
    Layer.provideMerge(RetrievalLive),
    Layer.provideMerge(Limits.layer(file)),
    Layer.provideMerge(Breakers.layerBreakers),
    Layer.provideMerge(FlagsLive),
    Layer.provideMerge(HealthLive),
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
 * What every route of the server's router goes through, the router's 404 included: problem+json for every error →
 * API version negotiation and headers (`VersioningHttp`, under `/api`) → authentication, once (`TenancyHttp`: the
 * principal every later step reads; the feature flags' evaluation context is made from it and the version) → load
 * shedding → rate limits (by principal; by client address without one) →
 * concurrency per principal → the tenant's requests of the day (`QuotasHttp`) → usage metering (`UsageHttp`) → body
 * limit → a body that is not JSON is a bare 400.
 *
 * @since 0.1.0
 * @category middleware
 */
export const layerRouterMiddleware = (options: Options) =>
  HttpRouter.middleware(
    Effect.gen(function*() {
      const version = yield* VersioningHttp.make()
      const authenticate = yield* TenancyHttp.make
      const limits = yield* Limits.middleware
      const quota = yield* QuotasHttp.make()
      const meter = yield* UsageHttp.make()
      const limitBody = bodyLimit(options.config.maxBodyBytes)
      // The router's types ask a global middleware to pass on the errors it does not know; this one answers them all.
      return (effect: Effect.Effect<HttpServerResponse.HttpServerResponse, any>) =>
        ProblemHttp.middleware(
          version(authenticate(limits(quota(meter(limitBody(malformedJson(effect)))))))
        ) as unknown as Effect.Effect<HttpServerResponse.HttpServerResponse, any>
    }),
    { global: true }
  )

/**
 * The routes of the server: the unversioned api (health, admin), every version of the tenant API (`Versions`), the
 * documents (`GET /openapi.json` of the default version, `/api/<version>/openapi.json`, `/api/versions`, the Swagger
 * UI at `/docs` switching between versions, each including the unversioned api) and `GET /metrics`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRoutes = (options: Options) =>
  Layer.mergeAll(
    HttpApiBuilder.layer(Api),
    VersionedApi.layer(Versions),
    VersioningHttp.layerDocs(Versions, { include: Api }),
    Metrics.layer
  ).pipe(
    Layer.provide([
      HealthHttp.layer(Api),
      CircuitBreakerHttp.layer(Api),
      BackupHttp.layer(Api),
      TenantsHttp.layer(Api),
      FeatureFlagsHttp.layer(Api),
      Handlers.layer
    ]),
    Layer.provide([
      TenancyHttp.layerSecurity,
      QuotasHttp.layerErrors,
      FeatureFlagsHttp.layerScopeFromPrincipal,
      Flags.layerVersionAccess
    ]),
    Layer.provide(layerRouterMiddleware(options)),
    Layer.provide(layerVersionPolicy(options.file))
  )

/**
 * The HTTP server with the request path of DESIGN.md: shutdown tracking and correlation (id, trace, server span, log
 * annotations) in the `serve` position, so they also cover writing the response → the router's middleware
 * ({@link layerRouterMiddleware}) → the api. The platform's access log and listen log are off: the server logs the
 * address it listens on itself, as it always did.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerHttp = (options: Options) =>
  HttpRouter.serve(layerRoutes(options), {
    disableLogger: true,
    disableListenLog: true,
    middleware: (app) => ShutdownHttp.middleware(CorrelationHttp.middleware(app))
  }).pipe(CorrelationHttp.withServerSpan, HttpServer.withLogAddress)

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
    Layer.provideMerge(ShutdownHttp.layerServer({ port: config.port, host: config.host })),
    Layer.provide(layerMaxBodySize(config.maxBodyBytes))
  )
  // Services are acquired before the HTTP server and released after it has drained.
  return Layer.merge(layerPhase, layerStartupNotice).pipe(
    Layer.provideMerge(HttpLive),
    Layer.provideMerge(layerServices(options)),
    Layer.provide(layerSpanNames)
  )
}
