/**
 * The contract every store of the audit log meets (memory, PGlite, PostgreSQL): one suite, run per backend. Each
 * test gets a fresh store; the log over it is built in the test.
 */
import { assert, describe, layer } from "@effect/vitest"
import {
  AuditEvent,
  AuditKeys,
  AuditLog,
  AuditStore,
  Checkpoint,
  Merkle,
  merkleTreeHash,
  Verifier
} from "@ouroboros/audit"
import { RequestContext } from "@ouroboros/kernel"
import {
  Cause,
  Clock,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Logger,
  Metric,
  Result,
  Scope,
  Stream
} from "effect"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import { randomUUID } from "node:crypto"

export const origin = "test.example/audit"
export const keys = AuditKeys.generate(origin)
export const verifier = Checkpoint.verifierOf(keys.signer)

const b64 = (text: string) => new Uint8Array(Buffer.from(text, "base64"))
const utf8 = (text: string) => new TextEncoder().encode(text)

export const actorOf = (subject: string, tenantId = "acme", roles: ReadonlyArray<string> = ["writer"]) =>
  AuditEvent.actorOf({ tenantId, subject, roles }, { clientAddress: "192.0.2.7", userAgent: "test-agent/1.0" })

export const event = (
  overrides: Partial<AuditEvent.AuditEvent> & { readonly subject?: string; readonly tenant?: string } = {}
): AuditEvent.AuditEvent => {
  const { subject, tenant, ...rest } = overrides
  return {
    type: "data.create",
    actor: actorOf(subject ?? "alice", tenant ?? "acme"),
    action: "documents.create",
    resource: { type: "document", id: randomUUID() },
    outcome: "success",
    ...rest
  }
}

/** A log over the store in context, alive for the current scope. */
export const openLog = (options: Partial<AuditLog.Options> = {}) =>
  AuditLog.make({ keys, origin, checkpointInterval: 0, ...options })

/** Every stored entry's content, in order (pruned ones missing), from an export. */
export const exported = (log: AuditLog.AuditLog["Service"]) =>
  Effect.map(Stream.runCollect(log.export), (lines) => Array.from(lines).map((line) => JSON.parse(line)))

/**
 * Verifies the store on one thread and with the hashing on a worker, in windows of 4 positions so that every window
 * boundary is crossed: the two results must be identical. Returns the result.
 */
const verifyBothWays = Effect.gen(function*() {
  const store = yield* AuditStore.AuditStore
  const options = { verifier, verifierKey: keys.signer.verifierKey, origin, windowSize: 4 }
  const serial = yield* Verifier.verifyStore(store, { ...options, parallel: false })
  const parallel = yield* Verifier.verifyStore(store, { ...options, parallel: true })
  assert.deepStrictEqual(parallel, serial)
  // Roots the caller trusts, one of them wrong, inside a window and at its end: the same reports too.
  const latest = yield* store.latestCheckpoint
  const wrongAt = Math.min(3, serial.size)
  const trustedRoots = [
    { size: wrongAt, rootHash: new Uint8Array(32) },
    ...(latest === undefined || latest.size === wrongAt ? [] : [{ size: latest.size, rootHash: latest.rootHash }])
  ]
  const serialTrusting = yield* Verifier.verifyStore(store, { ...options, trustedRoots, parallel: false })
  const parallelTrusting = yield* Verifier.verifyStore(store, { ...options, trustedRoots, parallel: true })
  assert.deepStrictEqual(parallelTrusting, serialTrusting)
  if (serial.size >= 3) assert.isTrue(serialTrusting.problems.some((p) => p.kind === "RootMismatch"))
  return serial
}).pipe(Effect.orDie)

const metricCount = (metric: Metric.Metric<number, { readonly count: number }>) =>
  Effect.map(Metric.value(metric), (state) => Number(state.count))

/**
 * The store in context, with its appends (those with entries) in the order a database gives them: each waits until
 * the one called before it has finished, as `audit_append`'s lock makes them. Once `arm`ed, the first append is held
 * as `first` says: until the second has entered (both are then in flight), until the second has been answered (the
 * second reaches the store first and finds the log shorter than it expects), or until `release`; with `fail`, the
 * held append then fails instead, after `meanwhile` (another replica appending, say) has run. Each append records
 * whether it carried a checkpoint and whether another was in progress when it started.
 */
const orderedStore = (first: {
  readonly until: "second-entered" | "second-answered" | "released"
  readonly fail?: boolean
  readonly meanwhile?: Effect.Effect<unknown>
}) =>
  Effect.gen(function*() {
    const store = yield* AuditStore.AuditStore
    const secondEntered = yield* Deferred.make<void>()
    const secondAnswered = yield* Deferred.make<void>()
    const firstEntered = yield* Deferred.make<void>()
    const released = yield* Deferred.make<void>()
    const started: Array<{ readonly checkpoint: boolean; readonly overlapping: boolean; readonly size: number }> = []
    let inProgress = 0
    let armed = false
    let calls = 0
    let previous: Deferred.Deferred<void> | undefined
    const outcomes: Array<string> = []
    const ordered = AuditStore.AuditStore.of({
      ...store,
      append: (batch) =>
        Effect.suspend(() => {
          if (batch.entries.length === 0) return store.append(batch)
          const before = previous
          const done = Deferred.makeUnsafe<void>()
          previous = done
          const call = armed ? ++calls : 0
          if (armed) {
            started.push({
              checkpoint: batch.checkpoint !== undefined,
              overlapping: inProgress > 0,
              size: batch.entries.length
            })
          }
          inProgress++
          const ordered = call === 1
            ? Effect.andThen(
              Deferred.succeed(firstEntered, undefined),
              Effect.andThen(
                Deferred.await(
                  first.until === "second-entered"
                    ? secondEntered
                    : first.until === "second-answered"
                    ? secondAnswered
                    : released
                ),
                Effect.andThen(
                  first.meanwhile ?? Effect.void,
                  first.fail === true
                    ? Effect.fail(new AuditStore.AuditStoreError({ operation: "append", message: "connection lost" }))
                    : store.append(batch)
                )
              )
            )
            : call === 2
            ? Effect.andThen(
              Deferred.succeed(secondEntered, undefined),
              Effect.andThen(
                first.until === "second-entered" && before !== undefined ? Deferred.await(before) : Effect.void,
                store.append(batch)
              )
            )
            : Effect.andThen(before === undefined ? Effect.void : Deferred.await(before), store.append(batch))
          return ordered.pipe(
            Effect.tap((outcome) => Effect.sync(() => outcomes.push(`${call}:${outcome._tag}`))),
            Effect.tapError(() => Effect.sync(() => outcomes.push(`${call}:failed`))),
            Effect.ensuring(Effect.suspend(() => {
              inProgress--
              return Effect.andThen(
                Deferred.succeed(done, undefined),
                call === 2 ? Deferred.succeed(secondAnswered, undefined) : Effect.void
              )
            }))
          )
        })
    })
    return {
      store: ordered,
      arm: Effect.sync(() => {
        armed = true
      }),
      firstEntered: Deferred.await(firstEntered),
      secondEntered: Deferred.await(secondEntered),
      release: Deferred.succeed(released, undefined),
      started: () => started,
      outcomes: () => outcomes.filter((o) => !o.startsWith("0:"))
    }
  })

/**
 * Appends `n` events through two logs on one store (replicas), every `everyA`-th through `a`: every append lands once,
 * at consecutive positions, and both logs sign the same root of them all.
 */
const interleave = (
  a: AuditLog.AuditLog["Service"],
  b: AuditLog.AuditLog["Service"],
  options: { readonly n: number; readonly concurrency: number; readonly everyA: number }
) =>
  Effect.gen(function*() {
    const results = yield* Effect.forEach(
      Array.from({ length: options.n }, (_, i) => i),
      (i) => (i % options.everyA === 0 ? a : b).append(event({ resource: { type: "document", id: `r${i}` } })),
      { concurrency: options.concurrency }
    )
    assert.deepStrictEqual(
      results.map((r) => r.index).sort((x, y) => x - y),
      Array.from({ length: options.n }, (_, i) => i)
    )
    const fromA = yield* a.checkpoint
    const fromB = yield* b.checkpoint
    assert.strictEqual(fromA.size, options.n)
    assert.strictEqual(fromA.rootHash, fromB.rootHash)
    return { results, fromB }
  })

export interface ContractOptions {
  /** The store is SQL: its client is in context (the tamper tests use it). */
  readonly sql: boolean
  /** How many appends run at once in the concurrency tests. */
  readonly concurrency: number
}

/**
 * Runs the contract: `base` is built once per file (a database), `store` once per test (a fresh store on it).
 */
export const testStore = <RB, RS>(
  name: string,
  base: Layer.Layer<RB>,
  store: Layer.Layer<AuditStore.AuditStore | RS, never, RB>,
  options: ContractOptions
) => {
  layer(base, { timeout: "120 seconds" })(name, (it) => {
    it.layer(store, { buildPerTest: true })((it) => {
      describe("store", () => {
        it.effect("appends at the expected size, or says how far behind the writer is", () =>
          Effect.gen(function*() {
            const store = yield* AuditStore.AuditStore
            const entry = (index: number, content = `{"n":${index}}`): AuditStore.NewEntry => ({
              index,
              id: randomUUID(),
              time: 1_000 + index,
              type: "data.read",
              tenantId: index % 2 === 0 ? "acme" : null,
              keyId: randomUUID(),
              action: "a",
              resourceType: "document",
              resourceId: index % 3 === 0 ? null : `d${index}`,
              outcome: "success",
              correlationId: null,
              content,
              leafHash: Merkle.leafHash(utf8(content))
            })
            const first = [entry(0), entry(1), entry(2)]
            assert.deepStrictEqual(yield* store.append({ expectedSize: 0, entries: first }), { _tag: "Appended" })
            assert.deepStrictEqual(yield* store.append({ expectedSize: 1, entries: [entry(1)] }), {
              _tag: "Behind",
              size: 3
            })
            assert.strictEqual(yield* store.size, 3)
            assert.deepStrictEqual(yield* store.extent, { from: 0, to: 3 })
            const hashes = yield* store.leafHashes(1, 3)
            assert.deepStrictEqual(hashes.map((h) => Buffer.from(h).toString("hex")), [
              Buffer.from(first[1]!.leafHash).toString("hex"),
              Buffer.from(first[2]!.leafHash).toString("hex")
            ])
            const stored = yield* store.entryAt(1)
            assert.strictEqual(stored?.id, first[1]!.id)
            assert.strictEqual(stored?.tenantId, null)
            assert.strictEqual(stored?.time, 1_001)
            assert.strictEqual((yield* store.entryById(first[2]!.id))?.index, 2)
            assert.isUndefined(yield* store.entryById("not-a-uuid"))
            const root = Merkle.rootFromLeafHashes(first.map((e) => e.leafHash))
            yield* store.append({ expectedSize: 3, entries: [], checkpoint: { size: 3, rootHash: root, note: "n3" } })
            const window = yield* store.window(0, 3)
            assert.strictEqual(window.leaves.length, 3)
            assert.deepStrictEqual(window.entries.map((e) => e.content), first.map((e) => e.content))
            assert.deepStrictEqual(window.checkpoints.map((c) => c.size), [3])
            assert.strictEqual((yield* store.latestCheckpoint)?.note, "n3")
            const acme = yield* store.query({ tenantId: "acme", limit: 10 })
            assert.deepStrictEqual(acme.map((e) => e.index), [2, 0])
            assert.deepStrictEqual((yield* store.query({ before: 2, limit: 10 })).map((e) => e.index), [1, 0])
            assert.deepStrictEqual(
              (yield* store.query({ from: 1_001, to: 1_002, limit: 10 })).map((e) => e.index),
              [1]
            )
          }))

        it.effect("keeps one key per subject and tenant; destroys one only under an erasure entry naming it", () =>
          Effect.gen(function*() {
            const store = yield* AuditStore.AuditStore
            const ref = new Uint8Array(32).fill(1)
            const key = (tenantId: string) => ({
              keyId: randomUUID(),
              tenantId,
              subjectRef: ref,
              wrappedKey: new Uint8Array([1, 2, 3])
            })
            const [a] = yield* store.ensureKeys([key("acme")])
            const [again] = yield* store.ensureKeys([key("acme")])
            assert.strictEqual(again!.keyId, a!.keyId)
            const [b] = yield* store.ensureKeys([key("globex")])
            assert.notStrictEqual(b!.keyId, a!.keyId)
            assert.strictEqual((yield* store.findKeys(ref)).length, 2)
            assert.deepStrictEqual((yield* store.findKeys(ref, "globex")).map((k) => k.keyId), [b!.keyId])
            // No erasure entry at 0: refused.
            assert.isTrue(Exit.isFailure(yield* Effect.exit(store.destroyKey(a!.keyId, 0))))
            const content = JSON.stringify({ details: { keyIds: [a!.keyId] } })
            yield* store.append({
              expectedSize: 0,
              entries: [{
                index: 0,
                id: randomUUID(),
                time: 0,
                type: "retention.erasure",
                tenantId: null,
                keyId: null,
                action: "subject.erase",
                resourceType: "data-subject",
                resourceId: null,
                outcome: "success",
                correlationId: null,
                content,
                leafHash: Merkle.leafHash(utf8(content))
              }]
            })
            assert.isTrue(Exit.isFailure(yield* Effect.exit(store.destroyKey(b!.keyId, 0))), "not named by it")
            assert.isTrue(yield* store.destroyKey(a!.keyId, 0))
            assert.deepStrictEqual((yield* store.keysById([a!.keyId, b!.keyId])).map((k) => k.keyId), [b!.keyId])
          }))
      })

      describe("append and record", () => {
        it.effect("concurrent appends get consecutive positions and share commits", () =>
          Effect.gen(function*() {
            const log = yield* openLog()
            const n = options.concurrency * 4
            const results = yield* Effect.forEach(
              Array.from({ length: n }, (_, i) => i),
              (i) => log.append(event({ resource: { type: "document", id: `d${i}` } })),
              { concurrency: options.concurrency }
            )
            assert.deepStrictEqual(
              results.map((r) => r.index).sort((a, b) => a - b),
              Array.from({ length: n }, (_, i) => i)
            )
            assert.strictEqual(new Set(results.map((r) => r.id)).size, n)
            // With a checkpoint per commit, fewer checkpoints than appends means commits were shared.
            const store = yield* AuditStore.AuditStore
            const commits = (yield* store.checkpoints()).length
            assert.isBelow(commits, n)
            assert.strictEqual(yield* log.size, n)
          }))

        it.effect("two logs on one store (replicas) interleave: every append lands once, the tree stays one", () =>
          Effect.gen(function*() {
            const a = yield* openLog()
            const b = yield* openLog()
            const { fromB, results } = yield* interleave(a, b, { n: 60, concurrency: 8, everyA: 2 })
            // Each sees the other's entries in its proofs.
            const proof = yield* b.proveInclusion({ id: results[0]!.id })
            assert.isTrue(
              Merkle.verifyInclusion(
                proof.index,
                proof.treeSize,
                b64(proof.leafHash),
                proof.proof.map(b64),
                b64(fromB.rootHash)
              )
            )
            const result = yield* a.verify()
            assert.isTrue(result.ok, JSON.stringify(result.problems))
          }))

        describe("pipelined commits", () => {
          // Appends with commits in flight: a checkpoint is due only once an hour, so commits do not wait for each
          // other to sign one.
          const pipelined = (ordered: AuditStore.AuditStore["Service"]) =>
            openLog({ checkpointInterval: "1 hour", commitsInFlight: 2 }).pipe(
              Effect.provideService(AuditStore.AuditStore, ordered)
            )
          // A pipelined log over `ordered` with one entry, whose next append is then held in the store: `held` is its
          // result (`heldExit` its exit, for one meant to fail).
          const holdFirst = (ordered: Effect.Success<ReturnType<typeof orderedStore>>) =>
            Effect.gen(function*() {
              const log = yield* pipelined(ordered.store)
              yield* log.append(event())
              yield* ordered.arm
              const fiber = yield* Effect.forkChild(Effect.exit(log.append(event())))
              yield* ordered.firstEntered
              const heldExit = Fiber.join(fiber)
              return { log, heldExit, held: Effect.flatten(heldExit) }
            })
          const appendSome = (log: AuditLog.AuditLog["Service"], n: number) =>
            Effect.forEach(
              Array.from({ length: n }, (_, i) => i),
              () => log.append(event()),
              { concurrency: n }
            )

          it.effect("the next group is sent while the one before commits; the store orders them", () =>
            Effect.gen(function*() {
              const ordered = yield* orderedStore({ until: "second-entered" })
              // The first group is held until the second reaches the store: this passes only if both are in flight.
              const { held: first, log } = yield* holdFirst(ordered)
              const rest = yield* appendSome(log, 3)
              const held = yield* first
              assert.deepStrictEqual(ordered.outcomes().slice(0, 2), ["1:Appended", "2:Appended"])
              assert.deepStrictEqual(
                [held, ...rest].map((r) => r.index).sort((a, b) => a - b),
                [1, 2, 3, 4]
              )
              assert.strictEqual(held.index, 1)
              const result = yield* log.verify()
              assert.isTrue(result.ok, JSON.stringify(result.problems))
            }))

          it.effect("a group that reaches the store before the one sent ahead of it is appended again after it", () =>
            Effect.gen(function*() {
              const ordered = yield* orderedStore({ until: "second-answered" })
              const { held: first, log } = yield* holdFirst(ordered)
              const rest = yield* appendSome(log, 3)
              const held = yield* first
              // The second found the log one entry short, the first then landed, and the second went in after it.
              assert.deepStrictEqual(ordered.outcomes().slice(0, 3), ["2:Behind", "1:Appended", "3:Appended"])
              assert.strictEqual(held.index, 1)
              assert.deepStrictEqual(rest.map((r) => r.index).sort((a, b) => a - b), [2, 3, 4])
              const result = yield* log.verify()
              assert.isTrue(result.ok, JSON.stringify(result.problems))
            }))

          it.effect("when the group ahead fails and a replica appends as many entries meanwhile, the next group lands after them and the tree is the store's", () =>
            Effect.gen(function*() {
              const replica = yield* openLog({ checkpointInterval: "1 hour" })
              const ordered = yield* orderedStore({
                until: "second-entered",
                fail: true,
                // The replica takes the failed group's position: the next group finds the log exactly as long as it
                // expected, but not with the entries this writer assumed.
                meanwhile: Effect.orDie(replica.append(event({ subject: "replica" })))
              })
              const { heldExit, log } = yield* holdFirst(ordered)
              const rest = yield* appendSome(log, 3)
              const failed = yield* heldExit
              assert.isTrue(Exit.isFailure(failed) && Cause.squash(failed.cause) instanceof AuditLog.AuditUnavailable)
              assert.deepStrictEqual(ordered.outcomes().slice(0, 2), ["1:failed", "2:Appended"])
              assert.deepStrictEqual(rest.map((r) => r.index).sort((a, b) => a - b), [2, 3, 4])
              assert.strictEqual(yield* log.size, 5)
              // The writer's tree took the replica's entry: what it signs now is the store's root.
              const signed = yield* log.checkpoint
              assert.strictEqual(signed.size, 5)
              assert.strictEqual(signed.rootHash, (yield* replica.checkpoint).rootHash)
              const result = yield* log.verify()
              assert.isTrue(result.ok, JSON.stringify(result.problems))
            }))

          it.effect("a group whose entries a catch-up already read into the tree is not added to it again", () =>
            Effect.gen(function*() {
              const replica = yield* openLog({ checkpointInterval: "1 hour" })
              // The first group is held until the second has been answered.
              const ordered = yield* orderedStore({ until: "second-answered" })
              const { held: first, log } = yield* holdFirst(ordered)
              // A replica takes the held group's position; the second group, sent after it, then lands at once.
              const other = yield* replica.append(event({ subject: "replica" }))
              const [second] = yield* appendSome(log, 1)
              // The first finds the log two entries further: it reads both into the tree (the second's included)
              // and goes in after them. The second's own outcome is handled after it and must not add it twice.
              const held = yield* first
              assert.deepStrictEqual(ordered.outcomes().slice(0, 3), ["2:Appended", "1:Behind", "3:Appended"])
              assert.deepStrictEqual([other.index, second!.index, held.index], [1, 2, 3])
              assert.strictEqual(yield* log.size, 4)
              const signed = yield* log.checkpoint
              assert.strictEqual(signed.size, 4)
              assert.strictEqual(signed.rootHash, (yield* replica.checkpoint).rootHash)
              const result = yield* log.verify()
              assert.isTrue(result.ok, JSON.stringify(result.problems))
            }))

          it.effect("a checkpoint due while a commit is in flight waits for it: a signed root never assumes a commit that may fail", () =>
            Effect.gen(function*() {
              const store = yield* AuditStore.AuditStore
              const ordered = yield* orderedStore({ until: "released", fail: true })
              const { heldExit, log } = yield* holdFirst(ordered)
              yield* TestClock.adjust("2 hours")
              const rest = yield* Effect.forkChild(appendSome(log, 3))
              // Turns for the next group to be encoded and sent, which must not send it ahead with a checkpoint.
              for (let i = 0; i < 100; i++) yield* Effect.yieldNow
              yield* ordered.release
              assert.isTrue(Exit.isFailure(yield* heldExit))
              assert.deepStrictEqual((yield* Fiber.join(rest)).map((r) => r.index).sort((a, b) => a - b), [1, 2, 3])
              // The group after the failed one carried the due checkpoint, and was sent only once nothing was in
              // flight before it.
              const started = ordered.started()
              assert.isTrue(started.some((c) => c.checkpoint), JSON.stringify(started))
              assert.isFalse(started.some((c) => c.checkpoint && c.overlapping), JSON.stringify(started))
              assert.isTrue((yield* store.checkpoints()).some((c) => c.size === 4))
              const result = yield* log.verify()
              assert.isTrue(result.ok, JSON.stringify(result.problems))
            }))

          it.effect("events that arrive while every commit is in flight wait for one to settle, and go in one group", () =>
            Effect.gen(function*() {
              const ordered = yield* orderedStore({ until: "released" })
              const { held: first, log } = yield* holdFirst(ordered)
              // The second commit: both are in flight now (the second's outcome waits behind the held first).
              const second = yield* Effect.forkChild(appendSome(log, 1))
              yield* ordered.secondEntered
              // Three reads, each given a turn to be taken: none may start a group while no commit is free.
              for (let i = 0; i < 3; i++) {
                yield* log.record(event({ type: "data.read", action: "documents.get", subject: `reader-${i}` }))
                yield* Effect.yieldNow
              }
              yield* ordered.release
              yield* first
              yield* Fiber.join(second)
              const last = yield* log.append(event())
              assert.strictEqual(last.index, 6)
              // Groups as sent: the held one, the second (twice: it reached the store before the first), the three
              // reads together, the last append. Every group but the reads' holds one event. The reads go once: they
              // wait for the second's second attempt (sent before it, they would be placed behind it and go twice,
              // and so would every group after them).
              const sizes = ordered.started().map((c) => c.size)
              assert.deepStrictEqual(sizes.filter((n) => n > 1), [3], JSON.stringify(sizes))
              const result = yield* log.verify()
              assert.isTrue(result.ok, JSON.stringify(result.problems))
            }))

          it.effect("two replicas with commits in flight interleave: every append lands once, the tree stays one", () =>
            Effect.gen(function*() {
              const a = yield* openLog({ checkpointInterval: "1 hour", commitsInFlight: 2 })
              const b = yield* openLog({ checkpointInterval: "1 hour", commitsInFlight: 3 })
              yield* interleave(a, b, { n: 120, concurrency: 40, everyA: 3 })
              const result = yield* b.verify()
              assert.isTrue(result.ok, JSON.stringify(result.problems))
            }))
        })

        it.effect("records reads without waiting; records durable types as appends", () =>
          Effect.gen(function*() {
            const log = yield* openLog()
            yield* log.record(event({ type: "data.read", action: "documents.get" }))
            // The queue is in order: once a later append is durable, so is the read before it.
            const later = yield* log.append(event())
            assert.strictEqual(later.index, 1)
            const read = yield* log.query({ type: "data.read" })
            assert.strictEqual(read.entries.length, 1)
            yield* log.record(event({ type: "authorization.denied", outcome: "denied", action: "documents.delete" }))
            // Returned only once durable: visible at once.
            assert.strictEqual((yield* log.query({ type: "authorization.denied" })).entries.length, 1)
          }))

        it.effect("refuses invalid events with InvalidEvent and counts them", () =>
          Effect.gen(function*() {
            const log = yield* openLog()
            const before = yield* metricCount(AuditLog.metrics.rejected)
            const error = yield* Effect.flip(log.append(event({ action: "" })))
            assert.strictEqual(error._tag, "InvalidEvent")
            const nul = yield* Effect.flip(log.append(event({ resource: { type: "doc\u0000ument" } })))
            assert.strictEqual(nul._tag, "InvalidEvent")
            yield* log.record(event({ type: "data.read", action: "" }))
            assert.strictEqual((yield* metricCount(AuditLog.metrics.rejected)) - before, 3)
            assert.strictEqual(yield* log.size, 0)
          }))

        it.effect("stores the canonical JSON of each entry as its leaf, and personal fields only sealed", () =>
          Effect.gen(function*() {
            const log = yield* openLog()
            yield* log.append(event({ subject: "carol@example.com", personalDetails: { email: "carol@example.com" } }))
            const lines = yield* exported(log)
            const content: string = lines[1].content
            assert.notInclude(content, "carol@example.com")
            assert.notInclude(content, "192.0.2.7")
            assert.notInclude(content, "test-agent")
            const parsed = JSON.parse(content)
            assert.strictEqual(parsed.index, 0)
            assert.strictEqual(parsed.type, "data.create")
            assert.deepStrictEqual(parsed.actor, { tenantId: "acme", roles: ["writer"] })
            assert.strictEqual(lines[1].leafHash, Buffer.from(Merkle.leafHash(utf8(content))).toString("base64"))
            const [record] = (yield* log.query({})).entries
            assert.strictEqual(record!.actor.subject, "carol@example.com")
            assert.strictEqual(record!.actor.clientAddress, "192.0.2.7")
            assert.strictEqual(record!.actor.userAgent, "test-agent/1.0")
            assert.deepStrictEqual(record!.personalDetails, { email: "carol@example.com" })
            assert.isFalse(record!.erased)
          }))

        it.effect("takes the correlation id and trace of the caller's request", () =>
          Effect.gen(function*() {
            const log = yield* openLog()
            const traced = yield* Effect.flatMap(Effect.currentSpan, (span) =>
              Effect.as(log.append(event()), span.traceId)).pipe(
                RequestContext.withCorrelationId("req-42"),
                Effect.withSpan("handler")
              )
            const [record] = (yield* log.query({ correlationId: "req-42" })).entries
            assert.strictEqual(record?.correlationId, "req-42")
            assert.strictEqual(record?.traceId, traced)
          }))
      })

      describe("queries", () => {
        it.effect("filter by tenant, actor, type, resource, time and correlation id; pages with a cursor", () =>
          Effect.gen(function*() {
            const log = yield* openLog()
            // Times relative to the test clock's now (the clock is shared by the tests of a file).
            const t0 = yield* Clock.currentTimeMillis
            yield* log.append(event({ subject: "alice", resource: { type: "document", id: "d1" } }))
            yield* TestClock.adjust(Duration.seconds(10))
            yield* log.append(event({ subject: "bob", type: "data.delete", resource: { type: "document", id: "d1" } }))
            yield* TestClock.adjust(Duration.seconds(10))
            yield* log.append(event({ subject: "alice", tenant: "globex", resource: { type: "flag", id: "f1" } }))
            yield* log.append(event({ subject: "alice", correlationId: "c-9" }))
            const indices = (q: AuditLog.Query, scope?: AuditLog.Scope) =>
              Effect.map(log.query(q, scope), (page) => page.entries.map((e) => e.index))
            assert.deepStrictEqual(yield* indices({}), [3, 2, 1, 0])
            assert.deepStrictEqual(yield* indices({ tenantId: "acme" }), [3, 1, 0])
            assert.deepStrictEqual(yield* indices({ actor: "alice" }), [3, 2, 0])
            assert.deepStrictEqual(yield* indices({ actor: "alice", tenantId: "globex" }), [2])
            assert.deepStrictEqual(yield* indices({ actor: "nobody" }), [])
            assert.deepStrictEqual(yield* indices({ type: "data.delete" }), [1])
            assert.deepStrictEqual(yield* indices({ resourceType: "document", resourceId: "d1" }), [1, 0])
            assert.deepStrictEqual(yield* indices({ resourceType: "flag" }), [2])
            assert.deepStrictEqual(yield* indices({ correlationId: "c-9" }), [3])
            assert.deepStrictEqual(yield* indices({ from: new Date(t0 + 5_000), to: new Date(t0 + 15_000) }), [1])
            assert.deepStrictEqual(yield* indices({ from: new Date(t0 + 20_000) }), [3, 2])
            // A tenant admin sees its tenant only, whatever it asks for.
            assert.deepStrictEqual(yield* indices({}, { tenantId: "globex" }), [2])
            assert.deepStrictEqual(yield* indices({ tenantId: "acme" }, { tenantId: "globex" }), [])
            // Pages of 2, then 1: every entry once, newest first.
            const first = yield* log.query({ limit: 2 })
            assert.deepStrictEqual(first.entries.map((e) => e.index), [3, 2])
            const second = yield* log.query({ limit: 2, cursor: first.nextCursor })
            assert.deepStrictEqual(second.entries.map((e) => e.index), [1, 0])
            assert.isUndefined(second.nextCursor)
            const bad = yield* Effect.flip(log.query({ cursor: "not a cursor" }))
            assert.strictEqual(bad._tag, "InvalidCursor")
            const one = yield* log.get(first.entries[0]!.id)
            assert.strictEqual(one.index, 3)
            assert.strictEqual(
              (yield* Effect.flip(log.get(first.entries[1]!.id, { tenantId: "acme" })))._tag,
              "EntryNotFound"
            )
          }))
      })

      describe("checkpoints and proofs", () => {
        it.effect("signs checkpoints of the RFC 9162 tree over the entries' canonical JSON", () =>
          Effect.gen(function*() {
            const log = yield* openLog()
            for (let i = 0; i < 7; i++) yield* log.append(event())
            const checkpoint = yield* log.checkpoint
            const opened = Result.getOrThrow(Checkpoint.openCheckpoint(checkpoint.note, verifier, origin))
            assert.strictEqual(opened.size, 7)
            const contents = (yield* exported(log)).filter((l) => typeof l.content === "string").map((l) => l.content)
            // Recomputed here from the contents alone.
            assert.strictEqual(
              Buffer.from(opened.rootHash).toString("base64"),
              Buffer.from(merkleTreeHash(contents.map(utf8))).toString("base64")
            )
            assert.strictEqual(checkpoint.rootHash, Buffer.from(opened.rootHash).toString("base64"))
          }))

        it.effect("proves inclusion of an entry and consistency between sizes, beyond a tile", () =>
          Effect.gen(function*() {
            const log = yield* openLog()
            const appended = yield* Effect.forEach(
              Array.from({ length: 300 }, () => event()),
              (e) => log.append(e),
              { concurrency: options.concurrency }
            )
            const old = yield* log.checkpoint
            for (let i = 0; i < 40; i++) yield* log.append(event())
            const now = yield* log.checkpoint
            for (const target of [appended[0]!, appended[137]!, appended[299]!]) {
              const proof = yield* log.proveInclusion({ id: target.id })
              assert.strictEqual(proof.treeSize, 340)
              assert.strictEqual(proof.rootHash, now.rootHash)
              assert.isTrue(
                Merkle.verifyInclusion(
                  proof.index,
                  proof.treeSize,
                  b64(proof.leafHash),
                  proof.proof.map(b64),
                  b64(now.rootHash)
                )
              )
              const signed = Result.getOrThrow(Checkpoint.openCheckpoint(proof.checkpoint, verifier, origin))
              assert.strictEqual(signed.size, 340)
              // In the older, signed tree too.
              const inOld = yield* log.proveInclusion({ id: target.id, size: old.size })
              assert.isTrue(
                Merkle.verifyInclusion(
                  inOld.index,
                  old.size,
                  b64(inOld.leafHash),
                  inOld.proof.map(b64),
                  b64(old.rootHash)
                )
              )
            }
            const consistency = yield* log.proveConsistency(old.size, now.size)
            assert.strictEqual(consistency.firstRootHash, old.rootHash)
            assert.strictEqual(consistency.secondRootHash, now.rootHash)
            assert.isTrue(
              Merkle.verifyConsistency(
                old.size,
                now.size,
                consistency.proof.map(b64),
                b64(old.rootHash),
                b64(now.rootHash)
              )
            )
            for (const m of [1, 7, 255, 256, 257, 339]) {
              const p = yield* log.proveConsistency(m)
              assert.isTrue(
                Merkle.verifyConsistency(m, 340, p.proof.map(b64), b64(p.firstRootHash), b64(now.rootHash)),
                `${m}`
              )
            }
            assert.strictEqual((yield* Effect.flip(log.proveConsistency(341)))._tag, "InvalidProofRequest")
            assert.strictEqual((yield* Effect.flip(log.proveInclusion({ index: 340 })))._tag, "InvalidProofRequest")
            assert.strictEqual((yield* Effect.flip(log.proveInclusion({ id: randomUUID() })))._tag, "EntryNotFound")
            const other = yield* log.append(event({ tenant: "globex" }))
            const scoped = yield* Effect.flip(log.proveInclusion({ id: other.id }, { tenantId: "acme" }))
            assert.strictEqual(scoped._tag, "EntryNotFound")
          }))
      })

      describe("verification", () => {
        it.effect("recomputes everything and reports progress; an export verifies offline, and a changed copy fails", () =>
          Effect.gen(function*() {
            const log = yield* openLog()
            for (let i = 0; i < 25; i++) yield* log.append(event())
            const progress: Array<Verifier.Progress> = []
            const result = yield* log.verify({ onProgress: (p) => Effect.sync(() => progress.push(p)) })
            assert.isTrue(result.ok, JSON.stringify(result.problems))
            assert.strictEqual(result.size, 25)
            assert.strictEqual(result.entries, 25)
            assert.strictEqual(result.latestCheckpoint?.size, 25)
            assert.strictEqual(result.unsignedEntries, 0)
            assert.isNull(result.firstBadIndex)
            assert.deepStrictEqual(progress[progress.length - 1], { phase: "done", done: 25, total: 25 })
            assert.doesNotThrow(() => JSON.parse(JSON.stringify(result)))
            const lines = yield* Effect.map(Stream.runCollect(log.export), (c) => Array.from(c))
            const options = { verifier, verifierKey: keys.signer.verifierKey, origin }
            const offline = yield* Verifier.verifyExport(Stream.fromIterable(lines), options)
            assert.isTrue(offline.ok, JSON.stringify(offline.problems))
            assert.strictEqual(offline.rootHash, result.rootHash)
            // Change one entry of the copy: named at its position.
            const changed = lines.map((line) => {
              const value = JSON.parse(line)
              if (value.index !== 9) return line
              return JSON.stringify({ ...value, content: value.content.replace("\"success\"", "\"failure\"") })
            })
            const bad = yield* Verifier.verifyExport(Stream.fromIterable(changed), options)
            assert.isFalse(bad.ok)
            assert.strictEqual(bad.firstBadIndex, 9)
            assert.strictEqual(bad.problems[0]!.kind, "EntryHashMismatch")
            // Another log's key: every checkpoint is refused.
            const other = AuditKeys.generate(origin)
            const foreign = yield* Verifier.verifyExport(Stream.fromIterable(lines), {
              ...options,
              verifier: Checkpoint.verifierOf(other.signer)
            })
            assert.isFalse(foreign.ok)
            assert.isTrue(foreign.problems.every((p) => p.kind === "CheckpointBadSignature"))
          }))

        it.effect("a restarted log continues the same tree and stays consistent with what it signed", () =>
          Effect.gen(function*() {
            const first = yield* Scope.make()
            const log1 = yield* Scope.provide(first)(openLog({ checkpointInterval: Duration.hours(1) }))
            for (let i = 0; i < 10; i++) yield* log1.append(event())
            const before = yield* log1.checkpoint
            yield* log1.record(event({ type: "data.read" }))
            // Closing writes what is queued and a final checkpoint.
            yield* Scope.close(first, Exit.void)
            const log2 = yield* openLog()
            assert.strictEqual(yield* log2.size, 11)
            yield* log2.append(event())
            const after = yield* log2.checkpoint
            const proof = yield* log2.proveConsistency(before.size, after.size)
            assert.isTrue(
              Merkle.verifyConsistency(
                before.size,
                after.size,
                proof.proof.map(b64),
                b64(before.rootHash),
                b64(after.rootHash)
              )
            )
            const result = yield* log2.verify()
            assert.isTrue(result.ok, JSON.stringify(result.problems))
            assert.strictEqual(result.latestCheckpoint?.size, 12)
          }))
      })

      describe("erasure", () => {
        it.effect("destroys a subject's key: its personal fields are gone, proofs and verification still hold", () =>
          Effect.gen(function*() {
            const log = yield* openLog()
            const mine = yield* log.append(event({ subject: "dave", personalDetails: { phone: "555" } }))
            yield* log.append(event({ subject: "erin" }))
            const before = yield* log.checkpoint
            const admin = actorOf("admin-1", "acme", ["admin"])
            const erasure = yield* log.erase({ subject: "dave", tenantId: "acme" }, {
              actor: admin,
              reason: "art. 17 request"
            })
            assert.strictEqual(erasure.keyIds.length, 1)
            const record = yield* log.get(mine.id)
            assert.isTrue(record.erased)
            assert.isUndefined(record.actor.subject)
            assert.isUndefined(record.actor.clientAddress)
            assert.isUndefined(record.personalDetails)
            assert.deepStrictEqual(record.actor.roles, ["writer"])
            assert.strictEqual(record.resource.type, "document")
            assert.deepStrictEqual((yield* log.query({ actor: "dave" })).entries, [])
            assert.strictEqual((yield* log.query({ actor: "erin" })).entries[0]?.actor.subject, "erin")
            // The erasure is itself audited, naming the key, not the subject.
            const audited = yield* log.get(
              (yield* log.query({ type: "retention.erasure" })).entries[0]!.id
            )
            assert.strictEqual(audited.index, erasure.index)
            assert.deepStrictEqual(audited.details, { keyIds: erasure.keyIds })
            assert.strictEqual(audited.actor.subject, "admin-1")
            assert.notInclude(JSON.stringify((yield* exported(log))[erasure.index + 1]), "dave")
            // Nothing in the tree changed: the old checkpoint is a prefix, the entry still proves.
            const after = yield* log.checkpoint
            const consistency = yield* log.proveConsistency(before.size)
            assert.isTrue(
              Merkle.verifyConsistency(
                before.size,
                after.size,
                consistency.proof.map(b64),
                b64(before.rootHash),
                b64(after.rootHash)
              )
            )
            const inclusion = yield* log.proveInclusion({ id: mine.id })
            assert.isTrue(
              Merkle.verifyInclusion(
                inclusion.index,
                inclusion.treeSize,
                b64(inclusion.leafHash),
                inclusion.proof.map(b64),
                b64(after.rootHash)
              )
            )
            const result = yield* log.verify()
            assert.isTrue(result.ok, JSON.stringify(result.problems))
            assert.isTrue((yield* verifyBothWays).ok)
            // The subject acts again: a new key, readable.
            const again = yield* log.append(event({ subject: "dave" }))
            assert.strictEqual((yield* log.get(again.id)).actor.subject, "dave")
            assert.deepStrictEqual((yield* log.query({ actor: "dave" })).entries.map((e) => e.index), [again.index])
          }))
      })

      describe("retention", () => {
        it.effect("prunes expired content per type and tenant; checkpoints and proofs still verify; pruning is audited", () =>
          Effect.gen(function*() {
            const day = Duration.days(1)
            const log = yield* openLog({
              retention: [
                { type: "data.read", maxAge: Duration.days(30) },
                { tenantId: "globex", type: "data.read", maxAge: Duration.days(1) },
                { maxAge: Duration.days(365) }
              ]
            })
            const read = (tenant: string) => log.append(event({ type: "data.read", action: "documents.get", tenant }))
            const acmeRead = yield* read("acme")
            const globexRead = yield* read("globex")
            const write = yield* log.append(event())
            const before = yield* log.checkpoint
            yield* TestClock.adjust(Duration.times(day, 2))
            const first = yield* log.prune()
            assert.strictEqual(first.pruned, 1, "only globex's read is past its day")
            assert.strictEqual((yield* Effect.flip(log.get(globexRead.id)))._tag, "EntryNotFound")
            assert.strictEqual((yield* log.get(acmeRead.id)).index, acmeRead.index)
            yield* TestClock.adjust(Duration.times(day, 30))
            const second = yield* log.prune()
            assert.strictEqual(second.pruned, 1, "acme's read is past 30 days; the write is not past a year")
            assert.strictEqual((yield* log.get(write.id)).index, write.index)
            // Each pruning is an entry of the log, listing what it removed.
            const prunes = (yield* log.query({ type: "retention.prune" })).entries
            assert.strictEqual(prunes.length, 2)
            assert.deepStrictEqual(prunes[1]!.details?.ranges, [[globexRead.index, globexRead.index]])
            assert.strictEqual(prunes[1]!.tenantId, "globex")
            // The tree is untouched: the checkpoint before still verifies against the current one, and the
            // pruned entry's leaf still proves.
            const after = yield* log.checkpoint
            const consistency = yield* log.proveConsistency(before.size)
            assert.isTrue(
              Merkle.verifyConsistency(
                before.size,
                after.size,
                consistency.proof.map(b64),
                b64(before.rootHash),
                b64(after.rootHash)
              )
            )
            const proof = yield* log.proveInclusion({ index: globexRead.index })
            assert.isTrue(
              Merkle.verifyInclusion(
                proof.index,
                proof.treeSize,
                b64(proof.leafHash),
                proof.proof.map(b64),
                b64(after.rootHash)
              )
            )
            const result = yield* log.verify()
            assert.isTrue(result.ok, JSON.stringify(result.problems))
            assert.strictEqual(result.pruned, 2)
            assert.strictEqual((yield* verifyBothWays).pruned, 2)
            // A pruned entry is nobody's to prove.
            assert.strictEqual(
              (yield* Effect.flip(log.proveInclusion({ index: globexRead.index }, { tenantId: "globex" })))._tag,
              "EntryNotFound"
            )
            // The store refuses to drop content a pruning did not list.
            const store = yield* AuditStore.AuditStore
            assert.isTrue(
              Exit.isFailure(yield* Effect.exit(store.prune(prunes[0]!.index, [[write.index, write.index]])))
            )
            assert.isTrue(Exit.isFailure(yield* Effect.exit(store.prune(write.index, [[0, 0]]))))
            assert.strictEqual((yield* log.get(write.id)).index, write.index)
          }))
      })

      if (options.sql) sqlTests(it)
    })
  })
}

// -----------------------------------------------------------------------------
// SQL: append-only triggers, and tampering done behind the log's back
// -----------------------------------------------------------------------------

/** Runs statements as a superuser would, with the append-only triggers off. */
const asSuperuser = (statements: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* Effect.gen(function*() {
      yield* sql.unsafe("SET LOCAL session_replication_role = replica")
      for (const statement of statements) yield* sql.unsafe(statement)
    }).pipe(sql.withTransaction)
  }).pipe(Effect.orDie)

const refused = (statement: string, because = "append-only") =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const exit = yield* Effect.exit(sql.unsafe(statement))
    assert.isTrue(Exit.isFailure(exit), `${statement} was not refused`)
    const error: any = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
    // SQLSTATE 42501 (insufficient_privilege), with the trigger's explanation.
    assert.strictEqual(error?.reason?.cause?.code, "42501", statement)
    assert.include(String(error?.reason?.cause?.message), because, statement)
  })

const tamperedAt = (statements: ReadonlyArray<string>, expected: { readonly index: number; readonly kind: string }) =>
  Effect.gen(function*() {
    const log = yield* openLog()
    for (let i = 0; i < 12; i++) yield* log.append(event({ resource: { type: "document", id: `d${i}` } }))
    assert.isTrue((yield* log.verify()).ok)
    yield* asSuperuser(statements)
    const result = yield* log.verify()
    assert.isFalse(result.ok)
    assert.strictEqual(result.firstBadIndex, expected.index, JSON.stringify(result.problems))
    assert.strictEqual(result.problems[0]!.kind, expected.kind, JSON.stringify(result.problems))
    // The same from the store alone, hashed on a worker thread or not.
    const alone = yield* verifyBothWays
    assert.strictEqual(alone.firstBadIndex, expected.index, JSON.stringify(alone.problems))
    assert.strictEqual(alone.problems[0]!.kind, expected.kind, JSON.stringify(alone.problems))
    return result
  })

const sqlTests = (it: { readonly effect: (name: string, self: () => Effect.Effect<any, any, any>) => void }) =>
  describe("append-only in SQL", () => {
    it.effect("refuses UPDATE, DELETE and TRUNCATE on every table, and unannounced deletions", () =>
      Effect.gen(function*() {
        const log = yield* openLog()
        yield* log.append(event())
        yield* log.erase({ subject: "nobody" }, { actor: actorOf("admin") })
        for (
          const table of [
            "audit_leaves",
            "audit_entries",
            "audit_checkpoints",
            "audit_prunes",
            "audit_erasures",
            "audit_subject_keys"
          ]
        ) {
          yield* refused(`TRUNCATE ${table}`)
        }
        yield* refused("UPDATE audit_entries SET outcome = 'failure'")
        yield* refused("UPDATE audit_leaves SET leaf_hash = leaf_hash")
        yield* refused("UPDATE audit_checkpoints SET note = ''")
        yield* refused("UPDATE audit_subject_keys SET wrapped_key = wrapped_key")
        yield* refused("DELETE FROM audit_entries")
        yield* refused("DELETE FROM audit_leaves")
        yield* refused("DELETE FROM audit_checkpoints")
        yield* refused("DELETE FROM audit_subject_keys", "erasure")
        yield* refused("INSERT INTO audit_prunes (prune_idx, from_idx, to_idx) VALUES (1, 0, 0)", "retention.prune")
        assert.isTrue((yield* log.verify()).ok)
      }))

    it.effect("a changed entry is named at its position", () =>
      tamperedAt(["UPDATE audit_entries SET content = replace(content, '\"success\"', '\"failure\"') WHERE idx = 5"], {
        index: 5,
        kind: "EntryHashMismatch"
      }))

    it.effect("a changed query column is named at its position", () =>
      tamperedAt(["UPDATE audit_entries SET outcome = 'failure' WHERE idx = 4"], {
        index: 4,
        kind: "EntryColumnsMismatch"
      }))

    it.effect("a deleted row is named at its position", () =>
      tamperedAt(["DELETE FROM audit_entries WHERE idx = 7", "DELETE FROM audit_leaves WHERE idx = 7"], {
        index: 7,
        kind: "LeafMissing"
      }))

    it.effect("deleted content alone (no pruning announced it) is named at its position", () =>
      tamperedAt(["DELETE FROM audit_entries WHERE idx = 3"], { index: 3, kind: "ContentMissing" }))

    it.effect("two rows swapped are named at the first of them", () =>
      tamperedAt([
        "UPDATE audit_entries SET idx = -1 WHERE idx = 6",
        "UPDATE audit_entries SET idx = 6 WHERE idx = 7",
        "UPDATE audit_entries SET idx = 7 WHERE idx = -1",
        "UPDATE audit_leaves SET idx = 1000 WHERE idx = 6",
        "UPDATE audit_leaves SET idx = 6 WHERE idx = 7",
        "UPDATE audit_leaves SET idx = 7 WHERE idx = 1000"
      ], { index: 6, kind: "EntryIndexMismatch" }))

    it.effect("a row inserted in the middle is named at its position", () =>
      tamperedAt([
        // Make room at 4 (from the end down, so the keys never collide), then copy entry 2 there.
        ...Array.from({ length: 8 }, (_, k) => 11 - k).flatMap((i) => [
          `UPDATE audit_entries SET idx = ${i + 1} WHERE idx = ${i}`,
          `UPDATE audit_leaves SET idx = ${i + 1} WHERE idx = ${i}`
        ]),
        `INSERT INTO audit_entries SELECT 4, gen_random_uuid(), time, type, tenant_id, key_id, action, resource_type,
          resource_id, outcome, correlation_id, content FROM audit_entries WHERE idx = 2`,
        "INSERT INTO audit_leaves SELECT 4, leaf_hash FROM audit_leaves WHERE idx = 2"
      ], { index: 4, kind: "EntryIndexMismatch" }))

    it.effect("a rewrite that recomputes the leaf hash is caught by the checkpoints, at the commit it changed", () =>
      tamperedAt([
        "UPDATE audit_entries SET content = replace(content, '\"success\"', '\"failure\"'), outcome = 'failure' WHERE idx = 8",
        `UPDATE audit_leaves l SET leaf_hash = sha256('\\x00'::bytea || convert_to(e.content, 'UTF8'))
          FROM audit_entries e WHERE e.idx = l.idx AND l.idx = 8`
      ], { index: 8, kind: "CheckpointMismatch" }))

    it.effect("entries removed at the end are caught by the checkpoints that signed them", () =>
      Effect.gen(function*() {
        const result = yield* tamperedAt([
          "DELETE FROM audit_entries WHERE idx >= 10",
          "DELETE FROM audit_leaves WHERE idx >= 10"
        ], { index: 10, kind: "CheckpointBeyondLog" })
        assert.isTrue(result.problems.some((p) => p.kind === "RootMismatch"))
      }))

    it.effect("a subject key deleted behind the log's back is reported", () =>
      Effect.gen(function*() {
        const log = yield* openLog()
        yield* log.append(event({ subject: "frank" }))
        yield* log.append(event({ subject: "grace" }))
        yield* asSuperuser([
          "DELETE FROM audit_subject_keys WHERE key_id = (SELECT key_id FROM audit_entries WHERE idx = 1)"
        ])
        const result = yield* log.verify()
        assert.isFalse(result.ok)
        assert.strictEqual(result.problems[0]!.kind, "KeyDestroyedWithoutErasure")
        assert.strictEqual(result.firstBadIndex, 1)
        assert.strictEqual((yield* verifyBothWays).firstBadIndex, 1)
      }))

    it.effect("a log that finds its store changed refuses to sign, and still records", () =>
      Effect.gen(function*() {
        const first = yield* Scope.make()
        const log1 = yield* Scope.provide(first)(openLog())
        for (let i = 0; i < 5; i++) yield* log1.append(event())
        yield* Scope.close(first, Exit.void)
        yield* asSuperuser([
          "UPDATE audit_entries SET content = replace(content, '\"success\"', '\"failure\"') WHERE idx = 2",
          `UPDATE audit_leaves l SET leaf_hash = sha256('\\x00'::bytea || convert_to(e.content, 'UTF8'))
            FROM audit_entries e WHERE e.idx = l.idx AND l.idx = 2`
        ])
        const log2 = yield* openLog()
        const refusal = yield* Effect.flip(log2.checkpoint)
        assert.strictEqual(refusal._tag, "LogInconsistent")
        assert.strictEqual((yield* log2.append(event())).index, 5)
        assert.strictEqual((yield* log2.verify()).firstBadIndex, 2)
      }))
  })

/** Holds the store's appends until released: a writer stuck in a commit. */
export const gatedStore = Effect.gen(function*() {
  const store = yield* AuditStore.AuditStore
  const gate = yield* Deferred.make<void>()
  const entered = yield* Deferred.make<void>()
  const gated = AuditStore.AuditStore.of({
    ...store,
    append: (batch) =>
      Effect.andThen(Deferred.succeed(entered, undefined), Effect.andThen(Deferred.await(gate), store.append(batch)))
  })
  return { store: gated, release: Deferred.succeed(gate, undefined), entered: Deferred.await(entered) }
})

/** Collects log messages. */
export const collectLogs = () => {
  const messages: Array<string> = []
  const logger = Logger.make((options) => {
    messages.push(Array.isArray(options.message) ? options.message.map(String).join(" ") : String(options.message))
  })
  return { messages, loggers: new Set([logger]) }
}
