/**
 * A preview of the admin API the server is about to serve: the packages' own `HttpApi` groups for feature flags
 * (`@ouroboros/feature-flags`), tenants, keys and usage (`@ouroboros/tenancy`) and the audit log
 * (`@ouroboros/audit`), guarded by tenancy's middlewares as the server will guard them, with the health probes and
 * `/metrics`, and the console mounted at `/console` — all in this process, on in-memory stores.
 *
 * It lets the console's views for those APIs run in a browser before the server wires them (`Console.e2e.test.ts`
 * covers them through the real server once it does). Nothing here is a stand-in for the APIs themselves: the
 * handlers are the packages'.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { AuditEvent, AuditHttp, AuditKeys, AuditLog } from "@ouroboros/audit"
import { CircuitBreaker, CircuitBreakerHttp } from "@ouroboros/circuit-breaker"
import { FeatureFlags, FeatureFlagsHttp } from "@ouroboros/feature-flags"
import { HealthCheck, HealthHttp } from "@ouroboros/health"
import { Principal, ProblemHttp } from "@ouroboros/kernel"
import { Jwt, TenancyHttp, TenantConfig, Tenants, TenantsHttp, TenantStoreMemory, Usage } from "@ouroboros/tenancy"
import { Effect, Exit, Fiber, Layer, ManagedRuntime, Option, Redacted, References, Schema } from "effect"
import { HttpRouter } from "effect/http"
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup } from "effect/http-api"
import { PrometheusMetrics } from "effect/observability"
import * as Http from "node:http"
import * as ConsoleHttp from "../src/ConsoleHttp.js"
import { distDir, freePort, keys, waitFor } from "./harness.js"

/** The tenants the preview starts with: `tenant-a` (with a writer key) and `tenant-b`. */
export const tenantKeys = { tenantA: keys.tenantA, tenantB: keys.tenantB }

class WhoAmIGroup extends HttpApiGroup.make("tenant").add(
  HttpApiEndpoint.get("whoami", "/api/v1/whoami", {
    success: Schema.Struct({ tenantId: Schema.String, subject: Schema.String, roles: Schema.Array(Schema.String) })
  })
).middleware(TenancyHttp.Authentication) {}

class PreviewApi extends HttpApi.make("console-preview")
  .add(WhoAmIGroup)
  .add(CircuitBreakerHttp.Group.middleware(TenancyHttp.AdminAuthentication))
  .add(
    FeatureFlagsHttp.Group.middleware(FeatureFlagsHttp.ScopeFromPrincipal).middleware(
      TenancyHttp.TenantAdminAuthentication
    )
  )
  .add(TenantsHttp.Group)
  .add(AuditHttp.Group.middleware(TenancyHttp.TenantAdminAuthentication))
{}

const WhoAmILive = HttpApiBuilder.group(
  PreviewApi,
  "tenant",
  (handlers) =>
    handlers.handle("whoami", () =>
      Effect.map(Effect.service(Principal.CurrentPrincipal), (p) => ({
        tenantId: p.tenantId,
        subject: p.subject,
        roles: p.roles
      })))
)

// The audit scope from the principal tenancy resolved: a tenant administrator sees its tenant, an admin all.
const AuditScopeLive = AuditHttp.layerScope(
  Effect.map(TenancyHttp.currentPrincipal, (principal) =>
    Option.match(principal, {
      onNone: () => undefined,
      onSome: (p) => p.hasRole("admin") ? undefined : p.tenantId
    }))
)

const origin = "preview.ouroboros.local/audit"
const auditKeys = AuditKeys.generate(origin)

/** The verifier key of the preview's audit log. */
export const auditVerifierKey = auditKeys.signer.verifierKey

const Services = Layer.mergeAll(
  Usage.layer({ flushIntervalMillis: 3_600_000 }).pipe(Layer.provide(Usage.layerMemoryStore)),
  FeatureFlags.layerMemory({
    flags: {
      "new-search": {
        state: "ENABLED",
        variants: { on: true, off: false },
        defaultVariant: "off",
        targeting: { if: [{ in: [{ var: "tenantId" }, ["tenant-a"]] }, "on", "off"] }
      },
      "answer-model": {
        state: "ENABLED",
        variants: { small: "llama3.2:1b", large: "llama3.2:3b" },
        defaultVariant: "small"
      }
    }
  }),
  AuditLog.layerMemory({ keys: auditKeys, origin, checkpointInterval: 0 }),
  CircuitBreaker.layer(),
  HealthCheck.layer({ serviceId: "ouroboros-preview" })
).pipe(
  Layer.provideMerge(
    Layer.effect(
      Tenants.Tenants,
      Effect.flatMap(
        TenantConfig.make({
          adminKey: Option.some(Redacted.make(keys.admin)),
          apiKeys: Redacted.make(`tenant-a:${keys.tenantA},tenant-b:${keys.tenantB}`)
        }, []),
        (bootstrap) => Tenants.make({ bootstrap })
      )
    ).pipe(Layer.provide(Layer.mergeAll(TenantStoreMemory.layer, Jwt.layerDisabled)))
  )
)

// Some history: evaluations for the flag charts, entries for the audit log.
const Seed = Layer.effectDiscard(Effect.gen(function*() {
  yield* HealthCheck.setPhase("serving")
  for (let i = 0; i < 12; i++) {
    yield* FeatureFlags.details(FeatureFlags.boolean("new-search", false), {
      tenantId: i % 3 === 0 ? "tenant-a" : "tenant-b"
    })
  }
  const audit = yield* AuditLog.AuditLog
  const types = ["data.create", "admin.action", "key.created", "flag.change", "backup"] as const
  for (let i = 0; i < 25; i++) {
    yield* audit.append({
      type: types[i % types.length]!,
      actor: AuditEvent.actorOf({
        tenantId: i % 2 === 0 ? "tenant-a" : "tenant-b",
        subject: `key:preview${i % 3}`,
        roles: ["writer"]
      }),
      action: `preview.${i}`,
      resource: { type: "document", id: `doc-${i}` },
      outcome: "success",
      tenantId: i % 2 === 0 ? "tenant-a" : "tenant-b",
      correlationId: `preview-correlation-${i}`
    })
  }
}))

const App = Layer.mergeAll(
  HttpApiBuilder.layer(PreviewApi, { openapiPath: "/openapi.json" }),
  HealthHttp.layerRouter,
  PrometheusMetrics.layerHttp({ path: "/metrics" }),
  ConsoleHttp.layer({ path: "/console", directory: distDir })
).pipe(
  Layer.provide([
    WhoAmILive,
    CircuitBreakerHttp.layer(PreviewApi),
    FeatureFlagsHttp.layer(PreviewApi),
    TenantsHttp.layer(PreviewApi),
    AuditHttp.layer(PreviewApi)
  ]),
  Layer.provide([TenancyHttp.layerSecurity, FeatureFlagsHttp.layerScopeFromPrincipal, AuditScopeLive]),
  Layer.provide(TenancyHttp.layer),
  Layer.provide(ProblemHttp.layer)
)

export interface Preview {
  readonly url: string
  stop(): Promise<void>
}

/** Starts the preview on a free port. */
export const startPreview = async (): Promise<Preview> => {
  const port = await freePort()
  // The services go to the served app as a whole: the handlers read them per request, and the seed fills them first.
  const served = HttpRouter.serve(App, { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provide(Seed),
    Layer.provide(NodeHttpServer.layer(() => Http.createServer(), { port, host: "127.0.0.1" })),
    Layer.provide(Services),
    Layer.provide(Layer.succeed(References.MinimumLogLevel, "Warn"))
  )
  const runtime = ManagedRuntime.make(Layer.empty)
  const fiber = runtime.runFork(Layer.launch(served))
  const url = `http://127.0.0.1:${port}`
  await waitFor("the preview server", async () => {
    if (fiber.pollUnsafe() !== undefined) {
      const exit = await runtime.runPromise(Fiber.await(fiber))
      throw new Error(`the preview server stopped: ${Exit.isFailure(exit) ? String(exit.cause) : "done"}`)
    }
    return fetch(`${url}/health/live`).then((r) => r.ok)
  })
  return {
    url,
    stop: async () => {
      await runtime.runPromise(Fiber.interrupt(fiber))
      await runtime.dispose()
    }
  }
}
