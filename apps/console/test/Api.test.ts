/**
 * The console's API client (`src/web/lib/api.ts`) in Node, on a stand-in `fetch`: a read refused by a rate limit is
 * tried again after the server's `Retry-After` (on fake timers: nothing waits for real), a write or a long wait shows
 * the 429 problem.
 */
import { afterEach, assert, beforeEach, describe, it, vi } from "vitest"
import * as Api from "../src/web/lib/api.js"

const problem429 = (retryAfter: string | undefined) =>
  new Response(
    JSON.stringify({
      title: "Too Many Requests",
      status: 429,
      detail: "Rate limit exceeded (\"admin\"); retry in 1 s"
    }),
    {
      status: 429,
      headers: {
        "content-type": "application/problem+json",
        ...(retryAfter === undefined ? {} : { "retry-after": retryAfter })
      }
    }
  )

const ok = (body: unknown) =>
  new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } })

let answers: Array<() => Response> = []
let calls: Array<{ url: string; method: string }> = []

beforeEach(() => {
  vi.useFakeTimers()
  answers = []
  calls = []
  vi.stubGlobal("fetch", (url: string, init: RequestInit) => {
    calls.push({ url, method: init.method ?? "GET" })
    const next = answers.shift()
    if (next === undefined) throw new Error("no answer left")
    return Promise.resolve(next())
  })
})

afterEach(() => {
  vi.unstubAllGlobals()
  vi.useRealTimers()
})

/** Whether the promise has settled after the microtasks that are due. */
const settled = async (promise: Promise<unknown>) => {
  let done = false
  promise.then(() => (done = true), () => (done = true))
  await vi.advanceTimersByTimeAsync(0)
  return done
}

describe("rate limits", () => {
  it("a GET refused with Retry-After is tried again once the wait is over", async () => {
    answers.push(() => problem429("2"), () => ok({ breakers: 1 }))
    const reply = Api.get<{ breakers: number }>("/admin/circuit-breakers")
    assert.isFalse(await settled(reply))
    await vi.advanceTimersByTimeAsync(1_999)
    assert.strictEqual(calls.length, 1, "not before the Retry-After")
    await vi.advanceTimersByTimeAsync(1)
    assert.deepStrictEqual(await reply, { breakers: 1 })
    assert.strictEqual(calls.length, 2)
  })

  it("gives up after the retries and shows the 429 problem", async () => {
    answers.push(() => problem429("1"), () => problem429("1"), () => problem429("1"), () => ok({}))
    const reply = Api.get("/admin/audit")
    const outcome = reply.then(() => undefined, (error: unknown) => error)
    await vi.advanceTimersByTimeAsync(5_000)
    const error = await outcome
    assert.instanceOf(error, Api.ApiError)
    assert.strictEqual((error as Api.ApiError).status, 429)
    assert.strictEqual(calls.length, 1 + Api.retryAttempts)
  })

  it("does not retry a write, a wait longer than the bound, or a 429 without Retry-After", async () => {
    for (
      const [method, retryAfter] of [["POST", "1"], ["GET", String(Api.maxRetryAfterSeconds + 1)], [
        "GET",
        undefined
      ]] as const
    ) {
      calls = []
      answers.push(() => problem429(retryAfter))
      const outcome = Api.call(
        method,
        "/admin/circuit-breakers/ollama/reset",
        method === "POST" ? { body: { reason: "x" } } : {}
      )
        .then(() => undefined, (error: unknown) => error)
      assert.isTrue(await settled(outcome), `${method} ${retryAfter}: answered at once`)
      assert.strictEqual(((await outcome) as Api.ApiError).status, 429)
      assert.strictEqual(calls.length, 1)
    }
  })

  it("stops waiting when the call is aborted", async () => {
    answers.push(() => problem429("5"))
    const controller = new AbortController()
    const outcome = Api.get("/admin/flags", { signal: controller.signal }).then(
      () => undefined,
      (error: unknown) => error
    )
    assert.isFalse(await settled(outcome))
    controller.abort()
    const error = await outcome
    assert.instanceOf(error, DOMException)
    assert.strictEqual((error as DOMException).name, "AbortError")
    assert.strictEqual(calls.length, 1)
  })

  it("reads Retry-After as seconds or as an HTTP date", () => {
    assert.strictEqual(Api.retryAfterSeconds("3"), 3)
    assert.strictEqual(Api.retryAfterSeconds(" 0 "), 0)
    assert.strictEqual(Api.retryAfterSeconds(null), undefined)
    assert.strictEqual(Api.retryAfterSeconds("soon"), undefined)
    const now = Date.UTC(2026, 0, 1, 0, 0, 0)
    assert.strictEqual(Api.retryAfterSeconds("Thu, 01 Jan 2026 00:00:07 GMT", now), 7)
    assert.strictEqual(Api.retryAfterSeconds("Wed, 31 Dec 2025 23:59:00 GMT", now), 0)
  })
})
