/**
 * A restore changes nothing unless it can complete: every file of the chain is checked (manifest, presence, size,
 * SHA-256, events, paths confined to the backup's directory) before the events are touched, the events are replaced
 * all or nothing, and the projection is reset consistently. Backups and restore scratch files are private (0600 and
 * 0700).
 */
import { assert, describe, it } from "@effect/vitest"
import { Checkpoints, EventStore } from "@ouroboros/event-store"
import { TenantId } from "@ouroboros/kernel"
import { Embedded, VectorStore } from "@ouroboros/vector-store"
import { Context, Effect, Layer, Ref, Stream } from "effect"
import { createHash } from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Backup, BackupSource, BackupTarget } from "../src/index.js"
import { tempDir } from "./helpers.js"

const tenants = [TenantId.make("acme"), TenantId.make("globex")] as const

const vector = (seed: number) => Array.from({ length: 8 }, (_, i) => Math.sin(seed * 7 + i) + 1.5)

/** One document of a tenant: its event, and its vector in the tenant's partition of `chunks`. */
const ingest = (tenant: TenantId.TenantId, id: string, seed: number) =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const vectors = yield* VectorStore.VectorStore
    yield* store.append(`tenant/${tenant}/document/${id}`, [
      { type: "DocumentIngested", data: { id, text: `text of ${id}` }, metadata: { tenantId: tenant } }
    ])
    yield* vectors.ensureCollection({ name: "chunks", dimensions: 8 })
    yield* vectors.upsert("chunks", tenant, [{ id, vector: vector(seed), payload: { id } }])
  })

/** What a failed restore must leave as it was: every tenant's events and searches, the vectors, the checkpoint. */
const state = Effect.gen(function*() {
  const store = yield* EventStore.EventStore
  const vectors = yield* VectorStore.VectorStore
  const checkpoints = yield* Checkpoints.Checkpoints
  const all = yield* Stream.runCollect(store.readAll())
  const searches: Record<string, ReadonlyArray<string>> = {}
  for (const tenant of tenants) {
    const hits = yield* vectors.search("chunks", tenant, { vector: vector(3), limit: 100 })
    searches[tenant] = hits.map((hit) => String(hit.payload.id))
  }
  return {
    events: createHash("sha256").update(all.map(Backup.eventLine).join("\n")).digest("hex"),
    perTenant: tenants.map((t) => all.filter((e) => e.tenantId === t).length),
    lastSequence: yield* store.lastSequence,
    searches,
    vectors: (yield* vectors.snapshot("chunks")).sha256,
    checkpoint: yield* checkpoints.get("vector-projection")
  }
})

/** A call of the Projections service, with the store's last sequence and the checkpoint at that moment. */
interface Call {
  readonly call: string
  readonly lastSequence: number
  readonly checkpoint: number
}

/** Test doubles around the stores: an import that fails after `failAfter` events, and recorded projection calls. */
class Probe extends Context.Service<Probe, {
  /** Imports fail once this many events went through (unset: never). */
  readonly failAfter: Ref.Ref<number | undefined>
  /** Each call of the Projections service, with the store's last sequence and the checkpoint at that moment. */
  readonly calls: Ref.Ref<ReadonlyArray<Call>>
}>()("test/Probe") {}

const layer = (options: { readonly resume?: boolean } = {}) =>
  Layer.unwrap(Effect.gen(function*() {
    const backups = yield* tempDir("restore-target")
    const vectorsDir = yield* tempDir("restore-vectors")
    const failAfter = yield* Ref.make<number | undefined>(undefined)
    const calls = yield* Ref.make<ReadonlyArray<Call>>([])
    // The memory store, whose import fails part way when the probe says so.
    const Events = Layer.effect(
      EventStore.EventStore,
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        return EventStore.EventStore.of({
          ...store,
          importEvents: (events, importOptions) =>
            Effect.suspend(() => {
              let seen = 0
              return store.importEvents(
                events.pipe(Stream.mapEffect((event) =>
                  Effect.flatMap(Ref.get(failAfter), (limit) =>
                    limit !== undefined && ++seen > limit
                      ? Effect.andThen(
                        Ref.set(failAfter, undefined), // once: putting the previous events back must work
                        Effect.fail(new EventStore.ImportConflict({ detail: `injected failure after ${limit} events` }))
                      )
                      : Effect.succeed(event))
                )),
                // Small batches: part of the events is written before the failure.
                { batchSize: Math.min(importOptions?.batchSize ?? 500, 10) }
              )
            })
        })
      })
    ).pipe(Layer.provide(EventStore.layerMemory()))
    const Projections = Layer.effect(
      Backup.Projections,
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const checkpoints = yield* Checkpoints.Checkpoints
        const record = (call: string) =>
          Effect.gen(function*() {
            const lastSequence = yield* store.lastSequence
            const checkpoint = yield* checkpoints.get("vector-projection")
            yield* Ref.update(calls, (all) => [...all, { call, lastSequence, checkpoint }])
          })
        return {
          rebuild: record("rebuild"),
          ...(options.resume === true ? { resume: (checkpoint: number) => record(`resume ${checkpoint}`) } : {})
        }
      })
    )
    const Stores = Layer.mergeAll(
      Events,
      Checkpoints.layerMemory,
      Embedded.layer({ directory: vectorsDir, fsync: false }),
      BackupTarget.layerDirectory(backups),
      BackupSource.layerRegistry
    )
    return Backup.layer().pipe(
      Layer.provideMerge(Projections),
      Layer.provideMerge(Stores),
      Layer.provideMerge(Layer.succeed(Probe, { failAfter, calls })),
      Layer.provideMerge(Layer.succeed(Directory, backups))
    )
  }))

class Directory extends Context.Service<Directory, string>()("test/RestoreDirectory") {}

/** Two tenants with documents, a full backup of them (verified), then more documents: the store is ahead of it. */
const setup = Effect.gen(function*() {
  const backup = yield* Backup.Backup
  const checkpoints = yield* Checkpoints.Checkpoints
  for (let i = 0; i < 30; i++) yield* ingest(tenants[i % 2]!, `d${i}`, i)
  yield* checkpoints.set("vector-projection", 30)
  const manifest = yield* backup.create()
  yield* backup.verify(manifest.id)
  for (let i = 30; i < 40; i++) yield* ingest(tenants[i % 2]!, `d${i}`, i)
  yield* checkpoints.set("vector-projection", 40)
  return { manifest, dir: Path.join(yield* Directory, manifest.id) }
})

type ManifestJson = { files: Array<Record<string, unknown>>; [key: string]: unknown }

const editManifest = (dir: string, edit: (manifest: ManifestJson) => void) => {
  const path = Path.join(dir, "manifest.json")
  const json = JSON.parse(Fs.readFileSync(path, "utf8"))
  edit(json)
  Fs.writeFileSync(path, JSON.stringify(json))
}

const eventsFile = (dir: string) => Fs.readdirSync(dir).find((f) => f.startsWith("events-"))!
const snapshotFile = (dir: string) => Fs.readdirSync(dir).find((f) => f.startsWith("vectors-"))!

/** Restores with force, expects the given error, and checks that nothing changed. */
const refused = (
  damage: (dir: string, id: string) => void,
  expected: { readonly tag: string; readonly detail: RegExp; readonly file?: (id: string) => string }
) =>
  Effect.gen(function*() {
    const backup = yield* Backup.Backup
    const { dir, manifest } = yield* setup
    damage(dir, manifest.id)
    const before = yield* state
    const error = yield* Effect.flip(backup.restore(manifest.id, { force: true }))
    assert.strictEqual(error._tag, expected.tag, "detail" in error ? error.detail : "")
    assert.match("detail" in error ? error.detail : "", expected.detail)
    if (expected.file !== undefined) {
      assert.include(error._tag === "BackupCorrupt" ? error.files : [], expected.file(manifest.id))
    }
    assert.deepStrictEqual(yield* state, before, "every tenant's events and searches are as they were")
    assert.deepStrictEqual(yield* Ref.get((yield* Probe).calls), [], "the projection was not touched")
  }).pipe(Effect.provide(layer()))

describe("Backup.restore checks everything before it changes anything", () => {
  it.effect("a manifest naming ../x (forced): 422, nothing emptied", () =>
    refused((dir) => {
      // A file the traversal would reach, with the content the manifest expects.
      Fs.copyFileSync(Path.join(dir, eventsFile(dir)), Path.join(dir, "..", "x"))
      editManifest(dir, (m) => {
        for (const f of m.files) if (String(f.source) === "events") f.name = "../x"
      })
    }, { tag: "BackupCorrupt", detail: /"\.\.\/x" is not a plain name/, file: (id) => `${id}/manifest.json` }))

  it.effect("a collection name that is a path: refused", () =>
    refused((dir) =>
      editManifest(dir, (m) => {
        for (const f of m.files) if (String(f.source).startsWith("vectors:")) f.source = "vectors:../../etc"
      }), { tag: "BackupCorrupt", detail: /collection name "\.\.\/\.\.\/etc" is not valid/ }))

  it.effect("a file that is a symbolic link out of the backup: refused", () =>
    refused((dir) => {
      const name = eventsFile(dir)
      const outside = Path.join(dir, "..", "outside.ndjson")
      Fs.renameSync(Path.join(dir, name), outside)
      Fs.symlinkSync(outside, Path.join(dir, name))
    }, { tag: "BackupCorrupt", detail: /not a regular file/, file: (id) => `${id}/events-1-30.ndjson` }))

  it.effect("a missing file: refused, naming it", () =>
    refused((dir) => Fs.rmSync(Path.join(dir, snapshotFile(dir))), {
      tag: "BackupCorrupt",
      detail: /vectors-chunks\.snapshot: missing/,
      file: (id) => `${id}/vectors-chunks.snapshot`
    }))

  it.effect("a wrong checksum (forced restores are checked too): refused", () =>
    refused((dir) => {
      const path = Path.join(dir, snapshotFile(dir))
      const bytes = Fs.readFileSync(path)
      bytes[bytes.length - 3] = bytes[bytes.length - 3]! ^ 0x01
      Fs.writeFileSync(path, bytes)
    }, { tag: "BackupCorrupt", detail: /SHA-256 mismatch/, file: (id) => `${id}/vectors-chunks.snapshot` }))

  it.effect("an event that does not decode, with a forged checksum: refused before the store is emptied", () =>
    refused((dir) => {
      const name = eventsFile(dir)
      const lines = Fs.readFileSync(Path.join(dir, name), "utf8").split("\n")
      lines[20] = lines[20]!.replace(/"version":\d+/, "\"version\":-5")
      const forged = Buffer.from(lines.join("\n"))
      Fs.writeFileSync(Path.join(dir, name), forged)
      editManifest(dir, (m) => {
        const entry = m.files.find((f) => f.name === name)!
        entry.sha256 = createHash("sha256").update(forged).digest("hex")
        entry.bytes = forged.byteLength
      })
    }, { tag: "BackupCorrupt", detail: /does not decode/ }))

  it.effect("an incremental backup whose parent is itself: refused, not an endless loop", () =>
    refused((dir, id) =>
      editManifest(dir, (m) => {
        m.kind = "incremental"
        m.parent = id
      }), { tag: "BackupCorrupt", detail: /the chain loops/ }))

  it.effect("an unreadable manifest: not a backup (404), nothing changed", () =>
    refused((dir) => Fs.writeFileSync(Path.join(dir, "manifest.json"), "{ not json"), {
      tag: "BackupNotFound",
      detail: /no backup has the id/
    }))

  it.effect("a failure midway through the event import: the previous events are put back", () =>
    Effect.gen(function*() {
      const backup = yield* Backup.Backup
      const probe = yield* Probe
      const { manifest } = yield* setup
      const before = yield* state
      yield* Ref.set(probe.failAfter, 15)
      const error = yield* Effect.flip(backup.restore(manifest.id))
      assert.strictEqual(error._tag, "RestoreFailed")
      assert.include(error._tag === "RestoreFailed" ? error.detail : "", "injected failure after 15 events")
      assert.deepStrictEqual(yield* state, before, "every tenant's events and searches are as they were")
      assert.deepStrictEqual(yield* Ref.get(probe.calls), [])
      // The store still works from where it was.
      const next = yield* (yield* EventStore.EventStore).append("tenant/acme/document/after", [{ type: "T", data: {} }])
      assert.strictEqual(next.firstSequence, before.lastSequence + 1)
    }).pipe(Effect.provide(layer())))

  it.effect("a point past the backup on a store that does not continue it: refused", () =>
    Effect.gen(function*() {
      const backup = yield* Backup.Backup
      const { manifest } = yield* setup
      // Back to an earlier point, then new events: sequences 21… now hold another history than the backup's.
      yield* backup.restore(manifest.id, { at: 20 })
      for (let i = 100; i < 115; i++) yield* ingest(tenants[i % 2]!, `n${i}`, i)
      const before = yield* state
      const error = yield* Effect.flip(backup.restore(manifest.id, { at: 33 }))
      assert.strictEqual(error._tag, "InvalidRestorePoint")
      assert.include(error._tag === "InvalidRestorePoint" ? error.detail : "", "does not continue backup")
      assert.deepStrictEqual(yield* state, before)
    }).pipe(Effect.provide(layer())))
})

describe("Backup.restore resets the projection consistently", () => {
  it.effect("rebuild: called once the events are restored, with the checkpoint at 0, never ahead", () =>
    Effect.gen(function*() {
      const backup = yield* Backup.Backup
      const probe = yield* Probe
      const { manifest } = yield* setup
      // An earlier point than the backup: the checkpoint (40) would be far ahead of the store (12).
      const result = yield* backup.restore(manifest.id, { at: 12 })
      assert.deepStrictEqual([result.vectors, result.lastSequence], ["rebuild", 12])
      assert.deepStrictEqual(yield* Ref.get(probe.calls), [{ call: "rebuild", lastSequence: 12, checkpoint: 0 }])
      assert.isAtMost(yield* (yield* Checkpoints.Checkpoints).get("vector-projection"), result.lastSequence)
    }).pipe(Effect.provide(layer())))

  it.effect("snapshot: refused unless the projection can resume; then resumed at the snapshots' checkpoint", () =>
    Effect.gen(function*() {
      const refusedRestore = yield* Effect.gen(function*() {
        const backup = yield* Backup.Backup
        const { manifest } = yield* setup
        const before = yield* state
        const error = yield* Effect.flip(backup.restore(manifest.id, { vectors: "snapshot" }))
        assert.deepStrictEqual(yield* state, before)
        return error
      }).pipe(Effect.provide(layer()))
      assert.strictEqual(refusedRestore._tag, "InvalidRestorePoint")
      yield* Effect.gen(function*() {
        const backup = yield* Backup.Backup
        const probe = yield* Probe
        const { manifest } = yield* setup
        const result = yield* backup.restore(manifest.id, { vectors: "snapshot" })
        assert.strictEqual(result.lastSequence, 30)
        assert.deepStrictEqual(yield* Ref.get(probe.calls), [{ call: "resume 30", lastSequence: 30, checkpoint: 30 }])
        // The documents ingested after the backup are no longer found.
        const vectors = yield* VectorStore.VectorStore
        const hits = yield* vectors.search("chunks", tenants[0], { vector: vector(3), limit: 100 })
        assert.isFalse(hits.some((hit) => Number(String(hit.payload.id).slice(1)) >= 30))
      }).pipe(Effect.provide(layer({ resume: true })))
    }))
})

describe("backups and restore scratch files are private", () => {
  const mode = (path: string) => Fs.statSync(path).mode & 0o777

  it.effect("directories 0700, files 0600 (manifest, events, snapshots, verification), whatever the umask", () =>
    Effect.gen(function*() {
      const previous = process.umask(0)
      yield* Effect.addFinalizer(() => Effect.sync(() => process.umask(previous)))
      const parent = yield* tempDir("modes")
      const root = Path.join(parent, "backups")
      yield* Effect.gen(function*() {
        const backup = yield* Backup.Backup
        const { dir, manifest } = yield* setup
        yield* backup.verify(manifest.id)
        assert.strictEqual(mode(root), 0o700, "the backup directory it created")
        assert.strictEqual(mode(dir), 0o700)
        const files = Fs.readdirSync(dir)
        assert.includeMembers(files, [
          "manifest.json",
          "verification.json",
          "events-1-30.ndjson",
          "vectors-chunks.snapshot"
        ])
        for (const file of files) assert.strictEqual(mode(Path.join(dir, file)), 0o600, file)

        // A point in time past the backup saves the events to replay in a scratch directory while the restore runs.
        const seen: Array<readonly [string, number]> = []
        const before = new Set(Fs.readdirSync(Os.tmpdir()))
        yield* backup.restore(manifest.id, {
          at: 35,
          onProgress: (p) =>
            Effect.sync(() => {
              if (p.phase !== "events" || seen.length > 0) return
              for (const name of Fs.readdirSync(Os.tmpdir())) {
                if (!name.startsWith("ouroboros-restore-") || before.has(name)) continue
                const scratch = Path.join(Os.tmpdir(), name)
                seen.push([name, mode(scratch)])
                for (const file of Fs.readdirSync(scratch).sort()) seen.push([file, mode(Path.join(scratch, file))])
              }
            })
        })
        assert.deepStrictEqual(seen.map(([name, m]) => [name.startsWith("ouroboros-restore-") ? "dir" : name, m]), [
          ["dir", 0o700],
          ["previous-events.ndjson", 0o600],
          ["replay.ndjson", 0o600]
        ])
        assert.isFalse(Fs.existsSync(Path.join(Os.tmpdir(), seen[0]![0])), "removed after the restore")
      }).pipe(
        Effect.provide(
          Backup.layer().pipe(
            Layer.provideMerge(Layer.mergeAll(
              EventStore.layerMemory(),
              Checkpoints.layerMemory,
              Embedded.layer({ directory: Path.join(parent, "vectors"), fsync: false }),
              BackupTarget.layerDirectory(root),
              BackupSource.layerRegistry
            )),
            Layer.provideMerge(Layer.succeed(Directory, root))
          )
        )
      )
    }).pipe(Effect.scoped))
})
