/**
 * The Dockerfile, checked and followed without Docker (no engine runs here).
 *
 * 1. Its claims, read by a parser (lib/dockerfile.ts): multi-stage, installed from the lock file with `npm ci`, the
 *    runtime on a Node 22 slim image equal to the Node of the root package.json, a numeric non-root USER, DATA_DIR
 *    on a VOLUME, the port EXPOSEd, CMD in exec form with node as the program of PID 1 (no shell, no npm), a
 *    HEALTHCHECK that only asks liveness.
 * 2. Its steps, done in a scratch directory outside the repository, each stage in a directory of its own that
 *    stands for the stage's filesystem (container paths are mapped into it): the build stage's `npm ci` and bundle
 *    are the repository's own (installed from the same lock file; `apps/server/dist` is built when missing), its
 *    template step and runtime-deps step run for real; the deps stage's production-only `npm ci` runs for real
 *    (from the npm registry, or npm's cache); the runtime stage's COPY steps copy; its user and directory setup is
 *    the one thing not reproduced (accounts and ownership need root in a real image).
 * 3. The result is started with the image's CMD and ENV (DATA_DIR and the template path mapped into the scratch
 *    directory, PORT a free port, HOST 127.0.0.1, TMPDIR standing for the /tmp volume): ready, live, a document
 *    ingested and found, the HEALTHCHECK command passes, nothing written into the image's own files; SIGTERM turns
 *    readiness to 503 during the drain and the process exits 0. Then the backup CronJob's script runs on the same
 *    files, as the job would.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { basename, dirname, join, posix, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { parse as parseYaml } from "yaml"
import {
  dockerignore,
  type Instruction,
  parseDockerfile,
  parseEnv,
  type Stage,
  stageOf,
  words
} from "./lib/dockerfile.js"
import { freePort, get, run, until } from "./lib/process.js"

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const dockerfile = parseDockerfile(readFileSync(join(repo, "Dockerfile"), "utf8"))
const runtime = dockerfile.stages[dockerfile.stages.length - 1]!
const lock = JSON.parse(readFileSync(join(repo, "package-lock.json"), "utf8"))
const node = process.execPath
const shutdownBudgetMs = 5000 + 500 + 20000 + 3000 + 1000 // the image sets no SHUTDOWN_*: packages/shutdown defaults

// The bundle the build stage makes; built here only when missing (others rebuild it as they work).
let built: Promise<void> | undefined
const ensureBuilt = () => (built ??= (async () => {
  if (existsSync(join(repo, "apps/server/dist/main.js"))) return
  const result = await run(node, ["apps/server/build.mjs"], { cwd: repo, timeoutMs: 180_000 })
  expect(result.code, result.stderr).toBe(0)
})())

const runs = (stage: Stage) => stage.instructions.filter((i) => i.keyword === "RUN")
const commandOf = (i: Instruction) => i.exec?.join(" ") ?? i.text
const isFullInstall = (i: Instruction) => /\bnpm ci\b/.test(commandOf(i)) && !/--omit=dev/.test(commandOf(i))
const buildStage = dockerfile.stages.find((s) => runs(s).some(isFullInstall))

describe("Dockerfile: what it claims", () => {
  it("is multi-stage: a build stage installs from the lock file with npm ci and bundles the server", () => {
    expect(dockerfile.stages.length).toBeGreaterThanOrEqual(2)
    expect(buildStage, "a stage runs `npm ci` (the lock file, all dependencies)").toBeDefined()
    expect(buildStage).not.toBe(runtime)
    const commands = runs(buildStage!).map(commandOf)
    expect(commands.some((c) => /\bnode apps\/server\/build\.mjs\b/.test(c))).toBe(true)
    // npm install would rewrite the lock file instead of following it
    for (const stage of dockerfile.stages) {
      for (const i of runs(stage)) expect(commandOf(i)).not.toMatch(/\bnpm (i|install)\b/)
    }
  })

  it("runs on a Node 22 slim image, the same Node as the root package.json's `node` dependency", () => {
    expect(runtime.image).toMatch(/^node:22(\.\d+){0,2}-([a-z]+-)?slim$/)
    const pinned = lock.packages["node_modules/node"]?.version as string
    expect(runtime.image.startsWith(`node:${pinned}-`), `node:${pinned}-…-slim`).toBe(true)
    expect(process.versions.node.split(".")[0], "the tests run on Node 22 too").toBe("22")
    for (const stage of dockerfile.stages) expect(stage.image).toBe(runtime.image)
  })

  it("installs in the runtime only production dependencies, from a stage that runs npm ci --omit=dev", () => {
    const copies = runtime.instructions.filter((i) => i.keyword === "COPY")
    const modules = copies.find((c) => words(c.text).some((w) => /node_modules\/?$/.test(w)))
    expect(modules, "the runtime stage copies node_modules").toBeDefined()
    const from = modules!.flags.find((f) => f.name === "from")?.value
    const deps = stageOf(dockerfile, from!)
    expect(runs(deps).map(commandOf).some((c) => /\bnpm ci\b.*--omit=dev/.test(c))).toBe(true)
    expect(runs(runtime).map(commandOf).every((c) => !/\bnpm\b/.test(c))).toBe(true)
  })

  it("runs as a numeric, non-root user", () => {
    expect(runtime.user).toMatch(/^\d+(:\d+)?$/)
    const [uid, gid] = runtime.user!.split(":").map(Number)
    expect(uid).toBeGreaterThan(0)
    if (gid !== undefined) expect(gid).toBeGreaterThan(0)
  })

  it("keeps DATA_DIR on a volume and exposes PORT", () => {
    expect(runtime.env.DATA_DIR).toBeDefined()
    expect(runtime.volumes).toContain(runtime.env.DATA_DIR)
    expect(runtime.env.PORT).toBeDefined()
    expect(runtime.expose.map((p) => p.replace(/\/tcp$/, ""))).toContain(runtime.env.PORT)
    expect(runtime.env.NODE_ENV).toBe("production")
  })

  it("gives signals to node itself: CMD in exec form runs node, no ENTRYPOINT, no shell, no npm", () => {
    expect(runtime.entrypoint).toBeUndefined()
    expect(runtime.cmd?.exec, "exec form (JSON array)").toBeDefined()
    expect(runtime.cmd!.exec).toEqual(["node", "apps/server/dist/main.js"])
    expect(runtime.stopSignal ?? "SIGTERM").toBe("SIGTERM")
  })

  it(".dockerignore sends every source the bundle is built from, and nothing installed, built or local", async () => {
    await ensureBuilt()
    const ignored = dockerignore(readFileSync(join(repo, ".dockerignore"), "utf8"))
    // The bundle's source maps list its inputs (the bundle is split: main.js, cli.js and their chunks): every one
    // outside node_modules must reach the build stage.
    const dist = join(repo, "apps/server/dist")
    const maps = readdirSync(dist).filter((f) => f.endsWith(".js.map"))
    const sources = [
      ...new Set(
        maps.flatMap((f) => (JSON.parse(readFileSync(join(dist, f), "utf8")) as { sources: Array<string> }).sources)
      )
    ]
      .map((s) => relative(repo, resolve(dist, s)))
      .filter((s) => !s.split("/").includes("node_modules"))
    expect(sources.length).toBeGreaterThan(10)
    const needed = [
      ...sources,
      "package.json",
      "package-lock.json",
      "tsconfig.json",
      "tsconfig.base.json",
      "apps/server/build.mjs",
      "apps/server/warm-pglite.mjs",
      "apps/server/package.json",
      "apps/server/src/cli.ts",
      "packages/sql/src/pglite-worker.mjs",
      "deploy/runtime-deps.mjs",
      // npm ci needs every workspace of the lock file
      ...Object.keys(lock.packages).filter((k) => k !== "" && !k.includes("node_modules")).map((k) =>
        `${k}/package.json`
      )
    ]
    expect(needed.filter(ignored), "needed by the build, left out of the context").toEqual([])
    const unwanted = [
      "node_modules/effect/package.json",
      "packages/sql/node_modules/x/index.js",
      "apps/server/dist/main.js",
      "data/pg/PG_VERSION",
      ".git/HEAD",
      "deploy/test/image.test.ts",
      "packages/sql/test/Database.test.ts",
      "bench/http.ts",
      "coverage/index.html"
    ]
    expect(unwanted.filter((p) => !ignored(p)), "sent to the build though not needed").toEqual([])
  }, 200_000)

  it("has a HEALTHCHECK that asks liveness only, in exec form (Kubernetes ignores it and runs its own probes)", () => {
    const hc = runtime.healthcheck
    if (hc === undefined || hc === "NONE") return
    expect(hc.exec?.[0]).toBe("node")
    expect(hc.exec!.join(" ")).toContain("/health/live")
    expect(hc.exec!.join(" ")).not.toContain("/health/ready")
  })
})

// ---------------------------------------------------------------------------------------------------------------
// Following the stages

interface Emulated {
  readonly scratch: string
  readonly root: (stage: Stage) => string
  readonly map: (stage: Stage, path: string, workdir?: string) => string
}

/** The stage that COPYs the build context (`COPY . <dir>`), and where: that directory is the repository itself. */
const contextCopy = (stage: Stage): string | undefined => {
  let workdir = "/"
  for (const i of stage.instructions) {
    if (i.keyword === "WORKDIR") workdir = posix.resolve(workdir, i.text.trim())
    if (i.keyword === "COPY" && !i.flags.some((f) => f.name === "from")) {
      const parts = words(i.text)
      if (parts.length !== 2 || parts[0] !== ".") throw new Error(`line ${i.line}: only \`COPY . <dir>\` is followed`)
      return posix.resolve(workdir, parts[1]!)
    }
  }
  return undefined
}

const emulation = (scratch: string): Emulated => {
  const root = (stage: Stage) => join(scratch, `stage-${stage.index}-${stage.name ?? "unnamed"}`)
  const map = (stage: Stage, path: string, workdir = stage.workdir) => {
    const absolute = posix.resolve(workdir, path)
    const context = contextCopy(stage)
    if (context !== undefined && (absolute === context || absolute.startsWith(context + "/"))) {
      return join(repo, posix.relative(context, absolute))
    }
    return join(root(stage), absolute)
  }
  return { scratch, root, map }
}

// The environment of a step: PATH (Node 22 first) and the stage's ENV (all of it, or as set up to a given
// instruction), absolute paths mapped into the stage.
const stageEnv = (em: Emulated, stage: Stage, upTo?: Instruction): Record<string, string> => {
  const env: Record<string, string> = { PATH: `${dirname(node)}:${process.env.PATH ?? ""}` }
  const set = upTo === undefined
    ? Object.entries(stage.env)
    : stage.instructions.slice(0, stage.instructions.indexOf(upTo)).filter((i) => i.keyword === "ENV").flatMap((i) =>
      parseEnv(i.text)
    )
  for (const [k, v] of set) env[k] = v.startsWith("/") ? em.map(stage, v) : v
  return env
}

// A build step's environment: the stage's, plus what reaches the registry from this host (npm's settings and cache
// under HOME, as the Dockerfile's cache mount; proxy and CA settings, as a build's network would have them).
const hostNetwork = /^(HOME|npm_config_.*|NODE_EXTRA_CA_CERTS|SSL_CERT_FILE|SSL_CERT_DIR|(https?|no|all)_proxy)$/i
const stepEnv = (em: Emulated, stage: Stage, step: Instruction): Record<string, string> =>
  ({
    ...Object.fromEntries(Object.entries(process.env).filter(([k, v]) => hostNetwork.test(k) && v !== undefined)),
    ...stageEnv(em, stage, step)
  }) as Record<string, string>

const copyInto = (source: string, destination: string, manySources: boolean) => {
  if (!existsSync(source)) throw new Error(`COPY: ${source} does not exist`)
  const destIsDir = manySources || destination.endsWith("/") ||
    (existsSync(destination) && statSync(destination).isDirectory())
  if (statSync(source).isDirectory()) {
    mkdirSync(destination, { recursive: true })
    cpSync(source, destination, { recursive: true }) // a directory's contents, as COPY does
  } else {
    const target = destIsDir ? join(destination, basename(source)) : destination
    mkdirSync(dirname(target), { recursive: true })
    cpSync(source, target)
  }
}

/** Follows one stage; returns a log of what was done or stood in for. */
const follow = async (em: Emulated, stage: Stage): Promise<Array<string>> => {
  const log: Array<string> = []
  let workdir = "/"
  mkdirSync(em.root(stage), { recursive: true })
  for (const i of stage.instructions) {
    const here = { ...stage, workdir }
    const started = Date.now()
    const logged = log.length
    switch (i.keyword) {
      case "WORKDIR":
        workdir = posix.resolve(workdir, i.text.trim())
        mkdirSync(em.map(stage, workdir, workdir), { recursive: true })
        break
      case "COPY": {
        const from = i.flags.find((f) => f.name === "from")?.value
        const parts = words(i.text)
        const destination = parts.pop()!
        if (from === undefined) {
          log.push(`COPY ${i.text}: the repository is the build context`)
          break
        }
        const source = stageOf(dockerfile, from)
        const target = em.map(here, destination, workdir) + (destination.endsWith("/") ? "/" : "")
        for (const p of parts) copyInto(em.map(source, p, "/"), target, parts.length > 1)
        log.push(`COPY --from=${from} ${i.text}`)
        break
      }
      case "RUN": {
        const command = commandOf(i)
        if (isFullInstall(i)) {
          // The repository's node_modules came from `npm ci` on the same lock file (never run here, in the repo).
          expect(existsSync(join(repo, "node_modules", ".package-lock.json"))).toBe(true)
          log.push(`RUN ${command}: the repository's own install stands in`)
        } else if (i.exec !== undefined) {
          let argv = i.exec.map((a) => (a.startsWith("/") ? em.map(here, a, workdir) : a))
          if (argv[0] === "node" && argv[1] === "apps/server/build.mjs") {
            if (existsSync(join(repo, "apps/server/dist/main.js"))) {
              // Built already (others work in this tree: no rebuild under them); the build's last step, the
              // template of a fresh embedded database, is made where this stage's ENV puts it.
              argv = ["node", "apps/server/warm-pglite.mjs"]
              log.push(`RUN ${command}: dist exists; its template step only`)
            } else log.push(`RUN ${command}: building (dist was missing)`)
          } else log.push(`RUN ${command}`)
          const result = await run(argv[0] === "node" ? node : argv[0]!, argv.slice(1), {
            cwd: em.map(here, workdir, workdir),
            env: stepEnv(em, stage, i),
            timeoutMs: 180_000
          })
          expect(result.code, `${command}\n${result.stdout}\n${result.stderr}`).toBe(0)
        } else if (stage === runtime) {
          // Accounts, the data directory and its owner: only the directory can be made without root.
          for (const part of command.split("&&").map((s) => s.trim())) {
            const [program, ...args] = words(part)
            if (program === "mkdir") {
              for (const a of args.filter((x) => !x.startsWith("-"))) {
                mkdirSync(em.map(here, a, workdir), { recursive: true })
              }
            } else if (!["groupadd", "useradd", "chown", "chmod"].includes(program!)) {
              throw new Error(`line ${i.line}: cannot follow \`${part}\` in the runtime stage`)
            }
          }
          log.push(`RUN ${command}: directories made; accounts and ownership not reproduced`)
        } else {
          // A shell command of its own (the production install): run as written, in the stage's WORKDIR.
          expect(command, "no container paths in a shell RUN that is followed").not.toMatch(/(^|\s)\/(?!dev\/null)/)
          log.push(`RUN ${command}`)
          const result = await run("/bin/sh", ["-c", command], {
            cwd: em.map(here, workdir, workdir),
            env: stepEnv(em, stage, i),
            timeoutMs: 240_000
          })
          expect(result.code, `${command}\n${result.stdout}\n${result.stderr}`).toBe(0)
        }
        break
      }
    }
    if (log.length > logged) log[log.length - 1] += ` (${((Date.now() - started) / 1000).toFixed(1)} s)`
  }
  return log
}

// Every file under `dir` with its size and modification time: a write anywhere changes it.
const snapshot = (dir: string): Map<string, string> => {
  const out = new Map<string, string>()
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name)
      if (entry.isDirectory()) walk(p)
      else {
        const s = statSync(p)
        out.set(relative(dir, p), `${s.size}:${s.mtimeMs}`)
      }
    }
  }
  walk(dir)
  return out
}

describe("Dockerfile: its stages followed in a scratch directory, the result started with its CMD", () => {
  let em: Emulated
  let app: string
  let dataDir: string
  let tmp: string
  let server: ChildProcess | undefined
  let exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  let base: string
  let env: Record<string, string>
  let before: Map<string, string>
  const output: Array<string> = []
  const key = "image-test-key-0123456789"

  beforeAll(() => {
    const scratch = mkdtempSync(join(tmpdir(), "ouroboros-image-"))
    expect(relative(repo, scratch).startsWith(".."), "the scratch directory is outside the repository").toBe(true)
    em = emulation(scratch)
  })

  afterAll(() => {
    if (server !== undefined && server.exitCode === null && server.signalCode === null) server.kill("SIGKILL")
    if (em !== undefined) rmSync(em.scratch, { recursive: true, force: true })
  })

  it("follows every stage: the bundle, the template, the production-only install, the runtime's files", async () => {
    await ensureBuilt()
    const log: Array<string> = []
    for (const stage of dockerfile.stages) log.push(`# stage ${stage.name}`, ...(await follow(em, stage)))
    console.log(log.join("\n"))
    app = em.map(runtime, runtime.workdir)
    // What the runtime holds: the bundle, the template, and only the packages the bundle leaves external.
    expect(existsSync(join(app, "apps/server/dist/main.js"))).toBe(true)
    expect(existsSync(join(app, "apps/server/dist/cli.js"))).toBe(true)
    expect(existsSync(join(app, "apps/server/dist/pglite-worker.mjs"))).toBe(true)
    expect(existsSync(em.map(runtime, runtime.env.OUROBOROS_PGLITE_TEMPLATE!))).toBe(true)
    const installed = readdirSync(join(app, "node_modules"))
      .filter((n) => !n.startsWith("."))
      .flatMap((n) => (n.startsWith("@") ? readdirSync(join(app, "node_modules", n)).map((m) => `${n}/${m}`) : [n]))
    expect(installed).toContain("@electric-sql/pglite")
    expect(installed).toContain("@electric-sql/pglite-socket")
    expect(installed.every((n) => n.startsWith("@electric-sql/pglite")), installed.join(", ")).toBe(true)
    expect(installed).not.toContain("effect") // bundled
    // Node looks for packages up the tree: nothing above the image's /app may stand in for a missing one.
    for (let d = dirname(em.root(runtime)); d !== dirname(d); d = dirname(d)) {
      expect(existsSync(join(d, "node_modules")), `${d}/node_modules would be visible to the server`).toBe(false)
    }
  }, 300_000)

  it("starts with the image's CMD and ENV and becomes ready", async () => {
    expect(app, "the stages were followed").toBeDefined()
    dataDir = em.map(runtime, runtime.env.DATA_DIR!)
    tmp = join(em.scratch, "tmp-volume")
    mkdirSync(tmp, { recursive: true })
    const port = await freePort()
    base = `http://127.0.0.1:${port}`
    env = {
      ...stageEnv(em, runtime),
      PORT: String(port),
      HOST: "127.0.0.1",
      TMPDIR: tmp,
      OUROBOROS_API_KEYS: `image-test:${key}` // as `docker run -e` would add
    }
    before = snapshot(app)
    const [program, ...args] = runtime.cmd!.exec!
    expect(program).toBe("node")
    server = spawn(node, args, { cwd: app, env, stdio: ["ignore", "pipe", "pipe"] })
    server.stdout!.on("data", (d) => output.push(String(d)))
    server.stderr!.on("data", (d) => output.push(String(d)))
    exit = new Promise((r) => server!.once("exit", (code, signal) => r({ code, signal })))
    const ready = await until("GET /health/ready = 200", 90_000, async () => {
      if (server!.exitCode !== null) throw new Error(`exited ${server!.exitCode}: ${output.join("")}`)
      const r = await get(`${base}/health/ready`).catch(() => undefined)
      return r?.status === 200 ? r : undefined
    })
    expect(ready.headers.get("content-type")).toContain("application/health+json")
    expect((await get(`${base}/health/live`)).status).toBe(200)
    expect((await get(`${base}/health/startup`)).status).toBe(200)
    const metrics = await get(`${base}/metrics`)
    expect(metrics.status).toBe(200)
    expect(metrics.body).toContain("# TYPE")
  }, 120_000)

  it("serves the pipeline from the image's files: a document ingested is found", async () => {
    expect(base).toBeDefined()
    const headers = { "x-api-key": key, "content-type": "application/json" }
    const ingest = await fetch(`${base}/api/v1/documents`, {
      method: "POST",
      headers,
      body: JSON.stringify({ id: "zebras", text: "Zebras are African equines with black-and-white striped coats." }),
      signal: AbortSignal.timeout(10_000)
    })
    expect(ingest.status, await ingest.clone().text()).toBe(201)
    const search = await fetch(`${base}/api/v1/search`, {
      method: "POST",
      headers,
      body: JSON.stringify({ query: "striped equines", limit: 3 }),
      signal: AbortSignal.timeout(10_000)
    })
    expect(search.status).toBe(200)
    expect(await search.text()).toContain("zebras")
  }, 60_000)

  it("passes its HEALTHCHECK command", async () => {
    const hc = runtime.healthcheck
    if (hc === undefined || hc === "NONE") return
    const result = await run(node, hc.exec!.slice(1), { cwd: app, env, timeoutMs: 10_000 })
    expect(result.code, result.stderr).toBe(0)
  }, 20_000)

  it("on SIGTERM: readiness 503 while draining, then exit 0; nothing written outside DATA_DIR and /tmp", async () => {
    expect(server).toBeDefined()
    server!.kill("SIGTERM")
    const draining = await until("GET /health/ready = 503 after SIGTERM", 5_000, async () => {
      const r = await get(`${base}/health/ready`).catch(() => undefined)
      return r?.status === 503 ? r : undefined
    }, 50)
    expect(draining.status).toBe(503)
    const ended = await Promise.race([
      exit,
      new Promise<"timeout">((r) => setTimeout(() => r("timeout"), shutdownBudgetMs + 5_000))
    ])
    expect(ended, output.join("")).toEqual({ code: 0, signal: null })
    // readOnlyRootFilesystem: the image's own files are as they were.
    expect(snapshot(app)).toEqual(before)
    expect(readdirSync(dataDir).length).toBeGreaterThan(0)
  }, 60_000)

  it("runs the backup CronJob's script on the same files (create, then a restore-tier verification)", async () => {
    expect(server?.exitCode, "the server has stopped (the embedded DATA_DIR is locked while it runs)").toBe(0)
    const cronjob = parseYaml(readFileSync(join(repo, "deploy/components/backup-cronjob/cronjob.yaml"), "utf8"))
    const container = cronjob.spec.jobTemplate.spec.template.spec.containers[0]
    const [shell, ...shellArgs] = [...container.command, ...container.args] as Array<string>
    expect(shell).toBe("/bin/sh")
    const result = await run(shell!, shellArgs, {
      cwd: app,
      env: { ...env, BACKUP_ENABLED: "false" },
      timeoutMs: 120_000
    })
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0)
    console.log(result.stdout)
    const id = /created (\S+)/.exec(result.stdout)?.[1]
    expect(id, "the script names the backup it created").toBeDefined()
    expect(result.stdout).toContain(`${id}: verified (restore)`)
    expect(existsSync(join(dataDir, "backups", id!))).toBe(true)
  }, 150_000)
})
