/**
 * The worker side of {@link ./workers.ts}: kept apart so that the Effect 3 adapters bundle nothing else of the
 * driver.
 */

/**
 * The worker side: answers the driver's tasks one at a time until the driver disconnects, then runs `close` and
 * exits.
 */
export const serveTasks = (
  tasks: Record<string, (arg: any) => Promise<unknown>>,
  close: () => Promise<void> = async () => {}
): void => {
  let queue = Promise.resolve()
  process.on("message", (message: { id: number; task: string; arg: unknown }) => {
    queue = queue.then(async () => {
      try {
        const task = tasks[message.task]
        if (task === undefined) throw new Error(`unknown task ${message.task}`)
        process.send!({ id: message.id, value: await task(message.arg) })
      } catch (error) {
        process.send!({ id: message.id, error: error instanceof Error ? error.stack ?? error.message : String(error) })
      }
    })
  })
  process.once("disconnect", () => void queue.then(close).finally(() => process.exit(0)))
  process.send!({ ready: true })
}
