/**
 * The bundled server (`apps/server/dist/main.js`) as a process, for tests that talk to it as a client does
 * (`@ouroboros/testkit/ServerProcess`: a free port, a fresh data directory, ready once `/health/ready` answers 200).
 */
import * as ServerProcess from "@ouroboros/testkit/ServerProcess"

export const main = new URL("../apps/server/dist/main.js", import.meta.url).pathname

export type Running = ServerProcess.ServerProcess

/** Starts the server with `env` and waits until it is ready. */
export const startServer = (env: Record<string, string>): Promise<Running> =>
  ServerProcess.start({ main, env, deadlineMs: 60_000 })

/** Stops the server and removes its data directory. */
export const stopServer = async (server: Running | undefined): Promise<void> => {
  await server?.stop()
}
