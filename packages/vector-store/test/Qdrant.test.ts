import { assert, describe, it } from "@effect/vitest"
import * as QdrantStandIn from "@ouroboros/testkit/QdrantStandIn"
import { Cause, Duration, Effect, Exit, Fiber, Layer, Redacted } from "effect"
import { TestClock } from "effect/testing"
import { Socket } from "node:net"
import * as Qdrant from "../src/VectorStore/Qdrant.js"
import { acme, contract, fresh, globex, tilted } from "./contract.js"

contract(
  "qdrant (stand-in)",
  Layer.unwrap(
    Effect.map(
      QdrantStandIn.scoped({ apiKey: "s3cret" }),
      (standIn) => Qdrant.layer({ url: standIn.url, apiKey: Redacted.make("s3cret") })
    )
  )
)

/** The remote ports of the stand-in's open server-side sockets (one per client connection). */
const serverSockets = (standIn: QdrantStandIn.StandIn): Set<number> => {
  const handles = (process as unknown as { _getActiveHandles(): Array<unknown> })._getActiveHandles()
  const ports = new Set<number>()
  for (const handle of handles) {
    if (handle instanceof Socket && handle.localPort === standIn.port && handle.remotePort !== undefined) {
      ports.add(handle.remotePort)
    }
  }
  return ports
}

/**
 * The client uses a single connection (`maxConnections: 1`), so during a hang the stand-in holds exactly the hung
 * connection; it must close once the request is aborted. Nothing else closes it while the request hangs (it is not
 * idle, and its request was received whole), so an abandoned request keeps it open and the wait below fails: its
 * deadline only bounds the test. (Was "within a second"; a busy machine may take longer, which does not matter.)
 */
const hungConnection = (standIn: QdrantStandIn.StandIn) =>
  Effect.sync(() => {
    const during = serverSockets(standIn)
    assert.strictEqual(during.size, 1, "one connection carries the hung request")
    return during
  })

const closedSoon = (standIn: QdrantStandIn.StandIn, during: Set<number>) =>
  Effect.andThen(
    waitUntil(() => [...during].every((port) => !serverSockets(standIn).has(port)), "the hung connection to close"),
    // The stand-in has seen the client go away, so lifting the hang later drops that request for sure.
    waitUntil(() => standIn.hanging === 0, "the stand-in to see the hung request's client go away")
  )

/**
 * Polls `condition` until it holds, pausing with a Node timer (the real clock, whether the test runs on the
 * `TestClock`, which only moves when the test says so, or not); the deadline only bounds the test.
 */
const waitUntil = (condition: () => boolean, what: string) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 20_000
    while (!condition()) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10)))
    }
  })

/** Runs `effect` with a deadline on the real clock that only bounds the test. */
const bounded = <A, E, R>(effect: Effect.Effect<A, E, R>, what: string) =>
  TestClock.withLive(Effect.timeoutOrElse(effect, {
    duration: "20 seconds",
    orElse: () => Effect.die(new Error(`no answer: ${what}`))
  }))

const setup = (options: Partial<Qdrant.Options> = {}) =>
  Effect.gen(function*() {
    const standIn = yield* QdrantStandIn.scoped()
    const store = yield* Qdrant.make({ url: standIn.url, maxConnections: 1, ...options })
    const name = fresh()
    yield* store.ensureCollection({ name, dimensions: 4 })
    yield* store.upsert(name, acme, [{ id: "a", vector: tilted(4, 0, 0), payload: {} }])
    return { standIn, store, name }
  })

const queries = (standIn: QdrantStandIn.StandIn) =>
  standIn.requests.filter((r) => r.method === "POST" && r.path.endsWith("/points/query")).length

describe("Qdrant adapter", () => {
  // Replicas that start together each see no collection and each create it: Qdrant answers the losers 409 Conflict
  // ("already exists"; 400 before 1.8). They go on with the collection the winner made (CI saw a second server process
  // fail its start this way).
  it.live("replicas creating the same collection at once all get it; the losers' 409 is not an error", () =>
    Effect.gen(function*() {
      const standIn = yield* QdrantStandIn.scoped()
      const replicas = yield* Effect.forEach(Array.from({ length: 6 }), () => Qdrant.make({ url: standIn.url }))
      const name = fresh()
      const infos = yield* Effect.forEach(
        replicas,
        (store) => store.ensureCollection({ name, dimensions: 4 }),
        { concurrency: "unbounded" }
      )
      const creates = standIn.requests.filter((r) => r.method === "PUT" && r.path === `/collections/${name}`)
      // The race happened: more than one replica asked to create it.
      assert.isAbove(creates.length, 1)
      assert.deepStrictEqual(infos.map((info) => info.dimensions), [4, 4, 4, 4, 4, 4])
      // A different size is still refused, race or not.
      const mismatch = yield* Effect.flip(replicas[0]!.ensureCollection({ name, dimensions: 8 }))
      assert.strictEqual(mismatch._tag, "DimensionMismatch")
    }))

  // On the TestClock: the 300 ms of `Effect.timeout` pass when the test moves the clock, so "in time" means "when its
  // timeout has passed on the clock, and not before". Was "it took under 2 s of wall clock"; how fast a real timeout
  // fires on a real machine is not tested.
  it.effect("Effect.timeout aborts a hung request: the fiber ends in time and its socket is closed", () =>
    Effect.gen(function*() {
      const { name, standIn, store } = yield* setup()
      standIn.faults.set({ hang: true })
      const fiber = yield* store.search(name, acme, { vector: tilted(4, 0, 0), limit: 1 }).pipe(
        Effect.timeout("300 millis"),
        Effect.exit,
        Effect.timed,
        Effect.forkChild({ startImmediately: true })
      )
      yield* waitUntil(() => queries(standIn) === 1 && standIn.hanging === 1, "the query to hang at the stand-in")
      const during = yield* hungConnection(standIn)
      yield* TestClock.adjust("299 millis")
      assert.isUndefined(fiber.pollUnsafe(), "still running before its timeout")
      yield* TestClock.adjust("1 millis")
      const [elapsed, exit] = yield* bounded(Fiber.join(fiber), "the fiber ends at its timeout")
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(Duration.toMillis(elapsed), 300, "it ended when its timeout had passed (test clock)")
      // The hung connection goes away: the request was aborted, not abandoned.
      yield* closedSoon(standIn, during)
      standIn.faults.reset()
      const after = yield* store.search(name, acme, { vector: tilted(4, 0, 0), limit: 1 })
      assert.deepStrictEqual(after.map((h) => h.id), ["a"])
    }))

  it.live("interrupting the fiber aborts the HTTP request", () =>
    Effect.gen(function*() {
      const { name, standIn, store } = yield* setup()
      standIn.faults.set({ hang: true })
      standIn.clearRequests()
      const fiber = yield* Effect.forkChild(store.count(name, acme))
      yield* waitUntil(
        () => standIn.requests.some((r) => r.path.endsWith("/points/count")) && standIn.hanging === 1,
        "the count request to hang at the stand-in"
      )
      const during = yield* hungConnection(standIn)
      yield* Fiber.interrupt(fiber)
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause))
      yield* closedSoon(standIn, during)
    }))

  // On the TestClock: the layer's 250 ms pass when the test moves the clock, not before (a slow machine cannot make
  // the setup's own calls time out).
  it.effect("the layer's own timeout fails with reason Timeout and aborts", () =>
    Effect.gen(function*() {
      const { name, standIn, store } = yield* setup({ timeout: Duration.millis(250) })
      standIn.faults.set({ hang: true })
      const before = queries(standIn)
      const fiber = yield* Effect.forkChild(
        Effect.flip(store.search(name, acme, { vector: tilted(4, 0, 0), limit: 1 })),
        { startImmediately: true }
      )
      yield* waitUntil(() => queries(standIn) === before + 1 && standIn.hanging === 1, "the query to hang")
      const during = yield* hungConnection(standIn)
      yield* TestClock.adjust("249 millis")
      assert.isUndefined(fiber.pollUnsafe(), "still running before the layer's timeout")
      yield* TestClock.adjust("1 millis")
      const error = yield* bounded(Fiber.join(fiber), "the call ends at the layer's timeout")
      assert.strictEqual(error._tag, "VectorStoreError")
      if (error._tag === "VectorStoreError") assert.strictEqual(error.reason, "Timeout")
      yield* closedSoon(standIn, during)
    }))

  it.live("server errors and refused connections are VectorStoreError Unavailable", () =>
    Effect.gen(function*() {
      const { name, standIn, store } = yield* setup()
      standIn.faults.set({ errorRate: 1, errorStatus: 503 })
      const e1 = yield* Effect.flip(store.count(name, acme))
      assert.strictEqual(e1._tag === "VectorStoreError" && e1.reason, "Unavailable")
      standIn.faults.set({ errorRate: 0, refuse: true })
      const e2 = yield* Effect.flip(store.count(name, acme))
      assert.strictEqual(e2._tag === "VectorStoreError" && e2.reason, "Unavailable")
    }))

  it.live("sends the API key and per-call headers; a wrong key is an error", () =>
    Effect.gen(function*() {
      const standIn = yield* QdrantStandIn.scoped({ apiKey: "right" })
      let n = 0
      const store = yield* Qdrant.make({
        url: standIn.url,
        apiKey: Redacted.make("right"),
        headers: Effect.sync(() => ({ "x-correlation-id": `req-${++n}` }))
      })
      const name = fresh()
      yield* store.ensureCollection({ name, dimensions: 4 })
      assert.isTrue(standIn.requests.length > 0)
      assert.isTrue(standIn.requests.every((r) => r.headers["api-key"] === "right"))
      const correlation = standIn.requests.map((r) => r.headers["x-correlation-id"])
      assert.strictEqual(new Set(correlation).size, correlation.length, "headers are read per call")
      const wrong = yield* Qdrant.make({ url: standIn.url, apiKey: Redacted.make("wrong") })
      const error = yield* Effect.flip(wrong.count(name, acme))
      assert.strictEqual(error._tag, "VectorStoreError")
    }))

  it.live("partitions by tenant the way Qdrant advises: an is_tenant keyword index and UUID point ids", () =>
    Effect.gen(function*() {
      const { name, standIn, store } = yield* setup()
      const index = standIn.requests.find((r) => r.method === "PUT" && r.path === `/collections/${name}/index`)
      assert.deepStrictEqual(index?.body, {
        field_name: "tenant_id",
        field_schema: { type: "keyword", is_tenant: true }
      })
      const create = standIn.requests.find((r) => r.method === "PUT" && r.path === `/collections/${name}`)
      assert.deepStrictEqual((create?.body as { vectors: unknown }).vectors, { size: 4, distance: "Cosine" })
      standIn.clearRequests()
      yield* store.search(name, globex, { vector: tilted(4, 0, 0), limit: 3 })
      const query = standIn.requests[0]?.body as { filter: { must: Array<unknown> } }
      assert.deepStrictEqual(query.filter.must[0], { key: "tenant_id", match: { value: "globex" } })
      const uuid = Qdrant.pointUuid("acme", "a")
      assert.match(uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
      assert.strictEqual(uuid, Qdrant.pointUuid("acme", "a"))
      assert.notStrictEqual(uuid, Qdrant.pointUuid("globex", "a"))
    }))

  it.live("snapshots are downloaded as bytes and deleted on the server; restore uploads with priority", () =>
    Effect.gen(function*() {
      const { name, standIn, store } = yield* setup()
      standIn.clearRequests()
      const snapshot = yield* store.snapshot(name)
      assert.strictEqual(snapshot.format, "qdrant")
      // The stand-in's snapshots are gzip: a text download would have mangled the magic bytes.
      assert.deepStrictEqual([snapshot.bytes[0], snapshot.bytes[1]], [0x1f, 0x8b])
      const paths = standIn.requests.map((r) => `${r.method} ${r.path}`)
      assert.isTrue(paths.some((p) => p.startsWith(`GET /collections/${name}/snapshots/`)))
      assert.isTrue(paths.some((p) => p.startsWith(`DELETE /collections/${name}/snapshots/`)))
      standIn.clearRequests()
      yield* store.restore(name, snapshot.bytes)
      const upload = standIn.requests.find((r) => r.path === `/collections/${name}/snapshots/upload`)
      assert.include(upload?.url, "priority=snapshot")
      assert.include(upload?.url, `checksum=${snapshot.sha256}`)
    }))
})
