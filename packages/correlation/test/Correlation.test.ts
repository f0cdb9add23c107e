import { assert, describe, it } from "@effect/vitest"
import { RequestContext } from "@ouroboros/kernel"
import { Arbitrary, Effect, Option, Schema, Tracer } from "effect"
import { Correlation } from "../src/index.js"

const matching = (pattern: RegExp) => Arbitrary.schema(Schema.String.check(Schema.isPattern(pattern)))
const validId = matching(/^[A-Za-z0-9._:-]{1,128}$/)
const hex = (length: number) => matching(new RegExp(`^[0-9a-f]{${length}}$`))
const notZeros = Arbitrary.filter((s: string) => !/^0+$/.test(s))
const byte = Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 255 })))
const anyString = Arbitrary.schema(Schema.String.check(Schema.isMaxLength(300)))

describe("correlation id", () => {
  it.prop("a valid id is echoed unchanged", [validId], ([id]) => {
    assert.strictEqual(Correlation.fromHeader(id), id)
  })

  it.prop(
    "anything else is replaced by a fresh valid id",
    [anyString.pipe(Arbitrary.filter((s) => !/^[A-Za-z0-9._:-]{1,128}$/.test(s)))],
    ([bad]) => {
      const id = Correlation.fromHeader(bad)
      assert.notStrictEqual(id, bad)
      assert.isTrue(Correlation.isValid(id))
    }
  )

  it("boundaries: 128 characters kept, 129 replaced, missing minted, repeated header replaced", () => {
    const max = "a".repeat(128)
    assert.strictEqual(Correlation.fromHeader(max), max)
    assert.notStrictEqual(Correlation.fromHeader(max + "a"), max + "a")
    assert.isTrue(Correlation.isValid(Correlation.fromHeader(undefined)))
    assert.isTrue(Correlation.isValid(Correlation.fromHeader(["a", "b"])))
    assert.notStrictEqual(Correlation.fromHeader(undefined), Correlation.fromHeader(undefined))
  })
})

describe("traceparent", () => {
  it.prop(
    "format then parse is the identity on valid contexts",
    [hex(32).pipe(notZeros), hex(16).pipe(notZeros), byte],
    ([traceId, parentId, flags]) => {
      const header = Correlation.formatTraceParent({ traceId, parentId, flags })
      const parsed = Correlation.parseTraceParent(header)
      assert.deepStrictEqual(parsed, Option.some({ version: "00", traceId, parentId, flags }))
      assert.strictEqual(Correlation.formatTraceParent(Option.getOrThrow(parsed)), header)
    }
  )

  it("the specification example parses", () => {
    const parsed = Correlation.parseTraceParent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    assert.deepStrictEqual(
      parsed,
      Option.some({
        version: "00",
        traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
        parentId: "00f067aa0ba902b7",
        flags: 1
      })
    )
  })

  it("a future version is parsed by its prefix", () => {
    const parsed = Correlation.parseTraceParent(
      "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future"
    )
    assert.isTrue(Option.isSome(parsed))
  })

  it("invalid headers are rejected", () => {
    const invalid = [
      undefined,
      "",
      "garbage",
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // forbidden version
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero parent id
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // upper case
      "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", // short trace id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g", // bad flags
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", // extra content on version 00
      "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", // future version without a dash
      "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01"
    ]
    for (const header of invalid) {
      assert.isTrue(Option.isNone(Correlation.parseTraceParent(header)), String(header))
    }
  })

  it("tracestate: valid lists kept (normalised), invalid ones dropped", () => {
    assert.deepStrictEqual(
      Correlation.parseTraceState("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE"),
      Option.some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
    )
    assert.deepStrictEqual(Correlation.parseTraceState("tenant@system=1"), Option.some("tenant@system=1"))
    assert.isTrue(Option.isNone(Correlation.parseTraceState("Upper=1")))
    assert.isTrue(Option.isNone(Correlation.parseTraceState("a=1,a=2")))
    assert.isTrue(Option.isNone(Correlation.parseTraceState("novalue")))
    assert.isTrue(Option.isNone(Correlation.parseTraceState(Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(","))))
  })

  it("fromHeaders ignores tracestate when traceparent is invalid", () => {
    assert.isTrue(Option.isNone(Correlation.fromHeaders({ traceparent: "bad", tracestate: "a=1" })))
    const trace = Correlation.fromHeaders({
      traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
      tracestate: "a=1"
    })
    assert.isTrue(Option.isSome(trace))
    const value = Option.getOrThrow(trace)
    assert.strictEqual(value.parent.traceId, "4bf92f3577b34da6a3ce929d0e0e4736")
    assert.isFalse(value.parent.sampled)
    assert.deepStrictEqual(value.traceState, Option.some("a=1"))
  })
})

describe("outgoingHeaders", () => {
  it.effect("carries the current span, the tracestate and the correlation id", () =>
    Effect.gen(function*() {
      const headers = yield* Correlation.outgoingHeaders.pipe(
        Effect.withSpan("call"),
        Effect.provideService(Correlation.currentTraceState, Option.some("a=1")),
        RequestContext.withCorrelationId("req-1"),
        Effect.withParentSpan(
          Tracer.externalSpan({ traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7" })
        )
      )
      const parsed = Option.getOrThrow(Correlation.parseTraceParent(headers["traceparent"]))
      assert.strictEqual(parsed.traceId, "4bf92f3577b34da6a3ce929d0e0e4736")
      assert.notStrictEqual(parsed.parentId, "00f067aa0ba902b7") // the child span, not the remote parent
      assert.strictEqual(headers["tracestate"], "a=1")
      assert.strictEqual(headers["x-correlation-id"], "req-1")
    }))

  it.effect("is empty outside a request and a span", () =>
    Effect.map(Correlation.outgoingHeaders, (headers) => assert.deepStrictEqual(headers, {})))
})
