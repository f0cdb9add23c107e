/**
 * @since 0.1.0
 */
export * as ApiKey from "./ApiKey.js"
/**
 * @since 0.1.0
 */
export * as Rls from "./Rls.js"
/**
 * @since 0.1.0
 */
export * as Tenant from "./Tenant.js"
/**
 * @since 0.1.0
 */
export * as TenantStore from "./TenantStore.js"
/**
 * @since 0.1.0
 */
export * as TenantStoreMemory from "./TenantStore/Memory.js"
/**
 * @since 0.1.0
 */
export * as TenantStoreSql from "./TenantStore/Sql.js"
/**
 * @since 0.1.0
 */
export * as Jwt from "./Jwt.js"
/**
 * @since 0.1.0
 */
export * as TenantConfig from "./TenantConfig.js"
/**
 * @since 0.1.0
 */
export * as Tenants from "./Tenants.js"
/**
 * @since 0.1.0
 */
export * as Quotas from "./Quotas.js"
/**
 * @since 0.1.0
 */
export * as QuotasSql from "./Quotas/Sql.js"
/**
 * @since 0.1.0
 */
export * as Usage from "./Usage.js"
/**
 * @since 0.1.0
 */
export * as UsageSql from "./Usage/Sql.js"
/**
 * @since 0.1.0
 */
export * as TenancyHttp from "./TenancyHttp.js"
/**
 * @since 0.1.0
 */
export * as QuotasHttp from "./QuotasHttp.js"
/**
 * @since 0.1.0
 */
export * as UsageHttp from "./UsageHttp.js"
/**
 * @since 0.1.0
 */
export * as TenantsHttp from "./TenantsHttp.js"

/**
 * @since 0.1.0
 */
export * as TenantsCli from "./TenantsCli.js"
