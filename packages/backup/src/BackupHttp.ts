/**
 * The admin endpoints of backups, as an `HttpApiGroup` named `backups` (no authentication here: the server adds its
 * admin middleware to the group):
 *
 * - `POST /admin/backups?kind=full|incremental` takes a backup → 201 with its manifest
 * - `GET /admin/backups` lists them, newest first, with their last verification
 * - `POST /admin/backups/{id}/verify?tier=checksums|restore` → the verification, or 422 naming the damaged files
 * - `POST /admin/backups/{id}/restore` with an optional body `{ at?: ISO time | sequence, force?, vectors? }`; the id
 *   `latest` picks the newest verified backup before `at`
 *
 * Errors are RFC 9457 problems: 404 unknown backup, 409 not verified (restore without `force`) or another backup
 * running, 422 corrupt or unreachable restore point; storage failures are logged and answered as a 500 that leaks
 * nothing.
 *
 * @since 0.1.0
 */
import { HttpGroup, Problem } from "@ouroboros/kernel"
import { Effect, Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import * as Backup from "./Backup.js"
import * as Manifest from "./Manifest.js"

const IdParams = { id: Schema.String }

const errors = [Problem.NotFound, Problem.Conflict, Problem.UnprocessableEntity] as const

/**
 * The body of a restore: all optional. `at` is an ISO 8601 instant or an event sequence number.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RestoreRequest = Schema.Struct({
  at: Schema.optionalKey(Schema.Union([Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)), Schema.Date])),
  force: Schema.optionalKey(Schema.Boolean),
  vectors: Schema.optionalKey(Schema.Literals(["snapshot", "rebuild"]))
}).annotate({ identifier: "RestoreRequest" })

/**
 * The endpoints of the `backups` group.
 *
 * @since 0.1.0
 * @category groups
 */
export class Group extends HttpApiGroup.make("backups")
  .add(
    HttpApiEndpoint.post("create", "/admin/backups", {
      query: { kind: Schema.optionalKey(Manifest.Kind) },
      success: Manifest.Manifest.pipe(HttpApiSchema.status(201)),
      error: errors
    }).annotate(OpenApi.Summary, "Take a backup (incremental by default when one exists)")
  )
  .add(
    HttpApiEndpoint.get("list", "/admin/backups", {
      success: Schema.Array(Manifest.BackupInfo)
    }).annotate(OpenApi.Summary, "Every complete backup, newest first, with its last verification")
  )
  .add(
    HttpApiEndpoint.post("verify", "/admin/backups/:id/verify", {
      params: IdParams,
      query: { tier: Schema.optionalKey(Schema.Literals(["checksums", "restore"])) },
      success: Manifest.Verification,
      error: errors
    }).annotate(OpenApi.Summary, "Verify a backup: checksums, or an actual restore into scratch stores")
  )
  .add(
    HttpApiEndpoint.post("restore", "/admin/backups/:id/restore", {
      params: IdParams,
      // No body restores the backup as it is (an empty body decodes as `null`).
      payload: [RestoreRequest, Schema.Null],
      success: Backup.RestoreResult,
      error: errors
    }).annotate(OpenApi.Summary, "Restore a backup, or recover to a point in time (`at`) from it")
  )
  .annotate(OpenApi.Title, "Admin: backups")
{}

const serverError = (error: Backup.BackupFailed | Backup.RestoreFailed) =>
  Effect.andThen(Effect.logError(error.detail), Effect.die(error))

const toProblem = (
  error: Backup.BackupError
): Effect.Effect<never, Problem.NotFound | Problem.Conflict | Problem.UnprocessableEntity> => {
  switch (error._tag) {
    case "BackupNotFound":
      return Effect.fail(new Problem.NotFound({ detail: error.detail }))
    case "BackupNotVerified":
    case "BackupInProgress":
      return Effect.fail(new Problem.Conflict({ detail: error.detail }))
    case "BackupCorrupt":
    case "InvalidRestorePoint":
      return Effect.fail(new Problem.UnprocessableEntity({ detail: error.detail }))
    case "BackupFailed":
    case "RestoreFailed":
      return serverError(error)
  }
}

/**
 * The handlers, to plug into `HttpApiBuilder.group(api, "backups", …)` by hand (e.g. to audit each call).
 *
 * @since 0.1.0
 * @category handlers
 */
export const handle = {
  create: ({ query }: { readonly query: { readonly kind?: Manifest.Kind | undefined } }) =>
    Backup.Backup.use((backup) => backup.create({ kind: query.kind })).pipe(
      Effect.catch(toProblem)
    ),
  list: () => Backup.Backup.use((backup) => backup.list).pipe(Effect.catch(serverError)),
  verify: ({ params, query }: {
    readonly params: { readonly id: string }
    readonly query: { readonly tier?: Backup.Tier | undefined }
  }) =>
    Backup.Backup.use((backup) => backup.verify(params.id, { tier: query.tier ?? "checksums" }))
      .pipe(Effect.catch(toProblem)),
  restore: ({ params, payload }: {
    readonly params: { readonly id: string }
    readonly payload: typeof RestoreRequest.Type | null
  }) =>
    Backup.Backup.use((backup) =>
      backup.restore(params.id, {
        at: payload?.at,
        force: payload?.force,
        vectors: payload?.vectors
      })
    ).pipe(Effect.catch(toProblem))
} as const

/**
 * The handlers of the `backups` group for any api that contains it (with whatever middleware the api adds).
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { BackupHttp } from "@ouroboros/backup"
 * import { HttpApi } from "effect/http-api"
 * class MyApi extends HttpApi.make("my").add(BackupHttp.Group) {}
 * const BackupsLive = BackupHttp.layer(MyApi)
 */
export const layer = HttpGroup.implement(Group, (handlers) =>
  handlers
    .handle("create", handle.create)
    .handle("list", handle.list)
    .handle("verify", handle.verify)
    .handle("restore", handle.restore))

/**
 * A standalone api with only the backups group.
 *
 * @since 0.1.0
 * @category apis
 */
export class Api extends HttpApi.make("backups").add(Group) {}

/**
 * The group of the standalone `Api`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerApi = layer(Api)
