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
export interface Outcome {
  readonly allowed: boolean
  readonly remaining: number
  readonly resetAfterMillis: number
  readonly retryAfterMillis: number
  /** the state to store when the whole request is admitted */
  readonly next: State
}

/** @internal */
export const tokenBucket = (
  state: State | undefined,
  limit: number,
  window: number,
  cost: number,
  now: number
): Outcome => {
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
    return {
      allowed: true,
      remaining: Math.floor(left / window),
      resetAfterMillis: reset,
      retryAfterMillis: 0,
      next: { a: left, b: now, c: 0, expiresAt: now + reset }
    }
  }
  const reset = Math.ceil((full - level) / limit)
  return {
    allowed: false,
    remaining: Math.floor(level / window),
    resetAfterMillis: reset,
    retryAfterMillis: need > full ? window : Math.ceil((need - level) / limit),
    next: { a: level, b: now, c: 0, expiresAt: now + reset }
  }
}

/** @internal */
export const slidingWindow = (
  state: State | undefined,
  limit: number,
  window: number,
  cost: number,
  now: number
): Outcome => {
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
  return {
    allowed,
    remaining: Math.max(0, limit - used),
    resetAfterMillis: reset,
    retryAfterMillis: retry,
    next: { a: index, b: cur, c: prev, expiresAt: now + reset }
  }
}
