/**
 * flagd's conformance suite for evaluators (open-feature/flagd-testbed, `evaluator/`: `flags/testkit-flags.json` and
 * the Gherkin scenarios in `gherkin/*.feature`), run against FeatureFlags.
 *
 * The testbed is not vendored (its repository carries no licence file): point `FLAGD_TESTBED_DIR` at a checkout
 * (`git clone https://github.com/open-feature/flagd-testbed`) to run it; without it the suite is skipped with a
 * message. Scenarios tagged `@fractional-v1` describe flagd's legacy float bucketing, which flagd-core 4 (and
 * flagd) replaced by the v2 integer bucketing; they are skipped. The flag file loads leniently, as flagd loads it:
 * it holds rules that break the schema on purpose.
 */
import { assert, describe, it } from "@effect/vitest"
import type { EvaluationContext as OpenFeatureContext, FlagValue, FlagValueType } from "@openfeature/core"
import { Effect, Layer } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { FeatureFlags, FlagDefinition, FlagProvider } from "../src/index.js"

const directory = process.env.FLAGD_TESTBED_DIR

/** Tags whose scenarios do not apply (see the module notes). */
const skippedTags = new Set(["@fractional-v1"])

interface Scenario {
  readonly name: string
  readonly tags: ReadonlyArray<string>
  readonly steps: ReadonlyArray<string>
  /** Data tables, by the index of the step they follow. */
  readonly tables: ReadonlyMap<number, ReadonlyArray<Record<string, string>>>
}

const cells = (line: string) =>
  line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((cell) => cell.trim().replace(/\\"/g, "\""))

const table = (lines: ReadonlyArray<string>): Array<Record<string, string>> => {
  const [header, ...rows] = lines.map(cells)
  return rows.map((row) => Object.fromEntries(header!.map((name, i) => [name, row[i] ?? ""])))
}

/** A small reader for the subset of Gherkin the evaluator suite uses (Background, Scenario, Scenario Outline). */
const parseFeature = (text: string): Array<Scenario> => {
  const lines = text.split("\n").map((line) => line.replace(/\s+#.*$/, "")).filter((line) => !/^\s*#/.test(line))
  const scenarios: Array<Scenario> = []
  let featureTags: Array<string> = []
  let pendingTags: Array<string> = []
  let background: Array<string> = []
  let current: {
    name: string
    tags: Array<string>
    steps: Array<string>
    tables: Map<number, Array<Record<string, string>>>
    outline: boolean
  } | undefined
  let inBackground = false
  let examplesTags: Array<string> = []
  let examplesLines: Array<string> | undefined
  const flushExamples = () => {
    if (current === undefined || examplesLines === undefined) return
    for (const row of table(examplesLines)) {
      const fill = (s: string) => s.replace(/<([^>]+)>/g, (_, name: string) => row[name] ?? "")
      scenarios.push({
        name: `${current.name} [${Object.values(row).join(", ")}]`,
        tags: [...current.tags, ...examplesTags],
        steps: current.steps.map(fill),
        tables: new Map(
          [...current.tables].map(([i, t]) => [
            i,
            t.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, fill(v)])))
          ])
        )
      })
    }
    examplesLines = undefined
    examplesTags = []
  }
  const flushScenario = () => {
    flushExamples()
    if (current !== undefined && !current.outline) scenarios.push(current)
    current = undefined
  }
  let tableLines: Array<string> | undefined
  const flushTable = () => {
    if (tableLines !== undefined && current !== undefined) {
      current.tables.set(current.steps.length - 1, table(tableLines))
    }
    tableLines = undefined
  }
  for (const raw of lines) {
    const line = raw.trim()
    if (line === "") continue
    if (line.startsWith("|")) {
      if (examplesLines !== undefined) examplesLines.push(line)
      else (tableLines ??= []).push(line)
      continue
    }
    flushTable()
    if (line.startsWith("@")) {
      pendingTags.push(...line.split(/\s+/))
    } else if (line.startsWith("Feature:")) {
      featureTags = pendingTags
      pendingTags = []
    } else if (line.startsWith("Background:")) {
      inBackground = true
    } else if (line.startsWith("Scenario")) {
      flushScenario()
      inBackground = false
      current = {
        name: line.replace(/^Scenario( Outline)?:\s*/, ""),
        tags: [...featureTags, ...pendingTags],
        steps: [...background],
        tables: new Map(),
        outline: line.startsWith("Scenario Outline")
      }
      pendingTags = []
    } else if (line.startsWith("Examples")) {
      flushExamples()
      examplesTags = pendingTags
      pendingTags = []
      examplesLines = []
    } else if (inBackground) {
      background.push(line)
    } else if (current !== undefined) {
      current.steps.push(line)
    }
  }
  flushTable()
  flushScenario()
  background = []
  return scenarios
}

const typeOf: Record<string, FlagValueType> = {
  Boolean: "boolean",
  String: "string",
  Integer: "number",
  Float: "number",
  Object: "object"
}

const valueOf = (type: string, text: string): unknown => {
  switch (type) {
    case "Boolean":
      return text === "true"
    case "Integer":
    case "Float":
      return Number(text)
    case "Object":
      return JSON.parse(text)
    default:
      return text
  }
}

/** Runs a scenario's steps against the service. */
const run = (scenario: Scenario) =>
  Effect.gen(function*() {
    const flags = yield* FeatureFlags.FeatureFlags
    let flag: { type: string; key: string; fallback: unknown } | undefined
    const context: Record<string, unknown> = {}
    let result: FeatureFlags.Resolution<unknown> | undefined
    for (const [index, step] of scenario.steps.entries()) {
      const text = step.replace(/^(Given|When|Then|And|But)\s+/, "")
      let m: RegExpExecArray | null
      if (text === "an evaluator") continue
      if ((m = /^a (\w+)-flag with key "(.*)" and a fallback value "(.*)"$/.exec(text))) {
        flag = { type: m[1]!, key: m[2]!, fallback: valueOf(m[1]!, m[3]!) }
      } else if ((m = /^a context containing a targeting key with value "(.*)"$/.exec(text))) {
        context.targetingKey = m[1]!
      } else if ((m = /^a context containing a key "(.*)", with type "(.*)" and with value "(.*)"$/.exec(text))) {
        context[m[1]!] = valueOf(m[2]!, m[3]!)
      } else if (
        (m = /^a context containing a nested property with outer key "(.*)" and inner key "(.*)", with value "(.*)"$/
          .exec(text))
      ) {
        context[m[1]!] = { ...(context[m[1]!] as object | undefined), [m[2]!]: m[3]! }
      } else if (text === "the flag was evaluated with details") {
        result = flags.resolve(
          typeOf[flag!.type]!,
          flag!.key,
          flag!.fallback as FlagValue,
          context as OpenFeatureContext
        )
      } else if ((m = /^the resolved details value should be "(.*)"$/.exec(text))) {
        assert.deepStrictEqual(result!.value, valueOf(flag!.type, m[1]!))
      } else if ((m = /^the reason should be "(.*)"$/.exec(text))) {
        assert.strictEqual(result!.reason, m[1]!)
      } else if ((m = /^the variant should be "(.*)"$/.exec(text))) {
        assert.strictEqual(result!.variant, m[1]!)
      } else if ((m = /^the error-code should be "(.*)"$/.exec(text))) {
        assert.strictEqual(result!.errorCode ?? "", m[1]!)
      } else if (text === "the resolved metadata is empty") {
        assert.deepStrictEqual(result!.flagMetadata, {})
      } else if (text === "the resolved metadata should contain") {
        for (const row of scenario.tables.get(index) ?? []) {
          assert.deepStrictEqual(result!.flagMetadata[row.key!], valueOf(row.metadata_type!, row.value!))
        }
      } else {
        throw new Error(`unknown step: ${step}`)
      }
    }
  })

if (directory === undefined) {
  console.warn("[feature-flags] FLAGD_TESTBED_DIR is not set: flagd's testbed evaluator suite is skipped")
}

describe.runIf(directory !== undefined)("flagd-testbed evaluator suite", () => {
  const root = Path.join(directory ?? "", "evaluator")
  const flagsText = directory === undefined
    ? ""
    : Fs.readFileSync(Path.join(root, "flags", "testkit-flags.json"), "utf8")
  const features = directory === undefined
    ? []
    : Fs.readdirSync(Path.join(root, "gherkin")).filter((name) => name.endsWith(".feature")).sort()
  const layer = Layer.unwrap(Effect.sync(() => {
    const parsed = FlagDefinition.parse(flagsText, "json", "lenient")
    if (parsed._tag === "Failure") throw new Error(parsed.failure.detail)
    return FeatureFlags.layer({ validation: "lenient" }).pipe(
      Layer.provide(FlagProvider.layerMemory(parsed.success.flagSet, { validation: "lenient" }))
    )
  }))
  for (const feature of features) {
    describe(feature, () => {
      for (const scenario of parseFeature(Fs.readFileSync(Path.join(root, "gherkin", feature), "utf8"))) {
        const skip = scenario.tags.some((tag) => skippedTags.has(tag))
        it.effect.skipIf(skip)(
          `${scenario.name} ${scenario.tags.join(" ")}`,
          () => run(scenario).pipe(Effect.provide(layer))
        )
      }
    })
  }
})
