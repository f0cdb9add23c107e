/**
 * The composition of the bundled server: every feature is a Layer, wired here in the order the request flows
 * through them and the order resources must outlive each other (SQL and stores are acquired before the HTTP server
 * and released after it).
 *
 * @since 0.1.0
 */
import {
  FetchHttpClient,
  FileSystem,
  HttpApiBuilder,
  HttpApiSwagger,
  HttpIncomingMessage,
  HttpServer,
  HttpServerRequest
} from "@effect/platform"
import type { HttpApp } from "@effect/platform"
import { Checkpoints, EventStore } from "@ouroboros/event-store"
import { Backup, BackupHttp, BackupSource, Scheduler } from "@ouroboros/backup"
import { CircuitBreakerHttp } from "@ouroboros/circuit-breaker"
import {
  HealthCheck,
  HealthCheckOllama,
  HealthCheckPostgres,
  HealthCheckQdrant,
  HealthHttp
} from "@ouroboros/health"
import { CorrelationHttp } from "@ouroboros/correlation"
import { ProblemHttp } from "@ouroboros/kernel"
import { Shutdown, ShutdownHttp } from "@ouroboros/shutdown"
import { Database } from "@ouroboros/sql"
import { Config, Effect, Layer, Option } from "effect"
import * as Path from "node:path"
import { Api } from "./Api.js"
import * as Authentication from "./Authentication.js"
import * as Handlers from "./Handlers.js"
import * as Limits from "./Limits.js"
import * as Metrics from "./Metrics.js"
import * as Pipeline from "./Pipeline.js"
import * as PipelinesHandlers from "./PipelinesHandlers.js"
import * as Models from "./Models.js"
import * as Resilient from "./Resilient.js"
import * as Retrieval from "./Retrieval.js"
import type { ConfigFile, ServerConfig } from "./ServerConfig.js"
import * as Vectors from "./Vectors.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly config: ServerConfig
  readonly file: ConfigFile
  readonly keys: Authentication.KeyRingOptions
}

/**
 * The limit on request bodies: a declared length over it is refused before the body is read (413, and the
 * connection is closed); the body reader stops at it for chunked bodies (see {@link layerMaxBodySize}).
 *
 * @since 0.1.0
 * @category middleware
 */
export const bodyLimit = (maxBytes: number) => <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> => {
  // One response for every refusal: it is immutable, and the same as the one for a chunked body over the limit.
  const tooLarge = Effect.succeed(ProblemHttp.payloadTooLarge(maxBytes))
  return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    const declared = request.headers["content-length"]
    return declared !== undefined && Number(declared) > maxBytes ? tooLarge : app
  })
}

/**
 * The body reader's limit for every request, set once for the server rather than per request. A chunked body over
 * it fails the reader; `ProblemHttp.middleware` answers that with the 413 of {@link bodyLimit}, and the server of
 * `ShutdownHttp.layerServer` keeps the connection open until that answer is sent.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMaxBodySize = (maxBytes: number) =>
  Layer.succeed(HttpIncomingMessage.MaxBodySize, Option.some(FileSystem.Size(maxBytes)))

/**
 * Health checks of the remote dependencies that are configured (Qdrant is critical, Ollama is not: the local models
 * stand in for it).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRemoteChecks = Layer.unwrapEffect(
  Effect.gen(function*() {
    const qdrant = yield* Vectors.config
    const ollama = yield* Config.option(Config.string("OLLAMA_URL"))
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
  const dedicatedTenants = new Set(file.tenants.filter((t) => t.tier === "enterprise").map((t) => t.id))
  const RetrievalLive = Retrieval.layer({ collection: "documents", dedicatedTenants }).pipe(
    Layer.provideMerge(Layer.mergeAll(EventsLive, Vectors.layer(Path.resolve(config.dataDir, "vectors")), Models.layer))
  )
  // Backups of the event store, the vectors and registered tables; a restore rebuilds the vector projection.
  const BackupLive = Backup.layerConfig({ dataDir: config.dataDir }).pipe(
    Layer.provideMerge(BackupSource.layerRegistry),
    Layer.provide(Layer.effect(
      Backup.Projections,
      Effect.map(Retrieval.Retrieval, (retrieval) => ({ rebuild: Effect.asVoid(retrieval.rebuild) }))
    ))
  )
  // Scheduled backups run on one replica at a time: a PostgreSQL advisory lock when the database is shared.
  const SchedulerLive = Layer.unwrapEffect(
    Effect.gen(function*() {
      const settings = yield* Config.nested(Backup.config, "BACKUP")
      const database = yield* Database.config
      return Scheduler.layerConfig(settings).pipe(
        Layer.provide(Database.isEmbedded(database) ? Scheduler.layerLocalLock : Scheduler.layerAdvisoryLock)
      )
    })
  )
  const HealthLive = HealthCheck.layerConfig({ serviceId: "ouroboros", description: "Ouroboros retrieval service" })
  const Checks = Layer.mergeAll(
    HealthCheckPostgres.layer(),
    Resilient.layerHealth,
    Resilient.layerTransitionSpans,
    Limits.layerHealth,
    layerRemoteChecks
  )
  return Layer.mergeAll(Checks, SchedulerLive, Pipeline.layer).pipe(
    Layer.provideMerge(BackupLive),
    Layer.provideMerge(RetrievalLive),
    Layer.provideMerge(Limits.layer(file)),
    Layer.provideMerge(Resilient.layerBreakers),
    Layer.provideMerge(HealthLive),
    Layer.provide(FetchHttpClient.layer)
  )
}

/**
 * The HTTP app with the request path of DESIGN.md around the api: shutdown tracking (in the `serve` position, so it
 * also covers writing the response) → correlation (id, trace, server span, log annotations) → problem+json for
 * every error → load shedding → rate limits → concurrency per key → body limit → the api (its routes, security
 * middleware, handlers).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerHttp = (options: Options) =>
  Effect.gen(function*() {
    const app = yield* HttpApiBuilder.httpApp
    const limits = yield* Limits.middleware(options.file)
    return HttpServer.serve(
      CorrelationHttp.middleware(ProblemHttp.middleware(limits(bodyLimit(options.config.maxBodyBytes)(app)))),
      ShutdownHttp.middleware
    )
  }).pipe(
    Layer.unwrapEffect,
    Layer.provide([HttpApiBuilder.Router.Live, HttpApiBuilder.Middleware.layer]),
    CorrelationHttp.withServerSpan
  )

/**
 * Readiness follows the lifecycle: serving once the server listens, draining as soon as a shutdown signal arrives.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerPhase = Layer.scopedDiscard(
  Effect.gen(function*() {
    const shutdown = yield* Shutdown.Shutdown
    const health = yield* HealthCheck.HealthCheck
    yield* shutdown.onDrain(health.setPhase("draining"))
    yield* health.setPhase("serving")
  })
)

/**
 * The whole server. It needs the `Shutdown` coordinator (see `Program`), which owns signals and the drain.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options) => {
  const { config } = options
  const ApiLive = HttpApiBuilder.api(Api).pipe(
    Layer.provide([
      HealthHttp.layer(Api),
      CircuitBreakerHttp.layer(Api),
      BackupHttp.layer(Api),
      PipelinesHandlers.make(Api),
      Handlers.layer
    ]),
    Layer.provide([Authentication.layerAuthentication, Authentication.layerAdminAuthentication]),
    Layer.provide(Authentication.layerKeyRing(options.keys))
  )
  const HttpLive = layerHttp(options).pipe(
    Layer.provide(HttpApiSwagger.layer({ path: "/docs" })),
    Layer.provide(Metrics.layer),
    Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
    Layer.provide(ApiLive),
    Layer.provide(Authentication.layerKeyRing(options.keys)),
    HttpServer.withLogAddress,
    Layer.provideMerge(ShutdownHttp.layerServer({ port: config.port, host: config.host })),
    Layer.provide(layerMaxBodySize(config.maxBodyBytes))
  )
  // Services are acquired before the HTTP server and released after it has drained.
  return layerPhase.pipe(Layer.provideMerge(HttpLive), Layer.provideMerge(layerServices(options)))
}
