/**
 * CPU-bound work cut into slices so that it does not hold the event loop: the work is a generator that yields at
 * cheap checkpoints; run synchronously it ignores them, run as an Effect it gives the event loop back (I/O, timers,
 * other fibers) whenever a slice has lasted `maxBlockingMillis`. The result is the same either way: only the points
 * where the loop gets control change.
 *
 * @internal
 */
import { Effect } from "effect"

/** A computation with checkpoints (`yield`) and a result. */
export type Steps<A> = Generator<void, A, void>

/** Runs every step at once. */
export const runSync = <A>(steps: Steps<A>): A => {
  for (;;) {
    const step = steps.next()
    if (step.done === true) return step.value
  }
}

/**
 * Runs the steps, yielding to the event loop (`Effect.yieldNow`, a `setImmediate` in Node) whenever `maxBlockingMillis`
 * have passed since the slice began. `0` yields at every checkpoint.
 */
export const runSliced = <A>(make: () => Steps<A>, maxBlockingMillis: number): Effect.Effect<A> =>
  Effect.suspend(() => {
    const steps = make()
    const slice = (): Effect.Effect<A> => {
      const deadline = performance.now() + maxBlockingMillis
      for (;;) {
        const step = steps.next()
        if (step.done === true) return Effect.succeed(step.value)
        if (performance.now() >= deadline) return Effect.andThen(Effect.yieldNow, Effect.suspend(slice))
      }
    }
    return slice()
  })

/** The default longest slice: well under the 50 ms a liveness probe may wait. */
export const defaultMaxBlockingMillis = 10
