/**
 * The product as the server serves it to a tenant: `@ouroboros/retrieval`'s services acting for the request's
 * principal, with the tenant's quotas enforced and its usage metered, the `writer` role required for writes, and the
 * language model chosen per tenant. Every failure is already the problem the client gets (retrieval's errors through
 * `RetrievalHttp.toProblem`, quotas through `QuotasHttp.toProblem`), so the handlers of every API version only shape
 * the answers.
 *
 * Quotas and usage:
 *
 * - ingest: `documents` (+1 for a new document) and `storedBytes` (the growth of its text, UTF-8) are consumed before
 *   the work and given back when it fails (hard quotas: 403); usage records the embedded characters and the change of
 *   stored bytes;
 * - delete: both are given back; usage records the bytes removed;
 * - search: usage records the embedded characters of the query;
 * - ask and pipelines: `llmTokensPerMonth` must not be used up (403); the tokens the answer took (Ollama's count, or
 *   an estimate for the local models) are added to the quota and to usage;
 * - every request: `requestsPerDay` and the request count, by `QuotasHttp` and `UsageHttp` in the request path.
 *
 * Audit (`@ouroboros/audit`): a document created, replaced or deleted is a `data.create`, `data.update` or
 * `data.delete` event committed before the answer (a log that cannot commit it makes the request a 503); a document
 * read is a `data.read` event, queued.
 *
 * @since 0.1.0
 */
import { type AuditEvent, AuditLog } from "@ouroboros/audit"
import { Principal, Problem } from "@ouroboros/kernel"
import { Pipeline, Retrieval, RetrievalHttp } from "@ouroboros/retrieval"
import { Quotas, QuotasHttp, TenancyHttp, type Tenant, Usage } from "@ouroboros/tenancy"
import { Filter } from "@ouroboros/vector-store"
import { Context, Effect, Layer, Option } from "effect"
import * as Audit from "./Audit.js"
import * as Models from "./Models.js"

type QuotaProblem = QuotasHttp.RequestQuotaExceeded | QuotasHttp.QuotaExhausted

/**
 * The operations, each for the principal in context.
 *
 * @since 0.1.0
 * @category services
 */
export class Documents extends Context.Service<Documents, {
  readonly ingest: (request: Retrieval.IngestRequest) => Effect.Effect<
    Retrieval.Document,
    Problem.Conflict | Problem.UnprocessableEntity | Problem.ServiceUnavailable | Problem.Forbidden | QuotaProblem,
    Principal.CurrentPrincipal
  >
  readonly get: (id: string) => Effect.Effect<Retrieval.Document, Problem.NotFound, Principal.CurrentPrincipal>
  readonly remove: (id: string) => Effect.Effect<
    void,
    Problem.NotFound | Problem.Conflict | Problem.ServiceUnavailable | Problem.Forbidden,
    Principal.CurrentPrincipal
  >
  readonly list: (
    request: Retrieval.ListRequest
  ) => Effect.Effect<Retrieval.DocumentPage, Problem.BadRequest, Principal.CurrentPrincipal>
  readonly search: (request: {
    readonly query: string
    readonly limit: number
    readonly filter?: unknown
  }) => Effect.Effect<
    ReadonlyArray<Retrieval.Hit>,
    Filter.InvalidFilter | Problem.ServiceUnavailable,
    Principal.CurrentPrincipal
  >
  readonly ask: (
    request: Retrieval.AskRequest
  ) => Effect.Effect<Retrieval.AskResponse, QuotaProblem, Principal.CurrentPrincipal>
  readonly runPipeline: (request: Pipeline.RunRequest) => Effect.Effect<
    Pipeline.Pipeline,
    RetrievalHttp.ProblemOf<Pipeline.RunError> | Problem.Forbidden | QuotaProblem,
    Principal.CurrentPrincipal
  >
  readonly getPipeline: (id: string) => Effect.Effect<Pipeline.Pipeline, Problem.NotFound, Principal.CurrentPrincipal>
}>()("@ouroboros/server/Documents") {}

const quotaProblem = <A, R>(
  effect: Effect.Effect<A, Quotas.QuotaExceeded | Tenant.TenantNotFound, R>
): Effect.Effect<A, QuotaProblem, R> =>
  effect.pipe(
    Effect.catchTags({
      QuotaExceeded: QuotasHttp.toProblem,
      // The tenant was deleted while its request ran.
      TenantNotFound: (error) => Effect.die(error)
    })
  )

const bytesOf = (text: string) => Buffer.byteLength(text, "utf8")

/**
 * The service on retrieval's services, the tenancy services and the model choice.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.gen(function*() {
  const retrieval = yield* Retrieval.Retrieval
  const pipelines = yield* Pipeline.Pipelines
  const quotas = yield* Quotas.Quotas
  const usage = yield* Usage.Usage
  const choose = yield* Models.ModelChoice
  const audit = yield* AuditLog.AuditLog

  const auditEvent = (type: AuditEvent.EventType, action: string, id: string, version?: number) =>
    Effect.map(Audit.currentActor("documents"), (actor): AuditEvent.AuditEvent => ({
      type,
      actor,
      action,
      resource: { type: "document", id },
      outcome: "success",
      ...(version === undefined ? {} : { details: { version } })
    }))
  // A change is answered only once its event is committed.
  const auditChange = (type: AuditEvent.EventType, action: string, id: string, version?: number) =>
    auditEvent(type, action, id, version).pipe(
      Effect.flatMap(audit.append),
      Effect.catchTags({
        AuditUnavailable: () =>
          Effect.fail(new Problem.ServiceUnavailable({ detail: "the audit log is unavailable", retryAfter: 1 })),
        InvalidEvent: (error) => Effect.die(error)
      }),
      Effect.asVoid
    )

  const writer = TenancyHttp.requireRole("writer")

  const ingest: Documents["Service"]["ingest"] = (request) =>
    Effect.gen(function*() {
      const principal = yield* writer
      const tenant = principal.tenantId
      const bytes = bytesOf(request.text)
      const previous = request.id === undefined
        ? undefined
        : Option.getOrUndefined(yield* Effect.option(retrieval.get(principal, request.id)))
      const previousBytes = previous === undefined ? 0 : bytesOf(previous.text)
      const charge = { documents: previous === undefined ? 1 : 0, storedBytes: Math.max(0, bytes - previousBytes) }
      yield* quotaProblem(quotas.consume(tenant, charge))
      const document = yield* retrieval.ingest(principal, request).pipe(
        Effect.onError(() => quotas.release(tenant, charge)),
        RetrievalHttp.toProblems
      )
      // The same content again changes nothing: nothing was charged either.
      if (previous !== undefined && document.version === previous.version) return document
      if (bytes < previousBytes) yield* quotas.release(tenant, { storedBytes: previousBytes - bytes })
      yield* usage.record(tenant, { embeddedCharacters: request.text.length, storedBytes: bytes - previousBytes })
      yield* previous === undefined
        ? auditChange("data.create", "documents.create", document.id, document.version)
        : auditChange("data.update", "documents.update", document.id, document.version)
      return document
    })

  const get: Documents["Service"]["get"] = (id) =>
    Effect.flatMap(Principal.CurrentPrincipal, (principal) => RetrievalHttp.toProblems(retrieval.get(principal, id)))
      .pipe(
        Effect.tap((document) =>
          Effect.flatMap(auditEvent("data.read", "documents.get", document.id, document.version), audit.record)
        )
      )

  const remove: Documents["Service"]["remove"] = (id) =>
    Effect.gen(function*() {
      const principal = yield* writer
      const document = yield* RetrievalHttp.toProblems(retrieval.get(principal, id))
      yield* RetrievalHttp.toProblems(retrieval.remove(principal, id))
      const bytes = bytesOf(document.text)
      yield* quotas.release(principal.tenantId, { documents: 1, storedBytes: bytes })
      yield* usage.record(principal.tenantId, { storedBytes: -bytes })
      yield* auditChange("data.delete", "documents.delete", id)
    })

  const list: Documents["Service"]["list"] = (request) =>
    Effect.flatMap(
      Principal.CurrentPrincipal,
      (principal) => RetrievalHttp.toProblems(retrieval.list(principal, request))
    )

  const search: Documents["Service"]["search"] = (request) =>
    Effect.gen(function*() {
      const principal = yield* Principal.CurrentPrincipal
      const filter = request.filter === undefined ? undefined : yield* Filter.decodeUnknown(request.filter)
      const hits = yield* RetrievalHttp.toProblems(
        retrieval.search(principal, { query: request.query, limit: request.limit, filter })
      )
      yield* usage.record(principal.tenantId, { embeddedCharacters: request.query.length })
      return hits
    })

  // The tokens of the month must not be used up before a call whose cost is known only after it.
  const tokensLeft = (principal: Principal.Principal) =>
    quotaProblem(quotas.check(principal.tenantId, { llmTokensPerMonth: 1 }))

  const ask: Documents["Service"]["ask"] = (request) =>
    Effect.gen(function*() {
      const principal = yield* Principal.CurrentPrincipal
      yield* tokensLeft(principal)
      const choice = yield* choose(principal, request.model)
      const answered = yield* retrieval.answer(principal, { ...request, ...choice })
      const { embeddedCharacters, llmTokens } = answered.usage
      yield* quotas.record(principal.tenantId, { llmTokensPerMonth: llmTokens })
      yield* usage.record(principal.tenantId, { llmTokens, embeddedCharacters })
      return answered.response
    })

  const runPipeline: Documents["Service"]["runPipeline"] = (request) =>
    Effect.gen(function*() {
      const principal = yield* writer
      yield* tokensLeft(principal)
      const choice = yield* choose(principal, request.model)
      const ran = yield* pipelines.runWithUsage(
        principal,
        choice.model === undefined ? request : { ...request, model: choice.model },
        { local: choice.local }
      ).pipe(RetrievalHttp.toProblems)
      yield* quotas.record(principal.tenantId, { llmTokensPerMonth: ran.usage.llmTokens })
      yield* usage.record(principal.tenantId, { llmTokens: ran.usage.llmTokens })
      return ran.pipeline
    })

  const getPipeline: Documents["Service"]["getPipeline"] = (id) =>
    Effect.flatMap(Principal.CurrentPrincipal, (principal) => RetrievalHttp.toProblems(pipelines.get(principal, id)))

  return Documents.of({ ingest, get, remove, list, search, ask, runPipeline, getPipeline })
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = Layer.effect(Documents, make)
