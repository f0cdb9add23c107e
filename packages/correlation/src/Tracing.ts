/**
 * OpenTelemetry wiring: the Effect tracer backed by the OpenTelemetry SDK, exporting over OTLP/HTTP when the standard
 * `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and an in-memory exporter for tests.
 *
 * Without an endpoint no SDK is installed: Effect's own tracer still gives every request a trace id and span ids
 * (propagated and logged), nothing is exported.
 *
 * @since 0.1.0
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  type InMemorySpanExporter,
  ParentBasedSampler,
  type Sampler,
  SimpleSpanProcessor,
  type SpanProcessor,
  TraceIdRatioBasedSampler
} from "@opentelemetry/sdk-trace-base"
import { Config, Effect, Layer, Option } from "effect"

/**
 * The sampler names of `OTEL_TRACES_SAMPLER` this layer understands.
 *
 * @since 0.1.0
 * @category models
 */
export type SamplerName =
  | "always_on"
  | "always_off"
  | "traceidratio"
  | "parentbased_always_on"
  | "parentbased_always_off"
  | "parentbased_traceidratio"

/**
 * The standard OpenTelemetry environment variables this package reads:
 *
 * - `OTEL_EXPORTER_OTLP_ENDPOINT`: the OTLP/HTTP base URL; traces go to `<endpoint>/v1/traces`. Unset: no export.
 * - `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: the full OTLP/HTTP traces URL, taking precedence over the base URL.
 * - `OTEL_SERVICE_NAME`: `service.name` of the exported resource; default `ouroboros`.
 * - `OTEL_TRACES_SAMPLER`: the sampler, as in the OpenTelemetry specification; default `parentbased_always_on`.
 * - `OTEL_TRACES_SAMPLER_ARG`: the ratio of the `traceidratio` samplers, 0 to 1; default 1.
 *
 * @since 0.1.0
 * @category config
 */
export const config = Config.all({
  endpoint: Config.option(Config.String("OTEL_EXPORTER_OTLP_ENDPOINT")),
  tracesEndpoint: Config.option(Config.String("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")),
  serviceName: Config.String("OTEL_SERVICE_NAME").pipe(Config.withDefault("ouroboros")),
  sampler: Config.Literals(
    [
      "always_on",
      "always_off",
      "traceidratio",
      "parentbased_always_on",
      "parentbased_always_off",
      "parentbased_traceidratio"
    ],
    "OTEL_TRACES_SAMPLER"
  ).pipe(Config.withDefault<SamplerName>("parentbased_always_on")),
  samplerArg: Config.Number("OTEL_TRACES_SAMPLER_ARG").pipe(Config.withDefault(1))
})

/**
 * Builds the sampler named by `OTEL_TRACES_SAMPLER`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeSampler = (name: SamplerName, ratio: number): Sampler => {
  const clamped = Math.min(1, Math.max(0, Number.isFinite(ratio) ? ratio : 1))
  switch (name) {
    case "always_on":
      return new AlwaysOnSampler()
    case "always_off":
      return new AlwaysOffSampler()
    case "traceidratio":
      return new TraceIdRatioBasedSampler(clamped)
    case "parentbased_always_on":
      return new ParentBasedSampler({ root: new AlwaysOnSampler() })
    case "parentbased_always_off":
      return new ParentBasedSampler({ root: new AlwaysOffSampler() })
    case "parentbased_traceidratio":
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(clamped) })
  }
}

/**
 * Options of {@link layerWith}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly serviceName: string
  readonly serviceVersion?: string | undefined
  readonly spanProcessor: SpanProcessor | undefined
  readonly sampler?: Sampler | undefined
}

/**
 * The tracer with an explicit span processor (an OTLP exporter, an in-memory one, a no-op one for benchmarks).
 * Flushes and shuts the provider down when the layer is released, bounded by 1 s so that the flush fits the
 * shutdown budget.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (options: Options): Layer.Layer<never> =>
  options.spanProcessor === undefined ? Layer.empty : NodeSdk.layer(() => ({
    resource: {
      serviceName: options.serviceName,
      ...(options.serviceVersion !== undefined ? { serviceVersion: options.serviceVersion } : {})
    },
    spanProcessor: options.spanProcessor,
    tracerConfig: { sampler: options.sampler ?? new ParentBasedSampler({ root: new AlwaysOnSampler() }) },
    shutdownTimeout: "1 second"
  }))

/**
 * The production layer, from the standard `OTEL_*` variables: OTLP/HTTP export through a batch processor when an
 * endpoint is set, nothing otherwise.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<never, Config.ConfigError> = Layer.unwrap(
  Effect.map(config, (c) => {
    const url = Option.orElse(
      c.tracesEndpoint,
      () => Option.map(c.endpoint, (endpoint) => `${endpoint.replace(/\/+$/, "")}/v1/traces`)
    )
    return Option.match(url, {
      onNone: () => Layer.empty,
      onSome: (url) =>
        layerWith({
          serviceName: c.serviceName,
          spanProcessor: new BatchSpanProcessor(new OTLPTraceExporter({ url })),
          sampler: makeSampler(c.sampler, c.samplerArg)
        })
    })
  })
)

/**
 * A tracer that records every span, synchronously, into the given in-memory exporter: for tests.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base"
 * import { Tracing } from "@ouroboros/correlation"
 * const exporter = new InMemorySpanExporter()
 * const TestTracing = Tracing.layerTest(exporter)
 */
export const layerTest = (exporter: InMemorySpanExporter): Layer.Layer<never> =>
  layerWith({ serviceName: "ouroboros-test", spanProcessor: new SimpleSpanProcessor(exporter) })
