/**
 * Correlation ids and W3C Trace Context: validation, minting, parsing and formatting, and the headers every outgoing
 * call carries so Ollama, Qdrant and any other dependency see the same request and trace.
 *
 * Nothing here knows HTTP servers: `CorrelationHttp` is the middleware that reads these headers from a request.
 *
 * @since 0.1.0
 */
import { RequestContext } from "@ouroboros/kernel"
import { Context, Effect, Option, Schema, Tracer } from "effect"
import { randomUUID } from "node:crypto"

/**
 * The header that carries the correlation id, in its canonical lower-case form.
 *
 * @since 0.1.0
 * @category constants
 */
export const headerName = "x-correlation-id"

const idPattern = /^[A-Za-z0-9._:-]{1,128}$/

/**
 * A correlation id: 1 to 128 of `[A-Za-z0-9._:-]`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CorrelationId = Schema.String.check(
  Schema.isPattern(idPattern, {
    message: "a correlation id is 1 to 128 of A-Z, a-z, 0-9, '.', '_', ':' and '-'"
  })
).pipe(
  Schema.brand("@ouroboros/CorrelationId"),
  Schema.annotate({ identifier: "CorrelationId" })
)

/**
 * @since 0.1.0
 * @category models
 */
export type CorrelationId = typeof CorrelationId.Type

/**
 * Whether a string is a valid correlation id.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isValid = (u: unknown): u is CorrelationId => typeof u === "string" && idPattern.test(u)

/**
 * Mints a fresh correlation id (a random UUID, which is a valid id).
 *
 * @since 0.1.0
 * @category constructors
 */
export const mintUnsafe = (): CorrelationId => randomUUID() as CorrelationId

/**
 * Mints a fresh correlation id.
 *
 * @since 0.1.0
 * @category constructors
 */
export const mint: Effect.Effect<CorrelationId> = Effect.sync(mintUnsafe)

/**
 * The id to use for a request: the incoming header when it is valid, a fresh one otherwise (absent, empty, too long,
 * a character outside the allowed set, or a header repeated with different values).
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * import { Correlation } from "@ouroboros/correlation"
 * Correlation.fromHeader("req-42") // "req-42"
 * Correlation.fromHeader("bad id!") // a fresh UUID
 */
export const fromHeader = (value: string | ReadonlyArray<string> | undefined): CorrelationId =>
  typeof value === "string" && isValid(value) ? value : mintUnsafe()

// ---------------------------------------------------------------------------------------------------------------------
// W3C Trace Context
// ---------------------------------------------------------------------------------------------------------------------

/**
 * A parsed `traceparent` header (W3C Trace Context level 1).
 *
 * @since 0.1.0
 * @category models
 */
export interface TraceParent {
  readonly version: string
  readonly traceId: string
  readonly parentId: string
  readonly flags: number
}

const hex2 = /^[0-9a-f]{2}$/
const traceIdPattern = /^[0-9a-f]{32}$/
const spanIdPattern = /^[0-9a-f]{16}$/
const zeroTrace = "0".repeat(32)
const zeroSpan = "0".repeat(16)

/**
 * Parses a `traceparent` header. `None` for anything the specification calls invalid: version `ff` or not two
 * lower-case hex digits, an all-zero or malformed trace id or parent id, bad flags, or (version 00) extra content.
 * A higher version is parsed by its version-00 prefix, as the specification asks (Effect's `HttpTraceContext.w3c`
 * rejects any version but 00, and its `fromHeaders` falls back to B3 headers).
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseTraceParent = (header: string | undefined): Option.Option<TraceParent> => {
  if (header === undefined) return Option.none()
  const value = header.trim()
  if (value.length < 55) return Option.none()
  const version = value.slice(0, 2)
  if (!hex2.test(version) || version === "ff") return Option.none()
  if (version === "00" ? value.length !== 55 : value.length > 55 && value[55] !== "-") return Option.none()
  if (value[2] !== "-" || value[35] !== "-" || value[52] !== "-") return Option.none()
  const traceId = value.slice(3, 35)
  const parentId = value.slice(36, 52)
  const flags = value.slice(53, 55)
  if (!traceIdPattern.test(traceId) || traceId === zeroTrace) return Option.none()
  if (!spanIdPattern.test(parentId) || parentId === zeroSpan) return Option.none()
  if (!hex2.test(flags)) return Option.none()
  return Option.some({ version, traceId, parentId, flags: parseInt(flags, 16) })
}

/**
 * Formats a `traceparent` header (always version 00, as a version-00 participant must send).
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatTraceParent = (traceParent: Omit<TraceParent, "version">): string =>
  `00-${traceParent.traceId}-${traceParent.parentId}-${(traceParent.flags & 0xff).toString(16).padStart(2, "0")}`

const tracestateKey = /^(?:[a-z][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})$/
const tracestateValue = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/

/**
 * Validates a `tracestate` header (at most 32 `key=value` members, keys unique). `None` when it is invalid, in which
 * case the specification says to drop it and keep the `traceparent`. Empty members are removed.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseTraceState = (header: string | undefined): Option.Option<string> => {
  if (header === undefined) return Option.none()
  const members = header.split(",").map((member) => member.trim()).filter((member) => member.length > 0)
  if (members.length === 0 || members.length > 32) return Option.none()
  const keys = new Set<string>()
  for (const member of members) {
    const eq = member.indexOf("=")
    if (eq <= 0) return Option.none()
    const key = member.slice(0, eq)
    const value = member.slice(eq + 1)
    if (!tracestateKey.test(key) || !tracestateValue.test(value) || keys.has(key)) return Option.none()
    keys.add(key)
  }
  return Option.some(members.join(","))
}

/**
 * The trace context a request arrived with: the remote parent span and its `tracestate`.
 *
 * @since 0.1.0
 * @category models
 */
export interface IncomingTrace {
  readonly parent: Tracer.ExternalSpan
  readonly traceState: Option.Option<string>
}

/**
 * Reads `traceparent` and `tracestate` from request headers (lower-case keys). `None` when there is no valid
 * `traceparent`: the request then starts a new trace and its `tracestate` is ignored.
 *
 * @since 0.1.0
 * @category parsing
 */
export const fromHeaders = (headers: Readonly<Record<string, string | undefined>>): Option.Option<IncomingTrace> =>
  Option.map(parseTraceParent(headers["traceparent"]), (tp) => ({
    parent: Tracer.externalSpan({ traceId: tp.traceId, spanId: tp.parentId, sampled: (tp.flags & 1) === 1 }),
    traceState: parseTraceState(headers["tracestate"])
  }))

/**
 * The `tracestate` of the request the current fiber serves, set by the correlation middleware and sent on with every
 * outgoing call. Set it with `Effect.provideService(effect, Correlation.currentTraceState, Option.some(state))`.
 *
 * @since 0.1.0
 * @category references
 */
export const currentTraceState: Context.Reference<Option.Option<string>> = Context.Reference(
  "@ouroboros/correlation/Correlation/currentTraceState",
  { defaultValue: () => Option.none<string>() }
)

/**
 * The headers an outgoing call carries: `traceparent` naming the current span as parent (when there is one),
 * `tracestate` as received, and `x-correlation-id`. Adapters (Ollama, Qdrant) take this effect as a hook and add its
 * result to every request they send.
 *
 * @since 0.1.0
 * @category outgoing
 * @example
 * import { Correlation } from "@ouroboros/correlation"
 * import { Effect } from "effect"
 * const call = Effect.flatMap(Correlation.outgoingHeaders, (headers) =>
 *   Effect.promise(() => fetch("http://127.0.0.1:6333/collections", { headers })))
 */
export const outgoingHeaders: Effect.Effect<Record<string, string>> = Effect.withFiber((fiber) => {
  const headers: Record<string, string> = {}
  const span = fiber.cache.span
  if (span !== undefined) {
    headers["traceparent"] = formatTraceParent({
      traceId: span.traceId,
      parentId: span.spanId,
      flags: span.sampled ? 1 : 0
    })
    const traceState = fiber.getRef(currentTraceState)
    if (Option.isSome(traceState)) headers["tracestate"] = traceState.value
  }
  const correlationId = fiber.getRef(RequestContext.currentCorrelationId)
  if (Option.isSome(correlationId)) headers[headerName] = correlationId.value
  return Effect.succeed(headers)
})

/**
 * The trace id and span id of the current span, if any: what log lines and audit records carry.
 *
 * @since 0.1.0
 * @category accessors
 */
export const currentTraceIds: Effect.Effect<Option.Option<{ readonly traceId: string; readonly spanId: string }>> =
  Effect.map(
    Effect.serviceOption(Tracer.ParentSpan),
    Option.map((span) => ({ traceId: span.traceId, spanId: span.spanId }))
  )
