/**
 * Reasoning pipelines over HTTP: `POST /pipelines` runs draft → critique → improve (retrieval optional), each step an
 * event on the pipeline's branch; `GET /pipelines/:id` reads it back.
 *
 * Like `RetrievalHttp`'s groups, the group carries no authentication and no version prefix (the server adds
 * `.middleware(Authentication)` and `.prefix("/api/v1")`); handlers read kernel's `Principal.CurrentPrincipal`, and
 * domain errors become problems through `RetrievalHttp.toProblem`.
 *
 * @since 0.1.0
 */
import { HttpGroup, Principal, Problem } from "@ouroboros/kernel"
import { Effect, Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { Pipeline, PipelineId, Pipelines, StepKind } from "./Pipeline.js"
import { maxSteps, maxTopicLength, PipelineSyntaxError } from "./PipelineSyntax.js"
import { toProblems } from "./RetrievalHttp.js"

/**
 * The body of `POST /pipelines`: exactly one of `steps` (with `topic`) and `script` (the pipe syntax, whose topic is
 * its leading `SetTopic('…')` or the `topic` field).
 *
 * @since 0.1.0
 * @category schemas
 */
export const RunPipelineRequest = Schema.Struct({
  topic: Schema.optional(
    Schema.String.check(
      Schema.makeFilter((s: string) => s.trim().length > 0 || "topic must not be empty"),
      Schema.isMaxLength(maxTopicLength)
    )
  ),
  steps: Schema.optional(Schema.Array(StepKind).check(Schema.isMinLength(1), Schema.isMaxLength(maxSteps))),
  script: Schema.optional(
    Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(16_000)).annotate({
      description: "e.g. SetTopic('zebras') | UseRetrieval(4) | UseDraft | UseCritique | UseImprove"
    })
  ),
  model: Schema.optional(Schema.String.check(Schema.isPattern(/^[A-Za-z0-9._:/-]{1,128}$/)))
}).check(Schema.makeFilter((request) =>
  (request.steps === undefined) !== (request.script === undefined) ||
  { path: ["script"], issue: "give exactly one of steps and script" }
)).annotate({ identifier: "RunPipelineRequest" })

/**
 * @since 0.1.0
 * @category models
 */
export type RunPipelineRequest = typeof RunPipelineRequest.Type

/**
 * The pipelines group: `POST /pipelines` and `GET /pipelines/:id`, in the caller's tenant.
 *
 * @since 0.1.0
 * @category groups
 */
export class PipelinesGroup extends HttpApiGroup.make("pipelines")
  .add(
    HttpApiEndpoint.post("run", "/pipelines", {
      payload: RunPipelineRequest,
      success: Pipeline.pipe(HttpApiSchema.status(201)),
      error: [PipelineSyntaxError, Problem.BadRequest, Problem.Conflict]
    })
      .annotate(OpenApi.Summary, "Run a reasoning pipeline (draft, critique, improve; retrieval optional)")
      .annotate(
        OpenApi.Description,
        "Each step runs through the language model (the local extractive model when it fails: the step is then " +
          "`degraded`) and is recorded as an event on the pipeline's branch. A script that does not parse is a 400 " +
          "naming the line and column of the offending token."
      ),
    HttpApiEndpoint.get("get", "/pipelines/:id", {
      params: { id: PipelineId },
      success: Pipeline,
      error: Problem.NotFound
    })
      .annotate(OpenApi.Summary, "Read a pipeline: its steps and final answer")
  )
  .annotate(OpenApi.Title, "Pipelines")
{}

/**
 * Implements {@link PipelinesGroup} for any api that contains it, over the `Pipelines` service. The caller is the
 * request's `Principal.CurrentPrincipal`: the api must add a middleware to the group that provides it.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { Principal } from "@ouroboros/kernel"
 * import { PipelinesHttp } from "@ouroboros/retrieval"
 * import { HttpApi, HttpApiMiddleware } from "effect/http-api"
 *
 * // the server's authentication: a middleware that provides the caller
 * class Authentication extends HttpApiMiddleware.Service<Authentication, {
 *   provides: Principal.CurrentPrincipal
 * }>()("app/Authentication") {}
 * class Api extends HttpApi.make("api").add(PipelinesHttp.PipelinesGroup.middleware(Authentication)) {}
 * const PipelinesLive = PipelinesHttp.layer(Api) // needs Pipelines and Authentication
 */
export const layer = HttpGroup.implement(PipelinesGroup, (handlers) =>
  Pipelines.useSync((pipelines) =>
    handlers
      .handle("run", ({ payload }) =>
        Effect.flatMap(Principal.CurrentPrincipal, (principal) => toProblems(pipelines.run(principal, payload))))
      .handle("get", ({ params }) =>
        Effect.flatMap(Principal.CurrentPrincipal, (principal) =>
          toProblems(pipelines.get(principal, params.id))))
  ))
