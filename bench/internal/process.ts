/**
 * What the HTTP benchmarks read about a server process they started.
 */
import { readFile } from "node:fs/promises"

/** User and system CPU time of a process (all its threads, live and exited) so far, in µs, from `/proc`. */
export const cpuMicros = async (pid: number): Promise<{ readonly user: number; readonly system: number }> => {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8")
  // The command name (in parentheses) may hold spaces; the fields after it are space-separated.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  const tick = 1_000_000 / 100 // USER_HZ is 100 on Linux
  return { user: Number(fields[11]) * tick, system: Number(fields[12]) * tick }
}

/** Waits until `url` answers 200 (up to 60 s). */
export const awaitOk = async (url: string): Promise<void> => {
  for (let i = 0; i < 1200; i++) {
    const ok = await fetch(url).then(async (r) => {
      await r.arrayBuffer()
      return r.ok
    }, () => false)
    if (ok) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`${url} did not answer 200`)
}

/** The machine's CPU time so far, in jiffies: all of it, and what the hypervisor took for others (steal). */
export const machineJiffies = async (): Promise<{ readonly total: number; readonly steal: number }> => {
  const stat = await readFile("/proc/stat", "utf8")
  // cpu user nice system idle iowait irq softirq steal guest guest_nice
  const fields = stat.slice(0, stat.indexOf("\n")).trim().split(/\s+/).slice(1, 9).map(Number)
  return { total: fields.reduce((a, b) => a + b, 0), steal: fields[7]! }
}
