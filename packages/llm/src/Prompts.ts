/**
 * Prompt builders: retrieval-augmented answering and the draft → critique → improve reasoning pipeline of the
 * original Ouroboros. Each returns the chat messages to send with `Llm.chat` / `Llm.generate`.
 *
 * The user message is laid out in labelled sections (`Topic:`, `Question:`, `Context:`, `Draft:`, `Critique:`,
 * `Passages:`, `Task:`), which the local extractive model reads to pick its sentences when no language model is
 * available.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * @since 0.1.0
 * @category models
 */
export const Role = Schema.Literals(["system", "user", "assistant"])

/**
 * @since 0.1.0
 * @category models
 */
export type Role = typeof Role.Type

/**
 * One chat message.
 *
 * @since 0.1.0
 * @category models
 */
export const Message = Schema.Struct({ role: Role, content: Schema.String }).annotate({ identifier: "Message" })

/**
 * @since 0.1.0
 * @category models
 */
export type Message = typeof Message.Type

/**
 * A retrieved piece of a document, as the answerer sees it.
 *
 * @since 0.1.0
 * @category models
 */
export const Passage = Schema.Struct({
  id: Schema.String,
  text: Schema.String,
  score: Schema.Number,
  documentId: Schema.optional(Schema.String)
}).annotate({ identifier: "Passage" })

/**
 * @since 0.1.0
 * @category models
 */
export type Passage = typeof Passage.Type

/**
 * The section labels the prompts use.
 *
 * @since 0.1.0
 * @category constants
 */
export const sections = ["Topic", "Question", "Context", "Passages", "Draft", "Critique", "Task"] as const

/**
 * @since 0.1.0
 * @category models
 */
export type Section = typeof sections[number]

/**
 * The most context text a prompt carries (characters); longer context is cut at a passage or sentence boundary.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMaxContextChars = 12_000

const section = (label: Section, body: string): string =>
  `${label}:\n${body.trim().length > 0 ? body.trim() : "(none)"}`

const clip = (text: string, max: number): string => {
  if (text.length <= max) return text
  const cut = text.slice(0, max)
  const boundary = Math.max(cut.lastIndexOf("\n\n"), cut.lastIndexOf(". "))
  return (boundary > max / 2 ? cut.slice(0, boundary + 1) : cut).trimEnd() + " …"
}

const passageBlock = (passages: ReadonlyArray<Passage>, max: number): string => {
  const lines: Array<string> = []
  let used = 0
  passages.forEach((passage, i) => {
    const head = `[${i + 1}]${passage.documentId !== undefined ? ` (document ${passage.documentId})` : ""} `
    const room = max - used - head.length
    if (room <= 0) return
    const body = clip(passage.text.trim(), room)
    used += head.length + body.length + 2
    lines.push(head + body)
  })
  return lines.join("\n\n")
}

/**
 * The system prompt of retrieval-augmented answers.
 *
 * @since 0.1.0
 * @category prompts
 */
export const answerSystem = "You answer questions using only the numbered passages you are given. Cite the passages " +
  "you use as [n]. If the passages do not contain the answer, say that you cannot answer from the documents. " +
  "Be concise and do not invent facts."

/**
 * A retrieval-augmented question: the numbered passages (cite them as `[n]`, 1-based in the order given) and the
 * question.
 *
 * @since 0.1.0
 * @category prompts
 * @example
 * import { Prompts } from "@ouroboros/llm"
 * const messages = Prompts.answer("What is Effect?", [
 *   { id: "c1", text: "Effect is a TypeScript library.", score: 0.9 }
 * ])
 */
export const answer = (
  question: string,
  passages: ReadonlyArray<Passage>,
  options?: { readonly maxContextChars?: number | undefined }
): ReadonlyArray<Message> => [
  { role: "system", content: answerSystem },
  {
    role: "user",
    content: [
      section("Passages", passageBlock(passages, options?.maxContextChars ?? defaultMaxContextChars)),
      section("Question", question),
      section("Task", "Answer the question from the passages, citing them as [n].")
    ].join("\n\n")
  }
]

const reasoningSystem = "You are a careful analyst. You reason step by step, stay faithful to the context you are " +
  "given, and say so when it is not enough."

/**
 * Step 1 of the reasoning pipeline: a first draft about `topic`, grounded in `context`.
 *
 * @since 0.1.0
 * @category prompts
 */
export const draft = (topic: string, context: string): ReadonlyArray<Message> => [
  { role: "system", content: reasoningSystem },
  {
    role: "user",
    content: [
      section("Topic", topic),
      section("Context", clip(context, defaultMaxContextChars)),
      section(
        "Task",
        "Write a clear, accurate draft response about the topic. Use the context where it helps and do not " +
          "invent facts."
      )
    ].join("\n\n")
  }
]

/**
 * Step 2: a critique of the draft: errors, gaps, unsupported claims, unclear passages.
 *
 * @since 0.1.0
 * @category prompts
 */
export const critique = (topic: string, draftText: string, context: string): ReadonlyArray<Message> => [
  { role: "system", content: reasoningSystem },
  {
    role: "user",
    content: [
      section("Topic", topic),
      section("Context", clip(context, defaultMaxContextChars)),
      section("Draft", draftText),
      section(
        "Task",
        "Critique the draft: list factual errors, claims the context does not support, missing points and unclear " +
          "wording. Be specific and brief; do not rewrite the draft."
      )
    ].join("\n\n")
  }
]

/**
 * Step 3: the improved response, addressing the critique.
 *
 * @since 0.1.0
 * @category prompts
 */
export const improve = (
  topic: string,
  draftText: string,
  critiqueText: string,
  context: string
): ReadonlyArray<Message> => [
  { role: "system", content: reasoningSystem },
  {
    role: "user",
    content: [
      section("Topic", topic),
      section("Context", clip(context, defaultMaxContextChars)),
      section("Draft", draftText),
      section("Critique", critiqueText),
      section(
        "Task",
        "Write the final, improved response: fix every valid point of the critique, keep what was right, and stay " +
          "faithful to the context. Reply with the response only."
      )
    ].join("\n\n")
  }
]

const sectionHeader = new RegExp(`^(${sections.join("|")}):[ \\t]*$`, "gm")

/**
 * Reads the labelled sections of a prompt built here (the inverse of the layout above); text outside any section is
 * under `preamble`.
 *
 * @since 0.1.0
 * @category utils
 */
export const parseSections = (content: string): Partial<Record<Section | "preamble", string>> => {
  const out: Partial<Record<Section | "preamble", string>> = {}
  const matches = Array.from(content.matchAll(sectionHeader))
  const first = matches[0]
  const preamble = content.slice(0, first?.index ?? content.length).trim()
  if (preamble.length > 0) out.preamble = preamble
  matches.forEach((match, i) => {
    const from = match.index + match[0].length
    const to = matches[i + 1]?.index ?? content.length
    const body = content.slice(from, to).trim()
    if (body !== "(none)") out[match[1] as Section] = body
  })
  return out
}
