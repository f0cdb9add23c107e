/**
 * A stand-in for the subset of Ollama's HTTP API that the llm adapter uses: `GET /`, `/api/version`, `/api/tags`,
 * `/api/ps`, `POST /api/show`, `/api/embed` (and the legacy `/api/embeddings`), `/api/chat` and `/api/generate`,
 * streaming NDJSON by default like Ollama. Embeddings are deterministic (feature hashing, L2-normalised) so similar
 * texts get similar vectors; answers are deterministic and quote the question and the first context line (or come
 * from a scripted `chatResponder`). Every request is recorded, and faults can be injected. A test fixture, never
 * production code.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as O from "./internal/ollama.js"
import * as Server from "./internal/server.js"
import type { StandIn } from "./StandIn.js"

/**
 * @since 0.1.0
 * @category models
 */
export type { RecordedRequest, StandIn } from "./StandIn.js"

/**
 * A chat message as Ollama receives it.
 *
 * @since 0.1.0
 * @category models
 */
export interface ChatMessage {
  readonly role: string
  readonly content: string
}

/**
 * - `port`: 0 (any free port) by default.
 * - `models`: the installed models (default `["llama3.2", "nomic-embed-text"]`); a name without a tag gets
 *   `:latest`. Models whose name contains `embed` only embed (chat and generate answer 400 like Ollama).
 * - `embeddingDimensions`: length of the embeddings (default 768).
 * - `version`: reported by `GET /api/version`.
 * - `chatResponder`: scripts the answers of `/api/chat` and `/api/generate` (default {@link defaultChatResponder}).
 * - `streamDelayMs`: pause between streamed chunks (default 0), to keep a stream in flight (drain, cancel tests).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly port?: number | undefined
  readonly models?: ReadonlyArray<string> | undefined
  readonly embeddingDimensions?: number | undefined
  readonly version?: string | undefined
  readonly chatResponder?: ((messages: ReadonlyArray<ChatMessage>, model: string) => string) | undefined
  readonly streamDelayMs?: number | undefined
}

/**
 * The models a stand-in has unless told otherwise.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultModels: ReadonlyArray<string> = ["llama3.2", "nomic-embed-text"]

/**
 * The version `GET /api/version` reports unless told otherwise.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultVersion = "0.12.6"

/**
 * The default answer: `You asked: "<question>". According to the context: <first context line>` (or
 * `… I have no context to answer from.`). The question is the text after `Question:` in the last user message, or
 * its last line; the first context line is the first line after a `Context:` (or `Passages:`, `Sources:`,
 * `Documents:`) header, or the first `[n] …` line, in any message, with its `[n]`, `1.` or `-` marker removed.
 *
 * @since 0.1.0
 * @category answers
 */
export const defaultChatResponder: (messages: ReadonlyArray<ChatMessage>) => string = O.defaultChatResponder

/**
 * The embedding the stand-in returns for a text (deterministic feature hashing, L2-normalised).
 *
 * @since 0.1.0
 * @category answers
 */
export const embedding = (text: string, dimensions = 768): Array<number> => O.embed(text, dimensions)

const withTag = (name: string) => (name.includes(":") ? name : `${name}:latest`)

const MODIFIED_AT = "2025-01-01T00:00:00.000000000Z"

/**
 * Starts an Ollama stand-in on 127.0.0.1.
 *
 * @example
 * ```ts
 * import * as OllamaStandIn from "@ouroboros/testkit/OllamaStandIn"
 *
 * const ollama = await OllamaStandIn.start({ embeddingDimensions: 8 })
 * const response = await fetch(`${ollama.url}/api/embed`, {
 *   method: "POST",
 *   body: JSON.stringify({ model: "nomic-embed-text", input: ["hello"] })
 * })
 * const { embeddings } = await response.json()
 * await ollama.close()
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = (options: Options = {}): Promise<StandIn> => {
  const models = (options.models ?? defaultModels).map(withTag)
  const dimensions = options.embeddingDimensions ?? 768
  const version = options.version ?? defaultVersion
  const respond = options.chatResponder ?? O.defaultChatResponder

  const error = (status: number, message: string) => Server.json(status, { error: message })

  class OllamaError extends Error {
    constructor(readonly status: number, message: string) {
      super(message)
    }
  }

  const describe = (name: string) => {
    const embedding = name.includes("embed")
    return {
      name,
      model: name,
      modified_at: MODIFIED_AT,
      size: embedding ? 274_302_450 : 2_019_393_189,
      digest: O.digest(name),
      details: {
        parent_model: "",
        format: "gguf",
        family: embedding ? "nomic-bert" : "llama",
        families: [embedding ? "nomic-bert" : "llama"],
        parameter_size: embedding ? "137M" : "3.2B",
        quantization_level: embedding ? "F16" : "Q4_K_M"
      }
    }
  }

  const body = (request: Server.Incoming): Record<string, unknown> => {
    if (request.raw.length === 0) throw new OllamaError(400, "missing request body")
    const text = request.raw.toString("utf8")
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      const offending = text.trim()[0] ?? ""
      throw new OllamaError(400, `invalid character '${offending}' looking for beginning of value`)
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new OllamaError(400, "json: cannot unmarshal into Go value of type api.Request")
    }
    return parsed as Record<string, unknown>
  }

  /** The requested model, which must be installed, with its tag (`llama3.2` → `llama3.2:latest`). */
  const model = (b: Record<string, unknown>): string => {
    const name = b.model
    if (typeof name !== "string" || name === "") throw new OllamaError(400, "model is required")
    const tagged = withTag(name)
    if (!models.includes(tagged)) throw new OllamaError(404, `model "${name}" not found, try pulling it first`)
    return tagged
  }

  const generative = (name: string) => {
    if (name.includes("embed")) throw new OllamaError(400, `"${name}" does not support generate`)
  }

  const durations = (promptTokens: number, evalTokens: number) => ({
    total_duration: 1_000_000 + (promptTokens + evalTokens) * 20_000,
    load_duration: 1_000_000,
    prompt_eval_count: promptTokens,
    prompt_eval_duration: promptTokens * 10_000,
    eval_count: evalTokens,
    eval_duration: evalTokens * 10_000
  })

  const answer = (messages: ReadonlyArray<ChatMessage>, name: string, format: unknown): string => {
    const text = respond(messages, name)
    if (format === undefined || format === null || format === "") return text
    if (format === "json") return JSON.stringify({ answer: text })
    return JSON.stringify(O.fromSchema(format, text))
  }

  const messagesOf = (b: Record<string, unknown>): Array<ChatMessage> => {
    const raw = b.messages ?? []
    if (!Array.isArray(raw)) {
      throw new OllamaError(400, "json: cannot unmarshal object into Go struct field ChatRequest.messages")
    }
    return raw.map((m) => {
      if (typeof m !== "object" || m === null || typeof (m as ChatMessage).role !== "string") {
        throw new OllamaError(
          400,
          "json: cannot unmarshal into Go struct field ChatRequest.messages of type api.Message"
        )
      }
      const content = (m as { content?: unknown }).content
      return { role: (m as ChatMessage).role, content: typeof content === "string" ? content : "" }
    })
  }

  /** Streams NDJSON (the default) or answers one JSON object made of the concatenated pieces. */
  const reply = (
    b: Record<string, unknown>,
    text: string,
    promptTokens: number,
    chunk: (piece: string) => Record<string, unknown>,
    final: Record<string, unknown>
  ): Server.Reply => {
    const pieces = O.pieces(text)
    const done = { done_reason: "stop", done: true, ...durations(promptTokens, pieces.length) }
    if (b.stream === false) {
      return Server.json(200, { ...chunk(text), ...final, ...done })
    }
    const created_at = new Date().toISOString()
    return {
      status: 200,
      headers: { "content-type": "application/x-ndjson" },
      chunkDelayMs: options.streamDelayMs ?? 0,
      chunks: [
        ...pieces.map((piece) => JSON.stringify({ ...chunk(piece), created_at, done: false }) + "\n"),
        JSON.stringify({ ...chunk(""), created_at, ...final, ...done }) + "\n"
      ]
    }
  }

  const route = (request: Server.Incoming): Server.Reply => {
    const { method, path } = request
    const key = `${method} ${path}`
    switch (key) {
      case "GET /":
      case "HEAD /":
        return Server.text(200, "Ollama is running")
      case "GET /api/version":
        return Server.json(200, { version })
      case "GET /api/tags":
        return Server.json(200, { models: models.map(describe) })
      case "GET /api/ps":
        return Server.json(200, { models: [] })
      case "POST /api/show": {
        const name = model(body(request))
        const embedding = name.includes("embed")
        const architecture = embedding ? "nomic-bert" : "llama"
        return Server.json(200, {
          license: "",
          modelfile: `# Modelfile generated by the Ollama stand-in\nFROM ${name}\n`,
          parameters: "",
          template: "{{ .Prompt }}",
          details: describe(name).details,
          model_info: {
            "general.architecture": architecture,
            [`${architecture}.embedding_length`]: dimensions
          },
          capabilities: embedding ? ["embedding"] : ["completion"],
          modified_at: MODIFIED_AT
        })
      }
      case "POST /api/embed": {
        const b = body(request)
        const name = model(b)
        const input = b.input === undefined ? [] : typeof b.input === "string" ? [b.input] : b.input
        if (!Array.isArray(input) || !input.every((x) => typeof x === "string")) {
          throw new OllamaError(400, "invalid input type")
        }
        const size = typeof b.dimensions === "number" && b.dimensions > 0 ? Math.floor(b.dimensions) : dimensions
        const count = input.reduce((n, text) => n + Math.max(1, O.tokens(text).length), 0)
        return Server.json(200, {
          model: name,
          embeddings: input.map((text) => O.embed(text, size)),
          total_duration: 1_000_000 + count * 10_000,
          load_duration: 1_000_000,
          prompt_eval_count: count
        })
      }
      case "POST /api/embeddings": {
        const b = body(request)
        model(b)
        const prompt = typeof b.prompt === "string" ? b.prompt : ""
        return Server.json(200, { embedding: prompt === "" ? [] : O.embed(prompt, dimensions) })
      }
      case "POST /api/chat": {
        const b = body(request)
        const name = model(b)
        const messages = messagesOf(b)
        if (name.includes("embed")) throw new OllamaError(400, `"${name}" does not support chat`)
        const created_at = new Date().toISOString()
        if (messages.length === 0) {
          return Server.json(200, {
            model: name,
            created_at,
            message: { role: "assistant", content: "" },
            done_reason: "load",
            done: true
          })
        }
        const text = answer(messages, name, b.format)
        const promptTokens = messages.reduce((n, m) => n + O.tokens(m.content).length, 0)
        return reply(
          b,
          text,
          promptTokens,
          (piece) => ({ model: name, created_at, message: { role: "assistant", content: piece } }),
          {}
        )
      }
      case "POST /api/generate": {
        const b = body(request)
        const name = model(b)
        generative(name)
        const created_at = new Date().toISOString()
        const prompt = typeof b.prompt === "string" ? b.prompt : ""
        if (prompt === "") {
          return Server.json(200, { model: name, created_at, response: "", done_reason: "load", done: true })
        }
        const messages: Array<ChatMessage> = [
          ...(typeof b.system === "string" && b.system !== "" ? [{ role: "system", content: b.system }] : []),
          { role: "user", content: prompt }
        ]
        const text = answer(messages, name, b.format)
        const promptTokens = O.tokens(prompt).length
        const context = O.tokens(`${prompt} ${text}`).map((t) => parseInt(O.digest(t).slice(0, 6), 16))
        return reply(b, text, promptTokens, (piece) => ({ model: name, created_at, response: piece }), { context })
      }
    }
    return Server.text(404, "404 page not found")
  }

  const handle = (request: Server.Incoming): Server.Reply => {
    try {
      return route(request)
    } catch (e) {
      if (e instanceof OllamaError) return error(e.status, e.message)
      throw e
    }
  }

  return Server.start({ port: options.port, handle, errorReply: error })
}

/**
 * An Ollama stand-in for the lifetime of a scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const scoped = (options?: Options): Effect.Effect<StandIn, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => start(options)),
    (standIn) => Effect.promise(() => standIn.close())
  )
