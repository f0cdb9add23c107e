/**
 * The statistics every benchmark prints: the median of paired rounds with their spread, and a goal's verdict.
 *
 * A goal is "met" only when the worse half of the rounds meets it, read on that half's median: the paired values
 * (one per round, e.g. ours / peer) are sorted from worst to best, the worse ⌈n/2⌉ kept, and their median (the lower
 * quartile when higher is better) must meet the goal. With at least 5 rounds; fewer rounds are "not enough rounds".
 * The count of single rounds that meet it is printed beside the verdict.
 */

/** The median (the upper one of an even count). */
export const median = (xs: ReadonlyArray<number>): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

/** The value at quantile `q` (0..1), nearest rank. */
export const quantile = (xs: ReadonlyArray<number>, q: number): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))]!
}

/** Median, minimum and maximum of a sample. */
export interface Spread {
  readonly median: number
  readonly min: number
  readonly max: number
  readonly n: number
}

export const spread = (xs: ReadonlyArray<number>): Spread => ({
  median: median(xs),
  min: Math.min(...xs),
  max: Math.max(...xs),
  n: xs.length
})

/** A number with a fixed count of decimals, or grouped thousands when `digits` is 0. */
export const num = (n: number, digits = 0): string =>
  digits === 0 ? Math.round(n).toLocaleString("en-US") : n.toFixed(digits)

/** "median (min–max)". */
export const show = (xs: ReadonlyArray<number>, digits = 0, suffix = ""): string => {
  if (xs.length === 0) return "-"
  const s = spread(xs)
  return `${num(s.median, digits)}${suffix} (${num(s.min, digits)}–${num(s.max, digits)})`
}

/** "median (min–max)" of percentages, from fractions (0.05 → 5.0%). */
export const showPercent = (xs: ReadonlyArray<number>, digits = 1): string =>
  xs.length === 0 ? "-" : show(xs.map((x) => x * 100), digits, "%")

/** Whether higher or lower values of a paired measure are better. */
export type Direction = "higher" | "lower"

/** The verdict on a goal over paired rounds. */
export interface Verdict {
  readonly met: boolean
  /** The median of the worse half of the rounds: the figure the verdict rests on. */
  readonly worseHalf: number
  readonly roundsMeeting: number
  readonly rounds: number
}

/**
 * Judges `goal` (e.g. `(ratio) => ratio >= 1`) on the paired values of the rounds, `better` telling which way is
 * better.
 */
export const verdict = (
  values: ReadonlyArray<number>,
  goal: (value: number) => boolean,
  better: Direction
): Verdict => {
  const worstFirst = [...values].sort((a, b) => better === "higher" ? a - b : b - a)
  const worse = worstFirst.slice(0, Math.ceil(values.length / 2))
  const worseHalf = worse[Math.floor((worse.length - 1) / 2)]!
  return {
    met: values.length >= 5 && goal(worseHalf),
    worseHalf,
    roundsMeeting: values.filter(goal).length,
    rounds: values.length
  }
}

/** "met" / "not met" with the worse half's median and the rounds that met it, e.g. "met (worse half 1.21; 7/7)". */
export const showVerdict = (v: Verdict, format: (value: number) => string): string =>
  v.rounds < 5
    ? `not judged: ${v.rounds} rounds (< 5)`
    : `${v.met ? "met" : "NOT MET"} (worse half ${format(v.worseHalf)}; ${v.roundsMeeting}/${v.rounds} rounds)`

/** The legend printed under each table that carries a verdict. */
export const verdictLegend =
  "goal verdicts: met only when the median of the worse half of the paired rounds meets the goal (at least 5 rounds);" +
  " n/m: single rounds that meet it"
