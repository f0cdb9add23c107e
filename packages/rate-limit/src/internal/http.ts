/**
 * Small HTTP helpers shared by the middlewares.
 *
 * @internal
 */
import { RequestContext } from "@ouroboros/kernel"
import { Effect, Option, Result } from "effect"
import { type FindMyWay, type HttpServerRequest, HttpServerResponse } from "effect/http"
import { IpInterface, IpNetwork, NetAddress } from "effect/net"
import { createHash } from "node:crypto"

// The router's normalization of a request path (effect/http/FindMyWay, `find`), step by step: a limiter that matches
// the raw path can be bypassed by any spelling the router accepts for the same route (`/API/v1/x`, `//api/v1/x`,
// `/%61pi/v1/x`, `/api/v1/x/`, `/api/v1/x;a=b`).

const fullPath = /^https?:\/\/.*?\//

// The characters that `decodeURIComponent` decodes and `decodeURI` does not (# $ & + , / : ; = ? @), and %25: the
// router leaves them encoded in the path (a parameter's value decodes them later).
const isReservedEscape = (high: number, low: number): boolean =>
  high === 50
    ? low === 53 || low === 51 || low === 52 || low === 54 || low === 66 || low === 98 || low === 67 || low === 99 ||
      low === 70 || low === 102
    : high === 51
    ? low === 65 || low === 97 || low === 66 || low === 98 || low === 68 || low === 100 || low === 70 || low === 102
    : high === 52 && low === 48

/** FindMyWay's `safeDecodeURI`, without the query string: throws on a malformed escape, as `decodeURI` does. */
const decodePath = (path: string, semicolon: boolean): string => {
  let shouldDecode = false
  let escaped = ""
  let escapedEnd = 0
  for (let i = 1; i < path.length; i++) {
    const code = path.charCodeAt(i)
    if (code === 37) {
      const high = path.charCodeAt(i + 1)
      const low = path.charCodeAt(i + 2)
      if (!isReservedEscape(high, low)) {
        shouldDecode = true
      } else {
        // %25 is encoded once more, so that decoding the path leaves it as %25.
        if (high === 50 && low === 53) {
          shouldDecode = true
          escaped += path.slice(escapedEnd, i) + "%2525"
          escapedEnd = i + 3
        }
        i += 2
      }
    } else if (code === 63 || (code === 59 && semicolon) || code === 35) {
      path = path.slice(0, i)
      break
    }
  }
  if (escapedEnd > 0) path = escaped + path.slice(escapedEnd)
  return shouldDecode ? decodeURI(path) : path
}

const pathEnd = (path: string, semicolon: boolean): number => {
  for (let i = 1; i < path.length; i++) {
    const code = path.charCodeAt(i)
    if (code === 63 || code === 35 || (code === 59 && semicolon)) return i
  }
  return path.length
}

/**
 * The path of a request target as the router matches it against its static route text. See
 * `RateLimiterHttp.routerPath`.
 *
 * @internal
 */
export const routerPath = (config: Partial<FindMyWay.RouterConfig> = {}): (url: string) => string => {
  const ignoreTrailingSlash = config.ignoreTrailingSlash ?? true
  const ignoreDuplicateSlashes = config.ignoreDuplicateSlashes ?? true
  const caseSensitive = config.caseSensitive ?? false
  const semicolon = config.useSemicolonDelimiter !== false
  return (url) => {
    // The router's own fast path: a lower-case path with nothing to decode, split or collapse is matched as it is.
    let clean = url.charCodeAt(0) === 47 && (url.length === 1 || url.charCodeAt(url.length - 1) !== 47)
    if (clean) {
      for (let i = 1; i < url.length; i++) {
        const code = url.charCodeAt(i)
        if (
          code === 37 || code === 63 || (code === 59 && semicolon) || code === 35 || (code >= 65 && code <= 90) ||
          (code === 47 && url.charCodeAt(i - 1) === 47)
        ) {
          clean = false
          break
        }
      }
    }
    if (clean) return url
    let path = url.charCodeAt(0) === 47 ? url : url.replace(fullPath, "/")
    // Decoded even when the router does not decode static text (`decodeStaticPath: false`): it decodes parameters
    // then, and two spellings of one parameter must give one path. Static text it would not decode matches no route.
    try {
      path = decodePath(path, semicolon)
    } catch {
      // A malformed escape: the router matches no route (a 404). Keep the path undecoded.
      path = path.slice(0, pathEnd(path, semicolon))
    }
    if (ignoreDuplicateSlashes && path.includes("//")) path = path.replace(/\/\/+/g, "/")
    if (ignoreTrailingSlash && path.length > 1 && path.charCodeAt(path.length - 1) === 47) path = path.slice(0, -1)
    if (!caseSensitive) return path.toLowerCase()
    // The escapes left (reserved characters) in one case: a parameter decodes `%2f` and `%2F` alike.
    return path.includes("%") ? path.replace(/%[0-9a-f]{2}/gi, (escape) => escape.toUpperCase()) : path
  }
}

/**
 * The path of a request target as a router with the default configuration matches it.
 *
 * @internal
 */
export const pathOf: (url: string) => string = routerPath()

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

const normalizeAddress = (address: string): string => {
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
