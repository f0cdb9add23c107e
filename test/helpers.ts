import { Testing } from "@ouroboros/server"
import { Duration, Effect } from "effect"

export const tenantA = { "x-api-key": Testing.keys.tenantA, "content-type": "application/json" }
export const tenantB = { "x-api-key": Testing.keys.tenantB, "content-type": "application/json" }
export const admin = { "x-api-key": Testing.keys.admin, "content-type": "application/json" }

export interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly body: any
}

/** One HTTP call; the body is parsed as JSON when there is one. */
export const call = (url: string, init: { method?: string; headers?: Record<string, string>; body?: unknown } = {}) =>
  Effect.promise(async (): Promise<Reply> => {
    const response = await fetch(url, {
      method: init.method ?? (init.body === undefined ? "GET" : "POST"),
      headers: init.headers ?? {},
      ...(init.body === undefined
        ? {}
        : { body: typeof init.body === "string" ? init.body : JSON.stringify(init.body) })
    })
    const text = await response.text()
    let body: unknown = text
    try {
      body = text === "" ? undefined : JSON.parse(text)
    } catch {
      // not JSON
    }
    return { status: response.status, headers: response.headers, body }
  })

/**
 * Runs `effect` again (every `every`, 20 ms by default) until `until` holds for its value, and returns that value.
 * The deadline (30 s by default) only bounds the test: reaching it is a failure that names what was awaited.
 */
export const eventually = <A, E, R>(
  what: string,
  effect: Effect.Effect<A, E, R>,
  until: (value: A) => boolean,
  options: { readonly every?: Duration.Input; readonly deadline?: Duration.Input } = {}
): Effect.Effect<A, E, R> =>
  Effect.gen(function*() {
    for (;;) {
      const value = yield* effect
      if (until(value)) return value
      yield* Effect.sleep(options.every ?? "20 millis")
    }
  }).pipe(
    Effect.timeoutOrElse({
      duration: options.deadline ?? "30 seconds",
      orElse: () => Effect.die(new Error(`gave up waiting for ${what}`))
    })
  )
