/**
 * RFC 8785 (JCS) serializations of the two fixed shapes the writer produces per event, written out by hand: the
 * members in the order JCS sorts them (UTF-16 code units), strings through `JSON.stringify` (which escapes exactly as
 * JCS does for well-formed strings), integers as ECMAScript prints them. Free-form JSON (`details`) comes in already
 * canonical from the `canonicalize` package. A test checks both against `canonicalize` on generated values.
 */
import type * as AuditEvent from "../AuditEvent.js"

// A string with nothing to escape (no `"`, `\`, control character or surrogate) is itself between quotes, which is
// what JSON.stringify would return; building that is several times cheaper than the call, and nearly every string of
// an entry (ids, times, types, base64) is one.
const plain = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/
const str = (value: string): string => plain.test(value) ? `"${value}"` : JSON.stringify(value)

/**
 * The canonical JSON of an entry; `detailsJson` (when given) replaces its `details`.
 *
 * @internal
 */
export const entry = (e: Omit<AuditEvent.Entry, "details">, detailsJson?: string | undefined): string => {
  let out = `{"action":${str(e.action)},"actor":{"roles":[`
  for (let i = 0; i < e.actor.roles.length; i++) out += (i === 0 ? "" : ",") + str(e.actor.roles[i]!)
  out += "]"
  if (e.actor.tenantId !== undefined) out += `,"tenantId":${str(e.actor.tenantId)}`
  out += "}"
  if (e.correlationId !== undefined) out += `,"correlationId":${str(e.correlationId)}`
  if (detailsJson !== undefined) out += `,"details":${detailsJson}`
  out += `,"id":${str(e.id)},"index":${e.index},"outcome":${str(e.outcome)}`
  if (e.reason !== undefined) out += `,"reason":${str(e.reason)}`
  out += `,"resource":{`
  if (e.resource.id !== undefined) out += `"id":${str(e.resource.id)},`
  out += `"type":${str(e.resource.type)}}`
  out += `,"sealed":{"data":${str(e.sealed.data)},"iv":${str(e.sealed.iv)},"keyId":${str(e.sealed.keyId)}}`
  if (e.tenantId !== undefined) out += `,"tenantId":${str(e.tenantId)}`
  out += `,"time":${str(e.time)}`
  if (e.traceId !== undefined) out += `,"traceId":${str(e.traceId)}`
  out += `,"type":${str(e.type)},"v":${e.v}}`
  return out
}

/**
 * The sealed personal fields, with the free-form ones already in canonical JSON.
 *
 * @internal
 */
export const personal = (p: {
  readonly subject: string
  readonly clientAddress?: string | undefined
  readonly userAgent?: string | undefined
  readonly personalDetailsJson?: string | undefined
}): string => {
  let out = "{"
  if (p.clientAddress !== undefined) out += `"clientAddress":${str(p.clientAddress)},`
  if (p.personalDetailsJson !== undefined) out += `"personalDetails":${p.personalDetailsJson},`
  out += `"subject":${str(p.subject)}`
  if (p.userAgent !== undefined) out += `,"userAgent":${str(p.userAgent)}`
  return out + "}"
}
