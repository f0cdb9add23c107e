/**
 * Calls to the server's public API with the operator's key (`X-API-Key`), and its errors as the console shows them:
 * an RFC 9457 problem's `title`, `detail` and `status`, with the correlation id to quote to whoever reads the logs.
 *
 * @since 0.1.0
 */

/**
 * A failed call: the problem the server answered, or a network failure (`status` 0).
 *
 * @since 0.1.0
 * @category errors
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string | undefined,
    readonly correlationId: string | undefined,
    readonly request: string
  ) {
    super(detail === undefined ? title : `${title}: ${detail}`)
  }
}

/**
 * A successful call.
 *
 * @since 0.1.0
 * @category models
 */
export interface Reply<A> {
  readonly status: number
  readonly data: A
  readonly correlationId: string | undefined
}

let apiKey: string | undefined
let onUnauthorized: ((error: ApiError) => void) | undefined

/**
 * Sets the key every call sends (`undefined` after sign-out).
 *
 * @since 0.1.0
 * @category configuration
 */
export const setKey = (key: string | undefined): void => {
  apiKey = key
}

/**
 * What to do when the server refuses the key in the middle of a session (revoked, expired): sign out and say so.
 *
 * @since 0.1.0
 * @category configuration
 */
export const setOnUnauthorized = (handler: ((error: ApiError) => void) | undefined): void => {
  onUnauthorized = handler
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RequestOptions {
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>> | undefined
  readonly body?: unknown
  readonly accept?: string | undefined
  readonly signal?: AbortSignal | undefined
  /** Send this key rather than the session's (signing in). */
  readonly key?: string | undefined
  /** Read the body as text (`/metrics`, checkpoints, CSV). */
  readonly text?: boolean | undefined
  /** Statuses that are answers rather than errors (a failing health probe is a 503 with a report). */
  readonly accepted?: ReadonlyArray<number> | undefined
}

/**
 * The URL of an API path with its query (empty values left out).
 *
 * @since 0.1.0
 * @category utils
 */
export const url = (path: string, query?: RequestOptions["query"]): string => {
  const params = new URLSearchParams()
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== "") params.set(name, String(value))
  }
  const search = params.toString()
  return search === "" ? path : `${path}?${search}`
}

const problemOf = async (response: Response, request: string): Promise<ApiError> => {
  const header = response.headers.get("x-correlation-id") ?? undefined
  let body: Record<string, unknown> = {}
  try {
    const text = await response.text()
    const parsed: unknown = text === "" ? {} : JSON.parse(text)
    if (typeof parsed === "object" && parsed !== null) body = parsed as Record<string, unknown>
  } catch {
    // not JSON: the status says it all
  }
  const title = typeof body.title === "string" ? body.title : response.statusText || `HTTP ${response.status}`
  const detail = typeof body.detail === "string" ? body.detail : undefined
  const correlationId = typeof body.correlationId === "string" ? body.correlationId : header
  return new ApiError(response.status, title, detail, correlationId, request)
}

/**
 * How long a read waits for a rate limit before it is tried again (`Retry-After`, seconds): at most
 * {@link retryAttempts} times, and only when the server asks for no more than {@link maxRetryAfterSeconds}. The
 * admin API is limited per client address (`RATE_LIMIT_ADMIN`), so several tabs, or a whole-log verification that
 * reads many pages, can meet the limit; a longer wait, or a write, shows the 429 problem instead.
 *
 * @since 0.1.0
 * @category configuration
 */
export const maxRetryAfterSeconds = 10

/**
 * @since 0.1.0
 * @category configuration
 */
export const retryAttempts = 2

/**
 * The seconds of a `Retry-After` header (a number of seconds, or an HTTP date), or `undefined`.
 *
 * @since 0.1.0
 * @category utils
 */
export const retryAfterSeconds = (header: string | null, now = Date.now()): number | undefined => {
  if (header === null) return undefined
  const trimmed = header.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed)
  const date = Date.parse(trimmed)
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000))
}

const wait = (seconds: number, signal: AbortSignal | undefined) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted === true) return reject(new DOMException("aborted", "AbortError"))
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort)
      resolve()
    }, seconds * 1000)
    const onAbort = () => {
      clearTimeout(timer)
      reject(new DOMException("aborted", "AbortError"))
    }
    signal?.addEventListener("abort", onAbort, { once: true })
  })

/**
 * Calls the API; resolves with the parsed body, rejects with an {@link ApiError}. A `GET` refused by a rate limit
 * is tried again after the `Retry-After` the server gives (see {@link maxRetryAfterSeconds}).
 *
 * @since 0.1.0
 * @category calls
 */
export const call = async <A>(method: string, path: string, options: RequestOptions = {}): Promise<Reply<A>> => {
  const request = `${method} ${path}`
  const headers: Record<string, string> = { accept: options.accept ?? "application/json" }
  const key = options.key ?? apiKey
  if (key !== undefined) headers["x-api-key"] = key
  if (options.body !== undefined) headers["content-type"] = "application/json"
  let response: Response
  for (let attempt = 0;; attempt++) {
    try {
      response = await fetch(url(path, options.query), {
        method,
        headers,
        credentials: "omit",
        cache: "no-store",
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
        ...(options.signal === undefined ? {} : { signal: options.signal })
      })
    } catch (cause) {
      if (cause instanceof DOMException && cause.name === "AbortError") throw cause
      throw new ApiError(0, "The server cannot be reached", String(cause), undefined, request)
    }
    if (response.status !== 429 || method !== "GET" || attempt >= retryAttempts) break
    const seconds = retryAfterSeconds(response.headers.get("retry-after"))
    if (seconds === undefined || seconds > maxRetryAfterSeconds) break
    await response.body?.cancel()
    await wait(seconds, options.signal)
  }
  const correlationId = response.headers.get("x-correlation-id") ?? undefined
  if (!response.ok && !(options.accepted ?? []).includes(response.status)) {
    const error = await problemOf(response, request)
    if (error.status === 401 && options.key === undefined && apiKey !== undefined) onUnauthorized?.(error)
    throw error
  }
  if (response.status === 204) return { status: 204, data: undefined as A, correlationId }
  if (options.text === true) return { status: response.status, data: (await response.text()) as A, correlationId }
  const text = await response.text()
  let data: unknown
  try {
    data = text === "" ? undefined : JSON.parse(text)
  } catch {
    throw new ApiError(
      response.status,
      "The server answered something that is not JSON",
      text.slice(0, 200),
      correlationId,
      request
    )
  }
  return { status: response.status, data: data as A, correlationId }
}

/**
 * `GET` a JSON body.
 *
 * @since 0.1.0
 * @category calls
 */
export const get = async <A>(path: string, options?: RequestOptions): Promise<A> =>
  (await call<A>("GET", path, options)).data

/**
 * Downloads a response as a file (the key goes in a header, so a plain link cannot do it).
 *
 * @since 0.1.0
 * @category calls
 */
export const download = async (path: string, filename: string, options: RequestOptions = {}): Promise<void> => {
  const reply = await call<string>("GET", path, { ...options, text: true })
  const blob = new Blob([reply.data], { type: options.accept ?? "application/octet-stream" })
  const href = URL.createObjectURL(blob)
  const link = document.createElement("a")
  link.href = href
  link.download = filename
  document.body.append(link)
  link.click()
  link.remove()
  setTimeout(() => URL.revokeObjectURL(href), 10_000)
}

// -----------------------------------------------------------------------------
// what the server offers
// -----------------------------------------------------------------------------

let operations: Promise<ReadonlySet<string> | undefined> | undefined

/**
 * The operations the server documents in `/openapi.json` (`GET /admin/flags`, with OpenAPI's `{param}` paths), or
 * `undefined` when it cannot be read (then every view is tried).
 *
 * @since 0.1.0
 * @category discovery
 */
export const documentedOperations = (): Promise<ReadonlySet<string> | undefined> => {
  operations ??= get<{ paths?: Record<string, Record<string, unknown>> }>("/openapi.json").then(
    (document) => {
      const out = new Set<string>()
      for (const [path, methods] of Object.entries(document.paths ?? {})) {
        for (const method of Object.keys(methods)) out.add(`${method.toUpperCase()} ${path}`)
      }
      return out
    },
    () => undefined
  )
  return operations
}
