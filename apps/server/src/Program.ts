/**
 * The program of the server process: decode the configuration, resolve credentials, launch the server layer, and on
 * a startup failure end with one line that says what is wrong (no stack dump) and a non-zero exit code.
 *
 * @since 0.1.0
 */
import { Logging, Tracing } from "@ouroboros/correlation"
import { Shutdown } from "@ouroboros/shutdown"
import { Cause, Config, Effect, Exit, Layer, type LogLevel } from "effect"
import * as DevSetup from "./DevSetup.js"
import * as Server from "./Server.js"
import * as ServerConfig from "./ServerConfig.js"

/**
 * The process's last words for a configuration failure (failures while the layers are built are reported by the
 * shutdown coordinator, `Shutdown.run`).
 *
 * @since 0.1.0
 * @category utils
 */
export const describeStartupFailure = (error: unknown): string => {
  if (error instanceof Config.ConfigError) return ServerConfig.describeConfigError(error)
  const message = typeof error === "object" && error !== null ? (error as { message?: unknown }).message : undefined
  return typeof message === "string" && message !== "" ? message : String(error)
}

const levels: Record<ServerConfig.ServerConfig["logLevel"], LogLevel.LogLevel> = {
  all: "All",
  trace: "Trace",
  debug: "Debug",
  info: "Info",
  warning: "Warn",
  error: "Error",
  fatal: "Fatal",
  none: "None"
}

/**
 * The logger chosen by `LOG_FORMAT` and `LOG_LEVEL`: JSON lines carry the correlation, trace and span ids.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLogger = (config: Pick<ServerConfig.ServerConfig, "logFormat" | "logLevel">): Layer.Layer<never> =>
  Logging.layer({ format: config.logFormat, level: levels[config.logLevel] })

/**
 * Builds the server layer from the environment.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeLayer = Effect.gen(function*() {
  const config = yield* ServerConfig.config
  const file = yield* ServerConfig.loadFile(config.configFile)
  const credentials = yield* DevSetup.resolveCredentials(config, file).pipe(Effect.provide(layerLogger(config)))
  return { config, layer: Server.layer({ config, file, bootstrap: credentials.bootstrap }) }
})

/**
 * Runs the server process: a configuration error ends it at once with one line on stderr and exit code 1; otherwise
 * the shutdown coordinator runs the server until SIGTERM/SIGINT, drains, releases every resource in reverse order
 * and exits with its code (0 clean, 3 when requests were cut by the timeout; see `@ouroboros/shutdown`).
 *
 * @since 0.1.0
 * @category programs
 */
export const main = (): void => {
  Effect.runFork(makeLayer).addObserver((exit) => {
    if (Exit.isSuccess(exit)) {
      const { config, layer } = exit.value
      Shutdown.run(layer, { runtime: Layer.merge(layerLogger(config), Layer.orDie(Tracing.layer)) })
      return
    }
    process.stderr.write(`ouroboros: cannot start: ${describeStartupFailure(Cause.squash(exit.cause))}\n`)
    process.exit(1)
  })
}
