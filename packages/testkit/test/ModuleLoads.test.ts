import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { fileURLToPath } from "node:url"
import * as ModuleLoads from "../src/ModuleLoads.js"

const fixture = fileURLToPath(new URL("./fixtures/loads-effect.ts", import.meta.url))
const cwd = fileURLToPath(new URL("..", import.meta.url))

describe("ModuleLoads", () => {
  it.effect("records what the fixture resolves and parses what it prints", () =>
    Effect.gen(function*() {
      const { loaded, output } = yield* ModuleLoads.record(fixture, { cwd, env: { FAIL: undefined } })
      assert.strictEqual(output, "loaded")
      assert.isTrue(loaded.some((line) => /^effect file:\/\/.*\/node_modules\/effect\//.test(line)))
      assert.isFalse(loaded.includes("effect denied"))
    }))

  it.effect("a denied package fails to resolve as if it were not installed", () =>
    Effect.gen(function*() {
      const { loaded, output } = yield* ModuleLoads.record(fixture, { cwd, deny: /^effect$/ })
      assert.strictEqual(output, "ERR_MODULE_NOT_FOUND")
      assert.isTrue(loaded.includes("effect denied"))
      assert.isFalse(loaded.some((line) => line.startsWith("effect file:")))
    }))

  it.effect("a fixture that exits with an error fails with FixtureFailed", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(ModuleLoads.record(fixture, { cwd, env: { FAIL: "1" } }))
      assert.strictEqual(error._tag, "FixtureFailed")
      assert.strictEqual(error.fixture, fixture)
    }))

  it("matching keeps the lines whose specifier or URL is an optional dependency", () => {
    const loaded = [
      "effect file:///app/node_modules/effect/dist/index.js",
      "ioredis file:///app/node_modules/ioredis/built/index.js",
      "./Command file:///app/node_modules/ioredis/built/Command.js",
      "pg-protocol file:///app/node_modules/pg-protocol/dist/index.js",
      "@opentelemetry/api denied",
      "./pg.ts file:///app/src/pg.ts"
    ]
    assert.deepStrictEqual(ModuleLoads.matching(loaded), loaded.slice(1, 5))
    assert.deepStrictEqual(ModuleLoads.matching(loaded, /^effect$/), loaded.slice(0, 1))
  })
})
