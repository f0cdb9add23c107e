import { assert, describe, it } from "@effect/vitest"
import { RequestContext } from "@ouroboros/kernel"
import { ConfigProvider, Console, Effect } from "effect"
import { Logging } from "../src/index.js"

/** A Console that keeps what the logger writes. */
const capture = Effect.map(Effect.service(Console.Console), (current) => {
  const lines: Array<unknown> = []
  const keep = (...args: ReadonlyArray<unknown>) => void lines.push(...args)
  const console: Console.Console = { ...current, log: keep, error: keep, info: keep, warn: keep }
  return { lines, console }
})

describe("Logging.layer", () => {
  it.effect("json: one object a line with ids and annotations; the level filters", () =>
    Effect.gen(function*() {
      const { lines, console } = yield* capture
      yield* Effect.gen(function*() {
        yield* Effect.logInfo("dropped")
        yield* Effect.logWarning("kept").pipe(Effect.annotateLogs({ tenant: "acme" }), Effect.withLogSpan("step"))
        yield* Effect.logError("failed", new Error("boom"))
      }).pipe(
        RequestContext.withCorrelationId("log-7"),
        Effect.withSpan("handler"),
        Effect.provide(Logging.layer({ format: "json", level: "Warn" })),
        Effect.provideService(Console.Console, console)
      )
      assert.strictEqual(lines.length, 2)
      const kept = JSON.parse(String(lines[0])) as Record<string, unknown>
      assert.strictEqual(kept.message, "kept")
      assert.strictEqual(kept.level, "WARN")
      assert.strictEqual(kept.tenant, "acme")
      assert.strictEqual(kept.correlationId, "log-7")
      assert.match(String(kept.traceId), /^[0-9a-f]{32}$/)
      assert.match(String(kept.spanId), /^[0-9a-f]{16}$/)
      assert.property(kept.spans as object, "step")
      const failed = JSON.parse(String(lines[1])) as Record<string, unknown>
      assert.include(String(failed.message), "failed")
    }))

  it.effect("pretty: ids are added as annotations", () =>
    Effect.gen(function*() {
      const { lines, console } = yield* capture
      yield* Effect.logInfo("hello").pipe(
        RequestContext.withCorrelationId("log-8"),
        Effect.provide(Logging.layer({ format: "pretty", level: "Info" })),
        Effect.provideService(Console.Console, console)
      )
      assert.include(lines.map(String).join("\n"), "log-8")
    }))

  it.effect("layerConfig reads LOG_FORMAT and LOG_LEVEL", () =>
    Effect.gen(function*() {
      const config = yield* Logging.config
      assert.strictEqual(config.format, "json")
      assert.deepStrictEqual(config.level, "Info")
      yield* Effect.logDebug("nothing").pipe(Effect.provide(Logging.layerConfig))
    }))

  it.effect("LOG_LEVEL takes a level name in any case, Effect 3's labels included", () =>
    Effect.gen(function*() {
      const read = (env: Record<string, string>) => Effect.result(Logging.config.parse(ConfigProvider.fromEnv({ env })))
      for (
        const [name, level] of [
          ["info", "Info"],
          ["WARN", "Warn"],
          ["Warning", "Warn"],
          ["error", "Error"],
          ["OFF", "None"],
          ["None", "None"],
          ["all", "All"]
        ] as const
      ) {
        const config = yield* read({ LOG_LEVEL: name, LOG_FORMAT: "pretty" })
        assert.isTrue(config._tag === "Success", name)
        if (config._tag === "Success") assert.deepStrictEqual(config.success, { format: "pretty", level }, name)
      }
      assert.strictEqual((yield* read({ LOG_LEVEL: "loud" }))._tag, "Failure")
      assert.strictEqual((yield* read({ LOG_FORMAT: "xml" }))._tag, "Failure")
    }))
})
