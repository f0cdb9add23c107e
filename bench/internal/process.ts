/**
 * What the HTTP benchmarks read about a server process they started.
 */
import type { ChildProcess } from "node:child_process"
import { readFile } from "node:fs/promises"

/** User and system CPU time of a process (all its threads, live and exited) so far, in µs, from `/proc`. */
export const cpuMicros = async (pid: number): Promise<{ readonly user: number; readonly system: number }> => {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8")
  // The command name (in parentheses) may hold spaces; the fields after it are space-separated.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  const tick = 1_000_000 / 100 // USER_HZ is 100 on Linux
  return { user: Number(fields[11]) * tick, system: Number(fields[12]) * tick }
}

/**
 * Waits until `url` answers 200 (up to 60 s; each attempt bounded by 1 s, so that a port taken by something that does
 * not answer HTTP cannot hang it), polling every `intervalMillis`. `gone` is asked before each attempt: when it
 * says the process has exited, waiting stops at once.
 */
export const awaitOk = async (
  url: string,
  options: { readonly gone?: () => boolean; readonly intervalMillis?: number } = {}
): Promise<void> => {
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    if (options.gone?.() === true) throw new Error(`the process serving ${url} exited`)
    const ok = await fetch(url, { signal: AbortSignal.timeout(1000) }).then(async (r) => {
      await r.arrayBuffer()
      return r.ok
    }, () => false)
    if (ok) return
    await new Promise((r) => setTimeout(r, options.intervalMillis ?? 50))
  }
  throw new Error(`${url} did not answer 200`)
}

/** A port of 127.0.0.1 that nothing listens on, outside the kernel's ephemeral range (`@ouroboros/testkit/Ports`). */
export { freePort } from "@ouroboros/testkit/Ports"

const children = new Set<ChildProcess>()
let cleanupInstalled = false

/**
 * Remembers a child process so that it is killed when this process exits or is interrupted (a benchmark stopped
 * half-way leaves no server behind); forgotten once it exits.
 */
export const track = (child: ChildProcess): ChildProcess => {
  if (!cleanupInstalled) {
    cleanupInstalled = true
    process.once("exit", () => {
      for (const c of children) c.kill("SIGKILL")
    })
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.once(signal, () => {
        for (const c of children) c.kill("SIGKILL")
        process.exit(130)
      })
    }
  }
  children.add(child)
  child.once("exit", () => children.delete(child))
  return child
}

/** The machine's CPU time so far, in jiffies: all of it, and what the hypervisor took for others (steal). */
export const machineJiffies = async (): Promise<{ readonly total: number; readonly steal: number }> => {
  const stat = await readFile("/proc/stat", "utf8")
  // cpu user nice system idle iowait irq softirq steal guest guest_nice
  const fields = stat.slice(0, stat.indexOf("\n")).trim().split(/\s+/).slice(1, 9).map(Number)
  return { total: fields.reduce((a, b) => a + b, 0), steal: fields[7]! }
}
