/**
 * The audit store's error, in a module of its own so that the store implementations and the public `AuditStore`
 * module can both use it without importing each other (and so that types inferred from the store name a public
 * module).
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * A store operation failed (the database refused or could not be reached); `operation` names it.
 *
 * @since 0.1.0
 * @category errors
 */
export class AuditStoreError extends Data.TaggedError("AuditStoreError")<{
  readonly operation: string
  readonly message: string
  readonly cause?: unknown
}> {}
