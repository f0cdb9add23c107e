/**
 * The HTTP side of health: `GET /health/live`, `/health/ready` and `/health/startup` answering
 * `application/health+json` with `Cache-Control: no-store`; 200 for `pass` and `warn`, 503 for `fail` with the same
 * body. Offered as an `HttpApiGroup` (documented in OpenAPI, callable with `HttpApiClient`) and as a plain
 * `HttpRouter`.
 *
 * @since 0.1.0
 */
import {
  HttpApi,
  HttpApiBuilder,
  HttpApiEndpoint,
  HttpApiGroup,
  HttpApiSchema,
  HttpRouter,
  HttpServerResponse,
  OpenApi
} from "@effect/platform"
import type { Layer } from "effect"
import { Effect } from "effect"
import * as HealthCheck from "./HealthCheck.js"

/**
 * The media type of health reports.
 *
 * @since 0.1.0
 * @category constants
 */
export const contentType = "application/health+json"

/**
 * The paths of the probes, e.g. for `HttpMiddleware.withTracerDisabledForUrls` (probes are not worth a trace each).
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
  HttpServerResponse.unsafeJson(report, {
    status: statusCode(report),
    contentType,
    headers: { "cache-control": "no-store" }
  })

/**
 * The handler of a probe.
 *
 * @since 0.1.0
 * @category handlers
 */
export const handle = (
  probe: HealthCheck.Probe
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, HealthCheck.HealthCheck> =>
  Effect.map(HealthCheck.report(probe), toResponse)

/**
 * A report answered with 200 (`pass` or `warn`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Healthy = HealthCheck.HealthReport.pipe(
  HttpApiSchema.withEncoding({ kind: "Json", contentType })
)

/**
 * A report answered with 503 (`fail`): the same body and media type.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Unhealthy = HealthCheck.HealthReport.annotations(
  HttpApiSchema.annotations({ status: 503, description: "The probe fails" })
).pipe(HttpApiSchema.withEncoding({ kind: "Json", contentType }))

/**
 * The health endpoints: top level (no prefix), so an api that adds the group serves them at `/health/...`.
 *
 * @since 0.1.0
 * @category groups
 */
export class HealthGroup extends HttpApiGroup.make("health", { topLevel: true })
  .add(
    HttpApiEndpoint.get("live", "/health/live")
      .addSuccess(Healthy)
      .addError(Unhealthy)
      .annotate(OpenApi.Summary, "Liveness")
      .annotate(OpenApi.Description, "200 while the process can serve (draining included); 503 when a live check fails")
  )
  .add(
    HttpApiEndpoint.get("ready", "/health/ready")
      .addSuccess(Healthy)
      .addError(Unhealthy)
      .annotate(OpenApi.Summary, "Readiness")
      .annotate(
        OpenApi.Description,
        "503 while starting or draining (see `notes`) or when a critical dependency fails; " +
          "a failing non-critical one makes it `warn` (200)"
      )
  )
  .add(
    HttpApiEndpoint.get("startup", "/health/startup")
      .addSuccess(Healthy)
      .addError(Unhealthy)
      .annotate(OpenApi.Summary, "Startup")
      .annotate(OpenApi.Description, "503 until the service has started serving once")
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
 * Middleware declared on the api before the group was added applies to the probes too and is required here.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { HttpApi } from "@effect/platform"
 * import { HealthHttp } from "@ouroboros/health"
 * class MyApi extends HttpApi.make("my-api").add(HealthHttp.HealthGroup) {}
 * const HealthLive = HealthHttp.layer(MyApi) // Layer<ApiGroup<"my-api", "health">, never, HealthCheck>
 */
export const layer = <ApiId extends string, Groups extends HttpApiGroup.HttpApiGroup.Any, E, R>(
  api: HttpApi.HttpApi<ApiId, Groups, E, R> & ("health" extends HttpApiGroup.HttpApiGroup.Name<Groups> ? unknown
    : { readonly "the api must contain HealthHttp.HealthGroup": never })
): Layer.Layer<
  HttpApiGroup.ApiGroup<ApiId, "health">,
  never,
  HealthCheck.HealthCheck | HttpApiGroup.HttpApiGroup.MiddlewareWithName<Groups, "health">
> =>
  // The handlers answer with a ready response, so the api's own errors and middleware do not change their types.
  HttpApiBuilder.group(
    api as unknown as HttpApi.HttpApi<ApiId, typeof HealthGroup>,
    "health",
    (handlers) =>
      handlers
        .handle("live", () => handle("live"))
        .handle("ready", () => handle("ready"))
        .handle("startup", () => handle("startup"))
  )

/**
 * The health group of the standalone `Api`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerApi: Layer.Layer<HttpApiGroup.ApiGroup<"health", "health">, never, HealthCheck.HealthCheck> =
  layer(Api)

/**
 * The probes as a plain router, for servers that do not use `HttpApi` or want the cheapest path.
 *
 * @since 0.1.0
 * @category routers
 */
export const router: HttpRouter.HttpRouter<never, HealthCheck.HealthCheck> = HttpRouter.empty.pipe(
  HttpRouter.get("/health/live", handle("live")),
  HttpRouter.get("/health/ready", handle("ready")),
  HttpRouter.get("/health/startup", handle("startup"))
)

/**
 * Adds the probes to the router of `HttpApiBuilder` without going through the api (no OpenAPI entry, no api
 * middleware): an alternative to `layer` when the group is not in the api.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRouter: Layer.Layer<never, never, HealthCheck.HealthCheck> = HttpApiBuilder.Router.use((routes) =>
  Effect.flatMap(HealthCheck.HealthCheck, (health) =>
    routes.concat(HttpRouter.provideService(router, HealthCheck.HealthCheck, health)))
)
