/**
 * Summarizes a V8 CPU profile (`node --cpu-prof`): self time by function and by module. Functions of an esbuild
 * bundle are attributed to the module they came from by the `// path/to/module.js` comment esbuild writes above each
 * module of an unminified bundle, so the bundled server's profile reads per package (`effect/…/HttpEffect.js`,
 * `packages/correlation/src/CorrelationHttp.ts`, …).
 *
 * Run on a profile: `npx tsx bench/internal/profile.ts CPU.….cpuprofile [top]`.
 */
import * as Fs from "node:fs"
import { fileURLToPath } from "node:url"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
  readonly columnNumber: number
}

interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: ReadonlyArray<number>
}

interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

/** A row of the summary: a name, its self time in ms and its share of the profile's time. */
export interface Row {
  readonly name: string
  readonly selfMillis: number
  readonly share: number
}

/** Self time by function and by module, and the total and idle (`(idle)`, `(program)`, `(garbage collector)`) time. */
export interface Summary {
  readonly totalMillis: number
  readonly byFunction: ReadonlyArray<Row>
  readonly byModule: ReadonlyArray<Row>
  readonly special: ReadonlyArray<Row>
}

/** The start lines (0-based) of the modules of an esbuild bundle, and their paths. */
const bundleModules = (path: string): { readonly lines: Array<number>; readonly names: Array<string> } => {
  const lines: Array<number> = []
  const names: Array<string> = []
  const text = Fs.readFileSync(path, "utf8").split("\n")
  for (let i = 0; i < text.length; i++) {
    const line = text[i]!
    // esbuild's module markers: `// node_modules/effect/dist/Effect.js`, `// packages/kernel/src/ProblemHttp.ts`
    if (line.startsWith("// ") && /^\/\/ [\w@.\-/]+\.(?:[mc]?js|ts)$/.test(line)) {
      lines.push(i)
      names.push(line.slice(3))
    }
  }
  return { lines, names }
}

const shortModule = (name: string): string =>
  name.replace(/^.*node_modules\//, "").replace(/^(?:\.\.\/)+/, "").replace(/\/dist\//, "/")

/** Summarizes the profile at `path`. */
export const summarize = (path: string): Summary => {
  const profile = JSON.parse(Fs.readFileSync(path, "utf8")) as Profile
  const byId = new Map(profile.nodes.map((node) => [node.id, node] as const))
  const selfMicros = new Map<number, number>()
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!
    selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
  }
  const bundles = new Map<string, ReturnType<typeof bundleModules> | undefined>()
  const moduleOf = (frame: CallFrame): string => {
    if (frame.url === "") return "(native)"
    if (frame.url.startsWith("node:")) return frame.url
    let file: string
    try {
      file = frame.url.startsWith("file:") ? fileURLToPath(frame.url) : frame.url
    } catch {
      return frame.url
    }
    if (!bundles.has(file)) {
      bundles.set(file, Fs.existsSync(file) && /\/dist\/.+\.js$/.test(file) ? bundleModules(file) : undefined)
    }
    const bundle = bundles.get(file)
    if (bundle === undefined || bundle.lines.length === 0) return shortModule(file)
    // The last module marker at or above the function's line.
    let lo = 0
    let hi = bundle.lines.length - 1
    if (frame.lineNumber < bundle.lines[0]!) return shortModule(file)
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (bundle.lines[mid]! <= frame.lineNumber) lo = mid
      else hi = mid - 1
    }
    return shortModule(bundle.names[lo]!)
  }
  const functions = new Map<string, number>()
  const modules = new Map<string, number>()
  const special = new Map<string, number>()
  let total = 0
  for (const [id, micros] of selfMicros) {
    total += micros
    const frame = byId.get(id)!.callFrame
    if (frame.functionName.startsWith("(") && frame.url === "") {
      special.set(frame.functionName, (special.get(frame.functionName) ?? 0) + micros)
      continue
    }
    const module = moduleOf(frame)
    const name = `${frame.functionName || "(anonymous)"} ${module}:${frame.lineNumber + 1}`
    functions.set(name, (functions.get(name) ?? 0) + micros)
    modules.set(module, (modules.get(module) ?? 0) + micros)
  }
  const rows = (map: Map<string, number>): Array<Row> =>
    [...map].map(([name, micros]) => ({ name, selfMillis: micros / 1000, share: micros / total }))
      .sort((a, b) => b.selfMillis - a.selfMillis)
  return { totalMillis: total / 1000, byFunction: rows(functions), byModule: rows(modules), special: rows(special) }
}

/** Prints the top `top` functions and modules of a summary. */
export const print = (summary: Summary, top = 30): void => {
  const table = (rows: ReadonlyArray<Row>) =>
    rows.slice(0, top).map((row) => ({
      "self ms": Math.round(row.selfMillis),
      "%": (row.share * 100).toFixed(1),
      name: row.name.length > 110 ? `…${row.name.slice(-109)}` : row.name
    }))
  console.log(`profile: ${Math.round(summary.totalMillis)} ms sampled`)
  console.table(table(summary.special))
  console.log("self time by module")
  console.table(table(summary.byModule))
  console.log("self time by function")
  console.table(table(summary.byFunction))
}

if (process.argv[1] !== undefined && import.meta.url === `file://${process.argv[1]}`) {
  const [path, top] = process.argv.slice(2)
  if (path === undefined) {
    console.error("usage: profile.ts <file.cpuprofile> [top]")
    process.exit(2)
  }
  print(summarize(path), Number(top ?? 30))
}
