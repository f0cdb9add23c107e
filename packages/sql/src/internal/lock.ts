/**
 * The lock of an embedded data directory, in plain Node (no Effect) so that a server's tiny entry can take it before
 * the bundle loads (see `Early`) and the `Database` layer can adopt it.
 *
 * The lock file says who holds it: the process id, the host name, the boot id of the machine, the PID namespace, the
 * process's start time and a random token. A PID alone says nothing across containers (every container's server is
 * PID 1), so a lock is only judged by its PID when it comes from the same machine boot and the same PID namespace;
 * from a container of the same host it is judged by its heartbeat (the holder touches the file every few seconds);
 * a lock from another host is never taken over.
 *
 * @internal
 */
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

/** Who holds (or wants) a lock. */
export interface Owner {
  readonly pid: number
  readonly hostname: string
  /** `/proc/sys/kernel/random/boot_id`: changes when the machine restarts ("" where there is no /proc). */
  readonly bootId: string
  /** `/proc/self/ns/pid`: PIDs only mean something inside one namespace ("" where there is no /proc). */
  readonly pidNamespace: string
  /** The process's start time in clock ticks since boot (`/proc/<pid>/stat`), which tells a reused PID apart. */
  readonly processStart: string
  readonly startedAt: string
  readonly token: string
}

/** How a lock is kept alive and when a silent one is stale. */
export interface Timing {
  /** How often the holder touches the lock file. */
  readonly heartbeatMillis: number
  /** A lock whose heartbeat is this old is stale (when the holder cannot be checked by its PID). */
  readonly staleAfterMillis: number
}

/** @internal */
export const defaultTiming: Timing = { heartbeatMillis: 5_000, staleAfterMillis: 30_000 }

const readOr = (file: string, fallback: string): string => {
  try {
    return Fs.readFileSync(file, "utf8").trim()
  } catch {
    return fallback
  }
}

const namespaceOf = (): string => {
  try {
    return Fs.readlinkSync("/proc/self/ns/pid")
  } catch {
    return ""
  }
}

/** Field 22 of `/proc/<pid>/stat` (after the command name, which may hold spaces and parentheses). */
export const processStartOf = (pid: number | "self"): string | undefined => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]
  } catch {
    return undefined
  }
}

const ownerKey = Symbol.for("@ouroboros/sql/lock/owner")

/**
 * This process as a lock owner: one token per process, kept on `globalThis` so that two copies of this module (a
 * server's early entry and its bundle each carry one) are the same owner, and a second opener is refused rather than
 * taken for a previous process with the same PID.
 */
export const currentOwner = (): Owner =>
  (globalThis as { [ownerKey]?: Owner })[ownerKey] ??= {
    pid: process.pid,
    hostname: Os.hostname(),
    bootId: readOr("/proc/sys/kernel/random/boot_id", ""),
    pidNamespace: namespaceOf(),
    processStart: processStartOf("self") ?? "",
    startedAt: new Date(Date.now() - process.uptime() * 1000).toISOString(),
    token: randomBytes(12).toString("hex")
  }

/** A lock file's content: an owner, or `undefined` for a file this version did not write (a bare PID, garbage). */
export const parse = (text: string): Owner | undefined => {
  try {
    const value = JSON.parse(text) as Partial<Owner> | null
    if (
      value !== null && typeof value === "object" && typeof value.pid === "number" &&
      typeof value.hostname === "string" && typeof value.token === "string"
    ) {
      return {
        pid: value.pid,
        hostname: value.hostname,
        bootId: typeof value.bootId === "string" ? value.bootId : "",
        pidNamespace: typeof value.pidNamespace === "string" ? value.pidNamespace : "",
        processStart: typeof value.processStart === "string" ? value.processStart : "",
        startedAt: typeof value.startedAt === "string" ? value.startedAt : "",
        token: value.token
      }
    }
  } catch {
    // not JSON
  }
  return undefined
}

/** What to do about a lock file that exists. */
type Verdict =
  /** The holder is gone: take the lock over. */
  | { readonly _tag: "Stale"; readonly holder: Owner; readonly why: string }
  /** The holder is alive, or cannot be shown to be gone. */
  | { readonly _tag: "Held"; readonly message: string }
  /** A holder on this host that cannot be checked by PID: wait for its heartbeat (alive) or for it to go stale. */
  | { readonly _tag: "Watch"; readonly holder: Owner }

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Whether a PID of this namespace still runs the process that wrote the lock. */
export type Liveness = (pid: number, processStart: string) => boolean

/** `kill(pid, 0)`, and where `/proc` tells, the same start time (a PID reused by another process is not the holder). */
const liveness: Liveness = (pid, processStart) => {
  if (!isAlive(pid)) return false
  if (processStart === "") return true
  const now = processStartOf(pid)
  return now === undefined || now === processStart
}

const describe = (owner: Owner, heartbeatAgeMillis: number): string =>
  `process ${owner.pid} on host ${owner.hostname}${owner.startedAt === "" ? "" : ` (started ${owner.startedAt}`}${
    owner.startedAt === "" ? " (" : ", "
  }last heartbeat ${Math.max(0, Math.round(heartbeatAgeMillis / 1000))} s ago)`

/**
 * Judges an existing lock. `heartbeatAgeMillis` is how long ago the file was last touched, by this machine's clock
 * (only compared on the same host, where the clock is the same).
 */
const judge = (options: {
  readonly holder: Owner | undefined
  readonly me: Owner
  readonly heartbeatAgeMillis: number
  readonly timing: Timing
  readonly directory: string
  readonly alive?: Liveness | undefined
}): Verdict => {
  const { directory, heartbeatAgeMillis, holder, me, timing } = options
  const alive = options.alive ?? liveness
  if (holder === undefined) {
    return {
      _tag: "Held",
      message: `DATA_DIR ${directory} is locked by a lock file this version cannot read (an older version writes a ` +
        `bare process id, which says nothing across containers); if no server uses this directory, delete ` +
        `${Path.join(directory, lockFileName)}`
    }
  }
  if (holder.token === me.token) {
    return { _tag: "Held", message: `DATA_DIR ${directory} is already open in this process` }
  }
  if (holder.hostname !== me.hostname) {
    return {
      _tag: "Held",
      message: `DATA_DIR ${directory} is in use by ${describe(holder, heartbeatAgeMillis)}; a lock from another host ` +
        `is never taken over: stop that server, or if it is gone for good, delete ${Path.join(directory, lockFileName)}`
    }
  }
  const sameNamespace = holder.bootId === me.bootId && holder.pidNamespace === me.pidNamespace
  if (sameNamespace) {
    // Its PID means something here. Our own PID in the file is a previous process of ours (a restarted container).
    if (holder.pid !== me.pid && alive(holder.pid, holder.processStart)) {
      return {
        _tag: "Held",
        message: `DATA_DIR ${directory} is in use by ${
          describe(holder, heartbeatAgeMillis)
        }; stop it or choose another DATA_DIR`
      }
    }
    return { _tag: "Stale", holder, why: `process ${holder.pid} no longer runs` }
  }
  // Another container (PID namespace) or an earlier boot of this host: only the heartbeat tells.
  return heartbeatAgeMillis >= timing.staleAfterMillis
    ? { _tag: "Stale", holder, why: `no heartbeat for ${Math.round(heartbeatAgeMillis / 1000)} s` }
    : { _tag: "Watch", holder }
}

/** The name of the lock file in a data directory. */
const lockFileName = "ouroboros.lock"

/** A lock this process holds. */
export interface Held {
  readonly file: string
  readonly owner: Owner
  /** Stops the heartbeat and removes the file if it is still ours. Idempotent. */
  readonly release: () => void
}

/** One look at the lock: taken, or why not. */
export type Attempt =
  | { readonly _tag: "Taken"; readonly lock: Held; readonly tookOver?: string | undefined }
  | { readonly _tag: "Held"; readonly message: string }
  | { readonly _tag: "Watch"; readonly holder: Owner; readonly mtimeMs: number }

// Written whole to a file of our own, then linked into place: the lock file never exists half-written, and the link
// fails if a lock exists.
const write = (file: string, owner: Owner): boolean => {
  const mine = `${file}.new-${owner.token}`
  Fs.writeFileSync(mine, JSON.stringify(owner) + "\n", { mode: 0o644 })
  try {
    Fs.linkSync(mine, file)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false
    throw error
  } finally {
    Fs.rmSync(mine, { force: true })
  }
}

const hold = (file: string, owner: Owner, timing: Timing): Held => {
  // The heartbeat: the file's modification time, which a contender on this host reads with the same clock.
  const beat = setInterval(() => {
    try {
      const now = new Date()
      Fs.utimesSync(file, now, now)
    } catch {
      // The file is gone or unwritable: the next contender sees an old heartbeat, which is the truth.
    }
  }, timing.heartbeatMillis)
  beat.unref()
  let released = false
  return {
    file,
    owner,
    release: () => {
      if (released) return
      released = true
      clearInterval(beat)
      // Only our own lock is removed: one taken over from us (after a long pause) belongs to its new holder.
      try {
        if (parse(Fs.readFileSync(file, "utf8"))?.token === owner.token) Fs.rmSync(file, { force: true })
      } catch {
        // already gone
      }
    }
  }
}

/**
 * Moves a stale lock out of the way, atomically: it is renamed to a name of our own and checked to be the one that
 * was judged stale; if another contender replaced it in between, it is put back.
 */
const removeStale = (file: string, stale: string, me: Owner): void => {
  const aside = `${file}.stale-${me.token}`
  try {
    Fs.renameSync(file, aside)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return
    throw error
  }
  if (parse(readOr(aside, ""))?.token !== stale) {
    // Another contender took the lock over between our look and our move: give it back (the link fails only if yet
    // another lock exists by now, and that one stands).
    try {
      Fs.linkSync(aside, file)
    } catch {
      // see above
    }
  }
  Fs.rmSync(aside, { force: true })
}

/**
 * Tries to take the lock of `directory` once. A stale lock is taken over; a lock that can only be judged by its
 * heartbeat comes back as `Watch` with the file's modification time, for the caller to look again later.
 */
export const attempt = (options: {
  readonly directory: string
  readonly timing?: Timing | undefined
  readonly now?: number | undefined
  readonly alive?: Liveness | undefined
  readonly me?: Owner | undefined
  /** The modification time seen by an earlier `Watch`: a newer heartbeat means the holder is alive. */
  readonly watched?: number | undefined
}): Attempt => {
  const timing = options.timing ?? defaultTiming
  const me = options.me ?? currentOwner()
  const directory = options.directory
  Fs.mkdirSync(directory, { recursive: true })
  const file = Path.join(directory, lockFileName)
  let tookOver: string | undefined
  for (let round = 0; round < 3; round++) {
    if (write(file, me)) return { _tag: "Taken", lock: hold(file, me, timing), tookOver }
    let text: string
    let mtimeMs: number
    try {
      text = Fs.readFileSync(file, "utf8")
      mtimeMs = Fs.statSync(file).mtimeMs
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") continue // released meanwhile
      throw error
    }
    const holder = parse(text)
    if (options.watched !== undefined && holder !== undefined && mtimeMs > options.watched) {
      return {
        _tag: "Held",
        message: `DATA_DIR ${directory} is in use by ${
          describe(holder, 0)
        } in another container of this host (its heartbeat goes on); stop it or choose another DATA_DIR`
      }
    }
    const verdict = judge({
      holder,
      me,
      heartbeatAgeMillis: (options.now ?? Date.now()) - mtimeMs,
      timing,
      directory,
      alive: options.alive
    })
    if (verdict._tag === "Held") return verdict
    if (verdict._tag === "Watch") return { _tag: "Watch", holder: verdict.holder, mtimeMs }
    tookOver = verdict.why
    removeStale(file, verdict.holder.token, me)
  }
  return { _tag: "Held", message: `cannot lock DATA_DIR ${directory}: other processes keep taking the lock` }
}
