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
  FiberRef,
  FiberRefs,
  HashMap,
  Layer,
  Logger,
  LogLevel,
  Option,
  Tracer
} from "effect"

/**
 * The log configuration: `LOG_FORMAT` (`json` | `pretty`, default `json`) and `LOG_LEVEL` (default `Info`).
 *
 * @since 0.1.0
 * @category config
 */
export const config = Config.all({
  format: Config.literal("json", "pretty")("LOG_FORMAT").pipe(
    Config.withDefault<"json" | "pretty">("json"),
    Config.withDescription("json: one JSON object a line; pretty: human-readable")
  ),
  level: Config.logLevel("LOG_LEVEL").pipe(
    Config.withDefault(LogLevel.Info),
    Config.withDescription("Minimum level: All, Trace, Debug, Info, Warning, Error, Fatal, None")
  )
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
export const idsOf = (context: FiberRefs.FiberRefs): Record<string, string> => {
  const ids: Record<string, string> = {}
  const span = Context.getOption(FiberRefs.getOrDefault(context, FiberRef.currentContext), Tracer.ParentSpan)
  if (Option.isSome(span)) {
    ids.traceId = span.value.traceId
    ids.spanId = span.value.spanId
  }
  const correlationId = FiberRefs.getOrDefault(context, RequestContext.currentCorrelationId)
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
 * fiberId, cause? }` on one line.
 *
 * @since 0.1.0
 * @category loggers
 */
export const jsonLogger: Logger.Logger<unknown, string> = Logger.make((options) => {
  const record: Record<string, unknown> = {
    timestamp: options.date.toISOString(),
    level: options.logLevel.label,
    message: messageText(options.message),
    ...idsOf(options.context)
  }
  for (const [key, value] of options.annotations) record[key] = value
  let spans: Record<string, number> | undefined
  const now = options.date.getTime()
  for (const span of options.spans) {
    spans ??= {}
    spans[span.label] = now - span.startTime
  }
  if (spans !== undefined) record.spans = spans
  record.fiberId = `#${[...fiberIds(options.fiberId)].join(",")}`
  if (!Cause.isEmpty(options.cause)) record.cause = Cause.pretty(options.cause, { renderErrorCause: true })
  return safeStringify(record)
})

const fiberIds = (id: import("effect/FiberId").FiberId): Set<number> => {
  switch (id._tag) {
    case "None":
      return new Set()
    case "Runtime":
      return new Set([id.id])
    case "Composite":
      return new Set([...fiberIds(id.left), ...fiberIds(id.right)])
  }
}

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

/**
 * The pretty logger with the trace and correlation ids added as annotations.
 *
 * @since 0.1.0
 * @category loggers
 */
export const prettyLogger: Logger.Logger<unknown, void> = Logger.make((options) => {
  let annotations = options.annotations
  for (const [key, value] of Object.entries(idsOf(options.context))) {
    if (!HashMap.has(annotations, key)) annotations = HashMap.set(annotations, key, value)
  }
  Logger.prettyLoggerDefault.log({ ...options, annotations })
})

/**
 * Replaces the default logger and sets the minimum level.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<never> =>
  Layer.merge(
    Logger.replace(
      Logger.defaultLogger,
      options.format === "json" ? Logger.withConsoleLog(jsonLogger) : prettyLogger
    ),
    Logger.minimumLogLevel(options.level)
  )

/**
 * {@link layer} from `LOG_FORMAT` and `LOG_LEVEL`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<never, import("effect/ConfigError").ConfigError> = Layer.unwrapEffect(
  Effect.map(config, layer)
)
