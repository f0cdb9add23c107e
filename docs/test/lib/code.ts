/**
 * What the code defines, for docs/test/docs.test.ts to hold the documents against: the routes the built server
 * serves, the routes the packages declare, the environment variables the source reads, the CLI's commands.
 */
import { freePort } from "@ouroboros/testkit/Ports"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { type Scan, scanConfigKeys } from "../../../deploy/test/lib/config-keys.js"

export const repo = Path.resolve(Path.dirname(new URL(import.meta.url).pathname), "../../..")

const walk = (dir: string, keep: (file: string) => boolean): Array<string> =>
  !Fs.existsSync(dir)
    ? []
    : Fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
      const path = Path.join(dir, entry.name)
      if (entry.isDirectory()) return entry.name === "node_modules" || entry.name === "dist" ? [] : walk(path, keep)
      return keep(path) ? [path] : []
    })

const isSource = (file: string) => /\.(ts|mts|mjs|js|tsx)$/.test(file) && !file.endsWith(".d.ts")

/** Every source file of the packages and apps (`src/`), for names the documents quote. */
export const sourceFiles = (): Array<string> => [
  ...Fs.readdirSync(Path.join(repo, "packages")).flatMap((p) => walk(Path.join(repo, "packages", p, "src"), isSource)),
  ...Fs.readdirSync(Path.join(repo, "apps")).flatMap((a) => walk(Path.join(repo, "apps", a, "src"), isSource))
]

// ---- routes

/** A route: method and OpenAPI-style path (`{id}` for parameters). */
export interface Route {
  readonly method: string
  readonly path: string
  readonly source: string
}

/**
 * The routes the packages declare: every `HttpApiEndpoint.<method>("name", "/path", ...)` of `packages/*\/src` and
 * `apps/*\/src`, and the routes served outside an HttpApi (checked against their source text).
 */
export const declaredRoutes = (): Array<Route> => {
  const routes: Array<Route> = []
  for (const file of sourceFiles()) {
    const text = Fs.readFileSync(file, "utf8")
    for (const m of text.matchAll(/HttpApiEndpoint\.(get|post|put|patch|delete)\(\s*"[^"]+",\s*"([^"]+)"/g)) {
      routes.push({
        method: m[1]!.toUpperCase(),
        path: m[2]!.replace(/:([A-Za-z]+)/g, "{$1}"),
        source: Path.relative(repo, file)
      })
    }
  }
  const plain: Array<{ method: string; path: string; source: string; evidence: string }> = [
    {
      method: "GET",
      path: "/api/versions",
      source: "packages/versioning/src/VersioningHttp.ts",
      evidence: "${prefix}/versions`"
    },
    {
      method: "GET",
      path: "/api/versions/{version}",
      source: "packages/versioning/src/VersioningHttp.ts",
      evidence: "${prefix}/versions/${version}`"
    },
    {
      method: "GET",
      path: "/api/{version}/openapi.json",
      source: "packages/versioning/src/VersioningHttp.ts",
      evidence: "${prefix}/${lifecycle.version}/openapi.json`"
    },
    { method: "GET", path: "/console", source: "apps/console/src/ConsoleHttp.ts", evidence: "`${mount}/*`" },
    { method: "GET", path: "/console/{view}", source: "apps/console/src/ConsoleHttp.ts", evidence: "`${mount}/*`" },
    { method: "GET", path: "/metrics", source: "apps/server/src/Metrics.ts", evidence: "\"/metrics\"" }
  ]
  for (const route of plain) {
    const file = Path.join(repo, route.source)
    if (!Fs.existsSync(file) || !Fs.readFileSync(file, "utf8").includes(route.evidence)) {
      throw new Error(`${route.source} no longer declares ${route.method} ${route.path} (looked for ${route.evidence})`)
    }
    routes.push({ method: route.method, path: route.path, source: route.source })
  }
  return routes
}

/** The built server, running on a free port with a fresh data directory. */
export interface RunningServer {
  readonly url: string
  readonly stop: () => Promise<void>
  readonly output: () => string
}

export const mainPath = Path.join(repo, "apps/server/dist/main.js")
export const cliPath = Path.join(repo, "apps/server/dist/cli.js")

/** Starts `apps/server/dist/main.js` (embedded everything, development setup) and waits until it is ready. */
export const startServer = async (): Promise<RunningServer> => {
  if (!Fs.existsSync(mainPath)) throw new Error("apps/server/dist/main.js is missing: run `node apps/server/build.mjs`")
  const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-docs-"))
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  let output = ""
  const child = spawn(process.execPath, [mainPath], {
    env: {
      PATH: process.env.PATH ?? "",
      PORT: String(port),
      HOST: "127.0.0.1",
      DATA_DIR: dataDir,
      LOG_LEVEL: "error",
      SHUTDOWN_DRAIN_MS: "0"
    },
    stdio: ["ignore", "pipe", "pipe"]
  })
  child.stdout.on("data", (chunk) => (output += String(chunk)))
  child.stderr.on("data", (chunk) => (output += String(chunk)))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
      child.kill("SIGTERM")
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000)
      await exited
      clearTimeout(timer)
    }
    Fs.rmSync(dataDir, { recursive: true, force: true })
  }
  // Poll until ready; the deadline only bounds the test.
  const deadline = Date.now() + 90_000
  for (;;) {
    if (child.exitCode !== null) {
      await stop()
      throw new Error(`the server exited: ${output}`)
    }
    const ready = await fetch(`${url}/health/ready`).then((r) => r.status === 200, () => false)
    if (ready) break
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`the server did not get ready: ${output}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return { url, stop, output: () => output }
}

const versionsIn = (value: unknown, out = new Set<string>()): Set<string> => {
  if (typeof value === "string" && /^v\d+$/.test(value)) out.add(value)
  else if (Array.isArray(value)) value.forEach((v) => versionsIn(v, out))
  else if (typeof value === "object" && value !== null) Object.values(value).forEach((v) => versionsIn(v, out))
  return out
}

/**
 * The routes the running server serves, from its OpenAPI documents: `/openapi.json`, and each version's
 * `/api/<version>/openapi.json` when `/api/versions` lists versions.
 */
export const servedRoutes = async (url: string): Promise<Array<Route>> => {
  const documents = ["/openapi.json"]
  const versions = await fetch(`${url}/api/versions`).then(
    async (r) => (r.status === 200 ? versionsIn(await r.json()) : new Set<string>()),
    () => new Set<string>()
  )
  for (const version of versions) documents.push(`/api/${version}/openapi.json`)
  const routes: Array<Route> = []
  for (const document of documents) {
    const response = await fetch(`${url}${document}`)
    if (response.status !== 200) continue
    const body = (await response.json()) as { paths?: Record<string, Record<string, unknown>> }
    for (const [path, operations] of Object.entries(body.paths ?? {})) {
      for (const method of Object.keys(operations)) {
        if (/^(get|post|put|patch|delete)$/.test(method)) {
          routes.push({ method: method.toUpperCase(), path, source: document })
        }
      }
    }
  }
  return routes
}

/** Whether a GET of this path reaches a route of the running server (anything but a 404 counts). */
export const answersGet = async (url: string, path: string): Promise<boolean> => {
  const concrete = path.replace(/\{[^}]*\}|<[^>]*>|:[A-Za-z]+/g, (p) => (/version/i.test(p) ? "v1" : "x"))
  const response = await fetch(`${url}${concrete}`, { redirect: "manual" }).catch(() => undefined)
  if (response === undefined) return false
  await response.arrayBuffer().catch(() => undefined)
  return response.status !== 404
}

// ---- environment variables

/** Variables the server reads: `deploy/test/lib/config-keys.ts`'s scan of apps/server and the packages it imports. */
export const serverScan = (): Scan => scanConfigKeys(repo)

/**
 * Variables any package reads (wired or not): the same scanner over a scratch repository whose `apps/server/src`
 * imports every package, the packages being this repository's (a symbolic link).
 */
export const packagesScan = (): Scan => {
  const scratch = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-docs-scan-"))
  try {
    Fs.mkdirSync(Path.join(scratch, "apps/server/src"), { recursive: true })
    Fs.symlinkSync(Path.join(repo, "packages"), Path.join(scratch, "packages"), "dir")
    const packages = Fs.readdirSync(Path.join(repo, "packages")).filter((p) =>
      Fs.existsSync(Path.join(repo, "packages", p, "src"))
    )
    Fs.writeFileSync(
      Path.join(scratch, "apps/server/src/all.ts"),
      packages.map((p) => `import {} from "@ouroboros/${p}"\n`).join("")
    )
    return scanConfigKeys(scratch)
  } finally {
    Fs.rmSync(scratch, { recursive: true, force: true })
  }
}

/**
 * ALL_CAPS names given as a string argument anywhere in the source (`Settings.millis("JWT_CLOCK_SKEW", ...)`): what a
 * configuration helper of another module reads, which the scanner of `deploy/test/lib/config-keys.ts` does not follow.
 */
export const literalNames = (): Set<string> => {
  const names = new Set<string>()
  for (const file of sourceFiles()) {
    for (const m of Fs.readFileSync(file, "utf8").matchAll(/[(,]\s*"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)"/g)) {
      names.add(m[1]!)
    }
  }
  return names
}

/** Variables read by tooling (tests, benchmarks, deploy scripts, CI): `process.env.NAME` and `process.env["NAME"]`. */
export const toolingNames = (): Set<string> => {
  const dirs = ["test", "bench", "deploy", ".ci"].map((d) => Path.join(repo, d))
  const files = [
    ...dirs.flatMap((d) => walk(d, (f) => isSource(f) || f.endsWith("/run"))),
    ...Fs.readdirSync(Path.join(repo, "packages")).flatMap((p) =>
      ["test", "bench"].flatMap((d) => walk(Path.join(repo, "packages", p, d), isSource))
    ),
    ...Fs.readdirSync(Path.join(repo, "apps")).flatMap((a) =>
      ["test", "scripts", "bench"].flatMap((d) => walk(Path.join(repo, "apps", a, d), isSource))
    ),
    ...walk(Path.join(repo, "apps"), (f) => /build\.mjs$/.test(f))
  ]
  // CI, and variables Node itself reads.
  const names = new Set<string>(["CI", "NODE_COMPILE_CACHE", "NODE_OPTIONS"])
  for (const file of files) {
    const text = Fs.readFileSync(file, "utf8")
    for (const m of text.matchAll(/process\.env(?:\.([A-Z][A-Z0-9_]*)|\[["']([A-Z][A-Z0-9_]*)["']\])/g)) {
      names.add(m[1] ?? m[2]!)
    }
  }
  return names
}

// ---- the command line

/** What `ouroboros <words> --help` says: its exit status, its subcommands and its flags. */
export interface CliHelp {
  readonly status: number | null
  readonly subcommands: ReadonlyArray<string>
  readonly flags: ReadonlyArray<string>
  readonly text: string
}

const section = (text: string, title: string): Array<string> => {
  const lines = text.split("\n")
  const start = lines.findIndex((l) => l.trim() === title)
  if (start < 0) return []
  const out: Array<string> = []
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === "") break
    out.push(line)
  }
  return out
}

/**
 * Runs `ouroboros <words> --help` (the CLI builds its layers first, so it gets a scratch data directory of its own
 * and the embedded database; a few seconds each).
 */
export const cliHelp = (words: ReadonlyArray<string>): Promise<CliHelp> => {
  if (!Fs.existsSync(cliPath)) throw new Error("apps/server/dist/cli.js is missing: run `node apps/server/build.mjs`")
  const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-docs-cli-"))
  return new Promise<CliHelp>((resolve) => {
    let text = ""
    const child = spawn(process.execPath, [cliPath, ...words, "--help"], {
      env: { PATH: process.env.PATH ?? "", DATA_DIR: dataDir, LOG_LEVEL: "error" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    const timer = setTimeout(() => child.kill("SIGKILL"), 90_000)
    child.stdout.on("data", (chunk) => (text += String(chunk)))
    child.stderr.on("data", (chunk) => (text += String(chunk)))
    child.on("close", (status) => {
      clearTimeout(timer)
      Fs.rmSync(dataDir, { recursive: true, force: true })
      const usage = section(text, "USAGE").join(" ")
      const own = usage.includes(["ouroboros", ...words].join(" "))
      resolve({
        status: own ? status : null,
        subcommands: section(text, "SUBCOMMANDS").map((l) => l.trim().split(/\s+/)[0]!).filter((w) => /^[a-z]/.test(w)),
        flags: [...section(text, "FLAGS"), ...section(text, "GLOBAL FLAGS")].flatMap((l) =>
          [...l.matchAll(/(?:^|[\s,])(--[a-z][a-z-]*)/g)].map((m) => m[1]!)
        ),
        text
      })
    })
  })
}
