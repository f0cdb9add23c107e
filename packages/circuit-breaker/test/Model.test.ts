/**
 * Random sequences of call outcomes and clock steps, run against the real breaker (TestClock) and against a small
 * reference model written independently of `internal/machine.ts`.
 */
import { assert, describe, it } from "@effect/vitest"
import { CircuitBreaker } from "@ouroboros/circuit-breaker"
import { Effect, References, Result } from "effect"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"

type Policy =
  | { readonly kind: "consecutive"; readonly threshold: number }
  | {
    readonly kind: "count"
    readonly size: number
    readonly threshold: number
    readonly minimumThroughput: number
  }
  | {
    readonly kind: "time"
    readonly durationMs: number
    readonly buckets: number
    readonly threshold: number
    readonly minimumThroughput: number
  }

interface Scenario {
  readonly policy: Policy
  readonly openMs: number
  readonly maxFactor: number
  readonly successThreshold: number
  readonly steps: ReadonlyArray<{ readonly call: boolean } | { readonly advance: number }>
}

type Observation = "ran" | `rejected:${number}`

/** The reference: obvious code over the full list of outcomes. */
class Model {
  status: "closed" | "open" | "half-open" = "closed"
  since = 0
  openUntil = 0
  attempts = 0
  lastOpenMs = 0
  successes = 0
  outcomes: Array<{ readonly at: number; readonly failed: boolean }> = []
  constructor(readonly scenario: Scenario) {}

  private breakMs(attempts: number): number {
    const { maxFactor, openMs } = this.scenario
    return Math.min(openMs * maxFactor, openMs * 2 ** (attempts - 1))
  }
  private open(now: number, fromClosed: boolean) {
    const streak = fromClosed && now - this.since >= this.lastOpenMs ? 0 : this.attempts
    this.attempts = streak + 1
    this.lastOpenMs = this.breakMs(this.attempts)
    this.status = "open"
    this.since = now
    this.openUntil = now + this.lastOpenMs
    this.outcomes = []
  }
  private trips(now: number): boolean {
    const policy = this.scenario.policy
    if (policy.kind === "consecutive") {
      let run = 0
      for (let i = this.outcomes.length - 1; i >= 0 && this.outcomes[i]!.failed; i--) run++
      return run >= policy.threshold
    }
    let window = this.outcomes
    if (policy.kind === "count") window = window.slice(-policy.size)
    else {
      const bucketMs = Math.ceil(policy.durationMs / policy.buckets)
      const oldest = Math.floor(now / bucketMs) - policy.buckets + 1
      window = window.filter((o) => Math.floor(o.at / bucketMs) >= oldest)
    }
    if (window.length < policy.minimumThroughput) return false
    return window.filter((o) => o.failed).length / window.length >= policy.threshold
  }

  call(now: number, failed: boolean): Observation {
    if (this.status === "open") {
      if (now < this.openUntil) return `rejected:${this.openUntil - now}`
      this.status = "half-open"
      this.since = now
      this.successes = 0
    }
    if (this.status === "half-open") {
      if (failed) {
        this.open(now, false)
      } else if (++this.successes >= this.scenario.successThreshold) {
        this.status = "closed"
        this.since = now
        this.outcomes = []
      }
      return "ran"
    }
    this.outcomes.push({ at: now, failed })
    if (this.trips(now)) this.open(now, true)
    return "ran"
  }
}

const policyArb: fc.Arbitrary<Policy> = fc.oneof(
  fc.record({ kind: fc.constant("consecutive" as const), threshold: fc.integer({ min: 1, max: 4 }) }),
  fc.record({
    kind: fc.constant("count" as const),
    size: fc.integer({ min: 1, max: 6 }),
    threshold: fc.constantFrom(0.25, 0.5, 0.75, 1),
    minimumThroughput: fc.integer({ min: 1, max: 6 })
  }),
  fc.record({
    kind: fc.constant("time" as const),
    durationMs: fc.integer({ min: 500, max: 5_000 }),
    buckets: fc.integer({ min: 1, max: 10 }),
    threshold: fc.constantFrom(0.25, 0.5, 0.75, 1),
    minimumThroughput: fc.integer({ min: 1, max: 6 })
  })
)

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  policy: policyArb,
  openMs: fc.integer({ min: 100, max: 2_000 }),
  maxFactor: fc.constantFrom(1, 2, 4, 8),
  successThreshold: fc.integer({ min: 1, max: 3 }),
  steps: fc.array(
    fc.oneof(
      { weight: 3, arbitrary: fc.record({ call: fc.boolean() }) },
      { weight: 1, arbitrary: fc.record({ advance: fc.integer({ min: 0, max: 3_000 }) }) }
    ),
    { maxLength: 60 }
  )
})

const tripPolicy = (policy: Policy): CircuitBreaker.TripPolicy =>
  policy.kind === "consecutive"
    ? CircuitBreaker.consecutive(policy.threshold)
    : CircuitBreaker.failureRate({
      threshold: policy.threshold,
      minimumThroughput: policy.minimumThroughput,
      window: policy.kind === "count"
        ? CircuitBreaker.countWindow(policy.size)
        : CircuitBreaker.timeWindow(policy.durationMs, policy.buckets)
    })

const runScenario = (scenario: Scenario) =>
  Effect.gen(function*() {
    const breaker = yield* CircuitBreaker.make({
      tripPolicy: tripPolicy(scenario.policy),
      openDuration: scenario.openMs,
      maxOpenDuration: scenario.openMs * scenario.maxFactor,
      backoffFactor: 2,
      halfOpenMaxCalls: 3,
      successThreshold: scenario.successThreshold
    })
    const model = new Model(scenario)
    let now = 0
    for (const [index, step] of scenario.steps.entries()) {
      if ("advance" in step) {
        yield* TestClock.adjust(step.advance)
        now += step.advance
        continue
      }
      const result = yield* Effect.result(breaker.execute(step.call ? Effect.fail("boom") : Effect.void))
      const observed: Observation = Result.isFailure(result) && result.failure instanceof CircuitBreaker.CircuitOpen
        ? `rejected:${result.failure.retryAfter}`
        : "ran"
      const expected = model.call(now, step.call)
      const state = yield* breaker.state
      if (observed !== expected || state !== model.status) {
        return `step ${index}: observed ${observed}/${state}, model ${expected}/${model.status}`
      }
    }
    return undefined
  }).pipe(Effect.provideService(References.MinimumLogLevel, "None"), Effect.provide(TestClock.layer()))

describe("CircuitBreaker against a reference model", () => {
  it("agrees on every call and state for random outcomes and clock steps", async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (scenario) => {
        const mismatch = await Effect.runPromise(runScenario(scenario))
        assert.isUndefined(mismatch)
      }),
      { numRuns: 200 }
    )
  })
})
