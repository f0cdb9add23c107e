/**
 * The two algorithms in exact integer arithmetic, shared by the memory store (and mirrored line by line by the Redis
 * Lua script).
 *
 * Token bucket: one token is `window` units; the level refills by `limit` units per millisecond, capped at
 * `limit * window`. A request of `cost` needs `cost * window` units. Over t ms of continuous demand a bucket of
 * capacity C admits exactly C + ⌊C·t/window⌋ requests, with no rounding drift.
 *
 * Sliding window counter: windows aligned to multiples of `window`; the weighted count is
 * `prev * (window - elapsed) / window + cur`, compared multiplied through by `window`.
 *
 * Both write their outcome into a caller-owned `Outcome` (the memory store reuses one for single-check decisions, so
 * a decision allocates nothing but its result).
 *
 * @internal
 */

/** @internal */
export interface State {
  /** token bucket: level; sliding window: window index */
  a: number
  /** token bucket: last refill time; sliding window: current count */
  b: number
  /** sliding window: previous count */
  c: number
  /** when the state is equivalent to a fresh one and may be dropped */
  expiresAt: number
}

/** @internal */
export interface Outcome extends State {
  allowed: boolean
  remaining: number
  resetAfterMillis: number
  retryAfterMillis: number
}

/** @internal */
export const outcome = (): Outcome => ({
  allowed: false,
  remaining: 0,
  resetAfterMillis: 0,
  retryAfterMillis: 0,
  a: 0,
  b: 0,
  c: 0,
  expiresAt: 0
})

/**
 * Decides into `out`: the result, and in `a`, `b`, `c`, `expiresAt` the state to store when the whole request is
 * admitted.
 *
 * @internal
 */
const tokenBucket = (
  state: State | undefined,
  limit: number,
  window: number,
  cost: number,
  now: number,
  out: Outcome
): void => {
  const full = limit * window
  let level = full
  if (state !== undefined) {
    const elapsed = now > state.b ? now - state.b : 0
    level = Math.min(full, state.a + elapsed * limit)
  }
  const need = cost * window
  if (level >= need) {
    const left = level - need
    const reset = Math.ceil((full - left) / limit)
    out.allowed = true
    out.remaining = Math.floor(left / window)
    out.resetAfterMillis = reset
    out.retryAfterMillis = 0
    out.a = left
    out.expiresAt = now + reset
  } else {
    const reset = Math.ceil((full - level) / limit)
    out.allowed = false
    out.remaining = Math.floor(level / window)
    out.resetAfterMillis = reset
    out.retryAfterMillis = need > full ? window : Math.ceil((need - level) / limit)
    out.a = level
    out.expiresAt = now + reset
  }
  out.b = now
  out.c = 0
}

const slidingWindow = (
  state: State | undefined,
  limit: number,
  window: number,
  cost: number,
  now: number,
  out: Outcome
): void => {
  const index = Math.floor(now / window)
  let cur = 0
  let prev = 0
  if (state !== undefined) {
    if (state.a === index) {
      cur = state.b
      prev = state.c
    } else if (state.a === index - 1) {
      prev = state.b
    }
  }
  const elapsed = now - index * window
  const rest = window - elapsed
  const allowed = prev * rest + (cur + cost) * window <= limit * window
  if (allowed) cur += cost
  const used = Math.ceil((prev * rest + cur * window) / window)
  const reset = cur > 0 ? rest + window : prev > 0 ? rest : 0
  let retry = 0
  if (!allowed) {
    if (cost > limit) {
      retry = rest + window
    } else if (cur + cost <= limit) {
      // Within this window, once the previous window's weight has decayed enough.
      retry = Math.max(0, Math.ceil(rest - ((limit - cur - cost) * window) / prev))
    } else {
      // Next window: the current count becomes the previous one.
      retry = rest + Math.max(0, Math.ceil(window - ((limit - cost) * window) / cur))
    }
  }
  out.allowed = allowed
  out.remaining = Math.max(0, limit - used)
  out.resetAfterMillis = reset
  out.retryAfterMillis = retry
  out.a = index
  out.b = cur
  out.c = prev
  out.expiresAt = now + reset
}

/** @internal */
export const run = (
  algorithm: "token-bucket" | "sliding-window",
  state: State | undefined,
  limit: number,
  window: number,
  cost: number,
  now: number,
  out: Outcome
): void =>
  algorithm === "token-bucket"
    ? tokenBucket(state, limit, window, cost, now, out)
    : slidingWindow(state, limit, window, cost, now, out)
