/**
 * Starts the whole server in-process on a free port, for end-to-end tests: the same layers as `npm start`, with the
 * environment given as a map and a fresh data directory unless one is given.
 *
 * @since 0.1.0
 */
import type { AuditKeys, AuditStore } from "@ouroboros/audit"
import type { BackupTarget } from "@ouroboros/backup"
import type { FlagProvider, FlagProviderSql } from "@ouroboros/feature-flags"
import type { LlmError } from "@ouroboros/llm"
import type { RateLimiterStore } from "@ouroboros/rate-limit"
import type { RetrievalError } from "@ouroboros/retrieval"
import { Shutdown } from "@ouroboros/shutdown"
import type { Database } from "@ouroboros/sql"
import type { Jwt, TenantConfig } from "@ouroboros/tenancy"
import type { VectorStore } from "@ouroboros/vector-store"
import type { VersionPolicy } from "@ouroboros/versioning"
import { type Config, ConfigProvider, Context, Duration, Effect, Layer, Scope } from "effect"
import { HttpServer, type HttpServerError } from "effect/http"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import type { StartupRefused } from "./DevSetup.js"
import { layerLogger, makeLayer } from "./Program.js"
import type { ConfigFileError } from "./ServerConfig.js"

/**
 * A running server.
 *
 * @since 0.1.0
 * @category models
 */
export interface TestServer {
  readonly url: string
  readonly port: number
  readonly dataDir: string
  readonly env: Readonly<Record<string, string>>
}

/**
 * The keys the test server is given unless the caller overrides them.
 *
 * @since 0.1.0
 * @category constants
 */
export const keys = {
  admin: "admin-key-0123456789abcdef",
  tenantA: "tenant-a-key-0123456789abcdef",
  tenantB: "tenant-b-key-0123456789abcdef"
} as const

/**
 * A fresh temporary data directory, removed when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const tempDir: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-test-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

/**
 * What starting the test server can fail with, the same as `npm start`: the environment and the configuration file,
 * the credentials, and the start of each of the server's layers (its database, stores, vector store, model server,
 * version policy and HTTP server). The server's own layers decide it: when one of them gains an error, `start` stops
 * compiling until the error is added here.
 *
 * @since 0.1.0
 * @category errors
 */
export type StartError =
  // configuration and credentials
  | Config.ConfigError
  | ConfigFileError
  | StartupRefused
  | TenantConfig.BootstrapError
  | Jwt.JwtConfigError
  | VersionPolicy.InvalidSettings
  // storage
  | Database.DatabaseError
  | AuditKeys.AuditKeyError
  | AuditStore.AuditStoreError
  | RateLimiterStore.RateLimitStoreError
  | FlagProvider.FlagSourceError
  | FlagProviderSql.SqlProviderError
  | BackupTarget.BackupTargetError
  // the vector store and the model server
  | VectorStore.VectorStoreError
  | RetrievalError.VectorStoreUnavailable
  | RetrievalError.IncompatibleCollection
  | LlmError.LlmError
  // the HTTP server (listening on its port)
  | HttpServerError.ServeError

/**
 * Starts the server; it stops when the scope closes. Fails with a {@link StartError} when it cannot start.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = (
  env: Record<string, string> = {},
  options: {
    /** Extra runtime layers, e.g. `Tracing.layerTest(exporter)` to capture spans. */
    readonly runtime?: Layer.Layer<never> | undefined
  } = {}
): Effect.Effect<TestServer, StartError, Scope.Scope> =>
  Effect.gen(function*() {
    const dataDir = env.DATA_DIR ?? (yield* tempDir)
    const full: Record<string, string> = {
      PORT: "0",
      HOST: "127.0.0.1",
      LOG_LEVEL: "warning",
      OUROBOROS_ADMIN_API_KEY: keys.admin,
      OUROBOROS_API_KEYS: `tenant-a:${keys.tenantA},tenant-b:${keys.tenantB}`,
      SHUTDOWN_DRAIN_MS: "0",
      // Tests send many operator and document requests from one address; a test of these limits sets its own.
      RATE_LIMIT_ADMIN: "100000/1m",
      RATE_LIMIT_DOCS: "100000/1m",
      ...env,
      DATA_DIR: dataDir
    }
    const provider = ConfigProvider.fromEnv({ env: full })
    const withProvider = Effect.provideService(ConfigProvider.ConfigProvider, provider)
    const { config, layer } = yield* withProvider(makeLayer)
    const scope = yield* Effect.scope
    const coordinator = Shutdown.layer({
      drain: Duration.millis(Number(full.SHUTDOWN_DRAIN_MS)),
      timeout: Duration.seconds(5),
      finalizerTimeout: Duration.seconds(5),
      signals: false
    })
    const context = yield* Layer.buildWithScope(
      layer.pipe(
        Layer.provide(coordinator),
        Layer.provide(Layer.merge(layerLogger(config), options.runtime ?? Layer.empty))
      ),
      scope
    ).pipe(withProvider)
    const server = Context.get(context, HttpServer.HttpServer)
    const address = server.address
    const port = address._tag === "UnixPathAddress" ? 0 : address.port
    return { url: `http://127.0.0.1:${port}`, port, dataDir, env: full }
  })
