/**
 * The whole HTTP API of the bundled server: health probes, API v1, admin.
 *
 * The groups of the packages carry no authentication: the server adds its own middleware to each (`Authentication`
 * for tenant endpoints, `AdminAuthentication` for `/admin`), and mounts retrieval's groups under `/api/v1`.
 *
 * @since 0.1.0
 */
import { BackupHttp } from "@ouroboros/backup"
import { CircuitBreakerHttp } from "@ouroboros/circuit-breaker"
import { HealthHttp } from "@ouroboros/health"
import { PipelinesHttp, RetrievalHttp } from "@ouroboros/retrieval"
import { HttpApi, OpenApi } from "effect/http-api"
import { AdminAuthentication, Authentication } from "./Authentication.js"

/**
 * @since 0.1.0
 * @category apis
 */
export class Api extends HttpApi.make("ouroboros")
  .add(HealthHttp.HealthGroup)
  .add(
    RetrievalHttp.DocumentsGroup.middleware(Authentication).prefix("/api/v1").annotate(OpenApi.Title, "Documents (v1)")
  )
  .add(
    PipelinesHttp.PipelinesGroup.middleware(Authentication).prefix("/api/v1").annotate(OpenApi.Title, "Pipelines (v1)")
  )
  .add(RetrievalHttp.ProjectionsGroup.middleware(AdminAuthentication))
  .add(CircuitBreakerHttp.Group.middleware(AdminAuthentication))
  .add(BackupHttp.Group.middleware(AdminAuthentication))
  .annotate(OpenApi.Title, "Ouroboros")
  .annotate(OpenApi.Description, "LLM retrieval pipeline service: ingest, search and ask, hardened for production")
{}
