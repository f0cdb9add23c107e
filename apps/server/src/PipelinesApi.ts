/**
 * API v1 of reasoning pipelines: `POST /api/v1/pipelines` runs draft → critique → improve (retrieval optional), each
 * step an event on the pipeline's branch; `GET /api/v1/pipelines/:id` reads it back.
 *
 * @since 0.1.0
 */
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Problem } from "@ouroboros/kernel"
import { Schema } from "effect"
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
    Schema.String.pipe(
      Schema.filter((s) => s.trim().length > 0 || "topic must not be empty"),
      Schema.maxLength(maxTopicLength)
    )
  ),
  steps: Schema.optional(Schema.Array(StepKind).pipe(Schema.minItems(1), Schema.maxItems(maxSteps))),
  script: Schema.optional(
    Schema.String.pipe(Schema.minLength(1), Schema.maxLength(16_000)).annotations({
      description: "e.g. SetTopic('zebras') | UseRetrieval(4) | UseDraft | UseCritique | UseImprove"
    })
  ),
  model: Schema.optional(Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9._:/-]{1,128}$/)))
}).pipe(
  Schema.filter((request) =>
    (request.steps === undefined) !== (request.script === undefined) ||
    { path: ["script"], message: "give exactly one of steps and script" }
  )
).annotations({ identifier: "RunPipelineRequest" })

/**
 * @since 0.1.0
 * @category models
 */
export type RunPipelineRequest = typeof RunPipelineRequest.Type

const id = HttpApiSchema.param("id", PipelineId)

/**
 * The pipelines group of API v1, behind tenant authentication.
 *
 * @since 0.1.0
 * @category groups
 */
export class PipelinesApi extends HttpApiGroup.make("pipelines")
  .add(
    HttpApiEndpoint.post("run", "/pipelines")
      .setPayload(RunPipelineRequest)
      .addSuccess(Pipeline, { status: 201 })
      .addError(PipelineSyntaxError)
      .addError(Problem.BadRequest)
      .addError(Problem.Conflict)
      .annotate(OpenApi.Summary, "Run a reasoning pipeline (draft, critique, improve; retrieval optional)")
      .annotate(
        OpenApi.Description,
        "Each step runs through the language model (the local extractive model when it fails: the step is then " +
          "`degraded`) and is recorded as an event on the pipeline's branch. A script that does not parse is a 400 " +
          "naming the line and column of the offending token."
      )
  )
  .add(
    HttpApiEndpoint.get("get")`/pipelines/${id}`
      .addSuccess(Pipeline)
      .addError(Problem.NotFound)
      .annotate(OpenApi.Summary, "Read a pipeline: its steps and final answer")
  )
  .middleware(Authentication)
  .prefix("/api/v1")
  .annotate(OpenApi.Title, "Pipelines (v1)")
{}
