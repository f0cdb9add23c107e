/**
 * The request cost of the audit log on `POST /api/v1/documents` (issue 17): the bundled server as it is (the request
 * path's audit step, an `authentication.success` queued once per client in `AUDIT_AUTH_SUCCESS_WINDOW`, a
 * `data.create` committed before each 201), beside the same server bundled with the audit log switched off (a module
 * substituted for `apps/server/src/Audit.ts` while bundling, {@link auditOff}: no middleware, a log that records
 * nothing). Every request creates a new document (a
 * random id), on the embedded database and the local embedder.
 *
 * The harness is the paired one of the HTTP benchmarks: each round starts a fresh process of both on fresh data
 * directories, warms each up, then loads each in turn with autocannon, the order alternating from round to round;
 * each server's CPU time is read from `/proc` around its load. Reported: requests per second, p99 latency and server
 * CPU per request of both, and the audit's share; the issue sets no goal for it.
 *
 * Run: `npx tsx bench/audit-http.ts` after `node apps/server/build.mjs`. `AUDIT_BENCH_ROUNDS` (default 5),
 * `BENCH_SECONDS` (per load, default 5), `AUDIT_BENCH_WARMUP` (seconds, default 2), `BENCH_CONNECTIONS` (default 10).
 */
import autocannon from "autocannon"
import { build } from "esbuild"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { cpuMicros } from "./internal/process.js"
import { benchKey, root, startBundled, stopChild } from "./internal/server.js"
import { median, show } from "./paired/stats.js"

const seconds = Number(process.env.BENCH_SECONDS ?? 5)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 10)
const rounds = Math.max(1, Number(process.env.AUDIT_BENCH_ROUNDS ?? 5))
const warmup = Number(process.env.AUDIT_BENCH_WARMUP ?? 2)

/**
 * `apps/server/src/Audit.ts` with the audit log switched off: the same module (its other exports re-exported), but the
 * request-path middleware is the identity and the log a service that records nothing, so every hook (breakers, flags,
 * backups, tenants) and `Documents` run without writing. Compiled with the server's sources, never part of the server.
 */
const auditOff = `
import { AuditLog } from "@ouroboros/audit"
import { Effect, Layer } from "effect"
export * from "./Audit.js"
const appended = { index: 0, id: "00000000-0000-4000-8000-000000000000", time: new Date(0).toISOString() }
const off = { append: () => Effect.succeed(appended), record: () => Effect.void }
export const layer = (_dataDir) => Layer.succeed(AuditLog.AuditLog, off)
export const middleware = Effect.succeed((app) => app)
`

/** The server bundled like `apps/server/build.mjs` does, with the audit module replaced. */
const bundleAuditOff = async (): Promise<string> => {
  // Inside the repository (an ignored build folder), so the bundle's external packages resolve from node_modules.
  const out = Path.join(root, "apps/server/build/bench-audit-off")
  Fs.rmSync(out, { recursive: true, force: true })
  const serverSrc = Path.join(root, "apps/server/src")
  await build({
    entryPoints: { main: Path.join(serverSrc, "main.ts") },
    bundle: true,
    platform: "node",
    target: "node22",
    format: "esm",
    outdir: out,
    splitting: true,
    logLevel: "warning",
    external: ["@electric-sql/pglite", "@electric-sql/pglite-socket", "pg-native"],
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    plugins: [{
      name: "audit-off",
      setup(b) {
        // The server's modules import `./Audit.js`: they get the stub, which imports the real one.
        b.onResolve(
          { filter: /^\.\/Audit\.js$/ },
          (args) =>
            args.namespace === "file" && Path.dirname(args.importer) === serverSrc
              ? { path: "audit-off", namespace: "audit-off" }
              : undefined
        )
        b.onLoad(
          { filter: /.*/, namespace: "audit-off" },
          () => ({ contents: auditOff, resolveDir: serverSrc, loader: "js" })
        )
      }
    }]
  })
  Fs.copyFileSync(Path.join(root, "packages/sql/src/pglite-worker.mjs"), Path.join(out, "pglite-worker.mjs"))
  return Path.join(out, "main.js")
}

interface Sample {
  readonly rps: number
  readonly p99: number
  readonly cpu: number
  readonly non2xx: number
}

let sequence = 0

// A new document per request (each server process has a fresh data directory).
const post = (port: number, duration: number) =>
  autocannon({
    url: `http://127.0.0.1:${port}/api/v1/documents`,
    connections,
    duration,
    requests: [{
      method: "POST",
      headers: { "x-api-key": benchKey, "content-type": "application/json" },
      setupRequest: (request) => ({
        ...request,
        body: JSON.stringify({ id: `bench-${sequence++}`, text: "The audit log records who created this, and when." })
      })
    }]
  })

const measure = async (pid: number, port: number): Promise<Sample> => {
  const before = await cpuMicros(pid)
  const result = await post(port, seconds)
  const after = await cpuMicros(pid)
  const requests = Math.max(1, result.requests.total)
  return {
    rps: result.requests.average,
    p99: result.latency.p99,
    cpu: (after.user + after.system - before.user - before.system) / requests,
    non2xx: result.non2xx
  }
}

const main = async () => {
  const on = Path.join(root, "apps/server/dist/main.js")
  const off = await bundleAuditOff()
  const contestants = [{ name: "audit on", main: on }, { name: "audit off", main: off }]
  const samples: Array<Array<Sample>> = [[], []]
  for (let round = 0; round < rounds; round++) {
    const dirs = contestants.map(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-audit-bench-")))
    const servers = await Promise.all(contestants.map((c, i) => startBundled(dirs[i]!, {}, c.main)))
    try {
      const order = round % 2 === 0 ? [0, 1] : [1, 0]
      for (const i of order) await post(servers[i]!.port, warmup)
      for (const i of order) samples[i]![round] = await measure(servers[i]!.child.pid!, servers[i]!.port)
    } finally {
      await Promise.all(servers.map((s) => stopChild(s.child)))
      for (const dir of dirs) Fs.rmSync(dir, { recursive: true, force: true })
    }
    console.log(
      `round ${round + 1}/${rounds}: ` +
        contestants.map((c, i) => `${c.name} ${Math.round(samples[i]![round]!.rps)}/s`).join(", ")
    )
  }
  for (const [i, c] of contestants.entries()) {
    const s = samples[i]!
    console.log(
      `${c.name.padEnd(10)} req/s ${show(s.map((x) => x.rps))}  p99 ${show(s.map((x) => x.p99), 0, " ms")}  ` +
        `CPU/request ${show(s.map((x) => x.cpu), 0, " µs")}  non-2xx ${s.reduce((n, x) => n + x.non2xx, 0)}`
    )
  }
  const cost = samples[0]!.map((x, r) => x.cpu - samples[1]![r]!.cpu)
  const ratio = samples[0]!.map((x, r) => x.rps / Math.max(1, samples[1]![r]!.rps))
  const worseHalf = [...ratio].sort((a, b) => a - b).slice(0, Math.ceil(ratio.length / 2))
  console.log(`audit's CPU per request: ${show(cost, 0, " µs")} (median ${Math.round(median(cost))} µs)`)
  console.log(
    `requests per second with the audit / without, per round: ${show(ratio.map((r) => r * 100), 1, " %")}; ` +
      `median of the worse half ${(median(worseHalf) * 100).toFixed(1)} %`
  )
  Fs.rmSync(Path.dirname(off), { recursive: true, force: true })
}

await main()
