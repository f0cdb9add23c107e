/**
 * Runs the console against a real server for development: builds the console, starts the Ollama stand-in and the
 * built server (temporary data directory), serves the console (by the server when it mounts `ConsoleHttp`, else by a
 * host in this process with a proxy), and prints the URL and the keys. Ctrl-C stops everything.
 *
 *   npx tsx apps/console/scripts/dev.ts
 */
import { ensureBuilt, keys, startHost, startOllama, startServer } from "../test/harness.js"

ensureBuilt()
const ollama = await startOllama()
const server = await startServer({ env: { OLLAMA_URL: ollama.url, LOG_LEVEL: process.env.LOG_LEVEL ?? "warning" } })
const host = await startHost(server)
process.stdout.write(
  `console: ${host.url}/console/ (${host.mode})\nserver:  ${server.url}\nadmin key: ${keys.admin}\n` +
    `tenant keys: tenant-a ${keys.tenantA}, tenant-b ${keys.tenantB}\n`
)
const stop = async () => {
  await host.stop()
  await server.stop()
  await ollama.close()
  process.exit(0)
}
process.once("SIGINT", () => void stop())
process.once("SIGTERM", () => void stop())
