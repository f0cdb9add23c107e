// Bench-only: the bundled server's request path for GET /api/v1/whoami, composed from the same packages and in the
// same order as apps/server/src/Server.ts (shutdown tracking → correlation + server span → problem+json → load
// shedding → rate limits → concurrency → body limit → malformed JSON → HttpApi security middleware → handler), with
// no storage behind it, so that pieces can be turned off one at a time: `STACK_OFF` is a comma-separated list of
//
//   server       the shutdown's Node server (ShutdownHttp.layerServer) → a plain node:http server
//   shutdown     ShutdownHttp.middleware (in-flight tracking)
//   correlation  CorrelationHttp.middleware
//   span         CorrelationHttp.withServerSpan (the middleware then completes the platform's span)
//   problem      ProblemHttp.middleware
//   shed         LoadShedderHttp
//   rate         RateLimiterHttp
//   concurrency  ConcurrencyLimiterHttp
//   body         the body limit (declared length) and the reader's MaxBodySize
//   json         the malformed-JSON rewrite
//   auth         the HttpApi security middleware (the handler then answers a fixed principal)
//   router       every router middleware at once (problem, shed, rate, concurrency, body, json)
//
// `STACK_MOVE=correlation,shutdown` moves those middlewares from `HttpRouter.serve`'s `middleware` option to the outside
// of the router's global middleware (a server with no `serve` middleware takes the platform's one-frame request path);
// `STACK_NOOP_SERVE=1` gives `serve` an identity middleware (what any `serve` middleware costs by being there).
// `STACK_PAD=n` adds n unused services to the context the routes are built in (the bundled server's handler groups
// capture a context of about 40 services, which HttpApiBuilder merges into every request's context).
// The app-level glue (the key ring, the security middleware, the limiter's subject resolver, the body limit) repeats
// apps/server's in a few lines, so that this file does not break while apps/server is restructured.
import { NodeHttpServer } from "@effect/platform-node"
import { CorrelationHttp, Logging } from "@ouroboros/correlation"
import { Principal, Problem, ProblemHttp, TenantId } from "@ouroboros/kernel"
import {
  ConcurrencyLimiter,
  ConcurrencyLimiterHttp,
  LoadShedder,
  LoadShedderHttp,
  RateLimiter,
  RateLimiterHttp
} from "@ouroboros/rate-limit"
import { InFlight, Shutdown, ShutdownHttp } from "@ouroboros/shutdown"
import { ByteSize, Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import { constTrue } from "effect/Function"
import {
  HttpIncomingMessage,
  HttpMiddleware,
  HttpRouter,
  HttpServer,
  HttpServerRequest,
  type HttpServerResponse
} from "effect/http"
import {
  HttpApi,
  HttpApiBuilder,
  HttpApiEndpoint,
  HttpApiGroup,
  HttpApiMiddleware,
  HttpApiSecurity
} from "effect/http-api"
import { createHash } from "node:crypto"
import { createServer } from "node:http"
import * as InProcess from "../internal/inprocess.js"

const list = (name: string) =>
  new Set((process.env[name] ?? "").split(",").map((s) => s.trim()).filter((s) => s !== ""))
const off = list("STACK_OFF")
const moved = list("STACK_MOVE")
const routerPieces = new Set(["problem", "shed", "rate", "concurrency", "body", "json"])
const on = (piece: string) => !off.has(piece) && !(off.has("router") && routerPieces.has(piece))
const authOn = on("auth")
const maxBodyBytes = 1_048_576

// The key ring of apps/server/src/Authentication.ts: SHA-256 digests, recent keys remembered.
const digest = (key: string) => createHash("sha256").update(key).digest("hex")
const keys = new Map<string, Principal.Principal>()
const benchKey = process.env.BENCH_KEY ?? "bench-key-0123456789abcdef"
keys.set(
  digest(benchKey),
  new Principal.Principal({
    tenantId: TenantId.make("bench"),
    subject: `key:${digest(benchKey).slice(0, 12)}`,
    roles: ["writer", "reader"],
    method: "api-key"
  })
)
const recent = new Map<string, Option.Option<Principal.Principal>>()
const resolve = (key: string): Option.Option<Principal.Principal> => {
  const known = recent.get(key)
  if (known !== undefined) return known
  const principal = Option.fromUndefinedOr(keys.get(digest(key)))
  recent.set(key, principal)
  return principal
}

class Authentication extends HttpApiMiddleware.Service<Authentication, { provides: Principal.CurrentPrincipal }>()(
  "Authentication",
  {
    error: [Problem.Unauthorized, Problem.Forbidden],
    security: { apiKey: HttpApiSecurity.apiKey({ key: "X-API-Key", in: "header" }) }
  }
) {}

const AuthenticationLive = Layer.succeed(Authentication, {
  apiKey: (effect, { credential }) => {
    const value = Redacted.value(credential)
    if (value === "") {
      return Effect.fail(new Problem.Unauthorized({ detail: "an X-API-Key header with a valid key is required" }))
    }
    const principal = resolve(value)
    if (Option.isNone(principal)) return Effect.fail(new Problem.Unauthorized({ detail: "the API key is not valid" }))
    return Effect.provideService(effect, Principal.CurrentPrincipal, principal.value)
  }
})

const WhoAmI = Schema.Struct({ tenantId: Schema.String, subject: Schema.String, roles: Schema.Array(Schema.String) })
const group = HttpApiGroup.make("documents").add(HttpApiEndpoint.get("whoami", "/whoami", { success: WhoAmI }))
class Api extends HttpApi.make("stack").add(
  (authOn ? group.middleware(Authentication) : group).prefix("/api/v1")
) {}

const fixed = resolve(benchKey).pipe(Option.getOrThrow)
const Documents: Layer.Layer<any, never, any> = HttpApiBuilder.group(
  Api,
  "documents",
  (handlers) =>
    handlers.handle("whoami", () =>
      Effect.map(
        authOn ? Effect.service(Principal.CurrentPrincipal) : Effect.succeed(fixed),
        (p) => ({ tenantId: p.tenantId, subject: p.subject, roles: p.roles })
      ))
)

// Unused services in the routes' context, as many as STACK_PAD says.
const pad = Layer.succeedContext(
  Context.makeUnsafe(
    new Map(Array.from({ length: Number(process.env.STACK_PAD ?? 0) }, (_, i) => [`bench/pad/${i}`, { i }] as const))
  )
)

// apps/server/src/Limits.ts's resolver: the default subject plus the tenant of a known key.
const resolver = (): RateLimiterHttp.KeyResolver => {
  const base = RateLimiterHttp.defaultResolver({ trustedProxies: [] })
  return (request) => {
    const subject = base(request)
    const key = request.headers["x-api-key"]
    if (key === undefined || key === "") return subject
    const principal = resolve(key)
    if (Option.isNone(principal)) return subject
    return {
      apiKey: subject.apiKey,
      client: subject.client,
      endpoint: subject.endpoint,
      tenant: principal.value.tenantId,
      tier: undefined
    }
  }
}

type App = Effect.Effect<HttpServerResponse.HttpServerResponse, any, any>
const identity = (app: App): App => app

const bodyLimit = (app: App): App => {
  const tooLarge = Effect.succeed(ProblemHttp.payloadTooLarge(maxBodyBytes))
  return Effect.withFiber((fiber) => {
    const declared = Context.getUnsafe(fiber.context, HttpServerRequest.HttpServerRequest).headers["content-length"]
    return declared !== undefined && Number(declared) > maxBodyBytes ? tooLarge : app
  })
}

const malformedJson = (app: App): App => Effect.catchCauseIf(app, () => false, () => Effect.die("unreachable"))

const RouterMiddleware = HttpRouter.middleware(
  Effect.gen(function*() {
    const shed = on("shed") ? yield* LoadShedderHttp.make() : identity
    const rate = on("rate") ? yield* RateLimiterHttp.make({ resolve: resolver() }) : identity
    const concurrency = on("concurrency") ? yield* ConcurrencyLimiterHttp.make() : identity
    const problem = on("problem") ? ProblemHttp.middleware : identity
    const body = on("body") ? bodyLimit : identity
    const json = on("json") ? malformedJson : identity
    const correlation = on("correlation") && moved.has("correlation") ? CorrelationHttp.middleware : identity
    const shutdown = on("shutdown") && moved.has("shutdown") ? ShutdownHttp.middleware : identity
    return (effect: App) => shutdown(correlation(problem(shed(rate(concurrency(body(json(effect)))))))) as App
  }),
  { global: true }
)

const Routes = HttpApiBuilder.layer(Api).pipe(
  Layer.provide(Documents),
  Layer.provide(pad),
  Layer.provide(AuthenticationLive),
  Layer.provide(RouterMiddleware)
)

const serveCorrelation = on("correlation") && !moved.has("correlation")
const serveShutdown = on("shutdown") && !moved.has("shutdown")
const serveMiddleware = (app: App): App => {
  const correlated = serveCorrelation ? CorrelationHttp.middleware(app) : app
  return serveShutdown ? ShutdownHttp.middleware(correlated) : correlated
}

const Served = HttpRouter.serve(Routes, {
  disableLogger: true,
  disableListenLog: true,
  ...(serveCorrelation || serveShutdown || process.env.STACK_NOOP_SERVE === "1" ? { middleware: serveMiddleware } : {})
})

const Services = Layer.mergeAll(
  on("body") ? Layer.succeed(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(maxBodyBytes)) : Layer.empty,
  RateLimiter.layerConfig({ policies: [] }),
  ConcurrencyLimiter.layerConfig,
  LoadShedder.layerConfig
)

/**
 * `STACK_INPROCESS=n`: no server; `n` requests (after as many to warm up) are run in process through the same app and
 * serve middleware as the server runs them (bench/internal/inprocess.ts), and the CPU time per request printed as
 * `RESULT=…`.
 */
const inProcess = (n: number) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      Routes.pipe(Layer.provideMerge(HttpRouter.layer), Layer.provideMerge(InFlight.layer), Layer.provide(Services))
    )
    const measured = yield* InProcess.measure({
      context: on("span") ? Context.add(context, HttpMiddleware.TracerDisabledWhen, constTrue) : context,
      app: Context.get(context, HttpRouter.HttpRouter).asHttpEffect(),
      middleware: serveCorrelation || serveShutdown || process.env.STACK_NOOP_SERVE === "1"
        ? serveMiddleware as HttpMiddleware.HttpMiddleware
        : undefined,
      headers: { "x-api-key": benchKey, host: "127.0.0.1:8080", "user-agent": "bench" },
      n
    })
    console.log(`RESULT=${JSON.stringify(measured)}`)
  }).pipe(Effect.scoped)

const NodeServer = on("server")
  ? ShutdownHttp.layerServer({ port: 0, host: "127.0.0.1" })
  : Layer.orDie(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" }))

const Main = (on("span") ? CorrelationHttp.withServerSpan(Served) : Served).pipe(
  Layer.provideMerge(NodeServer),
  Layer.provide(Services),
  Layer.tap((context) =>
    Effect.sync(() => {
      const address = Context.get(context, HttpServer.HttpServer).address
      console.log(`PORT=${"port" in address ? address.port : 0}`)
    })
  )
)

if (process.env.STACK_INPROCESS !== undefined) {
  Effect.runPromise(
    inProcess(Number(process.env.STACK_INPROCESS)).pipe(
      Effect.provide(Logging.layer({ format: "json", level: "Warn" }))
    ) as Effect.Effect<void, unknown>
  ).then(() => process.exit(0), (error) => {
    console.error(error)
    process.exit(1)
  })
} else {
  Shutdown.run(Main as Layer.Layer<unknown, unknown, Shutdown.Shutdown>, {
    runtime: Logging.layer({ format: "json", level: "Warn" })
  })
}
