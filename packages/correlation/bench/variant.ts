// Bench-only: the per-request CPU cost of what this package adds to the server's request path, in process (no sockets,
// the same measurement as `bench/servers/stack.ts`'s STACK_INPROCESS: bench/internal/inprocess.ts): `n` requests
// (after as many to warm up) go one after the other through the server's serve middleware, over a router of ~40
// routes (the server's shapes) whose handler answers a whoami-sized JSON. The variant is the first argument:
//
//   base      CorrelationHttp.middleware (the server's serve middleware today, without shutdown tracking)
//   log       + AccessLog with RED metrics, lines written to stdout in batches (the driver sends stdout to a file)
//   metrics   + AccessLog with RED metrics only (LOG_REQUESTS=false)
//   compress  base + CompressionHttp as a global router middleware; the request offers gzip and br, the body is small
//   limit     base + RateLimiterHttp (default policy, memory store) as a global router middleware
//   all       log + compress + limit
//   platform  base + Effect's own request log (`HttpMiddleware.logger`, what `HttpRouter.serve` runs unless
//             `disableLogger`), to stdout through Effect's default logger: the peer of `log`
//
// Prints `RESULT={"cpuNanos":…}` on stderr.
import { AccessLog, CorrelationHttp, HttpMetrics, RouteTable } from "@ouroboros/correlation"
import { CompressionHttp, RateLimiter, RateLimiterHttp } from "@ouroboros/rate-limit"
import { Context, Effect, Layer } from "effect"
import { constTrue } from "effect/Function"
import { HttpMiddleware, HttpRouter, HttpServerResponse } from "effect/http"
import * as InProcess from "../../../bench/internal/inprocess.js"

const variant = process.argv[2] ?? "base"
const n = Number(process.argv[3] ?? 50_000)
const has = (piece: string) => variant === piece || (variant === "all" && piece !== "metrics")

const templates = [
  "/api/v1/whoami",
  "/api/v1/ask",
  "/api/v1/search",
  "/api/v1/documents",
  "/api/v1/documents/:id",
  "/api/v1/pipelines",
  "/api/v1/pipelines/:id",
  "/api/v2/whoami",
  "/api/v2/ask",
  "/api/v2/search",
  "/api/v2/documents",
  "/api/v2/documents/:id",
  "/api/v2/pipelines",
  "/api/v2/pipelines/:id",
  "/api/versions",
  "/api/versions/:version",
  "/api/v1/openapi.json",
  "/api/v2/openapi.json",
  "/openapi.json",
  "/docs",
  "/metrics",
  "/health/live",
  "/health/ready",
  "/health/startup",
  "/admin/flags",
  "/admin/flags/:key",
  "/admin/tenants",
  "/admin/tenants/:id",
  "/admin/tenants/:id/keys",
  "/admin/tenants/:id/keys/:key",
  "/admin/backups",
  "/admin/backups/:id/verify",
  "/admin/backups/:id/restore",
  "/admin/circuit-breakers",
  "/admin/circuit-breakers/:name/reset",
  "/admin/projections/vectors",
  "/admin/audit",
  "/admin/audit/verify",
  "/console/*"
]

const body = { tenantId: "bench", subject: "key:0123456789ab", roles: ["writer", "reader"] }
const [first, ...rest] = templates.map((path) =>
  HttpRouter.add("GET", path as HttpRouter.PathInput, Effect.sync(() => HttpServerResponse.jsonUnsafe(body)))
)
const Routes = Layer.mergeAll(first!, ...rest)

const Middleware = Layer.mergeAll(
  has("compress") ? CompressionHttp.layer() : Layer.empty,
  has("limit")
    ? RateLimiterHttp.layer().pipe(
      Layer.provide(RateLimiter.layerMemory({ policies: [RateLimiter.defaultPolicy(1_000_000_000, 60_000)] }))
    )
    : Layer.empty
)

const routes = RouteTable.make()

const program = Effect.gen(function*() {
  const context = yield* Layer.build(
    Layer.mergeAll(Routes, Middleware).pipe(
      Layer.provide(RouteTable.layer(routes)),
      Layer.provideMerge(HttpRouter.layer)
    )
  )
  const app = Context.get(context, HttpRouter.HttpRouter).asHttpEffect()
  const observe = has("log") || variant === "metrics"
    ? AccessLog.make({ routes, metrics: yield* HttpMetrics.make, log: variant !== "metrics" })
    : variant === "platform"
    ? HttpMiddleware.logger
    : (effect: typeof app) => effect
  const measured = yield* InProcess.measure({
    // The server turns the platform's span off (`CorrelationHttp.withServerSpan`).
    context: Context.add(context, HttpMiddleware.TracerDisabledWhen, constTrue),
    app,
    middleware: ((effect: typeof app) => CorrelationHttp.middleware(observe(effect))) as HttpMiddleware.HttpMiddleware,
    headers: {
      "x-api-key": "bench-key-0123456789abcdef",
      host: "127.0.0.1:8080",
      "user-agent": "bench",
      "accept-encoding": "gzip, deflate, br"
    },
    n
  })
  process.stderr.write(
    `RESULT=${JSON.stringify({ variant, cpuNanos: measured.cpuNanos, failures: measured.failures })}\n`
  )
}).pipe(Effect.scoped)

Effect.runPromise(program as Effect.Effect<void, unknown>).then(() => process.exit(0), (error) => {
  console.error(error)
  process.exit(1)
})
