import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Layer, Logger, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { FeatureFlags, FlagProviderFile } from "../src/index.js"

const yamlFlags = (defaultVariant: string) => `
# flagd's format, in YAML
flags:
  new-search:
    state: ENABLED
    variants:
      "on": true
      "off": false
    defaultVariant: "${defaultVariant}"
  greeting:
    state: ENABLED
    variants: { formal: "Good day", casual: "Hi" }
    defaultVariant: formal
    targeting:
      if:
        - $ref: isBeta
        - casual
        - null
$evaluators:
  isBeta:
    starts_with: [{ var: tenantId }, "beta-"]
`

const NewSearch = FeatureFlags.boolean("new-search", false)
const Greeting = FeatureFlags.string("greeting", "Hello")

/** A temporary directory, removed with the scope. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "feature-flags-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

const write = (path: string, text: string) => Effect.sync(() => Fs.writeFileSync(path, text))

/** Collects log lines. */
const capture = () => {
  const lines: Array<string> = []
  const logger = Logger.make<unknown, void>(({ logLevel, message }) => {
    const text = Array.isArray(message) ? message.map(String).join(" ") : String(message)
    lines.push(`${logLevel}: ${text}`)
  })
  return { lines, layer: Logger.layer([logger]) }
}

/**
 * Waits for `condition`, checking it after each macrotask (the file is read with real I/O), for at most `attempts`
 * checks: the bound only ends a broken test, it assumes nothing about timing.
 */
const eventually = <E, R>(condition: Effect.Effect<boolean, E, R>, attempts = 10_000) =>
  Effect.gen(function*() {
    for (let i = 0; i < attempts; i++) {
      if (yield* condition) return
      yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
    }
    assert.fail("the condition did not hold")
  })

describe("FlagProviderFile", () => {
  it.effect("loads a YAML flag file with $ref evaluators", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = Path.join(dir, "flags.yaml")
      yield* write(path, yamlFlags("on"))
      yield* Effect.gen(function*() {
        assert.isTrue(yield* FeatureFlags.value(NewSearch))
        assert.strictEqual(yield* FeatureFlags.value(Greeting, { tenantId: "beta-1" }), "Hi")
        assert.strictEqual(yield* FeatureFlags.value(Greeting, { tenantId: "acme" }), "Good day")
        const flags = yield* FeatureFlags.FeatureFlags
        assert.strictEqual((yield* flags.get("greeting")).source, `file:${path}`)
        const readOnly = yield* Effect.flip(flags.kill("greeting", { reason: "r" }, { actor: "ops" }))
        assert.deepStrictEqual(readOnly._tag === "FlagConflict" ? readOnly.reason : readOnly._tag, "read-only")
      }).pipe(Effect.provide(FeatureFlags.layerFile({ path })))
    }))

  it.effect("refuses to start on a missing or invalid file, and says where", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const missing = yield* Effect.exit(
        Layer.build(FeatureFlags.layerFile({ path: Path.join(dir, "nope.json") }))
      )
      assert.isTrue(Exit.isFailure(missing))
      const path = Path.join(dir, "flags.json")
      yield* write(
        path,
        JSON.stringify({ flags: { x: { state: "ENABLED", variants: { a: 1 }, defaultVariant: "b" } } })
      )
      const error = yield* Effect.flip(Layer.build(FeatureFlags.layerFile({ path })))
      assert.strictEqual(error._tag, "FlagSourceError")
      assert.include(error.detail, "b")
      yield* write(path, "{ not json")
      const notJson = yield* Effect.flip(Layer.build(FeatureFlags.layerFile({ path })))
      assert.include(notJson.detail, "not valid JSON")
    }))

  it.effect("reloads a changed file at the next poll (TestClock drives the poll)", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = Path.join(dir, "flags.yaml")
      yield* write(path, yamlFlags("off"))
      yield* Effect.gen(function*() {
        assert.isFalse(yield* FeatureFlags.value(NewSearch))
        yield* write(path, yamlFlags("on"))
        // The poll has not come round yet: nothing changed.
        assert.isFalse(yield* FeatureFlags.value(NewSearch))
        yield* TestClock.adjust(Duration.seconds(4))
        assert.isFalse(yield* FeatureFlags.value(NewSearch))
        yield* TestClock.adjust(Duration.seconds(1))
        yield* eventually(FeatureFlags.value(NewSearch))
      }).pipe(Effect.provide(FeatureFlags.layerFile({ path, pollInterval: Duration.seconds(5) })))
    }))

  it.effect("a broken file keeps the last good flags; a log line and the status say why, until it is fixed", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = Path.join(dir, "flags.yaml")
      yield* write(path, yamlFlags("on"))
      const logs = capture()
      yield* Effect.gen(function*() {
        const flags = yield* FeatureFlags.FeatureFlags
        yield* write(path, yamlFlags("maybe"))
        yield* flags.refresh
        assert.isTrue(yield* FeatureFlags.value(NewSearch))
        const [status] = yield* flags.status
        assert.strictEqual(status?.status, "stale")
        assert.include(status?.detail, "maybe")
        assert.include(status?.detail, path)
        const warnings = logs.lines.filter((line) => line.startsWith("Warn") && line.includes("keeping the last good"))
        assert.strictEqual(warnings.length, 1)
        assert.include(warnings[0], "maybe")
        // The same broken file is reported once, not at every poll.
        yield* flags.refresh
        assert.strictEqual(logs.lines.filter((line) => line.includes("keeping the last good")).length, 1)
        // A broken YAML file too.
        yield* write(path, "flags: [unclosed")
        yield* flags.refresh
        assert.isTrue(yield* FeatureFlags.value(NewSearch))
        assert.include((yield* flags.status)[0]?.detail, "YAML")
        // Fixed: the new flags, and ready again.
        yield* write(path, yamlFlags("off"))
        yield* flags.refresh
        assert.isFalse(yield* FeatureFlags.value(NewSearch))
        assert.strictEqual((yield* flags.status)[0]?.status, "ready")
        // Deleted: the last flags stay.
        yield* Effect.sync(() => Fs.rmSync(path))
        yield* flags.refresh
        assert.isFalse(yield* FeatureFlags.value(NewSearch))
        assert.include((yield* flags.status)[0]?.detail, "ENOENT")
      }).pipe(Effect.provide(FeatureFlags.layerFile({ path })), Effect.provide(logs.layer))
    }))

  it.live("hot reload: a change on disk is seen without any call (bounded poll for the condition)", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = Path.join(dir, "flags.json")
      const json = (on: boolean) =>
        JSON.stringify({
          flags: {
            "new-search": { state: "ENABLED", variants: { on: true, off: false }, defaultVariant: on ? "on" : "off" }
          }
        })
      yield* write(path, json(false))
      yield* Effect.gen(function*() {
        const flags = yield* FeatureFlags.FeatureFlags
        const subscription = yield* flags.subscribe
        const changed = yield* subscription.pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
        assert.isFalse(yield* FeatureFlags.value(NewSearch))
        // Written as a new file renamed over the old one, as editors and ConfigMaps do.
        yield* write(`${path}.tmp`, json(true))
        yield* Effect.sync(() => Fs.renameSync(`${path}.tmp`, path))
        const deadline = Date.now() + 10_000
        while (!(yield* FeatureFlags.value(NewSearch))) {
          if (Date.now() > deadline) assert.fail("the change was not seen")
          yield* Effect.sleep(Duration.millis(10))
        }
        const [event] = yield* Fiber.join(changed)
        assert.deepStrictEqual(event?.keys, ["new-search"])
      }).pipe(Effect.provide(FlagProviderFileLayer(path)))
    }))
})

const FlagProviderFileLayer = (path: string) =>
  FeatureFlags.layer().pipe(Layer.provide(FlagProviderFile.layer({ path, pollInterval: Duration.millis(25) })))
