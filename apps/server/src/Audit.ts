/**
 * The audit log of the server (`@ouroboros/audit`, SQL on the server's database: PostgreSQL at `DATABASE_URL`, or
 * the embedded one under `DATA_DIR`; its keys from `AUDIT_*`, generated under `DATA_DIR/audit` when unset), and where
 * its events come from. No handler writes an event by hand; they come from:
 *
 * - the request path ({@link middleware}): every authentication outcome the tenancy middleware resolved (success
 *   queued; failure durable before the answer), a request to a protected route without credentials (a 401), and every
 *   authorization denial (a 403 `Forbidden` problem, from a security middleware or a role check), durable before the
 *   answer;
 * - the features' own hooks: the circuit breakers' operator actions (`CircuitBreakerHttp.BreakerAudit`, with the
 *   reason of the request body), flag changes (`FlagAudit`), backups and restores (`Backup.Auditor`), and the tenants'
 *   changes and keys (`Tenants.events`, with the principal that made them);
 * - the `Documents` service, for the data it changes (durable before the answer) and reads (queued);
 * - the log itself, for retention pruning (`AUDIT_RETENTION`, `AUDIT_PRUNE_INTERVAL`) and erasure.
 *
 * The `audit` group (`GET /admin/audit`, `/verify`, `/checkpoint`, `/proof`) is served to admins and tenant admins;
 * a tenant admin sees its own tenant's events only ({@link layerScope}).
 *
 * @since 0.1.0
 */
import { AuditEvent, AuditHttp, AuditLog } from "@ouroboros/audit"
import { Backup } from "@ouroboros/backup"
import { CircuitBreakerHttp } from "@ouroboros/circuit-breaker"
import { FlagAudit } from "@ouroboros/feature-flags"
import { Principal, Problem } from "@ouroboros/kernel"
import { TenancyHttp, type Tenant, Tenants } from "@ouroboros/tenancy"
import { Clock, Config, Context, Duration, Effect, Layer, Option, type Schema, Stream } from "effect"
import { HttpServerRequest, type HttpServerResponse } from "effect/http"
import * as Limits from "./Limits.js"

/**
 * The log on the `SqlClient` in context, configured by `AUDIT_*` (see `@ouroboros/audit`'s README); generated keys
 * are kept under `<dataDir>/audit`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (dataDir: string) => AuditLog.layerConfig({ dataDir })

// -----------------------------------------------------------------------------
// actors
// -----------------------------------------------------------------------------

const clip = (value: string | undefined, max: number): string | undefined =>
  value === undefined || value === "" ? undefined : value.length > max ? value.slice(0, max) : value

/**
 * The client's address as the request path resolved it (`RATE_LIMIT_TRUSTED_PROXIES`: the `X-Forwarded-For` of a
 * trusted proxy), provided by {@link middleware} to everything after it; unset outside it.
 *
 * @since 0.1.0
 * @category references
 */
export const CurrentClientAddress = Context.Reference<string | undefined>(
  "@ouroboros/server/Audit/CurrentClientAddress",
  { defaultValue: () => undefined }
)

/**
 * What the request says about the client: its address (as resolved, else the socket's peer) and user agent.
 *
 * @since 0.1.0
 * @category utils
 */
export const clientOf = (request: HttpServerRequest.HttpServerRequest, address?: string | undefined) => ({
  clientAddress: clip(address ?? Option.getOrUndefined(request.remoteAddress), 256),
  userAgent: clip(request.headers["user-agent"], 1024)
})

/**
 * The actor of whatever runs now: the request's principal (from the security middleware, or the tenancy middleware's
 * outcome), with the client's address and user agent; `system:<component>` outside a request.
 *
 * @since 0.1.0
 * @category accessors
 */
export const currentActor = (component: string): Effect.Effect<AuditEvent.Actor> =>
  Effect.gen(function*() {
    const provided = yield* Effect.serviceOption(Principal.CurrentPrincipal)
    const principal = Option.isSome(provided) ? provided : yield* TenancyHttp.currentPrincipal
    const request = yield* Effect.serviceOption(HttpServerRequest.HttpServerRequest)
    const client = Option.isSome(request) ? clientOf(request.value, yield* CurrentClientAddress) : {}
    if (Option.isSome(principal)) return AuditEvent.actorOf(principal.value, client)
    return Option.isSome(request) ? AuditEvent.actorOf(anonymous, client) : AuditEvent.systemActor(component)
  })

const anonymous = { subject: "anonymous", roles: [] }

// -----------------------------------------------------------------------------
// the request path
// -----------------------------------------------------------------------------

/**
 * A middleware of the server's request path (it keeps the app's errors and requirements).
 *
 * @since 0.1.0
 * @category models
 */
export interface Middleware {
  <E, R>(
    app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
  ): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest>
}

const decoder = new TextDecoder()

// The `detail` of a 403 `Forbidden` problem (a denial); undefined for any other 403 (a quota, say).
const forbiddenDetail = (response: HttpServerResponse.HttpServerResponse): string | undefined => {
  const body = response.body
  if (body._tag !== "Uint8Array") return undefined
  try {
    const problem = JSON.parse(decoder.decode(body.body)) as {
      readonly _tag?: unknown
      readonly type?: unknown
      readonly detail?: unknown
    }
    // Before the problem middleware rewrites it, the body still carries the error's tag; after, its documented type.
    const forbidden = problem._tag === "Forbidden" ||
      (typeof problem.type === "string" && problem.type.endsWith("/problems/forbidden"))
    return forbidden ? (typeof problem.detail === "string" ? problem.detail : "forbidden") : undefined
  } catch {
    return undefined
  }
}

const resourceOf = (request: HttpServerRequest.HttpServerRequest): AuditEvent.Resource => {
  const path = request.url.split("?", 1)[0]!
  return { type: "route", id: `${request.method} ${clip(path, 1000)}` }
}

/**
 * `AUDIT_AUTH_SUCCESS_WINDOW` (default 1 minute): within it, the request path records one `authentication.success`
 * per principal, client address and user agent; `0` records every authenticated request.
 *
 * @since 0.1.0
 * @category config
 */
export const authSuccessWindow: Config.Config<Duration.Duration> = Config.Duration("AUDIT_AUTH_SUCCESS_WINDOW").pipe(
  Config.withDefault(Duration.minutes(1))
)

const maxWindowEntries = 10_000

/**
 * The audit step of the request path, inside the tenancy middleware (it reads the request's authentication outcome)
 * and around the rest (it sees the answer):
 *
 * - an authenticated request: `authentication.success`, queued (never delays the request), once per principal,
 *   client address and user agent within `AUDIT_AUTH_SUCCESS_WINDOW` ({@link authSuccessWindow}; `0`: every request),
 *   as identity providers aggregate non-interactive sign-ins; what the request then reads or changes is audited by
 *   the services, request by request;
 * - refused credentials, or none on a route that needs them (a 401): `authentication.failure`, with the reason,
 *   every time;
 * - a 403 `Forbidden` problem: `authorization.denied`, with the problem's detail, every time.
 *
 * Failures and denials are durable before the answer leaves (the log's `record` waits for those types).
 *
 * @since 0.1.0
 * @category middleware
 */
export const middleware: Effect.Effect<Middleware, Config.ConfigError, AuditLog.AuditLog> = Effect.gen(function*() {
  const audit = yield* AuditLog.AuditLog
  const resolveClient = Limits.clientAddress(yield* Limits.trustedProxies)
  const windowMillis = Duration.toMillis(yield* authSuccessWindow)
  // When each principal, address and user agent last had its success recorded (bounded: when full, it starts over,
  // which records more, never less).
  const lastRecorded = new Map<string, number>()
  const firstInWindow = (actor: AuditEvent.Actor, now: number): boolean => {
    if (windowMillis <= 0) return true
    const key = `${actor.tenantId ?? ""}\u0000${actor.subject}\u0000${actor.clientAddress ?? ""}\u0000${
      actor.userAgent ?? ""
    }`
    const last = lastRecorded.get(key)
    if (last !== undefined && now - last < windowMillis && now >= last) return false
    if (lastRecorded.size >= maxWindowEntries) lastRecorded.clear()
    lastRecorded.set(key, now)
    return true
  }
  return (app) =>
    Effect.withFiber((fiber) => {
      const request = Context.getUnsafe(fiber.context, HttpServerRequest.HttpServerRequest)
      const outcome = fiber.getRef(TenancyHttp.CurrentAuthentication)
      const address = resolveClient(request)
      const client = clientOf(request, address)
      const event = (
        type: AuditEvent.EventType,
        actor: AuditEvent.Actor,
        result: AuditEvent.Outcome,
        reason: string | undefined
      ): AuditEvent.AuditEvent => ({
        type,
        actor,
        action: type === "authorization.denied" ? "authorize" : "authenticate",
        resource: resourceOf(request),
        outcome: result,
        ...(reason === undefined ? {} : { reason: clip(reason, 2048)! })
      })
      const anonymousActor = (): AuditEvent.Actor => AuditEvent.actorOf(anonymous, client)
      return Effect.flatMap(Effect.provideService(app, CurrentClientAddress, address), (response) => {
        if (outcome._tag === "Authenticated") {
          const actor = AuditEvent.actorOf(outcome.principal, client)
          const success = firstInWindow(actor, fiber.getRef(Clock.Clock).currentTimeMillisUnsafe())
            ? audit.record(event("authentication.success", actor, "success", undefined))
            : Effect.void
          if (response.status !== 403) return Effect.as(success, response)
          const detail = forbiddenDetail(response)
          return detail === undefined ? Effect.as(success, response) : Effect.andThen(
            success,
            Effect.as(audit.record(event("authorization.denied", actor, "denied", detail)), response)
          )
        }
        if (outcome._tag === "Rejected") {
          return Effect.as(
            audit.record(
              event("authentication.failure", anonymousActor(), "failure", `credentials refused: ${outcome.reason}`)
            ),
            response
          )
        }
        if (response.status === 401) {
          return Effect.as(
            audit.record(event("authentication.failure", anonymousActor(), "failure", "no credentials")),
            response
          )
        }
        return Effect.succeed(response)
      })
    })
})

// -----------------------------------------------------------------------------
// the admin endpoints
// -----------------------------------------------------------------------------

/**
 * The `AuditHttp.Scope` of the server: an admin sees every tenant's events, a tenant admin only its own tenant's.
 * The group carries `TenancyHttp.TenantAdminAuthentication`, which runs first and provides the principal.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerScope: Layer.Layer<AuditHttp.Scope> = AuditHttp.layerScope(
  Effect.flatMap(Effect.serviceOption(Principal.CurrentPrincipal), (principal) =>
    Option.isNone(principal)
      ? Effect.fail(new Problem.Forbidden({ detail: "this endpoint needs the admin or tenant-admin role" }))
      : Effect.succeed(principal.value.hasRole("admin") ? undefined : principal.value.tenantId))
)

// -----------------------------------------------------------------------------
// the features' hooks
// -----------------------------------------------------------------------------

/**
 * `Backup.Auditor` from the log: every backup, verification, pruning of backups and restore, as `backup` or
 * `restore` events (durable), by the request's principal or `system:backup` (the scheduler).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerBackupAuditor: Layer.Layer<Backup.Auditor, never, AuditLog.AuditLog> = Layer.effect(
  Backup.Auditor,
  Effect.map(Effect.service(AuditLog.AuditLog), (audit) =>
    Backup.Auditor.of({
      record: (operation) =>
        Effect.flatMap(currentActor("backup"), (actor) => audit.record(AuditLog.backupEvent(operation, actor)))
    }))
)

/**
 * The `FlagAudit` hook from the log: every flag change as a `flag.change` event (durable), with the flag, the tenant of
 * an override, the reason, and the states before and after.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFlagAudit: Layer.Layer<never, never, AuditLog.AuditLog> = Layer.unwrap(
  Effect.map(Effect.service(AuditLog.AuditLog), (audit) =>
    FlagAudit.layer({
      record: (change) =>
        Effect.flatMap(currentActor("flags"), (current) => {
          // Outside a request (a file reload), the hook's own actor name is all there is.
          const actor = current.subject.startsWith("system:") ? { ...current, subject: change.actor } : current
          return audit.record({
            type: "flag.change",
            actor,
            action: change.action,
            resource: { type: "flag", id: change.flagKey },
            outcome: "success",
            ...(change.tenantId === undefined ? {} : { tenantId: change.tenantId }),
            ...(change.reason === undefined ? {} : { reason: change.reason.slice(0, 2048) }),
            details: jsonDetails({ before: change.before, after: change.after, at: change.at })
          })
        })
    }))
)

// Flag states are JSON already; anything else (undefined) is left out.
const jsonDetails = (record: Record<string, unknown>): Schema.JsonObject =>
  JSON.parse(JSON.stringify(record)) as Schema.JsonObject

/**
 * The `CircuitBreakerHttp.BreakerAudit` hook from the log: force-open, force-close and reset as `admin.action` events
 * (durable before the answer), with the reason of the request body and the state they left.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerBreakerAudit: Layer.Layer<never, never, AuditLog.AuditLog> = Layer.unwrap(
  Effect.map(Effect.service(AuditLog.AuditLog), (audit) =>
    CircuitBreakerHttp.layerAudit({
      record: (action) =>
        Effect.flatMap(currentActor("circuit-breakers"), (actor) =>
          audit.record({
            type: "admin.action",
            actor,
            action: `circuit-breaker.${action.action}`,
            resource: { type: "circuit-breaker", id: action.name },
            outcome: action.outcome,
            ...(action.reason === undefined ? {} : { reason: action.reason }),
            ...(action.state === undefined ? {} : { details: { state: action.state } })
          }))
    }))
)

const tenantEvent = (event: Tenant.TenantEvent): AuditEvent.AuditEvent => {
  // Who made the change (the admin API's principal); the command line and startup have none.
  const actor = event.actor === undefined ? AuditEvent.systemActor("tenancy") : AuditEvent.actorOf(event.actor, {})
  switch (event._tag) {
    case "TenantCreated":
    case "TenantUpdated":
    case "TenantDeleted":
      return {
        type: "admin.action",
        actor,
        action: event._tag === "TenantCreated"
          ? "tenant.create"
          : event._tag === "TenantUpdated"
          ? "tenant.update"
          : "tenant.delete",
        resource: { type: "tenant", id: event.tenant.id },
        tenantId: event.tenant.id,
        outcome: "success",
        ...(event._tag === "TenantDeleted" ? { details: { keysDeleted: event.keysDeleted } } : {})
      }
    case "KeyCreated":
    case "KeyRotated":
    case "KeyRevoked":
      return {
        type: event._tag === "KeyCreated" ? "key.created" : event._tag === "KeyRotated" ? "key.rotated" : "key.revoked",
        actor,
        action: event._tag === "KeyCreated" ? "key.create" : event._tag === "KeyRotated" ? "key.rotate" : "key.revoke",
        resource: { type: "api-key", id: event.key.id },
        tenantId: event.key.tenantId,
        outcome: "success",
        ...(event._tag === "KeyRotated" ? { details: { previous: event.previous.id } } : {})
      }
  }
}

/**
 * The tenants' changes and their keys' lifecycle (`Tenants.events`): `admin.action` for a tenant created, updated or
 * deleted, `key.created` / `key.rotated` / `key.revoked` for keys. Each event's actor is the principal that made the
 * change (`system:tenancy` for the command line and startup); they are recorded as they are published, not before
 * the answer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerTenantEvents: Layer.Layer<never, never, Tenants.Tenants | AuditLog.AuditLog> = Layer.effectDiscard(
  Effect.gen(function*() {
    const tenants = yield* Tenants.Tenants
    const audit = yield* AuditLog.AuditLog
    yield* tenants.events.pipe(
      Stream.runForEach((event) => audit.record(tenantEvent(event))),
      Effect.forkScoped
    )
  })
)
