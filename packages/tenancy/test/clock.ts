/**
 * A clock for tests over real databases: the time that `Clock.currentTimeMillis` reads is set by the test, while
 * sleeps and timeouts (the connection pool's) keep the live clock's timers. `TestClock` would also move the pool's
 * timers, and a jump of decades fires them all.
 */
import { Clock, Effect } from "effect"

export interface SetClock {
  /** Sets the time read by the effect given to `use`. */
  readonly set: (millis: number) => void
  readonly adjust: (millis: number) => void
  /** Runs `effect` with this clock. */
  readonly use: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

export const make = (start: number): SetClock => {
  let now = start
  return {
    set: (millis) => {
      now = millis
    },
    adjust: (millis) => {
      now += millis
    },
    use: (effect) =>
      Effect.flatMap(Effect.service(Clock.Clock), (live) => {
        const clock: Clock.Clock = Object.create(live)
        Object.defineProperties(clock, {
          currentTimeMillisUnsafe: { value: () => now },
          currentTimeMillis: { value: Effect.sync(() => now) },
          currentTimeNanosUnsafe: { value: () => BigInt(now) * 1_000_000n },
          currentTimeNanos: { value: Effect.sync(() => BigInt(now) * 1_000_000n) }
        })
        return Effect.provideService(effect, Clock.Clock, clock)
      })
  }
}
