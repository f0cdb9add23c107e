/**
 * The program of the server process: decode the configuration, resolve credentials, launch the server layer, and on
 * a startup failure end with one line that says what is wrong (no stack dump) and a non-zero exit code.
 *
 * @since 0.1.0
 */
import { Cause, ConfigError, Effect, Layer, Logger, LogLevel } from "effect"
import * as DevSetup from "./DevSetup.js"
import * as Server from "./Server.js"
import * as ServerConfig from "./ServerConfig.js"

/**
 * The process's last words for a startup failure.
 *
 * @since 0.1.0
 * @category utils
 */
export const describeStartupFailure = (error: unknown): string => {
  if (ConfigError.isConfigError(error)) return ServerConfig.describeConfigError(error)
  if (typeof error === "object" && error !== null) {
    const tagged = error as { _tag?: unknown; message?: unknown; error?: unknown }
    if (tagged._tag === "ServeError") {
      const cause = tagged.error as { code?: string; message?: string } | undefined
      if (cause?.code === "EADDRINUSE") return `PORT: the address is already in use (${cause.message})`
      return `PORT/HOST: cannot listen: ${cause?.message ?? String(tagged.error)}`
    }
    if (typeof tagged.message === "string" && tagged.message !== "") return tagged.message
  }
  return String(error)
}

/**
 * The logger chosen by `LOG_FORMAT` and `LOG_LEVEL`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLogger = (config: Pick<ServerConfig.ServerConfig, "logFormat" | "logLevel">) =>
  Layer.merge(
    config.logFormat === "json" ? Logger.json : Logger.pretty,
    Logger.minimumLogLevel(LogLevel.fromLiteral(capitalize(config.logLevel)))
  )

const capitalize = (level: ServerConfig.ServerConfig["logLevel"]): LogLevel.Literal =>
  level === "warning" ? "Warning" : (level.charAt(0).toUpperCase() + level.slice(1)) as LogLevel.Literal

/**
 * Builds the server layer from the environment.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeLayer = Effect.gen(function*() {
  const config = yield* ServerConfig.config
  const file = yield* ServerConfig.loadFile(config.configFile)
  const keys = yield* DevSetup.resolveKeys(config, file).pipe(Effect.provide(layerLogger(config)))
  return { config, layer: Server.layer({ config, file, keys }).pipe(Layer.provide(layerLogger(config))) }
})

/**
 * Runs the server until it is interrupted; a startup failure is one line on stderr and exit code 1.
 *
 * @since 0.1.0
 * @category programs
 */
const launched = Effect.flatMap(makeLayer, ({ layer }) => Layer.launch(layer))
export const program: Effect.Effect<void> = launched.pipe(
  Effect.catchAllCause((cause) =>
    Cause.isInterruptedOnly(cause) ? Effect.void : Effect.sync(() => {
      process.stderr.write(`ouroboros: cannot start: ${describeStartupFailure(Cause.squash(cause))}\n`)
      process.exitCode = 1
    })
  )
)
