/**
 * Small HTTP helpers shared by the middlewares.
 *
 * @internal
 */
import { RequestContext } from "@ouroboros/kernel"
import { Effect, Option, Result } from "effect"
import { type HttpServerRequest, HttpServerResponse } from "effect/http"
import { IpInterface, IpNetwork, NetAddress } from "effect/net"
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

/** The network of a trusted-proxy entry (an address is a network of one), or undefined when it is none. */
const networkOf = (entry: string): IpNetwork.IpNetwork | undefined => {
  const parsed = IpInterface.fromString(normalizeAddress(entry))
  // A CIDR with host bits (`10.1.2.3/8`) stands for its network, as before.
  return Result.isSuccess(parsed) ? IpNetwork.fromInterface(parsed.success) : undefined
}

const namedNetworks: Record<string, ReadonlyArray<string>> = {
  loopback: ["127.0.0.0/8", "::1/128"],
  private: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]
}

/**
 * Compiles a trusted-proxy list: addresses and CIDRs, IPv4 or IPv6 (parsed by `effect/net`), `loopback`, `private`
 * (the IPv4 private ranges and IPv6 unique local addresses), or `*`. Other entries match only as written.
 *
 * Per request, an address named in the list is one `Set` lookup; any other is parsed and matched against the
 * networks once, and the answer remembered (bounded).
 *
 * @internal
 */
export const trustMatcher = (entries: ReadonlyArray<string>): (address: string) => boolean => {
  if (entries.length === 0) return () => false
  const exact = new Set<string>()
  const networks: Array<IpNetwork.IpNetwork> = []
  for (const raw of entries) {
    const entry = raw.trim().toLowerCase()
    if (entry === "*") return () => true
    for (const item of namedNetworks[entry] ?? [entry]) {
      // An entry without a prefix is also matched as it is written (the fast path, and names such as `unknown`).
      if (!item.includes("/")) exact.add(normalizeAddress(item))
      const network = networkOf(item)
      if (network !== undefined) networks.push(network)
    }
  }
  const recent = new Map<string, boolean>()
  return (address) => {
    if (exact.has(address)) return true
    if (networks.length === 0) return false
    let trusted = recent.get(address)
    if (trusted === undefined) {
      const ip = NetAddress.ipFromString(address)
      if (Result.isSuccess(ip)) {
        const canonical = NetAddress.toCanonical(ip.success)
        trusted = networks.some((network) => IpNetwork.contains(network, canonical))
      } else {
        trusted = false
      }
      if (recent.size >= 10_000) recent.clear()
      recent.set(address, trusted)
    }
    return trusted
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
    HttpServerResponse.jsonUnsafe(
      Option.isSome(id) ? { ...body, correlationId: id.value } : body,
      { status, headers, contentType: "application/problem+json" }
    ))
