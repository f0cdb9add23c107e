/**
 * The store's error, re-exported for the store implementations; it lives in the public `AuditStoreError` module.
 */
export { AuditStoreError } from "../AuditStoreError.js"
