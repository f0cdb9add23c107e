/**
 * The in-memory event store and checkpoints: the same contract as the SQL ones, for tests and single-process tools.
 */
import { Clock, Deferred, Duration, Effect, Option, Ref, Stream, SynchronizedRef } from "effect"
import type * as Checkpoints from "../Checkpoints.js"
import type * as EventStore from "../EventStore.js"

interface State {
  readonly events: ReadonlyArray<EventStore.RecordedEvent>
  readonly versions: ReadonlyMap<string, number>
  readonly bySequence: ReadonlySet<number>
  readonly next: number
}

const empty: State = { events: [], versions: new Map(), bySequence: new Set(), next: 1 }

const matches = (expected: EventStore.ExpectedVersion, actual: number): boolean =>
  expected === "any" ? true : expected === "no-stream" ? actual === -1 : expected === actual

/** @internal */
export const makeStore = (
  module: Pick<typeof EventStore, "WrongExpectedVersion" | "ImportConflict" | "RecordedEvent" | "TenantScope">,
  options: EventStore.Options = {}
): Effect.Effect<EventStore.EventStore["Service"]> =>
  Effect.gen(function*() {
    const defaultReadBatch = Math.max(1, Math.trunc(options.readBatchSize ?? 500))
    const state = yield* SynchronizedRef.make(empty)
    const signal = yield* Ref.make(yield* Deferred.make<void>())
    const wake = Effect.flatMap(
      Deferred.make<void>(),
      (next) => Effect.flatMap(Ref.getAndSet(signal, next), (current) => Deferred.succeed(current, undefined))
    )

    const versionOf = (s: State, streamId: string) => s.versions.get(streamId) ?? -1

    const conflict = (streamId: string, expected: EventStore.ExpectedVersion, actual: number) =>
      new module.WrongExpectedVersion({
        detail: `stream ${streamId} ${actual === -1 ? "has no events" : `is at version ${actual}`}, expected ${
          expected === "no-stream" || expected === -1 ? "no stream" : `version ${expected}`
        }`,
        streamId,
        expected,
        actual
      })

    // What row-level security does for the SQL store: a scoped read sees only its tenant's events.
    const visible = (scope: string | undefined) => (e: EventStore.RecordedEvent) =>
      scope === undefined || e.tenantId === scope

    const append: EventStore.EventStore["Service"]["append"] = (streamId, events, appendOptions) =>
      SynchronizedRef.modifyEffect(state, (s) =>
        Effect.gen(function*() {
          // PostgreSQL text cannot hold NUL: refuse what the SQL store would refuse.
          if (streamId.includes("\u0000") || events.some((event) => event.type.includes("\u0000"))) {
            return yield* Effect.die(new Error("EventStore.append: a stream id or event type contains NUL"))
          }
          const scope = yield* module.TenantScope
          if (scope !== undefined && events.some((event) => event.metadata?.tenantId !== scope)) {
            return yield* Effect.die(
              new Error(`EventStore.append: an event of another tenant than ${scope} (row-level security)`)
            )
          }
          const expected = appendOptions?.expectedVersion ?? "any"
          const actual = versionOf(s, streamId)
          if (!matches(expected, actual)) return yield* conflict(streamId, expected, actual)
          if (events.length === 0) return [{ firstSequence: 0, lastSequence: 0, version: actual }, s] as const
          const last = s.events[s.events.length - 1]
          const now = Math.max(yield* Clock.currentTimeMillis, last?.recordedAt.getTime() ?? 0)
          const recorded = events.map((event, index) => {
            const metadata = JSON.parse(JSON.stringify(event.metadata ?? {})) as EventStore.Metadata
            const tenantId = typeof metadata.tenantId === "string" ? metadata.tenantId : undefined
            return new module.RecordedEvent({
              sequence: s.next + index,
              streamId,
              version: actual + 1 + index,
              type: event.type,
              data: JSON.parse(JSON.stringify(event.data ?? null)),
              metadata,
              ...(tenantId === undefined ? {} : { tenantId }),
              recordedAt: new Date(now)
            }, { disableChecks: true })
          })
          const versions = new Map(s.versions).set(streamId, actual + events.length)
          const bySequence = new Set(s.bySequence)
          for (const e of recorded) bySequence.add(e.sequence)
          return [
            { firstSequence: s.next, lastSequence: s.next + events.length - 1, version: actual + events.length },
            { events: [...s.events, ...recorded], versions, bySequence, next: s.next + events.length }
          ] as const
        })).pipe(Effect.tap(() => wake), Effect.withSpan("EventStore.append"))

    const readStream: EventStore.EventStore["Service"]["readStream"] = (streamId, readOptions) =>
      Effect.flatMap(Effect.service(module.TenantScope), (scope) =>
        Effect.map(SynchronizedRef.get(state), (s) => {
          const from = Math.max(0, Math.trunc(readOptions?.fromVersion ?? 0))
          const mine = visible(scope)
          const matching = s.events.filter((e) => e.streamId === streamId && e.version >= from && mine(e))
          return readOptions?.limit === undefined ? matching : matching.slice(0, Math.max(0, readOptions.limit))
        }))

    const select = (
      s: State,
      from: number,
      to: number,
      until: Date | undefined,
      tenantId: string | undefined,
      limit: number
    ) => {
      const out: Array<EventStore.RecordedEvent> = []
      for (const e of s.events) {
        if (out.length >= limit) break
        if (e.sequence < from || e.sequence > to) continue
        if (until !== undefined && e.recordedAt > until) continue
        if (tenantId !== undefined && e.tenantId !== tenantId) continue
        out.push(e)
      }
      return out
    }

    const lastSequence = Effect.map(SynchronizedRef.get(state), (s) => s.events[s.events.length - 1]?.sequence ?? 0)

    const readAll: EventStore.EventStore["Service"]["readAll"] = (readOptions) =>
      Stream.unwrap(Effect.map(SynchronizedRef.get(state), (s) => {
        const to = readOptions?.toSequence === undefined
          ? s.events[s.events.length - 1]?.sequence ?? 0
          : Number(readOptions.toSequence)
        const from = Math.max(1, Number(readOptions?.fromSequence ?? 1))
        return Stream.fromIterable(
          select(s, from, to, readOptions?.until, readOptions?.tenantId, Number.POSITIVE_INFINITY)
        )
      }))

    const follow: EventStore.EventStore["Service"]["follow"] = (followOptions) => {
      const batchSize = Math.max(1, Math.trunc(followOptions?.batchSize ?? defaultReadBatch))
      const pollInterval = followOptions?.pollInterval ?? Duration.seconds(1)
      return Stream.paginate(Math.max(1, Number(followOptions?.fromSequence ?? 1)), (cursor) =>
        Effect.gen(function*() {
          const waitFor = yield* Ref.get(signal)
          const s = yield* SynchronizedRef.get(state)
          const events = select(s, cursor, Number.MAX_SAFE_INTEGER, undefined, followOptions?.tenantId, batchSize)
          const last = events[events.length - 1]
          if (last === undefined) {
            yield* Effect.raceFirst(Deferred.await(waitFor), Effect.sleep(pollInterval))
            return [[], Option.some(cursor)] as const
          }
          return [events, Option.some(last.sequence + 1)] as const
        }))
    }

    const importEvents: EventStore.EventStore["Service"]["importEvents"] = (events, importOptions) =>
      events.pipe(
        Stream.grouped(Math.max(1, Math.trunc(importOptions?.batchSize ?? 500))),
        Stream.mapEffect((batch) =>
          SynchronizedRef.modifyEffect(state, (s) =>
            Effect.gen(function*() {
              const fresh = batch.filter((e) => !s.bySequence.has(e.sequence))
              const taken = new Set(s.events.map((e) => `${e.streamId}\u0000${e.version}`))
              for (const e of fresh) {
                const key = `${e.streamId}\u0000${e.version}`
                if (taken.has(key)) {
                  return yield* new module.ImportConflict({
                    detail:
                      `an imported event takes a stream version that is already stored (${e.streamId}@${e.version})`
                  })
                }
                taken.add(key)
              }
              const all = [...s.events, ...fresh].sort((a, b) => a.sequence - b.sequence)
              const versions = new Map(s.versions)
              for (const e of fresh) versions.set(e.streamId, Math.max(versions.get(e.streamId) ?? -1, e.version))
              const bySequence = new Set(s.bySequence)
              for (const e of fresh) bySequence.add(e.sequence)
              const next = Math.max(s.next, (all[all.length - 1]?.sequence ?? 0) + 1)
              return [
                { imported: fresh.length, skipped: batch.length - fresh.length },
                { events: all, versions, bySequence, next }
              ] as const
            })).pipe(Effect.tap(() => wake))
        ),
        Stream.runFold(
          (): EventStore.ImportResult => ({ imported: 0, skipped: 0 }),
          (total, batch) => ({ imported: total.imported + batch.imported, skipped: total.skipped + batch.skipped })
        )
      )

    const truncate = SynchronizedRef.set(state, empty)

    const streamVersion = (streamId: string) =>
      Effect.flatMap(Effect.service(module.TenantScope), (scope) =>
        Effect.map(SynchronizedRef.get(state), (s) => {
          if (scope === undefined) return versionOf(s, streamId)
          let version = -1
          for (const e of s.events) if (e.streamId === streamId && e.tenantId === scope) version = e.version
          return version
        }))

    const listStreams: EventStore.EventStore["Service"]["listStreams"] = (options) =>
      Effect.flatMap(Effect.service(module.TenantScope), (scope) =>
        Effect.map(SynchronizedRef.get(state), (s) => {
          const mine = visible(scope)
          const byStream = new Map<string, Array<EventStore.RecordedEvent>>()
          for (const e of s.events) {
            if (!e.streamId.startsWith(options.prefix) || !mine(e)) continue
            if (options.after !== undefined && !(e.streamId > options.after)) continue
            const list = byStream.get(e.streamId)
            if (list === undefined) byStream.set(e.streamId, [e])
            else list.push(e)
          }
          const skip = new Set(options.skipWhenLast ?? [])
          return [...byStream.keys()].sort().flatMap((id) => {
            const events = byStream.get(id)!.sort((a, b) => a.version - b.version)
            return skip.has(events[events.length - 1]!.type) ? [] : [events]
          }).slice(0, Math.max(0, Math.trunc(options.limit)))
        }))

    const deleteTenant = (tenantId: string) =>
      SynchronizedRef.modify(state, (s) => {
        const doomed = (e: EventStore.RecordedEvent) =>
          e.tenantId === tenantId || e.streamId.startsWith(`tenant/${tenantId}/`)
        const kept = s.events.filter((e) => !doomed(e))
        const versions = new Map<string, number>()
        for (const e of kept) versions.set(e.streamId, Math.max(versions.get(e.streamId) ?? -1, e.version))
        return [
          s.events.length - kept.length,
          { events: kept, versions, bySequence: new Set(kept.map((e) => e.sequence)), next: s.next }
        ] as const
      })

    return {
      append,
      readStream,
      readAll,
      follow,
      lastSequence,
      streamVersion,
      importEvents,
      truncate,
      listStreams,
      deleteTenant
    }
  })

/** @internal */
export const makeCheckpoints = (
  module: Pick<typeof Checkpoints, "Checkpoint">
): Effect.Effect<Checkpoints.Checkpoints["Service"]> =>
  Effect.gen(function*() {
    const saved = yield* Ref.make(new Map<string, Checkpoints.Checkpoint>())
    const bad = (method: string, sequence: number) =>
      Effect.die(new Error(`Checkpoints.${method}: ${sequence} is not a sequence number`))
    const valid = (sequence: number) => Number.isSafeInteger(sequence) && sequence >= 0
    // Replaces the checkpoint `name` by what `next` makes of the current one (none when nothing was saved).
    const update = <A>(
      name: string,
      next: (current: Checkpoints.Checkpoint | undefined) => readonly [A, Checkpoints.Position | undefined]
    ) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Ref.modify(saved, (m): readonly [A, Map<string, Checkpoints.Checkpoint>] => {
          const [result, position] = next(m.get(name))
          if (position === undefined) {
            return [result, m]
          }
          return [result, new Map(m).set(name, new module.Checkpoint({ name, ...position, updatedAt: new Date(now) }))]
        }))
    const position = (name: string) =>
      Effect.map(Ref.get(saved), (m) => {
        const checkpoint = m.get(name)
        return { sequence: checkpoint?.sequence ?? 0, epoch: checkpoint?.epoch ?? 0 }
      })
    return {
      get: (name) =>
        Effect.map(position(name), (p) =>
          p.sequence),
      position,
      set: (name, sequence) =>
        !valid(sequence)
          ? bad("set", sequence)
          : update(name, (current) => [undefined, { sequence, epoch: (current?.epoch ?? 0) + 1 }]),
      claim: (name) =>
        update(name, (current) => {
          const next = { sequence: current?.sequence ?? 0, epoch: (current?.epoch ?? 0) + 1 }
          return [next, next]
        }),
      advance: (name, sequence, epoch) =>
        !valid(sequence)
          ? bad("advance", sequence)
          : update(name, (current) =>
            current !== undefined && current.epoch === epoch
              ? [true, { sequence, epoch }]
              : [false, undefined]),
      list: Effect.map(
        Ref.get(saved),
        (m) => Array.from(m.values()).sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
      ),
      remove: (name) =>
        Ref.update(saved, (m) => {
          const copy = new Map(m)
          copy.delete(name)
          return copy
        })
    }
  })
