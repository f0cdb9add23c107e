/**
 * Response compression: a plain `HttpMiddleware` that answers a client sending `Accept-Encoding` with a brotli or
 * gzip body, for responses over a size threshold whose media type compresses (text, JSON, JavaScript, XML, SVG).
 * Streamed bodies, bodies already encoded (`Content-Encoding`), `Cache-Control: no-transform`, `HEAD`, range requests,
 * and 1xx/204/206/304 responses are passed on as they are.
 *
 * A body that is served again and again (the Swagger UI page, an OpenAPI document: the same bytes each time) is
 * compressed once per coding: the result is remembered for as long as the body is alive. Bodies up to
 * `asyncAbove` bytes are compressed on the request's fiber (a few tens of microseconds), larger ones on libuv's
 * thread pool, so that a large document does not stall the event loop.
 *
 * It limits what anyone can make the server send (1.96 MB of Swagger UI becomes ~0.5 MB with gzip, less with brotli),
 * so it lives beside the other edge protections; it belongs in a shared HTTP package once there is one.
 *
 * Compression and secrets: a response that reflects what the client sent next to a secret can leak the secret through
 * its compressed size (BREACH). The responses that carry secrets here (an issued API key) are far below the default
 * threshold; raise `COMPRESSION_MIN_BYTES` or exclude a route if that changes.
 *
 * @since 0.1.0
 */
import { Config, Context, Effect, Layer } from "effect"
import { HttpBody, HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import * as Zlib from "node:zlib"

/**
 * A content coding this middleware produces.
 *
 * @since 0.1.0
 * @category models
 */
export type Coding = "br" | "gzip"

/**
 * Options of the middleware.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Bodies smaller than this many bytes are sent as they are (default 1024). */
  readonly minBytes?: number | undefined
  /** Bodies larger than this are compressed on the thread pool (default 65536). */
  readonly asyncAbove?: number | undefined
  /** Brotli quality, 0 to 11 (default 4: close to gzip's speed, smaller output). */
  readonly brotliQuality?: number | undefined
  /** Gzip level, 1 to 9 (default 6). */
  readonly gzipLevel?: number | undefined
  /** The codings offered, most preferred first (default `["br", "gzip"]`). */
  readonly codings?: ReadonlyArray<Coding> | undefined
}

/**
 * A middleware of this module (the same shape as `RateLimiterHttp.Middleware`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Middleware {
  <E, R>(
    app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
  ): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest>
}

const compressible = new RegExp(
  "^(?:text/(?!event-stream)|image/svg\\+xml|" +
    "application/(?:json|javascript|ecmascript|xml|wasm|x-ndjson|[\\w.-]+\\+(?:json|xml)))",
  "i"
)

/**
 * Whether a media type is worth compressing: text (but not `text/event-stream`), JSON and `+json`, XML and `+xml`,
 * JavaScript, WebAssembly and SVG. Images, archives, fonts in compressed formats and the like are not.
 *
 * @since 0.1.0
 * @category utils
 */
export const isCompressible = (contentType: string): boolean => compressible.test(contentType)

const parseQ = (parameters: string): number => {
  const match = /;\s*q\s*=\s*([0-9.]+)/i.exec(parameters)
  if (match === null) return 1
  const q = Number(match[1])
  return Number.isFinite(q) ? Math.min(1, Math.max(0, q)) : 1
}

/**
 * The coding to answer an `Accept-Encoding` with (RFC 9110 §12.5.3): among `codings`, the one with the highest
 * weight, ties broken by the order of `codings`; `*` weighs for the codings it does not name; weight 0 refuses.
 * `undefined` when none is acceptable (the body is then sent as it is).
 *
 * @since 0.1.0
 * @category utils
 * @example
 * import { CompressionHttp } from "@ouroboros/rate-limit"
 * CompressionHttp.negotiate("gzip, deflate, br;q=0.9") // "gzip"
 * CompressionHttp.negotiate("gzip;q=0, identity") // undefined
 */
export const negotiate = (
  acceptEncoding: string,
  codings: ReadonlyArray<Coding> = ["br", "gzip"]
): Coding | undefined => {
  const weights = new Map<string, number>()
  for (const item of acceptEncoding.split(",")) {
    const semi = item.indexOf(";")
    const name = (semi === -1 ? item : item.slice(0, semi)).trim().toLowerCase()
    if (name === "") continue
    // `x-gzip` is gzip (RFC 9110 §8.4.1.3).
    weights.set(name === "x-gzip" ? "gzip" : name, semi === -1 ? 1 : parseQ(item.slice(semi)))
  }
  const any = weights.get("*")
  let best: Coding | undefined
  let bestQ = 0
  for (const coding of codings) {
    const q = weights.get(coding) ?? any ?? 0
    if (q > bestQ) {
      best = coding
      bestQ = q
    }
  }
  return best
}

// Per coding, the compressed form of bodies that are served more than once, for as long as the body lives.
const compressedBodies: Record<Coding, WeakMap<Uint8Array, Uint8Array>> = {
  br: new WeakMap(),
  gzip: new WeakMap()
}

const varyWith = (vary: string | undefined): string => {
  if (vary === undefined || vary.trim() === "") return "Accept-Encoding"
  if (vary.trim() === "*" || /(?:^|,)\s*accept-encoding\s*(?:,|$)/i.test(vary)) return vary
  return `${vary}, Accept-Encoding`
}

/**
 * Builds the middleware. Put it where it sees every response, error responses included: the outermost of the router's
 * middlewares (a middleware given to `HttpRouter.serve` runs after the response is sent and cannot change it).
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * import { CompressionHttp } from "@ouroboros/rate-limit"
 * import { HttpRouter } from "effect/http"
 * const Compression = HttpRouter.middleware(CompressionHttp.make({ minBytes: 1024 }), { global: true })
 */
export const make = (options: Options = {}): Middleware => {
  const minBytes = Math.max(0, options.minBytes ?? 1024)
  const asyncAbove = options.asyncAbove ?? 65_536
  const codings = options.codings ?? ["br", "gzip"]
  const brotli: Zlib.BrotliOptions = {
    params: {
      [Zlib.constants.BROTLI_PARAM_QUALITY]: options.brotliQuality ?? 4,
      [Zlib.constants.BROTLI_PARAM_MODE]: Zlib.constants.BROTLI_MODE_TEXT
    }
  }
  const gzip: Zlib.ZlibOptions = { level: options.gzipLevel ?? 6 }

  // Clients send one of a few `Accept-Encoding` values: their choice is remembered (bounded).
  const choices = new Map<string, Coding | undefined>()
  const choose = (accept: string): Coding | undefined => {
    if (choices.has(accept)) return choices.get(accept)
    const coding = negotiate(accept, codings)
    if (choices.size >= 256) choices.clear()
    choices.set(accept, coding)
    return coding
  }

  const encodeSync = (coding: Coding, bytes: Uint8Array): Uint8Array =>
    coding === "br" ? Zlib.brotliCompressSync(bytes, brotli) : Zlib.gzipSync(bytes, gzip)

  const encodeAsync = (coding: Coding, bytes: Uint8Array) =>
    Effect.callback<Uint8Array, never>((resume) => {
      const done = (error: Error | null, result: Buffer) =>
        // A coding that fails here is a bug in zlib: the body is sent as it is.
        resume(Effect.succeed(error === null ? result : bytes))
      if (coding === "br") Zlib.brotliCompress(bytes, brotli, done)
      else Zlib.gzip(bytes, gzip, done)
    })

  const withBody = (
    response: HttpServerResponse.HttpServerResponse,
    coding: Coding,
    contentType: string,
    original: Uint8Array,
    encoded: Uint8Array
  ): HttpServerResponse.HttpServerResponse => {
    // Not worth it: the body as it is (and still `Vary`, as the choice depended on the request's codings).
    if (encoded.length >= original.length) {
      return HttpServerResponse.setHeader(response, "vary", varyWith(response.headers["vary"]))
    }
    const etag = response.headers["etag"]
    const body = HttpBody.uint8Array(encoded, contentType)
    return HttpServerResponse.setHeaders(HttpServerResponse.setBody(response, body), {
      "content-encoding": coding,
      "vary": varyWith(response.headers["vary"]),
      // A strong validator names exact bytes: the encoded body is a different representation.
      ...(etag !== undefined && !etag.startsWith("W/") ? { etag: `W/${etag}` } : {})
    })
  }

  const compress = (
    response: HttpServerResponse.HttpServerResponse,
    coding: Coding
  ): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
    const body = response.body
    const status = response.status
    if (
      body._tag !== "Uint8Array" || body.contentLength < minBytes || status < 200 || status === 204 ||
      status === 206 || status === 304 || response.headers["content-encoding"] !== undefined
    ) return Effect.succeed(response)
    const contentType = body.contentType ?? response.headers["content-type"]
    if (contentType === undefined || !compressible.test(contentType)) return Effect.succeed(response)
    const cacheControl = response.headers["cache-control"]
    if (cacheControl !== undefined && /no-transform/i.test(cacheControl)) return Effect.succeed(response)
    const bytes = body.body
    const known = compressedBodies[coding].get(bytes)
    if (known !== undefined) return Effect.succeed(withBody(response, coding, contentType, bytes, known))
    if (bytes.length <= asyncAbove) {
      const encoded = encodeSync(coding, bytes)
      compressedBodies[coding].set(bytes, encoded)
      return Effect.succeed(withBody(response, coding, contentType, bytes, encoded))
    }
    return Effect.map(encodeAsync(coding, bytes), (encoded) => {
      compressedBodies[coding].set(bytes, encoded)
      return withBody(response, coding, contentType, bytes, encoded)
    })
  }

  return <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
    Effect.withFiber<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest>((fiber) => {
      const request = Context.getUnsafe(fiber.context, HttpServerRequest.HttpServerRequest)
      const accept = request.headers["accept-encoding"]
      // Without a coding to offer, the request costs this look at its headers and nothing more.
      if (accept === undefined || request.method === "HEAD" || request.headers["range"] !== undefined) return app
      const coding = choose(accept)
      if (coding === undefined) return app
      return Effect.flatMap(app, (response) => compress(response, coding))
    })
}

/**
 * The configuration:
 *
 * - `COMPRESSION` (`on`): `off` sends every body as it is.
 * - `COMPRESSION_MIN_BYTES` (`1024`): smaller bodies are sent as they are.
 *
 * @since 0.1.0
 * @category config
 */
export const config = Config.all({
  enabled: Config.Literals(["on", "off"], "COMPRESSION").pipe(
    Config.withDefault<"on" | "off">("on"),
    Config.map((setting) => setting === "on")
  ),
  minBytes: Config.Int("COMPRESSION_MIN_BYTES").pipe(Config.withDefault(1024))
})

/**
 * {@link make} from `COMPRESSION` and `COMPRESSION_MIN_BYTES`: a middleware that passes responses on as they are when
 * `off`. For a server that composes its router middlewares itself (outermost, so that it sees every answer).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeConfig = (
  options: Omit<Options, "minBytes"> = {}
): Effect.Effect<Middleware, Config.ConfigError> =>
  Effect.map(
    config,
    (settings): Middleware => settings.enabled ? make({ ...options, minBytes: settings.minBytes }) : (app) => app
  )

/**
 * The middleware as a global `HttpRouter` middleware (every route, and the router's 404).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<never, never, HttpRouter.HttpRouter> =>
  HttpRouter.middleware(
    Effect.sync(() => {
      const compress = make(options)
      // The router's types ask a middleware to pass on the errors it does not know: this one passes on every error.
      return (effect: Effect.Effect<HttpServerResponse.HttpServerResponse, any>) =>
        compress(effect) as Effect.Effect<HttpServerResponse.HttpServerResponse, any>
    }),
    { global: true }
  ) as Layer.Layer<never, never, HttpRouter.HttpRouter>

/**
 * {@link layer} from `COMPRESSION` and `COMPRESSION_MIN_BYTES` (nothing when `off`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Omit<Options, "minBytes"> = {}
): Layer.Layer<never, Config.ConfigError, HttpRouter.HttpRouter> =>
  Layer.unwrap(
    Effect.map(
      config,
      (settings) => settings.enabled ? layer({ ...options, minBytes: settings.minBytes }) : Layer.empty
    )
  )
