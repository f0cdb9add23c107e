/**
 * `ouroboros audit verify | export`: the audit log checked and exported from the command line, on the server's
 * configuration (`DATABASE_URL` or the embedded database under `DATA_DIR`, `AUDIT_ORIGIN`, the signing key of
 * `AUDIT_SIGNING_KEY` or `DATA_DIR/audit/signing-key`).
 *
 * - `audit verify [--file <export>] [--key <verifier key>] [--json]`: recomputes the log, from the database or from an
 *   export file (`-` for stdin), against a pinned verifier key (`--key`, in Go's `<name>+<hash>+<key>` form; by
 *   default the one of the configured signing key). Progress on stderr when it is a terminal; the report on stdout
 *   (JSON with `--json`); exit code 1 when the log does not verify, naming the first bad index.
 * - `audit export [--output <file>]`: the log as NDJSON (`Verifier.exportLines`), on stdout or into a file.
 *
 * The command never writes to the log and never creates a key: with no key configured, pass `--key`.
 *
 * @since 0.1.0
 */
import { AuditKeys, AuditLog, AuditStore, Checkpoint, Verifier } from "@ouroboros/audit"
import { Config, Console, Data, Effect, Option, Redacted, Result, Schema, Stream } from "effect"
import { Command, Flag } from "effect/cli"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Readline from "node:readline"

/**
 * The command failed before it could verify (no key, an unreadable file, a malformed export, the database).
 *
 * @since 0.1.0
 * @category errors
 */
export class AuditCliError extends Data.TaggedError("AuditCliError")<{ readonly detail: string }> {}

const json = Flag.Boolean("json").pipe(
  Flag.withDefault(false),
  Flag.withoutNegation,
  Flag.withDescription("Print the result as JSON on stdout")
)

const settings = Config.all({
  dataDir: Config.String("DATA_DIR").pipe(Config.withDefault("./data")),
  origin: Config.String("AUDIT_ORIGIN").pipe(Config.withDefault(AuditLog.defaultOrigin)),
  signingKey: Config.option(Config.Redacted("AUDIT_SIGNING_KEY"))
})

/**
 * The pinned verifier key: `--key`, else the configured signing key's (never generated here).
 *
 * @since 0.1.0
 * @category utils
 */
export const pinnedKey = (
  given: Option.Option<string>
): Effect.Effect<
  { readonly verifier: Checkpoint.Verifier; readonly verifierKey: string; readonly origin: string },
  AuditCliError | Config.ConfigError
> =>
  Effect.gen(function*() {
    const { dataDir, origin, signingKey } = yield* settings
    const verifierKey = yield* Option.match(given, {
      onSome: (key) => Effect.succeed(key.trim()),
      onNone: () =>
        Effect.gen(function*() {
          const file = Path.resolve(dataDir, "audit", "signing-key")
          const text = Option.isSome(signingKey)
            ? Redacted.value(signingKey.value)
            : Fs.existsSync(file)
            ? Fs.readFileSync(file, "utf8")
            : undefined
          if (text === undefined) {
            return yield* new AuditCliError({
              detail: `no verifier key: set AUDIT_SIGNING_KEY, keep ${file}, or pass --key <name+hash+key>`
            })
          }
          const signer = AuditKeys.parseSigningKey(text, origin)
          if (Result.isFailure(signer)) return yield* new AuditCliError({ detail: signer.failure.message })
          return signer.success.verifierKey
        })
    })
    const verifier = Checkpoint.parseVerifierKey(verifierKey)
    if (Result.isFailure(verifier)) {
      return yield* new AuditCliError({ detail: `not a verifier key: ${verifier.failure.message}` })
    }
    return { verifier: verifier.success, verifierKey, origin }
  })

/**
 * The lines of a file (`-`: stdin).
 *
 * @since 0.1.0
 * @category utils
 */
export const fileLines = (file: string): Stream.Stream<string, AuditCliError> =>
  Stream.fromAsyncIterable(
    Readline.createInterface({
      input: file === "-" ? process.stdin : Fs.createReadStream(file, { encoding: "utf8" }),
      crlfDelay: Infinity
    }),
    (cause) => new AuditCliError({ detail: `cannot read ${file}: ${String(cause)}` })
  )

const progress = (enabled: boolean) => {
  const stream = process.stderr
  let last = 0
  return {
    onProgress: (p: Verifier.Progress) =>
      Effect.sync(() => {
        if (!enabled || !stream.isTTY) return
        const now = Date.now()
        if (p.phase !== "done" && now - last < 100) return
        last = now
        const total = p.total > 0 ? `/${p.total}` : ""
        stream.write(`\rverifying ${p.phase} ${p.done}${total}${p.phase === "done" ? "\n" : ""}`)
      })
  }
}

/**
 * The human form of a verification report: one line when it verifies, the first bad index and the problems found
 * otherwise.
 *
 * @since 0.1.0
 * @category utils
 */
export const describe = (result: Verifier.VerifyResult): string => {
  const summary =
    `${result.size} entries (${result.pruned} pruned), ${result.checkpoints} checkpoints, root ${result.rootHash}`
  if (result.ok) return `audit log verified: ${summary}`
  const problems = result.problems.map((p) => `  ${JSON.stringify(p)}`).join("\n")
  return `audit log does NOT verify: first bad index ${result.firstBadIndex}; ${result.problemCount} problems\n${problems}\n${summary}`
}

const failWith = (asJson: boolean) => <A, R>(effect: Effect.Effect<A, AuditCliError | Config.ConfigError, R>) =>
  Effect.catch(effect, (error) => {
    const detail = error._tag === "AuditCliError" ? error.detail : String(error)
    return Effect.andThen(
      asJson ? Console.log(JSON.stringify({ error: error._tag, detail })) : Console.error(`audit: ${detail}`),
      Effect.sync(() => {
        process.exitCode = 1
      })
    )
  })

const verify = Command.make(
  "verify",
  {
    file: Flag.String("file").pipe(
      Flag.optional,
      Flag.withDescription("Verify an export (NDJSON from `audit export`; - for stdin) instead of the database")
    ),
    key: Flag.String("key").pipe(
      Flag.optional,
      Flag.withDescription("The pinned verifier key (<name>+<hash>+<key>); default: the configured signing key's")
    ),
    json
  },
  ({ file, json, key }) =>
    Effect.gen(function*() {
      const pinned = yield* pinnedKey(key)
      const options = { ...pinned, onProgress: progress(!json).onProgress }
      const result = yield* Option.match(file, {
        onSome: (path) =>
          Verifier.verifyExport(fileLines(path), options).pipe(
            Effect.catchTag(
              "ExportMalformed",
              (e) => Effect.fail(new AuditCliError({ detail: `malformed export, line ${e.line}: ${e.detail}` }))
            )
          ),
        onNone: () =>
          Effect.flatMap(Effect.service(AuditStore.AuditStore), (store) => Verifier.verifyStore(store, options)).pipe(
            Effect.provide(AuditStore.layerSql),
            Effect.mapError((e) => new AuditCliError({ detail: `audit store: ${e.message}` }))
          )
      })
      yield* json
        ? Console.log(JSON.stringify(Schema.encodeSync(Schema.toCodecJson(Verifier.VerifyResult))(result), null, 2))
        : result.ok
        ? Console.log(describe(result))
        : Console.error(describe(result))
      if (!result.ok) process.exitCode = 1
    }).pipe(failWith(json))
).pipe(Command.withDescription("Verify the audit log (the database, or an export) against the pinned key"))

const exportCommand = Command.make(
  "export",
  {
    output: Flag.String("output").pipe(
      Flag.optional,
      Flag.withDescription("Write the export to this file (default: stdout)")
    )
  },
  ({ output }) =>
    Effect.gen(function*() {
      const pinned = yield* pinnedKey(Option.none())
      const store = yield* Effect.service(AuditStore.AuditStore)
      const sink = Option.match(output, {
        onNone: () => process.stdout,
        onSome: (file) => Fs.createWriteStream(file, { encoding: "utf8", mode: 0o600 })
      })
      let count = 0
      yield* Verifier.exportLines(store, { origin: pinned.origin, verifierKey: pinned.verifierKey }).pipe(
        Stream.runForEach((line) =>
          Effect.callback<void>((resume) => {
            count++
            if (sink.write(line + "\n")) resume(Effect.void)
            else sink.once("drain", () => resume(Effect.void))
          })
        )
      )
      if (Option.isSome(output)) {
        yield* Effect.callback<void>((resume) => {
          sink.end(() => resume(Effect.void))
        })
        yield* Console.error(`exported ${count} lines to ${output.value}`)
      }
    }).pipe(
      Effect.provide(AuditStore.layerSql),
      Effect.mapError((e) =>
        e._tag === "AuditCliError" || e._tag === "ConfigError"
          ? e
          : new AuditCliError({ detail: `audit store: ${e.message}` })
      ),
      failWith(false)
    )
).pipe(Command.withDescription("Export the audit log as NDJSON, verifiable offline with `audit verify --file`"))

/**
 * `ouroboros audit`.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("audit").pipe(
  Command.withDescription("The tamper-evident audit log"),
  Command.withSubcommands([verify, exportCommand])
)
