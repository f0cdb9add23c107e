/**
 * Where backups are kept. A target writes a backup's files under a pending name and makes the backup visible only
 * when its manifest is committed, so a crash (even `kill -9`) in the middle never leaves a backup that looks complete.
 *
 * `layerDirectory(path)`: each backup is a directory. Files go to `<id>.partial/`, each fsynced; the manifest is
 * written last and fsynced, then the directory is renamed to `<id>/` (atomic on one file system) and the parent
 * directory fsynced. `list` only returns directories with a manifest; `cleanPartials` removes leftovers of
 * interrupted backups (the Backup service calls it at start).
 *
 * Backups hold every tenant's text: every directory is created `0700` and every file `0600` (manifest, events,
 * vector snapshots, verification records and their temporary files), whatever the process' umask. Reads are confined
 * to the backup's directory: a name that is not a plain file name, a symbolic link or anything but a regular file is
 * refused.
 *
 * @since 0.1.0
 */
import { Context, Data, Effect, Layer, Option, Stream } from "effect"
import type { Scope } from "effect"
import { createHash } from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"

/**
 * The target failed (I/O error, missing file).
 *
 * @since 0.1.0
 * @category errors
 */
export class BackupTargetError extends Data.TaggedError("BackupTargetError")<{
  readonly reason: "NotFound" | "Io"
  readonly message: string
  readonly cause?: unknown
}> {}

/**
 * What writing a file produced: its size and SHA-256 (hex).
 *
 * @since 0.1.0
 * @category models
 */
export interface Written {
  readonly bytes: number
  readonly sha256: string
}

/**
 * A backup being written. Closing its scope without `commit` discards it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Writer {
  /** Writes a file from a byte stream, hashing it on the way. */
  readonly write: <E, R>(
    name: string,
    bytes: Stream.Stream<Uint8Array, E, R>
  ) => Effect.Effect<Written, E | BackupTargetError, R>
  /** Writes the manifest and makes the backup visible, atomically. */
  readonly commit: (manifest: Uint8Array) => Effect.Effect<void, BackupTargetError>
}

/**
 * The name of the manifest file.
 *
 * @since 0.1.0
 * @category constants
 */
export const manifestFile = "manifest.json"

/**
 * The storage of backups.
 *
 * @since 0.1.0
 * @category services
 */
export class BackupTarget extends Context.Service<BackupTarget, {
  /** A human-readable description of where backups go (logged, shown by the CLI). */
  readonly description: string
  /** Starts a backup; it is discarded unless committed before the scope closes. */
  readonly begin: (id: string) => Effect.Effect<Writer, BackupTargetError, Scope.Scope>
  /** The ids of the complete (committed) backups, oldest first. */
  readonly list: Effect.Effect<ReadonlyArray<string>, BackupTargetError>
  /** The bytes of a file of a committed backup. */
  readonly read: (id: string, name: string) => Stream.Stream<Uint8Array, BackupTargetError>
  /** A small file (manifest, verification) of a committed backup, or none. */
  readonly readSmall: (id: string, name: string) => Effect.Effect<Option.Option<Uint8Array>, BackupTargetError>
  /** Writes or replaces a small side file of a committed backup atomically (the verification record). */
  readonly writeSmall: (id: string, name: string, bytes: Uint8Array) => Effect.Effect<void, BackupTargetError>
  /** Deletes a backup. */
  readonly remove: (id: string) => Effect.Effect<void, BackupTargetError>
  /** Removes what interrupted backups left behind; returns how many. */
  readonly cleanPartials: Effect.Effect<number, BackupTargetError>
}>()("@ouroboros/backup/BackupTarget") {}

const io = (message: string) => (cause: unknown) =>
  new BackupTargetError({
    reason: (cause as NodeJS.ErrnoException | undefined)?.code === "ENOENT" ? "NotFound" : "Io",
    message: `${message}: ${cause instanceof Error ? cause.message : String(cause)}`,
    cause
  })

const partialSuffix = ".partial"
const temporarySuffix = ".tmp"
const safeName = /^[A-Za-z0-9._:-]{1,200}$/

/**
 * The mode of every file a directory target writes: read and write for the owner only.
 *
 * @since 0.1.0
 * @category constants
 */
export const fileMode = 0o600

/**
 * The mode of every directory a directory target creates: the owner only.
 *
 * @since 0.1.0
 * @category constants
 */
export const directoryMode = 0o700

/**
 * Whether a name can be a backup id or a file name of a backup: a plain name (letters, digits, `.`, `_`, `:`, `-`; no
 * path separator, not `.` or `..`), so that it stays inside the backup's directory.
 *
 * @since 0.1.0
 * @category utils
 */
export const isSafeName = (name: string): boolean =>
  safeName.test(name) && name !== "." && name !== ".." && !name.endsWith(partialSuffix) &&
  !name.endsWith(temporarySuffix)

const checkName = (kind: string, name: string): Effect.Effect<string, BackupTargetError> =>
  isSafeName(name)
    ? Effect.succeed(name)
    : Effect.fail(new BackupTargetError({ reason: "Io", message: `invalid ${kind} name ${JSON.stringify(name)}` }))

const makePrivateDirectory = async (path: string, options?: { readonly recursive?: boolean }) => {
  const created = await Fs.promises.mkdir(path, { mode: directoryMode, recursive: options?.recursive === true })
  // mkdir's mode is filtered by the umask (which can only remove bits, but say so explicitly).
  if (created !== undefined || options?.recursive !== true) await Fs.promises.chmod(path, directoryMode)
}

const openPrivate = async (path: string) => {
  const handle = await Fs.promises.open(path, "w", fileMode)
  try {
    // A file that existed keeps its mode through open: set it.
    await handle.chmod(fileMode)
    return handle
  } catch (error) {
    await handle.close()
    throw error
  }
}

const fsyncPath = (path: string) =>
  Effect.tryPromise({
    try: async () => {
      const handle = await Fs.promises.open(path, "r")
      try {
        await handle.sync()
      } finally {
        await handle.close()
      }
    },
    catch: io(`fsync ${path}`)
  })

const writeFileSynced = (path: string, bytes: Uint8Array) =>
  Effect.tryPromise({
    try: async () => {
      const handle = await openPrivate(path)
      try {
        await handle.writeFile(bytes)
        await handle.sync()
      } finally {
        await handle.close()
      }
    },
    catch: io(`write ${path}`)
  })

/**
 * A target on a local directory (created if missing).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeDirectory = (directory: string): Effect.Effect<BackupTarget["Service"], BackupTargetError> =>
  Effect.gen(function*() {
    const root = Path.resolve(directory)
    // Created 0700 when missing; an existing directory keeps its mode (it may be shared), the backups inside are 0700.
    yield* Effect.tryPromise({
      try: () => makePrivateDirectory(root, { recursive: true }),
      catch: io(`mkdir ${root}`)
    })

    /**
     * The path of a file of a committed backup, confined to it: plain names only, and neither the backup's directory
     * nor the file may be a symbolic link or anything but what they should be (a link could point anywhere).
     */
    const confined = (id: string, name: string, strange: BackupTargetError["reason"]) =>
      Effect.gen(function*() {
        yield* checkName("backup", id)
        yield* checkName("file", name)
        const directory = Path.join(root, id)
        const path = Path.join(directory, name)
        const kinds = yield* Effect.tryPromise({
          try: async () => [await Fs.promises.lstat(directory), await Fs.promises.lstat(path)] as const,
          catch: io(`read ${id}/${name}`)
        })
        // A backup whose directory is a link is no backup; a file that is a link or a device is `strange`.
        if (!kinds[0].isDirectory()) {
          return yield* new BackupTargetError({
            reason: "NotFound",
            message: `read ${id}/${name}: ${id} is not a directory`
          })
        }
        if (!kinds[1].isFile()) {
          return yield* new BackupTargetError({
            reason: strange,
            message: `read ${id}/${name}: not a regular file (a link or a device is never followed)`
          })
        }
        return path
      })

    const begin = (id: string) =>
      Effect.gen(function*() {
        yield* checkName("backup", id)
        const pending = Path.join(root, id + partialSuffix)
        const final = Path.join(root, id)
        yield* Effect.acquireRelease(
          Effect.tryPromise({ try: () => makePrivateDirectory(pending), catch: io(`mkdir ${pending}`) }),
          // On success the directory was renamed away and this is a no-op; on failure or interruption it goes.
          () => Effect.promise(() => Fs.promises.rm(pending, { recursive: true, force: true }))
        )
        const write = <E, R>(name: string, bytes: Stream.Stream<Uint8Array, E, R>) =>
          Effect.gen(function*() {
            yield* checkName("file", name)
            const path = Path.join(pending, name)
            const handle = yield* Effect.acquireRelease(
              Effect.tryPromise({ try: () => openPrivate(path), catch: io(`open ${path}`) }),
              (handle) => Effect.promise(() => handle.close())
            )
            const hash = createHash("sha256")
            let size = 0
            yield* Stream.runForEach(bytes, (chunk) =>
              Effect.tryPromise({
                try: async () => {
                  hash.update(chunk)
                  size += chunk.byteLength
                  let offset = 0
                  while (offset < chunk.byteLength) {
                    const { bytesWritten } = await handle.write(chunk, offset)
                    offset += bytesWritten
                  }
                },
                catch: io(`write ${path}`)
              }))
            yield* Effect.tryPromise({ try: () => handle.sync(), catch: io(`fsync ${path}`) })
            return { bytes: size, sha256: hash.digest("hex") } satisfies Written
          }).pipe(Effect.scoped)
        const commit = (manifest: Uint8Array) =>
          Effect.gen(function*() {
            yield* writeFileSynced(Path.join(pending, manifestFile), manifest)
            yield* fsyncPath(pending)
            yield* Effect.tryPromise({ try: () => Fs.promises.rename(pending, final), catch: io(`rename ${pending}`) })
            yield* fsyncPath(root)
          }).pipe(Effect.uninterruptible)
        return { write, commit } satisfies Writer
      })

    const list = Effect.tryPromise({
      try: async () => {
        const entries = await Fs.promises.readdir(root, { withFileTypes: true })
        const ids: Array<string> = []
        for (const entry of entries) {
          if (!entry.isDirectory() || entry.name.endsWith(partialSuffix)) continue
          if (Fs.existsSync(Path.join(root, entry.name, manifestFile))) ids.push(entry.name)
        }
        return ids.sort()
      },
      catch: io(`list ${root}`)
    })

    const read = (id: string, name: string): Stream.Stream<Uint8Array, BackupTargetError> =>
      Stream.unwrap(Effect.gen(function*() {
        const path = yield* confined(id, name, "Io")
        return Stream.fromAsyncIterable(
          Fs.createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>,
          io(`read ${id}/${name}`)
        )
      }))

    const readSmall = (id: string, name: string) =>
      Effect.gen(function*() {
        // A side file (manifest, verification) that is not a regular file counts as absent.
        const path = yield* confined(id, name, "NotFound")
        return yield* Effect.tryPromise({
          try: () => Fs.promises.readFile(path).then((b) => Option.some(new Uint8Array(b))),
          catch: io(`read ${id}/${name}`)
        })
      }).pipe(Effect.catchIf((e) => e.reason === "NotFound", () => Effect.succeed(Option.none<Uint8Array>())))

    const writeSmall = (id: string, name: string, bytes: Uint8Array) =>
      Effect.gen(function*() {
        yield* checkName("backup", id)
        yield* checkName("file", name)
        const path = Path.join(root, id, name)
        const temp = `${path}${temporarySuffix}`
        yield* writeFileSynced(temp, bytes)
        yield* Effect.tryPromise({ try: () => Fs.promises.rename(temp, path), catch: io(`rename ${temp}`) })
      })

    const remove = (id: string) =>
      Effect.flatMap(checkName("backup", id), () =>
        Effect.tryPromise({
          try: () => Fs.promises.rm(Path.join(root, id), { recursive: true, force: true }),
          catch: io(`remove ${id}`)
        }))

    const cleanPartials = Effect.tryPromise({
      try: async () => {
        const entries = await Fs.promises.readdir(root, { withFileTypes: true })
        let removed = 0
        for (const entry of entries) {
          const incomplete = entry.isDirectory() &&
            (entry.name.endsWith(partialSuffix) || !Fs.existsSync(Path.join(root, entry.name, manifestFile)))
          if (incomplete) {
            await Fs.promises.rm(Path.join(root, entry.name), { recursive: true, force: true })
            removed++
          }
        }
        return removed
      },
      catch: io(`clean ${root}`)
    })

    return BackupTarget.of({ description: root, begin, list, read, readSmall, writeSmall, remove, cleanPartials })
  })

/**
 * Backups in a local directory.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { BackupTarget } from "@ouroboros/backup"
 * const TargetLive = BackupTarget.layerDirectory("./data/backups")
 */
export const layerDirectory = (directory: string): Layer.Layer<BackupTarget, BackupTargetError> =>
  Layer.effect(BackupTarget, makeDirectory(directory))
