/**
 * API v1 of reasoning pipelines: `POST /api/v1/pipelines` runs draft → critique → improve (retrieval optional), each
 * step an event on the pipeline's branch; `GET /api/v1/pipelines/:id` reads it back.
 *
 * @since 0.1.0
 */
import { Problem } from "@ouroboros/kernel"
import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { Authentication } from "./Authentication.js"
import { Pipeline, PipelineId, StepKind } from "./Pipeline.js"
import { maxSteps, maxTopicLength, PipelineSyntaxError } from "./PipelineSyntax.js"

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
 * The pipelines group of API v1, behind tenant authentication.
 *
 * @since 0.1.0
 * @category groups
 */
export class PipelinesApi extends HttpApiGroup.make("pipelines")
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
  .middleware(Authentication)
  .prefix("/api/v1")
  .annotate(OpenApi.Title, "Pipelines (v1)")
{}
