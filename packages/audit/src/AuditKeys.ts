/**
 * The audit log's two secrets: the Ed25519 key that signs checkpoints, and the key that protects the per-subject
 * encryption keys. Both come from configuration (`AUDIT_SIGNING_KEY`, `AUDIT_ENCRYPTION_KEY`, redacted) or, when
 * unset, from files under the data directory that the first start generates (mode 0600) and says so in the log.
 *
 * @since 0.1.0
 */
import { Data, Effect, Option, Redacted, Result } from "effect"
import { createPrivateKey, randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Checkpoint from "./Checkpoint.js"

/**
 * A key that cannot be used: `Invalid` (not in a known form) or `Unreadable` (its file could not be read or
 * written).
 *
 * @since 0.1.0
 * @category errors
 */
export class AuditKeyError extends Data.TaggedError("AuditKeyError")<{
  readonly reason: "Invalid" | "Unreadable"
  readonly message: string
  readonly cause?: unknown
}> {}

/**
 * The keys of a log.
 *
 * @since 0.1.0
 * @category models
 */
export interface Keys {
  /** Signs checkpoints; its name is the origin unless the key itself names another. */
  readonly signer: Checkpoint.Signer
  /** 32 bytes; wraps the subject keys and keys the subject references. */
  readonly encryptionKey: Redacted.Redacted<Uint8Array>
}

const invalid = (message: string) => new AuditKeyError({ reason: "Invalid", message })

const decodeBytes = (text: string): Uint8Array | undefined => {
  if (/^[0-9a-fA-F]+$/.test(text) && text.length % 2 === 0) return new Uint8Array(Buffer.from(text, "hex"))
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) {
    return new Uint8Array(Buffer.from(text, text.includes("-") || text.includes("_") ? "base64url" : "base64"))
  }
  return undefined
}

/**
 * Reads a signing key: a signer key `PRIVATE+KEY+<name>+<hash>+<base64>` (as Go's `note` package writes them; its
 * name is kept), a PEM or base64 PKCS#8 Ed25519 private key, or a 32-byte seed in base64 or hex (named `origin`).
 *
 * @since 0.1.0
 * @category keys
 */
export const parseSigningKey = (text: string, origin: string): Result.Result<Checkpoint.Signer, AuditKeyError> => {
  const trimmed = text.trim()
  if (trimmed.startsWith("PRIVATE+KEY+")) {
    return Result.mapError(Checkpoint.parseSignerKey(trimmed), (error) => invalid(`signing key: ${error.message}`))
  }
  try {
    if (trimmed.startsWith("-----BEGIN")) {
      return Result.succeed(Checkpoint.makeSigner(origin, Checkpoint.seedOf(createPrivateKey(trimmed))))
    }
    const bytes = decodeBytes(trimmed)
    if (bytes?.length === 32) return Result.succeed(Checkpoint.makeSigner(origin, bytes))
    if (bytes !== undefined && bytes.length > 32) {
      const key = createPrivateKey({ key: Buffer.from(bytes), format: "der", type: "pkcs8" })
      return Result.succeed(Checkpoint.makeSigner(origin, Checkpoint.seedOf(key)))
    }
  } catch (cause) {
    return Result.fail(new AuditKeyError({ reason: "Invalid", message: `signing key: ${String(cause)}`, cause }))
  }
  return Result.fail(invalid("signing key: expected PRIVATE+KEY+…, a PKCS#8 Ed25519 key, or a 32-byte seed"))
}

/**
 * Reads an encryption key: 32 bytes in base64 or hex.
 *
 * @since 0.1.0
 * @category keys
 */
export const parseEncryptionKey = (text: string): Result.Result<Uint8Array, AuditKeyError> => {
  const bytes = decodeBytes(text.trim())
  return bytes?.length === 32
    ? Result.succeed(bytes)
    : Result.fail(invalid("encryption key: expected 32 bytes, base64 or hex"))
}

/**
 * Fresh random keys in memory, for tests and throwaway logs.
 *
 * @since 0.1.0
 * @category constructors
 */
export const generate = (origin: string): Keys => ({
  signer: Checkpoint.makeSigner(origin, new Uint8Array(randomBytes(32))),
  encryptionKey: Redacted.make(new Uint8Array(randomBytes(32)))
})

/**
 * @since 0.1.0
 * @category models
 */
export interface LoadOptions {
  readonly origin: string
  /** Where generated keys are kept: `<dataDir>/audit/signing-key` and `<dataDir>/audit/encryption-key`. */
  readonly dataDir: string
  readonly signingKey: Option.Option<Redacted.Redacted<string>>
  readonly encryptionKey: Option.Option<Redacted.Redacted<string>>
}

const unreadable = (message: string, cause: unknown) => new AuditKeyError({ reason: "Unreadable", message, cause })

/** Reads the key file, or creates it with `fresh` (mode 0600, exclusively: two processes starting agree on one). */
const keyFile = (
  file: string,
  fresh: () => string
): Effect.Effect<{ readonly text: string; readonly created: boolean }, AuditKeyError> =>
  Effect.try({
    try: () => {
      Fs.mkdirSync(Path.dirname(file), { recursive: true, mode: 0o700 })
      try {
        Fs.writeFileSync(file, fresh(), { mode: 0o600, flag: "wx" })
        return { text: Fs.readFileSync(file, "utf8"), created: true }
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
        return { text: Fs.readFileSync(file, "utf8"), created: false }
      }
    },
    catch: (cause) => unreadable(`cannot read or create ${file}: ${String(cause)}`, cause)
  }).pipe(
    Effect.tap(({ created }) =>
      created ? Effect.void : Effect.sync(() => Fs.statSync(file).mode & 0o077).pipe(
        Effect.flatMap((loose) =>
          loose === 0 ? Effect.void : Effect.logWarning(`${file} is readable by others; make it mode 0600`)
        )
      )
    )
  )

/**
 * The keys from configuration, or from (and on first start, into) files under the data directory. Generating a key
 * is logged at WARN with the path and, for the signing key, the verifier key to give to witnesses.
 *
 * @since 0.1.0
 * @category constructors
 */
export const load = (options: LoadOptions): Effect.Effect<Keys, AuditKeyError> =>
  Effect.gen(function*() {
    const directory = Path.resolve(options.dataDir, "audit")
    const signer = yield* Option.match(options.signingKey, {
      onSome: (key) => Effect.fromResult(parseSigningKey(Redacted.value(key), options.origin)),
      onNone: () =>
        Effect.gen(function*() {
          const file = Path.join(directory, "signing-key")
          const { created, text } = yield* keyFile(file, () => Buffer.from(randomBytes(32)).toString("base64") + "\n")
          const signer = yield* Effect.fromResult(parseSigningKey(text, options.origin)).pipe(
            Effect.mapError((error) => invalid(`${file}: ${error.message}`))
          )
          if (created) {
            yield* Effect.logWarning(
              "AUDIT_SIGNING_KEY is not set: generated a new audit signing key (keep a copy; set AUDIT_SIGNING_KEY " +
                "in production)"
            ).pipe(Effect.annotateLogs({ file, verifierKey: signer.verifierKey }))
          } else {
            yield* Effect.logInfo("audit signing key read from the data directory").pipe(
              Effect.annotateLogs({ file, verifierKey: signer.verifierKey })
            )
          }
          return signer
        })
    })
    const encryptionKey = yield* Option.match(options.encryptionKey, {
      onSome: (key) => Effect.fromResult(parseEncryptionKey(Redacted.value(key))),
      onNone: () =>
        Effect.gen(function*() {
          const file = Path.join(directory, "encryption-key")
          const { created, text } = yield* keyFile(file, () => Buffer.from(randomBytes(32)).toString("base64") + "\n")
          const key = yield* Effect.fromResult(parseEncryptionKey(text)).pipe(
            Effect.mapError((error) => invalid(`${file}: ${error.message}`))
          )
          if (created) {
            yield* Effect.logWarning(
              "AUDIT_ENCRYPTION_KEY is not set: generated a new audit encryption key (without it the personal data " +
                "in the audit log cannot be read: keep a copy; set AUDIT_ENCRYPTION_KEY in production)"
            ).pipe(Effect.annotateLogs({ file }))
          }
          return key
        })
    })
    return { signer, encryptionKey: Redacted.make(encryptionKey) }
  }).pipe(Effect.annotateLogs({ service: "audit" }))
