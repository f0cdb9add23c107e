/**
 * One JSON request over `fetch` for tests of HTTP APIs: a body is sent as JSON with its content type (a POST unless
 * `method` says otherwise), and the answer's body is parsed as JSON when it is JSON, else kept as text.
 *
 * @since 0.1.0
 */

/**
 * What to send.
 *
 * @since 0.1.0
 * @category models
 */
export interface Init {
  readonly method?: string | undefined
  readonly headers?: Record<string, string> | undefined
  readonly body?: unknown
}

/**
 * An answer: status, headers, the body parsed as JSON when it is JSON (else the text; undefined when empty), and the
 * text.
 *
 * @since 0.1.0
 * @category models
 */
export interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly body: any
  readonly text: string
}

/**
 * Sends `init` to `url` and reads the whole answer.
 *
 * @since 0.1.0
 * @category constructors
 */
export const request = async (url: string, init: Init = {}): Promise<Reply> => {
  const response = await fetch(url, {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
    headers: { ...(init.body === undefined ? {} : { "content-type": "application/json" }), ...init.headers },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) })
  })
  const text = await response.text()
  let body: unknown = text
  try {
    body = text === "" ? undefined : JSON.parse(text)
  } catch {
    // not JSON: the text
  }
  return { status: response.status, headers: response.headers, body, text }
}
