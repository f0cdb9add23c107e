// Bench-only driver: paired, alternating rounds of `variant.ts` (a fresh process per variant per round, the order
// rotating and reversing from round to round), each variant's CPU per request, and its difference from `base` in the
// same round: median and spread over the rounds. `npx tsx packages/correlation/bench/run.ts [rounds] [n] [variants]`.
// The children's stdout (the access log) goes to a file, as a container runtime's log would.
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const rounds = Number(process.argv[2] ?? 5)
const n = Number(process.argv[3] ?? 50_000)
const variants = (process.argv[4] ?? "base,log,platform,metrics,compress,limit,all").split(",")
const here = Path.dirname(new URL(import.meta.url).pathname)
const tsx = Path.resolve(here, "../../../node_modules/.bin/tsx")
const logFile = Path.join(Os.tmpdir(), `access-log-bench-${process.pid}.log`)

const results = new Map<string, Array<number>>(variants.map((v) => [v, []]))
for (let round = 0; round < rounds; round++) {
  const rotated = variants.map((_, i) => variants[(i + round) % variants.length]!)
  const order = round % 2 === 0 ? rotated : rotated.reverse()
  for (const variant of order) {
    const out = Fs.openSync(logFile, "w")
    const child = spawnSync(tsx, [Path.join(here, "variant.ts"), variant, String(n)], {
      stdio: ["ignore", out, "pipe"],
      encoding: "utf8"
    })
    Fs.closeSync(out)
    const line = child.stderr.split("\n").find((l) => l.startsWith("RESULT="))
    if (line === undefined) throw new Error(`${variant}: ${child.stderr}`)
    const result = JSON.parse(line.slice(7)) as { cpuNanos: number; failures: number }
    if (result.failures > 0) throw new Error(`${variant}: ${result.failures} failures`)
    results.get(variant)!.push(result.cpuNanos / 1000)
  }
}
Fs.rmSync(logFile, { force: true })

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const fmt = (x: number) => x.toFixed(2)
const base = results.get("base")!
console.log(`${rounds} paired rounds, ${n} requests per run, CPU µs per request (in process)`)
for (const [variant, xs] of results) {
  const diffs = base === undefined || variant === "base" ? undefined : xs.map((x, i) => x - base[i]!)
  console.log(
    `${variant.padEnd(9)} median ${fmt(median(xs))} [${fmt(Math.min(...xs))}…${fmt(Math.max(...xs))}]` +
      (diffs === undefined
        ? ""
        : `  vs base: median ${diffs[0]! >= 0 ? "+" : ""}${fmt(median(diffs))} [${fmt(Math.min(...diffs))}…${
          fmt(Math.max(...diffs))
        }]`)
  )
}
