/**
 * A request path measured in process, without sockets: `n` requests (after as many to warm up) run one after the other
 * through an app and a serve middleware as `HttpRouter.serve` runs them (`HttpEffect.toHandled`, the response dropped
 * instead of written), each on a fresh `HttpServerRequest.fromWeb`. What Node's HTTP parser and the socket cost is
 * left out: the Effect side alone, without the noise of a load generator. Used by bench/servers/stack.ts
 * (`STACK_INPROCESS`) and packages/correlation/bench/variant.ts.
 */
import { Context, Effect, Fiber } from "effect"
import { HttpEffect, type HttpMiddleware, HttpServerRequest, type HttpServerResponse } from "effect/http"

export interface Options {
  /** What the requests run in: the context the router was built in, plus what the path reads from it. */
  readonly context: Context.Context<never>
  /** The router's app (`HttpRouter.asHttpEffect()`). */
  readonly app: Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, unknown>
  /** The serve middleware (`HttpRouter.serve`'s `middleware` option), if any. */
  readonly middleware?: HttpMiddleware.HttpMiddleware | undefined
  readonly headers: Record<string, string>
  /** Default `http://127.0.0.1:8080/api/v1/whoami`. */
  readonly url?: string | undefined
  /** Requests measured (as many again run before, to warm up). */
  readonly n: number
}

export interface Measured {
  /** User + system CPU time per request. */
  readonly cpuNanos: number
  /** Wall time per request. */
  readonly wallNanos: number
  /** Requests whose handling did not succeed (warm-up included). */
  readonly failures: number
}

export const measure = (options: Options): Effect.Effect<Measured> =>
  Effect.gen(function*() {
    const handled = HttpEffect.toHandled(
      options.app as Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, never>,
      () => Effect.void,
      options.middleware
    ) as Effect.Effect<void, never, HttpServerRequest.HttpServerRequest>
    const url = options.url ?? "http://127.0.0.1:8080/api/v1/whoami"
    let failures = 0
    const run = (count: number) =>
      Effect.promise(async () => {
        for (let i = 0; i < count; i++) {
          const request = HttpServerRequest.fromWeb(new Request(url, { headers: options.headers }))
          const fiber = Effect.runForkWith(Context.add(options.context, HttpServerRequest.HttpServerRequest, request))(
            handled
          )
          const exit = fiber.pollUnsafe() ?? (await Effect.runPromise(Fiber.await(fiber)))
          if (exit._tag !== "Success") failures++
        }
      })
    yield* run(options.n)
    const before = process.cpuUsage()
    const started = performance.now()
    yield* run(options.n)
    const cpu = process.cpuUsage(before)
    return {
      cpuNanos: ((cpu.user + cpu.system) * 1000) / options.n,
      wallNanos: ((performance.now() - started) * 1e6) / options.n,
      failures
    }
  })
