import { Testing } from "@ouroboros/server"
import { Effect } from "effect"

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
      ...(init.body === undefined ? {} : { body: typeof init.body === "string" ? init.body : JSON.stringify(init.body) })
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
