/**
 * Log lines that can be joined with traces and requests: every line carries `traceId`, `spanId` and `correlationId`
 * when the fiber that logs serves a request, as JSON (one object a line, for log shippers) or pretty (for people).
 *
 * @since 0.1.0
 */
import { RequestContext } from "@ouroboros/kernel"
import {
  Cause,
  Config,
  Context,
  Effect,
  type Fiber,
  Layer,
  Logger,
  LogLevel,
  Option,
  References,
  Schema,
  SchemaTransformation
} from "effect"

// The names `LOG_LEVEL` accepts, in any case: Effect's level names, and the labels Effect 3 printed and accepted
// (`WARN`, `OFF`), so that existing settings keep working.
const levelNames: Readonly<Record<string, LogLevel.LogLevel>> = {
  all: "All",
  trace: "Trace",
  debug: "Debug",
  info: "Info",
  warn: "Warn",
  warning: "Warn",
  error: "Error",
  fatal: "Fatal",
  none: "None",
  off: "None"
}

/**
 * A log level read from its name in any case: `All`, `Trace`, `Debug`, `Info`, `Warn` (or `Warning`), `Error`,
 * `Fatal`, `None` (or `Off`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const LogLevelFromName: Schema.Codec<LogLevel.LogLevel, string> = Schema.String.pipe(
  Schema.decodeTo(
    Schema.Literals(LogLevel.values),
    SchemaTransformation.transform({
      // An unknown name is passed on as it is, for the literal check to reject with the list of levels.
      decode: (name) => levelNames[name.toLowerCase()] ?? (name as LogLevel.LogLevel),
      encode: (level) => level
    })
  )
)

/**
 * The log configuration:
 *
 * - `LOG_FORMAT`: `json` (one JSON object a line) or `pretty` (human-readable); default `json`.
 * - `LOG_LEVEL`: the minimum level, `All`, `Trace`, `Debug`, `Info`, `Warn`, `Error`, `Fatal` or `None`, in any
 *   case (`Warning` and `Off` are accepted too); default `Info`.
 *
 * @since 0.1.0
 * @category config
 */
export const config = Config.all({
  format: Config.Literals(["json", "pretty"], "LOG_FORMAT").pipe(Config.withDefault<"json" | "pretty">("json")),
  level: Config.schema(LogLevelFromName, "LOG_LEVEL").pipe(Config.withDefault<LogLevel.LogLevel>("Info"))
})

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly format: "json" | "pretty"
  readonly level: LogLevel.LogLevel
}

/**
 * The request and trace ids of the fiber that logs.
 *
 * @since 0.1.0
 * @category utils
 */
export const idsOf = (fiber: Fiber.Fiber<unknown, unknown>): Record<string, string> => {
  const ids: Record<string, string> = {}
  const span = fiber.cache.span
  if (span !== undefined) {
    ids.traceId = span.traceId
    ids.spanId = span.spanId
  }
  const correlationId = fiber.getRef(RequestContext.currentCorrelationId)
  if (Option.isSome(correlationId)) ids.correlationId = correlationId.value
  return ids
}

const messageText = (message: unknown): unknown => {
  if (Array.isArray(message)) return message.length === 1 ? messageText(message[0]) : message.map(messageText)
  if (message instanceof Error) return message.message
  return message
}

/**
 * The JSON formatter: `{ timestamp, level, message, traceId?, spanId?, correlationId?, ...annotations, spans?,
 * fiberId, cause? }` on one line. (Effect's own `Logger.formatJson` nests the annotations and always writes `spans`
 * and `cause`: log shippers and tests parse this flat form.)
 *
 * @since 0.1.0
 * @category loggers
 */
export const jsonLogger: Logger.Logger<unknown, string> = Logger.make((options) => {
  const fiber = options.fiber
  const record: Record<string, unknown> = {
    timestamp: options.date.toISOString(),
    level: options.logLevel.toUpperCase(),
    message: messageText(options.message),
    ...idsOf(fiber)
  }
  const annotations = fiber.getRef(References.CurrentLogAnnotations)
  for (const key in annotations) record[key] = annotations[key]
  const logSpans = fiber.getRef(References.CurrentLogSpans)
  if (logSpans.length > 0) {
    const spans: Record<string, number> = {}
    const now = options.date.getTime()
    for (const [label, startTime] of logSpans) spans[label] = now - startTime
    record.spans = spans
  }
  record.fiberId = `#${fiber.id}`
  if (options.cause.reasons.length > 0) record.cause = Cause.pretty(options.cause)
  return safeStringify(record)
})

const safeStringify = (value: unknown): string => {
  const seen = new WeakSet<object>()
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === "bigint") return v.toString()
    if (typeof v === "object" && v !== null) {
      if (seen.has(v)) return "[Circular]"
      seen.add(v)
    }
    return v
  })
}

const consolePretty = Logger.consolePretty()

/**
 * Effect's pretty logger (`Logger.consolePretty`) with the trace and correlation ids added as annotations.
 *
 * @since 0.1.0
 * @category loggers
 */
export const prettyLogger: Logger.Logger<unknown, void> = Logger.make((options) => {
  const ids = idsOf(options.fiber)
  const current = options.fiber.getRef(References.CurrentLogAnnotations)
  let annotations: Record<string, unknown> | undefined
  for (const key in ids) {
    if (key in current) continue
    annotations ??= { ...current }
    annotations[key] = ids[key]
  }
  if (annotations === undefined) return consolePretty.log(options)
  // The pretty logger reads the annotations from the fiber: hand it a view of the fiber that has the ids among them.
  const fiber = options.fiber
  const withIds: unknown = annotations
  const getRef = <A>(ref: Context.Reference<A>): A =>
    ref === (References.CurrentLogAnnotations as Context.Reference<unknown>) ? withIds as A : fiber.getRef(ref)
  const view: Fiber.Fiber<unknown, unknown> = Object.create(fiber, { getRef: { value: getRef } })
  consolePretty.log({ ...options, fiber: view })
})

/**
 * Replaces the default logger (Effect's other loggers, such as the one that records log lines as span events, stay)
 * and sets the minimum level.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<never> =>
  Layer.merge(
    replaceDefaultLogger(options.format === "json" ? Logger.withConsoleLog(jsonLogger) : prettyLogger),
    Layer.succeed(References.MinimumLogLevel, options.level)
  )

const replaceDefaultLogger = (logger: Logger.Logger<unknown, void>): Layer.Layer<never> =>
  Layer.effect(
    Logger.CurrentLoggers,
    Effect.map(Effect.service(Logger.CurrentLoggers), (current) => {
      const loggers = new Set(current)
      loggers.delete(Logger.defaultLogger)
      loggers.add(logger)
      return loggers
    })
  )

/**
 * {@link layer} from `LOG_FORMAT` and `LOG_LEVEL`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<never, Config.ConfigError> = Layer.unwrap(
  Effect.map(config, layer)
)
