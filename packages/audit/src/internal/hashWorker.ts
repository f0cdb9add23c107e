/**
 * The hashing half of a verification, on a worker thread: the leaf hash of each entry's content compared with the
 * stored leaf, and the Merkle tree over the stored leaves with its root at the sizes asked for. The main thread keeps
 * the other half (parsing, the canonical check, the columns) and runs it while the worker hashes.
 *
 * One message per window of positions, with everything packed into transferred buffers: node:crypto's cost for short
 * inputs is mostly per call, and so is a message's, so the worker gets thousands of hashes per message.
 *
 * The worker is plain JavaScript given as text (`eval`): it needs only `node:crypto`, so it runs the same from the
 * sources, the build or a bundle.
 */
import { Effect, type Scope } from "effect"
import { Worker } from "node:worker_threads"

/** One window of positions `[from, from + count)`, in the order they are pushed into the tree. */
interface Job {
  readonly from: number
  readonly count: number
  /** `count` hashes of 32 bytes: the leaves pushed into the tree (zeros where a leaf is missing or malformed). */
  readonly leaves: Uint8Array<ArrayBuffer>
  /** 1 where the stored leaf is well-formed: only then is the content's hash compared with it. */
  readonly leafValid: Uint8Array<ArrayBuffer>
  /** The contents, each as `0x00 ‖ UTF-8(content)` between `offsets[i]` and `offsets[i + 1]` (empty: no content). */
  readonly text: Uint8Array<ArrayBuffer>
  readonly offsets: Int32Array<ArrayBuffer>
  /** The sizes (in `(from, from + count]`, ascending) whose root the main thread needs. */
  readonly rootsAt: ReadonlyArray<number>
}

interface JobResult {
  /** 1 where the content hashes to the stored leaf. */
  readonly hashOk: Uint8Array
  /** The root at each of `rootsAt`. */
  readonly roots: ReadonlyArray<Uint8Array>
}

const source = `
const { parentPort } = require("node:worker_threads")
const { hash } = require("node:crypto")
const frontier = []
let size = 0
const node = Buffer.allocUnsafe(65)
node[0] = 1
const nodeHash = (left, right) => {
  node.set(left, 1)
  node.set(right, 33)
  return hash("sha256", node, "buffer")
}
const fold = () => {
  if (frontier.length === 0) return hash("sha256", new Uint8Array(0), "buffer")
  let root = frontier[frontier.length - 1].hash
  for (let i = frontier.length - 2; i >= 0; i--) root = nodeHash(frontier[i].hash, root)
  return root
}
const equal = (a, aOffset, b) => {
  for (let i = 0; i < 32; i++) if (a[aOffset + i] !== b[i]) return false
  return true
}
parentPort.on("message", (job) => {
  if (job.from !== size) throw new Error("audit hash worker: window at " + job.from + ", tree at " + size)
  const hashOk = new Uint8Array(job.count)
  const roots = []
  let r = 0
  for (let i = 0; i < job.count; i++) {
    const start = job.offsets[i]
    const end = job.offsets[i + 1]
    if (end > start && job.leafValid[i] === 1) {
      hashOk[i] = equal(job.leaves, i * 32, hash("sha256", job.text.subarray(start, end), "buffer")) ? 1 : 0
    }
    let merged = { hash: job.leaves.slice(i * 32, i * 32 + 32), height: 0 }
    while (frontier.length > 0 && frontier[frontier.length - 1].height === merged.height) {
      const left = frontier.pop()
      merged = { hash: nodeHash(left.hash, merged.hash), height: merged.height + 1 }
    }
    frontier.push(merged)
    size++
    while (r < job.rootsAt.length && job.rootsAt[r] === size) {
      roots.push(fold())
      r++
    }
  }
  parentPort.postMessage({ hashOk, roots }, [hashOk.buffer])
})
`

/** A worker that hashes windows in order, one at a time. */
export interface HashWorker {
  /** Posts the window at once (its buffers are transferred); the promise settles with the worker's answer. */
  readonly submit: (job: Job) => Promise<JobResult>
}

/** Starts a worker for the scope; `undefined` when none can be started (the caller hashes on its own thread). */
export const make: Effect.Effect<HashWorker | undefined, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => {
    try {
      return new Worker(source, { eval: true })
    } catch {
      return undefined
    }
  }),
  (worker) => worker === undefined ? Effect.void : Effect.promise(() => worker.terminate())
).pipe(Effect.map((worker) =>
  worker === undefined ? undefined : {
    submit: (job) =>
      new Promise<JobResult>((resolve, reject) => {
        const onMessage = (result: JobResult) => {
          worker.off("error", onError)
          resolve(result)
        }
        const onError = (error: Error) => {
          worker.off("message", onMessage)
          reject(error)
        }
        worker.once("message", onMessage)
        worker.once("error", onError)
        worker.postMessage(job, [job.leaves.buffer, job.leafValid.buffer, job.text.buffer, job.offsets.buffer])
      })
  }
))

const encoder = new TextEncoder()

/** Packs `0x00 ‖ UTF-8(content)` of each content (undefined: none) into one buffer with offsets. */
export const packContents = (
  contents: ReadonlyArray<string | undefined>
): { text: Uint8Array<ArrayBuffer>; offsets: Int32Array<ArrayBuffer> } => {
  let capacity = 1
  for (const content of contents) if (content !== undefined) capacity += content.length * 3 + 1
  const text = new Uint8Array(capacity)
  const offsets = new Int32Array(contents.length + 1)
  let at = 0
  for (let i = 0; i < contents.length; i++) {
    offsets[i] = at
    const content = contents[i]
    if (content === undefined) continue
    text[at] = 0x00
    at += 1 + encoder.encodeInto(content, text.subarray(at + 1)).written
  }
  offsets[contents.length] = at
  return { text, offsets }
}
