/**
 * Serves the operator console (the build of `apps/console/build.mjs`) from the server's own router:
 *
 * - `GET /console`, `GET /console/` and every deep link `GET /console/<view>…` answer `index.html` (history routing),
 *   with `Cache-Control: no-cache` and an `ETag` (a matching `If-None-Match` gets a 304);
 * - `GET /console/assets/<name>-<hash>.<ext>` answers the hashed assets with
 *   `Cache-Control: public, max-age=31536000, immutable`; an unknown asset is a 404 problem, never the page;
 * - each file goes out Brotli- or gzip-compressed as `Accept-Encoding` allows (compressed at build time, chosen per
 *   request, `Vary: Accept-Encoding`), or as it is;
 * - every answer carries a strict Content-Security-Policy (`script-src 'self'`, no inline script or style, no other
 *   origin), `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` and `frame-ancestors 'none'`.
 *
 * The files are read once, when the layer is built. Without a build the routes answer a 503 problem that says how
 * to build it, and a warning is logged: the server starts either way.
 *
 * @since 0.1.0
 */
import { Problem, RequestContext } from "@ouroboros/kernel"
import { Config, Data, Effect, Layer, Option, Schema } from "effect"
import { HttpRouter, type HttpServerRequest, HttpServerResponse } from "effect/http"
import { createHash } from "node:crypto"
import { existsSync } from "node:fs"
import { readFile } from "node:fs/promises"
import { createRequire } from "node:module"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { brotliCompressSync, constants as zlib, gzipSync } from "node:zlib"

// -----------------------------------------------------------------------------
// the build's manifest
// -----------------------------------------------------------------------------

/**
 * A file of the build, as `manifest.json` describes it.
 *
 * @since 0.1.0
 * @category schemas
 */
export const FileInfo = Schema.Struct({
  contentType: Schema.String,
  bytes: Schema.Int,
  /** SHA-256 of the bytes, base64. */
  sha256: Schema.String,
  /** A hashed asset: cached for a year. */
  immutable: Schema.Boolean,
  /** Compressed copies beside the file (`<file>.br`, `<file>.gz`) and their sizes. */
  encodings: Schema.Struct({ br: Schema.optionalKey(Schema.Int), gzip: Schema.optionalKey(Schema.Int) })
})

/**
 * `dist/manifest.json`, written by `build.mjs`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Manifest = Schema.Struct({
  version: Schema.Literal(1),
  /** The `<base href>` index.html was built with. */
  base: Schema.String,
  index: Schema.String,
  script: Schema.String,
  stylesheet: Schema.String,
  files: Schema.Record(Schema.String, FileInfo)
})

/**
 * @since 0.1.0
 * @category models
 */
export type Manifest = typeof Manifest.Type

const decodeManifest = Schema.decodeUnknownEffect(Schema.fromJsonString(Manifest))

// -----------------------------------------------------------------------------
// options
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Where the console is mounted (default `/console`). */
  readonly path?: string | undefined
  /** The build directory (default: `dist/` of this package). */
  readonly directory?: string | undefined
  /** Replaces {@link contentSecurityPolicy}. */
  readonly contentSecurityPolicy?: string | undefined
}

/**
 * The policy of every console response: scripts, styles, images and calls from the server's own origin only, no
 * inline script or style (the build has none), no plugins, no framing, no `<base>` or form target elsewhere.
 *
 * @since 0.1.0
 * @category constants
 */
export const contentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'"
].join("; ")

/**
 * `Cache-Control` of the hashed assets.
 *
 * @since 0.1.0
 * @category constants
 */
export const immutableCacheControl = "public, max-age=31536000, immutable"

/**
 * `Cache-Control` of `index.html`: always revalidated (its `ETag` makes that a 304).
 *
 * @since 0.1.0
 * @category constants
 */
export const indexCacheControl = "no-cache"

/**
 * The paths the console calls on its own origin: it cannot be mounted at or under one of them (nor at the root).
 *
 * @since 0.1.0
 * @category constants
 */
export const reservedPaths: ReadonlyArray<string> = ["/api", "/admin", "/health", "/metrics", "/openapi.json", "/docs"]

/**
 * Where the console may be mounted: one or more path segments of unreserved characters (`/console`,
 * `/ops/console`; a trailing `/` is dropped), neither the root nor at or under a path the console calls
 * ({@link reservedPaths}).
 *
 * @since 0.1.0
 * @category schemas
 */
export const MountPath = Schema.String.check(
  Schema.isPattern(/^(\/[A-Za-z0-9._~-]+)+\/?$/, {
    message: "must be a path such as /console: segments of letters, digits, '.', '_', '~' or '-'"
  }),
  Schema.makeFilter((path: string) => {
    const mount = path.replace(/\/+$/, "")
    if (mount.split("/").some((segment) => segment === "." || segment === "..")) {
      return "must not have a . or .. segment"
    }
    const taken = reservedPaths.find((reserved) => mount === reserved || mount.startsWith(`${reserved}/`))
    return taken === undefined ? undefined : `must not be ${taken} or under it: the console calls it`
  })
)

/**
 * The configuration of {@link layerConfig}: `PATH` (default `/console`, a {@link MountPath}) and `DIR` (default:
 * this package's `dist/`); the server nests it, e.g. under `CONSOLE` (`CONSOLE_PATH`, `CONSOLE_DIR`).
 *
 * @since 0.1.0
 * @category config
 */
export const config = Config.all({
  path: Config.schema(MountPath, "PATH").pipe(Config.withDefault("/console")),
  directory: Config.option(Config.String("DIR"))
})

/**
 * The build directory: the first of these that holds a `manifest.json` — `dist/` beside this package's
 * `package.json` (found through module resolution, so also from a bundled server), `../dist` from this module (the
 * sources run as they are), `../../console/dist` from the bundle (`apps/server/dist/main.js` →
 * `apps/console/dist`, the repository's and the image's layout). The first candidate when none has one (the layer
 * then answers 503 and says how to build).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultDirectory = (): string => {
  const candidates: Array<string> = []
  try {
    const require = createRequire(import.meta.url)
    candidates.push(Path.join(Path.dirname(require.resolve("@ouroboros/console/package.json")), "dist"))
  } catch {
    // not installed as a package: the paths relative to this module remain
  }
  candidates.push(
    fileURLToPath(new URL("../dist", import.meta.url)),
    fileURLToPath(new URL("../../console/dist", import.meta.url))
  )
  return candidates.find((dir) => existsSync(Path.join(dir, "manifest.json"))) ?? candidates[0]!
}

// -----------------------------------------------------------------------------
// content negotiation
// -----------------------------------------------------------------------------

/**
 * A content coding the console has files in.
 *
 * @since 0.1.0
 * @category models
 */
export type Encoding = "br" | "gzip"

/**
 * The coding to answer with, from `Accept-Encoding` (RFC 9110 §12.5.3) and the codings available: the acceptable
 * one with the highest weight, Brotli before gzip at equal weight; `undefined` for the file as it is. A coding with
 * `q=0` is not acceptable, and `*` stands for every coding not named.
 *
 * @since 0.1.0
 * @category negotiation
 * @example
 * import { ConsoleHttp } from "@ouroboros/console"
 * ConsoleHttp.negotiate("gzip, deflate, br;q=0.9", ["br", "gzip"]) // "gzip"
 */
export const negotiate = (header: string | undefined, available: ReadonlyArray<Encoding>): Encoding | undefined => {
  if (header === undefined || header.trim() === "" || available.length === 0) return undefined
  const weights = new Map<string, number>()
  for (const part of header.split(",")) {
    const [name = "", ...params] = part.trim().split(";").map((s) => s.trim())
    if (name === "") continue
    let q = 1
    for (const param of params) {
      const match = /^q=([0-9.]+)$/i.exec(param)
      if (match !== null) q = Math.min(1, Math.max(0, Number(match[1])))
    }
    const coding = name.toLowerCase() === "x-gzip" ? "gzip" : name.toLowerCase()
    weights.set(coding, Math.max(weights.get(coding) ?? 0, Number.isNaN(q) ? 0 : q))
  }
  let best: Encoding | undefined
  let bestWeight = 0
  for (const coding of ["br", "gzip"] as const) {
    if (!available.includes(coding)) continue
    const weight = weights.get(coding) ?? weights.get("*") ?? 0
    if (weight > bestWeight) {
      best = coding
      bestWeight = weight
    }
  }
  return best
}

/**
 * Whether `If-None-Match` matches an entity tag (weak comparison, as RFC 9110 §13.1.2 asks for GET).
 *
 * @since 0.1.0
 * @category negotiation
 */
export const matchesEtag = (header: string | undefined, etag: string): boolean => {
  if (header === undefined) return false
  const opaque = (tag: string) => tag.trim().replace(/^W\//, "")
  return header.split(",").some((tag) => tag.trim() === "*" || opaque(tag) === opaque(etag))
}

// -----------------------------------------------------------------------------
// the files in memory
// -----------------------------------------------------------------------------

/**
 * One representation of a file: its bytes as sent and its entity tag.
 *
 * @since 0.1.0
 * @category models
 */
export interface Variant {
  readonly body: Uint8Array
  readonly etag: string
}

/**
 * A file of the console in memory: as it is and in each coding it was compressed in.
 *
 * @since 0.1.0
 * @category models
 */
export interface Asset {
  readonly contentType: string
  readonly cacheControl: string
  readonly identity: Variant
  readonly encoded: Partial<Record<Encoding, Variant>>
}

/**
 * The console as loaded: its files by path under the mount (`index.html`, `assets/app-….js`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Console {
  readonly manifest: Manifest
  readonly index: Asset
  readonly assets: ReadonlyMap<string, Asset>
}

/**
 * The build directory cannot be used (missing, unreadable, or a manifest that does not decode).
 *
 * @since 0.1.0
 * @category errors
 */
export class ConsoleNotBuilt extends Data.TaggedError("ConsoleNotBuilt")<{
  readonly directory: string
  readonly detail: string
}> {}

const etagOf = (sha256: string, suffix: string) =>
  `"${sha256.replace(/[+/=]/g, (c) => c === "+" ? "-" : c === "/" ? "_" : "").slice(0, 22)}${suffix}"`

const variantsOf = (
  sha256: string,
  identity: Uint8Array,
  encoded: Partial<Record<Encoding, Uint8Array>>
): Pick<Asset, "identity" | "encoded"> => ({
  identity: { body: identity, etag: etagOf(sha256, "") },
  encoded: {
    ...(encoded.br === undefined ? {} : { br: { body: encoded.br, etag: etagOf(sha256, "-br") } }),
    ...(encoded.gzip === undefined ? {} : { gzip: { body: encoded.gzip, etag: etagOf(sha256, "-gz") } })
  }
})

const compress = (bytes: Uint8Array): Partial<Record<Encoding, Uint8Array>> => {
  const br = brotliCompressSync(bytes, { params: { [zlib.BROTLI_PARAM_QUALITY]: zlib.BROTLI_MAX_QUALITY } })
  const gzip = gzipSync(bytes, { level: 9 })
  return {
    ...(br.length < bytes.length ? { br: new Uint8Array(br) } : {}),
    ...(gzip.length < bytes.length ? { gzip: new Uint8Array(gzip) } : {})
  }
}

/** The mount path without a trailing slash (`/console`), or `""` at the root. */
const normalizePath = (path: string): string => {
  const trimmed = path.trim().replace(/\/+$/, "")
  return trimmed === "" ? "" : trimmed.startsWith("/") ? trimmed : `/${trimmed}`
}

/**
 * Reads a build into memory. When the console is mounted elsewhere than the build's base, `index.html`'s
 * `<base href>` is rewritten and compressed again (the assets are referred to relative to it).
 *
 * @since 0.1.0
 * @category constructors
 */
export const load = Effect.fn("ConsoleHttp.load")(function*(directory: string, mount: string) {
  const notBuilt = (detail: string) => new ConsoleNotBuilt({ directory, detail })
  const read = (file: string) =>
    Effect.tryPromise({
      try: () => readFile(Path.join(directory, file)),
      catch: (cause) => notBuilt(`cannot read ${file}: ${cause instanceof Error ? cause.message : String(cause)}`)
    }).pipe(Effect.map((buffer) => new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)))
  const manifestText = yield* read("manifest.json").pipe(Effect.map((bytes) => new TextDecoder().decode(bytes)))
  const manifest = yield* decodeManifest(manifestText).pipe(
    Effect.mapError((error) => notBuilt(`manifest.json does not decode: ${error.message}`))
  )
  const assets = new Map<string, Asset>()
  let index: Asset | undefined
  const base = `${normalizePath(mount)}/`
  for (const [file, info] of Object.entries(manifest.files)) {
    if (file.includes("..") || Path.isAbsolute(file)) {
      return yield* notBuilt(`manifest.json names a file outside the build: ${file}`)
    }
    let identity = yield* read(file)
    let sha256 = info.sha256
    let encoded: Partial<Record<Encoding, Uint8Array>> = {}
    if (file === manifest.index && base !== manifest.base) {
      const html = new TextDecoder().decode(identity).replace(
        `<base href="${manifest.base}">`,
        `<base href="${base.replace(/[&"<>]/g, (c) => `&#${c.charCodeAt(0)};`)}">`
      )
      identity = new TextEncoder().encode(html)
      sha256 = createHash("sha256").update(identity).digest("base64")
      encoded = compress(identity)
    } else {
      if (info.encodings.br !== undefined) encoded.br = yield* read(`${file}.br`)
      if (info.encodings.gzip !== undefined) encoded.gzip = yield* read(`${file}.gz`)
    }
    const asset: Asset = {
      contentType: info.contentType,
      cacheControl: info.immutable ? immutableCacheControl : indexCacheControl,
      ...variantsOf(sha256, identity, encoded)
    }
    if (file === manifest.index) index = asset
    else assets.set(file, asset)
  }
  if (index === undefined) return yield* notBuilt(`manifest.json does not list ${manifest.index}`)
  return { manifest, index, assets } satisfies Console
})

// -----------------------------------------------------------------------------
// responses
// -----------------------------------------------------------------------------

const securityHeaders = (policy: string): Record<string, string> => ({
  "content-security-policy": policy,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "x-frame-options": "DENY"
})

/**
 * The response for one file and one request: the negotiated coding, or a 304 when the client has it.
 *
 * @since 0.1.0
 * @category responses
 */
export const respond = (
  asset: Asset,
  request: { readonly headers: { readonly [name: string]: string | undefined } },
  policy: string = contentSecurityPolicy
): HttpServerResponse.HttpServerResponse => {
  const available = Object.keys(asset.encoded) as Array<Encoding>
  const coding = negotiate(request.headers["accept-encoding"], available)
  const variant = coding === undefined ? asset.identity : asset.encoded[coding]!
  const headers: Record<string, string> = {
    ...securityHeaders(policy),
    "cache-control": asset.cacheControl,
    etag: variant.etag
  }
  if (available.length > 0) headers["vary"] = "Accept-Encoding"
  if (matchesEtag(request.headers["if-none-match"], variant.etag)) {
    return HttpServerResponse.empty({ status: 304, headers })
  }
  if (coding !== undefined) headers["content-encoding"] = coding
  return HttpServerResponse.uint8Array(variant.body, { status: 200, contentType: asset.contentType, headers })
}

const problem = (status: 404 | 503, detail: string, policy: string) =>
  Effect.map(RequestContext.correlationId, (id) =>
    HttpServerResponse.jsonUnsafe({
      type: "about:blank",
      title: Problem.title(status),
      status,
      detail,
      ...(Option.isSome(id) ? { correlationId: id.value } : {})
    }, {
      status,
      contentType: Problem.contentType,
      headers: { ...securityHeaders(policy), "cache-control": "no-store" }
    }))

const pathOf = (url: string): string => {
  const end = url.search(/[?#]/)
  return end === -1 ? url : url.slice(0, end)
}

/**
 * The handler of every console route: `index.html` for the mount and its deep links, the hashed assets under
 * `assets/`, a 404 problem for an unknown asset.
 *
 * @since 0.1.0
 * @category handlers
 */
export const handler = (
  loaded: Console,
  options: { readonly path: string; readonly contentSecurityPolicy?: string | undefined }
) => {
  const mount = normalizePath(options.path)
  const policy = options.contentSecurityPolicy ?? contentSecurityPolicy
  return (request: HttpServerRequest.HttpServerRequest) => {
    const path = pathOf(request.url)
    const rest = path.length > mount.length ? path.slice(mount.length + 1) : ""
    if (rest.startsWith("assets/")) {
      let name: string
      try {
        name = decodeURIComponent(rest)
      } catch {
        name = rest
      }
      const asset = loaded.assets.get(name)
      return asset === undefined
        ? problem(404, `the console has no asset ${name}`, policy)
        : Effect.succeed(respond(asset, request, policy))
    }
    return Effect.succeed(respond(loaded.index, request, policy))
  }
}

// -----------------------------------------------------------------------------
// layers
// -----------------------------------------------------------------------------

/**
 * Adds the console's routes to the server's `HttpRouter`: `GET <path>`, `GET <path>/*`. Merge it with the server's
 * other routes (it is a `Layer` on `HttpRouter`, like `HttpApiBuilder.layer`). The build is read when the layer is
 * built; without one, the routes answer 503 and a warning says how to build it.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { ConsoleHttp } from "@ouroboros/console"
 * import { Layer } from "effect"
 * import { HttpRouter } from "effect/http"
 * // const Routes = Layer.mergeAll(HttpApiBuilder.layer(Api, { openapiPath: "/openapi.json" }),
 * //   ConsoleHttp.layer({ path: "/console" }))
 * // HttpRouter.serve(Routes)
 */
export const layer = (options: Options = {}): Layer.Layer<never, never, HttpRouter.HttpRouter> => {
  const mount = normalizePath(options.path ?? "/console")
  const directory = options.directory ?? defaultDirectory()
  const policy = options.contentSecurityPolicy ?? contentSecurityPolicy
  return HttpRouter.addAll(
    load(directory, mount).pipe(
      Effect.map((loaded) => handler(loaded, { path: mount, contentSecurityPolicy: policy })),
      Effect.catchTag("ConsoleNotBuilt", (error) =>
        Effect.as(
          Effect.logWarning(`the operator console is not served: ${error.detail}`).pipe(
            Effect.annotateLogs({ service: "console", directory: error.directory })
          ),
          (_: HttpServerRequest.HttpServerRequest) =>
            problem(503, "the operator console is not built: run `node apps/console/build.mjs`", policy)
        )),
      Effect.map((handle) => [
        HttpRouter.route("GET", mount === "" ? "/" : mount as `/${string}`, handle),
        HttpRouter.route("GET", `${mount}/*` as `/${string}`, handle)
      ])
    )
  )
}

/**
 * {@link layer} from configuration ({@link config}, nested by the caller: `Config.nested(ConsoleHttp.config,
 * "CONSOLE")` reads `CONSOLE_PATH` and `CONSOLE_DIR`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  settings: Config.Config<{ readonly path: string; readonly directory: Option.Option<string> }> = config
): Layer.Layer<never, Config.ConfigError, HttpRouter.HttpRouter> =>
  Layer.unwrap(
    Effect.map(settings, (c) => layer({ path: c.path, directory: Option.getOrUndefined(c.directory) }))
  )
