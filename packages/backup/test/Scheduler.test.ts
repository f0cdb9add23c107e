import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { EventStore } from "@ouroboros/event-store"
import { Effect, Layer, Option, Ref } from "effect"
import { Command } from "effect/cli"
import { TestClock } from "effect/testing"
import { Backup, BackupCli, Scheduler } from "../src/index.js"
import { layerStores } from "./helpers.js"

// The scheduled run does real file I/O after the TestClock wakes it: wait for it in real time. The deadline only
// bounds the test (was 500 polls of 10 ms, about 5 s, which a busy machine may need for a backup).
const eventually = <A, E, R>(effect: Effect.Effect<A, E, R>, done: (a: A) => boolean): Effect.Effect<A, E, R> =>
  Effect.gen(function*() {
    const deadline = Date.now() + 20_000
    while (Date.now() <= deadline) {
      const value = yield* effect
      if (done(value)) return value
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10)))
    }
    return yield* effect
  })

describe("Scheduler", () => {
  it("nextKind: full first, then incrementals until every Nth", () => {
    assert.strictEqual(Scheduler.nextKind([], 3), "full")
    assert.strictEqual(Scheduler.nextKind([{ kind: "full" }], 3), "incremental")
    assert.strictEqual(Scheduler.nextKind([{ kind: "incremental" }, { kind: "full" }], 3), "incremental")
    assert.strictEqual(
      Scheduler.nextKind([{ kind: "incremental" }, { kind: "incremental" }, { kind: "full" }], 3),
      "full"
    )
    assert.strictEqual(Scheduler.nextKind([{ kind: "full" }], 1), "full")
  })

  it.effect(
    "runs on the cron schedule, full every Nth, verified, only when it holds the replica lock",
    () =>
      Effect.gen(function*() {
        const backup = yield* Backup.Backup
        const store = yield* EventStore.EventStore
        yield* store.append("s", [{ type: "T", data: 1 }])
        // The loop reads the clock for its next run only once a run has ended (pruning included): the clock moves on
        // only after that, or the next run would be planned a day later than the test expects.
        const ended = yield* Ref.make(0)
        const lock = yield* Scheduler.ReplicaLock
        const countingLock = Layer.succeed(Scheduler.ReplicaLock, {
          withLock: (effect) => lock.withLock(effect).pipe(Effect.ensuring(Ref.update(ended, (n) => n + 1)))
        })
        yield* Layer.build(
          Scheduler.layer({ schedule: "0 3 * * *", fullEvery: 2, verify: "checksums" }).pipe(
            Layer.provide(countingLock)
          )
        )
        yield* TestClock.adjust("3 hours")
        yield* TestClock.adjust("1 minute")
        let list = yield* eventually(backup.list, (l) => l[0]?.verification !== undefined)
        assert.deepStrictEqual(list.map((i) => [i.manifest.kind, i.verification?.ok]), [["full", true]])
        yield* eventually(Ref.get(ended), (n) => n === 1)
        yield* TestClock.adjust("1 day")
        yield* eventually(backup.list, (l) => l.length === 2 && l[0]?.verification !== undefined)
        yield* eventually(Ref.get(ended), (n) => n === 2)
        yield* TestClock.adjust("1 day")
        list = yield* eventually(backup.list, (l) => l.length === 3 && l[0]?.verification !== undefined)
        assert.deepStrictEqual(list.map((i) => i.manifest.kind), ["full", "incremental", "full"])

        // Another replica holds the lock: nothing runs.
        const held = yield* Scheduler.runOnce({ fullEvery: 2, verify: "none" }).pipe(
          Effect.provide(Layer.succeed(Scheduler.ReplicaLock, { withLock: () => Effect.succeed(Option.none()) }))
        )
        assert.isTrue(Option.isNone(held))
        assert.strictEqual((yield* backup.list).length, 3)
      }).pipe(Effect.provide(Layer.merge(layerStores(), Scheduler.layerLocalLock))),
    { timeout: 30_000 }
  )
})

describe("BackupCli", () => {
  // The arguments after the program name (`ouroboros …`), as `process.argv.slice(2)` gives them.
  const run = Command.runWith(Command.make("ouroboros").pipe(Command.withSubcommands([BackupCli.command])), {
    version: "0.1.0"
  })

  it.effect("create, list, verify and restore from the command line", () =>
    Effect.gen(function*() {
      const backup = yield* Backup.Backup
      const store = yield* EventStore.EventStore
      yield* store.append("s", [{ type: "T", data: 1 }])
      yield* run(["backup", "create", "--kind", "full", "--json"])
      const [info] = yield* backup.list
      assert.strictEqual(info?.manifest.kind, "full")
      const id = info!.manifest.id
      yield* run(["backup", "verify", id, "--tier", "restore", "--json"])
      assert.isTrue((yield* backup.get(id)).verification?.ok)
      yield* store.append("s", [{ type: "T", data: 2 }])
      yield* run(["backup", "restore", id])
      assert.strictEqual(yield* store.lastSequence, 1)
      yield* store.append("s", [{ type: "T", data: 3 }])
      yield* run(["backup", "restore", "--at", "2", "--json"])
      assert.strictEqual(yield* store.lastSequence, 2)
      const bad = yield* Effect.result(run(["backup", "restore", id, "--at", "soon"]))
      assert.strictEqual(bad._tag, "Failure")
      process.exitCode = 0
    }).pipe(Effect.provide(Layer.merge(layerStores(), NodeServices.layer))), { timeout: 30_000 })

  it("parses restore points and draws bars", () => {
    assert.deepStrictEqual(BackupCli.parseRestorePoint("42"), Option.some(42))
    assert.deepStrictEqual(
      BackupCli.parseRestorePoint("2026-11-25T10:00:00Z"),
      Option.some(new Date("2026-11-25T10:00:00Z"))
    )
    assert.isTrue(Option.isNone(BackupCli.parseRestorePoint("tomorrow")))
    assert.strictEqual(
      BackupCli.renderBar({ phase: "events", done: 5, total: 10 }),
      "events           [###############---------------]  50%  5/10"
    )
  })
})
