import { assert, describe, it } from "@effect/vitest"
import { Checkpoints, EventStore } from "@ouroboros/event-store"
import { TenantId } from "@ouroboros/kernel"
import { VectorStore } from "@ouroboros/vector-store"
import { Embedded } from "@ouroboros/vector-store"
import { Cause, Effect, Exit, Fiber, Layer, Ref, Stream } from "effect"
import { TestClock } from "effect/testing"
import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { Backup, BackupSource, BackupTarget, Manifest } from "../src/index.js"
import { Dir, layerStores, tempDir } from "./helpers.js"

const tenant = TenantId.make("acme")

const ingest = (id: string, text: string) =>
  Effect.flatMap(EventStore.EventStore, (store) =>
    store.append(`tenant/acme/document/${id}`, [
      { type: "DocumentIngested", data: { id, text }, metadata: { tenantId: "acme" } }
    ]))

const vector = (seed: number) => Array.from({ length: 8 }, (_, i) => Math.sin(seed * 7 + i) + 1.5)

const upsertVectors = (ids: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const vectors = yield* VectorStore.VectorStore
    yield* vectors.ensureCollection({ name: "chunks", dimensions: 8 })
    yield* vectors.upsert("chunks", tenant, ids.map((id, i) => ({ id, vector: vector(i), payload: { id } })))
  })

// The NDJSON of every event in the store: what a restore must reproduce byte for byte.
const eventsHash = Effect.flatMap(
  EventStore.EventStore,
  (store) => BackupSource.sha256(BackupSource.ndjson(Stream.map(store.readAll(), Backup.eventLine)))
)

// A registered source kept in a Ref, standing for a table (audit log, tenants…).
const memorySource = (ref: Ref.Ref<ReadonlyArray<string>>): BackupSource.BackupSource => {
  const exported = Stream.unwrap(Effect.map(Ref.get(ref), (rows) => BackupSource.ndjson(Stream.fromIterable(rows))))
  return {
    name: "notes",
    export: exported,
    import: (bytes) => Effect.flatMap(Stream.runCollect(BackupSource.lines(bytes)), (rows) => Ref.set(ref, [...rows])),
    count: Effect.map(Ref.get(ref), (rows) => rows.length),
    hash: BackupSource.sha256(exported)
  }
}

describe("Backup", () => {
  it("eventLine is the schema's JSON encoding of an event", () => {
    const events = [
      new EventStore.RecordedEvent({
        sequence: 7,
        streamId: "tenant/acme/document/1",
        version: 2,
        type: "DocumentIngested",
        data: { text: "héllo \u2028", nested: [1, { a: null }] },
        metadata: { tenantId: "acme", "x-y": 1 },
        tenantId: "acme",
        recordedAt: new Date("2026-11-25T10:00:00.123Z")
      }),
      new EventStore.RecordedEvent({
        sequence: 8,
        streamId: "s",
        version: 0,
        type: "T",
        data: null,
        metadata: {},
        recordedAt: new Date(0)
      })
    ]
    for (const event of events) assert.strictEqual(Backup.eventLine(event), Backup.eventLineBySchema(event))
  })

  it.effect(
    "round trip: a full backup restores the events, vectors and sources it holds, by checksums",
    () =>
      Effect.gen(function*() {
        const backup = yield* Backup.Backup
        const notes = yield* Ref.make<ReadonlyArray<string>>([JSON.stringify({ id: 1 }), JSON.stringify({ id: 2 })])
        const registry = yield* BackupSource.BackupSources
        yield* registry.register(memorySource(notes))
        for (let i = 0; i < 50; i++) yield* ingest(`d${i}`, `text ${i}`)
        yield* upsertVectors(Array.from({ length: 20 }, (_, i) => `d${i}`))
        const checkpoints = yield* Checkpoints.Checkpoints
        yield* checkpoints.set("vector-projection", 50)
        const vectors = yield* VectorStore.VectorStore
        const before = { events: yield* eventsHash, vectors: (yield* vectors.snapshot("chunks")).sha256 }

        const manifest = yield* backup.create()
        assert.strictEqual(manifest.kind, "full")
        assert.deepStrictEqual(manifest.events, {
          from: 1,
          to: 50,
          count: 50,
          lastRecordedAt: manifest.events.lastRecordedAt
        })
        assert.deepStrictEqual(manifest.files.map((f) => f.name).sort(), [
          "events-1-50.ndjson",
          "notes.ndjson",
          "vectors-chunks.snapshot"
        ])
        assert.strictEqual(manifest.sources[0]?.count, 2)
        const verification = yield* backup.verify(manifest.id, { tier: "restore" })
        assert.isTrue(verification.ok)

        // Damage everything, then restore.
        for (let i = 50; i < 60; i++) yield* ingest(`d${i}`, `later ${i}`)
        yield* vectors.drop("chunks")
        yield* Ref.set(notes, [])
        yield* checkpoints.set("vector-projection", 60)
        const result = yield* backup.restore(manifest.id)
        assert.strictEqual(result.restoredEvents, 50)
        assert.strictEqual(result.vectors, "snapshot")
        assert.deepStrictEqual(result.sources, ["notes"])
        assert.strictEqual(yield* eventsHash, before.events)
        assert.strictEqual((yield* vectors.snapshot("chunks")).sha256, before.vectors)
        assert.strictEqual(yield* vectors.count("chunks", undefined), 20)
        assert.strictEqual((yield* Ref.get(notes)).length, 2)
        assert.strictEqual(yield* checkpoints.get("vector-projection"), 50)
        assert.strictEqual(yield* (yield* EventStore.EventStore).lastSequence, 50)
      }).pipe(Effect.provide(layerStores())),
    { timeout: 30_000 }
  )

  it.effect(
    "incremental backups hold only the new events and restore through their chain",
    () =>
      Effect.gen(function*() {
        const backup = yield* Backup.Backup
        for (let i = 0; i < 10; i++) yield* ingest(`a${i}`, "first")
        const full = yield* backup.create()
        for (let i = 0; i < 5; i++) yield* ingest(`b${i}`, "second")
        yield* TestClock.adjust("1 second")
        const incremental = yield* backup.create()
        assert.strictEqual(incremental.kind, "incremental")
        assert.strictEqual(incremental.parent, full.id)
        assert.deepStrictEqual([incremental.events.from, incremental.events.to, incremental.events.count], [11, 15, 5])
        const expected = yield* eventsHash
        yield* backup.verify(incremental.id, { tier: "restore" })
        yield* (yield* EventStore.EventStore).truncate
        const result = yield* backup.restore(incremental.id)
        assert.deepStrictEqual(result.chain, [full.id, incremental.id])
        assert.strictEqual(yield* eventsHash, expected)
        const listed = yield* backup.list
        assert.deepStrictEqual(listed.map((i) => i.manifest.id), [incremental.id, full.id])
        assert.isTrue(Manifest.isVerified(listed[0]!))
      }).pipe(Effect.provide(layerStores())),
    { timeout: 30_000 }
  )

  it.effect(
    "point in time: recovery to an instant between two ingests returns exactly the first",
    () =>
      Effect.gen(function*() {
        const rebuilds = yield* Ref.make(0)
        const layer = layerStores().pipe(
          Layer.provide(Layer.succeed(Backup.Projections, { rebuild: Ref.update(rebuilds, (n) => n + 1) }))
        )
        yield* Effect.gen(function*() {
          const backup = yield* Backup.Backup
          const store = yield* EventStore.EventStore
          yield* TestClock.setTime(1_000)
          const base = yield* backup.create()
          yield* backup.verify(base.id)
          yield* TestClock.setTime(2_000)
          yield* ingest("first", "one")
          yield* TestClock.setTime(4_000)
          yield* ingest("second", "two")
          // No id: the newest verified backup before the instant.
          const result = yield* backup.restore(Backup.latest, { at: new Date(3_000) })
          assert.strictEqual(result.id, base.id)
          assert.strictEqual(result.replayedEvents, 1)
          assert.strictEqual(result.vectors, "rebuild")
          const events = yield* Stream.runCollect(store.readAll())
          assert.deepStrictEqual([...events].map((e) => e.streamId), ["tenant/acme/document/first"])
          assert.strictEqual(yield* Ref.get(rebuilds), 1)

          // The same by sequence, from a backup that already holds both: an earlier point needs a rebuild.
          yield* ingest("second", "two")
          const both = yield* backup.create({ kind: "full" })
          yield* backup.verify(both.id)
          const bySequence = yield* backup.restore(both.id, { at: 1 })
          assert.strictEqual(bySequence.lastSequence, 1)
          const none = yield* Effect.flip(backup.restore(Backup.latest, { at: new Date(500) }))
          assert.strictEqual(none._tag, "BackupNotFound")
          const snapshotOnly = yield* Effect.exit(backup.restore(both.id, { at: 1, vectors: "snapshot" }))
          const [reason, ...others] = Exit.isFailure(snapshotOnly) ? snapshotOnly.cause.reasons : []
          assert.deepStrictEqual(
            others.length === 0 && reason !== undefined && Cause.isFailReason(reason) && reason.error._tag,
            "InvalidRestorePoint"
          )
        }).pipe(Effect.provide(layer))
      }),
    { timeout: 30_000 }
  )

  it.effect(
    "corruption: a damaged file fails verification naming it, and no restore starts from it",
    () =>
      Effect.gen(function*() {
        const backup = yield* Backup.Backup
        const dir = yield* Dir
        for (let i = 0; i < 20; i++) yield* ingest(`d${i}`, `text ${i}`)
        const manifest = yield* backup.create()
        // Never verified: refused without force.
        const unverified = yield* Effect.flip(backup.restore(manifest.id))
        assert.strictEqual(unverified._tag, "BackupNotVerified")
        yield* backup.verify(manifest.id)
        const file = Path.join(dir, manifest.id, "events-1-20.ndjson")
        const bytes = Fs.readFileSync(file)
        bytes[10] = bytes[10]! ^ 0x01
        Fs.writeFileSync(file, bytes)
        const error = yield* Effect.flip(backup.verify(manifest.id))
        assert.strictEqual(error._tag, "BackupCorrupt")
        assert.deepStrictEqual(error._tag === "BackupCorrupt" && error.files, [`${manifest.id}/events-1-20.ndjson`])
        assert.include(error._tag === "BackupCorrupt" ? error.detail : "", "events-1-20.ndjson")
        const refused = yield* Effect.flip(backup.restore(manifest.id))
        assert.strictEqual(refused._tag, "BackupNotVerified")
        // The store was not touched.
        assert.strictEqual(yield* (yield* EventStore.EventStore).lastSequence, 20)
        // Damage the checksums cannot see (the manifest rewritten to match): the restore tier finds it.
        const lines = Fs.readFileSync(file, "utf8").split("\n")
        lines[3] = lines[3]!.replace(/"version":\d+/, `"version":-5`)
        const forged = Buffer.from(lines.join("\n"))
        Fs.writeFileSync(file, forged)
        const manifestPath = Path.join(dir, manifest.id, "manifest.json")
        const json = JSON.parse(Fs.readFileSync(manifestPath, "utf8")) as {
          files: Array<{ name: string; sha256: string; bytes: number }>
        }
        const entry = json.files.find((f) => f.name === "events-1-20.ndjson")!
        entry.sha256 = createHash("sha256").update(forged).digest("hex")
        entry.bytes = forged.byteLength
        Fs.writeFileSync(manifestPath, JSON.stringify(json))
        assert.isTrue((yield* backup.verify(manifest.id, { tier: "checksums" })).ok)
        const deep = yield* Effect.flip(backup.verify(manifest.id, { tier: "restore" }))
        assert.deepStrictEqual(deep._tag === "BackupCorrupt" && deep.files, [`${manifest.id}/events-1-20.ndjson`])
        assert.include(deep._tag === "BackupCorrupt" ? deep.detail : "", "does not decode")
        const missing = yield* Effect.flip(backup.verify("20260101T000000000Z-full-zzzz"))
        assert.strictEqual(missing._tag, "BackupNotFound")
      }).pipe(Effect.provide(layerStores())),
    { timeout: 30_000 }
  )

  it.effect(
    "an interrupted backup leaves no manifest and no directory; leftovers are removed at start",
    () =>
      Effect.gen(function*() {
        const backup = yield* Backup.Backup
        const dir = yield* Dir
        const registry = yield* BackupSource.BackupSources
        yield* ingest("x", "x")
        yield* registry.register({
          name: "slow",
          export: Stream.concat(Stream.make(new Uint8Array([1, 2, 3])), Stream.never),
          import: () => Effect.void,
          count: Effect.succeed(0),
          hash: Effect.succeed("")
        })
        const fiber = yield* Effect.forkChild(backup.create())
        // Wait until the partial directory has the slow source's file.
        yield* Effect.repeat(
          Effect.andThen(
            Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5))),
            Effect.sync(() =>
              Fs.readdirSync(dir).some((d) => d.endsWith(".partial") && Fs.existsSync(Path.join(dir, d, "slow.ndjson")))
            )
          ),
          { until: (found) => found }
        )
        yield* Fiber.interrupt(fiber)
        assert.deepStrictEqual(Fs.readdirSync(dir), [])
        assert.deepStrictEqual(yield* backup.list, [])
        // A kill -9 leaves the partial directory: it is never listed, and the next start removes it.
        Fs.mkdirSync(Path.join(dir, "20260101T000000000Z-full-abcd.partial"))
        Fs.writeFileSync(Path.join(dir, "20260101T000000000Z-full-abcd.partial", "events-1-1.ndjson"), "{}\n")
        assert.deepStrictEqual(yield* backup.list, [])
        yield* Backup.make()
        assert.deepStrictEqual(Fs.readdirSync(dir), [])
      }).pipe(Effect.provide(layerStores())),
    { timeout: 30_000 }
  )

  it.live(
    "kill -9 inside a backup leaves no complete-looking backup (repeated until a kill lands inside)",
    () =>
      Effect.gen(function*() {
        const directory = yield* tempDir("kill")
        const backups = Path.join(directory, "backups")
        const writer = fileURLToPath(new URL("./fixtures/backup-writer.ts", import.meta.url))
        // Kill the child at several points of its second backup (its first one is then complete): the delay after the
        // backup reports it is writing varies from one run to the next.
        const delays = [0, 40, 120, 220, 10]
        const outcomes: Array<{ readonly delay: number; readonly inside: boolean }> = []
        while (outcomes.filter((o) => o.inside).length < 3 && outcomes.length < 10) {
          const delay = delays[outcomes.length % delays.length]!
          const output = yield* Effect.promise(() =>
            new Promise<string>((resolve, reject) => {
              const child = spawn(process.execPath, ["--import", "tsx", writer, directory], {
                stdio: ["ignore", "pipe", "inherit"]
              })
              let text = ""
              child.stdout.on("data", (data: Buffer) => {
                const before = text.includes("inside 2")
                text += data.toString()
                if (!before && text.includes("inside 2")) setTimeout(() => child.kill("SIGKILL"), delay)
              })
              // `close`, not `exit`: `exit` may come before the last lines still in the pipe have been read.
              child.on(
                "close",
                (code, signal) => signal === "SIGKILL" ? resolve(text) : reject(new Error(`exit ${code}`))
              )
            })
          )
          // Landed inside: the backup it was writing never completed, and its `.partial` directory is left (a kill
          // between the commit and the `done` line leaves a complete backup instead).
          const partials = Fs.readdirSync(backups).filter((d) => d.endsWith(".partial"))
          assert.isAtMost(partials.length, 1)
          if (!output.includes("done 2") && partials.length === 0) {
            assert.isTrue(Fs.readdirSync(backups).length >= 2, "killed after the commit of backup 2")
          }
          outcomes.push({ delay, inside: partials.length === 1 })
        }
        assert.isAtLeast(outcomes.filter((o) => o.inside).length, 1, JSON.stringify(outcomes))

        // Every directory that has a manifest is complete (its files match the manifest), and a restart removes the
        // partial one.
        const layer = Backup.layer().pipe(Layer.provideMerge(Layer.mergeAll(
          EventStore.layerMemory(),
          Embedded.layer({ directory: Path.join(directory, "vectors2"), fsync: false }),
          BackupTarget.layerDirectory(backups)
        )))
        yield* Effect.gen(function*() {
          const backup = yield* Backup.Backup
          const listed = yield* backup.list
          assert.isAtLeast(listed.length, outcomes.length, "each run completed its first backup")
          for (const info of listed) {
            const verification = yield* backup.verify(info.manifest.id)
            assert.isTrue(verification.ok)
          }
          for (const name of Fs.readdirSync(backups)) {
            assert.isFalse(name.endsWith(".partial"), `${name} survived the restart`)
          }
        }).pipe(Effect.provide(layer))
      }).pipe(Effect.scoped),
    { timeout: 120_000 }
  )

  it.effect("operations are reported to the Auditor when one is present", () =>
    Effect.gen(function*() {
      const records = yield* Ref.make<ReadonlyArray<Backup.Operation>>([])
      const layer = layerStores().pipe(
        Layer.provide(Layer.succeed(Backup.Auditor, {
          record: (operation) => Ref.update(records, (all) => [...all, operation])
        }))
      )
      yield* Effect.gen(function*() {
        const backup = yield* Backup.Backup
        const manifest = yield* backup.create()
        yield* Effect.flip(backup.restore(manifest.id))
        yield* backup.verify(manifest.id)
      }).pipe(Effect.provide(layer))
      const all = yield* Ref.get(records)
      assert.deepStrictEqual(all.map((r) => [r.action, r.outcome]), [
        ["backup.create", "success"],
        ["backup.restore", "failure"],
        ["backup.verify", "success"]
      ])
      assert.strictEqual(all[0]?.backupId, all[2]?.backupId)
      assert.include(all[1]?.detail ?? "", "never verified")
    }))

  it.effect("prune keeps what the policy says and never the newest verified backup", () =>
    Effect.gen(function*() {
      const backup = yield* Backup.Backup
      const ids: Array<string> = []
      for (let day = 0; day < 5; day++) {
        yield* TestClock.setTime(day * 86_400_000 + 3_600_000)
        ids.push((yield* backup.create({ kind: "full" })).id)
        if (day === 1) yield* backup.verify(ids[1]!)
      }
      const result = yield* backup.prune
      // keepLast 2 → days 4, 3; newest verified → day 1; days 0 and 2 go.
      assert.deepStrictEqual(result.kept, [ids[4]!, ids[3]!, ids[1]!])
      assert.deepStrictEqual(result.removed, [ids[2]!, ids[0]!])
      assert.deepStrictEqual((yield* backup.list).map((i) => i.manifest.id), [ids[4]!, ids[3]!, ids[1]!])
    }).pipe(Effect.provide(layerStores({ retention: { keepLast: 2, keepDaily: 0, keepWeekly: 0 } }))), {
    timeout: 30_000
  })
})
