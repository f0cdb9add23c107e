/**
 * Worker processes for paired rounds: the benchmark's driver starts one worker for our code on Effect 4 (this tree)
 * and, when an Effect 3 checkout is given, one for the same code before the port, and asks them for rounds in turn, so
 * that the load of this shared machine hits both alike. Peers run inside the workers beside ours.
 *
 * The Effect 3 side: `BENCH_E3_TREE` names a checkout of the commit before the port with its dependencies installed
 * (`npm ci`) and, for the HTTP sections, its server built. Its adapters (`bench/e3/*.mjs`, written against Effect 3's
 * API) are bundled here with that tree's packages and run on this Node, against that tree's `node_modules`.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { pathToFileURL } from "node:url"
import { machineJiffies, track } from "../internal/process.js"
import { root, startBundled } from "../internal/server.js"

/** The Effect 3 checkout to compare with, when `BENCH_E3_TREE` names one. */
export const e3Tree = (): string | undefined => {
  const tree = process.env.BENCH_E3_TREE
  if (tree === undefined || tree === "") return undefined
  if (!Fs.existsSync(Path.join(tree, "node_modules/effect/package.json"))) {
    throw new Error(`BENCH_E3_TREE=${tree} has no node_modules/effect: run npm ci there first`)
  }
  return Path.resolve(tree)
}

/** The note printed when no Effect 3 tree is given. */
export const noE3Note =
  "(no Effect 3 column: set BENCH_E3_TREE to a checkout of the commit before the port, with `npm ci` run, to add it)"

let e3Bundle: Promise<string> | undefined

/**
 * Bundles `bench/e3/*.mjs` with the Effect 3 tree's packages into a scratch directory whose `node_modules` is that
 * tree's, and returns the directory (once per process).
 */
export const buildE3 = (tree: string): Promise<string> =>
  e3Bundle ??= (async () => {
    const { build } = await import("esbuild")
    const out = Path.join(Os.tmpdir(), `ouroboros-bench-e3-${Path.basename(tree)}-${process.pid}`)
    Fs.mkdirSync(out, { recursive: true })
    const link = Path.join(out, "node_modules")
    if (!Fs.existsSync(link)) Fs.symlinkSync(Path.join(tree, "node_modules"), link)
    process.once("exit", () => Fs.rmSync(out, { recursive: true, force: true }))
    const sources = Path.join(root, "bench/e3")
    await build({
      entryPoints: Fs.readdirSync(sources).filter((name) => name.endsWith(".mjs")).map((name) =>
        Path.join(sources, name)
      ),
      outdir: out,
      bundle: true,
      splitting: true,
      platform: "node",
      target: "node22",
      format: "esm",
      logLevel: "warning",
      plugins: [{
        name: "effect-3-tree",
        setup(build) {
          // `e3-tree/…` names a file of the Effect 3 tree (e.g. its bench/internal/ping.ts).
          build.onResolve(
            { filter: /^e3-tree\// },
            (args) => ({ path: Path.join(tree, args.path.slice("e3-tree/".length)) })
          )
          // Our packages come from the Effect 3 tree and are bundled as the server bundles them; every other package
          // stays external and loads from that tree's node_modules (through the link) at run time.
          build.onResolve({ filter: /^@ouroboros\// }, (args) =>
            args.resolveDir.startsWith(tree)
              ? undefined
              : build.resolve(args.path, { kind: args.kind, resolveDir: Path.join(tree, "bench") }))
          build.onResolve({ filter: /^[^./]/ }, (args) =>
            args.path.startsWith("@ouroboros/") ? undefined : { path: args.path, external: true })
        }
      }]
    })
    const worker = Path.join(tree, "packages/sql/src/pglite-worker.mjs")
    if (Fs.existsSync(worker)) {
      Fs.copyFileSync(worker, Path.join(out, "pglite-worker.mjs"))
    }
    return out
  })()

/** The module URL of an Effect 3 adapter, e.g. `e3Module(tree, "rate-limit")`. */
export const e3Module = async (tree: string, name: string): Promise<string> =>
  pathToFileURL(Path.join(await buildE3(tree), `${name}.js`)).href

let launcher: string | undefined

/**
 * The arguments that make a child Node load `url` and call its export `fn` with `arg`: through a small launcher file
 * (not `--input-type=module -e`, which worker threads inherit and refuse, e.g. PGlite's).
 */
export const nodeArgs = (url: string, fn: string, arg?: unknown): Array<string> => {
  if (launcher === undefined) {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-bench-launch-"))
    process.once("exit", () => Fs.rmSync(dir, { recursive: true, force: true }))
    launcher = Path.join(dir, "launch.mjs")
    Fs.writeFileSync(
      launcher,
      "const [url, fn, arg] = process.argv.slice(2)\n" +
        "const module = await import(url)\n" +
        "await module[fn](arg === undefined ? undefined : JSON.parse(arg))\n"
    )
  }
  return [
    // From the TypeScript sources (not bundled) the child needs tsx.
    ...(url.endsWith(".ts") ? ["--import", "tsx"] : []),
    launcher,
    url,
    fn,
    ...(arg === undefined ? [] : [JSON.stringify(arg)])
  ]
}

/** A worker process that answers tasks. */
export interface Worker {
  readonly label: string
  readonly pid: number
  readonly call: <A>(task: string, arg?: unknown) => Promise<A>
  readonly stop: () => Promise<void>
}

type Message = { readonly id: number; readonly value?: unknown; readonly error?: string } | { readonly ready: true }

/** Starts `url`'s export `fn` (which calls {@link serveTasks}) in a child process. */
export const startWorker = (label: string, url: string, fn = "worker", env: Record<string, string> = {}) =>
  new Promise<Worker>((resolve, reject) => {
    const child: ChildProcess = track(spawn(process.execPath, nodeArgs(url, fn), {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      env: { ...process.env, ...env }
    }))
    const waiting = new Map<number, { resolve: (a: unknown) => void; reject: (e: Error) => void }>()
    let next = 0
    child.on("message", (message: Message) => {
      if ("ready" in message) {
        resolve({
          label,
          pid: child.pid!,
          call: <A>(task: string, arg?: unknown) =>
            new Promise<A>((resolve, reject) => {
              const id = next++
              waiting.set(id, { resolve: resolve as (a: unknown) => void, reject })
              child.send({ id, task, arg })
            }),
          stop: () =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null || child.signalCode !== null) return resolve()
              child.once("exit", () => resolve())
              child.disconnect()
              setTimeout(() => child.kill("SIGKILL"), 10_000).unref()
            })
        })
        return
      }
      const pending = waiting.get(message.id)
      waiting.delete(message.id)
      if (message.error !== undefined) pending?.reject(new Error(`${label}: ${message.error}`))
      else pending?.resolve(message.value)
    })
    child.once("exit", (code, signal) => {
      const error = new Error(`${label} worker exited (${code ?? signal})`)
      for (const pending of waiting.values()) pending.reject(error)
      reject(error)
    })
  })

/** A server child that prints `PORT=n` once it listens. */
export interface ServerChild {
  readonly pid: number
  readonly port: number
  readonly stop: () => Promise<void>
  /** What the child printed so far (all of it once `stop` resolved). */
  readonly output: () => string
}

/** Starts `node args` and waits for its `PORT=n` line (60 s at most). */
export const startServerChild = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  new Promise<ServerChild>((resolve, reject) => {
    const child = track(spawn(process.execPath, args, {
      stdio: ["ignore", "pipe", process.env.BENCH_DEBUG ? "inherit" : "ignore"],
      env: { ...process.env, ...env }
    }))
    let output = ""
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error("bench server did not start"))
    }, 60_000)
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`bench server exited with ${code}`))
    })
    let started = false
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString()
      const match = /PORT=(\d+)/.exec(output)
      if (started || match === null) return
      started = true
      clearTimeout(timer)
      resolve({ pid: child.pid!, port: Number(match[1]), stop: () => stopProcess(child), output: () => output })
    })
  })

/**
 * Starts a built server (`apps/server/dist/main.js` of this tree or of the Effect 3 tree) as `startBundled` of
 * `bench/internal/server.ts` does (a free port of 127.0.0.1, an API key for tenant `bench`, a default policy no run
 * reaches, `env` over those); resolves once `/health/ready` answers 200.
 */
export const startBuiltServer = async (
  main: string,
  dataDir: string,
  env: Record<string, string> = {}
): Promise<ServerChild> => {
  const { child, port } = await startBundled(dataDir, env, main)
  return { pid: child.pid!, port, stop: () => stopProcess(child), output: () => "" }
}

/** SIGTERM, SIGKILL after 10 s; resolves once the child has exited. */
export const stopProcess = (child: ChildProcess): Promise<void> =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    // "close": the child has exited and its output has been read to the end.
    child.once("close", () => resolve())
    child.kill("SIGTERM")
    setTimeout(() => child.kill("SIGKILL"), 10_000).unref()
  })

/** The machine's state over a benchmark: load averages at its start and end, and the host's steal in between. */
export const machineWatch = async () => {
  const loadBefore = Os.loadavg()[0]!
  const before = await machineJiffies()
  const started = performance.now()
  return async (): Promise<string> => {
    const after = await machineJiffies()
    const steal = (after.steal - before.steal) / Math.max(1, after.total - before.total)
    return `machine: ${Os.cpus().length} cores, load average (1 min) ${loadBefore.toFixed(1)} at the start and ` +
      `${Os.loadavg()[0]!.toFixed(1)} at the end, host steal ${(steal * 100).toFixed(1)}% of CPU time over the ` +
      `${((performance.now() - started) / 1000).toFixed(0)} s; node ${process.version}`
  }
}

/** A side of the comparison: our code on this tree, or the same code on the Effect 3 tree. */
export interface Side {
  readonly label: "Effect 4" | "Effect 3"
  /** The module whose export `worker` serves the rounds. */
  readonly url: string
}

/** Ours on this tree, from `url` (the benchmark's `import.meta.url`), and the Effect 3 adapter `name` when given. */
export const sides = async (url: string, name: string): Promise<ReadonlyArray<Side>> => {
  const tree = e3Tree()
  return tree === undefined
    ? [{ label: "Effect 4", url }]
    : [{ label: "Effect 4", url }, { label: "Effect 3", url: await e3Module(tree, name) }]
}

/**
 * Runs `rounds` paired rounds of `task` over one worker per side, the sides taking turns (the first alternating), and
 * returns each side's results in round order. The rounds are spread over `processes` successive sets of workers, so
 * that no single process's luck (where the JIT and the heap landed) decides; each set first runs `warmUp`.
 */
export const pairedRounds = async <R>(options: {
  readonly sides: ReadonlyArray<Side>
  readonly rounds: number
  readonly processes?: number
  readonly warmUp?: string
  readonly warmUpArg?: unknown
  /** Receives what each side's warm-up returned. */
  readonly onWarmUp?: (label: string, value: unknown) => void
  readonly task: string
  readonly arg?: (round: number) => unknown
}): Promise<Record<string, Array<R>>> => {
  const results: Record<string, Array<R>> = Object.fromEntries(options.sides.map((s) => [s.label, []]))
  const processes = Math.max(1, Math.min(options.processes ?? 1, options.rounds))
  let round = 0
  for (let p = 0; p < processes; p++) {
    const workers = await Promise.all(options.sides.map((s) => startWorker(s.label, s.url)))
    try {
      if (options.warmUp !== undefined) {
        for (const w of inTurn(p, workers)) {
          const value = await w.call(options.warmUp, options.warmUpArg)
          options.onWarmUp?.(w.label, value)
        }
      }
      const until = Math.round(((p + 1) * options.rounds) / processes)
      for (; round < until; round++) {
        for (const w of inTurn(round, workers)) {
          results[w.label]!.push(await w.call<R>(options.task, options.arg?.(round) ?? round))
        }
      }
    } finally {
      await Promise.all(workers.map((w) => w.stop()))
    }
  }
  return results
}

/** The order of the two sides in round `round`: alternated, so neither always goes first. */
export const inTurn = <A>(round: number, sides: ReadonlyArray<A>): ReadonlyArray<A> =>
  round % 2 === 0 ? sides : [...sides].reverse()

/** An integer from the environment, or `fallback`. */
export const envInt = (name: string, fallback: number): number => {
  const raw = process.env[name]
  const n = raw === undefined || raw === "" ? NaN : Number(raw)
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : fallback
}
