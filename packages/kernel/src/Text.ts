/**
 * Text that a PostgreSQL `text` or `jsonb` value can hold. PostgreSQL refuses the NUL character (U+0000) in every text
 * value: a string with one fails the statement that stores it (`invalid byte sequence for encoding "UTF8": 0x00`),
 * which a request must not turn into a 500. Strings that go into text columns are checked at the edge instead, and a
 * NUL is a 400 that names the field.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * Holds for strings without a NUL character (U+0000).
 *
 * @since 0.1.0
 * @category checks
 * @example
 * import { Text } from "@ouroboros/kernel"
 * import { Schema } from "effect"
 *
 * const Name = Schema.String.check(Text.isStorable)
 * Schema.is(Name)("a\u0000b") // false
 */
export const isStorable = Schema.isPattern(/^[^\u0000]*$/, {
  message: "text may not contain the NUL character (U+0000)"
})

/**
 * A string without a NUL character (U+0000).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Storable = Schema.String.check(isStorable)

/**
 * Whether `value` holds a string with a NUL character (U+0000) anywhere: itself, or a key or a value of the arrays and
 * objects in it, at any depth. For free-form JSON (flag definitions, metadata) stored as `jsonb`.
 *
 * @since 0.1.0
 * @category checks
 */
export const containsNul = (value: unknown): boolean => {
  if (typeof value === "string") return value.includes("\u0000")
  if (Array.isArray(value)) return value.some(containsNul)
  if (typeof value === "object" && value !== null) {
    for (const [key, inner] of Object.entries(value)) {
      if (key.includes("\u0000") || containsNul(inner)) return true
    }
  }
  return false
}
