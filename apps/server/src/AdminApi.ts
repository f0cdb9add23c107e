/**
 * Operator endpoints of the retrieval pipeline, behind the admin key.
 *
 * @since 0.1.0
 */
import { Problem } from "@ouroboros/kernel"
import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { AdminAuthentication } from "./Authentication.js"

/**
 * @since 0.1.0
 * @category schemas
 */
export const ProjectionStatus = Schema.Struct({
  appliedSequence: Schema.Int,
  lastSequence: Schema.Int
}).annotate({ identifier: "ProjectionStatus" })

/**
 * @since 0.1.0
 * @category groups
 */
export class ProjectionsApi extends HttpApiGroup.make("projections")
  .add(
    HttpApiEndpoint.get("status", "/projections/vectors", { success: ProjectionStatus })
      .annotate(OpenApi.Summary, "How far the vector projection has applied the event store"),
    HttpApiEndpoint.post("rebuild", "/projections/vectors/rebuild", {
      success: ProjectionStatus,
      error: Problem.ServiceUnavailable
    }).annotate(OpenApi.Summary, "Drop the vectors and rebuild them from the events alone")
  )
  .middleware(AdminAuthentication)
  .prefix("/admin")
  .annotate(OpenApi.Title, "Admin: projections")
{}
