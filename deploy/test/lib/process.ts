/**
 * Child processes and waiting, each bounded by a deadline: nothing here sleeps for a time it assumes is enough.
 */
import { spawn, type SpawnOptions } from "node:child_process"

export interface Result {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs a command to its end, or kills it (SIGKILL) at the deadline and fails. */
export const run = (
  command: string,
  args: ReadonlyArray<string>,
  options: SpawnOptions & { readonly timeoutMs: number; readonly input?: string }
): Promise<Result> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ["pipe", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (d) => (stdout += d))
    child.stderr!.on("data", (d) => (stderr += d))
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`${command} ${args.join(" ")}: no end within ${options.timeoutMs} ms\n${stdout}\n${stderr}`))
    }, options.timeoutMs)
    child.on("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
    child.stdin!.on("error", () => {}) // a command that does not read its input may close it first (EPIPE)
    child.stdin!.end(options.input ?? "")
  })

/** Polls `probe` until it returns a value other than undefined, or fails at the deadline with the last state. */
export const until = async <A>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<A | undefined>,
  intervalMs = 100
): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await probe()
      if (value !== undefined) return value
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${what}: not within ${timeoutMs} ms${last === undefined ? "" : ` (last error: ${String(last)})`}`
      )
    }
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

/** A TCP port free on 127.0.0.1, outside the kernel's ephemeral range (`@ouroboros/testkit/Ports`). */
export { freePort } from "@ouroboros/testkit/Ports"

/** GET with a per-request timeout; resolves with the status and body, or rejects when nothing answers. */
export const get = async (url: string, timeoutMs = 3000) => {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
  return { status: response.status, headers: response.headers, body: await response.text() }
}
