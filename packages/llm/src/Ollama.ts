/**
 * The Ollama adapter: `Llm` and `Embedder` over Ollama's HTTP API (`/api/chat` streamed as NDJSON, `/api/embed`),
 * plus `/api/tags` and `/api/version` helpers for health checks.
 *
 * Every response is decoded with Schema. Failures map to {@link LlmError}: connection errors, timeouts, 5xx and 429
 * are `LlmUnavailable` (retryable), 404 is `ModelNotFound`, other 4xx are `InvalidRequest`, undecodable bodies are
 * `InvalidResponse`. Interrupting a call (a timeout, a client that went away, a breaker) aborts the HTTP request.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer, Option, Schema, Stream } from "effect"
import {
  FetchHttpClient,
  HttpClient,
  type HttpClientError,
  HttpClientRequest,
  type HttpClientResponse
} from "effect/http"
import { Embedder, type Purpose } from "./Embedder.js"
import { type ChatRequest, type ChatResponse, citedPassages, Llm, toRequest, type Usage } from "./Llm.js"
import { InvalidRequest, InvalidResponse, type LlmError, LlmUnavailable, ModelNotFound } from "./LlmError.js"
import * as Prompts from "./Prompts.js"

// ---------------------------------------------------------------------------------------------------------------------
// Wire schemas (the subset of Ollama's API the adapter reads)
// ---------------------------------------------------------------------------------------------------------------------

/**
 * The body of an Ollama error response (and of an error line in a stream).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ErrorBody = Schema.Struct({ error: Schema.String })

/**
 * `POST /api/embed` response.
 *
 * @since 0.1.0
 * @category schemas
 */
export const EmbedResponse = Schema.Struct({
  model: Schema.optional(Schema.String),
  embeddings: Schema.Array(Schema.Array(Schema.Number))
})

/**
 * One line of a streamed `POST /api/chat` response (the last one has `done: true` and the counts).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChatChunk = Schema.Struct({
  model: Schema.optional(Schema.String),
  message: Schema.optional(Schema.Struct({ role: Schema.optional(Schema.String), content: Schema.String })),
  done: Schema.Boolean,
  done_reason: Schema.optional(Schema.String),
  prompt_eval_count: Schema.optional(Schema.Number),
  eval_count: Schema.optional(Schema.Number)
})

/**
 * @since 0.1.0
 * @category schemas
 */
export type ChatChunk = typeof ChatChunk.Type

/**
 * A model installed on the server (`GET /api/tags`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ModelInfo = Schema.Struct({
  name: Schema.String,
  model: Schema.optional(Schema.String),
  size: Schema.optional(Schema.Number),
  digest: Schema.optional(Schema.String),
  modified_at: Schema.optional(Schema.String)
})

/**
 * @since 0.1.0
 * @category schemas
 */
export type ModelInfo = typeof ModelInfo.Type

/**
 * `GET /api/tags` response.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TagsResponse = Schema.Struct({ models: Schema.Array(ModelInfo) })

/**
 * `GET /api/version` response.
 *
 * @since 0.1.0
 * @category schemas
 */
export const VersionResponse = Schema.Struct({ version: Schema.String })

const decodeChatLine = Schema.decodeUnknownEffect(Schema.fromJsonString(Schema.Union([ErrorBody, ChatChunk])))

const decodeErrorBody = Schema.decodeUnknownOption(Schema.fromJsonString(ErrorBody))

// ---------------------------------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------------------------------

/**
 * How to reach the server. `headers` is evaluated on every call and its result added to the request: the server uses
 * it to propagate `X-Correlation-ID` (the HTTP client already adds `traceparent` for the current span).
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectionOptions {
  /** The base URL, e.g. `http://127.0.0.1:11434`. */
  readonly url: string
  /** The longest wait for a response, and for each streamed chunk after it. Default 60 seconds. */
  readonly timeout?: Duration.Input | undefined
  readonly headers?: Effect.Effect<Record<string, string>> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options extends ConnectionOptions {
  /** The chat model, e.g. `llama3.2`. */
  readonly model: string
  /** The embedding model, e.g. `nomic-embed-text`. */
  readonly embedModel: string
  /** The embedding size; when absent it is probed at layer build with a one-word embedding. */
  readonly embedDimensions?: number | undefined
  /**
   * Text put before each input by purpose. Default: `search_query: ` / `search_document: ` for nomic-embed models
   * (which are trained with them), none otherwise.
   */
  readonly prefixes?: { readonly query: string; readonly document: string } | undefined
  /** Inputs per `/api/embed` call. Default 32. */
  readonly batchSize?: number | undefined
}

/**
 * The default timeout: 60 seconds.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultTimeout: Duration.Duration = Duration.seconds(60)

/**
 * Sizes of common embedding models, used when the probe at layer build fails (the server is down at startup).
 *
 * @since 0.1.0
 * @category constants
 */
export const knownDimensions: Readonly<Record<string, number>> = {
  "nomic-embed-text": 768,
  "mxbai-embed-large": 1024,
  "all-minilm": 384,
  "snowflake-arctic-embed": 1024,
  "bge-m3": 1024,
  "bge-large": 1024
}

const baseModel = (model: string): string => model.split(":")[0]!.split("/").pop()!

// ---------------------------------------------------------------------------------------------------------------------
// Transport
// ---------------------------------------------------------------------------------------------------------------------

const joinUrl = (base: string, path: string): string => base.replace(/\/+$/, "") + path

const describeCause = (cause: unknown): string => {
  if (cause instanceof Error) {
    const inner = (cause as { cause?: unknown }).cause
    return inner instanceof Error ? `${cause.message}: ${inner.message}` : cause.message
  }
  return String(cause)
}

// Failing to send (refused, reset, bad URL) is a connection error; failing to read the body is a stream error.
const isRequestError = (reason: HttpClientError.HttpClientErrorReason): reason is HttpClientError.RequestError =>
  reason._tag === "TransportError" || reason._tag === "EncodeError" || reason._tag === "InvalidUrlError"

const fromHttpError = (error: HttpClientError.HttpClientError): LlmUnavailable =>
  new LlmUnavailable({
    reason: isRequestError(error.reason) ? "connection" : "stream",
    detail: `Ollama ${error.reason.methodAndUrl}: ${describeCause(error.cause ?? error)}`
  })

const errorMessage = (body: string): string =>
  Option.match(decodeErrorBody(body), {
    onNone: () => body.slice(0, 500),
    onSome: (decoded) => decoded.error
  })

const fromStatus = (
  response: HttpClientResponse.HttpClientResponse,
  model: string | undefined
): Effect.Effect<never, LlmError> =>
  Effect.flatMap(
    Effect.orElseSucceed(response.text, () => ""),
    (body): Effect.Effect<never, LlmError> => {
      const status = response.status
      const message = errorMessage(body)
      const where = `Ollama ${response.request.method} ${new URL(response.request.url).pathname}`
      if (status === 404 && model !== undefined) {
        return Effect.fail(new ModelNotFound({ model, detail: `${where}: ${message || `model "${model}" not found`}` }))
      }
      if (status >= 500 || status === 408 || status === 429) {
        return Effect.fail(new LlmUnavailable({ reason: "status", status, detail: `${where}: ${status} ${message}` }))
      }
      return Effect.fail(new InvalidRequest({ status, detail: `${where}: ${status} ${message}` }))
    }
  )

const invalid = (what: string) => (error: Schema.SchemaError) =>
  new InvalidResponse({ detail: `Ollama ${what}: ${error.message}` })

interface Transport {
  /** Sends a request and returns the successful response; non-2xx statuses become errors. No timeout. */
  readonly send: (
    method: "GET" | "POST",
    path: string,
    body: unknown,
    model: string | undefined
  ) => Effect.Effect<HttpClientResponse.HttpClientResponse, LlmError>
  /** `send`, decode the JSON body, all within the timeout. */
  readonly json: <A>(
    method: "GET" | "POST",
    path: string,
    body: unknown,
    model: string | undefined,
    schema: Schema.Decoder<A>
  ) => Effect.Effect<A, LlmError>
  readonly timeout: Duration.Duration
  readonly timedOut: (path: string) => LlmUnavailable
}

const makeTransport = (client: HttpClient.HttpClient, options: ConnectionOptions): Transport => {
  const timeout = Duration.fromInputUnsafe(options.timeout ?? defaultTimeout)
  const extraHeaders = options.headers ?? Effect.succeed({})
  const timedOut = (path: string) =>
    new LlmUnavailable({ reason: "timeout", detail: `Ollama ${path}: no response within ${Duration.format(timeout)}` })
  const send: Transport["send"] = (method, path, body, model) =>
    Effect.flatMap(extraHeaders, (headers) => {
      const url = joinUrl(options.url, path)
      const base = method === "GET" ? HttpClientRequest.get(url) : HttpClientRequest.post(url)
      const request = HttpClientRequest.acceptJson(HttpClientRequest.setHeaders(base, headers))
      return client.execute(body === undefined ? request : HttpClientRequest.bodyJsonUnsafe(request, body))
    }).pipe(
      Effect.mapError(fromHttpError),
      Effect.flatMap((response) =>
        response.status >= 200 && response.status < 300 ? Effect.succeed(response) : fromStatus(response, model)
      )
    )
  const json: Transport["json"] = (method, path, body, model, schema) =>
    send(method, path, body, model).pipe(
      Effect.flatMap((response) => Effect.mapError(response.json, fromHttpError)),
      Effect.flatMap((u) => Effect.mapError(Schema.decodeUnknownEffect(schema)(u), invalid(path))),
      Effect.timeoutOrElse({ duration: timeout, orElse: () => Effect.fail(timedOut(path)) })
    )
  return { send, json, timeout, timedOut }
}

// ---------------------------------------------------------------------------------------------------------------------
// Health helpers
// ---------------------------------------------------------------------------------------------------------------------

/**
 * The server version (`GET /api/version`).
 *
 * @since 0.1.0
 * @category health
 */
export const version = (options: ConnectionOptions): Effect.Effect<string, LlmError, HttpClient.HttpClient> =>
  Effect.flatMap(
    HttpClient.HttpClient,
    (client) =>
      Effect.map(
        makeTransport(client, options).json("GET", "/api/version", undefined, undefined, VersionResponse),
        (r) => r.version
      )
  ).pipe(Effect.withSpan("Ollama.version"))

/**
 * The installed models (`GET /api/tags`).
 *
 * @since 0.1.0
 * @category health
 */
export const models = (
  options: ConnectionOptions
): Effect.Effect<ReadonlyArray<ModelInfo>, LlmError, HttpClient.HttpClient> =>
  Effect.flatMap(
    HttpClient.HttpClient,
    (client) =>
      Effect.map(makeTransport(client, options).json("GET", "/api/tags", undefined, undefined, TagsResponse), (r) =>
        r.models)
  ).pipe(Effect.withSpan("Ollama.models"))

/**
 * Whether `model` is among `installed`: `llama3.2` matches `llama3.2:latest`.
 *
 * @since 0.1.0
 * @category health
 */
export const hasModel = (installed: ReadonlyArray<ModelInfo>, model: string): boolean => {
  const wanted = model.includes(":") ? model : `${model}:latest`
  return installed.some((m) => {
    const name = m.name.includes(":") ? m.name : `${m.name}:latest`
    return name === wanted
  })
}

/**
 * @since 0.1.0
 * @category health
 */
export interface HealthReport {
  readonly version: string
  readonly models: ReadonlyArray<string>
  /** The required models that are not installed. */
  readonly missing: ReadonlyArray<string>
}

/**
 * A health probe: the version and models of the server, and which of `required` are missing. Fails with an
 * {@link LlmError} when the server cannot be reached.
 *
 * @since 0.1.0
 * @category health
 */
export const health = (
  options: ConnectionOptions & { readonly required?: ReadonlyArray<string> | undefined }
): Effect.Effect<HealthReport, LlmError, HttpClient.HttpClient> =>
  Effect.map(
    Effect.all([version(options), models(options)], { concurrency: 2 }),
    ([v, installed]) => ({
      version: v,
      models: installed.map((m) => m.name),
      missing: (options.required ?? []).filter((model) => !hasModel(installed, model))
    })
  ).pipe(Effect.withSpan("Ollama.health"))

// ---------------------------------------------------------------------------------------------------------------------
// The services
// ---------------------------------------------------------------------------------------------------------------------

const chatBody = (request: ChatRequest, model: string) => {
  const options: Record<string, number> = {}
  if (request.temperature !== undefined) options.temperature = request.temperature
  if (request.maxTokens !== undefined) options.num_predict = request.maxTokens
  return {
    model,
    messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
    stream: true,
    ...(Object.keys(options).length > 0 ? { options } : {})
  }
}

/**
 * Builds the Ollama `Llm` and `Embedder` on an `HttpClient`. Unless `embedDimensions` is given, the embedding size is
 * probed with a one-word embedding; when the probe fails and the model is in {@link knownDimensions} that size is
 * used (and a warning logged), otherwise the error is the layer's.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<
  { readonly llm: Llm["Service"]; readonly embedder: Embedder["Service"] },
  LlmError,
  HttpClient.HttpClient
> =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const transport = makeTransport(client, options)

    // --- chat ---------------------------------------------------------------------------------------------------
    const chunks = (request: ChatRequest): Stream.Stream<ChatChunk, LlmError> =>
      Stream.unwrap(Effect.gen(function*() {
        const model = request.model ?? options.model
        const response = yield* transport.send("POST", "/api/chat", chatBody(request, model), model).pipe(
          Effect.timeoutOrElse({
            duration: transport.timeout,
            orElse: () => Effect.fail(transport.timedOut("/api/chat"))
          })
        )
        let finished = false
        const lines = response.stream.pipe(
          Stream.mapError(fromHttpError),
          Stream.decodeText(),
          Stream.splitLines,
          Stream.filter((line) => line.trim().length > 0),
          Stream.mapEffect((line) =>
            Effect.flatMap(
              Effect.mapError(decodeChatLine(line), invalid("/api/chat")),
              (decoded): Effect.Effect<ChatChunk, LlmError> =>
                "error" in decoded
                  ? Effect.fail(new LlmUnavailable({ reason: "stream", detail: `Ollama /api/chat: ${decoded.error}` }))
                  : Effect.succeed(decoded)
            )
          ),
          Stream.takeUntil((chunk) => chunk.done),
          Stream.tap((chunk) =>
            Effect.sync(() => {
              finished ||= chunk.done
            })
          ),
          Stream.timeoutOrElse({
            duration: transport.timeout,
            orElse: () => Stream.fail(transport.timedOut("/api/chat"))
          })
        )
        return Stream.concat(
          lines,
          Stream.suspend(() =>
            finished
              ? Stream.empty
              : Stream.fail(new LlmUnavailable({ reason: "stream", detail: "Ollama /api/chat: stream ended early" }))
          )
        )
      }))

    const chatStream = (request: ChatRequest): Stream.Stream<string, LlmError> =>
      chunks(request).pipe(
        Stream.map((chunk) => chunk.message?.content ?? ""),
        Stream.filter((content) => content.length > 0),
        Stream.withSpan("Ollama.chatStream", { attributes: { "llm.model": request.model ?? options.model } })
      )

    const chat = Effect.fn("Ollama.chat")(function*(request: ChatRequest) {
      yield* Effect.annotateCurrentSpan("llm.model", request.model ?? options.model)
      const initial: ChatResponse = { content: "", model: request.model ?? options.model, degraded: false }
      return yield* Stream.runFold(
        chunks(request),
        () => initial,
        (acc, chunk): ChatResponse => {
          const usage: Usage | undefined = chunk.done && chunk.prompt_eval_count !== undefined &&
              chunk.eval_count !== undefined
            ? { promptTokens: chunk.prompt_eval_count, completionTokens: chunk.eval_count }
            : acc.usage
          return {
            content: acc.content + (chunk.message?.content ?? ""),
            model: chunk.model ?? acc.model,
            degraded: false,
            ...(usage !== undefined ? { usage } : {})
          }
        }
      )
    })

    const llm = Llm.of({
      id: `ollama:${options.model}`,
      chat,
      chatStream,
      generate: (prompt, generateOptions) => chat(toRequest(prompt, generateOptions)),
      answer: Effect.fn("Ollama.answer")(function*(question, passages, answerOptions) {
        if (passages.length === 0) {
          return {
            answer: "I cannot answer this from the documents: no relevant passage was found.",
            degraded: false,
            model: answerOptions?.model ?? options.model,
            citations: []
          }
        }
        const reply = yield* chat(toRequest(Prompts.answer(question, passages), answerOptions))
        return {
          answer: reply.content,
          degraded: false,
          model: reply.model,
          citations: citedPassages(reply.content, passages),
          ...(reply.usage === undefined ? {} : { usage: reply.usage })
        }
      })
    })

    // --- embeddings -----------------------------------------------------------------------------------------------
    const prefixes = options.prefixes ??
      (baseModel(options.embedModel).startsWith("nomic-embed")
        ? { query: "search_query: ", document: "search_document: " }
        : undefined)
    const batchSize = Math.max(1, options.batchSize ?? 32)

    const embedBatch = (inputs: ReadonlyArray<string>) =>
      Effect.flatMap(
        transport.json(
          "POST",
          "/api/embed",
          { model: options.embedModel, input: inputs },
          options.embedModel,
          EmbedResponse
        ),
        (response) =>
          response.embeddings.length === inputs.length
            ? Effect.succeed(response.embeddings)
            : Effect.fail(
              new InvalidResponse({
                detail: `Ollama /api/embed: ${response.embeddings.length} embeddings for ${inputs.length} inputs`
              })
            )
      )

    const probe = embedBatch(["dimensions"]).pipe(Effect.map((vectors) => vectors[0]?.length ?? 0))
    const dimensions = options.embedDimensions ?? (yield* probe.pipe(
      Effect.catch((error) => {
        const known = knownDimensions[baseModel(options.embedModel)]
        return known === undefined
          ? Effect.fail(error)
          : Effect.as(
            Effect.logWarning(
              `Ollama embedding probe failed (${error.message}); assuming ${known} dimensions for ${options.embedModel}`
            ),
            known
          )
      })
    ))
    yield* Effect.annotateCurrentSpan("llm.embed.dimensions", dimensions)

    const embed = (texts: ReadonlyArray<string>, embedOptions?: { readonly purpose?: Purpose | undefined }) => {
      const prefix = prefixes === undefined || embedOptions?.purpose === undefined
        ? ""
        : prefixes[embedOptions.purpose]
      const batches: Array<ReadonlyArray<string>> = []
      for (let i = 0; i < texts.length; i += batchSize) {
        batches.push(texts.slice(i, i + batchSize).map((text) => prefix + text))
      }
      return Effect.forEach(batches, embedBatch).pipe(
        Effect.flatMap((results) => {
          const vectors: Array<Float32Array> = []
          for (const batch of results) {
            for (const vector of batch) {
              if (vector.length !== dimensions) {
                return Effect.fail(
                  new InvalidResponse({
                    detail: `Ollama /api/embed: ${options.embedModel} returned ${vector.length} dimensions, ` +
                      `expected ${dimensions}`
                  })
                )
              }
              vectors.push(Float32Array.from(vector))
            }
          }
          return Effect.succeed(vectors as ReadonlyArray<Float32Array>)
        }),
        Effect.withSpan("Ollama.embed", {
          attributes: { "llm.embed.model": options.embedModel, "llm.embed.count": texts.length }
        })
      )
    }

    const embedder = Embedder.of({ id: `ollama:${options.embedModel}`, dimensions, embed })
    return { llm, embedder }
  }).pipe(Effect.withSpan("Ollama.make"), Effect.annotateLogs({ service: "llm" }))

/**
 * The Ollama `Llm` and `Embedder` on the `HttpClient` in context (supply `NodeHttpClient.layerUndici` or
 * `FetchHttpClient.layer`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWithClient = (options: Options): Layer.Layer<Llm | Embedder, LlmError, HttpClient.HttpClient> =>
  Layer.effectContext(
    Effect.map(make(options), ({ embedder, llm }) => Context.make(Llm, llm).pipe(Context.add(Embedder, embedder)))
  )

/**
 * The Ollama `Llm` and `Embedder` over the platform's `fetch` (Node's built-in undici), which aborts the request
 * when the calling fiber is interrupted.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { Ollama } from "@ouroboros/llm"
 * const OllamaLive = Ollama.layer({ url: "http://127.0.0.1:11434", model: "llama3.2", embedModel: "nomic-embed-text" })
 */
export const layer = (options: Options): Layer.Layer<Llm | Embedder, LlmError> =>
  Layer.provide(layerWithClient(options), FetchHttpClient.layer)
