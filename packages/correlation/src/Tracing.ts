/**
 * OpenTelemetry wiring: the Effect tracer backed by the OpenTelemetry SDK, exporting over OTLP/HTTP when the standard
 * `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and an in-memory exporter for tests.
 *
 * Without an endpoint no SDK is installed: Effect's own tracer still gives every request a trace id and span ids
 * (propagated and logged), nothing is exported.
 *
 * @since 0.1.0
 */
import { NodeSdk } from "@effect/opentelemetry"
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
 * The standard OpenTelemetry environment variables this package reads.
 *
 * @since 0.1.0
 * @category config
 */
export const config = Config.all({
  endpoint: Config.option(Config.string("OTEL_EXPORTER_OTLP_ENDPOINT")).pipe(
    Config.withDescription("OTLP/HTTP base URL; traces go to <endpoint>/v1/traces. Unset: no export")
  ),
  tracesEndpoint: Config.option(Config.string("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")).pipe(
    Config.withDescription("Full OTLP/HTTP traces URL, taking precedence over OTEL_EXPORTER_OTLP_ENDPOINT")
  ),
  serviceName: Config.string("OTEL_SERVICE_NAME").pipe(
    Config.withDefault("ouroboros"),
    Config.withDescription("service.name of the exported resource")
  ),
  sampler: Config.literal(
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio"
  )("OTEL_TRACES_SAMPLER").pipe(
    Config.withDefault<SamplerName>("parentbased_always_on"),
    Config.withDescription("Sampler, as in the OpenTelemetry specification")
  ),
  samplerArg: Config.number("OTEL_TRACES_SAMPLER_ARG").pipe(
    Config.withDefault(1),
    Config.withDescription("Ratio of the traceidratio samplers, 0 to 1")
  )
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
  options.spanProcessor === undefined ? Layer.empty : Layer.discard(
    NodeSdk.layer(() => ({
      resource: {
        serviceName: options.serviceName,
        ...(options.serviceVersion !== undefined ? { serviceVersion: options.serviceVersion } : {})
      },
      spanProcessor: options.spanProcessor,
      tracerConfig: { sampler: options.sampler ?? new ParentBasedSampler({ root: new AlwaysOnSampler() }) },
      shutdownTimeout: "1 second"
    }))
  )

/**
 * The production layer, from the standard `OTEL_*` variables: OTLP/HTTP export through a batch processor when an
 * endpoint is set, nothing otherwise.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<never, import("effect/ConfigError").ConfigError> = Layer.unwrapEffect(
  Effect.map(config, (c) => {
    const url = Option.orElse(c.tracesEndpoint, () =>
      Option.map(c.endpoint, (endpoint) => `${endpoint.replace(/\/+$/, "")}/v1/traces`))
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
