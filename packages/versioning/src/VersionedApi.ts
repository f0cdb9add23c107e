/**
 * One API in several versions, served from the handlers of the newest.
 *
 * Each version is an `HttpApi` of its own (so it has its own OpenAPI document, with its own schemas), prefixed with
 * its version (`/api/v1`, `/api/v2`). {@link make} starts a bundle with the newest version;
 * {@link VersionedApi.previous} adds the next older one with the changes that separate it from the version before
 * it, and refuses at compile time changes that leave a needed migration out.
 *
 * {@link group} implements a group once, with the handlers of the newest version (the same builder as
 * `HttpApiBuilder.group`), and makes that group's routes in every version: a request to an older version is decoded
 * with that version's schemas, migrated up through each change to the newest version's request, handled, and its
 * answer (success or declared error) is migrated back down and encoded with the older version's schemas. {@link layer}
 * registers the routes of every version on the router. Adding a version adds an `HttpApi` and a change; no handler is
 * copied.
 *
 * @since 0.1.0
 */
import { Clock, Context, Effect, Layer, Option, Pipeable, Predicate, Schema, SchemaGetter, SchemaIssue } from "effect"
import type { FileSystem, Path, Scope } from "effect"
import { type Etag, type HttpPlatform, type HttpRouter, HttpServerResponse } from "effect/http"
import { type HttpApi, HttpApiBuilder, type HttpApiEndpoint, HttpApiError, type HttpApiGroup } from "effect/http-api"
import * as ApiVersion from "./ApiVersion.js"
import * as VersionAccess from "./VersionAccess.js"
import type * as VersionChange from "./VersionChange.js"
import * as VersionMetrics from "./VersionMetrics.js"
import * as VersionPolicy from "./VersionPolicy.js"

const TypeId = "~@ouroboros/versioning/VersionedApi"

type AnyApi = VersionChange.AnyApi

/**
 * One version of the bundle.
 *
 * @since 0.1.0
 * @category models
 */
export interface Version {
  readonly version: ApiVersion.ApiVersion
  readonly api: HttpApi.Top
  /** The changes from this version to the next newer one (none for the newest). */
  readonly changes: ReadonlyArray<VersionChange.Any>
}

type CoveredOf<C> = C extends VersionChange.VersionChange<any, any, infer Covered, any> ? Covered : never
type RequirementsOf<C> = C extends VersionChange.VersionChange<any, any, any, infer R> ? R : never

/**
 * The migrations `Older` needs to be served by `Newer` that `Changes` do not declare.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Missing<Older, Newer, Changes extends ReadonlyArray<unknown>> = Exclude<
  VersionChange.RequiredSlots<Older, Newer>,
  CoveredOf<Changes[number]>
>

/**
 * The identifier of an api.
 *
 * @since 0.1.0
 * @category type-level
 */
export type ApiId<Api> = Api extends HttpApi.HttpApi<infer Id, infer _G> ? Id : never

/**
 * A bundle of versions: `Newest` has the handlers, `Oldest` is the version the next {@link VersionedApi.previous}
 * builds on, `Apis` are all of them and `R` the services that removed endpoints' handlers need.
 *
 * @since 0.1.0
 * @category models
 */
export interface VersionedApi<
  out Newest extends AnyApi,
  out Oldest extends AnyApi = Newest,
  out Apis extends AnyApi = Newest,
  out R = never
> extends Pipeable.Pipeable {
  readonly [TypeId]: typeof TypeId
  readonly "~Newest": Newest
  readonly "~Oldest": Oldest
  readonly "~Apis": Apis
  readonly "~R": R
  /** The path every version's routes start with, before the version segment. */
  readonly prefix: string
  /** Newest first. */
  readonly versions: ReadonlyArray<Version>

  /**
   * Adds the next older version, `api` (prefixed with `${prefix}/${version}`), served through `changes` by the
   * version added before it. The changes must cover every migration the pair of versions needs: each request part
   * whose older type does not fit the newer one, each answer whose newer type does not fit the older one, and every
   * endpoint the newer version dropped.
   */
  previous<
    const V extends string,
    Older extends AnyApi,
    const Changes extends ReadonlyArray<VersionChange.VersionChange<Older, Oldest, string, any>>
  >(
    version:
      & V
      & ([Missing<Older, Oldest, Changes>] extends [never] ? unknown
        : { readonly "missing version changes": Missing<Older, Oldest, Changes> }),
    api: Older,
    ...changes: Changes
  ): VersionedApi<Newest, Older, Apis | Older, R | RequirementsOf<Changes[number]>>
}

/**
 * Any bundle.
 *
 * @since 0.1.0
 * @category models
 */
export interface Any extends VersionedApi<AnyApi, AnyApi, AnyApi, unknown> {}

/**
 * Whether a value is a {@link VersionedApi}.
 *
 * @since 0.1.0
 * @category guards
 */
export const isVersionedApi = (u: unknown): u is Any => Predicate.hasProperty(u, TypeId)

const groupsOf = (api: HttpApi.Top): Record<string, HttpApiGroup.Top> =>
  api.groups as unknown as Record<string, HttpApiGroup.Top>

const checkPaths = (prefix: string, version: string, api: HttpApi.Top): void => {
  const base = `${prefix}/${version}`
  for (const group of Object.values(groupsOf(api))) {
    for (const endpoint of Object.values(group.endpoints)) {
      if (endpoint.path !== base && !endpoint.path.startsWith(`${base}/`)) {
        throw new Error(
          `VersionedApi: ${group.identifier}.${endpoint.identifier} of ${version} is at ${endpoint.path}, ` +
            `not under ${base}`
        )
      }
    }
  }
}

const key = (part: string, group: string, endpoint: string) => `${group}.${endpoint}.${part}`

const checkChanges = (older: Version, newer: Version): void => {
  const seen = new Map<string, string>()
  const claim = (slot: string, change: VersionChange.Any) => {
    const previous = seen.get(slot)
    if (previous !== undefined) {
      throw new Error(
        `VersionedApi: ${older.version}: "${change.description}" and "${previous}" both migrate ${slot}; merge them`
      )
    }
    seen.set(slot, change.description)
  }
  for (const change of older.changes) {
    if (change.older !== older.api || change.newer !== newer.api) {
      throw new Error(
        `VersionedApi: "${change.description}" is not a change from ${older.version} to ${newer.version}`
      )
    }
    for (const migration of change.migrations) {
      for (const part of ["params", "query", "headers", "payload", "success", "error"] as const) {
        if (migration[part] !== undefined) claim(key(part, migration.group, migration.endpoint), change)
      }
    }
    for (const removal of change.removals) claim(key("removed", removal.group, removal.endpoint), change)
  }
  for (const group of Object.values(groupsOf(older.api))) {
    for (const name of Object.keys(group.endpoints)) {
      const inNewer = groupsOf(newer.api)[group.identifier]?.endpoints[name] !== undefined
      if (!inNewer && !seen.has(key("removed", group.identifier, name))) {
        throw new Error(
          `VersionedApi: ${group.identifier}.${name} of ${older.version} is not in ${newer.version} ` +
            `and no change declares it removed`
        )
      }
    }
  }
}

const Proto = {
  [TypeId]: TypeId,
  pipe() {
    return Pipeable.pipeArguments(this, arguments)
  },
  previous(this: Any, version: string, api: HttpApi.Top, ...changes: ReadonlyArray<VersionChange.Any>) {
    const oldest = this.versions[this.versions.length - 1]!
    if (!ApiVersion.isCanonical(version)) throw new Error(`VersionedApi: "${version}" is not a version (v1, v2, …)`)
    if (ApiVersion.compare(version, oldest.version) >= 0) {
      throw new Error(`VersionedApi: ${version} must be older than ${oldest.version}`)
    }
    checkPaths(this.prefix, version, api)
    const entry: Version = { version, api, changes }
    checkChanges(entry, oldest)
    return makeProto(this.prefix, [...this.versions, entry])
  }
}

const makeProto = (prefix: string, versions: ReadonlyArray<Version>): Any => {
  const self = Object.create(Proto)
  self.prefix = prefix
  self.versions = versions
  return self
}

/**
 * Starts a bundle with its newest version, `api`, whose routes are under `${prefix}/${version}` (prefix `/api` by
 * default).
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * import { VersionChange, VersionedApi } from "@ouroboros/versioning"
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
 * const ContentAndEnvelopes = VersionChange.make(ApiV1, ApiV2, "`text` is `content`; bodies are enveloped")
 *   .endpoint("documents", "ingest", {
 *     payload: (v1) => ({ id: v1.id, content: v1.text }),
 *     success: (v2) => ({ id: v2.data.id, text: v2.data.content })
 *   })
 *   .endpoint("documents", "get", { success: (v2) => ({ id: v2.data.id, text: v2.data.content }) })
 *
 * // the newest version first, then each older one with the change that leads from it to the next
 * export const Versions = VersionedApi.make("v2", ApiV2).previous("v1", ApiV1, ContentAndEnvelopes)
 */
export const make = <const V extends string, Api extends AnyApi>(
  version: V,
  api: Api,
  options?: { readonly prefix?: `/${string}` | undefined }
): VersionedApi<Api> => {
  const prefix = (options?.prefix ?? "/api").replace(/\/+$/, "")
  if (!ApiVersion.isCanonical(version)) throw new Error(`VersionedApi: "${version}" is not a version (v1, v2, …)`)
  checkPaths(prefix, version, api as unknown as HttpApi.Top)
  return makeProto(prefix, [{ version, api: api as unknown as HttpApi.Top, changes: [] }]) as unknown as VersionedApi<
    Api
  >
}

/**
 * The versions of a bundle, newest first.
 *
 * @since 0.1.0
 * @category accessors
 */
export const versions = (self: Any): ReadonlyArray<ApiVersion.ApiVersion> => self.versions.map((v) => v.version)

/**
 * The endpoints of each version that the next newer version dropped (`group.endpoint`): their operations are marked
 * deprecated in that version's OpenAPI document.
 *
 * @since 0.1.0
 * @category accessors
 */
export const removedAfter = (self: Any, version: ApiVersion.ApiVersion): ReadonlySet<string> => {
  const entry = self.versions.find((v) => v.version === version)
  return new Set(entry?.changes.flatMap((c) => c.removals.map((r) => `${r.group}.${r.endpoint}`)) ?? [])
}

// -----------------------------------------------------------------------------
// Serving
// -----------------------------------------------------------------------------

/**
 * The routes of group `G` in every version of a bundle whose newest api is `NewestId`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Group<NewestId extends string, G extends string> {
  readonly _: unique symbol
  readonly api: NewestId
  readonly group: G
}

/**
 * One {@link Group} per identifier of `G`.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Groups<NewestId extends string, G extends string> = G extends string ? Group<NewestId, G> : never

/**
 * What a group layer holds: the group's compiled routes per version (opaque values of `HttpApiBuilder.group`).
 *
 * @since 0.1.0
 * @category models
 */
export interface GroupRoutes {
  readonly byVersion: ReadonlyMap<ApiVersion.ApiVersion, unknown>
}

const groupKey = (self: Any, group: string) =>
  `@ouroboros/versioning/VersionedApi/${self.versions[0]!.api.identifier}/${group}`

/**
 * The middleware the apis of a bundle added to group `G`: their services are needed to build its routes.
 *
 * @since 0.1.0
 * @category type-level
 */
export type GroupMiddleware<Apis, G extends string> = Apis extends AnyApi ?
    | HttpApiGroup.MiddlewareServices<HttpApiGroup.WithIdentifier<VersionChange.Groups<Apis>, G>>
    | HttpApiEndpoint.Middleware<HttpApiGroup.Endpoints<HttpApiGroup.WithIdentifier<VersionChange.Groups<Apis>, G>>>
  : never

type Handler = (request: any) => Effect.Effect<unknown, unknown, unknown>

interface Entry {
  readonly handler: Handler
  readonly options?: { readonly uninterruptible?: boolean | undefined } | undefined
}

interface Recorded {
  readonly handler: Handler
  readonly isRaw: boolean
  readonly options: { readonly uninterruptible?: boolean | undefined } | undefined
}

// A stand-in for `HttpApiBuilder`'s handlers that records what the builder registers, to replay it into each
// version's group.
const makeRecorder = (group: HttpApiGroup.Top) => {
  const recorded = new Map<string, Recorded>()
  const register = (name: string, handler: Handler, isRaw: boolean, options: Recorded["options"]) => {
    if (group.endpoints[name] === undefined) {
      throw new Error(`HttpApiEndpoint "${name}" not found in HttpApiGroup "${group.identifier}"`)
    }
    if (recorded.has(name)) throw new Error(`Handler for "${name}" is already registered in "${group.identifier}"`)
    recorded.set(name, { handler, isRaw, options })
  }
  const self: Record<string, unknown> = {
    group,
    pipe() {
      return Pipeable.pipeArguments(self, arguments)
    },
    handle(name: string, handler: Handler, options?: Recorded["options"]) {
      register(name, handler, false, options)
      return self
    },
    handleRaw(name: string, handler: Handler, options?: Recorded["options"]) {
      register(name, handler, true, options)
      return self
    },
    handleAll(handlers: Record<string, Handler | Entry>) {
      for (const [name, entry] of Object.entries(handlers)) {
        if (typeof entry === "function") register(name, entry, false, undefined)
        else register(name, entry.handler, false, entry.options)
      }
      return self
    }
  }
  return { self, recorded }
}

type Run = (value: unknown) => Effect.Effect<unknown, SchemaIssue.Issue>

// The side of a transformation that a migration runs, as a function; plain functions (the common case) run without
// going through the getter machinery.
const runner = (getter: SchemaGetter.Getter<unknown, unknown, unknown>): Run => {
  if (getter._tag === "Transform") {
    const f = getter.transform
    return (value) => Effect.succeed(f(value))
  }
  return (value) =>
    Effect.flatMap(
      SchemaGetter.run(getter, Option.some(value), {}) as Effect.Effect<Option.Option<unknown>, SchemaIssue.Issue>,
      Option.match({
        onNone: () => Effect.fail(new SchemaIssue.MissingKey(undefined)),
        onSome: Effect.succeed
      })
    )
}

const isSync = (getter: SchemaGetter.Getter<unknown, unknown, unknown>) => getter._tag === "Transform"

type RequestPart = "params" | "query" | "headers" | "payload"
const kinds = { params: "Params", query: "Query", headers: "Headers", payload: "Payload" } as const

const hasPart = (endpoint: HttpApiEndpoint.Top, part: RequestPart, isRaw: boolean): boolean =>
  part === "payload" ? endpoint.payload.size > 0 && !isRaw : endpoint[part] !== undefined

// The handler of an older version's endpoint from the handler of the newer one and the change's migrations.
const migrate = (
  next: Recorded,
  migrations: VersionChange.EndpointMigrations | undefined,
  newer: { readonly endpoint: HttpApiEndpoint.Top; readonly group: HttpApiGroup.Top },
  label: string
): Recorded => {
  const ups: Array<{ part: RequestPart; run: Run; sync: ((u: unknown) => unknown) | undefined }> = []
  const passed: Array<RequestPart> = []
  for (const part of ["params", "query", "headers", "payload"] as const) {
    if (!hasPart(newer.endpoint, part, next.isRaw)) continue
    const transformation = migrations?.[part]
    if (transformation === undefined) {
      passed.push(part)
      continue
    }
    if (next.isRaw && part === "payload") throw new Error(`${label}: the payload of a raw handler cannot be migrated`)
    const getter = transformation.decode as SchemaGetter.Getter<unknown, unknown, unknown>
    ups.push({
      part,
      run: runner(getter),
      sync: isSync(getter) ? (getter as SchemaGetter.Transform<unknown, unknown>).transform : undefined
    })
  }
  const allSync = ups.every((u) => u.sync !== undefined)
  const successDown = migrations?.success?.encode as SchemaGetter.Getter<unknown, unknown, unknown> | undefined
  const errorDown = migrations?.error?.encode as SchemaGetter.Getter<unknown, unknown, unknown> | undefined
  // Only the newer endpoint's declared errors are migrated; a middleware's errors are the same in both versions.
  const declared = errorDown === undefined || newer.endpoint.error.size === 0
    ? undefined
    : Schema.is(Schema.Union([...newer.endpoint.error] as unknown as ReadonlyArray<Schema.Top>))
  const handler = next.handler

  const refuse = (part: RequestPart) => (issue: SchemaIssue.Issue) =>
    Effect.die(new HttpApiError.HttpApiSchemaError({ kind: kinds[part], cause: new Schema.SchemaError(issue) }))
  const broken = (what: string) => (issue: SchemaIssue.Issue) =>
    Effect.die(new Error(`${label}: the ${what} migration failed: ${new Schema.SchemaError(issue).message}`))

  const base = (request: any): any => {
    const upgraded: any = { request: request.request, endpoint: newer.endpoint, group: newer.group }
    if (request.upgrade !== undefined) upgraded.upgrade = request.upgrade
    for (const part of passed) upgraded[part] = request[part]
    return upgraded
  }

  const upgrade: (request: any) => Effect.Effect<any> | any = ups.length === 0
    ? base
    : allSync
    ? (request) => {
      const upgraded = base(request)
      for (const u of ups) upgraded[u.part] = u.sync!(request[u.part])
      return upgraded
    }
    : (request) =>
      Effect.gen(function*() {
        const upgraded = base(request)
        for (const u of ups) {
          upgraded[u.part] = yield* Effect.catch(u.run(request[u.part]), refuse(u.part))
        }
        return upgraded
      })

  const downSuccess: ((a: unknown) => Effect.Effect<unknown>) | undefined = successDown === undefined
    ? undefined
    : ((run) => (a: unknown) =>
      HttpServerResponse.isHttpServerResponse(a) ? Effect.succeed(a) : Effect.catch(run(a), broken("success")))(
        runner(successDown)
      )
  const syncSuccess = successDown !== undefined && isSync(successDown)
    ? (successDown as SchemaGetter.Transform<unknown, unknown>).transform
    : undefined
  const downError: ((e: unknown) => Effect.Effect<never, unknown>) | undefined = errorDown === undefined
    ? undefined
    : ((run) => (e: unknown) =>
      declared !== undefined && !declared(e)
        ? Effect.fail(e)
        : Effect.flatMap(Effect.catch(run(e), broken("error")), Effect.fail))(runner(errorDown))

  const answer = (effect: Effect.Effect<unknown, unknown, unknown>) => {
    let out = effect
    if (syncSuccess !== undefined) {
      out = Effect.map(out, (a) => HttpServerResponse.isHttpServerResponse(a) ? a : syncSuccess(a))
    } else if (downSuccess !== undefined) {
      out = Effect.flatMap(out, downSuccess)
    }
    if (downError !== undefined) out = Effect.catch(out, downError)
    return out
  }

  const migrated: Handler = ups.length === 0 || allSync
    ? (request) => answer(handler(upgrade(request)))
    : (request) => answer(Effect.flatMap(upgrade(request) as Effect.Effect<any>, handler))
  return { handler: migrated, isRaw: next.isRaw, options: next.options }
}

const findMigrations = (
  entry: Version,
  group: string,
  endpoint: string
): VersionChange.EndpointMigrations | undefined => {
  let found: Record<string, unknown> | undefined
  for (const change of entry.changes) {
    for (const migration of change.migrations) {
      if (migration.group !== group || migration.endpoint !== endpoint) continue
      found = { ...found, ...Object.fromEntries(Object.entries(migration).filter(([, v]) => v !== undefined)) }
    }
  }
  return found as VersionChange.EndpointMigrations | undefined
}

const findRemoval = (entry: Version, group: string, endpoint: string): VersionChange.Removal | undefined => {
  for (const change of entry.changes) {
    for (const removal of change.removals) {
      if (removal.group === group && removal.endpoint === endpoint) return removal
    }
  }
  return undefined
}

// The handler of `group.endpoint` in version `index` (0 is the newest).
const resolve = (
  self: Any,
  newest: ReadonlyMap<string, Recorded>,
  index: number,
  group: string,
  endpoint: string
): Recorded => {
  const entry = self.versions[index]!
  if (index === 0) {
    const recorded = newest.get(endpoint)
    if (recorded === undefined) throw new Error(`VersionedApi: no handler for ${group}.${endpoint}`)
    return recorded
  }
  const removal = findRemoval(entry, group, endpoint)
  if (removal !== undefined) return { handler: removal.handler, isRaw: false, options: undefined }
  const newerEntry = self.versions[index - 1]!
  const newerGroup = groupsOf(newerEntry.api)[group]
  const newerEndpoint = newerGroup?.endpoints[endpoint]
  if (newerGroup === undefined || newerEndpoint === undefined) {
    throw new Error(`VersionedApi: ${group}.${endpoint} of ${entry.version} is not in ${newerEntry.version}`)
  }
  const next = resolve(self, newest, index - 1, group, endpoint)
  return migrate(
    next,
    findMigrations(entry, group, endpoint),
    { endpoint: newerEndpoint, group: newerGroup },
    `${entry.version} ${group}.${endpoint}`
  )
}

const chain = (steps: ReadonlyArray<Run>, value: unknown): Effect.Effect<unknown, SchemaIssue.Issue> =>
  steps.reduce<Effect.Effect<unknown, SchemaIssue.Issue>>((acc, run) => Effect.flatMap(acc, run), Effect.succeed(value))

const chainOf = (self: Any, version: ApiVersion.ApiVersion): ReadonlyArray<Version> => {
  const index = self.versions.findIndex((v) => v.version === version)
  if (index === -1) throw new Error(`VersionedApi: no version ${version}`)
  return self.versions.slice(1, index + 1)
}

/**
 * Migrates a value of the newest version down to `version`, through every change between them: the answer of
 * `group.endpoint` (`part` `success` or `error`) as a client of `version` expects it. What a server needs outside a
 * request/response cycle, e.g. to render a webhook event in the version its subscriber pinned (as Stripe does).
 *
 * @since 0.1.0
 * @category migrations
 * @example
 * import { VersionChange, VersionedApi } from "@ouroboros/versioning"
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
 * const ContentAndEnvelopes = VersionChange.make(ApiV1, ApiV2, "`text` is `content`; bodies are enveloped")
 *   .endpoint("documents", "ingest", {
 *     payload: (v1) => ({ id: v1.id, content: v1.text }),
 *     success: (v2) => ({ id: v2.data.id, text: v2.data.content })
 *   })
 *   .endpoint("documents", "get", { success: (v2) => ({ id: v2.data.id, text: v2.data.content }) })
 * const Versions = VersionedApi.make("v2", ApiV2).previous("v1", ApiV1, ContentAndEnvelopes)
 *
 * // the `get` answer of v2, as a v1 client would have received it: { id: "1", text: "hello" }
 * const toV1 = VersionedApi.migrateDown(Versions, { group: "documents", endpoint: "get", part: "success", to: "v1" })
 * const asV1 = toV1({ data: { id: "1", content: "hello" }, meta: {} })
 */
export const migrateDown = (
  self: Any,
  options: {
    readonly group: string
    readonly endpoint: string
    readonly part: "success" | "error"
    readonly to: ApiVersion.ApiVersion
  }
) =>
(value: unknown): Effect.Effect<unknown, SchemaIssue.Issue> => {
  const steps = chainOf(self, options.to).flatMap((entry) => {
    const getter = findMigrations(entry, options.group, options.endpoint)?.[options.part]?.encode
    return getter === undefined ? [] : [runner(getter as SchemaGetter.Getter<unknown, unknown, unknown>)]
  })
  return chain(steps, value)
}

/**
 * Migrates a request part of `version` up to the newest version, through every change between them (the inverse
 * direction of {@link migrateDown}).
 *
 * @since 0.1.0
 * @category migrations
 */
export const migrateUp = (
  self: Any,
  options: {
    readonly group: string
    readonly endpoint: string
    readonly part: "params" | "query" | "headers" | "payload"
    readonly from: ApiVersion.ApiVersion
  }
) =>
(value: unknown): Effect.Effect<unknown, SchemaIssue.Issue> => {
  const steps = [...chainOf(self, options.from)].reverse().flatMap((entry) => {
    const getter = findMigrations(entry, options.group, options.endpoint)?.[options.part]?.decode
    return getter === undefined ? [] : [runner(getter as SchemaGetter.Getter<unknown, unknown, unknown>)]
  })
  return chain(steps, value)
}

// What runs before every versioned handler when the server supplied access hooks: the caller metric and the
// per-caller gate.
const guard = (
  version: ApiVersion.ApiVersion,
  access: VersionAccess.Access | undefined,
  policy: VersionPolicy.VersionPolicy["Service"] | undefined,
  all: ReadonlyArray<ApiVersion.ApiVersion>,
  context: Context.Context<never>
) => {
  if (access === undefined) return (handler: Handler): Handler => handler
  const callers = VersionMetrics.series(VersionMetrics.callerRequests, context)
  const refuse = (caller: string | undefined) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const candidates = policy === undefined ? all : policy.state(now).supported
      const open: Array<string> = []
      for (const candidate of candidates) {
        if (yield* access.isEnabled(candidate, caller)) open.push(candidate)
      }
      const error = new VersionPolicy.UnsupportedApiVersion({
        detail: `API version ${version} is not enabled for this caller; supported versions: ${open.join(", ")}`,
        requested: version,
        supportedVersions: open
      })
      return HttpServerResponse.jsonUnsafe(
        {
          _tag: error._tag,
          detail: error.detail,
          requested: error.requested,
          supportedVersions: error.supportedVersions
        },
        { status: 400, headers: { "api-supported-versions": open.join(", ") } }
      )
    })
  return (handler: Handler): Handler => (request) =>
    Effect.flatMap(access.caller, (caller) => {
      VersionMetrics.callerCell(callers, version, caller).count++
      return Effect.flatMap(
        access.isEnabled(version, caller),
        (enabled) => enabled ? handler(request) : refuse(caller)
      )
    })
}

// Builds the routes of `group` in every version that has it, keyed by version.
const buildGroup = (self: Any, group: string, newest: ReadonlyMap<string, Recorded>) =>
  Effect.gen(function*() {
    const access = yield* VersionAccess.VersionAccess
    const policy = Option.getOrUndefined(yield* Effect.serviceOption(VersionPolicy.VersionPolicy))
    const context = yield* Effect.context<never>()
    const all = versions(self)
    const byVersion = new Map<ApiVersion.ApiVersion, unknown>()
    for (let index = 0; index < self.versions.length; index++) {
      const entry = self.versions[index]!
      const definition = groupsOf(entry.api)[group]
      if (definition === undefined) continue
      const guarded = guard(entry.version, access, policy, all, context)
      const handlers = Object.keys(definition.endpoints).map((name) => {
        const resolved = resolve(self, newest, index, group, name)
        return { name, ...resolved, handler: guarded(resolved.handler) }
      })
      const layer = HttpApiBuilder.group(
        entry.api as HttpApi.HttpApi<string, any>,
        group as never,
        ((h: any) => {
          for (const { handler, isRaw, name, options } of handlers) {
            if (isRaw) h.handleRaw(name, handler, options)
            else h.handle(name, handler, options)
          }
          return h
        }) as never
      )
      const built = yield* Layer.build(layer as Layer.Layer<unknown, never, never>)
      byVersion.set(entry.version, (built as Context.Context<never>).mapUnsafe.get(definition.key))
    }
    return { byVersion } satisfies GroupRoutes
  })

/**
 * Implements group `group` of the newest version with `build` (as `HttpApiBuilder.group` would), and makes its routes
 * in every version of the bundle. Provide the layer to {@link layer}.
 *
 * The older versions' routes run their own api's middleware (authentication, say) before the newest handler, which
 * finds the services that middleware provides: the older versions' groups must carry the middleware the handlers
 * rely on.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { VersionChange, VersionedApi } from "@ouroboros/versioning"
 * import { Effect, Schema } from "effect"
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
 * const ContentAndEnvelopes = VersionChange.make(ApiV1, ApiV2, "`text` is `content`; bodies are enveloped")
 *   .endpoint("documents", "ingest", {
 *     payload: (v1) => ({ id: v1.id, content: v1.text }),
 *     success: (v2) => ({ id: v2.data.id, text: v2.data.content })
 *   })
 *   .endpoint("documents", "get", { success: (v2) => ({ id: v2.data.id, text: v2.data.content }) })
 * const Versions = VersionedApi.make("v2", ApiV2).previous("v1", ApiV1, ContentAndEnvelopes)
 *
 * // v2's handlers serve v1 too, through the change
 * export const DocumentsLive = VersionedApi.group(Versions, "documents", (handlers) =>
 *   handlers
 *     .handle("get", ({ params }) => Effect.succeed({ data: { id: params.id, content: "" }, meta: {} }))
 *     .handle("ingest", ({ payload }) => Effect.succeed({ data: { id: "1", content: payload.content }, meta: {} })))
 */
export const group = <
  Newest extends AnyApi,
  Oldest extends AnyApi,
  Apis extends AnyApi,
  R,
  const G extends VersionChange.GroupIds<Newest>,
  Return
>(
  self: VersionedApi<Newest, Oldest, Apis, R>,
  group: G,
  build: (
    handlers: HttpApiBuilder.Handlers.FromGroup<HttpApiGroup.WithIdentifier<VersionChange.Groups<Newest>, G>>
  ) => HttpApiBuilder.Handlers.ValidateReturn<Return>
): Layer.Layer<
  Group<ApiId<Newest>, G>,
  HttpApiBuilder.Handlers.Error<Return>,
  Exclude<HttpApiBuilder.Handlers.Context<Return> | GroupMiddleware<Apis, G> | R, Scope.Scope>
> => {
  const bundle = self as unknown as Any
  const definition = groupsOf(bundle.versions[0]!.api)[group]
  if (definition === undefined) throw new Error(`VersionedApi.group: the newest version has no group "${group}"`)
  return Layer.effectContext(
    Effect.gen(function*() {
      const recorder = makeRecorder(definition)
      const result = (build as (handlers: unknown) => unknown)(recorder.self)
      if (Effect.isEffect(result)) yield* (result as Effect.Effect<unknown, unknown, unknown>)
      const routes = yield* buildGroup(bundle, group, recorder.recorded)
      return Context.makeUnsafe(new Map([[groupKey(bundle, group), routes]]))
    })
  ) as never
}

/**
 * The groups that only older versions have (every endpoint removed on the way to the newest version): their
 * handlers are the changes' own.
 */
type OrphanGroups<Newest, Apis> = Exclude<
  Apis extends AnyApi ? VersionChange.GroupIds<Apis> : never,
  VersionChange.GroupIds<Newest>
>

/**
 * Registers the routes of every version of the bundle on the router. It needs the layer of {@link group} for each
 * group of the newest version.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <Newest extends AnyApi, Oldest extends AnyApi, Apis extends AnyApi, R>(
  self: VersionedApi<Newest, Oldest, Apis, R>
): Layer.Layer<
  never,
  never,
  | Etag.Generator
  | HttpRouter.HttpRouter
  | FileSystem.FileSystem
  | HttpPlatform.HttpPlatform
  | Path.Path
  | Groups<ApiId<Newest>, VersionChange.GroupIds<Newest>>
  | GroupMiddleware<Apis, OrphanGroups<Newest, Apis>>
  | R
> => {
  const bundle = self as unknown as Any
  const newestGroups = groupsOf(bundle.versions[0]!.api)
  return Layer.unwrap(
    Effect.gen(function*() {
      const context = yield* Effect.context<never>()
      const orphans = new Map<string, GroupRoutes>()
      const routesOf = Effect.fnUntraced(function*(group: string) {
        if (newestGroups[group] !== undefined) {
          const routes = context.mapUnsafe.get(groupKey(bundle, group)) as GroupRoutes | undefined
          if (routes === undefined) {
            return yield* Effect.die(
              new Error(
                `VersionedApi.layer: group "${group}" is not implemented; provide VersionedApi.group(…, "${group}", …)`
              )
            )
          }
          return routes
        }
        let routes = orphans.get(group)
        if (routes === undefined) {
          routes = yield* buildGroup(bundle, group, new Map())
          orphans.set(group, routes)
        }
        return routes
      })
      const layers: Array<Layer.Layer<never, never, any>> = []
      for (const entry of bundle.versions) {
        const services = new Map<string, unknown>()
        for (const definition of Object.values(groupsOf(entry.api))) {
          const routes = yield* routesOf(definition.identifier)
          services.set(definition.key, routes.byVersion.get(entry.version))
        }
        layers.push(
          HttpApiBuilder.layer(entry.api as HttpApi.HttpApi<string, any>).pipe(
            Layer.provide(Layer.succeedContext(Context.makeUnsafe(services)))
          ) as Layer.Layer<never, never, any>
        )
      }
      return Layer.mergeAll(...(layers as [Layer.Layer<never, never, any>]))
    })
  ) as never
}
