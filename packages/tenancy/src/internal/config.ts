/**
 * Shared pieces of the package's configuration.
 *
 * @internal
 */
import { Duration, Effect, Option, Schema, SchemaGetter, SchemaIssue } from "effect"

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

const parseMillis = (input: string): number | undefined => {
  const seconds = /^\s*(\d+(?:\.\d+)?)\s*$/.exec(input)
  if (seconds !== null) return Math.round(Number(seconds[1]) * 1000)
  const short = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(input)
  if (short !== null) return Math.round(Number(short[1]) * units[short[2]!]!)
  return Option.getOrUndefined(Option.map(Duration.fromInput(input as Duration.Input), Duration.toMillis))
}

/**
 * A duration setting: a number of seconds (`30`), or `500ms`, `30s`, `5m`, `1h`, `7d`, `30 seconds`. Decodes to
 * whole milliseconds.
 *
 * @internal
 */
export const Millis = Schema.String.pipe(
  Schema.decodeTo(Schema.Number, {
    decode: SchemaGetter.transformEffect((input: string) => {
      const millis = parseMillis(input)
      return millis === undefined || !Number.isFinite(millis) || millis < 0
        ? Effect.fail(
          new SchemaIssue.InvalidValue({ message: `"${input}" is not a duration such as 30, 30s, 5m, 1h or 7d` }, input)
        )
        : Effect.succeed(millis)
    }),
    encode: SchemaGetter.transform((millis: number) => `${millis}ms`)
  })
)

/** A positive integer. */
export const PositiveInt = Schema.Int.check(Schema.isGreaterThan(0, { message: "must be a positive integer" }))

/** A comma-separated list, blanks dropped. */
export const splitList = (raw: string): ReadonlyArray<string> =>
  raw.split(",").map((s) => s.trim()).filter((s) => s !== "")

/**
 * A comma-separated list whose items decode with `item`.
 *
 * @internal
 */
export const commaList = <S extends Schema.Codec<any, string>>(item: S) =>
  Schema.String.pipe(
    Schema.decodeTo(Schema.Array(Schema.String), {
      decode: SchemaGetter.transform((raw: string) => raw.split(",").map((s) => s.trim()).filter((s) => s !== "")),
      encode: SchemaGetter.transform((items: ReadonlyArray<string>) => items.join(","))
    }),
    Schema.decodeTo(Schema.Array(item))
  )
