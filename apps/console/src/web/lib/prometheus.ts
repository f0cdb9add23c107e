/**
 * The Prometheus text exposition format (version 0.0.4), read in the browser: families with their samples, and the
 * arithmetic the console's charts need (sums, rates between two scrapes, histogram quantiles as PromQL's
 * `histogram_quantile` computes them).
 *
 * @since 0.1.0
 */

/**
 * One sample line: `name{label="value",…} value`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/**
 * A metric family: its `# TYPE`, `# HELP` and samples (a histogram's `_bucket`, `_sum` and `_count` lines included).
 *
 * @since 0.1.0
 * @category models
 */
export interface Family {
  readonly name: string
  readonly type: string
  readonly help: string
  readonly samples: Array<Sample>
}

/**
 * Families by name.
 *
 * @since 0.1.0
 * @category models
 */
export type Metrics = ReadonlyMap<string, Family>

const suffixes = ["_bucket", "_count", "_sum", "_total", "_created", "_gsum", "_gcount"] as const

const parseValue = (text: string): number => {
  switch (text) {
    case "+Inf":
    case "Inf":
      return Number.POSITIVE_INFINITY
    case "-Inf":
      return Number.NEGATIVE_INFINITY
    case "NaN":
      return Number.NaN
    default:
      return Number(text)
  }
}

// Label values escape `\`, `"` and newlines; anything else is literal.
const parseLabels = (text: string, start: number): { labels: Record<string, string>; end: number } | undefined => {
  const labels: Record<string, string> = {}
  let i = start
  for (;;) {
    while (text[i] === " " || text[i] === ",") i++
    if (text[i] === "}") return { labels, end: i + 1 }
    const eq = text.indexOf("=", i)
    if (eq === -1) return undefined
    const name = text.slice(i, eq).trim()
    i = eq + 1
    if (text[i] !== "\"") return undefined
    i++
    let value = ""
    while (i < text.length && text[i] !== "\"") {
      if (text[i] === "\\") {
        const next = text[i + 1]
        value += next === "n" ? "\n" : next ?? ""
        i += 2
      } else {
        value += text[i]
        i++
      }
    }
    if (i >= text.length) return undefined
    labels[name] = value
    i++
  }
}

/**
 * Parses an exposition. Lines that do not parse are skipped (a scrape is still useful when one line is odd).
 *
 * @since 0.1.0
 * @category parsing
 * @example
 * const metrics = parse("# TYPE up gauge\nup 1\n")
 * metrics.get("up")?.samples[0]?.value // 1
 */
export const parse = (text: string): Metrics => {
  const families = new Map<string, { name: string; type: string; help: string; samples: Array<Sample> }>()
  const family = (name: string) => {
    let found = families.get(name)
    if (found === undefined) {
      found = { name, type: "untyped", help: "", samples: [] }
      families.set(name, found)
    }
    return found
  }
  // The family a sample belongs to: its own name when declared, else the name without a known suffix when that is.
  const familyOf = (name: string) => {
    if (families.has(name)) return family(name)
    for (const suffix of suffixes) {
      if (name.endsWith(suffix)) {
        const base = name.slice(0, -suffix.length)
        if (families.has(base)) return family(base)
      }
    }
    return family(name)
  }
  for (const raw of text.split("\n")) {
    const line = raw.trim()
    if (line === "") continue
    if (line.startsWith("#")) {
      const match = /^#\s+(HELP|TYPE)\s+(\S+)\s*(.*)$/.exec(line)
      if (match === null) continue
      const target = family(match[2]!)
      if (match[1] === "TYPE") target.type = match[3]!.trim()
      else target.help = match[3]!.replace(/\\n/g, "\n").replace(/\\\\/g, "\\")
      continue
    }
    const nameEnd = line.search(/[{\s]/)
    if (nameEnd <= 0) continue
    const name = line.slice(0, nameEnd)
    let labels: Record<string, string> = {}
    let rest = nameEnd
    if (line[nameEnd] === "{") {
      const parsed = parseLabels(line, nameEnd + 1)
      if (parsed === undefined) continue
      labels = parsed.labels
      rest = parsed.end
    }
    const valueText = line.slice(rest).trim().split(/\s+/)[0]
    if (valueText === undefined || valueText === "") continue
    const value = parseValue(valueText)
    if (Number.isNaN(value) && valueText !== "NaN") continue
    familyOf(name).samples.push({ name, labels, value })
  }
  return families
}

/**
 * A predicate on labels: every given label must have the given value (a function for anything else).
 *
 * @since 0.1.0
 * @category models
 */
export type LabelFilter = Readonly<Record<string, string>> | ((labels: Readonly<Record<string, string>>) => boolean)

const matches = (labels: Readonly<Record<string, string>>, filter: LabelFilter | undefined): boolean =>
  filter === undefined
    ? true
    : typeof filter === "function"
    ? filter(labels)
    : Object.entries(filter).every(([name, value]) => labels[name] === value)

/**
 * The samples of a series name (`http_server_requests_total`, or a histogram's `…_count`) that match `filter`.
 *
 * @since 0.1.0
 * @category reading
 */
export const samples = (metrics: Metrics, name: string, filter?: LabelFilter): Array<Sample> => {
  const out: Array<Sample> = []
  for (const family of metrics.values()) {
    for (const sample of family.samples) {
      if (sample.name === name && matches(sample.labels, filter)) out.push(sample)
    }
  }
  return out
}

/**
 * The sum of the matching samples of a series name, or `undefined` when there is none.
 *
 * @since 0.1.0
 * @category reading
 */
export const sum = (metrics: Metrics, name: string, filter?: LabelFilter): number | undefined => {
  const found = samples(metrics, name, filter)
  return found.length === 0 ? undefined : found.reduce((total, sample) => total + sample.value, 0)
}

/**
 * Sums matching samples by the value of one label: `{ on: 12, off: 3 }`.
 *
 * @since 0.1.0
 * @category reading
 */
export const sumBy = (metrics: Metrics, name: string, label: string, filter?: LabelFilter): Map<string, number> => {
  const out = new Map<string, number>()
  for (const sample of samples(metrics, name, filter)) {
    const key = sample.labels[label] ?? ""
    out.set(key, (out.get(key) ?? 0) + sample.value)
  }
  return out
}

/**
 * The increase of a counter between two scrapes; a counter that went down was reset, and its new value is the
 * increase (as PromQL's `increase` treats resets).
 *
 * @since 0.1.0
 * @category arithmetic
 */
export const increase = (before: number | undefined, after: number | undefined): number | undefined =>
  after === undefined ? undefined : before === undefined ? undefined : after >= before ? after - before : after

/**
 * Cumulative histogram buckets: `count` observations were at most `le`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Bucket {
  readonly le: number
  readonly count: number
}

/**
 * The buckets of a histogram series, summed over the matching label sets, sorted by `le`.
 *
 * @since 0.1.0
 * @category reading
 */
export const buckets = (metrics: Metrics, histogram: string, filter?: LabelFilter): Array<Bucket> => {
  const byLe = new Map<number, number>()
  for (const sample of samples(metrics, `${histogram}_bucket`, filter)) {
    const le = parseValue(sample.labels["le"] ?? "")
    if (Number.isNaN(le)) continue
    byLe.set(le, (byLe.get(le) ?? 0) + sample.value)
  }
  return [...byLe.entries()].sort((a, b) => a[0] - b[0]).map(([le, count]) => ({ le, count }))
}

/**
 * The bucket-wise increase between two scrapes of the same histogram (buckets missing in one scrape are left out).
 *
 * @since 0.1.0
 * @category arithmetic
 */
export const bucketIncrease = (before: ReadonlyArray<Bucket>, after: ReadonlyArray<Bucket>): Array<Bucket> => {
  const previous = new Map(before.map((bucket) => [bucket.le, bucket.count]))
  const out: Array<Bucket> = []
  for (const bucket of after) {
    const delta = increase(previous.get(bucket.le), bucket.count)
    if (delta !== undefined) out.push({ le: bucket.le, count: delta })
  }
  return out
}

/**
 * The `q`-quantile of cumulative buckets, as PromQL's `histogram_quantile`: linear interpolation inside the bucket
 * the rank falls in; the lowest bucket interpolates from 0 (when its bound is positive); a rank in the `+Inf` bucket
 * answers the largest finite bound. `undefined` when there are no observations.
 *
 * @since 0.1.0
 * @category arithmetic
 */
export const quantile = (q: number, cumulative: ReadonlyArray<Bucket>): number | undefined => {
  const sorted = [...cumulative].sort((a, b) => a.le - b.le)
  const total = sorted.at(-1)?.count ?? 0
  if (sorted.length === 0 || total <= 0 || sorted.at(-1)!.le !== Number.POSITIVE_INFINITY) return undefined
  if (q <= 0) return 0
  if (q >= 1) q = 1
  const rank = q * total
  let index = sorted.findIndex((bucket) => bucket.count >= rank)
  if (index === -1) index = sorted.length - 1
  const bucket = sorted[index]!
  if (bucket.le === Number.POSITIVE_INFINITY) return sorted.length > 1 ? sorted[sorted.length - 2]!.le : undefined
  const lower = index === 0 ? (bucket.le > 0 ? 0 : bucket.le) : sorted[index - 1]!.le
  const below = index === 0 ? 0 : sorted[index - 1]!.count
  const inBucket = bucket.count - below
  if (inBucket <= 0) return bucket.le
  return lower + (bucket.le - lower) * ((rank - below) / inBucket)
}
