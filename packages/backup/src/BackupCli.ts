/**
 * The `backup` command line: `backup create | list | verify <id> | restore <id> [--at <time|sequence>] [--force]`,
 * each with `--json` for machine-readable output on stdout. Progress goes to stderr as a text bar (only on a
 * terminal). It needs only the `Backup` service; the application builds the layers in its CLI entry.
 *
 * @since 0.1.0
 */
import { Console, Effect, Option, Schema } from "effect"
import { Argument, CliError, Command, Flag } from "effect/cli"
import * as Backup from "./Backup.js"
import * as Manifest from "./Manifest.js"

// Off unless given; `--no-<name>` is not accepted (the Effect 3 CLI had no negated form).
const switchFlag = (name: string, description: string) =>
  Flag.Boolean(name).pipe(Flag.withDefault(false), Flag.withoutNegation, Flag.withDescription(description))

const json = switchFlag("json", "Print the result as JSON on stdout")

const width = 30

/**
 * Renders a progress bar line, e.g. `events  [##########----------]  50%  5000/10000`.
 *
 * @since 0.1.0
 * @category utils
 */
export const renderBar = (progress: Backup.Progress): string => {
  const phase = progress.phase.padEnd(16).slice(0, 16)
  if (progress.total === undefined || progress.total <= 0) return `${phase} ${progress.done}`
  const ratio = Math.max(0, Math.min(1, progress.done / progress.total))
  const filled = Math.round(ratio * width)
  return `${phase} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${
    String(Math.round(ratio * 100)).padStart(3)
  }%  ${progress.done}/${progress.total}`
}

const progressBar = (enabled: boolean) => {
  let lastPhase = ""
  let lastDraw = 0
  const stream = process.stderr
  const onProgress = (progress: Backup.Progress) =>
    Effect.sync(() => {
      if (!enabled || !stream.isTTY) return
      const now = Date.now()
      const complete = progress.total !== undefined && progress.done >= progress.total
      if (progress.phase === lastPhase && now - lastDraw < 100 && !complete) return
      if (progress.phase !== lastPhase && lastPhase !== "") stream.write("\n")
      lastPhase = progress.phase
      lastDraw = now
      stream.write(`\r${renderBar(progress)}`)
    })
  const done = Effect.sync(() => {
    if (enabled && stream.isTTY && lastPhase !== "") stream.write("\n")
  })
  return { onProgress, done }
}

const print = <A>(asJson: boolean, schema: Schema.Codec<A, unknown>, value: A, human: (value: A) => string) =>
  asJson
    ? Console.log(JSON.stringify(Schema.encodeSync(Schema.toCodecJson(schema))(value), null, 2))
    : Console.log(human(value))

const size = (bytes: number): string =>
  bytes < 1024
    ? `${bytes} B`
    : bytes < 1 << 20
    ? `${(bytes / 1024).toFixed(1)} KiB`
    : `${(bytes / (1 << 20)).toFixed(1)} MiB`

const describeInfo = (info: Manifest.BackupInfo): string => {
  const m = info.manifest
  const v = info.verification
  const verified = v === undefined
    ? "unverified"
    : `${v.ok ? "verified" : "FAILED"} (${v.tier}, ${v.verifiedAt.toISOString()})`
  return `${m.id}  ${m.kind.padEnd(11)}  events ${m.events.from}-${m.events.to} (${m.events.count})  ${
    size(info.bytes)
  }  ${verified}`
}

// Errors: a readable line on stderr (or a JSON object on stdout with --json) and a non-zero exit code.
const reportErrors = (asJson: boolean) => <A, R>(effect: Effect.Effect<A, Backup.BackupError, R>) =>
  Effect.catch(effect, (error) =>
    Effect.andThen(
      asJson
        ? Console.log(JSON.stringify({ error: error._tag, detail: error.detail }))
        : Console.error(`backup: ${error.detail}`),
      Effect.andThen(
        Effect.sync(() => {
          process.exitCode = 1
        }),
        Effect.fail(error)
      )
    ))

const create = Command.make(
  "create",
  {
    kind: Flag.Literals("kind", ["full", "incremental"]).pipe(
      Flag.optional,
      Flag.withDescription("Full or incremental (default: incremental when a backup exists)")
    ),
    json
  },
  ({ json, kind }) =>
    Effect.gen(function*() {
      const backup = yield* Backup.Backup
      const bar = progressBar(!json)
      const manifest = yield* backup.create({ kind: Option.getOrUndefined(kind), onProgress: bar.onProgress }).pipe(
        Effect.ensuring(bar.done)
      )
      yield* print(json, Manifest.Manifest, manifest, (m) =>
        `created ${m.id} (${m.kind}): events ${m.events.from}-${m.events.to}, ${m.files.length} files, ${
          size(m.files.reduce((n, f) =>
            n + f.bytes, 0))
        }`)
    }).pipe(reportErrors(json))
).pipe(Command.withDescription("Take a backup now"))

const list = Command.make("list", { json }, ({ json }) =>
  Effect.gen(function*() {
    const backup = yield* Backup.Backup
    const infos = yield* backup.list
    yield* print(json, Schema.Array(Manifest.BackupInfo), infos, (all) =>
      all.length === 0 ? "no backups" : all.map(describeInfo).join("\n"))
  }).pipe(reportErrors(json))).pipe(Command.withDescription("List backups, newest first"))

const id = Argument.String("id").pipe(Argument.withDescription("The backup id (see `backup list`)"))

const verify = Command.make(
  "verify",
  {
    id,
    tier: Flag.Literals("tier", ["checksums", "restore"]).pipe(
      Flag.withDefault("checksums" as const),
      Flag.withDescription("checksums: re-hash the files; restore: also restore into scratch stores and compare")
    ),
    json
  },
  ({ id, json, tier }) =>
    Effect.gen(function*() {
      const backup = yield* Backup.Backup
      const bar = progressBar(!json)
      const verification = yield* backup.verify(id, { tier, onProgress: bar.onProgress }).pipe(
        Effect.ensuring(bar.done)
      )
      yield* print(json, Manifest.Verification, verification, (v) => `${id}: verified (${v.tier})`)
    }).pipe(reportErrors(json))
).pipe(Command.withDescription("Verify a backup"))

/**
 * Parses a restore point: a sequence number or an ISO 8601 instant.
 *
 * @since 0.1.0
 * @category utils
 */
export const parseRestorePoint = (text: string): Option.Option<Date | number> => {
  if (/^\d+$/.test(text)) return Option.some(Number(text))
  if (!/^\d{4}-\d{2}-\d{2}/.test(text)) return Option.none()
  const time = Date.parse(text)
  return Number.isNaN(time) ? Option.none() : Option.some(new Date(time))
}

const restore = Command.make(
  "restore",
  {
    id: Argument.String("id").pipe(
      Argument.withDescription("The backup id (default: the newest verified backup before --at)"),
      Argument.optional
    ),
    at: Flag.String("at").pipe(
      Flag.mapEffect((text) =>
        Option.match(parseRestorePoint(text), {
          onNone: () =>
            Effect.fail(
              new CliError.ValidationError({
                message: `--at must be an ISO 8601 time or a sequence number, not ${JSON.stringify(text)}`
              })
            ),
          onSome: Effect.succeed
        })
      ),
      Flag.optional,
      Flag.withDescription("Recover to this instant (ISO 8601) or event sequence")
    ),
    force: switchFlag("force", "Restore even if the backup is not verified"),
    vectors: Flag.Literals("vectors", ["snapshot", "rebuild"]).pipe(
      Flag.optional,
      Flag.withDescription("Restore vector snapshots, or rebuild vectors from the events")
    ),
    json
  },
  ({ at, force, id, json, vectors }) =>
    Effect.gen(function*() {
      const backup = yield* Backup.Backup
      const bar = progressBar(!json)
      const result = yield* backup.restore(Option.getOrElse(id, () => Backup.latest), {
        at: Option.getOrUndefined(at),
        force,
        vectors: Option.getOrUndefined(vectors),
        onProgress: bar.onProgress
      }).pipe(Effect.ensuring(bar.done))
      yield* print(json, Backup.RestoreResult, result, (r) =>
        `restored ${r.id}: ${r.restoredEvents} events from ${r.chain.length} backup(s), ` +
        `${r.replayedEvents} replayed, ` +
        `last sequence ${r.lastSequence}, vectors by ${r.vectors}`)
    }).pipe(reportErrors(json))
).pipe(Command.withDescription("Restore a backup, or recover to a point in time with --at"))

/**
 * The `backup` command with its subcommands.
 *
 * @since 0.1.0
 * @category commands
 * @example
 * import { BackupCli } from "@ouroboros/backup"
 * import { Command } from "effect/cli"
 * const cli = Command.make("ouroboros").pipe(Command.withSubcommands([BackupCli.command]))
 */
export const command = Command.make("backup").pipe(
  Command.withDescription("Create, list, verify and restore backups"),
  Command.withSubcommands([create, list, verify, restore])
)
