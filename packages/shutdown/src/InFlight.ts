/**
 * In-flight request tracking: which requests are being served right now (route, correlation id, age), as a service
 * and as a gauge, with a bounded wait until none are left and the means to interrupt and report the ones that
 * overstay a shutdown.
 *
 * Effect 4's HTTP server interrupts the request fibers still running when its scope closes, and its own graceful
 * shutdown waits for connections without knowing which requests run on them: tracking them here is what lets a
 * shutdown drain first, wait for the requests (and report the ones it cuts) before any resource is released.
 *
 * @since 0.1.0
 */
import { RequestContext } from "@ouroboros/kernel"
import {
  Clock,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Metric,
  Option,
  type Scope,
  Stream,
  SubscriptionRef,
  Tracer
} from "effect"

/**
 * What is known of a request when it starts.
 *
 * @since 0.1.0
 * @category models
 */
export interface RequestInfo {
  readonly method: string
  /** The path when the request starts; reported as the route template (`http.route`) once a router matched it. */
  readonly route: string
  /** The correlation id as received; the one the correlation middleware settles on is read from the fiber. */
  readonly correlationId: string | undefined
}

/**
 * One in-flight request.
 *
 * @since 0.1.0
 * @category models
 */
export interface InFlightRequest extends RequestInfo {
  readonly id: number
  /** Epoch milliseconds. */
  readonly startedAt: number
  readonly ageMillis: number
}

/**
 * The in-flight tracker.
 *
 * @since 0.1.0
 * @category services
 */
export class InFlight extends Context.Service<InFlight, {
  /** Runs `effect` as a tracked request of the current fiber; it is untracked when it ends, however it ends. */
  readonly track: <A, E, R>(info: RequestInfo, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  readonly count: Effect.Effect<number>
  /** The count, then every change of it. */
  readonly changes: Stream.Stream<number>
  /** The requests in flight, oldest first. */
  readonly list: Effect.Effect<ReadonlyArray<InFlightRequest>>
  /** Waits until nothing is in flight; `true` when that happened within `timeout`, `false` otherwise. */
  readonly awaitIdle: (timeout: Duration.Input) => Effect.Effect<boolean>
  /**
   * Interrupts every request still in flight, logs each one (method, route, correlation id, age) as cut, waits up to
   * `grace` for their fibers to end, and returns what was cut.
   */
  readonly interruptAll: (grace: Duration.Input) => Effect.Effect<ReadonlyArray<InFlightRequest>>
}>()("@ouroboros/shutdown/InFlight") {}

/**
 * The number of requests being served (`http.server.active_requests` in OpenTelemetry terms).
 *
 * @since 0.1.0
 * @category metrics
 */
export const gauge = Metric.gauge("http_server_active_requests", {
  description: "HTTP requests being served right now"
})

interface Entry {
  readonly id: number
  readonly info: RequestInfo
  readonly startedAt: number
  readonly fiber: Fiber.Fiber<unknown, unknown>
}

/**
 * Builds a tracker. Its gauge is kept in the `Metric.MetricRegistry` of the context it is built in.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<InFlight["Service"], never, Scope.Scope> = Effect.gen(function*() {
  const entries = new Map<number, Entry>()
  // The hot path (every request) is synchronous bookkeeping: no Ref, PubSub or Metric effect per request. Waiters
  // for idleness and subscribers to the count are woken only when there are some.
  const idle = new Set<Deferred.Deferred<void>>()
  const size = yield* SubscriptionRef.make(0)
  const watched = { subscribers: 0 }
  const context = yield* Effect.context<never>()
  let nextId = 0
  // The gauge is read when metrics are read (a scrape), not written per request.
  const registration = Metric.registerUnsafe(gauge, context, {
    get: () => ({ value: entries.size }),
    update: () => {},
    modify: () => {}
  })
  yield* Effect.addFinalizer(() => Effect.sync(() => registration.remove()))

  const changed = () => {
    const n = entries.size
    if (n === 0 && idle.size > 0) {
      for (const deferred of idle) Deferred.doneUnsafe(deferred, Exit.void)
      idle.clear()
    }
    // Synchronous: nothing else holds the ref's permit across a suspension.
    if (watched.subscribers > 0) Effect.runSync(SubscriptionRef.set(size, n))
  }

  /** The `http.route` a router recorded on the request's span, if any (read only when reporting). */
  const routeOf = (entry: Entry): string => {
    let span = Context.getOption(entry.fiber.context, Tracer.ParentSpan)
    while (Option.isSome(span) && span.value._tag === "Span") {
      const route = span.value.attributes.get("http.route")
      if (typeof route === "string") return route
      span = span.value.parent
    }
    return entry.info.route
  }

  const snapshot = (entry: Entry, now: number): InFlightRequest => {
    // The correlation middleware runs inside this tracker; the id it settled on is the fiber's current value.
    const settled = entry.fiber.getRef(RequestContext.currentCorrelationId)
    return {
      id: entry.id,
      method: entry.info.method,
      route: routeOf(entry),
      correlationId: Option.getOrElse(settled, () => entry.info.correlationId),
      startedAt: entry.startedAt,
      ageMillis: now - entry.startedAt
    }
  }

  const list = Effect.map(
    Clock.currentTimeMillis,
    (now) => Array.from(entries.values(), (entry) => snapshot(entry, now))
  )

  const track = <A, E, R>(info: RequestInfo, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    // `uninterruptibleMask` runs its function in the fiber's own step: the current fiber is the request's, and taking
    // the entry and installing its finalizer is one uninterruptible step.
    Effect.uninterruptibleMask((restore) => {
      const fiber = Fiber.getCurrent()!
      const id = ++nextId
      entries.set(id, { id, info, startedAt: fiber.getRef(Clock.Clock).currentTimeMillisUnsafe(), fiber })
      changed()
      return Effect.onExit(restore(effect), () => {
        entries.delete(id)
        changed()
        return Effect.void
      })
    })

  const awaitIdle = (timeout: Duration.Input) =>
    Effect.suspend(() => {
      if (entries.size === 0) return Effect.succeed(true)
      const deferred = Deferred.makeUnsafe<void>()
      idle.add(deferred)
      return Deferred.await(deferred).pipe(
        Effect.timeoutOption(timeout),
        Effect.map(Option.isSome),
        Effect.ensuring(Effect.sync(() => idle.delete(deferred)))
      )
    })

  const interruptAll = (grace: Duration.Input) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const victims = Array.from(entries.values())
      const cut = victims.map((entry) => snapshot(entry, now))
      yield* Effect.forEach(cut, (request) =>
        Effect.logWarning("Request cut by the shutdown timeout").pipe(
          Effect.annotateLogs({
            method: request.method,
            route: request.route,
            correlationId: request.correlationId ?? "none",
            ageMillis: request.ageMillis
          })
        ), { discard: true })
      // Interrupt them all at once (a server interruption: the platform answers 503), then wait (bounded) for their
      // responses to be written.
      yield* Effect.withFiber((self) =>
        Effect.sync(() => victims.forEach((entry) => entry.fiber.interruptUnsafe(self.id)))
      )
      yield* Effect.forEach(victims, (entry) => Fiber.await(entry.fiber), { concurrency: "unbounded", discard: true })
        .pipe(Effect.timeoutOption(grace))
      return cut
    })

  return InFlight.of({
    track,
    count: Effect.sync(() => entries.size),
    changes: Stream.unwrap(
      Effect.acquireRelease(
        Effect.andThen(
          Effect.sync(() => watched.subscribers++),
          // The count when the stream starts, not when the tracker was built.
          Effect.as(Effect.suspend(() => SubscriptionRef.set(size, entries.size)), SubscriptionRef.changes(size))
        ),
        () => Effect.sync(() => watched.subscribers--)
      )
    ),
    list,
    awaitIdle,
    interruptAll
  })
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<InFlight> = Layer.effect(InFlight, make)
