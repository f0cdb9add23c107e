/** Deterministic embeddings and answers for the Ollama stand-in. */
import { createHash } from "node:crypto"

/** @internal */
export interface ChatMessage {
  readonly role: string
  readonly content: string
}

/** @internal */
export const tokens = (text: string): Array<string> => text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []

const fnv1a = (text: string, seed: number): number => {
  let hash = (0x811c9dc5 ^ seed) >>> 0
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  return hash >>> 0
}

const HASHES_PER_FEATURE = 3

/**
 * Feature hashing: every token (weight 1) and every pair of neighbouring tokens (weight 0.5) adds ±weight at three
 * seeded positions; the sum is L2-normalised. Texts that share words get a positive cosine similarity.
 *
 * @internal
 */
export const embed = (text: string, dimensions: number): Array<number> => {
  const vector = new Array<number>(dimensions).fill(0)
  const words = tokens(text)
  const features: Array<readonly [string, number]> = words.map((w) => [w, 1] as const)
  for (let i = 1; i < words.length; i++) features.push([`${words[i - 1]} ${words[i]}`, 0.5])
  if (features.length === 0) features.push(["", 1])
  for (const [feature, weight] of features) {
    for (let seed = 0; seed < HASHES_PER_FEATURE; seed++) {
      const hash = fnv1a(feature, seed)
      const index = hash % dimensions
      vector[index] = vector[index]! + ((hash & 0x80000000) === 0 ? weight : -weight)
    }
  }
  const norm = Math.sqrt(vector.reduce((sum, x) => sum + x * x, 0))
  return norm === 0 ? vector : vector.map((x) => x / norm)
}

const CONTEXT_HEADER = /^\s*(?:#+\s*)?(context|passages?|sources?|documents?)\b[^:\n]*:\s*(.*)$/i
const PASSAGE_MARKER = /^\s*(?:\[\d+\]|\d+[.)]|[-*•])\s*/
const QUESTION = /^\s*(?:#+\s*)?question\s*:\s*(.+)$/i

const firstContextLine = (messages: ReadonlyArray<ChatMessage>): string | undefined => {
  for (const message of messages) {
    const lines = message.content.split(/\r?\n/)
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!
      const header = CONTEXT_HEADER.exec(line)
      if (header !== null) {
        const inline = header[2]!.trim()
        if (inline !== "") return inline.replace(PASSAGE_MARKER, "").trim()
        const next = lines.slice(i + 1).find((l) => l.trim() !== "")
        if (next !== undefined && !QUESTION.test(next)) return next.replace(PASSAGE_MARKER, "").trim()
      }
      if (/^\s*\[\d+\]\s*\S/.test(line)) return line.replace(PASSAGE_MARKER, "").trim()
    }
  }
  return undefined
}

const question = (messages: ReadonlyArray<ChatMessage>): string => {
  const user = [...messages].reverse().find((m) => m.role === "user")
  if (user === undefined) return ""
  const lines = user.content.split(/\r?\n/).filter((l) => l.trim() !== "")
  for (const line of lines) {
    const match = QUESTION.exec(line)
    if (match !== null) return match[1]!.trim()
  }
  return (lines.at(-1) ?? "").trim()
}

/** @internal */
export const defaultChatResponder = (messages: ReadonlyArray<ChatMessage>): string => {
  const asked = question(messages)
  const context = firstContextLine(messages)
  return context === undefined
    ? `You asked: "${asked}". I have no context to answer from.`
    : `You asked: "${asked}". According to the context: ${context}`
}

/** Splits an answer into streamed pieces the way a tokenizer would: words with their following space. @internal */
export const pieces = (answer: string): Array<string> => answer.match(/\S+\s*|\s+/g) ?? []

/** Fills a JSON schema (`format`) with the answer: strings get it, numbers 0, booleans false, arrays []. @internal */
export const fromSchema = (schema: unknown, answer: string): unknown => {
  if (typeof schema !== "object" || schema === null) return answer
  const s = schema as Record<string, unknown>
  switch (s.type) {
    case "object": {
      const properties = (typeof s.properties === "object" && s.properties !== null ? s.properties : {}) as Record<
        string,
        unknown
      >
      return Object.fromEntries(Object.entries(properties).map(([k, v]) => [k, fromSchema(v, answer)]))
    }
    case "array":
      return []
    case "number":
    case "integer":
      return 0
    case "boolean":
      return false
    default:
      return answer
  }
}

/** @internal */
export const digest = (name: string) => createHash("sha256").update(name).digest("hex")
