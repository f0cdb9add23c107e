/**
 * Server restart to ready, standalone: `npx tsx packages/sql/bench/startup.ts [rounds]` (default 5).
 *
 * Bundles `apps/server/src/main.ts` the way `apps/server/build.mjs` does, into a temporary directory, beside a second
 * entry that calls `startEmbeddedEarly()` before it imports that bundle (what `@ouroboros/sql/Early` is for), and a
 * baseline bundle with `packages/sql` as committed (`git archive HEAD`). Each
 * variant restarts on its own data directory (created by one start before the rounds); a round starts every variant
 * once, in an order that alternates from round to round. Measured: ms from `spawn` to the first 200 of
 * `/health/ready` (polled every 5 ms), and the start-up milestones the process prints with
 * `OUROBOROS_STARTUP_TRACE=1` (ms since the process's own start: module loading shows as the gap before the first),
 * and the CPU time the process had used by then (all threads), which a busy machine inflates less than wall time.
 *
 * Goal (issue 21): restart under 1 s, judged on the median of the worse half of the rounds.
 */
import { freePort } from "@ouroboros/testkit/Ports"
import { build, type BuildOptions, type Plugin } from "esbuild"
import { spawn, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const root = Path.resolve(import.meta.dirname, "../../..")
const rounds = Math.max(1, Number(process.argv[2] ?? 5))
const goalMillis = 1000

/**
 * Bundles the server (and the early entry) into `out`, with `node_modules` reachable for the externals. `sql`, when
 * given, is another copy of `packages/sql` (the committed one, for the baseline) that replaces `@ouroboros/sql`.
 */
const bundle = async (out: string, sql?: string): Promise<void> => {
  Fs.mkdirSync(out, { recursive: true })
  Fs.symlinkSync(Path.join(root, "node_modules"), Path.join(out, "node_modules"))
  const early = Path.join(out, "early-entry.ts")
  Fs.writeFileSync(
    early,
    `import { startEmbeddedEarly } from ${JSON.stringify(Path.join(root, "packages/sql/src/Early.ts"))}\n` +
      `startEmbeddedEarly()\nawait import("./main.js")\n`
  )
  const common: BuildOptions = {
    bundle: true,
    platform: "node",
    target: "node22",
    format: "esm",
    outdir: out,
    logLevel: "warning",
    external: ["@electric-sql/pglite", "@electric-sql/pglite-socket", "pg-native", "./main.js"],
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" }
  }
  const plugins: Array<Plugin> = sql === undefined ? [] : [{
    name: "baseline-sql",
    setup: (build) => {
      build.onResolve({ filter: /^@ouroboros\/sql(\/|$)/ }, (args) => ({
        path: Path.join(sql, "src", args.path === "@ouroboros/sql" ? "index.ts" : `${args.path.slice(15)}.ts`)
      }))
    }
  }]
  await build({
    ...common,
    plugins,
    nodePaths: [Path.join(root, "node_modules")],
    entryPoints: { main: Path.join(root, "apps/server/src/main.ts") }
  })
  if (sql === undefined) await build({ ...common, entryPoints: { early } })
  const worker = Path.join(sql ?? Path.join(root, "packages/sql"), "src/pglite-worker.mjs")
  Fs.copyFileSync(worker, Path.join(out, "pglite-worker.mjs"))
}

interface Run {
  readonly ready: number
  /** CPU time of the process (all its threads) until it was ready, ms: less sensitive to a busy machine. */
  readonly cpu: number
  readonly marks: Record<string, number>
}

/** utime + stime of a process, ms (`/proc/<pid>/stat`, clock ticks of 10 ms); NaN where there is no /proc. */
const cpuMillis = (pid: number): number => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return NaN
  }
}

/** One start: ms from spawn to the first ready 200, and the process's own milestones; then SIGTERM and wait. */
const startOnce = async (entry: string, dataDir: string, env: Record<string, string> = {}): Promise<Run> => {
  const port = await freePort()
  const started = performance.now()
  const child = spawn(process.execPath, [entry], {
    env: {
      PATH: process.env.PATH ?? "",
      PORT: String(port),
      HOST: "127.0.0.1",
      DATA_DIR: dataDir,
      LOG_FORMAT: "json",
      LOG_LEVEL: "info",
      OUROBOROS_API_KEYS: "bench:bench-key-0123456789abcdef",
      OUROBOROS_ADMIN_API_KEY: "bench-admin-0123456789abcdef",
      SHUTDOWN_DRAIN_MS: "0",
      OUROBOROS_STARTUP_TRACE: "1",
      ...env
    },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve))
  const marks: Record<string, number> = {}
  let output = ""
  let pending = ""
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
  child.stderr.on("data", (chunk: Buffer) => {
    pending += chunk.toString()
    const lines = pending.split("\n")
    pending = lines.pop()!
    for (const line of lines) {
      try {
        const { ms, startup } = JSON.parse(line) as { startup?: string; ms?: number }
        if (typeof startup === "string" && typeof ms === "number") marks[startup] ??= ms
        else output += line + "\n"
      } catch {
        output += line + "\n"
      }
    }
  })
  try {
    // The deadline only bounds the benchmark.
    const deadline = performance.now() + 120_000
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode}):\n${output}`)
      if (performance.now() > deadline) throw new Error(`the server did not get ready:\n${output}`)
      const ok = await fetch(`http://127.0.0.1:${port}/health/ready`).then((r) => r.ok, () => false)
      if (ok) return { ready: performance.now() - started, cpu: cpuMillis(child.pid!), marks }
      await new Promise((r) => setTimeout(r, 5))
    }
  } finally {
    if (child.exitCode === null) child.kill("SIGTERM")
    const code = await exited
    if (code !== 0) console.error(`warning: the server exited with ${code} on SIGTERM:\n${output.slice(-2000)}`)
  }
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const show = (xs: ReadonlyArray<number>) =>
  xs.length === 0 ? "-" : `${Math.round(median(xs))} (${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))})`
/** The median of the worse ⌈n/2⌉ rounds (lower is better), as bench/paired/stats.ts judges goals. */
const worseHalf = (xs: ReadonlyArray<number>) => {
  const worse = [...xs].sort((a, b) => b - a).slice(0, Math.ceil(xs.length / 2))
  return worse[Math.floor((worse.length - 1) / 2)]!
}

const out = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-startup-bench-"))
const dirs: Array<string> = []
try {
  // The baseline: packages/sql as committed (HEAD), the rest of the tree as it is.
  const head = Path.join(out, "head")
  Fs.mkdirSync(head)
  const archive = spawnSync("git", ["archive", "HEAD", "packages/sql", "tsconfig.base.json"], {
    cwd: root,
    maxBuffer: 1 << 28
  })
  spawnSync("tar", ["-x", "-C", head], { input: archive.stdout })
  await bundle(Path.join(out, "baseline"), Path.join(head, "packages/sql"))
  await bundle(out)
  const variants: ReadonlyArray<{ name: string; entry: string; env?: Record<string, string> }> = [
    { name: "baseline: packages/sql at HEAD", entry: Path.join(out, "baseline", "main.js") },
    { name: "bundle as built today (main.js)", entry: Path.join(out, "main.js") },
    { name: "startEmbeddedEarly first (early.js)", entry: Path.join(out, "early.js") },
    {
      name: "early.js + NODE_COMPILE_CACHE",
      entry: Path.join(out, "early.js"),
      env: { NODE_COMPILE_CACHE: Path.join(out, "compile-cache") }
    }
  ]
  const data = variants.map(() => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-startup-bench-data-"))
    dirs.push(dir)
    return dir
  })
  const fresh: Array<number> = []
  for (const [i, v] of variants.entries()) fresh.push((await startOnce(v.entry, data[i]!, v.env)).ready)
  const freshLine = variants.map((v, i) => `${v.name} ${Math.round(fresh[i]!)} ms`).join("; ")
  console.log(`fresh data directory (one start each): ${freshLine}`)
  const results: Array<Array<Run>> = variants.map(() => [])
  for (let round = 0; round < rounds; round++) {
    const order = variants.map((_, i) => i)
    if (round % 2 === 1) order.reverse()
    for (const i of order) results[i]!.push(await startOnce(variants[i]!.entry, data[i]!, variants[i]!.env))
  }
  console.log(`\nRestart to the first 200 of /health/ready, ms, median (min–max) of ${rounds} rounds`)
  const names = [...new Set(results.flatMap((runs) => runs.flatMap((r) => Object.keys(r.marks))))]
  console.table(variants.map((v, i) => {
    const runs = results[i]!
    const row: Record<string, string> = {
      variant: v.name,
      ready: show(runs.map((r) => r.ready)),
      "CPU ms to ready": show(runs.map((r) => r.cpu))
    }
    const half = worseHalf(runs.map((r) => r.ready))
    row[`goal < ${goalMillis} ms`] = runs.length < 5
      ? "not judged (< 5 rounds)"
      : `${half < goalMillis ? "met" : "NOT MET"} (worse half ${Math.round(half)})`
    return row
  }))
  console.log("\nMilestones, ms since the process started, median (min–max)")
  console.table(names.map((name) => {
    const row: Record<string, string> = { milestone: name }
    for (const [i, v] of variants.entries()) {
      row[v.name] = show(results[i]!.flatMap((r) => r.marks[name] === undefined ? [] : [r.marks[name]!]))
    }
    return row
  }))
} finally {
  for (const dir of dirs) Fs.rmSync(dir, { recursive: true, force: true })
  Fs.rmSync(out, { recursive: true, force: true })
}
