/**
 * @since 0.1.0
 */
export * as AuditEvent from "./AuditEvent.js"
/**
 * @since 0.1.0
 */
export * as AuditHttp from "./AuditHttp.js"
/**
 * @since 0.1.0
 */
export * as AuditKeys from "./AuditKeys.js"
/**
 * @since 0.1.0
 */
export * as AuditLog from "./AuditLog.js"
/**
 * @since 0.1.0
 */
export * as AuditStore from "./AuditStore.js"
/**
 * @since 0.1.0
 */
export * as Checkpoint from "./Checkpoint.js"
/**
 * @since 0.1.0
 */
export * as Merkle from "./Merkle.js"
/**
 * @since 0.1.0
 */
export * as Retention from "./Retention.js"
/**
 * @since 0.1.0
 */
export * as Verifier from "./Verifier.js"
/**
 * The RFC 9162 Merkle tree hash of a list of entries (see `Merkle.merkleTreeHash`).
 *
 * @since 0.1.0
 */
export { merkleTreeHash } from "./Merkle.js"
