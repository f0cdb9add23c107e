/**
 * The store's error, in a module of its own so that the store implementations and the public `AuditStore` module can
 * both use it without importing each other.
 */
import { Data } from "effect"

/** @internal */
export class AuditStoreError extends Data.TaggedError("AuditStoreError")<{
  readonly operation: string
  readonly message: string
  readonly cause?: unknown
}> {}
