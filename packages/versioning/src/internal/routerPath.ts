/**
 * Where a request target is under the API prefix, read the way the router reads it.
 *
 * Effect's router (`effect/http/FindMyWay`, `find`) does not match the raw target: with its default configuration it
 * drops the query, `;…` and `#…`, percent-decodes the path (`decodeURI`, leaving the reserved escapes such as `%2F`
 * encoded), merges `//`, ignores a trailing `/` and compares static route text case-insensitively. So `/API/v1/x`,
 * `//api/v1/x`, `/%61pi/v1/x` and `/api/v1/x;a=b` are all served by the route `/api/v1/x`. Negotiation that checked
 * the raw target for `/api` would let those spellings reach the API without negotiation and without the version
 * headers; this module mirrors the router instead (and honours the router's configuration: a case-sensitive router,
 * or one that keeps `//` or does not decode static text, is mirrored too). `test/RouterPath.test.ts` holds it in
 * agreement with `FindMyWay` over a table of spellings.
 *
 * @internal
 */
import type { FindMyWay } from "effect/http"

/**
 * A request target under the prefix.
 *
 * @internal
 */
export interface ApiTarget {
  /**
   * The path under the prefix as the router reads it (decoded, `//` merged, without the trailing `/`, the query,
   * `;…` or `#…`), in its own case; `""` for the prefix itself.
   */
  readonly path: string
  /** The first segment under the prefix, as the router reads it, in its own case (`""` when there is none). */
  readonly segment: string
  /**
   * The raw target from the `n`-th segment under the prefix on (from its `/`), with the query: what a rewrite
   * appends, as the client sent it (a parameter's value is decoded by the router, once).
   */
  readonly restFrom: (n: number) => string
}

const fullPath = /^https?:\/\/.*?\//

// The escapes `decodeURI` leaves encoded: the reserved characters # $ & + , / : ; = ? @. The router leaves them
// encoded in static text, and encodes %25 once more so that decoding leaves it `%25`.
const percent25 = /%25/g

const decodeSegment = (segment: string): string =>
  segment.includes("%") ? decodeURI(segment.replace(percent25, "%2525")) : segment

const isPathEnd = (code: number, semicolon: boolean): boolean =>
  code === 63 || code === 35 || (code === 59 && semicolon)

/**
 * A reader of request targets under `prefix` (`/api`, or `""` for every path) for a router with `config`: the target
 * under the prefix, or `undefined` when the router would not route the target under it.
 *
 * @internal
 */
export const underPrefix = (
  prefix: string,
  config: Partial<FindMyWay.RouterConfig> = {}
): (url: string) => ApiTarget | undefined => {
  const caseSensitive = config.caseSensitive ?? false
  const mergeSlashes = config.ignoreDuplicateSlashes ?? true
  const semicolon = config.useSemicolonDelimiter !== false
  const decode = config.decodeStaticPath !== false
  const fold = (text: string) => caseSensitive ? text : text.toLowerCase()
  const prefixSegments = prefix.split("/").slice(1).filter((s) => s !== "").map(fold)
  const count = prefixSegments.length
  const prefixText = count === 0 ? "" : "/" + prefixSegments.join("/")
  // Most targets have nothing to decode or merge: they are read without splitting them.
  const plain = (url: string): ApiTarget | undefined => {
    if (fold(url.slice(0, prefixText.length)) !== prefixText) return undefined
    const after = url.slice(prefixText.length)
    // `/apidocs` is not under `/api`.
    if (after.length > 0 && after.charCodeAt(0) !== 47 && !isPathEnd(after.charCodeAt(0), semicolon)) return undefined
    let end = after.length
    for (let i = 0; i < after.length; i++) {
      if (isPathEnd(after.charCodeAt(i), semicolon)) {
        end = i
        break
      }
    }
    const path = end > 0 && after.charCodeAt(end - 1) === 47 ? after.slice(0, end - 1) : after.slice(0, end)
    const tail = after.slice(end)
    const second = path.indexOf("/", 1)
    return {
      path,
      segment: path.length === 0 ? "" : second === -1 ? path.slice(1) : path.slice(1, second),
      restFrom: (n) => {
        let at = 0
        for (let i = 0; i < n; i++) {
          at = path.indexOf("/", at + 1)
          if (at === -1) return tail
        }
        return path.length === 0 ? tail : path.slice(at) + tail
      }
    }
  }
  return (url) => {
    if (url.charCodeAt(0) === 47 && !url.includes("//") && (!decode || !url.includes("%"))) return plain(url)
    const target = url.charCodeAt(0) === 47 ? url : url.replace(fullPath, "/")
    let end = target.length
    for (let i = 1; i < target.length; i++) {
      if (isPathEnd(target.charCodeAt(i), semicolon)) {
        end = i
        break
      }
    }
    const raw = target.slice(0, end)
    const tail = target.slice(end)
    // The segments of the path and where each starts (after its `/`). The router merges `//` (so empty segments are
    // skipped) unless configured not to; a trailing `/` is ignored either way here (a router that does not ignore it
    // matches no route, and then the answer is its 404, which still is an API answer).
    const starts: Array<number> = []
    const segments: Array<string> = []
    let at = 1
    while (at <= raw.length) {
      let next = raw.indexOf("/", at)
      if (next === -1) next = raw.length
      if (next > at || (!mergeSlashes && next < raw.length)) {
        starts.push(at)
        segments.push(raw.slice(at, next))
      }
      at = next + 1
    }
    if (segments.length < count) return undefined
    let read: Array<string> = segments
    if (decode) {
      // A malformed escape anywhere leaves the whole path undecoded, as in the router (which then matches no route).
      try {
        read = segments.map(decodeSegment)
      } catch {
        read = segments
      }
    }
    for (let i = 0; i < count; i++) {
      if (fold(read[i]!) !== prefixSegments[i]) return undefined
    }
    return {
      path: read.length === count ? "" : "/" + read.slice(count).join("/"),
      segment: read[count] ?? "",
      restFrom: (n) => {
        const index = count + n
        return index < starts.length ? raw.slice(starts[index]! - 1) + tail : tail
      }
    }
  }
}
