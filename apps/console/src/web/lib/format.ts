/**
 * How the console writes numbers, sizes and times.
 *
 * @since 0.1.0
 */

const numberFormat = new Intl.NumberFormat("en", { maximumFractionDigits: 2 })

/**
 * A number with at most two decimals, `—` when unknown.
 *
 * @since 0.1.0
 * @category formatting
 */
export const number = (value: number | undefined | null): string =>
  value === undefined || value === null || Number.isNaN(value) ? "—" : numberFormat.format(value)

/**
 * A ratio as a percentage.
 *
 * @since 0.1.0
 * @category formatting
 */
export const percent = (ratio: number | undefined | null): string =>
  ratio === undefined || ratio === null || Number.isNaN(ratio) ? "—" : `${numberFormat.format(ratio * 100)} %`

/**
 * Seconds as milliseconds.
 *
 * @since 0.1.0
 * @category formatting
 */
export const millis = (seconds: number | undefined | null): string =>
  seconds === undefined || seconds === null || Number.isNaN(seconds) ? "—" : `${numberFormat.format(seconds * 1000)} ms`

/**
 * Bytes in B, KiB, MiB or GiB.
 *
 * @since 0.1.0
 * @category formatting
 */
export const bytes = (value: number | undefined | null): string => {
  if (value === undefined || value === null || Number.isNaN(value)) return "—"
  const units = ["B", "KiB", "MiB", "GiB", "TiB"]
  let n = value
  let unit = 0
  while (Math.abs(n) >= 1024 && unit < units.length - 1) {
    n /= 1024
    unit++
  }
  return `${numberFormat.format(n)} ${units[unit]}`
}

/**
 * An instant (ISO string, epoch milliseconds or Date) in UTC, to the second: `2026-12-04 23:48:06 UTC`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const time = (value: string | number | Date | undefined | null): string => {
  if (value === undefined || value === null) return "—"
  const date = value instanceof Date ? value : new Date(value)
  if (Number.isNaN(date.getTime())) return String(value)
  return `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`
}

/**
 * A duration in milliseconds, roughly: `4.2 s`, `3 min 20 s`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const duration = (ms: number | undefined | null): string => {
  if (ms === undefined || ms === null || Number.isNaN(ms)) return "—"
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${numberFormat.format(ms / 1000)} s`
  const minutes = Math.floor(ms / 60_000)
  const seconds = Math.round((ms % 60_000) / 1000)
  return minutes < 60 ? `${minutes} min ${seconds} s` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`
}

/**
 * The value of a `datetime-local` input (local time) as an ISO instant, or `undefined` when empty or invalid.
 *
 * @since 0.1.0
 * @category parsing
 */
export const localInputToIso = (value: string): string | undefined => {
  if (value === "") return undefined
  const date = new Date(value)
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString()
}

/**
 * An ISO instant as the value of a `datetime-local` input (local time).
 *
 * @since 0.1.0
 * @category formatting
 */
export const isoToLocalInput = (iso: string | undefined | null): string => {
  if (iso === undefined || iso === null || iso === "") return ""
  const date = new Date(iso)
  if (Number.isNaN(date.getTime())) return ""
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60_000)
  return local.toISOString().slice(0, 19)
}
