/**
 * Renders the measured figures of `docs/nfr.md` from the benchmarks' results files, so that the page cannot drift
 * from what the benchmarks last printed.
 *
 *   npx tsx docs/nfr.ts           rewrite the generated blocks of docs/nfr.md
 *   npx tsx docs/nfr.ts --check   exit 1 when docs/nfr.md is not what the results files give (docs/test runs this)
 *
 * Inputs, one JSON file per benchmark (the format is {@link ResultsFile}):
 * - `bench/results/<benchmark>.json`, written by the benchmark itself at the end of a run;
 * - `docs/nfr-seeds/<benchmark>.json`, figures transcribed from a README for a benchmark that does not write its
 *   results file yet (each carries `seed.from`, and the page says "seeded from ..."). A results file of the same
 *   name replaces its seed.
 *
 * Output: every block between `<!-- nfr:figures <feature> -->` and `<!-- /nfr:figures -->` of docs/nfr.md is the
 * table of that feature's rows, and the block between `<!-- nfr:sources -->` and `<!-- /nfr:sources -->` lists the
 * files used. Everything outside the blocks is written by hand and left alone.
 */
import { Schema } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

/** The ten features, and `platform` for whole-server and storage figures. */
export const features = [
  "health",
  "rate-limiting",
  "versioning",
  "circuit-breakers",
  "audit",
  "feature-flags",
  "correlation",
  "shutdown",
  "backup",
  "tenancy",
  "platform"
] as const

/** A measured value: the median and spread over rounds, or only what a source gives (a range, one value). */
export const Figure = Schema.Struct({
  median: Schema.optionalKey(Schema.Finite),
  min: Schema.optionalKey(Schema.Finite),
  max: Schema.optionalKey(Schema.Finite),
  /** Rounds the figure summarises. */
  n: Schema.optionalKey(Schema.Int)
})
export type Figure = typeof Figure.Type

/** One measure of one benchmark. */
export const Row = Schema.Struct({
  feature: Schema.Literals(features),
  /** What is measured, in words: "decisions/s, memory store, 1 key, decideUnsafe". */
  metric: Schema.String,
  /** The unit of `ours` and `peer`: "decisions/s", "ns/call", "ms", "%", ... */
  unit: Schema.String,
  ours: Schema.NullOr(Figure),
  /** The peer measured in the same run, if any. */
  peer: Schema.NullOr(Schema.Struct({ ...Figure.fields, name: Schema.String })),
  /** ours / peer, paired by round. */
  ratio: Schema.optionalKey(Schema.NullOr(Figure)),
  /** The goal in words ("≥ peer", "< 10% of req/s"), or null when there is none. */
  goal: Schema.NullOr(Schema.String),
  /** Whether the goal is met (the worse half of at least 5 paired rounds meets it); null: no goal, or not judged. */
  met: Schema.NullOr(Schema.Boolean),
  /** The verdict's figures, as `bench/paired/stats.ts` computes them. */
  verdict: Schema.optionalKey(Schema.Struct({
    worseHalf: Schema.Finite,
    roundsMeeting: Schema.Int,
    rounds: Schema.Int
  })),
  note: Schema.optionalKey(Schema.String)
})
export type Row = typeof Row.Type

/** A results file: `bench/results/<benchmark>.json` (or its seed under `docs/nfr-seeds/`). */
export const ResultsFile = Schema.Struct({
  /** The file's name without `.json`. */
  benchmark: Schema.String,
  /** How to run it: "npm run bench -- rate-limit". */
  command: Schema.String,
  /** When it ran: ISO 8601 date or date-time. */
  date: Schema.String,
  machine: Schema.optionalKey(Schema.String),
  /** The Effect version measured ("4.1.5"; a seed may say "3" for figures measured before the port). */
  effect: Schema.optionalKey(Schema.String),
  /** Present only in seeds: where the figures were transcribed from. */
  seed: Schema.optionalKey(Schema.Struct({ from: Schema.String, note: Schema.optionalKey(Schema.String) })),
  rows: Schema.Array(Row)
})
export type ResultsFile = typeof ResultsFile.Type

const decode = Schema.decodeUnknownSync(ResultsFile)

export const repo = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..")
export const resultsDir = Path.join(repo, "bench/results")
export const seedsDir = Path.join(repo, "docs/nfr-seeds")
export const pagePath = Path.join(repo, "docs/nfr.md")

const readDir = (dir: string): Map<string, ResultsFile> => {
  const out = new Map<string, ResultsFile>()
  if (!Fs.existsSync(dir)) return out
  for (const name of Fs.readdirSync(dir).filter((n) => n.endsWith(".json")).sort()) {
    const file = Path.join(dir, name)
    let parsed: ResultsFile
    try {
      parsed = decode(JSON.parse(Fs.readFileSync(file, "utf8")))
    } catch (error) {
      throw new Error(`${Path.relative(repo, file)}: not a results file: ${String(error)}`)
    }
    if (parsed.benchmark !== name.slice(0, -".json".length)) {
      throw new Error(
        `${Path.relative(repo, file)}: "benchmark" is ${JSON.stringify(parsed.benchmark)}, not the file's name`
      )
    }
    out.set(parsed.benchmark, parsed)
  }
  return out
}

/** A results file and where it was read from. */
export interface Source {
  readonly file: string
  readonly results: ResultsFile
}

/** The results to render: every `bench/results` file, and the seeds of the benchmarks that have none. */
export const loadResults = (dirs: { results: string; seeds: string } = { results: resultsDir, seeds: seedsDir }) => {
  const measured = readDir(dirs.results)
  const seeds = readDir(dirs.seeds)
  const sources: Array<Source> = []
  for (const name of [...new Set([...measured.keys(), ...seeds.keys()])].sort()) {
    const fromBench = measured.get(name)
    sources.push(
      fromBench !== undefined
        ? { file: Path.relative(repo, Path.join(dirs.results, `${name}.json`)), results: fromBench }
        : { file: Path.relative(repo, Path.join(dirs.seeds, `${name}.json`)), results: seeds.get(name)! }
    )
  }
  return sources
}

// ---- formatting

const trim = (s: string) => s.includes(".") ? s.replace(/\.?0+$/, "") : s

/** 5 800 000 → "5.8M", 16 108 → "16,108", 4.66 → "4.66", -0.3 → "−0.3". */
export const formatNumber = (n: number): string => {
  const sign = n < 0 ? "−" : ""
  const a = Math.abs(n)
  const body = a >= 1e6
    ? `${trim((a / 1e6).toFixed(2))}M`
    : a >= 1e3
    ? Math.round(a).toLocaleString("en-US")
    : Number.isInteger(a)
    ? String(a)
    : trim(a.toFixed(a >= 100 ? 0 : a >= 10 ? 1 : 2))
  return sign + body
}

const spread = (f: Figure): string | undefined =>
  f.min !== undefined && f.max !== undefined
    ? f.min === f.max ? formatNumber(f.min) : `${formatNumber(f.min)}–${formatNumber(f.max)}`
    : undefined

/** "16,108 (9,201–18,284) appends/s", "5.8M–11.3M decisions/s", "204 ns/call". */
export const formatFigure = (f: Figure | null | undefined, unit: string): string => {
  if (f === null || f === undefined) return "—"
  const range = spread(f)
  const value = f.median !== undefined
    ? range !== undefined ? `${formatNumber(f.median)} (${range})` : formatNumber(f.median)
    : range ?? "—"
  if (value === "—") return value
  const rounds = f.n !== undefined ? `, ${f.n} rounds` : ""
  return `${value}${unit === "" ? "" : unit === "×" ? unit : ` ${unit}`}${rounds}`
}

const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ")

const verdictOf = (row: Row): string => {
  if (row.goal === null) return "—"
  if (row.met === null) return "not judged"
  const detail = row.verdict !== undefined
    ? ` (worse half ${formatNumber(row.verdict.worseHalf)}; ${row.verdict.roundsMeeting}/${row.verdict.rounds} rounds)`
    : ""
  return row.met ? `met${detail}` : `**not met**${detail}`
}

const sourceOf = (source: Source): string =>
  source.results.seed !== undefined
    ? `seeded from ${source.results.seed.from}${source.results.effect === "3" ? " (Effect 3)" : ""}`
    : `${source.results.command}, ${source.results.date}`

/** The table of one feature's rows (or a line saying there are none). */
export const renderFeature = (feature: string, sources: ReadonlyArray<Source>): string => {
  const rows = sources.flatMap((source) =>
    source.results.rows.filter((row) => row.feature === feature).map((row) => ({ row, source }))
  )
  if (rows.length === 0) return "No benchmark figures: the requirements above are shown by tests."
  const lines = [
    "| measure | ours | peer (same run) | ours / peer | goal | verdict | source |",
    "| --- | --- | --- | --- | --- | --- | --- |"
  ]
  for (const { row, source } of rows) {
    const measure = row.note !== undefined ? `${row.metric} (${row.note})` : row.metric
    const peer = row.peer === null ? "—" : `${row.peer.name}: ${formatFigure(row.peer, row.unit)}`
    lines.push(
      `| ${
        [
          measure,
          formatFigure(row.ours, row.unit),
          peer,
          row.ratio === undefined || row.ratio === null ? "—" : formatFigure(row.ratio, "×"),
          row.goal ?? "—",
          verdictOf(row),
          sourceOf(source)
        ].map(cell).join(" | ")
      } |`
    )
  }
  return lines.join("\n")
}

/** The list of the files the figures come from. */
export const renderSources = (sources: ReadonlyArray<Source>): string => {
  const lines = [
    "| benchmark | file | command | date | Effect | status |",
    "| --- | --- | --- | --- | --- | --- |"
  ]
  for (const { file, results } of sources) {
    const status = results.seed !== undefined
      ? `seeded from \`${results.seed.from}\`${results.seed.note !== undefined ? `: ${results.seed.note}` : ""}`
      : `measured${results.machine !== undefined ? ` on ${results.machine}` : ""}`
    lines.push(
      `| ${
        [results.benchmark, `\`${file}\``, `\`${results.command}\``, results.date, results.effect ?? "—", status]
          .map(cell).join(" | ")
      } |`
    )
  }
  return lines.join("\n")
}

const figuresBlock = /<!-- nfr:figures ([a-z-]+) -->\n[\s\S]*?<!-- \/nfr:figures -->/g
const sourcesBlock = /<!-- nfr:sources -->\n[\s\S]*?<!-- \/nfr:sources -->/

/** The page with its generated blocks rendered from `sources`. Fails on a row whose feature has no block. */
export const render = (page: string, sources: ReadonlyArray<Source>): string => {
  const blocks = new Set([...page.matchAll(figuresBlock)].map((m) => m[1]!))
  for (const { file, results } of sources) {
    for (const row of results.rows) {
      if (!blocks.has(row.feature)) {
        throw new Error(`${file}: a row of feature "${row.feature}", which docs/nfr.md has no figures block for`)
      }
    }
  }
  if (!sourcesBlock.test(page)) throw new Error("docs/nfr.md has no <!-- nfr:sources --> block")
  return page
    .replace(
      figuresBlock,
      (_, feature: string) =>
        `<!-- nfr:figures ${feature} -->\n${renderFeature(feature, sources)}\n<!-- /nfr:figures -->`
    )
    .replace(sourcesBlock, `<!-- nfr:sources -->\n${renderSources(sources)}\n<!-- /nfr:sources -->`)
}

const main = () => {
  const page = Fs.readFileSync(pagePath, "utf8")
  const next = render(page, loadResults())
  if (process.argv.includes("--check")) {
    if (next !== page) {
      process.stderr.write("docs/nfr.md is out of date with the results files: run `npx tsx docs/nfr.ts`\n")
      process.exit(1)
    }
    return
  }
  if (next !== page) Fs.writeFileSync(pagePath, next)
}

if (process.argv[1] !== undefined && Path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main()
