/**
 * Behaviour of the log itself, on the memory store: the bounded queue of `record`, store failures, the backup
 * helper, and the hand-written canonical JSON against the `canonicalize` package.
 */
import { assert, describe, it } from "@effect/vitest"
import { AuditEvent, AuditLog, AuditStore, Checkpoint, Merkle, Verifier } from "@ouroboros/audit"
import canonicalize from "canonicalize"
import { Effect, Logger, Metric, Option, Ref, Stream, Tracer } from "effect"
import fc from "fast-check"
import * as Canonical from "../src/internal/canonical.js"
import { collectLogs, event, gatedStore, keys, openLog, origin } from "./contract.js"

const count = (metric: Metric.Metric<number, { readonly count: number }>) =>
  Effect.map(Metric.value(metric), (state) => Number(state.count))

describe("tracing", () => {
  it.effect("an append is a span of its own, child of the caller's, with the event type", () =>
    Effect.gen(function*() {
      const spans: Array<Tracer.Span> = []
      const tracer = Tracer.make({
        span: (options) => {
          const span = Tracer.nativeTracer.span(options)
          spans.push(span)
          return span
        }
      })
      const log = yield* openLog()
      const handler = yield* Effect.currentSpan.pipe(
        Effect.tap(() => log.append(event({ type: "data.delete" }))),
        Effect.withSpan("handler"),
        Effect.withTracer(tracer)
      )
      const append = spans.find((span) => span.name === "AuditLog.append")
      assert.isDefined(append)
      const parent = Option.getOrUndefined(append!.parent)
      assert.strictEqual(parent?.spanId, handler.spanId)
      assert.strictEqual(append!.attributes.get("audit.type"), "data.delete")
      assert.strictEqual(append!.status._tag, "Ended")
    }).pipe(Effect.provide(AuditStore.layerMemory)))
})

describe("verification on a worker thread", () => {
  it.effect("checks the roots the caller trusts at sizes no checkpoint has, as the single thread does", () =>
    Effect.gen(function*() {
      // One checkpoint at the first commit, none after (the clock does not move), then one at 11.
      const log = yield* openLog({ checkpointInterval: "1 hour" })
      for (let i = 0; i < 11; i++) yield* log.append(event({ resource: { type: "document", id: `d${i}` } }))
      const signed = yield* log.checkpoint
      const store = yield* AuditStore.AuditStore
      const options = {
        verifier: Checkpoint.verifierOf(keys.signer),
        verifierKey: keys.signer.verifierKey,
        origin,
        windowSize: 4,
        trustedRoots: [
          { size: 3, rootHash: new Uint8Array(32) },
          { size: 6, rootHash: new Uint8Array(32) },
          { size: 11, rootHash: new Uint8Array(Buffer.from(signed.rootHash, "base64")) }
        ]
      }
      const serial = yield* Verifier.verifyStore(store, { ...options, parallel: false })
      const parallel = yield* Verifier.verifyStore(store, { ...options, parallel: true })
      assert.deepStrictEqual(parallel, serial)
      assert.deepStrictEqual(serial.problems.map((p) => [p.kind, p.range]), [
        ["RootMismatch", [1, 3]],
        ["RootMismatch", [1, 6]]
      ])
      assert.strictEqual(serial.checkpoints, 2)
    }).pipe(Effect.provide(AuditStore.layerMemory)))
})

describe("record", () => {
  it.effect("a full queue drops reads, counts each one, and says so when it starts and when it ends", () => {
    const logs = collectLogs()
    return Effect.gen(function*() {
      const gated = yield* gatedStore
      const log = yield* openLog({ queueCapacity: 3 }).pipe(Effect.provideService(AuditStore.AuditStore, gated.store))
      const before = yield* count(AuditLog.metrics.dropped)
      // The first read reaches the store and is held there: the writer is stuck in a commit.
      yield* log.record(event({ type: "data.read" }))
      yield* gated.entered
      for (let i = 0; i < 20; i++) yield* log.record(event({ type: "data.read" }))
      const dropped = (yield* count(AuditLog.metrics.dropped)) - before
      assert.isAtLeast(dropped, 1)
      assert.strictEqual(
        logs.messages.filter((m) => m.includes("audit queue is full")).length,
        1,
        logs.messages.join("\n")
      )
      yield* gated.release
      const last = yield* log.append(event())
      // Every read was either written or counted as dropped; none vanished.
      assert.strictEqual(last.index + 1, 1 + 20 - dropped + 1)
      // One more append: the writer has finished the round that took the queued reads, and reported them.
      yield* log.append(event())
      assert.isTrue(
        logs.messages.some((m) => m.includes(`${dropped} read event(s) were dropped`)),
        logs.messages.join("\n")
      )
    }).pipe(Effect.provideService(Logger.CurrentLoggers, logs.loggers), Effect.provide(AuditStore.layerMemory))
  })

  it.effect("a store failure fails the appends of the group with AuditUnavailable; the next group succeeds", () =>
    Effect.gen(function*() {
      const store = yield* AuditStore.AuditStore
      const broken = yield* Ref.make(true)
      const flaky = AuditStore.AuditStore.of({
        ...store,
        append: (batch) =>
          Effect.flatMap(Ref.get(broken), (isBroken) =>
            isBroken
              ? Effect.fail(new AuditStore.AuditStoreError({ operation: "append", message: "disk full" }))
              : store.append(batch))
      })
      const log = yield* openLog().pipe(Effect.provideService(AuditStore.AuditStore, flaky))
      const failed = yield* count(AuditLog.metrics.failed)
      const error = yield* Effect.flip(log.append(event()))
      assert.strictEqual(error._tag, "AuditUnavailable")
      assert.include(error.detail, "disk full")
      assert.strictEqual((yield* count(AuditLog.metrics.failed)) - failed, 1)
      yield* Ref.set(broken, false)
      const ok = yield* log.append(event())
      assert.strictEqual(ok.index, 0)
      assert.isTrue((yield* log.verify()).ok)
    }).pipe(Effect.provide(AuditStore.layerMemory)))
})

describe("export", () => {
  it.effect("a line that is not an export line is ExportMalformed, naming the line", () =>
    Effect.gen(function*() {
      const options = { verifier: Checkpoint.verifierOf(keys.signer), verifierKey: keys.signer.verifierKey, origin }
      const notHeader = yield* Effect.flip(Verifier.verifyExport(Stream.fromIterable(["{}"]), options))
      assert.strictEqual(notHeader.line, 1)
      const header = JSON.stringify({ format: "ouroboros-audit-export", version: 1, origin, verifierKey: "", size: 1 })
      const garbage = yield* Effect.flip(Verifier.verifyExport(Stream.fromIterable([header, "not json"]), options))
      assert.strictEqual(garbage._tag, "ExportMalformed")
      assert.strictEqual(garbage.line, 2)
      const empty = yield* Verifier.verifyExport(Stream.fromIterable([header]), options)
      assert.isTrue(empty.ok)
      assert.strictEqual(empty.size, 0)
    }))
})

describe("helpers", () => {
  it("backupEvent maps the backup package's operations", () => {
    const restore = AuditLog.backupEvent({
      action: "backup.restore",
      backupId: "b-1",
      outcome: "failure",
      detail: "corrupt"
    })
    assert.deepStrictEqual(restore, {
      type: "restore",
      actor: AuditEvent.systemActor("backup"),
      action: "backup.restore",
      resource: { type: "backup", id: "b-1" },
      outcome: "failure",
      reason: "corrupt"
    })
    const create = AuditLog.backupEvent({
      action: "backup.create",
      backupId: undefined,
      outcome: "success",
      detail: "full"
    })
    assert.strictEqual(create.type, "backup")
    assert.deepStrictEqual(create.resource, { type: "backup" })
  })

  it("actorOf keeps what a principal and a request say", () => {
    assert.deepStrictEqual(
      AuditEvent.actorOf({ tenantId: "acme", subject: "key:1", roles: ["admin"] }, { userAgent: "curl/8" }),
      { subject: "key:1", tenantId: "acme", roles: ["admin"], userAgent: "curl/8" }
    )
  })
})

describe("canonical JSON", () => {
  // Any code point, and often what needs escaping (quotes, backslashes, control characters). Not lone surrogates:
  // canonicalize refuses them.
  const text = fc.string({
    unit: fc.oneof(
      fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
      fc.constantFrom("\"", "\\", "\u0000", "\u001f", "\u007f", "\u2028", "\ud83d\ude00")
    ),
    maxLength: 12
  })
  const optional = <A>(arb: fc.Arbitrary<A>) => fc.option(arb, { nil: undefined })
  const json = fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.parse(JSON.stringify(v)))

  it("the writer's entries are what canonicalize (RFC 8785) makes of them (fast-check)", () => {
    fc.assert(
      fc.property(
        fc.record({
          index: fc.nat(),
          id: text,
          time: text,
          type: fc.constantFrom(...AuditEvent.eventTypes),
          tenantId: optional(text),
          actorTenant: optional(text),
          roles: fc.array(text, { maxLength: 3 }),
          action: text,
          resourceType: text,
          resourceId: optional(text),
          outcome: fc.constantFrom("success", "failure", "denied" as const),
          reason: optional(text),
          correlationId: optional(text),
          traceId: optional(text),
          details: optional(fc.dictionary(text, json, { maxKeys: 4 })),
          sealed: fc.record({ keyId: text, iv: text, data: text })
        }),
        (e) => {
          const entry = {
            v: 1 as const,
            index: e.index,
            id: e.id,
            time: e.time,
            type: e.type,
            ...(e.tenantId === undefined ? {} : { tenantId: e.tenantId }),
            actor: { ...(e.actorTenant === undefined ? {} : { tenantId: e.actorTenant }), roles: e.roles },
            action: e.action,
            resource: { type: e.resourceType, ...(e.resourceId === undefined ? {} : { id: e.resourceId }) },
            outcome: e.outcome,
            ...(e.reason === undefined ? {} : { reason: e.reason }),
            ...(e.correlationId === undefined ? {} : { correlationId: e.correlationId }),
            ...(e.traceId === undefined ? {} : { traceId: e.traceId }),
            ...(e.details === undefined ? {} : { details: e.details }),
            sealed: e.sealed
          }
          const { details, ...rest } = entry as typeof entry & { details?: unknown }
          const hand = Canonical.entry(rest as any, details === undefined ? undefined : canonicalize(details))
          assert.strictEqual(hand, canonicalize(entry))
          const personal = { subject: e.action, clientAddress: e.reason, userAgent: e.traceId }
          assert.strictEqual(
            Canonical.personal({
              ...personal,
              personalDetailsJson: e.details === undefined ? undefined : canonicalize(e.details)
            }),
            canonicalize({ ...personal, personalDetails: e.details })
          )
          // And its leaf hash is the hash of its UTF-8 bytes.
          assert.deepStrictEqual(Merkle.leafHashOfText(hand), Merkle.leafHash(new TextEncoder().encode(hand)))
        }
      ),
      { numRuns: 300 }
    )
  })
})
