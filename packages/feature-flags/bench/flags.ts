/**
 * Evaluations per second: @ouroboros/feature-flags beside @openfeature/flagd-core alone and beside
 * @openfeature/server-sdk with its InMemoryProvider, on the same three flags in the same run.
 *
 *   npx tsx packages/feature-flags/bench/flags.ts [--rounds 7] [--window 200]
 *
 * Flags: a static flag, a targeting rule (tier == "premium"), and a 50/50 fractional split over 1,000 targeting keys.
 *
 * Two call styles, compared only within a style:
 * - synchronous (one call, no promise): flagd-core's `resolveBooleanEvaluation`; ours through `FeatureFlags.resolve`
 *   (flagd-core plus the kill-switch and tenant-override lookups and the metric update, same flat context) and through
 *   the typed `detailsSync` (an `EvaluationContext` per request, flattened once and cached).
 * - asynchronous (one awaited promise per evaluation) through the OpenFeature SDK's client: the SDK's own
 *   InMemoryProvider (rules as JavaScript functions; the split with an FNV-1a hash, cheaper than flagd's MurmurHash3)
 *   against our OpenFeature provider (flagd's JsonLogic). Same SDK, no hooks.
 *
 * Each round measures every contender for a fixed window in an order that alternates between rounds (paired
 * rounds); the first round warms up and is not counted. The median and the spread (min–max) of the rounds are
 * printed. The whole run is bounded: rounds × contenders × window.
 */
import { FlagdCore, MemoryStorage } from "@openfeature/flagd-core"
import type { EvaluationContext, Logger } from "@openfeature/server-sdk"
import { InMemoryProvider, OpenFeature } from "@openfeature/server-sdk"
import { Effect, ManagedRuntime } from "effect"
import { FeatureFlags, type FlagDefinition } from "../src/index.js"
import * as OpenFeatureProvider from "../src/OpenFeatureProvider.js"

const argument = (name: string, fallback: number) => {
  const index = process.argv.indexOf(`--${name}`)
  return index === -1 ? fallback : Number(process.argv[index + 1])
}
const rounds = argument("rounds", 7)
const windowMs = argument("window", 200)

// -----------------------------------------------------------------------------------------------------------------
// the same flags for everyone
// -----------------------------------------------------------------------------------------------------------------

const flagSet: FlagDefinition.FlagSet = {
  flags: {
    static: { state: "ENABLED", variants: { on: true, off: false }, defaultVariant: "on" },
    rule: {
      state: "ENABLED",
      variants: { on: true, off: false },
      defaultVariant: "off",
      targeting: { if: [{ "==": [{ var: "tier" }, "premium"] }, "on", null] }
    },
    split: {
      state: "ENABLED",
      variants: { on: true, off: false },
      defaultVariant: "off",
      targeting: { fractional: [["on", 50], ["off", 50]] }
    }
  }
}

const fnv1a = (text: string) => {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193)
  return hash >>> 0
}

const inMemory = new InMemoryProvider({
  static: { variants: { on: true, off: false }, defaultVariant: "on", disabled: false },
  rule: {
    variants: { on: true, off: false },
    defaultVariant: "off",
    disabled: false,
    contextEvaluator: (context) => context.tier === "premium" ? "on" : "off"
  },
  split: {
    variants: { on: true, off: false },
    defaultVariant: "off",
    disabled: false,
    contextEvaluator: (context) => fnv1a(`split${String(context.targetingKey)}`) % 100 < 50 ? "on" : "off"
  }
})

type Case = "static" | "rule" | "split"
const cases: ReadonlyArray<Case> = ["static", "rule", "split"]

const keys = Array.from({ length: 1000 }, (_, i) => `user-${i}`)
const flatContexts: Record<Case, ReadonlyArray<EvaluationContext>> = {
  static: keys.map((targetingKey) => ({ targetingKey })),
  rule: keys.map((targetingKey, i) => ({ targetingKey, tier: i % 2 === 0 ? "premium" : "free" })),
  split: keys.map((targetingKey) => ({ targetingKey }))
}
const typedContexts = {
  static: keys.map((targetingKey) => ({ targetingKey })),
  rule: keys.map((targetingKey, i) => ({ targetingKey, attributes: { tier: i % 2 === 0 ? "premium" : "free" } })),
  split: keys.map((targetingKey) => ({ targetingKey }))
}

// -----------------------------------------------------------------------------------------------------------------
// contenders
// -----------------------------------------------------------------------------------------------------------------

const quiet: Logger = { error() {}, warn() {}, info() {}, debug() {} }
const storage = new MemoryStorage(quiet)
storage.setConfigurations(JSON.stringify(flagSet), true)
const flagd = new FlagdCore(storage, quiet)

const runtime = ManagedRuntime.make(FeatureFlags.layerMemory(flagSet))
const ours = await runtime.runPromise(Effect.service(FeatureFlags.FeatureFlags))
const oursProvider = await runtime.runPromise(Effect.scoped(OpenFeatureProvider.make))

await OpenFeature.setProviderAndWait("in-memory", inMemory)
await OpenFeature.setProviderAndWait("ouroboros", oursProvider)
const inMemoryClient = OpenFeature.getClient("in-memory")
const oursClient = OpenFeature.getClient("ouroboros")

const typed = {
  static: FeatureFlags.boolean("static", false),
  rule: FeatureFlags.boolean("rule", false),
  split: FeatureFlags.boolean("split", false)
}

interface Contender {
  readonly name: string
  readonly style: "sync" | "async"
  /** Runs `n` evaluations of `flag` and returns how many were `true` (kept, so nothing is optimised away). */
  readonly run: (flag: Case, n: number, offset: number) => number | Promise<number>
}

const contenders: ReadonlyArray<Contender> = [
  {
    name: "flagd-core alone",
    style: "sync",
    run: (flag, n, offset) => {
      let on = 0
      const contexts = flatContexts[flag]
      for (let i = 0; i < n; i++) {
        if (flagd.resolveBooleanEvaluation(flag, false, contexts[(offset + i) % 1000]!, quiet).value) on++
      }
      return on
    }
  },
  {
    name: "ours: FeatureFlags.resolve",
    style: "sync",
    run: (flag, n, offset) => {
      let on = 0
      const contexts = flatContexts[flag]
      for (let i = 0; i < n; i++) {
        if (ours.resolve("boolean", flag, false, contexts[(offset + i) % 1000]!).value) on++
      }
      return on
    }
  },
  {
    name: "ours: FeatureFlags.detailsSync (typed)",
    style: "sync",
    run: (flag, n, offset) => {
      let on = 0
      const contexts = typedContexts[flag]
      const handle = typed[flag]
      for (let i = 0; i < n; i++) {
        if (ours.detailsSync(handle, contexts[(offset + i) % 1000]!).value) on++
      }
      return on
    }
  },
  {
    name: "OpenFeature SDK + InMemoryProvider",
    style: "async",
    run: async (flag, n, offset) => {
      let on = 0
      const contexts = flatContexts[flag]
      for (let i = 0; i < n; i++) {
        if ((await inMemoryClient.getBooleanDetails(flag, false, contexts[(offset + i) % 1000]!)).value) on++
      }
      return on
    }
  },
  {
    name: "OpenFeature SDK + ours",
    style: "async",
    run: async (flag, n, offset) => {
      let on = 0
      const contexts = flatContexts[flag]
      for (let i = 0; i < n; i++) {
        if ((await oursClient.getBooleanDetails(flag, false, contexts[(offset + i) % 1000]!)).value) on++
      }
      return on
    }
  }
]

// -----------------------------------------------------------------------------------------------------------------
// measurement
// -----------------------------------------------------------------------------------------------------------------

/** Evaluations per second of one contender on one flag, over one window. */
const measure = async (contender: Contender, flag: Case): Promise<number> => {
  const batch = contender.style === "sync" ? 2_000 : 500
  let done = 0
  let sink = 0
  const start = performance.now()
  let elapsed = 0
  while (elapsed < windowMs) {
    sink += await contender.run(flag, batch, done)
    done += batch
    elapsed = performance.now() - start
  }
  if (sink < 0) console.log(sink)
  return (done / elapsed) * 1000
}

const results = new Map<string, Array<number>>()
const started = performance.now()
for (let round = 0; round <= rounds; round++) {
  for (const flag of cases) {
    // Paired and alternating: every contender in each round, the order reversed every other round.
    const order = round % 2 === 0 ? contenders : [...contenders].reverse()
    for (const contender of order) {
      const rate = await measure(contender, flag)
      if (round === 0) continue
      const key = `${flag}\u0000${contender.name}`
      results.set(key, [...(results.get(key) ?? []), rate])
    }
  }
}

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 0 ? (sorted[mid - 1]! + sorted[mid]!) / 2 : sorted[mid]!
}
const format = (n: number) => n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(0)}k`

console.log(
  `feature flag evaluations per second (node ${process.version}, ${rounds} paired rounds of ${windowMs} ms after one ` +
    `warm-up round, ${((performance.now() - started) / 1000).toFixed(1)} s)`
)
for (const flag of cases) {
  console.log(`\n${flag === "static" ? "static flag" : flag === "rule" ? "targeting rule" : "fractional 50/50 split"}`)
  for (const style of ["sync", "async"] as const) {
    const inStyle = contenders.filter((c) => c.style === style)
    const base = median(results.get(`${flag}\u0000${inStyle[0]!.name}`)!)
    for (const contender of inStyle) {
      const values = results.get(`${flag}\u0000${contender.name}`)!
      const m = median(values)
      console.log(
        `  ${style.padEnd(5)} ${contender.name.padEnd(40)} median ${format(m).padStart(7)}/s  ` +
          `spread ${format(Math.min(...values))}–${format(Math.max(...values))}  ` +
          `${(m / base).toFixed(2)}× ${inStyle[0]!.name}`
      )
    }
  }
}

await OpenFeature.close()
await runtime.dispose()
