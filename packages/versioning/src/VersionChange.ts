/**
 * Version changes: what separates an API version from the next newer one, as Schema transformations.
 *
 * Only the newest version of an API has handlers. Each older version is the newer one seen through a change: its
 * requests are migrated up (old → new) before the newer handler runs, and the answer, success or error, is migrated
 * back down (new → old). This is how Stripe keeps every API version it ever shipped, and how Cadwyn (FastAPI) builds
 * older versions from `VersionChange` classes: business code knows only the newest version, and each breaking change
 * is one small, described module.
 *
 * A change is declared between two neighbouring versions, each an `HttpApi` of its own, and its migrations are typed
 * by both: a migration from the wrong schema, or a forgotten one, does not compile. Per endpoint (matched by group and
 * endpoint identifier) a change may migrate:
 *
 * - the request, up: `params`, `query`, `headers`, `payload` (old type → new type)
 * - the answer, down: `success` and `error` (new type → old type)
 *
 * A migration is a `SchemaTransformation.Transformation<New, Old>`: the package runs its `decode` side for requests
 * and its `encode` side for answers, so one transformation can describe both directions of a shape, and its getters
 * can fail with a `SchemaIssue` (a request that cannot be expressed in the newer version is a 400). A plain function
 * is the common case and becomes such a transformation.
 *
 * An endpoint of the older version that the newer one dropped is declared with {@link VersionChange.removed}, with a
 * handler of its own (or {@link gone}). An endpoint that only the newer version has is simply not in the older
 * `HttpApi`, so it is not served there. Which migrations a pair of versions needs is computed from their schemas: a
 * request part whose old type is not assignable to the new one, an answer whose new type is not assignable to the old
 * one, an endpoint that is gone. `VersionedApi.previous` refuses, at compile time, changes that leave one of them uncovered.
 *
 * @since 0.1.0
 */
import { Effect, Pipeable, Predicate, Result, SchemaGetter, SchemaIssue, SchemaTransformation } from "effect"
import type { Schema } from "effect"
import { HttpServerResponse } from "effect/http"
import type { HttpApi, HttpApiEndpoint, HttpApiGroup } from "effect/http-api"

const TypeId = "~@ouroboros/versioning/VersionChange"

// -----------------------------------------------------------------------------
// Reading an HttpApi's types
// -----------------------------------------------------------------------------

/**
 * Any `HttpApi`.
 *
 * @since 0.1.0
 * @category models
 */
export type AnyApi = HttpApi.Constraint

/**
 * The groups of an api.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Groups<Api> = Api extends HttpApi.HttpApi<infer _Id, infer G> ? G : never

/**
 * The group identifiers of an api.
 *
 * @since 0.1.0
 * @category type-level
 */
export type GroupIds<Api> = HttpApiGroup.Identifier<Groups<Api>>

/**
 * The endpoints of group `G` of an api.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Endpoints<Api, G extends string> = HttpApiGroup.Endpoints<HttpApiGroup.WithIdentifier<Groups<Api>, G>>

/**
 * The endpoint identifiers of group `G` of an api.
 *
 * @since 0.1.0
 * @category type-level
 */
export type EndpointIds<Api, G extends string> = HttpApiEndpoint.Identifier<Endpoints<Api, G>>

/**
 * Endpoint `N` of group `G` of an api.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Endpoint<Api, G extends string, N extends string> = HttpApiEndpoint.WithIdentifier<Endpoints<Api, G>, N>

type TypeOf<S> = [S] extends [never] ? never : S extends Schema.Top ? S["Type"] : never

/**
 * The decoded path parameters of an endpoint (`never` when it has none).
 *
 * @since 0.1.0
 * @category type-level
 */
export type ParamsOf<E> = TypeOf<HttpApiEndpoint.Params<E>>

/**
 * The decoded query of an endpoint (`never` when it has none).
 *
 * @since 0.1.0
 * @category type-level
 */
export type QueryOf<E> = TypeOf<HttpApiEndpoint.Query<E>>

/**
 * The decoded headers of an endpoint (`never` when it declares none).
 *
 * @since 0.1.0
 * @category type-level
 */
export type HeadersOf<E> = TypeOf<HttpApiEndpoint.Headers<E>>

/**
 * The decoded payload of an endpoint (`never` when it has none).
 *
 * @since 0.1.0
 * @category type-level
 */
export type PayloadOf<E> = TypeOf<HttpApiEndpoint.Payload<E>>

/**
 * The success value of an endpoint's handler.
 *
 * @since 0.1.0
 * @category type-level
 */
export type SuccessOf<E> = E extends HttpApiEndpoint.Constraint
  ? HttpApiEndpoint.SuccessWithIdentifier<E, HttpApiEndpoint.Identifier<E>>
  : never

/**
 * The declared errors of an endpoint (`never` when it declares none).
 *
 * @since 0.1.0
 * @category type-level
 */
export type ErrorOf<E> = TypeOf<HttpApiEndpoint.Error<E>>

// -----------------------------------------------------------------------------
// Migrations
// -----------------------------------------------------------------------------

/**
 * A request migration, old → new: a function, or a Schema transformation whose `decode` side is run.
 *
 * @since 0.1.0
 * @category models
 */
export type Up<Old, New> = ((old: Old) => New) | SchemaTransformation.Transformation<New, Old>

/**
 * An answer migration, new → old: a function, or a Schema transformation whose `encode` side is run.
 *
 * @since 0.1.0
 * @category models
 */
export type Down<New, Old> = ((value: New) => Old) | SchemaTransformation.Transformation<New, Old>

/**
 * The names of the parts of an endpoint that a change can migrate.
 *
 * @since 0.1.0
 * @category models
 */
export type Part = "params" | "query" | "headers" | "payload" | "success" | "error"

const parts: ReadonlyArray<Part> = ["params", "query", "headers", "payload", "success", "error"]

// A request part the older version lacks is `undefined` to the migration that must produce the newer one.
type OrUndefined<A> = [A] extends [never] ? undefined : A

type UpSlot<K extends string, Old, New> = [New] extends [never] ? {}
  : { readonly [_ in K]?: Up<OrUndefined<Old>, New> }

type DownSlot<K extends string, New, Old> = [New] extends [never] ? {}
  : { readonly [_ in K]?: Down<New, Old> }

/**
 * What a change does to one endpoint present in both versions. Every slot is optional here; which ones the pair of
 * versions needs is checked when the change joins a `VersionedApi` (see {@link RequiredSlots}).
 *
 * @since 0.1.0
 * @category models
 */
export type EndpointChange<OldE, NewE> =
  & { readonly description?: string | undefined }
  & UpSlot<"params", ParamsOf<OldE>, ParamsOf<NewE>>
  & UpSlot<"query", QueryOf<OldE>, QueryOf<NewE>>
  & UpSlot<"headers", HeadersOf<OldE>, HeadersOf<NewE>>
  & UpSlot<"payload", PayloadOf<OldE>, PayloadOf<NewE>>
  & DownSlot<"success", SuccessOf<NewE>, SuccessOf<OldE>>
  & DownSlot<"error", ErrorOf<NewE>, ErrorOf<OldE>>

type NeedsUp<Old, New> = [New] extends [never] ? false : [OrUndefined<Old>] extends [New] ? false : true
type NeedsDown<New, Old> = [New] extends [never] ? false : [New] extends [Old] ? false : true

type SlotsOf<Key extends string, OldE, NewE> =
  | (NeedsUp<ParamsOf<OldE>, ParamsOf<NewE>> extends true ? `${Key}.params` : never)
  | (NeedsUp<QueryOf<OldE>, QueryOf<NewE>> extends true ? `${Key}.query` : never)
  | (NeedsUp<HeadersOf<OldE>, HeadersOf<NewE>> extends true ? `${Key}.headers` : never)
  | (NeedsUp<PayloadOf<OldE>, PayloadOf<NewE>> extends true ? `${Key}.payload` : never)
  | (NeedsDown<SuccessOf<NewE>, SuccessOf<OldE>> extends true ? `${Key}.success` : never)
  | (NeedsDown<ErrorOf<NewE>, ErrorOf<OldE>> extends true ? `${Key}.error` : never)

/**
 * The migrations that the version `Older` needs to be served by the handlers of `Newer`, as `group.endpoint.part`
 * (`documents.ingest.payload`) and `group.endpoint.removed` for an endpoint that `Newer` dropped.
 *
 * @since 0.1.0
 * @category type-level
 */
export type RequiredSlots<Older, Newer> = {
  [G in GroupIds<Older>]: {
    [N in EndpointIds<Older, G>]: G extends GroupIds<Newer>
      ? N extends EndpointIds<Newer, G> ? SlotsOf<`${G}.${N}`, Endpoint<Older, G, N>, Endpoint<Newer, G, N>>
      : `${G}.${N}.removed`
      : `${G}.${N}.removed`
  }[EndpointIds<Older, G>]
}[GroupIds<Older>]

/**
 * The endpoints of group `G` that `Older` has and `Newer` does not.
 *
 * @since 0.1.0
 * @category type-level
 */
export type RemovedIds<Older, Newer, G extends string> = G extends GroupIds<Newer>
  ? Exclude<EndpointIds<Older, G>, EndpointIds<Newer, G>>
  : EndpointIds<Older, G>

/**
 * The endpoints of group `G` that both versions have.
 *
 * @since 0.1.0
 * @category type-level
 */
export type SharedIds<Older, Newer, G extends string> = G extends GroupIds<Newer>
  ? EndpointIds<Older, G> & EndpointIds<Newer, G>
  : never

// -----------------------------------------------------------------------------
// Model
// -----------------------------------------------------------------------------

/**
 * The migrations of one endpoint, each a Schema transformation (new ← old).
 *
 * @since 0.1.0
 * @category models
 */
export interface EndpointMigrations {
  readonly group: string
  readonly endpoint: string
  readonly description: string | undefined
  readonly params?: SchemaTransformation.Transformation<unknown, unknown> | undefined
  readonly query?: SchemaTransformation.Transformation<unknown, unknown> | undefined
  readonly headers?: SchemaTransformation.Transformation<unknown, unknown> | undefined
  readonly payload?: SchemaTransformation.Transformation<unknown, unknown> | undefined
  readonly success?: SchemaTransformation.Transformation<unknown, unknown> | undefined
  readonly error?: SchemaTransformation.Transformation<unknown, unknown> | undefined
}

/**
 * An endpoint that the older version has and the newer one dropped, with the handler that serves it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Removal {
  readonly group: string
  readonly endpoint: string
  readonly description: string | undefined
  readonly handler: (request: any) => Effect.Effect<unknown, unknown, unknown>
}

/**
 * A change between the versions `Older` and `Newer` (each an `HttpApi`). `Covered` lists the migrations it declares
 * (`group.endpoint.part`), `R` the services its removed endpoints' handlers need.
 *
 * @since 0.1.0
 * @category models
 */
export interface VersionChange<
  out Older extends AnyApi,
  out Newer extends AnyApi,
  out Covered extends string = never,
  out R = never
> extends Pipeable.Pipeable {
  readonly [TypeId]: typeof TypeId
  readonly "~Covered": Covered
  readonly "~R": R
  /** What changed, for the version's migration notes. */
  readonly description: string
  readonly older: Older
  readonly newer: Newer
  readonly migrations: ReadonlyArray<EndpointMigrations>
  readonly removals: ReadonlyArray<Removal>

  /**
   * Migrates endpoint `name` of group `group`: request parts up, answers down.
   */
  endpoint<
    const G extends GroupIds<Older> & GroupIds<Newer>,
    const N extends SharedIds<Older, Newer, G>,
    const C extends EndpointChange<Endpoint<Older, G, N>, Endpoint<Newer, G, N>>
  >(group: G, name: N, change: C): VersionChange<Older, Newer, Covered | `${G}.${N}.${keyof C & Part}`, R>

  /**
   * Declares endpoint `name` of group `group`, which the newer version dropped, and serves it in the older version
   * with `handler` (typed by the older version's endpoint; {@link gone} answers 410).
   */
  removed<
    const G extends GroupIds<Older>,
    const N extends RemovedIds<Older, Newer, G>,
    R1
  >(
    group: G,
    name: N,
    handler: HttpApiEndpoint.Handler<
      Endpoint<Older, G, N>,
      HttpApiEndpoint.MiddlewareError<Endpoint<Older, G, N>>,
      R1
    >,
    options?: { readonly description?: string | undefined }
  ): VersionChange<Older, Newer, Covered | `${G}.${N}.removed`, R | R1>
}

/**
 * Any change.
 *
 * @since 0.1.0
 * @category models
 */
export interface Any extends VersionChange<AnyApi, AnyApi, string, unknown> {}

/**
 * Whether a value is a {@link VersionChange}.
 *
 * @since 0.1.0
 * @category guards
 */
export const isVersionChange = (u: unknown): u is Any => Predicate.hasProperty(u, TypeId)

const upOnly = SchemaGetter.forbidden<never, unknown>(() => "this migration only runs from the older version up")
const downOnly = SchemaGetter.forbidden<never, unknown>(() => "this migration only runs from the newer version down")

/**
 * A request migration (old → new) from a function.
 *
 * @since 0.1.0
 * @category migrations
 */
export const up = <Old, New>(f: (old: Old) => New): SchemaTransformation.Transformation<New, Old> =>
  new SchemaTransformation.Transformation(SchemaGetter.transform(f), upOnly as SchemaGetter.Getter<Old, New>)

/**
 * A request migration (old → new) that may refuse a request the newer version cannot express: `f` answers
 * `Result.succeed(new)` or `Result.fail(message)`, and a refusal is a 400 whose detail is the message.
 *
 * @since 0.1.0
 * @category migrations
 * @example
 * import { VersionChange } from "@ouroboros/versioning"
 * import { Result } from "effect"
 *
 * // v2 keeps one tag where v1 kept a list
 * const payload = VersionChange.upOrFail((v1: { readonly tags: ReadonlyArray<string> }) =>
 *   v1.tags.length === 1 ? Result.succeed({ tag: v1.tags[0]! }) : Result.fail("v2 keeps exactly one tag")
 * )
 */
export const upOrFail = <Old, New>(
  f: (old: Old) => Result.Result<New, string>
): SchemaTransformation.Transformation<New, Old> =>
  new SchemaTransformation.Transformation(
    SchemaGetter.transformEffect<New, Old>((old) => {
      const result = f(old)
      return Result.isSuccess(result)
        ? Effect.succeed(result.success)
        : Effect.fail(new SchemaIssue.InvalidValue({ message: result.failure }))
    }),
    upOnly as SchemaGetter.Getter<Old, New>
  )

/**
 * An answer migration (new → old) from a function.
 *
 * @since 0.1.0
 * @category migrations
 */
export const down = <New, Old>(f: (value: New) => Old): SchemaTransformation.Transformation<New, Old> =>
  new SchemaTransformation.Transformation(downOnly as SchemaGetter.Getter<New, Old>, SchemaGetter.transform(f))

const normalize = (
  migration: unknown,
  direction: "up" | "down"
): SchemaTransformation.Transformation<unknown, unknown> | undefined => {
  if (migration === undefined) return undefined
  if (SchemaTransformation.isTransformation(migration)) return migration as any
  if (typeof migration === "function") {
    return direction === "up" ? up(migration as (u: unknown) => unknown) : down(migration as (u: unknown) => unknown)
  }
  throw new TypeError("a migration is a function or a SchemaTransformation.Transformation")
}

const groupsOf = (api: AnyApi): Record<string, HttpApiGroup.Top> =>
  (api as unknown as HttpApi.Top).groups as unknown as Record<string, HttpApiGroup.Top>

const Proto = {
  [TypeId]: TypeId,
  pipe() {
    return Pipeable.pipeArguments(this, arguments)
  },
  endpoint(this: Any, group: string, name: string, change: Record<string, unknown>) {
    const groupOld = groupsOf(this.older)[group]
    const groupNew = groupsOf(this.newer)[group]
    if (groupOld?.endpoints[name] === undefined || groupNew?.endpoints[name] === undefined) {
      throw new Error(`VersionChange "${this.description}": ${group}.${name} is not an endpoint of both versions`)
    }
    const migrations: Record<string, unknown> = {
      group,
      endpoint: name,
      description: typeof change.description === "string" ? change.description : undefined
    }
    for (const part of parts) {
      const migration = normalize(change[part], part === "success" || part === "error" ? "down" : "up")
      if (migration !== undefined) migrations[part] = migration
    }
    return makeProto({ ...this, migrations: [...this.migrations, migrations as unknown as EndpointMigrations] })
  },
  removed(
    this: Any,
    group: string,
    name: string,
    handler: Removal["handler"],
    options?: { readonly description?: string | undefined }
  ) {
    const groupOld = groupsOf(this.older)[group]
    const groupNew = groupsOf(this.newer)[group]
    if (groupOld?.endpoints[name] === undefined || groupNew?.endpoints[name] !== undefined) {
      throw new Error(
        `VersionChange "${this.description}": ${group}.${name} is not an endpoint that only the older version has`
      )
    }
    return makeProto({
      ...this,
      removals: [...this.removals, { group, endpoint: name, description: options?.description, handler }]
    })
  }
}

const makeProto = (fields: {
  readonly description: string
  readonly older: AnyApi
  readonly newer: AnyApi
  readonly migrations: ReadonlyArray<EndpointMigrations>
  readonly removals: ReadonlyArray<Removal>
}): Any => {
  const self = Object.create(Proto)
  self.description = fields.description
  self.older = fields.older
  self.newer = fields.newer
  self.migrations = fields.migrations
  self.removals = fields.removals
  return self
}

/**
 * Starts a change from version `older` to version `newer` (each an `HttpApi`), described for the migration notes.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * import { VersionChange } from "@ouroboros/versioning"
 * import { Schema } from "effect"
 * import { HttpApi, HttpApiEndpoint, HttpApiGroup } from "effect/http-api"
 *
 * // v1 takes and answers { id, text }; v2 calls `text` `content` and wraps answers in { data, meta }
 * const V1Document = Schema.Struct({ id: Schema.String, text: Schema.String })
 * const V2Document = Schema.Struct({ id: Schema.String, content: Schema.String })
 * const Envelope = Schema.Struct({ data: V2Document, meta: Schema.Struct({}) })
 * class ApiV1 extends HttpApi.make("v1").add(
 *   HttpApiGroup.make("documents")
 *     .add(HttpApiEndpoint.post("ingest", "/documents", { payload: V1Document, success: V1Document }))
 *     .add(HttpApiEndpoint.get("get", "/documents/:id", { params: { id: Schema.String }, success: V1Document }))
 *     .prefix("/api/v1")
 * ) {}
 * class ApiV2 extends HttpApi.make("v2").add(
 *   HttpApiGroup.make("documents")
 *     .add(HttpApiEndpoint.post("ingest", "/documents", { payload: V2Document, success: Envelope }))
 *     .add(HttpApiEndpoint.get("get", "/documents/:id", { params: { id: Schema.String }, success: Envelope }))
 *     .prefix("/api/v2")
 * ) {}
 *
 * export const ContentAndEnvelopes = VersionChange.make(ApiV1, ApiV2, "`text` is `content`; bodies are enveloped")
 *   .endpoint("documents", "ingest", {
 *     payload: (v1) => ({ id: v1.id, content: v1.text }),
 *     success: (v2) => ({ id: v2.data.id, text: v2.data.content })
 *   })
 *   .endpoint("documents", "get", { success: (v2) => ({ id: v2.data.id, text: v2.data.content }) })
 */
export const make = <Older extends AnyApi, Newer extends AnyApi>(
  older: Older,
  newer: Newer,
  description: string
): VersionChange<Older, Newer> =>
  makeProto({ description, older, newer, migrations: [], removals: [] }) as unknown as VersionChange<Older, Newer>

/**
 * The handler of a removed endpoint that answers 410 Gone, a problem whose `detail` says what to use instead.
 *
 * @since 0.1.0
 * @category handlers
 */
export const gone = (detail: string) => (): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  Effect.succeed(
    HttpServerResponse.jsonUnsafe(
      { type: "about:blank", title: "Gone", status: 410, detail },
      { status: 410, contentType: "application/problem+json" }
    )
  )
