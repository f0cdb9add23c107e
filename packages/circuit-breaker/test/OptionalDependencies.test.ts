import { assert, describe, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"

const run = promisify(execFile)
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))

/** A bare specifier or resolved URL of ioredis, pg or OpenTelemetry. */
const optional = /^(?:ioredis|pg|pg-[a-z-]+|@opentelemetry\/.+)$|\/node_modules\/(?:ioredis|pg|@opentelemetry)\//

/** Runs a fixture in its own Node process and returns what it printed and every module it resolved. */
const runFixture = async (name: string, extraEnv: Record<string, string> = {}) => {
  const dir = mkdtempSync(join(tmpdir(), "circuit-breaker-loads-"))
  const file = join(dir, "loaded.txt")
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, RECORD_LOADS_FILE: file }
    delete env.REDIS_URL
    delete env.RECORD_LOADS_DENY
    Object.assign(env, extraEnv)
    const { stdout } = await run(
      process.execPath,
      ["--conditions=@ouroboros/source", "--import", "tsx", "--import", fixture("record-loads.mjs"), fixture(name)],
      { env, cwd: fileURLToPath(new URL("..", import.meta.url)) }
    )
    const loaded = readFileSync(file, "utf8").split("\n").filter((line) => line.length > 0)
    return { output: JSON.parse(stdout.trim()) as unknown, loaded }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const optionalOf = (loaded: ReadonlyArray<string>) =>
  loaded.filter((line) => line.split(" ").some((part) => optional.test(part)))

describe("optional dependencies", () => {
  it("a program on per-process breakers loads neither ioredis, pg nor OpenTelemetry", async () => {
    const { loaded, output } = await runFixture("memory-only.ts")
    assert.deepStrictEqual(output, [42, "closed"])
    // The hook saw the package's modules: the list is the program's, not an empty one.
    assert.isTrue(loaded.some((line) => line.endsWith("/circuit-breaker/src/CircuitBreakerStore.ts")))
    assert.isTrue(loaded.some((line) => line.endsWith("/circuit-breaker/src/CircuitBreaker/RedisLazy.ts")))
    assert.deepStrictEqual(optionalOf(loaded), [])
  })

  it("the control: CircuitBreakerRedis.load loads ioredis, and the hook sees it", async () => {
    const { loaded, output } = await runFixture("redis-load.ts")
    assert.strictEqual(output, "function")
    assert.isTrue(optionalOf(loaded).some((line) => line.startsWith("ioredis ")))
  })

  it("without ioredis, CircuitBreakerRedis.load fails with RedisStoreUnavailable and layerRedis dies", async () => {
    const { loaded, output } = await runFixture("without-ioredis.ts", { RECORD_LOADS_DENY: "^ioredis$" })
    assert.isTrue(loaded.includes("ioredis denied"))
    assert.deepStrictEqual(output, {
      load: "RedisStoreUnavailable",
      message: "Cannot load the Redis circuit-breaker store (is ioredis installed?)",
      layer: "die"
    })
  })
})
