import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Database } from "../src/index.js"
import * as Lock from "../src/internal/lock.js"

const tmp = () => Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-lock-"))
const lockFile = (dir: string) => Path.join(dir, "ouroboros.lock")
const me = Lock.currentOwner()

/** A lock file as another process would write it: this process's identity with `changes`. */
const writeLock = (dir: string, changes: Partial<Lock.Owner>, mtime?: Date) => {
  Fs.writeFileSync(lockFile(dir), JSON.stringify({ ...me, token: "someone-else", ...changes }))
  if (mtime !== undefined) Fs.utimesSync(lockFile(dir), mtime, mtime)
}
const holder = (dir: string) => Lock.parse(Fs.readFileSync(lockFile(dir), "utf8"))
const failure = (exit: Exit.Exit<unknown, unknown>) => String(Exit.isFailure(exit) ? exit.cause : "")
const hasProc = Fs.existsSync("/proc/self/stat")

describe("Database.lockDirectory", () => {
  it.effect("writes who holds the lock, and removes it on release", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const scope = yield* Scope.make()
      const file = yield* Database.lockDirectory(dir).pipe(Scope.provide(scope))
      const owner = holder(dir)
      assert.strictEqual(file, lockFile(dir))
      assert.strictEqual(owner?.pid, process.pid)
      assert.strictEqual(owner?.hostname, Os.hostname())
      assert.strictEqual(owner?.token, me.token)
      if (hasProc) assert.notStrictEqual(owner?.bootId, "")
      yield* Scope.close(scope, Exit.void)
      assert.isFalse(Fs.existsSync(lockFile(dir)))
    }))

  it.effect("refuses a second opener in the same process", () =>
    Effect.gen(function*() {
      const dir = tmp()
      yield* Database.lockDirectory(dir)
      const exit = yield* Effect.exit(Database.lockDirectory(dir))
      assert.include(failure(exit), "already open in this process")
    }))

  it.effect("refuses a second opener holding another copy of the lock module (an early entry beside its bundle)", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const path: string = "../src/internal/lock.js?another-copy"
      const copy = (yield* Effect.promise(() => import(path))) as typeof Lock
      assert.notStrictEqual(copy.attempt, Lock.attempt, "a second instance of the module")
      const first = copy.attempt({ directory: dir })
      assert.strictEqual(first._tag, "Taken")
      const exit = yield* Effect.exit(Database.lockDirectory(dir))
      assert.include(failure(exit), "already open in this process")
      if (first._tag === "Taken") first.lock.release()
    }))

  it.effect("refuses a live process of this host and namespace", () =>
    Effect.gen(function*() {
      const dir = tmp()
      // PID 1 always runs; with its real start time it is the holder.
      writeLock(dir, { pid: 1, processStart: Lock.processStartOf(1) ?? "" })
      const exit = yield* Effect.exit(Database.lockDirectory(dir))
      assert.include(failure(exit), `in use by process 1 on host ${Os.hostname()}`)
      assert.strictEqual(holder(dir)?.token, "someone-else")
    }))

  it.effect("takes over the lock of a process that no longer runs", () =>
    Effect.gen(function*() {
      const dir = tmp()
      writeLock(dir, { pid: 999_999_999 })
      yield* Database.lockDirectory(dir)
      assert.strictEqual(holder(dir)?.token, me.token)
    }))

  it.effect("takes over a lock with its own PID from an earlier process (a restarted container is PID 1 again)", () =>
    Effect.gen(function*() {
      const dir = tmp()
      writeLock(dir, { pid: process.pid, processStart: "1" })
      yield* Database.lockDirectory(dir)
      assert.strictEqual(holder(dir)?.token, me.token)
    }))

  it.effect.runIf(hasProc)(
    "takes over when the PID now belongs to another process (a reused PID)",
    () =>
      Effect.gen(function*() {
        const dir = tmp()
        writeLock(dir, { pid: 1, processStart: "not-the-start-of-pid-1" })
        yield* Database.lockDirectory(dir)
        assert.strictEqual(holder(dir)?.token, me.token)
      })
  )

  it.effect("never takes over a lock from another host, even with its own PID (every pod's server is PID 1)", () =>
    Effect.gen(function*() {
      const dir = tmp()
      // What two pods on one volume see: the same PID, another host name. A year-old heartbeat changes nothing.
      writeLock(dir, { pid: process.pid, hostname: "ouroboros-7d9f-other-pod" }, new Date(Date.now() - 365 * 86400e3))
      const exit = yield* Effect.exit(Database.lockDirectory(dir))
      assert.include(failure(exit), "on host ouroboros-7d9f-other-pod")
      assert.include(failure(exit), "a lock from another host is never taken over")
      assert.strictEqual(holder(dir)?.token, "someone-else")
    }))

  it.effect("refuses a lock file it cannot read (an older version's bare PID)", () =>
    Effect.gen(function*() {
      const dir = tmp()
      Fs.writeFileSync(lockFile(dir), "1")
      const exit = yield* Effect.exit(Database.lockDirectory(dir))
      assert.include(failure(exit), "a lock file this version cannot read")
      assert.strictEqual(Fs.readFileSync(lockFile(dir), "utf8"), "1")
    }))

  describe("another container of this host (PID not comparable: judged by its heartbeat)", () => {
    const otherContainer = { pid: process.pid, pidNamespace: "pid:[4026532999]" }

    it.effect("takes over at once when the heartbeat is older than staleAfter", () =>
      Effect.gen(function*() {
        const dir = tmp()
        yield* TestClock.setTime(Date.now())
        writeLock(dir, otherContainer, new Date(Date.now() - 60_000))
        yield* Database.lockDirectory(dir, { staleAfter: Duration.seconds(30) })
        assert.strictEqual(holder(dir)?.token, me.token)
      }))

    it.effect("waits on a recent heartbeat, and takes over when none comes until staleAfter", () =>
      Effect.gen(function*() {
        const dir = tmp()
        const start = Date.now()
        yield* TestClock.setTime(start)
        writeLock(dir, otherContainer, new Date(start - 5_000))
        const fiber = yield* Effect.forkChild(Database.lockDirectory(dir, { staleAfter: Duration.seconds(30) }))
        yield* TestClock.adjust(Duration.seconds(10))
        assert.isUndefined(fiber.pollUnsafe(), "still waiting 15 s after the last heartbeat")
        assert.strictEqual(holder(dir)?.token, "someone-else")
        yield* TestClock.adjust(Duration.seconds(20))
        yield* Fiber.join(fiber)
        assert.strictEqual(holder(dir)?.token, me.token)
      }))

    it.effect("refuses when the holder's heartbeat goes on", () =>
      Effect.gen(function*() {
        const dir = tmp()
        const start = Date.now()
        yield* TestClock.setTime(start)
        writeLock(dir, otherContainer, new Date(start - 5_000))
        const fiber = yield* Effect.forkChild(Effect.exit(Database.lockDirectory(dir)))
        yield* TestClock.adjust(Duration.seconds(1))
        Fs.utimesSync(lockFile(dir), new Date(start + 1_000), new Date(start + 1_000)) // the holder beats
        yield* TestClock.adjust(Duration.seconds(1))
        const exit = yield* Fiber.join(fiber)
        assert.include(failure(exit), "its heartbeat goes on")
        assert.strictEqual(holder(dir)?.token, "someone-else")
      }))

    it.effect("takes over after a reboot of this host once the heartbeat is stale", () =>
      Effect.gen(function*() {
        const dir = tmp()
        yield* TestClock.setTime(Date.now())
        writeLock(dir, { pid: 1, bootId: "an-earlier-boot" }, new Date(Date.now() - 3600_000))
        yield* Database.lockDirectory(dir)
        assert.strictEqual(holder(dir)?.token, me.token)
      }))
  })

  it.live("keeps the lock's heartbeat going while held", () =>
    Effect.gen(function*() {
      const dir = tmp()
      yield* Database.lockDirectory(dir, { heartbeat: Duration.millis(20) })
      const past = new Date(Date.now() - 60_000)
      Fs.utimesSync(lockFile(dir), past, past)
      // Poll for the heartbeat; the deadline only bounds the test.
      const deadline = Date.now() + 10_000
      while (Fs.statSync(lockFile(dir)).mtimeMs <= past.getTime() && Date.now() < deadline) {
        yield* Effect.sleep(Duration.millis(10))
      }
      assert.isAbove(Fs.statSync(lockFile(dir)).mtimeMs, past.getTime())
    }))

  it.effect("does not remove a lock that another process took over meanwhile", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const scope = yield* Scope.make()
      yield* Database.lockDirectory(dir).pipe(Scope.provide(scope))
      writeLock(dir, { token: "the-new-holder" })
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(holder(dir)?.token, "the-new-holder")
    }))

  it("gives a lock back when another contender replaced the stale one it was about to move", () => {
    const dir = tmp()
    writeLock(dir, { pid: 999_999_999, token: "stale" })
    // The contender judged "stale" stale, but by the time it looks again a live holder has replaced it.
    const alive: Lock.Liveness = (pid) => {
      if (pid !== 999_999_999) return true
      writeLock(dir, { pid: 1, token: "winner" })
      return false
    }
    const result = Lock.attempt({ directory: dir, alive })
    assert.strictEqual(holder(dir)?.token, "winner")
    assert.strictEqual(result._tag, "Held")
    assert.deepStrictEqual(Fs.readdirSync(dir), ["ouroboros.lock"])
  })
})
