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
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Problem } from "@ouroboros/kernel"
import { Effect, type Layer, Schema } from "effect"
import * as Backup from "./Backup.js"
import * as Manifest from "./Manifest.js"

const IdPath = Schema.Struct({ id: Schema.String })

/**
 * The body of a restore: all optional. `at` is an ISO 8601 instant or an event sequence number.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RestoreRequest = Schema.Struct({
  at: Schema.optional(Schema.Union(Schema.NonNegativeInt, Schema.Date)),
  force: Schema.optional(Schema.Boolean),
  vectors: Schema.optional(Schema.Literal("snapshot", "rebuild"))
}).annotations({ identifier: "RestoreRequest" })

/**
 * The endpoints of the `backups` group.
 *
 * @since 0.1.0
 * @category groups
 */
export class Group extends HttpApiGroup.make("backups")
  .add(
    HttpApiEndpoint.post("create", "/admin/backups")
      .setUrlParams(Schema.Struct({ kind: Schema.optional(Manifest.Kind) }))
      .addSuccess(Manifest.Manifest, { status: 201 })
      .addError(Problem.NotFound)
      .addError(Problem.Conflict)
      .addError(Problem.UnprocessableEntity)
      .annotate(OpenApi.Summary, "Take a backup (incremental by default when one exists)")
  )
  .add(
    HttpApiEndpoint.get("list", "/admin/backups")
      .addSuccess(Schema.Array(Manifest.BackupInfo))
      .annotate(OpenApi.Summary, "Every complete backup, newest first, with its last verification")
  )
  .add(
    HttpApiEndpoint.post("verify", "/admin/backups/:id/verify")
      .setPath(IdPath)
      .setUrlParams(Schema.Struct({ tier: Schema.optional(Schema.Literal("checksums", "restore")) }))
      .addSuccess(Manifest.Verification)
      .addError(Problem.NotFound)
      .addError(Problem.Conflict)
      .addError(Problem.UnprocessableEntity)
      .annotate(OpenApi.Summary, "Verify a backup: checksums, or an actual restore into scratch stores")
  )
  .add(
    HttpApiEndpoint.post("restore", "/admin/backups/:id/restore")
      .setPath(IdPath)
      // No body restores the backup as it is; `undefined` has no JSON Schema, so it is described as `null`.
      .setPayload(Schema.Union(RestoreRequest, Schema.Null, Schema.Undefined.annotations({ jsonSchema: { type: "null" } })))
      .addSuccess(Backup.RestoreResult)
      .addError(Problem.NotFound)
      .addError(Problem.Conflict)
      .addError(Problem.UnprocessableEntity)
      .annotate(OpenApi.Summary, "Restore a backup, or recover to a point in time (`at`) from it")
  )
  .annotate(OpenApi.Title, "Admin: backups")
{}

const serverError = (error: Backup.BackupFailed | Backup.RestoreFailed) =>
  Effect.zipRight(Effect.logError(error.detail), Effect.die(error))

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
  create: ({ urlParams }: { readonly urlParams: { readonly kind?: Manifest.Kind | undefined } }) =>
    Effect.flatMap(Backup.Backup, (backup) => backup.create({ kind: urlParams.kind })).pipe(
      Effect.catchAll(toProblem)
    ),
  list: () => Effect.flatMap(Backup.Backup, (backup) => backup.list).pipe(Effect.catchAll(serverError)),
  verify: ({ path, urlParams }: {
    readonly path: { readonly id: string }
    readonly urlParams: { readonly tier?: Backup.Tier | undefined }
  }) =>
    Effect.flatMap(Backup.Backup, (backup) => backup.verify(path.id, { tier: urlParams.tier ?? "checksums" })).pipe(
      Effect.catchAll(toProblem)
    ),
  restore: ({ path, payload }: {
    readonly path: { readonly id: string }
    readonly payload: typeof RestoreRequest.Type | null | undefined
  }) =>
    Effect.flatMap(Backup.Backup, (backup) =>
      backup.restore(path.id, {
        at: payload?.at,
        force: payload?.force,
        vectors: payload?.vectors
      })).pipe(Effect.catchAll(toProblem))
} as const

/**
 * A standalone api with only the backups group.
 *
 * @since 0.1.0
 * @category apis
 */
export class Api extends HttpApi.make("backups").add(Group) {}

/**
 * The handlers of the `backups` group for any api that contains it (with whatever middleware the api adds).
 *
 * @since 0.1.0
 * @category layers
 * @example
 * import { HttpApi } from "@effect/platform"
 * import { BackupHttp } from "@ouroboros/backup"
 * class MyApi extends HttpApi.make("my").add(BackupHttp.Group) {}
 * const BackupsLive = BackupHttp.layer(MyApi)
 */
export const layer = <ApiId extends string, Groups extends HttpApiGroup.HttpApiGroup.Any, E, R>(
  api: HttpApi.HttpApi<ApiId, Groups, E, R> & ("backups" extends HttpApiGroup.HttpApiGroup.Name<Groups> ? unknown
    : { readonly "the api must contain BackupHttp.Group": never })
): Layer.Layer<
  HttpApiGroup.ApiGroup<ApiId, "backups">,
  never,
  Backup.Backup | HttpApiGroup.HttpApiGroup.MiddlewareWithName<Groups, "backups">
> =>
  HttpApiBuilder.group(
    api as unknown as HttpApi.HttpApi<ApiId, typeof Group>,
    "backups",
    (handlers) =>
      handlers
        .handle("create", handle.create)
        .handle("list", handle.list)
        .handle("verify", handle.verify)
        .handle("restore", handle.restore)
  )

/**
 * The group of the standalone `Api`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerApi: Layer.Layer<HttpApiGroup.ApiGroup<"backups", "backups">, never, Backup.Backup> = layer(Api)
