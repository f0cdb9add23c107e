/**
 * Test fixtures: principals, an embedded vector store in a fresh directory, in-memory event stores, the local models,
 * and embedders and vector stores that fail on demand.
 */
import { Checkpoints, EventStore } from "@ouroboros/event-store"
import { Principal, TenantId } from "@ouroboros/kernel"
import { Embedder, Llm, LlmError } from "@ouroboros/llm"
import { Embedded, VectorStore } from "@ouroboros/vector-store"
import { Effect, Layer, Ref, References, type Scope } from "effect"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Retrieval from "../src/Retrieval.js"

export const principal = (tenant: string): Principal.Principal =>
  new Principal.Principal({
    tenantId: TenantId.make(tenant),
    subject: `key:${tenant}`,
    roles: ["writer", "reader"],
    method: "api-key"
  })

export const tenantA = principal("tenant-a")
export const tenantB = principal("tenant-b")

/** A fresh directory, removed when the scope closes. */
export const tempDir: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "ouroboros-retrieval-"))),
  (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
)

/** The embedded vector store in `directory` (no fsync: tests do not survive power losses). */
export const vectorStore = (directory: string): Layer.Layer<VectorStore.VectorStore, VectorStore.VectorStoreError> =>
  Embedded.layer({ directory, fsync: false })

/**
 * Waits until `condition` holds, checking it every 10 ms of real time (what the tests wait for runs on other fibers,
 * the database or other processes). The bound only ends a test that would otherwise hang.
 */
export const eventually = (
  what: string,
  condition: Effect.Effect<boolean, unknown>,
  checks = 3000
): Effect.Effect<void> =>
  Effect.gen(function*() {
    for (let i = 0; i < checks; i++) {
      if (yield* Effect.orDie(condition)) return
      yield* Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 10)))
    }
    return yield* Effect.die(new Error(`gave up waiting until ${what}`))
  })

export const quiet: Layer.Layer<never> = Layer.succeed(References.MinimumLogLevel, "None")

/** Whether the {@link FlakyEmbedder} fails, and how many calls reached it. */
export interface Switch {
  readonly down: Ref.Ref<boolean>
  readonly calls: Ref.Ref<number>
}

export const makeSwitch: Effect.Effect<Switch> = Effect.all({ down: Ref.make(false), calls: Ref.make(0) })

/** The local embedder, failing with `LlmUnavailable` (a connection refused) while the switch is down. */
export const flakyEmbedder = (s: Switch): Embedder.Embedder["Service"] => {
  const local = Embedder.makeLocal()
  return Embedder.Embedder.of({
    ...local,
    embed: (texts, options) =>
      Effect.andThen(
        Ref.update(s.calls, (n) => n + 1),
        Effect.flatMap(Ref.get(s.down), (down) =>
          down
            ? Effect.fail(new LlmError.LlmUnavailable({ reason: "connection", detail: "connection refused" }))
            : local.embed(texts, options))
      )
  })
}

/**
 * `Retrieval` over in-memory event stores, the embedded vector store in a fresh directory, the local answerer and
 * `embedder` (the local one by default); the stores are part of the output.
 */
export const retrieval = (
  options: Retrieval.Options = {},
  embedder: Layer.Layer<Embedder.Embedder> = Embedder.layerLocal()
) =>
  Retrieval.layer(options).pipe(
    Layer.provideMerge(Layer.mergeAll(
      EventStore.layerMemory(),
      Checkpoints.layerMemory,
      Layer.unwrap(Effect.map(tempDir, vectorStore)),
      Llm.layerLocal,
      embedder
    )),
    Layer.provide(quiet)
  )
