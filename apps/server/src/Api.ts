/**
 * The unversioned HTTP API of the bundled server: health probes and admin. The tenant API (`/api/v1`, `/api/v2`) is
 * versioned: see `Versions`.
 *
 * The groups of the packages carry no authentication: the server adds `@ouroboros/tenancy`'s security middleware to
 * each (`AdminAuthentication` for operator endpoints; the tenants group carries its own `TenantAdminAuthentication`; the
 * flags group `TenantAdminAuthentication`, a tenant administrator acting on its own tenant's overrides only; the audit
 * group `TenantAdminAuthentication`, a tenant administrator seeing its own tenant's events only).
 * The middleware reads the principal the request path resolved once (`TenancyHttp`) and checks roles on it.
 *
 * @since 0.1.0
 */
import { AuditHttp } from "@ouroboros/audit"
import { BackupHttp } from "@ouroboros/backup"
import { CircuitBreakerHttp } from "@ouroboros/circuit-breaker"
import { FeatureFlagsHttp } from "@ouroboros/feature-flags"
import { HealthHttp } from "@ouroboros/health"
import { RetrievalHttp } from "@ouroboros/retrieval"
import { TenancyHttp, TenantsHttp } from "@ouroboros/tenancy"
import { HttpApi, OpenApi } from "effect/http-api"

/**
 * @since 0.1.0
 * @category apis
 */
export class Api extends HttpApi.make("ouroboros")
  .add(HealthHttp.HealthGroup)
  .add(RetrievalHttp.ProjectionsGroup.middleware(TenancyHttp.AdminAuthentication))
  .add(CircuitBreakerHttp.Group.middleware(TenancyHttp.AdminAuthentication))
  .add(BackupHttp.Group.middleware(TenancyHttp.AdminAuthentication))
  .add(TenantsHttp.Group)
  .add(
    FeatureFlagsHttp.Group.middleware(FeatureFlagsHttp.ScopeFromPrincipal).middleware(
      TenancyHttp.TenantAdminAuthentication
    )
  )
  // The group's own `Scope` middleware reads the principal, so the authentication is added after it and runs first.
  .add(AuditHttp.Group.middleware(TenancyHttp.TenantAdminAuthentication))
  .annotate(OpenApi.Title, "Ouroboros")
  .annotate(OpenApi.Description, "LLM retrieval pipeline service: ingest, search and ask, hardened for production")
{}
