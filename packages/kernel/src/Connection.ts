/**
 * Closing a network client when its scope ends.
 *
 * @since 0.1.0
 */
import { type Duration, Effect } from "effect"

/**
 * A client that can close politely (`quit`, which waits for the server's reply) and hang up (`disconnect`), as an
 * ioredis client can.
 *
 * @since 0.1.0
 * @category models
 */
export interface Closeable {
  readonly quit: () => Promise<unknown>
  readonly disconnect: () => void
}

/**
 * Closes a client politely, waiting at most `timeout` for the server's reply, then drops the connection. Meant as a
 * finalizer: finalizers run uninterruptibly, so the wait is made interruptible, or the timeout could never end it and
 * a server that stopped answering would hold up shutdown.
 *
 * @since 0.1.0
 * @category finalizers
 * @example
 * import { Connection } from "@ouroboros/kernel"
 * import { Effect } from "effect"
 * import { Redis } from "ioredis"
 * const client = Effect.acquireRelease(Effect.sync(() => new Redis()), (c) => Connection.close(c, "1 second"))
 */
export const close = (client: Closeable, timeout: Duration.Input): Effect.Effect<void> =>
  Effect.interruptible(Effect.promise(() => client.quit().catch(() => undefined))).pipe(
    Effect.timeoutOption(timeout),
    Effect.ensuring(Effect.sync(() => client.disconnect())),
    Effect.asVoid
  )
