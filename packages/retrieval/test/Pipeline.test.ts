import { assert, describe, it } from "@effect/vitest"
import { EventStore } from "@ouroboros/event-store"
import { Principal, TenantId } from "@ouroboros/kernel"
import { Llm, LlmError, Prompts } from "@ouroboros/llm"
import { Deferred, Effect, Exit, Fiber, Layer, Ref, References, Stream } from "effect"
import * as Pipeline from "../src/Pipeline.js"
import { Retrieval } from "../src/Retrieval.js"
import { VectorStoreUnavailable } from "../src/RetrievalError.js"

const principal = (tenant: string) =>
  new Principal.Principal({
    tenantId: TenantId.make(tenant),
    subject: `key:${tenant}`,
    roles: ["writer"],
    method: "api-key"
  })

const tenantA = principal("tenant-a")
const tenantB = principal("tenant-b")

const corpus = [
  "Zebras are African equines with distinctive black-and-white striped coats.",
  "The stripes of zebras may deter biting flies such as horseflies and tsetse flies.",
  "Zebras live in herds and communicate with barks and brays."
]

/** Whether the stub vector store is down; flipped by the tests. */
const RetrievalDown = Ref.makeUnsafe(false)

const unused = () => Effect.die(new Error("not used by pipelines"))

/** A retrieval that finds the corpus, or fails with `VectorStoreUnavailable` while `RetrievalDown` is set. */
const StubRetrieval = Layer.succeed(
  Retrieval,
  Retrieval.of({
    ingest: unused,
    get: unused,
    remove: unused,
    ask: unused,
    answer: unused,
    list: unused,
    purgeTenant: unused,
    reindexTenant: unused,
    rebuild: unused(),
    resume: unused,
    applied: Effect.succeed(0),
    status: Effect.succeed({ appliedSequence: 0, lastSequence: 0 }),
    lag: Effect.succeed(0),
    projecting: Effect.succeed(true),
    search: (_principal, request) =>
      Effect.flatMap(Ref.get(RetrievalDown), (down) =>
        down
          ? Effect.fail(new VectorStoreUnavailable({ reason: "connection refused" }))
          : Effect.succeed(
            corpus.slice(0, request.limit).map((text, chunk) => ({
              documentId: "zebras",
              chunk,
              text,
              score: 1 - chunk / 10,
              metadata: {}
            }))
          ))
  })
)

/** A language model that fails every call, so every step falls back to the local model. */
const FailingLlm = Layer.succeed(
  Llm.Llm,
  Llm.Llm.of({
    ...Llm.makeLocal(),
    id: "failing",
    generate: () => Effect.fail(new LlmError.LlmUnavailable({ reason: "connection", detail: "connection refused" }))
  })
)

/** A language model that answers with a numbered reply and records every prompt it is given. */
const Prompted = Ref.makeUnsafe<ReadonlyArray<ReadonlyArray<Llm.Message>>>([])
const EchoLlm = Layer.succeed(
  Llm.Llm,
  Llm.Llm.of({
    ...Llm.makeLocal(),
    id: "echo",
    generate: (prompt, options) =>
      Ref.modify(Prompted, (prompts) => {
        const messages = typeof prompt === "string" ? [{ role: "user" as const, content: prompt }] : prompt
        const task = Prompts.parseSections(messages[messages.length - 1]!.content).Task ?? ""
        const kind = task.startsWith("Critique")
          ? "critique"
          : task.startsWith("Write the final")
          ? "improved"
          : "draft"
        return [
          { content: `${kind} #${prompts.length + 1}`, model: options?.model ?? "echo-1", degraded: false },
          [...prompts, messages]
        ]
      })
  })
)

const base = (llm: Layer.Layer<Llm.Llm>) =>
  Pipeline.layer.pipe(
    Layer.provideMerge(EventStore.layerMemory()),
    Layer.provide(llm),
    Layer.provide(StubRetrieval),
    Layer.provide(Layer.succeed(References.MinimumLogLevel, "None"))
  )

const run = (request: Pipeline.RunRequest, who = tenantA) =>
  Effect.flatMap(Pipeline.Pipelines, (pipelines) => pipelines.run(who, request))

const get = (id: string, who = tenantA) => Effect.flatMap(Pipeline.Pipelines, (pipelines) => pipelines.get(who, id))

describe("Pipelines with the local model", () => {
  it.effect("runs a script, one event per step on the pipeline's branch", () =>
    Effect.gen(function*() {
      const pipeline = yield* run({
        script: "SetTopic('zebras') | UseRetrieval(2) | UseDraft | UseCritique | UseImprove"
      })
      assert.strictEqual(pipeline.status, "completed")
      assert.strictEqual(pipeline.topic, "zebras")
      assert.deepStrictEqual(pipeline.steps.map((s) => s.kind), ["retrieve", "draft", "critique", "improve"])
      assert.deepStrictEqual(pipeline.steps.map((s) => s.index), [0, 1, 2, 3])
      assert.deepStrictEqual(pipeline.steps[0]!.sources?.map((s) => s.chunk), [0, 1])
      assert.include(pipeline.steps[0]!.output, "striped coats")
      assert.include(pipeline.steps[1]!.output, "Zebras")
      assert.strictEqual(pipeline.answer, pipeline.steps[3]!.output)
      assert.isTrue(pipeline.degraded) // the local model is always degraded
      assert.strictEqual(pipeline.steps[1]!.model, Llm.localModel)
      assert.isNotNull(pipeline.completedAt)
      assert.strictEqual(pipeline.script, "SetTopic('zebras') | UseRetrieval(2) | UseDraft | UseCritique | UseImprove")

      const events = yield* EventStore.EventStore
      const recorded = yield* events.readStream(Pipeline.streamOf(tenantA.tenantId, pipeline.id))
      assert.deepStrictEqual(recorded.map((e) => e.type), [
        "PipelineStarted",
        "StepCompleted",
        "StepCompleted",
        "StepCompleted",
        "StepCompleted",
        "PipelineCompleted"
      ])
      assert.deepStrictEqual(recorded.map((e) => e.version), [0, 1, 2, 3, 4, 5])
      assert.isTrue(recorded.every((e) => e.tenantId === "tenant-a"))
      assert.strictEqual(pipeline.version, 5)
      assert.deepStrictEqual(recorded[0]!.data, {
        topic: "zebras",
        steps: [{ kind: "retrieve", limit: 2 }, { kind: "draft" }, { kind: "critique" }, { kind: "improve" }]
      })
    }).pipe(Effect.provide(base(Llm.layerLocal))))

  it.effect("get folds the branch; another tenant's pipeline and unknown ids are not found", () =>
    Effect.gen(function*() {
      const pipeline = yield* run({ topic: "zebras", steps: ["draft", "critique", "improve"] })
      assert.deepStrictEqual(yield* get(pipeline.id), pipeline)
      const other = yield* Effect.flip(get(pipeline.id, tenantB))
      assert.strictEqual(other._tag, "PipelineNotFound")
      assert.strictEqual(other.message, `no pipeline ${pipeline.id}`)
      assert.strictEqual((yield* Effect.flip(get("no-such-pipeline")))._tag, "PipelineNotFound")
      assert.strictEqual((yield* Effect.flip(get("../tenant-b/pipeline/x")))._tag, "PipelineNotFound")
    }).pipe(Effect.provide(base(Llm.layerLocal))))

  it.effect("rejects bad requests before recording anything", () =>
    Effect.gen(function*() {
      const both = yield* Effect.flip(run({ topic: "z", steps: ["draft"], script: "UseDraft" }))
      assert.strictEqual(both._tag, "InvalidPipeline")
      assert.strictEqual(both.message, "give exactly one of steps and script")
      assert.strictEqual((yield* Effect.flip(run({ topic: "z" })))._tag, "InvalidPipeline")
      const noTopic = yield* Effect.flip(run({ steps: ["draft"] }))
      assert.include(noTopic.message, "topic")
      const order = yield* Effect.flip(run({ topic: "z", steps: ["critique", "draft"] }))
      assert.strictEqual(order._tag, "InvalidPipeline")
      assert.include(order.message, "steps[0]: a critique needs a draft")
      const syntax = yield* Effect.flip(run({ script: "SetTopic('z') | UseDraft | UseImprov" }))
      assert.strictEqual(syntax._tag, "PipelineSyntaxError")
      if (syntax._tag === "PipelineSyntaxError") assert.strictEqual(syntax.column, 28)
      const events = yield* EventStore.EventStore
      assert.strictEqual(yield* events.lastSequence, 0)
    }).pipe(Effect.provide(base(Llm.layerLocal))))

  it.effect("a failing vector store makes the retrieval step degraded, not the pipeline failed", () =>
    Effect.gen(function*() {
      yield* Ref.set(RetrievalDown, true)
      const pipeline = yield* run({ topic: "zebras", steps: ["retrieve", "draft"] }).pipe(
        Effect.ensuring(Ref.set(RetrievalDown, false))
      )
      assert.strictEqual(pipeline.status, "completed")
      assert.isTrue(pipeline.steps[0]!.degraded)
      assert.strictEqual(pipeline.steps[0]!.output, "retrieval is unavailable: the vector store is unavailable")
      assert.deepStrictEqual(pipeline.steps[0]!.sources, [])
      assert.strictEqual(pipeline.steps[0]!.index, 0)
    }).pipe(Effect.provide(base(Llm.layerLocal))))
})

describe("Pipelines with a real model", () => {
  it.effect("chains the outputs: the critique sees the draft, the improvement sees both", () =>
    Effect.gen(function*() {
      yield* Ref.set(Prompted, [])
      const pipeline = yield* run({
        script: "SetTopic('zebras') | UseRetrieval | UseDraft | UseCritique | UseImprove",
        model: "llama3:8b"
      })
      assert.isFalse(pipeline.degraded)
      assert.deepStrictEqual(pipeline.steps.map((s) => s.output).slice(1), ["draft #1", "critique #2", "improved #3"])
      assert.deepStrictEqual(pipeline.steps.map((s) => s.model), ["retrieval", "llama3:8b", "llama3:8b", "llama3:8b"])
      assert.strictEqual(pipeline.answer, "improved #3")
      const prompts = (yield* Ref.get(Prompted)).map((m) => Prompts.parseSections(m[m.length - 1]!.content))
      assert.strictEqual(prompts[0]!.Topic, "zebras")
      assert.include(prompts[0]!.Context, "[1] (document zebras) Zebras are African equines")
      assert.strictEqual(prompts[1]!.Draft, "draft #1")
      assert.strictEqual(prompts[2]!.Draft, "draft #1")
      assert.strictEqual(prompts[2]!.Critique, "critique #2")
    }).pipe(Effect.provide(base(EchoLlm))))

  it.effect("a second round critiques the improved draft", () =>
    Effect.gen(function*() {
      yield* Ref.set(Prompted, [])
      const pipeline = yield* run({ topic: "zebras", steps: ["draft", "critique", "improve", "critique", "improve"] })
      assert.strictEqual(pipeline.answer, "improved #5")
      const prompts = (yield* Ref.get(Prompted)).map((m) => Prompts.parseSections(m[m.length - 1]!.content))
      assert.strictEqual(prompts[3]!.Draft, "improved #3")
      assert.strictEqual(prompts[4]!.Critique, "critique #4")
    }).pipe(Effect.provide(base(EchoLlm))))

  it.effect("falls back to the local model when the model fails, marking the steps degraded", () =>
    Effect.gen(function*() {
      const pipeline = yield* run({ topic: "zebras", steps: ["retrieve", "draft", "critique", "improve"] })
      assert.strictEqual(pipeline.status, "completed")
      assert.isTrue(pipeline.degraded)
      assert.isFalse(pipeline.steps[0]!.degraded)
      for (const step of pipeline.steps.slice(1)) {
        assert.isTrue(step.degraded)
        assert.strictEqual(step.model, Llm.localModel)
      }
      assert.include(pipeline.answer ?? "", "Zebras")
    }).pipe(Effect.provide(base(FailingLlm))))

  it.effect("an interrupted pipeline records PipelineFailed on its branch", () =>
    Effect.gen(function*() {
      const called = yield* Deferred.make<void>()
      const HangingLlm = Layer.succeed(
        Llm.Llm,
        Llm.Llm.of({
          ...Llm.makeLocal(),
          generate: () => Effect.andThen(Deferred.succeed(called, undefined), Effect.never)
        })
      )
      yield* Effect.gen(function*() {
        const fiber = yield* Effect.forkChild(run({ topic: "zebras", steps: ["draft"] }))
        yield* Deferred.await(called)
        yield* Fiber.interrupt(fiber)
        const exit = yield* Fiber.await(fiber)
        assert.isTrue(Exit.hasInterrupts(exit))
        const events = yield* EventStore.EventStore
        const recorded = yield* Stream.runCollect(events.readAll())
        assert.deepStrictEqual(recorded.map((e) => e.type), ["PipelineStarted", "PipelineFailed"])
        const id = recorded[0]!.streamId.split("/").pop()!
        const pipeline = yield* get(id)
        assert.strictEqual(pipeline.status, "failed")
        assert.strictEqual(pipeline.error, "the pipeline was interrupted")
        assert.isNull(pipeline.answer)
      }).pipe(Effect.provide(base(HangingLlm)))
    }))

  it.effect("a concurrent write to the branch fails the run with PipelineConflict", () =>
    Effect.gen(function*() {
      // Another writer appends to the branch just before the first step is recorded.
      const Racing = Layer.effect(
        EventStore.EventStore,
        Effect.map(EventStore.EventStore, (inner) =>
          EventStore.EventStore.of({
            ...inner,
            append: (stream, events, options) =>
              events[0]?.type === "StepCompleted"
                ? Effect.andThen(
                  inner.append(stream, [{ type: "Interloper", data: {}, metadata: { tenantId: "tenant-a" } }]),
                  inner.append(stream, events, options)
                )
                : inner.append(stream, events, options)
          }))
      ).pipe(Layer.provide(EventStore.layerMemory()))
      yield* Effect.gen(function*() {
        const error = yield* Effect.flip(run({ topic: "zebras", steps: ["draft"] }))
        assert.strictEqual(error._tag, "PipelineConflict")
        const events = yield* EventStore.EventStore
        const recorded = yield* Stream.runCollect(events.readAll())
        assert.deepStrictEqual(recorded.map((e) => e.type), ["PipelineStarted", "Interloper"])
        if (error._tag === "PipelineConflict") {
          assert.strictEqual(error.id, recorded[0]!.streamId.split("/").pop())
          assert.match(error.message, /^the pipeline's branch changed concurrently \(.+\)$/)
        }
      }).pipe(Effect.provide(
        Pipeline.layer.pipe(
          Layer.provideMerge(Racing),
          Layer.provide(Llm.layerLocal),
          Layer.provide(StubRetrieval),
          Layer.provide(Layer.succeed(References.MinimumLogLevel, "None"))
        )
      ))
    }))
})
