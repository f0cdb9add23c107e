/**
 * Where breaker state lives: the memory store keeps it in the process, the Redis store
 * (`@ouroboros/circuit-breaker/CircuitBreaker/Redis`) shares it between replicas.
 *
 * A store applies the transitions of `internal/machine.ts` atomically. It is never on the hot path of a closed
 * breaker: breakers read their local copy, and only transitions and half-open trial permits go through the store.
 * That is the difference from the `CircuitBreakerStore` of Effect 4's `effect/persistence/CircuitBreaker`, which
 * admits and records every call (and keeps the failure counters) in the store.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Stream } from "effect"
import * as Machine from "./internal/machine.js"

/**
 * The shared record of one breaker (see `internal/machine.ts`).
 *
 * @since 0.1.0
 * @category models
 */
export type Shared = Machine.Shared

/**
 * A record another replica wrote, as announced by the store.
 *
 * @since 0.1.0
 * @category models
 */
export interface RemoteChange {
  readonly name: string
  readonly record: Shared
}

/**
 * The store operations. Each takes the caller's local copy (`current`) so that a store that cannot reach its backend
 * can degrade to applying the transition locally.
 *
 * @since 0.1.0
 * @category models
 */
export interface Store {
  /** The stored record of a breaker, or the initial record. */
  readonly load: (name: string) => Effect.Effect<Shared>
  /** Writes `next` when the stored record is still at `expectedVersion`; returns the stored record. */
  readonly cas: (name: string, current: Shared, expectedVersion: number, next: Machine.Fields) => Effect.Effect<Shared>
  /** Writes `next` unconditionally (operator actions). */
  readonly set: (name: string, current: Shared, next: Machine.Fields) => Effect.Effect<Shared>
  /** Asks for a half-open trial permit (see `Machine.acquireTrial`). */
  readonly acquireTrial: (
    name: string,
    current: Shared,
    now: number,
    max: number,
    leaseMs: number
  ) => Effect.Effect<readonly [granted: boolean, record: Shared]>
  /** Settles a successful trial. */
  readonly trialSuccess: (
    name: string,
    current: Shared,
    version: number,
    now: number,
    threshold: number
  ) => Effect.Effect<Shared>
  /** Gives back an unused trial permit of the half-open period `version`. */
  readonly release: (name: string, current: Shared, version: number) => Effect.Effect<Shared>
  /** Records written by other replicas. */
  readonly changes: Stream.Stream<RemoteChange>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class CircuitBreakerStore extends Context.Service<CircuitBreakerStore, Store>()(
  "@ouroboros/circuit-breaker/CircuitBreakerStore"
) {}

/**
 * A store for one process: the breaker's local copy is the record, so every operation is the pure transition.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Store = {
  load: () => Effect.succeed(Machine.initial),
  cas: (_name, current, expectedVersion, next) => Effect.sync(() => Machine.cas(current, expectedVersion, next)),
  set: (_name, current, next) => Effect.sync(() => Machine.cas(current, -1, next)),
  acquireTrial: (_name, current, now, max, leaseMs) =>
    Effect.sync(() => Machine.acquireTrial(current, now, max, leaseMs)),
  trialSuccess: (_name, current, version, now, threshold) =>
    Effect.sync(() => Machine.trialSuccess(current, version, now, threshold)),
  release: (_name, current, version) => Effect.sync(() => Machine.release(current, version)),
  changes: Stream.empty
}

/**
 * The memory store.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<CircuitBreakerStore> = Layer.succeed(CircuitBreakerStore, makeMemory)

/**
 * Wraps a store so that every operation (load and `changes` excluded) increments `counter.calls`: how tests and the
 * benchmark show that a closed breaker never reaches its store.
 *
 * @since 0.1.0
 * @category utils
 */
export const counting = (store: Store, counter: { calls: number }): Store => {
  const count = <A>(effect: Effect.Effect<A>) =>
    Effect.andThen(
      Effect.sync(() => {
        counter.calls++
      }),
      effect
    )
  return {
    load: store.load,
    cas: (...args) => count(store.cas(...args)),
    set: (...args) => count(store.set(...args)),
    acquireTrial: (...args) => count(store.acquireTrial(...args)),
    trialSuccess: (...args) => count(store.trialSuccess(...args)),
    release: (...args) => count(store.release(...args)),
    changes: store.changes
  }
}
