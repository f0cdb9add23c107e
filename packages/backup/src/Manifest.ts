/**
 * The manifest of a backup: what it holds (every file with its SHA-256, size and row count), the event sequence range,
 * when it was taken, the schema version, and the backup it extends (for an incremental one). A backup is complete
 * exactly when its manifest exists: the manifest is written last.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

const NonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

/**
 * The version of the manifest and file formats written by this package.
 *
 * @since 0.1.0
 * @category constants
 */
export const schemaVersion = 1

/**
 * A backup id: `<UTC time>-<kind>-<random>`, e.g. `20261125T142700123Z-full-k3x9`. Ids sort by time and are safe as
 * file names.
 *
 * @since 0.1.0
 * @category schemas
 */
export const BackupId = Schema.String.check(
  Schema.isPattern(/^\d{8}T\d{9}Z-(full|incremental)-[a-z0-9]{4,12}$/, {
    message: "a backup id looks like 20261125T142700123Z-full-k3x9"
  })
).annotate({ identifier: "BackupId", description: "The id of a backup" })

/**
 * @since 0.1.0
 * @category models
 */
export type BackupId = typeof BackupId.Type

/**
 * A full backup holds everything; an incremental one holds the events after its parent's and full copies of the rest.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Kind = Schema.Literals(["full", "incremental"])

/**
 * @since 0.1.0
 * @category models
 */
export type Kind = typeof Kind.Type

/**
 * One file of a backup.
 *
 * @since 0.1.0
 * @category schemas
 */
export const FileEntry = Schema.Struct({
  /** The file name inside the backup. */
  name: Schema.String,
  /** What it holds: `events`, `vectors:<collection>` or the name of a registered source. */
  source: Schema.String,
  /** SHA-256 of the bytes, lowercase hex. */
  sha256: Schema.String.check(Schema.isPattern(/^[0-9a-f]{64}$/)),
  bytes: NonNegativeInt,
  /** Events, vectors or rows in it. */
  count: NonNegativeInt,
  /** The format of the bytes (`ndjson`, or a vector snapshot format). */
  format: Schema.String
}).annotate({ identifier: "BackupFile" })

/**
 * @since 0.1.0
 * @category models
 */
export type FileEntry = typeof FileEntry.Type

/**
 * The events a backup holds: sequences `from` to `to` (inclusive; `count` may be smaller when sequences have gaps).
 * An empty range has `from = to + 1`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const SequenceRange = Schema.Struct({
  from: NonNegativeInt,
  to: NonNegativeInt,
  count: NonNegativeInt,
  /** When the last event in the range was recorded (absent for an empty range). */
  lastRecordedAt: Schema.optional(Schema.Date)
}).annotate({ identifier: "SequenceRange" })

/**
 * @since 0.1.0
 * @category models
 */
export type SequenceRange = typeof SequenceRange.Type

/**
 * A source's summary in the manifest: how many items and the hash that a restore must reproduce.
 *
 * @since 0.1.0
 * @category schemas
 */
export const SourceEntry = Schema.Struct({
  name: Schema.String,
  count: NonNegativeInt,
  hash: Schema.String
}).annotate({ identifier: "BackupSource" })

/**
 * @since 0.1.0
 * @category models
 */
export type SourceEntry = typeof SourceEntry.Type

/**
 * The manifest of a backup.
 *
 * @since 0.1.0
 * @category schemas
 */
export class Manifest extends Schema.Class<Manifest>("@ouroboros/backup/Manifest")({
  id: BackupId,
  kind: Kind,
  schemaVersion: Schema.Int,
  /** The backup whose events this one continues (incremental only). */
  parent: Schema.optional(BackupId),
  createdAt: Schema.Date,
  completedAt: Schema.Date,
  /** The events in this backup (for an incremental one, only those after the parent's). */
  events: SequenceRange,
  /**
   * The projection checkpoint read before the vector snapshots were taken: the snapshots hold at least the effect of
   * every event up to it, and nothing of events after `events.to`.
   */
  projectionCheckpoint: NonNegativeInt,
  files: Schema.Array(FileEntry),
  sources: Schema.Array(SourceEntry)
}) {}

/**
 * The manifest as JSON text (the `manifest.json` file): dates as ISO 8601 strings.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ManifestFromJson = Schema.fromJsonString(Schema.toCodecJson(Manifest))

/**
 * The outcome of the last verification of a backup, kept beside its manifest (`verification.json`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Verification = Schema.Struct({
  tier: Schema.Literals(["checksums", "restore"]),
  verifiedAt: Schema.Date,
  ok: Schema.Boolean,
  /** What failed, one line per problem (the file or source named). */
  problems: Schema.Array(Schema.String)
}).annotate({ identifier: "BackupVerification" })

/**
 * @since 0.1.0
 * @category models
 */
export type Verification = typeof Verification.Type

/**
 * The verification as JSON text (the `verification.json` file).
 *
 * @since 0.1.0
 * @category schemas
 */
export const VerificationFromJson = Schema.fromJsonString(Schema.toCodecJson(Verification))

/**
 * A backup as listed: its manifest and last verification.
 *
 * @since 0.1.0
 * @category schemas
 */
export const BackupInfo = Schema.Struct({
  manifest: Manifest,
  verification: Schema.optional(Verification),
  /** Total bytes of its files. */
  bytes: NonNegativeInt
}).annotate({ identifier: "BackupInfo" })

/**
 * @since 0.1.0
 * @category models
 */
export type BackupInfo = typeof BackupInfo.Type

/**
 * Whether the backup passed its last verification.
 *
 * @since 0.1.0
 * @category utils
 */
export const isVerified = (info: { readonly verification?: Verification | undefined }): boolean =>
  info.verification?.ok === true

/**
 * Makes a new backup id for a time.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeId = (kind: Kind, at: Date): BackupId => {
  const stamp = at.toISOString().replace(/[-:]/g, "").replace(".", "")
  const random = Math.random().toString(36).slice(2, 8).padEnd(6, "0")
  return `${stamp}-${kind}-${random}`
}
