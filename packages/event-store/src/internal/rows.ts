/**
 * Column schemas shared by the SQL event store and checkpoints.
 */
import { Schema, SchemaTransformation } from "effect"

/**
 * A `bigint` column. `@effect/sql-pg` decodes int8 to a `bigint`, other clients hand back the text; both become a
 * number, exact below 2^53 (sequences never get near it).
 *
 * @internal
 */
export const Int8 = Schema.Union([
  Schema.Int,
  Schema.BigInt.pipe(
    Schema.decodeTo(Schema.Int, SchemaTransformation.transform({ decode: (n) => Number(n), encode: (n) => BigInt(n) }))
  ),
  Schema.NumberFromString.check(Schema.isInt())
])

/**
 * A `timestamptz` column: `@effect/sql-pg` decodes it to a `Date`; a client configured otherwise hands back the text.
 *
 * @internal
 */
export const Timestamp = Schema.Union([Schema.Date, Schema.DateFromString])
