/**
 * Tenants, their keys, quotas and usage for the server (`@ouroboros/tenancy` on the server's database), and what a
 * tenant's record means for the rest of the server: deleting a tenant erases its documents, vectors and events;
 * `dedicatedCollection` puts its vectors in a collection of their own; with no tenant at all, startup says how to
 * create the first one.
 *
 * @since 0.1.0
 */
import type { TenantId } from "@ouroboros/kernel"
import { Retrieval } from "@ouroboros/retrieval"
import { Jwt, Quotas, QuotasSql, type TenantConfig, Tenants, TenantStoreSql, Usage, UsageSql } from "@ouroboros/tenancy"
import { Effect, Layer, Option, Stream } from "effect"
import { HttpServer } from "effect/http"
import type { ConfigFile } from "./ServerConfig.js"

/**
 * `Tenants` (configured tenants and keys, stored ones in SQL, JWTs from `JWT_*`, `API_KEY_*`), `Quotas` (tier defaults
 * from the config file's `quotas`) and `Usage` (`USAGE_*`), on the `SqlClient` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: { readonly bootstrap: TenantConfig.Bootstrap; readonly file: ConfigFile }) => {
  const TenantsLive = Layer.unwrap(
    Effect.map(Tenants.config, (settings) => Tenants.layer({ ...settings, bootstrap: options.bootstrap }))
  ).pipe(Layer.provide([TenantStoreSql.layer, Jwt.layerConfig()]))
  return Layer.mergeAll(
    Quotas.layer({ defaults: options.file.quotas }).pipe(Layer.provide(QuotasSql.layer)),
    Usage.layerConfig.pipe(Layer.provide(UsageSql.layer))
  ).pipe(Layer.provideMerge(TenantsLive))
}

/**
 * Retrieval's options from the tenants' records: the tenants with a collection of their own now (checked at
 * startup), and the record's answer for any tenant later (cached by `Tenants.lookup`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const retrievalOptions = Effect.gen(function*() {
  const tenants = yield* Tenants.Tenants
  const all = yield* tenants.list
  return {
    dedicatedTenants: new Set<string>(all.filter((t) => t.dedicatedCollection).map((t) => t.id)),
    isDedicated: (tenant: TenantId.TenantId) =>
      Effect.map(tenants.lookup(tenant), Option.exists((t) => t.dedicatedCollection))
  } satisfies Retrieval.Options
})

/**
 * What a tenant's record changes elsewhere, for the life of the server:
 *
 * - deleting a tenant first erases its data (`Retrieval.purgeTenant`: events, vectors); a failure stops the deletion,
 *   which can be retried;
 * - a change of `dedicatedCollection` moves the tenant's vectors (`Retrieval.reindexTenant`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerHooks: Layer.Layer<never, never, Tenants.Tenants | Retrieval.Retrieval> = Layer.effectDiscard(
  Effect.gen(function*() {
    const tenants = yield* Tenants.Tenants
    const retrieval = yield* Retrieval.Retrieval
    yield* tenants.onDelete((tenant) =>
      retrieval.purgeTenant(tenant.id).pipe(
        Effect.tap(({ events }) =>
          Effect.logInfo("tenant data erased").pipe(Effect.annotateLogs({ tenant: tenant.id, events }))
        ),
        Effect.orDie,
        Effect.asVoid
      )
    )
    const dedicated = new Map((yield* tenants.list).map((t) => [t.id, t.dedicatedCollection] as const))
    const subscription = yield* tenants.events.pipe(
      Stream.runForEach((event) => {
        if (event._tag === "TenantDeleted") {
          return Effect.sync(() => dedicated.delete(event.tenant.id))
        }
        if (event._tag !== "TenantCreated" && event._tag !== "TenantUpdated") return Effect.void
        const { dedicatedCollection, id } = event.tenant
        const before = dedicated.get(id) ?? false
        dedicated.set(id, dedicatedCollection)
        if (event._tag === "TenantCreated" || before === dedicatedCollection) return Effect.void
        return retrieval.reindexTenant(id).pipe(
          Effect.tap(({ documents }) =>
            Effect.logInfo("tenant vectors moved").pipe(
              Effect.annotateLogs({ tenant: id, documents, dedicatedCollection })
            )
          ),
          Effect.catchCause((cause) =>
            Effect.logError(
              "the tenant's vectors could not be moved: rebuild them (POST /admin/projections/vectors/rebuild)",
              cause
            ).pipe(Effect.annotateLogs({ tenant: id }))
          )
        )
      }),
      Effect.forkScoped
    )
    return subscription
  })
)

/**
 * The line that says how to create the first tenant, with the address the server really listens on, when no tenant
 * exists yet.
 *
 * @since 0.1.0
 * @category constructors
 */
export const startupNotice = (
  tenants: Tenants.Tenants["Service"],
  address: HttpServer.HttpServer["Service"]["address"]
): Effect.Effect<Option.Option<string>> =>
  Effect.map(tenants.startupNotice, (notice) => {
    // A server on every interface is reached on this machine as localhost.
    const base = HttpServer.formatAddress(address).replace(/^http:\/\/(0\.0\.0\.0|\[::\])(?=:)/, "http://localhost")
    return Option.map(notice, (line) => line.split("http://localhost:8080").join(base))
  })
