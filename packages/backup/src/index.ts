/**
 * @since 0.1.0
 */
export * as Backup from "./Backup.js"

/**
 * @since 0.1.0
 */
export * as BackupTarget from "./BackupTarget.js"

/**
 * @since 0.1.0
 */
export * as BackupSource from "./BackupSource.js"

/**
 * @since 0.1.0
 */
export * as Manifest from "./Manifest.js"

/**
 * @since 0.1.0
 */
export * as Retention from "./Retention.js"

/**
 * @since 0.1.0
 */
export * as Scheduler from "./Scheduler.js"

/**
 * @since 0.1.0
 */
export * as BackupHttp from "./BackupHttp.js"

/**
 * @since 0.1.0
 */
export * as BackupCli from "./BackupCli.js"
