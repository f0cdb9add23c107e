/**
 * The whole HTTP API of the bundled server: health probes, API v1, admin.
 *
 * @since 0.1.0
 */
import { BackupHttp } from "@ouroboros/backup"
import { CircuitBreakerHttp } from "@ouroboros/circuit-breaker"
import { HealthHttp } from "@ouroboros/health"
import { HttpApi, OpenApi } from "effect/http-api"
import { AdminAuthentication } from "./Authentication.js"
import { ProjectionsApi } from "./AdminApi.js"
import { DocumentsApi } from "./DocumentsApi.js"
import { PipelinesApi } from "./PipelinesApi.js"

/**
 * @since 0.1.0
 * @category apis
 */
export class Api extends HttpApi.make("ouroboros")
  .add(HealthHttp.HealthGroup)
  .add(DocumentsApi)
  .add(PipelinesApi)
  .add(ProjectionsApi)
  .add(CircuitBreakerHttp.Group.middleware(AdminAuthentication))
  .add(BackupHttp.Group.middleware(AdminAuthentication))
  .annotate(OpenApi.Title, "Ouroboros")
  .annotate(OpenApi.Description, "LLM retrieval pipeline service: ingest, search and ask, hardened for production")
{}
