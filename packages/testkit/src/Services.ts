/**
 * Access to the real PostgreSQL and Redis that integration tests use.
 *
 * In CI (`CI=true`) a missing service is a failure; elsewhere the tests that need it are skipped with a message that
 * says why.
 *
 * @since 0.1.0
 */
import { Socket } from "node:net"

/**
 * The PostgreSQL URL tests use: `TEST_DATABASE_URL`, or the local server with trust auth.
 *
 * @since 0.1.0
 * @category constants
 */
export const postgresUrl = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"

/**
 * The Redis URL tests use: `TEST_REDIS_URL`, or the local server.
 *
 * @since 0.1.0
 * @category constants
 */
export const redisUrl = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379"

/**
 * Whether the tests run in CI, where every service must be there.
 *
 * @since 0.1.0
 * @category constants
 */
export const inCi = process.env.CI === "true"

const reachable = (url: string, defaultPort: number): Promise<boolean> =>
  new Promise((resolve) => {
    const { hostname, port } = new URL(url)
    const socket = new Socket()
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    // Only bounds the check: a local service answers (or refuses) at once, however busy the machine is; a busy test
    // process must not take a late connect for a missing service (which fails CI and skips tests elsewhere).
    socket.setTimeout(10_000)
    socket.once("connect", () => done(true))
    socket.once("timeout", () => done(false))
    socket.once("error", () => done(false))
    socket.connect(port === "" ? defaultPort : Number(port), hostname)
  })

const availability = async (name: string, url: string, defaultPort: number): Promise<boolean> => {
  const ok = await reachable(url, defaultPort)
  if (ok) return true
  if (inCi) throw new Error(`${name} is required in CI but ${url} does not answer`)
  console.warn(`[testkit] ${name} at ${url} does not answer: its tests are skipped (they run in CI)`)
  return false
}

/**
 * Resolves to true when PostgreSQL answers; skips (false) outside CI and throws in CI when it does not.
 * Use as `describe.runIf(await Services.postgres())(…)`.
 *
 * @since 0.1.0
 * @category services
 */
export const postgres = (): Promise<boolean> => (postgresCheck ??= availability("PostgreSQL", postgresUrl, 5432))
let postgresCheck: Promise<boolean> | undefined

/**
 * Resolves to true when Redis answers; skips (false) outside CI and throws in CI when it does not.
 * Use as `describe.runIf(await Services.redis())(…)`.
 *
 * @since 0.1.0
 * @category services
 */
export const redis = (): Promise<boolean> => (redisCheck ??= availability("Redis", redisUrl, 6379))
let redisCheck: Promise<boolean> | undefined
