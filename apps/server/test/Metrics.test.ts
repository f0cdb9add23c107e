import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import * as Metrics from "../src/Metrics.js"

describe("Metrics.render", () => {
  it.effect("renders counters, gauges and histograms in the Prometheus text format", () =>
    Effect.gen(function*() {
      const calls = Metric.counter("test_calls_total", { description: "calls \"seen\"" }).pipe(
        Metric.withAttributes({ breaker: "ollama" })
      )
      const inFlight = Metric.gauge("test_in_flight")
      const latency = Metric.histogram("test_latency_ms", { boundaries: Metric.boundariesFromIterable([10, 100]) })
      yield* Metric.update(calls, 1)
      yield* Metric.update(calls, 1)
      yield* Metric.update(inFlight, 3)
      yield* Metric.update(latency, 42)
      const text = yield* Metrics.render
      // HELP escapes only backslash and line feed (the exposition format); a quote stays as it is.
      assert.include(text, "# HELP test_calls_total calls \"seen\"\n# TYPE test_calls_total counter\n")
      assert.include(text, "test_calls_total{breaker=\"ollama\"} 2\n")
      assert.include(text, "# TYPE test_in_flight gauge\ntest_in_flight 3\n")
      assert.include(text, "test_latency_ms_bucket{le=\"10\"} 0\n")
      assert.include(text, "test_latency_ms_bucket{le=\"100\"} 1\n")
      assert.include(text, "test_latency_ms_bucket{le=\"+Inf\"} 1\n")
      assert.include(text, "test_latency_ms_sum 42\ntest_latency_ms_count 1\n")
    }))
})
