/**
 * Small HTTP helpers shared by the middlewares.
 *
 * @internal
 */
import type { HttpServerRequest } from "@effect/platform"
import { HttpServerResponse } from "@effect/platform"
import { RequestContext } from "@ouroboros/kernel"
import { Effect, Option } from "effect"
import { createHash } from "node:crypto"

/** @internal */
export const pathOf = (url: string): string => {
  const q = url.indexOf("?")
  const path = q === -1 ? url : url.slice(0, q)
  // Absolute-form request targets carry scheme and host.
  if (path.startsWith("/")) return path
  try {
    return new URL(path).pathname
  } catch {
    return path
  }
}

/** @internal */
export const isHealthOrMetrics = (path: string): boolean =>
  path === "/metrics" || path === "/health" || path.startsWith("/health/")

/** @internal */
export const hashKey = (key: string): string => {
  // Hashing costs more than a decision: the hashes of recent keys are remembered (bounded), for every middleware.
  let hashed = recentHashes.get(key)
  if (hashed === undefined) {
    if (recentHashes.size >= 10_000) recentHashes.clear()
    hashed = createHash("sha256").update(key).digest("base64url").slice(0, 22)
    recentHashes.set(key, hashed)
  }
  return hashed
}

const recentHashes = new Map<string, string>()

/** @internal */
export const normalizeAddress = (address: string): string => {
  const trimmed = address.trim()
  if (trimmed.startsWith("::ffff:") && trimmed.includes(".")) return trimmed.slice(7)
  if (trimmed.startsWith("[") && trimmed.includes("]")) return trimmed.slice(1, trimmed.indexOf("]"))
  return trimmed
}

const ipv4 = (address: string): number | undefined => {
  const parts = address.split(".")
  if (parts.length !== 4) return undefined
  let value = 0
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined
    const n = Number(part)
    if (n > 255) return undefined
    value = value * 256 + n
  }
  return value
}

/**
 * Compiles a trusted-proxy list: exact addresses (IPv4 or IPv6), IPv4 CIDRs, `loopback`, `private`, or `*`.
 *
 * @internal
 */
export const trustMatcher = (entries: ReadonlyArray<string>): (address: string) => boolean => {
  if (entries.length === 0) return () => false
  const exact = new Set<string>()
  const ranges: Array<readonly [number, number]> = []
  let all = false
  const addRange = (cidr: string) => {
    const [base, bits] = cidr.split("/")
    const start = ipv4(base ?? "")
    const prefix = Number(bits)
    if (start === undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) return
    const size = 2 ** (32 - prefix)
    const from = Math.floor(start / size) * size
    ranges.push([from, from + size - 1])
  }
  for (const raw of entries) {
    const entry = raw.trim().toLowerCase()
    if (entry === "*") all = true
    else if (entry === "loopback") {
      addRange("127.0.0.0/8")
      exact.add("::1")
    } else if (entry === "private") {
      addRange("10.0.0.0/8")
      addRange("172.16.0.0/12")
      addRange("192.168.0.0/16")
    } else if (entry.includes("/")) addRange(entry)
    else exact.add(normalizeAddress(entry))
  }
  return (address) => {
    if (all || exact.has(address)) return true
    const value = ipv4(address)
    if (value === undefined) return false
    for (const [from, to] of ranges) if (value >= from && value <= to) return true
    return false
  }
}

/**
 * The client address: the peer, or — when the peer is a trusted proxy — the right-most untrusted address of
 * `X-Forwarded-For`.
 *
 * @internal
 */
export const clientAddress = (
  request: HttpServerRequest.HttpServerRequest,
  trusted: (address: string) => boolean
): string => {
  let address = normalizeAddress(Option.getOrElse(request.remoteAddress, () => "unknown"))
  if (!trusted(address)) return address
  const forwarded = request.headers["x-forwarded-for"]
  if (forwarded === undefined || forwarded === "") return address
  const hops = forwarded.split(",")
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalizeAddress(hops[i]!)
    if (hop === "") continue
    address = hop
    if (!trusted(hop)) return hop
  }
  return address
}

/** @internal */
export const problem = (
  status: number,
  body: Record<string, unknown>,
  headers: Record<string, string>
): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  Effect.map(RequestContext.correlationId, (id) =>
    HttpServerResponse.unsafeJson(
      Option.isSome(id) ? { ...body, correlationId: id.value } : body,
      { status, headers, contentType: "application/problem+json" }
    ))
