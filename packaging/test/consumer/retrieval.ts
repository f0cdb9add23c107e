// A third party's program, compiled and run as core.ts is: the retrieval service on the embedded defaults (PGlite and
// the embedded vector store under ./data, the local models). It needs @effect/sql-pg, so effect 4.1.5 or later. It
// prints one JSON line that the test checks.
import { Checkpoints, EventStore } from "@ouroboros/event-store"
import { Principal, TenantId } from "@ouroboros/kernel"
import { LlmConfig } from "@ouroboros/llm"
import { Retrieval } from "@ouroboros/retrieval"
import { Database } from "@ouroboros/sql"
import { Embedded } from "@ouroboros/vector-store"
import { Effect, Layer } from "effect"

const RetrievalLive = Retrieval.layer().pipe(
  Layer.provide([EventStore.layer, Checkpoints.layer, Embedded.layer({ directory: "data/vectors" })]),
  Layer.provide([Database.layerEmbedded({ dataDir: "data" }), LlmConfig.layerLocal()])
)
const me = new Principal.Principal({
  tenantId: TenantId.make("acme"),
  subject: "me",
  roles: ["writer"],
  method: "api-key"
})

const program = Effect.gen(function*() {
  const service = yield* Retrieval.Retrieval
  yield* service.ingest(me, { id: "zebras", text: "Zebras are African equines with black-and-white striped coats." })
  const { answer, sources } = yield* service.ask(me, { question: "What do zebras look like?" })
  return { answer, sources: sources.map((hit) => hit.documentId) }
}).pipe(Effect.provide(RetrievalLive))

const result = await Effect.runPromise(program)
console.log(JSON.stringify(result))
