/**
 * Reasoning pipelines, as the original Ouroboros ran them: a topic, then steps (retrieve, draft, critique, improve),
 * each run through the language model and recorded as an event on the pipeline's branch, the event stream
 * `tenant/<tenant>/pipeline/<id>`. The pipeline a client reads is the fold of that stream.
 *
 * When the language model fails, a step is answered by the local extractive model and marked `degraded`; when the
 * vector store fails, a retrieval step yields no passages and is marked `degraded` too. A pipeline that stops half-way
 * (a defect, an interruption) records `PipelineFailed`. Failures are domain errors (`PipelineError`), never HTTP ones.
 *
 * @since 0.1.0
 */
import { EventStore } from "@ouroboros/event-store"
import type { Principal, TenantId } from "@ouroboros/kernel"
import { Llm, Prompts } from "@ouroboros/llm"
import { Cause, Clock, Context, Effect, Exit, Layer, Option, Result, Schema } from "effect"
import { randomUUID } from "node:crypto"
import * as PipelineSyntax from "./PipelineSyntax.js"
import * as Resilient from "./Resilient.js"
import { Retrieval } from "./Retrieval.js"

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * A pipeline id: 1 to 64 of `[A-Za-z0-9_-]` (`run` makes UUIDs).
 *
 * @since 0.1.0
 * @category schemas
 */
export const PipelineId = Schema.String.check(
  Schema.isPattern(/^[A-Za-z0-9_-]{1,64}$/, { message: "a pipeline id is 1 to 64 of A-Z a-z 0-9 _ -" })
).annotate({ identifier: "PipelineId" })

/**
 * The kinds of steps.
 *
 * @since 0.1.0
 * @category schemas
 */
export const StepKind = Schema.Literals(["retrieve", "draft", "critique", "improve"]).annotate({
  identifier: "PipelineStepKind"
})

/**
 * @since 0.1.0
 * @category models
 */
export type StepKind = typeof StepKind.Type

/**
 * A passage a retrieval step found.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Source = Schema.Struct({
  documentId: Schema.String,
  chunk: Schema.Int,
  score: Schema.Number
}).annotate({ identifier: "PipelineSource" })

/**
 * A step that ran: what it produced, which model produced it and whether that was the fallback.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CompletedStep = Schema.Struct({
  index: Schema.Int,
  kind: StepKind,
  output: Schema.String,
  model: Schema.String,
  degraded: Schema.Boolean,
  durationMs: Schema.Number,
  sources: Schema.optional(Schema.Array(Source))
}).annotate({ identifier: "PipelineCompletedStep" })

/**
 * @since 0.1.0
 * @category models
 */
export type CompletedStep = typeof CompletedStep.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const Status = Schema.Literals(["running", "completed", "failed"]).annotate({ identifier: "PipelineStatus" })

/**
 * A pipeline as clients see it: the fold of its branch.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Pipeline = Schema.Struct({
  id: PipelineId,
  topic: Schema.String,
  status: Status,
  plan: Schema.Array(PipelineSyntax.Step),
  script: Schema.String,
  steps: Schema.Array(CompletedStep),
  answer: Schema.NullOr(Schema.String),
  degraded: Schema.Boolean,
  error: Schema.optional(Schema.String),
  version: Schema.Int,
  createdAt: Schema.String,
  completedAt: Schema.NullOr(Schema.String)
}).annotate({ identifier: "Pipeline" })

/**
 * @since 0.1.0
 * @category models
 */
export type Pipeline = typeof Pipeline.Type

// -----------------------------------------------------------------------------
// events
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category events
 */
export const PipelineStarted = Schema.Struct({
  topic: Schema.String,
  steps: Schema.Array(PipelineSyntax.Step),
  model: Schema.optional(Schema.String)
})

/**
 * The data of a `StepCompleted` event: a {@link CompletedStep}, under the event's name (an alias on purpose).
 *
 * @since 0.1.0
 * @category events
 */
export const StepCompleted = CompletedStep

/**
 * @since 0.1.0
 * @category events
 */
export const PipelineCompleted = Schema.Struct({ answer: Schema.String })

/**
 * @since 0.1.0
 * @category events
 */
export const PipelineFailed = Schema.Struct({ error: Schema.String })

/**
 * The event types of a pipeline branch.
 *
 * @since 0.1.0
 * @category events
 */
export const eventTypes = {
  started: "PipelineStarted",
  step: "StepCompleted",
  completed: "PipelineCompleted",
  failed: "PipelineFailed"
} as const

/**
 * The stream of a pipeline's branch.
 *
 * @since 0.1.0
 * @category utils
 */
export const streamOf = (tenant: TenantId.TenantId, id: string): string => `tenant/${tenant}/pipeline/${id}`

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/**
 * The tenant has no pipeline with this id (another tenant's pipeline is not found either).
 *
 * @since 0.1.0
 * @category errors
 */
export class PipelineNotFound extends Schema.TaggedError<PipelineNotFound>()(
  "PipelineNotFound",
  { id: Schema.String },
  { httpApiStatus: 404, description: "No such pipeline" }
) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `no pipeline ${this.id}`
  }
}

/**
 * The pipeline's branch moved on while the pipeline ran (another writer appended to it).
 *
 * @since 0.1.0
 * @category errors
 */
export class PipelineConflict extends Schema.TaggedError<PipelineConflict>()(
  "PipelineConflict",
  {
    id: Schema.String,
    /** What the event store found (expected and actual versions). */
    reason: Schema.String
  },
  { httpApiStatus: 409, description: "The pipeline's branch changed concurrently" }
) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `the pipeline's branch changed concurrently (${this.reason})`
  }
}

/**
 * A request that does not describe one runnable pipeline: both or neither of steps and script, a list of steps
 * without a topic, or steps in an order that cannot run (`detail` names the step: `steps[0]: …`). A script's own
 * errors are `PipelineSyntaxError`s, with their position.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidPipeline extends Schema.TaggedError<InvalidPipeline>()(
  "InvalidPipeline",
  { detail: Schema.String },
  { httpApiStatus: 400, description: "The pipeline request is not valid" }
) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return this.detail
  }
}

// -----------------------------------------------------------------------------
// service
// -----------------------------------------------------------------------------

/**
 * What to run: either a list of steps (with `topic`) or a script in the pipe syntax.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunRequest {
  readonly topic?: string | undefined
  readonly steps?: ReadonlyArray<StepKind> | undefined
  readonly script?: string | undefined
  readonly model?: string | undefined
}

/**
 * The errors of running a pipeline: a bad script (with its position), a bad request, a concurrent write to the
 * branch.
 *
 * @since 0.1.0
 * @category errors
 */
export type RunError = PipelineSyntax.PipelineSyntaxError | InvalidPipeline | PipelineConflict

/**
 * How a pipeline runs.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunOptions {
  /** Every step with the local extractive model (an operator switched the remote model off): steps are `degraded`. */
  readonly local?: boolean | undefined
}

/**
 * What a pipeline's steps cost: the language model's tokens as it counted them, or estimated (about four characters
 * a token) when a step had no count (the local model).
 *
 * @since 0.1.0
 * @category models
 */
export interface PipelineUsage {
  readonly llmTokens: number
  readonly estimated: boolean
}

/**
 * Every error of the `Pipelines` service.
 *
 * @since 0.1.0
 * @category errors
 */
export type PipelineError = RunError | PipelineNotFound

/**
 * @since 0.1.0
 * @category services
 */
export class Pipelines extends Context.Service<Pipelines, {
  /** Validates the request, runs every step and returns the completed pipeline. */
  readonly run: (principal: Principal.Principal, request: RunRequest) => Effect.Effect<Pipeline, RunError>
  /** `run`, with options, and what its steps cost (for metering and quotas). */
  readonly runWithUsage: (
    principal: Principal.Principal,
    request: RunRequest,
    options?: RunOptions
  ) => Effect.Effect<{ readonly pipeline: Pipeline; readonly usage: PipelineUsage }, RunError>
  /** Folds the pipeline's branch; another tenant's pipeline is not found. */
  readonly get: (principal: Principal.Principal, id: string) => Effect.Effect<Pipeline, PipelineNotFound>
}>()("@ouroboros/retrieval/Pipelines") {}

/**
 * Turns a request into a plan, or the error to answer with.
 *
 * @since 0.1.0
 * @category utils
 */
export const planOf = (
  request: RunRequest
): Result.Result<PipelineSyntax.Plan, PipelineSyntax.PipelineSyntaxError | InvalidPipeline> => {
  if ((request.script === undefined) === (request.steps === undefined)) {
    return Result.fail(new InvalidPipeline({ detail: "give exactly one of steps and script" }))
  }
  if (request.script !== undefined) return PipelineSyntax.compile(request.script, { topic: request.topic })
  const topic = request.topic
  if (topic === undefined || topic.trim().length === 0) {
    return Result.fail(new InvalidPipeline({ detail: "a list of steps needs a non-empty topic" }))
  }
  const steps = (request.steps ?? []).map((kind): PipelineSyntax.Step =>
    kind === "retrieve" ? { kind, limit: PipelineSyntax.defaultRetrievalLimit } : { kind }
  )
  return Result.mapBoth(PipelineSyntax.validateSteps(steps), {
    onFailure: (error) => new InvalidPipeline({ detail: `steps[${error.index}]: ${error.detail}` }),
    onSuccess: (steps) => ({ topic, steps })
  })
}

const formatContext = (passages: ReadonlyArray<{ readonly documentId: string; readonly text: string }>) =>
  passages.map((p, i) => `[${i + 1}] (document ${p.documentId}) ${p.text.trim()}`).join("\n\n")

/**
 * Folds the events of a branch into a pipeline; `undefined` when the stream has no `PipelineStarted`.
 *
 * @since 0.1.0
 * @category utils
 */
export const fold = (id: string, events: ReadonlyArray<EventStore.RecordedEvent>): Pipeline | undefined => {
  let pipeline: Pipeline | undefined
  for (const event of events) {
    if (event.type === eventTypes.started) {
      const data = Schema.decodeUnknownSync(PipelineStarted)(event.data)
      pipeline = {
        id,
        topic: data.topic,
        status: "running",
        plan: data.steps,
        script: PipelineSyntax.printPlan({ topic: data.topic, steps: data.steps }),
        steps: [],
        answer: null,
        degraded: false,
        version: event.version,
        createdAt: event.recordedAt.toISOString(),
        completedAt: null
      }
      continue
    }
    if (pipeline === undefined) continue
    if (event.type === eventTypes.step) {
      const step = Schema.decodeUnknownSync(StepCompleted)(event.data)
      pipeline = {
        ...pipeline,
        steps: [...pipeline.steps, step],
        degraded: pipeline.degraded || step.degraded,
        version: event.version
      }
    } else if (event.type === eventTypes.completed) {
      const data = Schema.decodeUnknownSync(PipelineCompleted)(event.data)
      pipeline = {
        ...pipeline,
        status: "completed",
        answer: data.answer,
        version: event.version,
        completedAt: event.recordedAt.toISOString()
      }
    } else if (event.type === eventTypes.failed) {
      const data = Schema.decodeUnknownSync(PipelineFailed)(event.data)
      pipeline = {
        ...pipeline,
        status: "failed",
        error: data.error,
        version: event.version,
        completedAt: event.recordedAt.toISOString()
      }
    }
  }
  return pipeline
}

/**
 * Builds the service. Language model calls run through `Resilient.ModelGuard` when the context gives one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.gen(function*() {
  const events = yield* EventStore.EventStore
  const llm = yield* Llm.Llm
  const retrieval = yield* Retrieval
  const modelGuard = yield* Resilient.ModelGuard
  const local = Llm.makeLocal()

  const conflict = (id: string) => (error: EventStore.WrongExpectedVersion) =>
    Effect.fail(new PipelineConflict({ id, reason: error.detail }))

  const read = (tenant: TenantId.TenantId, id: string) =>
    Effect.map(events.readStream(streamOf(tenant, id)), (recorded) => fold(id, recorded))

  const remote = (prompt: ReadonlyArray<Llm.Message>, model: string | undefined) =>
    Resilient.callModel(
      modelGuard,
      llm.id,
      "generation",
      llm.generate(prompt, model !== undefined ? { model } : undefined)
    ).pipe(
      Effect.catch((error) =>
        Effect.logWarning("the language model failed; the step falls back to the local model").pipe(
          Effect.annotateLogs({ error: error.message }),
          Effect.andThen(local.generate(prompt)),
          Effect.map((response) => ({ ...response, degraded: true })),
          Effect.orDie
        )
      )
    )

  const runWithUsage: Pipelines["Service"]["runWithUsage"] = Effect.fn("Pipelines.run")(
    function*(principal, request, options) {
      const plan = yield* Effect.fromResult(planOf(request))
      let llmTokens = 0
      let estimated = false
      const generate = (prompt: ReadonlyArray<Llm.Message>, model: string | undefined) =>
        Effect.tap(
          options?.local === true ? Effect.orDie(local.generate(prompt)) : remote(prompt, model),
          (response) =>
            Effect.sync(() => {
              if (response.usage !== undefined) {
                llmTokens += response.usage.promptTokens + response.usage.completionTokens
              } else {
                estimated = true
                llmTokens += Math.ceil(
                  (prompt.reduce((n, message) => n + message.content.length, 0) + response.content.length) / 4
                )
              }
            })
        )
      const id = randomUUID()
      const stream = streamOf(principal.tenantId, id)
      const metadata = { tenantId: principal.tenantId, subject: principal.subject, pipelineId: id }
      yield* Effect.annotateCurrentSpan({ "pipeline.id": id, "pipeline.steps": plan.steps.length })

      let version = (yield* events.append(stream, [{
        type: eventTypes.started,
        data: PipelineStarted.make({
          topic: plan.topic,
          steps: plan.steps,
          ...(request.model !== undefined ? { model: request.model } : {})
        }),
        metadata
      }], { expectedVersion: "no-stream" }).pipe(
        Effect.catchTag("WrongExpectedVersion", conflict(id))
      )).version

      const record = (type: string, data: unknown) =>
        events.append(stream, [{ type, data, metadata }], { expectedVersion: version }).pipe(
          Effect.map((result) => {
            version = result.version
          }),
          Effect.catchTag("WrongExpectedVersion", conflict(id))
        )

      const body = Effect.gen(function*() {
        let context: Array<{ readonly documentId: string; readonly chunk: number; readonly text: string }> = []
        let draft: string | undefined
        let critique: string | undefined
        for (let index = 0; index < plan.steps.length; index++) {
          const step = plan.steps[index]!
          const started = yield* Clock.currentTimeMillis
          let completed: Omit<CompletedStep, "index" | "durationMs">
          if (step.kind === "retrieve") {
            const found = yield* retrieval.search(principal, { query: plan.topic, limit: step.limit }).pipe(
              Effect.catchTag("InvalidFilter", Effect.die),
              Effect.result
            )
            const hits = Result.getOrElse(found, () => [])
            const seen = new Set(context.map((p) => `${p.documentId}#${p.chunk}`))
            context = [...context, ...hits.filter((hit) => !seen.has(`${hit.documentId}#${hit.chunk}`))]
            completed = {
              kind: "retrieve",
              output: Result.isFailure(found)
                ? `retrieval is unavailable: ${found.failure.detail}`
                : formatContext(hits),
              model: "retrieval",
              degraded: Result.isFailure(found),
              sources: hits.map((hit) => ({ documentId: hit.documentId, chunk: hit.chunk, score: hit.score }))
            }
          } else {
            const contextText = formatContext(context)
            const prompt = step.kind === "draft"
              ? Prompts.draft(plan.topic, contextText)
              : step.kind === "critique"
              ? Prompts.critique(plan.topic, draft ?? "", contextText)
              : Prompts.improve(plan.topic, draft ?? "", critique ?? "", contextText)
            const response = yield* generate(prompt, request.model)
            if (step.kind === "critique") critique = response.content
            else {
              draft = response.content
              critique = undefined
            }
            completed = {
              kind: step.kind,
              output: response.content,
              model: response.model,
              degraded: response.degraded
            }
          }
          const durationMs = (yield* Clock.currentTimeMillis) - started
          yield* record(eventTypes.step, StepCompleted.make({ index, ...completed, durationMs }))
        }
        // Validation guarantees a draft; the latest version of it is the answer.
        yield* record(eventTypes.completed, PipelineCompleted.make({ answer: draft ?? "" }))
      })

      yield* body.pipe(
        Effect.onExit((exit) =>
          Exit.isSuccess(exit) ? Effect.void : record(
            eventTypes.failed,
            PipelineFailed.make({
              error: Cause.hasInterruptsOnly(exit.cause)
                ? "the pipeline was interrupted"
                : Option.match(Cause.findErrorOption(exit.cause), {
                  onNone: () => "the pipeline failed",
                  onSome: (error) => error.message
                })
            })
          ).pipe(Effect.ignore)
        )
      )

      const pipeline = yield* read(principal.tenantId, id)
      return {
        pipeline: pipeline ?? (yield* Effect.die(new Error(`the pipeline ${id} vanished`))),
        usage: { llmTokens, estimated }
      }
    },
    // The pipeline's branch is the tenant's: on SQL every read and write runs under row-level security.
    (effect, principal) => EventStore.forTenant(effect, principal.tenantId),
    Effect.annotateLogs({ service: "pipelines" })
  )

  const run: Pipelines["Service"]["run"] = (principal, request) =>
    Effect.map(runWithUsage(principal, request), (ran) => ran.pipeline)

  const get: Pipelines["Service"]["get"] = Effect.fn("Pipelines.get")(function*(principal, id) {
    const notFound = new PipelineNotFound({ id })
    if (!Schema.is(PipelineId)(id)) return yield* notFound
    const pipeline = yield* read(principal.tenantId, id)
    return pipeline === undefined ? yield* notFound : pipeline
  }, (effect, principal) => EventStore.forTenant(effect, principal.tenantId))

  return Pipelines.of({ run, runWithUsage, get })
})

/**
 * The service over the event store, the language model and retrieval.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Pipelines, never, EventStore.EventStore | Llm.Llm | Retrieval> = Layer.effect(
  Pipelines,
  make
)
