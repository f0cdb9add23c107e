/**
 * What an audit event says: who (the actor) did what (the type and action) to what (the resource), when, from where,
 * with what outcome and why, and how it ties to the request (correlation and trace ids).
 *
 * Personal data is kept apart from the rest: the actor's subject, client address and user agent, and the optional
 * `personalDetails`, are sealed with a key of the data subject (AES-256-GCM) before the entry is hashed, so destroying
 * that key erases them while the entry, and every proof over it, stays as it was. Everything else (type, action,
 * resource, outcome, reason, `details`, tenant, roles) is stored in clear and must not hold personal data.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

// PostgreSQL text cannot hold NUL, and RFC 8785 has no encoding for a lone surrogate.
const noNul = Schema.makeFilter((s: string) => !s.includes("\u0000") && !loneSurrogate.test(s), {
  message: "must be well-formed text without NUL characters"
})

const text = (max: number) => Schema.String.check(Schema.isMaxLength(max), noNul)

const name = (max: number) => Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(max), noNul)

/**
 * The kinds of event.
 *
 * - `authentication.success`, `authentication.failure`: a caller proved, or failed to prove, who it is.
 * - `authorization.denied`: a known caller was refused.
 * - `data.read`, `data.create`, `data.update`, `data.delete`: an operation on data.
 * - `admin.action`, `config.change`: administration.
 * - `backup`, `restore`: a backup was taken, verified or pruned; a backup was restored.
 * - `flag.change`: a feature flag changed.
 * - `key.created`, `key.rotated`, `key.revoked`: API keys and signing keys.
 * - `retention.prune`: expired entries were pruned (written by the log itself).
 * - `retention.erasure`: a data subject's personal data was erased (written by the log itself).
 *
 * @since 0.1.0
 * @category schemas
 */
export const EventType = Schema.Literals([
  "authentication.success",
  "authentication.failure",
  "authorization.denied",
  "data.read",
  "data.create",
  "data.update",
  "data.delete",
  "admin.action",
  "config.change",
  "backup",
  "restore",
  "flag.change",
  "key.created",
  "key.rotated",
  "key.revoked",
  "retention.prune",
  "retention.erasure"
]).annotate({ identifier: "AuditEventType" })

/**
 * @since 0.1.0
 * @category models
 */
export type EventType = typeof EventType.Type

/**
 * Every event type, in the order {@link EventType} lists them.
 *
 * @since 0.1.0
 * @category constants
 */
export const eventTypes: ReadonlyArray<EventType> = EventType.literals

/**
 * The types whose events must be durable before the operation they record is answered: denials, failed
 * authentications and every change. `AuditLog.record` waits for these as `append` does.
 *
 * @since 0.1.0
 * @category constants
 */
export const durableTypes: ReadonlySet<EventType> = new Set<EventType>([
  "authentication.failure",
  "authorization.denied",
  "data.create",
  "data.update",
  "data.delete",
  "admin.action",
  "config.change",
  "backup",
  "restore",
  "flag.change",
  "key.created",
  "key.rotated",
  "key.revoked",
  "retention.prune",
  "retention.erasure"
])

/**
 * How it ended: `success`, `failure` (it was tried and failed) or `denied` (it was not allowed).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Outcome = Schema.Literals(["success", "failure", "denied"]).annotate({ identifier: "AuditOutcome" })

/**
 * @since 0.1.0
 * @category models
 */
export type Outcome = typeof Outcome.Type

/**
 * Who acted: the principal's subject (a key id, a JWT `sub`, `system:<component>`), its tenant and roles, and where
 * the request came from. The subject, client address and user agent are personal data (sealed).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Actor = Schema.Struct({
  subject: name(1024),
  tenantId: Schema.optionalKey(name(64)),
  roles: Schema.Array(name(128)),
  clientAddress: Schema.optionalKey(text(256)),
  userAgent: Schema.optionalKey(text(1024))
}).annotate({ identifier: "AuditActor" })

/**
 * @since 0.1.0
 * @category models
 */
export type Actor = typeof Actor.Type

/**
 * An actor from any principal-like value (`{ tenantId, subject, roles }`, such as the kernel's `Principal`) and what
 * the request says about the client.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * import { AuditEvent } from "@ouroboros/audit"
 * const actor = AuditEvent.actorOf(
 *   { tenantId: "acme", subject: "key:1", roles: ["writer"] },
 *   { clientAddress: "10.0.0.7" }
 * )
 */
export const actorOf = (
  principal: {
    readonly tenantId?: string | undefined
    readonly subject: string
    readonly roles: ReadonlyArray<string>
  },
  client: { readonly clientAddress?: string | undefined; readonly userAgent?: string | undefined } = {}
): Actor => ({
  subject: principal.subject,
  ...(principal.tenantId === undefined ? {} : { tenantId: principal.tenantId }),
  roles: [...principal.roles],
  ...(client.clientAddress === undefined ? {} : { clientAddress: client.clientAddress }),
  ...(client.userAgent === undefined ? {} : { userAgent: client.userAgent })
})

/**
 * The actor of what a component does on its own (a scheduled backup, retention): subject `system:<component>`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const systemActor = (component: string): Actor => ({ subject: `system:${component}`, roles: ["system"] })

/**
 * What the event is about: a type (`document`, `tenant`, `backup`, `flag`, …) and, usually, an id. Not personal
 * data: use a pseudonymous id for a resource that identifies a person.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Resource = Schema.Struct({
  type: name(128),
  id: Schema.optionalKey(name(1024))
}).annotate({ identifier: "AuditResource" })

/**
 * @since 0.1.0
 * @category models
 */
export type Resource = typeof Resource.Type

/**
 * An event to record. `tenantId` (the tenant whose data or settings the event concerns, which decides who may read it
 * and which retention applies) defaults to the actor's; `correlationId` and `traceId` default to the current
 * request's.
 *
 * @since 0.1.0
 * @category schemas
 */
export const AuditEvent = Schema.Struct({
  type: EventType,
  actor: Actor,
  action: name(256),
  resource: Resource,
  outcome: Outcome,
  tenantId: Schema.optionalKey(name(64)),
  reason: Schema.optionalKey(text(2048)),
  correlationId: Schema.optionalKey(name(128)),
  traceId: Schema.optionalKey(name(64)),
  /** Structured context in clear (no personal data). */
  details: Schema.optionalKey(Schema.JsonObject),
  /** Structured personal data, sealed with the actor's subject key. */
  personalDetails: Schema.optionalKey(Schema.JsonObject)
}).annotate({ identifier: "AuditEvent" })

/**
 * @since 0.1.0
 * @category models
 */
export type AuditEvent = typeof AuditEvent.Type

/**
 * The sealed part of an entry: which subject key sealed it, the AES-GCM nonce and the ciphertext with its tag
 * (base64).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Sealed = Schema.Struct({
  keyId: Schema.String,
  iv: Schema.String,
  data: Schema.String
})

/**
 * @since 0.1.0
 * @category models
 */
export type Sealed = typeof Sealed.Type

/**
 * An entry as hashed into the tree: its canonical JSON (RFC 8785) is the leaf's data. The position (`index`) is part
 * of it, so a row moved to another position no longer matches.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Entry = Schema.Struct({
  v: Schema.Literal(1),
  index: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  id: Schema.String,
  time: Schema.String,
  type: EventType,
  tenantId: Schema.optionalKey(Schema.String),
  actor: Schema.Struct({ tenantId: Schema.optionalKey(Schema.String), roles: Schema.Array(Schema.String) }),
  action: Schema.String,
  resource: Resource,
  outcome: Outcome,
  reason: Schema.optionalKey(Schema.String),
  correlationId: Schema.optionalKey(Schema.String),
  traceId: Schema.optionalKey(Schema.String),
  details: Schema.optionalKey(Schema.JsonObject),
  sealed: Sealed
}).annotate({ identifier: "AuditEntry" })

/**
 * @since 0.1.0
 * @category models
 */
export type Entry = typeof Entry.Type

/**
 * The sealed personal fields.
 *
 * @since 0.1.0
 * @category models
 */
export interface Personal {
  readonly subject: string
  readonly clientAddress?: string | undefined
  readonly userAgent?: string | undefined
  readonly personalDetails?: Schema.JsonObject | undefined
}

/**
 * An entry as read back: the entry with its personal fields opened, or marked `erased` when its subject key was
 * destroyed.
 *
 * @since 0.1.0
 * @category schemas
 */
export const AuditRecord = Schema.Struct({
  index: Schema.Int,
  id: Schema.String,
  time: Schema.String,
  type: EventType,
  tenantId: Schema.optionalKey(Schema.String),
  actor: Schema.Struct({
    subject: Schema.optionalKey(Schema.String),
    tenantId: Schema.optionalKey(Schema.String),
    roles: Schema.Array(Schema.String),
    clientAddress: Schema.optionalKey(Schema.String),
    userAgent: Schema.optionalKey(Schema.String)
  }),
  action: Schema.String,
  resource: Resource,
  outcome: Outcome,
  reason: Schema.optionalKey(Schema.String),
  correlationId: Schema.optionalKey(Schema.String),
  traceId: Schema.optionalKey(Schema.String),
  details: Schema.optionalKey(Schema.JsonObject),
  personalDetails: Schema.optionalKey(Schema.JsonObject),
  /** The subject key was destroyed: the personal fields are gone for good. */
  erased: Schema.Boolean,
  /** The leaf hash, base64. */
  leafHash: Schema.String
}).annotate({ identifier: "AuditRecord" })

/**
 * @since 0.1.0
 * @category models
 */
export type AuditRecord = typeof AuditRecord.Type
