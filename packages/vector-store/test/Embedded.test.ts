import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Option, Scope } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { type ScoredPoint, VectorStore } from "../src/VectorStore.js"
import * as Embedded from "../src/VectorStore/Embedded.js"
import { acme, contract, fresh, globex, tilted } from "./contract.js"

const tempDir = Effect.acquireRelease(
  Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "ouroboros-vs-"))),
  (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
)

contract(
  "embedded",
  Layer.unwrap(Effect.map(tempDir, (directory) => Embedded.layer({ directory, compactAfterBytes: 4096 })))
)

/** Opens a store over `directory`, runs `f`, closes it. */
const withStore = <A, E>(
  directory: string,
  f: (store: VectorStore["Service"]) => Effect.Effect<A, E>,
  options: Partial<Embedded.Options> = {}
) => Effect.scoped(Effect.flatMap(Embedded.make({ directory, ...options }), f))

const walOf = async (dir: string) => {
  const files = await fs.readdir(dir)
  const wal = files.find((f) => f.startsWith("wal-"))
  assert.isDefined(wal)
  return path.join(dir, wal!)
}

describe("Embedded store durability", () => {
  it.effect("reopens with every acknowledged write, across compactions", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const name = fresh()
      yield* withStore(directory, (store) =>
        Effect.gen(function*() {
          yield* store.ensureCollection({ name, dimensions: 4, embedder: "m" })
          for (let i = 0; i < 50; i++) {
            yield* store.upsert(name, acme, [{ id: `p${i}`, vector: tilted(4, i, 0.01 * i), payload: { i } }])
          }
          yield* store.delete(name, acme, { ids: ["p0", "p1"] })
          yield* store.upsert(name, globex, [{ id: "p2", vector: tilted(4, 0, 0), payload: { g: true } }])
        }), { compactAfterBytes: 512 })
      const files = yield* Effect.promise(() => fs.readdir(path.join(directory, name)))
      assert.isTrue(files.includes("snapshot"))
      assert.isFalse(files.includes("wal-1.log"), "compaction moved to a later generation")
      const reopened = yield* withStore(directory, (store) =>
        Effect.gen(function*() {
          const info = yield* store.collectionInfo(name)
          const acmeCount = yield* store.count(name, acme)
          const hit = yield* store.search(name, globex, { vector: tilted(4, 0, 0), limit: 1 })
          const p10 = yield* store.search(name, acme, {
            vector: tilted(4, 10, 0.1),
            limit: 1,
            filter: { must: [{ key: "i", match: { value: 10 } }] }
          })
          return { info, acmeCount, hit, p10 }
        }))
      assert.isTrue(Option.isSome(reopened.info))
      assert.strictEqual(Option.getOrThrow(reopened.info).embedder, "m")
      assert.strictEqual(Option.getOrThrow(reopened.info).count, 49)
      assert.strictEqual(reopened.acmeCount, 48)
      assert.deepStrictEqual(reopened.hit.map((h) => [h.id, h.payload]), [["p2", { g: true }]])
      assert.isTrue(Math.abs(reopened.p10[0]!.score - 1) < 1e-6)
    }))

  it.effect("ignores a torn tail record and keeps appending after the valid prefix", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const name = fresh()
      yield* withStore(directory, (store) =>
        Effect.gen(function*() {
          yield* store.ensureCollection({ name, dimensions: 4 })
          yield* store.upsert(name, acme, [{ id: "a", vector: [1, 0, 0, 0], payload: {} }])
          yield* store.upsert(name, acme, [{ id: "b", vector: [0, 1, 0, 0], payload: {} }])
        }))
      const wal = yield* Effect.promise(() => walOf(path.join(directory, name)))
      const bytes = yield* Effect.promise(() => fs.readFile(wal))
      // Cut the last record in half, as a crash in the middle of a write would.
      yield* Effect.promise(() => fs.truncate(wal, bytes.length - 10))
      yield* withStore(directory, (store) =>
        Effect.gen(function*() {
          assert.strictEqual(yield* store.count(name, acme), 1)
          yield* store.upsert(name, acme, [{ id: "c", vector: [0, 0, 1, 0], payload: {} }])
        }))
      // A flipped bit in a record is detected by its CRC.
      const count = yield* withStore(directory, (store) => store.count(name, acme))
      assert.strictEqual(count, 2)
      const again = yield* Effect.promise(() => fs.readFile(wal))
      again[again.length - 5] = again[again.length - 5]! ^ 0xff
      yield* Effect.promise(() => fs.writeFile(wal, again))
      assert.strictEqual(yield* withStore(directory, (store) => store.count(name, acme)), 1)
    }))

  it.effect("a corrupt snapshot file fails loudly instead of loading partial data", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const name = fresh()
      yield* withStore(directory, (store) => store.ensureCollection({ name, dimensions: 4 }))
      const file = path.join(directory, name, "snapshot")
      const bytes = yield* Effect.promise(() => fs.readFile(file))
      bytes[10] = bytes[10]! ^ 0xff
      yield* Effect.promise(() => fs.writeFile(file, bytes))
      const exit = yield* Effect.exit(withStore(directory, () => Effect.void))
      assert.isTrue(Exit.isFailure(exit))
    }))

  it.effect("drop leaves nothing that reloads; leftovers of an interrupted drop are cleaned", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const name = fresh()
      yield* withStore(
        directory,
        (store) => Effect.andThen(store.ensureCollection({ name, dimensions: 4 }), store.drop(name))
      )
      yield* Effect.promise(() => fs.mkdir(path.join(directory, `${name}.dropped-1234`)))
      const listed = yield* withStore(directory, (store) => store.listCollections)
      assert.deepStrictEqual(listed, [])
      assert.deepStrictEqual(yield* Effect.promise(() => fs.readdir(directory)), [])
    }))

  it.effect(
    "kill -9 at any moment leaves whole batches: a prefix of the writes, never a partial one",
    () =>
      Effect.gen(function*() {
        const directory = yield* tempDir
        const name = "crash"
        const batch = 7
        const dims = 16
        const page = 5_000
        const writer = fileURLToPath(new URL("./fixtures/crash-writer.ts", import.meta.url))
        let acknowledged = 0
        for (const delay of [150, 600, 300]) {
          // The child resumes after what previous rounds left and writes batches until it is killed.
          const acked = yield* Effect.promise(() =>
            new Promise<number>((resolve, reject) => {
              const child = spawn(process.execPath, [
                "--import",
                "tsx",
                writer,
                directory,
                name,
                String(batch),
                String(dims)
              ], {
                stdio: ["ignore", "pipe", "inherit"]
              })
              let last = -1
              let buffered = ""
              let timer: NodeJS.Timeout | undefined
              child.stdout.on("data", (chunk: Buffer) => {
                buffered += chunk.toString("utf8")
                const lines = buffered.split("\n")
                buffered = lines.pop()!
                for (const line of lines) {
                  if (line === "ready") timer = setTimeout(() => child.kill("SIGKILL"), delay)
                  else if (/^\d+$/.test(line)) last = Number(line)
                }
              })
              child.once("error", reject)
              // `close`, not `exit`: `exit` may come before the last acknowledgements still in the pipe have been read (a
              // busy machine reads them late), and a missed one would make the batch count look too high.
              child.once("close", (_code, signal) => {
                if (timer !== undefined) clearTimeout(timer)
                if (signal !== "SIGKILL") reject(new Error(`writer exited without being killed (${signal})`))
                else resolve(last)
              })
            })
          )
          const state = yield* withStore(directory, (store) =>
            Effect.gen(function*() {
              const total = yield* store.count(name, acme)
              // A search returns at most 10,000 hits, and a fast writer leaves more points than that: read them in
              // pages of `i`. A point whose payload lost or changed its `i` is in no page, so it shows up as missing.
              const hits: Array<ScoredPoint> = []
              for (let from = 0; from < total; from += page) {
                hits.push(
                  ...yield* store.search(name, acme, {
                    vector: tilted(dims, 0, 0),
                    limit: page,
                    filter: { must: [{ key: "i", range: { gte: from, lt: from + page } }] }
                  })
                )
              }
              return { total, hits }
            }))
          // Every acknowledged batch is there, plus at most the one in flight, and only whole batches.
          const lower = Math.max(acknowledged, (acked + 1) * batch)
          assert.isAtLeast(state.total, lower)
          assert.isAtMost(state.total, lower + batch)
          assert.strictEqual(state.total % batch, 0, `${state.total} is not a whole number of batches`)
          const seen = new Set(state.hits.map((h) => h.id))
          for (let i = 0; i < state.total; i++) assert.isTrue(seen.has(`p${i}`), `point p${i} is missing`)
          for (const hit of state.hits) {
            const i = Number(hit.id.slice(1))
            assert.deepStrictEqual(hit.payload, { i, text: `chunk ${i} `.repeat(8), batch: Math.floor(i / batch) })
            // The vector is whole too: its cosine with the first axis is known.
            const expected = 1 / Math.sqrt(1 + (0.001 * (i + 1)) ** 2)
            assert.isTrue(Math.abs(hit.score - expected) < 1e-5, `vector of p${i}`)
          }
          acknowledged = state.total
        }
        assert.isAbove(acknowledged, 0, "the writer made progress")
      }),
    { timeout: 60_000 }
  )
})

describe("Embedded store basics", () => {
  it.effect("restore refuses bytes of another format; snapshots carry their SHA-256", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const scope = yield* Scope.make()
      const store = yield* Scope.provide(scope)(Embedded.make({ directory }))
      const name = fresh()
      yield* store.ensureCollection({ name, dimensions: 2 })
      yield* store.upsert(name, acme, [{ id: "x", vector: new Float32Array([3, 4]), payload: { k: "v" } }])
      const snap = yield* store.snapshot(name)
      assert.strictEqual(snap.format, Embedded.format)
      const tampered = new Uint8Array(snap.bytes)
      tampered[tampered.length - 12] = tampered[tampered.length - 12]! ^ 1
      const error = yield* Effect.flip(store.restore(name, tampered))
      assert.strictEqual(error._tag, "VectorStoreError")
      assert.strictEqual(error.reason, "Corrupt")
      const nan = yield* Effect.flip(store.upsert(name, acme, [{ id: "n", vector: [NaN, 1], payload: {} }]))
      assert.strictEqual(nan._tag, "VectorStoreError")
      yield* Scope.close(scope, Exit.void)
    }))
})
