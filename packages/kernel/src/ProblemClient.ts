/**
 * For Effect clients of a server that writes problems in RFC 9457's style (`ProblemHttp.rfc9457`: no `_tag` in the
 * body, a documented `type` URI instead). `HttpApiClient` decodes an error response with the endpoint's error schemas,
 * which are tagged classes: {@link restoreTags} puts back the `_tag` that the problem's `type` stands for
 * (`Problem.tagOfType`), so a missing tenant is `Problem.NotFound` again and not a decoding failure.
 *
 * ```ts
 * const client = yield* HttpApiClient.make(Api, { baseUrl, transformClient: ProblemClient.restoreTags })
 * ```
 *
 * Only `application/problem+json` responses with a status of 400 or more and no `_tag` are touched; their body is
 * read once and handed on unchanged but for the added member.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { HttpClient, type HttpClientError, HttpClientResponse } from "effect/http"
import * as Problem from "./Problem.js"

/**
 * The options of {@link restoreTagsWith}: the server's type base, when it documents its problems under its own.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly typeBase?: string | undefined
}

const withTag = (response: HttpClientResponse.HttpClientResponse, typeBase: string) =>
  Effect.map(response.text, (text) => {
    let body = text
    try {
      const parsed: unknown = JSON.parse(text)
      if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) && !("_tag" in parsed)) {
        const tag = Problem.tagOfType((parsed as { readonly type?: unknown }).type, response.status, typeBase)
        if (tag !== undefined) body = JSON.stringify({ _tag: tag, ...parsed })
      }
    } catch {
      // Not JSON after all: handed on as it came, for the client to report.
    }
    return HttpClientResponse.fromWeb(
      response.request,
      new Response(body, { status: response.status, headers: new Headers(response.headers as Record<string, string>) })
    )
  })

/**
 * {@link restoreTags} for a server whose problem types live under `options.typeBase`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const restoreTagsWith = (options: Options = {}) =>
<E, R>(
  client: HttpClient.HttpClient.With<E, R>
): HttpClient.HttpClient.With<E | HttpClientError.HttpClientError, R> => {
  const typeBase = options.typeBase ?? Problem.typeBase
  return HttpClient.transformResponse(
    client,
    (effect) =>
      Effect.flatMap(
        effect,
        (response) =>
          response.status >= 400 && (response.headers["content-type"] ?? "").startsWith(Problem.contentType)
            ? withTag(response, typeBase)
            : Effect.succeed(response)
      )
  )
}

/**
 * Puts back the `_tag` of problem bodies written without one (see the module's documentation).
 *
 * @since 0.1.0
 * @category combinators
 */
export const restoreTags: <E, R>(
  client: HttpClient.HttpClient.With<E, R>
) => HttpClient.HttpClient.With<E | HttpClientError.HttpClientError, R> = restoreTagsWith()
