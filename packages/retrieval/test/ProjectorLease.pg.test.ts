/**
 * Two replicas of the retrieval service on one PostgreSQL database (each with its own connection pool, as two
 * processes would have) and one vector store: only the lease holder projects; when its lease connection dies, the
 * other takes over and continues from the global checkpoint without embedding again what was applied; a rebuild asked
 * on the replica without the lease is done by the holder, and a tenant erased there loses its vectors too.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Checkpoints, EventStore } from "@ouroboros/event-store"
import { Embedder, Llm } from "@ouroboros/llm"
import { PgSchema, Services } from "@ouroboros/testkit"
import { Context, Effect, Exit, Layer, Redacted, Ref, Schedule, Scope } from "effect"
import { SqlClient } from "effect/sql"
import * as ProjectorLease from "../src/ProjectorLease.js"
import * as Retrieval from "../src/Retrieval.js"
import { eventually, quiet, tempDir, tenantA, vectorStore } from "./layers.js"

const texts = [
  "Zebras are African equines with black-and-white striped coats.",
  "Green tea is made from the leaves of Camellia sinensis.",
  "Cranes dance in pairs on frozen lakes.",
  "Otters hold hands while they sleep.",
  "Bees dance to tell each other where the flowers are.",
  "Lighthouses guide ships past dangerous rocks at night.",
  "Volcanoes release molten rock, ash and gases.",
  "Glaciers carve valleys as they slowly move downhill."
]

const ingested = (id: string, text: string) => ({
  type: "DocumentIngested",
  data: { documentId: id, text, metadata: {}, contentHash: id, chunks: 1, embedder: Embedder.localId(384) },
  metadata: { tenantId: tenantA.tenantId, subject: "test" }
})

interface Replica {
  readonly name: string
  readonly retrieval: Retrieval.Retrieval["Service"]
  readonly events: EventStore.EventStore["Service"]
  /** How many texts the replica's embedder embedded. */
  readonly embedded: Ref.Ref<number>
  readonly scope: Scope.Closeable
}

describe.runIf(await Services.postgres())("the projector lease on PostgreSQL", () => {
  it.live(
    "one replica projects; after its lease dies the other continues from the checkpoint",
    () =>
      Effect.gen(function*() {
        const schema = `retrieval_lease_${Math.random().toString(36).slice(2, 10)}`
        // Keys of this test's own: other tests on the database never contend for them.
        const keys = [0x4f55524f, Math.floor(Math.random() * 0x7fffffff)] as const
        const firstSql = PgSchema.layer({ schema, maxConnections: 4 })
        const inSchema = (maxConnections: number) =>
          PgClient.layer({ url: Redacted.make(PgSchema.withSearchPath(Services.postgresUrl, schema)), maxConnections })
        const secondSql = inSchema(4)
        // One vector store for both, as a shared Qdrant would be.
        const vectors = yield* Layer.build(Layer.unwrap(Effect.map(tempDir, vectorStore)))

        const replica = (name: string, sql: Layer.Layer<SqlClient.SqlClient, unknown>) =>
          Effect.gen(function*() {
            const embedded = yield* Ref.make(0)
            const local = Embedder.makeLocal()
            const Counting = Layer.succeed(
              Embedder.Embedder,
              Embedder.Embedder.of({
                ...local,
                embed: (batch, options) =>
                  Effect.andThen(Ref.update(embedded, (n) => n + batch.length), local.embed(batch, options))
              })
            )
            const Stores = Layer.mergeAll(
              EventStore.layer,
              Checkpoints.layer,
              ProjectorLease.layerAdvisoryLock({
                keys,
                retry: Schedule.spaced("50 millis"),
                checkInterval: "50 millis"
              })
            ).pipe(Layer.provideMerge(sql))
            const Live = Retrieval.layer({ pollInterval: "50 millis", followInterval: "20 millis" }).pipe(
              Layer.provideMerge(Stores),
              Layer.provide(Layer.mergeAll(Layer.succeedContext(vectors), Llm.layerLocal, Counting)),
              Layer.provide(quiet),
              Layer.orDie
            )
            const scope = yield* Scope.make()
            const context = yield* Layer.buildWithScope(Live, scope)
            return {
              name,
              retrieval: Context.get(context, Retrieval.Retrieval),
              events: Context.get(context, EventStore.EventStore),
              embedded,
              scope
            } satisfies Replica
          })

        // The schema (and the first client) first: the second client works in it.
        const first = yield* replica("first", firstSql)
        const second = yield* replica("second", secondSql)
        yield* Effect.addFinalizer(() =>
          Effect.andThen(Scope.close(second.scope, Exit.void), Scope.close(first.scope, Exit.void))
        )

        const projecting = (r: Replica) => r.retrieval.projecting
        yield* eventually(
          "one replica projects",
          Effect.map(Effect.all([projecting(first), projecting(second)]), ([a, b]) => a || b)
        )
        const [holder, standby] = (yield* projecting(first)) ? [first, second] : [second, first]
        assert.isFalse(yield* projecting(standby), "exactly one replica holds the lease")

        // Five documents, recorded through the replica without the lease.
        for (const [i, text] of texts.slice(0, 5).entries()) {
          yield* standby.events.append(Retrieval.streamOf(tenantA.tenantId, `doc-${i}`), [ingested(`doc-${i}`, text)])
        }
        yield* eventually("the holder applied them", Effect.map(holder.retrieval.lag, (lag) => lag === 0))
        assert.strictEqual(yield* Ref.get(holder.embedded), 5)
        assert.strictEqual(yield* Ref.get(standby.embedded), 0, "the replica without the lease embeds nothing")
        // The standby follows the global checkpoint: it reports the projection caught up too.
        assert.deepStrictEqual(yield* standby.retrieval.status, { appliedSequence: 5, lastSequence: 5 })
        assert.isFalse(yield* projecting(standby))

        // The holder's lease connection dies (as with a crash of its process or its network).
        const admin = Context.get(yield* Layer.build(inSchema(1).pipe(Layer.orDie)), SqlClient.SqlClient)
        const terminated = yield* admin<{ readonly done: boolean }>`SELECT pg_terminate_backend(pid) AS done
        FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = ${keys[0]}::int::oid
        AND objid = ${keys[1]}::int::oid AND objsubid = 2`
        assert.deepStrictEqual(terminated.map((r) => r.done), [true])
        yield* eventually("the other replica takes over", projecting(standby))
        yield* eventually("the old holder stops projecting", Effect.map(projecting(holder), (p) => !p))

        // Three more documents: the new holder embeds those three, and nothing that was applied before.
        for (const [i, text] of texts.slice(5).entries()) {
          const id = `doc-${i + 5}`
          yield* holder.events.append(Retrieval.streamOf(tenantA.tenantId, id), [ingested(id, text)])
        }
        yield* eventually("the new holder applied them", Effect.map(standby.retrieval.lag, (lag) => lag === 0))
        assert.strictEqual(yield* Ref.get(standby.embedded), 3)
        assert.strictEqual(yield* Ref.get(holder.embedded), 5, "the old holder applied nothing more")
        assert.deepStrictEqual(yield* holder.retrieval.status, { appliedSequence: 8, lastSequence: 8 })
        // Both replicas find what either applied (the search embeds the query: one text on the asking replica).
        const hits = yield* holder.retrieval.search(tenantA, { query: "glaciers carving valleys", limit: 8 })
        assert.strictEqual(hits[0]?.documentId, "doc-7")
        assert.sameMembers(hits.map((h) => h.documentId), texts.map((_, i) => `doc-${i}`))

        // A rebuild asked on the replica without the lease: the holder drops the vectors and replays all eight.
        const before = yield* Ref.get(standby.embedded)
        const rebuilt = yield* holder.retrieval.rebuild
        assert.strictEqual(rebuilt.events, 8)
        assert.strictEqual((yield* Ref.get(standby.embedded)) - before, 8)
        assert.strictEqual(yield* Ref.get(holder.embedded), 6, "only the query above was embedded there")
        const again = yield* standby.retrieval.search(tenantA, { query: "glaciers carving valleys", limit: 8 })
        assert.deepStrictEqual(again.map((h) => h.documentId), hits.map((h) => h.documentId))

        // Erasing the tenant through the replica without the lease: its events, then (once the holder can no longer
        // write vectors of events it read before) its vectors.
        const purged = yield* holder.retrieval.purgeTenant(tenantA.tenantId)
        assert.strictEqual(purged.events, 8)
        assert.deepStrictEqual(yield* standby.retrieval.search(tenantA, { query: "glaciers carving valleys" }), [])
        assert.isTrue(yield* projecting(standby), "the holder kept its lease through the fence")
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )

  it.live(
    "by default the lease is per schema: two deployments in two schemas of one database each hold one, two replicas in one schema share it",
    () =>
      Effect.gen(function*() {
        const schemas = [0, 1].map((i) => `retrieval_lease_${i}_${Math.random().toString(36).slice(2, 10)}`)
        const inSchema = (schema: string) =>
          PgClient.layer({
            url: Redacted.make(PgSchema.withSearchPath(Services.postgresUrl, schema)),
            maxConnections: 2
          })
        const held = (schema: string) =>
          Effect.gen(function*() {
            const context = yield* Layer.build(
              ProjectorLease.layerAdvisoryLock({ retry: Schedule.spaced("20 millis") }).pipe(
                Layer.provide(inSchema(schema))
              )
            )
            const lease = Context.get(context, ProjectorLease.ProjectorLease)
            // Runs for as long as the scope lives, while held.
            yield* Effect.forkScoped(lease.whileHeld(Effect.never))
            return lease
          })
        for (const schema of schemas) yield* Layer.build(PgSchema.layer({ schema }))
        const [a, b] = [yield* held(schemas[0]!), yield* held(schemas[1]!)]
        yield* eventually(
          "both deployments hold their lease",
          Effect.map(Effect.all([a.held, b.held]), ([x, y]) => x && y)
        )
        // Another session of the first deployment's schema cannot take that lock while it is held.
        const other = Context.get(yield* Layer.build(inSchema(schemas[0]!)), SqlClient.SqlClient)
        const [row] = yield* other<{ readonly locked: boolean }>`SELECT pg_try_advisory_lock(
          ${ProjectorLease.lockKeys[0]}, hashtext(current_schema() || ':' || ${ProjectorLease.lockKeys[1]}::text)
        ) AS locked`
        assert.isFalse(row!.locked)
        assert.isTrue(yield* a.held)
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )
})
