/**
 * The `Llm` service: chat (whole or streamed), and retrieval-augmented answers; and its local implementation, an
 * extractive answerer that needs no model server and marks everything it says `degraded: true`.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Schema, Stream } from "effect"
import { cosine, hashEmbed } from "./Embedder.js"
import { contentWords, sentences, type Span } from "./internal/text.js"
import type { LlmError } from "./LlmError.js"
import { Message, parseSections, Passage } from "./Prompts.js"

export {
  /**
   * @since 0.1.0
   * @category models
   */
  Message,
  /**
   * @since 0.1.0
   * @category models
   */
  Passage
}

/**
 * @since 0.1.0
 * @category models
 */
export const ChatRequest = Schema.Struct({
  messages: Schema.Array(Message),
  model: Schema.optional(Schema.String),
  temperature: Schema.optional(Schema.Number),
  maxTokens: Schema.optional(Schema.Int)
}).annotate({ identifier: "ChatRequest" })

/**
 * @since 0.1.0
 * @category models
 */
export type ChatRequest = typeof ChatRequest.Type

/**
 * Token counts reported by the model server.
 *
 * @since 0.1.0
 * @category models
 */
export const Usage = Schema.Struct({ promptTokens: Schema.Int, completionTokens: Schema.Int })

/**
 * @since 0.1.0
 * @category models
 */
export type Usage = typeof Usage.Type

/**
 * A whole chat reply. `degraded` is true when it comes from the local extractive model, not a language model.
 *
 * @since 0.1.0
 * @category models
 */
export const ChatResponse = Schema.Struct({
  content: Schema.String,
  model: Schema.String,
  degraded: Schema.Boolean,
  usage: Schema.optional(Usage)
}).annotate({ identifier: "ChatResponse" })

/**
 * @since 0.1.0
 * @category models
 */
export type ChatResponse = typeof ChatResponse.Type

/**
 * A retrieval-augmented answer. `citations` are the ids of the passages the answer cites (`[n]` references), in the
 * order first cited; `usage` the tokens the model server counted, when it counted them (the local answerer does not).
 *
 * @since 0.1.0
 * @category models
 */
export const Answer = Schema.Struct({
  answer: Schema.String,
  degraded: Schema.Boolean,
  model: Schema.String,
  citations: Schema.Array(Schema.String),
  /** The tokens the model server counted for the answer (Ollama's); absent when nothing counted them. */
  usage: Schema.optionalKey(Usage)
}).annotate({ identifier: "Answer" })

/**
 * @since 0.1.0
 * @category models
 */
export type Answer = typeof Answer.Type

/**
 * @since 0.1.0
 * @category models
 */
export interface GenerateOptions {
  readonly model?: string | undefined
  readonly temperature?: number | undefined
  readonly maxTokens?: number | undefined
}

/**
 * Talks to a language model.
 *
 * @since 0.1.0
 * @category tags
 * @example
 * import { Llm, Prompts } from "@ouroboros/llm"
 * import { Effect } from "effect"
 * const program = Effect.gen(function*() {
 *   const llm = yield* Llm.Llm
 *   const draft = yield* llm.generate(Prompts.draft("Event sourcing", "Events are the source of truth."))
 *   return draft.content
 * }).pipe(Effect.provide(Llm.layerLocal))
 */
export class Llm extends Context.Service<Llm, {
  /** The default model (`ollama:llama3.2`, `local:extractive`). */
  readonly id: string
  /** The whole reply (streamed from the server and assembled). */
  readonly chat: (request: ChatRequest) => Effect.Effect<ChatResponse, LlmError>
  /** The reply as it is generated, in text chunks. Interrupting the stream aborts the request. */
  readonly chatStream: (request: ChatRequest) => Stream.Stream<string, LlmError>
  /** `chat` with a prompt: a string becomes one user message. */
  readonly generate: (
    prompt: string | ReadonlyArray<Message>,
    options?: GenerateOptions
  ) => Effect.Effect<ChatResponse, LlmError>
  /** Answers `question` from `passages` (see `Prompts.answer`), citing them. */
  readonly answer: (
    question: string,
    passages: ReadonlyArray<Passage>,
    options?: GenerateOptions
  ) => Effect.Effect<Answer, LlmError>
}>()("@ouroboros/llm/Llm") {}

/**
 * The request `generate` sends for a prompt.
 *
 * @since 0.1.0
 * @category utils
 */
export const toRequest = (prompt: string | ReadonlyArray<Message>, options?: GenerateOptions): ChatRequest => ({
  messages: typeof prompt === "string" ? [{ role: "user", content: prompt }] : prompt,
  ...(options?.model !== undefined ? { model: options.model } : {}),
  ...(options?.temperature !== undefined ? { temperature: options.temperature } : {}),
  ...(options?.maxTokens !== undefined ? { maxTokens: options.maxTokens } : {})
})

/**
 * The ids of the passages that `text` cites as `[n]` (1-based positions in `passages`), in the order first cited.
 *
 * @since 0.1.0
 * @category utils
 */
export const citedPassages = (text: string, passages: ReadonlyArray<Passage>): Array<string> => {
  const ids: Array<string> = []
  for (const match of text.matchAll(/\[(\d+(?:\s*,\s*\d+)*)\]/g)) {
    for (const n of match[1]!.split(",")) {
      const passage = passages[Number(n.trim()) - 1]
      if (passage !== undefined && !ids.includes(passage.id)) ids.push(passage.id)
    }
  }
  return ids
}

// ---------------------------------------------------------------------------------------------------------------------
// The local extractive model
// ---------------------------------------------------------------------------------------------------------------------

/**
 * The model name of the local extractive answerer.
 *
 * @since 0.1.0
 * @category constants
 */
export const localModel = "local:extractive"

/**
 * What the local answerer says when the passages do not answer the question.
 *
 * @since 0.1.0
 * @category constants
 */
export const cannotAnswer = "I cannot answer this from the documents: no passage matches the question."

const dimensions = 384

interface Scored {
  readonly span: Span
  readonly source: number
  readonly score: number
}

const relevance = (
  query: { readonly vector: Float32Array; readonly terms: ReadonlySet<string> },
  text: string
): number => {
  const terms = new Set(contentWords(text))
  let shared = 0
  for (const term of query.terms) if (terms.has(term)) shared++
  const overlap = query.terms.size === 0 ? 0 : shared / query.terms.size
  return overlap === 0 ? 0 : 0.6 * overlap + 0.4 * Math.max(0, cosine(query.vector, hashEmbed(text, dimensions)))
}

const makeQuery = (text: string) => ({ vector: hashEmbed(text, dimensions), terms: new Set(contentWords(text)) })

const normalizeSentence = (text: string): string => contentWords(text).join(" ")

/** The best-matching sentences of `sources` for `query`, best first, without repeats. */
const bestSentences = (query: string, sources: ReadonlyArray<string>, limit: number): Array<Scored> => {
  const q = makeQuery(query)
  const scored: Array<Scored> = []
  sources.forEach((source, index) => {
    for (const span of sentences(source)) {
      const score = relevance(q, span.text)
      if (score > 0) scored.push({ span, source: index, score })
    }
  })
  // Stable ties: earlier sources and earlier sentences first.
  scored.sort((a, b) => b.score - a.score || a.source - b.source || a.span.start - b.span.start)
  const seen = new Set<string>()
  const out: Array<Scored> = []
  for (const candidate of scored) {
    const key = normalizeSentence(candidate.span.text)
    if (seen.has(key)) continue
    seen.add(key)
    out.push(candidate)
    if (out.length >= limit) break
  }
  return out
}

/**
 * The extractive answer: the sentences of the passages that best match the question (shared content words, then the
 * cosine of their hashed embeddings), best first, each quoted with its passage reference `[n]`. With no matching
 * passage it says it cannot answer from the documents. Always `degraded: true`. Pure and deterministic.
 *
 * @since 0.1.0
 * @category local
 */
export const extractiveAnswer = (
  question: string,
  passages: ReadonlyArray<Passage>,
  options?: { readonly maxSentences?: number | undefined }
): Answer => {
  const best = bestSentences(question, passages.map((p) => p.text), options?.maxSentences ?? 3)
  if (best.length === 0) return { answer: cannotAnswer, degraded: true, model: localModel, citations: [] }
  const quotes = best.map((s) => `> ${s.span.text} [${s.source + 1}]`)
  const answer = "From the documents (extractive answer; no language model was available):\n\n" + quotes.join("\n")
  return { answer, degraded: true, model: localModel, citations: citedPassages(answer, passages) }
}

const splitSentences = (text: string | undefined): Array<string> =>
  text === undefined ? [] : sentences(text).map((s) => s.text)

const supportOf = (sentence: string, evidence: ReadonlyArray<string>): number => {
  const q = makeQuery(sentence)
  let best = 0
  for (const e of evidence) best = Math.max(best, relevance(q, e))
  return best
}

const supported = 0.35

/**
 * The local reply to a chat: extractive, deterministic, `degraded: true`. It reads the sections of the prompt
 * builders (`Prompts`): a draft is the context sentences that best match the topic; a critique lists the draft
 * sentences the context does not support and the relevant context the draft leaves out; an improvement keeps the
 * supported draft sentences and adds the missing context. Any other prompt gets the sentences of the last user
 * message that best match its first sentence.
 *
 * @since 0.1.0
 * @category local
 */
export const extractiveChat = (messages: ReadonlyArray<Message>): string => {
  const last = [...messages].reverse().find((m) => m.role === "user") ?? messages[messages.length - 1]
  if (last === undefined) return ""
  const parts = parseSections(last.content)
  const context = [parts.Context, parts.Passages].filter((s): s is string => s !== undefined).join("\n\n")
  const contextSentences = splitSentences(context)
  const topic = parts.Topic ?? parts.Question
  if (topic !== undefined && parts.Draft !== undefined) {
    const draft = splitSentences(parts.Draft)
    const unsupported = contextSentences.length === 0
      ? []
      : draft.filter((s) => supportOf(s, contextSentences) < supported)
    const missing = bestSentences(topic, [context], 3).map((s) => s.span.text).filter((s) =>
      supportOf(s, draft) < supported
    )
    if (parts.Critique !== undefined) {
      const kept = draft.filter((s) => !unsupported.includes(s))
      const improved = [...kept, ...missing].join(" ")
      return improved.length > 0 ? improved : parts.Draft
    }
    const lines: Array<string> = []
    if (unsupported.length > 0) {
      lines.push("Not supported by the context:", ...unsupported.map((s) => `- ${s}`))
    }
    if (missing.length > 0) lines.push("Relevant context the draft leaves out:", ...missing.map((s) => `- ${s}`))
    return lines.length > 0 ? lines.join("\n") : "The draft is consistent with the context; no changes needed."
  }
  if (topic !== undefined) {
    const best = bestSentences(topic, [context], 3).sort((a, b) => a.span.start - b.span.start)
    return best.length > 0
      ? best.map((s) => s.span.text).join(" ")
      : `The available context says nothing about ${topic.trim()}.`
  }
  const all = sentences(last.content)
  const first = all[0]
  if (first === undefined) return ""
  const rest = last.content.slice(first.end)
  const best = bestSentences(first.text, [rest], 3).sort((a, b) => a.span.start - b.span.start)
  return best.length > 0 ? best.map((s) => s.span.text).join(" ") : first.text
}

/**
 * Builds the local extractive `Llm`: no model server, deterministic, every reply `degraded: true`.
 *
 * @since 0.1.0
 * @category local
 */
export const makeLocal = (): Llm["Service"] => {
  const chat = (request: ChatRequest) =>
    Effect.sync((): ChatResponse => ({ content: extractiveChat(request.messages), model: localModel, degraded: true }))
  return Llm.of({
    id: localModel,
    chat,
    chatStream: (request) =>
      Stream.unwrap(
        Effect.map(chat(request), (response) => Stream.fromIterable(response.content.match(/\S+\s*/g) ?? []))
      ),
    generate: (prompt, options) => chat(toRequest(prompt, options)),
    answer: (question, passages) => Effect.sync(() => extractiveAnswer(question, passages))
  })
}

/**
 * The local extractive `Llm` as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLocal: Layer.Layer<Llm> = Layer.sync(Llm, makeLocal)
