/**
 * The HTTP side of health: `GET /health/live`, `/health/ready` and `/health/startup` answering
 * `application/health+json` with `Cache-Control: no-store`; 200 for `pass` and `warn`, 503 for `fail` with the same
 * body. Offered as an `HttpApiGroup` (documented in OpenAPI, callable with `HttpApiClient`) and as plain `HttpRouter`
 * routes.
 *
 * @since 0.1.0
 */
import { HttpGroup } from "@ouroboros/kernel"
import type { Layer } from "effect"
import { Effect } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import * as HealthCheck from "./HealthCheck.js"

/**
 * The media type of health reports.
 *
 * @since 0.1.0
 * @category constants
 */
export const contentType = "application/health+json"

/**
 * The paths of the probes, e.g. for `HttpMiddleware.TracerDisabledWhen` (probes are not worth a trace each).
 *
 * @since 0.1.0
 * @category constants
 */
export const paths = ["/health/live", "/health/ready", "/health/startup"] as const

/**
 * The HTTP status of a report: 503 when it fails, 200 otherwise (`warn` is healthy).
 *
 * @since 0.1.0
 * @category utils
 */
export const statusCode = (report: HealthCheck.HealthReport): 200 | 503 => report.status === "fail" ? 503 : 200

/**
 * The response for a report.
 *
 * @since 0.1.0
 * @category utils
 */
export const toResponse = (report: HealthCheck.HealthReport): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.jsonUnsafe(report, {
    status: statusCode(report),
    contentType,
    headers: { "cache-control": "no-store" }
  })

const respond = (health: HealthCheck.HealthCheck["Service"], probe: HealthCheck.Probe) =>
  Effect.map(health.report(probe), toResponse)

/**
 * The handler of a probe.
 *
 * @since 0.1.0
 * @category handlers
 */
export const handle = (
  probe: HealthCheck.Probe
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, HealthCheck.HealthCheck> =>
  Effect.flatMap(HealthCheck.HealthCheck, (health) => respond(health, probe))

/**
 * A report answered with 200 (`pass` or `warn`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Healthy = HealthCheck.HealthReport.pipe(HttpApiSchema.asJson({ contentType }))

/**
 * A report answered with 503 (`fail`): the same body and media type.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Unhealthy = Healthy.pipe(HttpApiSchema.status(503))

// OpenAPI takes a response's description from its schema, and a schema with a description of its own becomes a second
// `HealthReport` component: the 503 answer keeps the one component and gets its description here.
const describeUnhealthy: OpenApi.Transform["Service"] = (operation) => ({
  ...operation,
  responses: { ...operation.responses, 503: { ...operation.responses?.[503], description: "The probe fails" } }
})

/**
 * The health endpoints: top level (no prefix, and `client.live()` rather than `client.health.live()`), so an api that
 * adds the group serves them at `/health/...`.
 *
 * @since 0.1.0
 * @category groups
 */
export class HealthGroup extends HttpApiGroup.make("health", { topLevel: true })
  .add(
    HttpApiEndpoint.get("live", "/health/live", { success: Healthy, error: Unhealthy })
      .annotate(OpenApi.Summary, "Liveness")
      .annotate(OpenApi.Description, "200 while the process can serve (draining included); 503 when a live check fails")
      .annotate(OpenApi.Transform, describeUnhealthy)
  )
  .add(
    HttpApiEndpoint.get("ready", "/health/ready", { success: Healthy, error: Unhealthy })
      .annotate(OpenApi.Summary, "Readiness")
      .annotate(
        OpenApi.Description,
        "503 while starting or draining (see `notes`) or when a critical dependency fails; " +
          "a failing non-critical one makes it `warn` (200)"
      )
      .annotate(OpenApi.Transform, describeUnhealthy)
  )
  .add(
    HttpApiEndpoint.get("startup", "/health/startup", { success: Healthy, error: Unhealthy })
      .annotate(OpenApi.Summary, "Startup")
      .annotate(OpenApi.Description, "503 until the service has started serving once")
      .annotate(OpenApi.Transform, describeUnhealthy)
  )
  .annotate(OpenApi.Description, "Health probes (draft-inadarei-api-health-check)")
{}

/**
 * A standalone api with only the health group.
 *
 * @since 0.1.0
 * @category apis
 */
export class Api extends HttpApi.make("health").add(HealthGroup) {}

/**
 * Implements the health group of any api that contains `HealthGroup` (add it with `.add(HealthHttp.HealthGroup)`).
 * Middleware the api adds to the group applies to the probes too and is required here.
 *
 * The handlers answer with a ready response (health+json whatever the status), so the api's own error handling does
 * not touch it, and a problem+json middleware leaves it alone.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { HealthHttp } from "@ouroboros/health"
 * import { HttpApi } from "effect/http-api"
 * class MyApi extends HttpApi.make("my-api").add(HealthHttp.HealthGroup) {}
 * const HealthLive = HealthHttp.layer(MyApi) // Layer<HttpApiGroup.Service<"my-api", "health">, never, HealthCheck>
 */
export const layer = HttpGroup.implement(HealthGroup, (handlers) =>
  // The service is taken when the layer is built, as `layerRouter` does: the probes need nothing per request.
  Effect.map(HealthCheck.HealthCheck, (health) =>
    handlers.handleAll({
      live: () => respond(health, "live"),
      ready: () => respond(health, "ready"),
      startup: () => respond(health, "startup")
    })))

/**
 * The health group of the standalone `Api`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerApi: Layer.Layer<HttpApiGroup.Service<"health", "health">, never, HealthCheck.HealthCheck> = layer(
  Api
)

const makeRoutes = <R>(
  answer: (probe: HealthCheck.Probe) => Effect.Effect<HttpServerResponse.HttpServerResponse, never, R>
): ReadonlyArray<HttpRouter.Route<never, R>> => [
  HttpRouter.route("GET", "/health/live", answer("live")),
  HttpRouter.route("GET", "/health/ready", answer("ready")),
  HttpRouter.route("GET", "/health/startup", answer("startup"))
]

/**
 * The probes as plain routes, for servers that do not use `HttpApi` or want the cheapest path
 * (`HttpRouter.addAll(HealthHttp.routes)`); they need the `HealthCheck` service when they run.
 *
 * @since 0.1.0
 * @category routers
 */
export const routes: ReadonlyArray<HttpRouter.Route<never, HealthCheck.HealthCheck>> = makeRoutes(handle)

/**
 * Adds the probes to the server's `HttpRouter` without going through an api (no OpenAPI entry, no api middleware): an
 * alternative to `layer` when the group is not in the api. The `HealthCheck` service is taken when the layer is built.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRouter: Layer.Layer<never, never, HttpRouter.HttpRouter | HealthCheck.HealthCheck> = HttpRouter
  .addAll(Effect.map(HealthCheck.HealthCheck, (health) => makeRoutes((probe) => respond(health, probe))))
