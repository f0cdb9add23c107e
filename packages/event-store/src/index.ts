/**
 * @since 0.1.0
 */
export * as Checkpoints from "./Checkpoints.js"
/**
 * @since 0.1.0
 */
export * as EventStore from "./EventStore.js"
