/**
 * What the console's browser tests and benchmark share: the build, the real server as a child process
 * (`apps/server/dist/main.js`, a temporary `DATA_DIR`, an admin key), a console host, and headless Chromium.
 *
 * The console host: the server itself, which serves `/console` (`ConsoleHttp.layerConfig` in its routes). For a
 * server build that does not (an older one, in `OUROBOROS_SERVER_MAIN`), a small Effect server in this process mounts
 * `ConsoleHttp.layer` at `/console` next to a proxy that forwards `/admin`, `/api`, `/health`, `/metrics` and
 * `/openapi.json` to the child server, so the console still talks to one origin, as in production.
 */
import { NodeHttpServer } from "@effect/platform-node"
import * as OllamaStandIn from "@ouroboros/testkit/OllamaStandIn"
import { freePort } from "@ouroboros/testkit/Ports"
import * as ServerProcessModule from "@ouroboros/testkit/ServerProcess"
import { Effect, Exit, Fiber, Layer, References } from "effect"
import { HttpRouter, type HttpServerRequest, HttpServerResponse } from "effect/http"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { type BrowserContext, chromium } from "playwright-core"
import * as ConsoleHttp from "../src/ConsoleHttp.js"

export const consoleRoot = fileURLToPath(new URL("..", import.meta.url))
export const distDir = Path.join(consoleRoot, "dist")
/** The server build the browser tests run: `apps/server/dist/main.js`, or `OUROBOROS_SERVER_MAIN` (another build). */
export const serverMain = process.env.OUROBOROS_SERVER_MAIN ??
  fileURLToPath(new URL("../../server/dist/main.js", import.meta.url))
export const artifactsDir = Path.join(consoleRoot, "test", "artifacts")

const newest = (dir: string): number =>
  Fs.readdirSync(dir, { withFileTypes: true }).reduce((latest, entry) => {
    const path = Path.join(dir, entry.name)
    return Math.max(latest, entry.isDirectory() ? newest(path) : Fs.statSync(path).mtimeMs)
  }, 0)

const isFresh = (): boolean => {
  const manifest = Path.join(distDir, "manifest.json")
  const built = Fs.existsSync(manifest) ? Fs.statSync(manifest).mtimeMs : 0
  const sources = Math.max(
    newest(Path.join(consoleRoot, "src", "web")),
    Fs.statSync(Path.join(consoleRoot, "build.mjs")).mtimeMs
  )
  return built >= sources
}

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

/**
 * Builds the console when there is no build or a source file is newer than it. Test files run in parallel
 * processes: one builds (under a lock file) while the others wait for it, then find the build fresh.
 */
export const ensureBuilt = (): void => {
  if (isFresh()) return
  const lock = Path.join(Os.tmpdir(), "ouroboros-console-build.lock")
  const deadline = Date.now() + 120_000
  let fd: number | undefined
  while (fd === undefined) {
    try {
      fd = Fs.openSync(lock, "wx")
    } catch {
      // A lock older than two minutes was left by a build that died.
      const age = Date.now() - (Fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now())
      if (age > 120_000) Fs.rmSync(lock, { force: true })
      if (Date.now() > deadline) throw new Error(`gave up waiting for the console build (lock ${lock})`)
      sleepSync(100)
    }
  }
  try {
    if (isFresh()) return
    const result = spawnSync(process.execPath, [Path.join(consoleRoot, "build.mjs")], { encoding: "utf8" })
    if (result.status !== 0) throw new Error(`the console build failed: ${result.stderr}${result.stdout}`)
  } finally {
    Fs.closeSync(fd)
    Fs.rmSync(lock, { force: true })
  }
}

export { freePort }

/** Polls `check` until it holds; the deadline only bounds the wait. */
export const waitFor = async (what: string, check: () => Promise<boolean>, deadlineMs = 60_000): Promise<void> => {
  const deadline = Date.now() + deadlineMs
  for (;;) {
    if (await check().catch(() => false)) return
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

export type ServerProcess = ServerProcessModule.ServerProcess

export const keys = {
  admin: "console-admin-key-0123456789abcdef",
  tenantA: "console-tenant-a-key-0123456789",
  tenantB: "console-tenant-b-key-0123456789"
} as const

/** Starts the built server on a free port, with the console's keys and generous limits. */
export const startServer = async (options: {
  readonly dataDir?: string
  readonly backupDir?: string
  readonly env?: Readonly<Record<string, string>>
} = {}): Promise<ServerProcess> => {
  if (!Fs.existsSync(serverMain)) throw new Error(`no server build at ${serverMain}: run node apps/server/build.mjs`)
  return ServerProcessModule.start({
    main: serverMain,
    dataDir: options.dataDir,
    env: {
      LOG_LEVEL: "error",
      OUROBOROS_ADMIN_API_KEY: keys.admin,
      OUROBOROS_API_KEYS: `tenant-a:${keys.tenantA},tenant-b:${keys.tenantB}`,
      // Generous limits: the browser polls while a test runs, and all of it comes from one address (the admin and
      // docs policies count per client address: 60 and 30 a minute by default).
      RATE_LIMIT_DEFAULT: "10000/1m",
      RATE_LIMIT_ADMIN: "10000/1m",
      RATE_LIMIT_DOCS: "10000/1m",
      ...(options.backupDir === undefined ? {} : { BACKUP_DIR: options.backupDir }),
      ...options.env
    }
  })
}

export interface Host {
  readonly url: string
  /** `server` when the server serves `/console` itself, `proxy` when this process does. */
  readonly mode: "server" | "proxy"
  stop(): Promise<void>
}

const hopByHop = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
  "content-encoding",
  "accept-encoding",
  "proxy-connection",
  "te",
  "trailer"
])

const forward = (target: string) => (request: HttpServerRequest.HttpServerRequest) =>
  Effect.gen(function*() {
    const headers: Record<string, string> = {}
    for (const [name, value] of Object.entries(request.headers)) {
      if (!hopByHop.has(name) && value !== undefined) headers[name] = value
    }
    const body = request.method === "GET" || request.method === "HEAD"
      ? undefined
      : new Uint8Array(yield* request.arrayBuffer)
    const response = yield* Effect.promise(() =>
      fetch(`${target}${request.url}`, {
        method: request.method,
        headers,
        redirect: "manual",
        ...(body === undefined || body.length === 0 ? {} : { body })
      })
    )
    const bytes = new Uint8Array(yield* Effect.promise(() => response.arrayBuffer()))
    const out: Record<string, string> = {}
    response.headers.forEach((value, name) => {
      if (!hopByHop.has(name) && name !== "content-type") out[name] = value
    })
    if (response.status === 204 || response.status === 304) {
      return HttpServerResponse.empty({ status: response.status, headers: out })
    }
    return HttpServerResponse.uint8Array(bytes, {
      status: response.status,
      contentType: response.headers.get("content-type") ?? "application/octet-stream",
      headers: out
    })
  })

/**
 * The origin the browser loads the console from: the server itself when it serves `/console`, else this process's
 * console host with its proxy.
 */
export const startHost = async (server: ServerProcess): Promise<Host> => {
  const served = await fetch(`${server.url}/console/`).then(
    (r) => r.ok && (r.headers.get("content-type") ?? "").startsWith("text/html"),
    () => false
  )
  if (served) return { url: server.url, mode: "server", stop: async () => {} }
  const port = await freePort()
  const handle = forward(server.url)
  const routes = Layer.mergeAll(
    ConsoleHttp.layer({ path: "/console", directory: distDir }),
    HttpRouter.addAll(
      ["/admin/*", "/api/*", "/health/*", "/metrics", "/openapi.json"].map((path) =>
        HttpRouter.route("*", path as `/${string}`, handle)
      )
    )
  )
  const app = HttpRouter.serve(routes, { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provide(NodeHttpServer.layer(() => Http.createServer(), { port, host: "127.0.0.1" })),
    Layer.provide(Layer.succeed(References.MinimumLogLevel, "Warn"))
  )
  const fiber = Effect.runFork(Layer.launch(app))
  const url = `http://127.0.0.1:${port}`
  await waitFor("the console host", () => fetch(`${url}/console/`).then((r) => r.ok))
  return {
    url,
    mode: "proxy",
    stop: async () => {
      const exit = await Effect.runPromise(Fiber.interrupt(fiber).pipe(Effect.andThen(Fiber.await(fiber))))
      if (Exit.isFailure(exit) && !Exit.hasInterrupts(exit)) {
        throw new Error(`the console host failed: ${String(exit.cause)}`)
      }
    }
  }
}

/** The flags the console's tests give Chromium (a fresh `--user-data-dir` is added per launch). */
export const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync"
] as const

/**
 * Headless Chromium from Debian's package with a fresh profile directory (Playwright takes the profile as the
 * persistent context's directory, which it passes as `--user-data-dir`). Each page has its own session storage.
 */
export const launchBrowser = async (
  options: { readonly viewport?: { readonly width: number; readonly height: number } } = {}
): Promise<{ readonly context: BrowserContext; close(): Promise<void> }> => {
  const profile = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-console-chromium-"))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: [...chromiumArgs],
    viewport: options.viewport ?? { width: 1280, height: 900 }
  })
  return {
    context,
    close: async () => {
      await context.close()
      Fs.rmSync(profile, { recursive: true, force: true })
    }
  }
}

export const startOllama = () => OllamaStandIn.start()
