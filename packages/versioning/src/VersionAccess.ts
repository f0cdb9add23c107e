/**
 * Who may use which version: the per-request extension point of versioning.
 *
 * Negotiation happens at the edge, before authentication, so it cannot depend on the caller. What depends on the
 * caller runs in the versioned handlers, after the group's middleware has authenticated the request:
 *
 * - `caller` names the caller (the tenant of the principal, say) for the `api_version_caller_requests_total` metric;
 * - `isEnabled` decides whether a version is open to that caller: the hook a per-tenant feature flag plugs into
 *   to roll a new version out. A refused version answers the same 400 as an unknown one, listing the versions the
 *   caller may use.
 *
 * During such a rollout, mark the new version `preview` in the lifecycle settings: a request that names no version
 * then keeps getting the stable one, and only callers that ask for the preview by name reach the flag.
 *
 * Nothing is required: without {@link layer}, every version is open to everyone and no caller is counted.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"
import type * as ApiVersion from "./ApiVersion.js"

/**
 * The hooks.
 *
 * @since 0.1.0
 * @category models
 */
export interface Access {
  /** The caller of the current request (e.g. the principal's tenant); `undefined` when unknown. */
  readonly caller: Effect.Effect<string | undefined>
  /** Whether `version` is open to `caller`. */
  readonly isEnabled: (version: ApiVersion.ApiVersion, caller: string | undefined) => Effect.Effect<boolean>
}

/**
 * The hooks of the server; `undefined` (the default) opens every version to everyone.
 *
 * @since 0.1.0
 * @category references
 */
export const VersionAccess: Context.Reference<Access | undefined> = Context.Reference<Access | undefined>(
  "@ouroboros/versioning/VersionAccess",
  { defaultValue: () => undefined }
)

/**
 * Supplies the hooks. `caller` defaults to none, `isEnabled` to every version.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { Principal } from "@ouroboros/kernel"
 * import { VersionAccess } from "@ouroboros/versioning"
 * import { Effect, Option } from "effect"
 *
 * const AccessLive = VersionAccess.layer({
 *   caller: Effect.map(Effect.serviceOption(Principal.CurrentPrincipal), Option.match({
 *     onNone: () => undefined,
 *     onSome: (p) => p.tenantId
 *   })),
 *   // v3 is in preview for one tenant only
 *   isEnabled: (version, tenant) => Effect.succeed(version !== "v3" || tenant === "beta")
 * })
 */
export const layer = (access: Partial<Access>): Layer.Layer<never> =>
  Layer.succeed(VersionAccess, {
    caller: access.caller ?? Effect.undefined,
    isEnabled: access.isEnabled ?? (() => Effect.succeed(true))
  })
