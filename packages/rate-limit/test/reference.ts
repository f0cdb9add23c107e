/**
 * Reference models, written differently from the implementation: the token bucket as GCRA (a theoretical arrival
 * time), the sliding window from the full history of fixed-window counts.
 */
export class GcraModel {
  private tat = -Infinity
  constructor(readonly limit: number, readonly window: number) {}
  /** Remaining after a hypothetical admission of `cost` at `now`, or undefined when it does not fit. */
  check(now: number, cost: number): { allowed: boolean; remaining: number } {
    const t = now * this.limit
    const start = Math.max(this.tat, t)
    const next = start + cost * this.window
    const allowed = next - t <= this.limit * this.window
    const used = (allowed ? next : start) - t
    return { allowed, remaining: Math.floor((this.limit * this.window - used) / this.window) }
  }
  commit(now: number, cost: number): void {
    this.tat = Math.max(this.tat, now * this.limit) + cost * this.window
  }
}

export class SlidingModel {
  private readonly counts = new Map<number, number>()
  constructor(readonly limit: number, readonly window: number) {}
  check(now: number, cost: number): { allowed: boolean; remaining: number } {
    const index = Math.floor(now / this.window)
    const elapsed = now - index * this.window
    const prev = this.counts.get(index - 1) ?? 0
    const cur = this.counts.get(index) ?? 0
    const weighted = (c: number) => prev * (this.window - elapsed) + c * this.window
    const allowed = weighted(cur + cost) <= this.limit * this.window
    const used = Math.ceil(weighted(allowed ? cur + cost : cur) / this.window)
    return { allowed, remaining: Math.max(0, this.limit - used) }
  }
  commit(now: number, cost: number): void {
    const index = Math.floor(now / this.window)
    this.counts.set(index, (this.counts.get(index) ?? 0) + cost)
  }
}
