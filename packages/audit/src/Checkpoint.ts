/**
 * Signed checkpoints in the formats transparency-log tools share, so witnesses and verifiers written for Go's
 * `sumdb`, Sigsum or Trillian-Tessera logs can check this log's:
 *
 * - [C2SP tlog-checkpoint](https://github.com/C2SP/C2SP/blob/main/tlog-checkpoint.md): an origin line, the tree size
 *   in decimal, the root hash in base64, optional extension lines.
 * - [C2SP signed-note](https://github.com/C2SP/C2SP/blob/main/signed-note.md): the text, a blank line, and one line
 *   per signature, `— <name> <base64(key hash ‖ signature)>`. For Ed25519 the key hash is the first 4 bytes of
 *   `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)`, and keys are written `<name>+<hex key hash>+<base64(0x01 ‖ key)>`
 *   (verifier) and `PRIVATE+KEY+<name>+<hex key hash>+<base64(0x01 ‖ seed)>` (signer), as Go's
 *   `golang.org/x/mod/sumdb/note` does.
 *
 * @since 0.1.0
 */
import { Data, Result } from "effect"
import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from "node:crypto"
import * as Merkle from "./Merkle.js"

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/**
 * A note, key or checkpoint that cannot be used: `Malformed` (not in the format), `UnknownKey` (no signature by the
 * expected key) or `BadSignature` (a signature by the expected key that does not verify).
 *
 * @since 0.1.0
 * @category errors
 */
export class CheckpointError extends Data.TaggedError("CheckpointError")<{
  readonly reason: "Malformed" | "UnknownKey" | "BadSignature"
  readonly message: string
}> {}

const malformed = (message: string) => new CheckpointError({ reason: "Malformed", message })

// -----------------------------------------------------------------------------
// keys
// -----------------------------------------------------------------------------

const algEd25519 = 0x01
const pkcs8Prefix = Buffer.from("302e020100300506032b657004220420", "hex")
const spkiPrefix = Buffer.from("302a300506032b6570032100", "hex")
const encoder = new TextEncoder()

/**
 * A key that signs notes: Ed25519, with the name signatures carry.
 *
 * @since 0.1.0
 * @category models
 */
export interface Signer {
  readonly name: string
  /** The first 4 bytes of `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)`. */
  readonly keyHash: Uint8Array
  readonly publicKey: Uint8Array
  /** The verifier key, `<name>+<hex key hash>+<base64(0x01 ‖ public key)>`, to give to witnesses and verifiers. */
  readonly verifierKey: string
  readonly sign: (message: Uint8Array) => Uint8Array
}

/**
 * A key that checks signatures of one name.
 *
 * @since 0.1.0
 * @category models
 */
export interface Verifier {
  readonly name: string
  readonly keyHash: Uint8Array
  readonly verify: (message: Uint8Array, signature: Uint8Array) => boolean
}

const isValidName = (name: string): boolean => name.length > 0 && !name.includes("+") && !/[\s\p{Z}\p{Cc}]/u.test(name)

/**
 * The key hash of an Ed25519 key: the first 4 bytes of `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)`.
 *
 * @since 0.1.0
 * @category keys
 */
export const keyHash = (name: string, publicKey: Uint8Array): Uint8Array =>
  new Uint8Array(
    createHash("sha256").update(encoder.encode(name)).update(new Uint8Array([0x0a, algEd25519])).update(publicKey)
      .digest().subarray(0, 4)
  )

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex")
const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64")

// Strict standard base64 (with padding), as Go's StdEncoding: anything else is not the same key or signature.
const fromBase64 = (text: string): Uint8Array | undefined => {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) return undefined
  const bytes = Buffer.from(text, "base64")
  return base64(bytes) === text ? new Uint8Array(bytes) : undefined
}

/**
 * The private key object of an Ed25519 seed (the 32-byte private key of RFC 8032).
 *
 * @since 0.1.0
 * @category keys
 */
export const privateKeyFromSeed = (seed: Uint8Array): KeyObject => {
  if (seed.length !== 32) throw new RangeError(`an Ed25519 seed has 32 bytes, got ${seed.length}`)
  return createPrivateKey({ key: Buffer.concat([pkcs8Prefix, seed]), format: "der", type: "pkcs8" })
}

/**
 * The 32-byte seed of an Ed25519 private key object.
 *
 * @since 0.1.0
 * @category keys
 */
export const seedOf = (key: KeyObject): Uint8Array => {
  if (key.asymmetricKeyType !== "ed25519") throw new TypeError(`not an Ed25519 key: ${key.asymmetricKeyType}`)
  const der = key.export({ format: "der", type: "pkcs8" })
  return new Uint8Array(der.subarray(der.length - 32))
}

const rawPublicKey = (key: KeyObject): Uint8Array => {
  const der = createPublicKey(key).export({ format: "der", type: "spki" })
  return new Uint8Array(der.subarray(der.length - 32))
}

/**
 * A signer from a name and an Ed25519 seed.
 *
 * @since 0.1.0
 * @category keys
 */
export const makeSigner = (name: string, seed: Uint8Array): Signer => {
  if (!isValidName(name)) throw new RangeError(`invalid key name ${JSON.stringify(name)}`)
  const privateKey = privateKeyFromSeed(seed)
  const publicKey = rawPublicKey(privateKey)
  const hash = keyHash(name, publicKey)
  return {
    name,
    keyHash: hash,
    publicKey,
    verifierKey: `${name}+${hex(hash)}+${base64(new Uint8Array([algEd25519, ...publicKey]))}`,
    sign: (message) => new Uint8Array(sign(null, message, privateKey))
  }
}

/**
 * The signer key string of a signer's seed: `PRIVATE+KEY+<name>+<hex key hash>+<base64(0x01 ‖ seed)>`.
 *
 * @since 0.1.0
 * @category keys
 */
export const signerKey = (name: string, seed: Uint8Array): string => {
  const signer = makeSigner(name, seed)
  return `PRIVATE+KEY+${name}+${hex(signer.keyHash)}+${base64(new Uint8Array([algEd25519, ...seed]))}`
}

const parseKey = (
  text: string,
  prefix: string
): Result.Result<{ name: string; hash: Uint8Array; key: Uint8Array }, CheckpointError> => {
  if (!text.startsWith(prefix)) return Result.fail(malformed(`a key starts with ${JSON.stringify(prefix)}`))
  const parts = text.slice(prefix.length).split("+")
  // The base64 of the key may itself contain '+': the name and the hash are the first two fields.
  if (parts.length < 3) return Result.fail(malformed("a key is <name>+<hash>+<key>"))
  const [name, hashHex, ...rest] = parts as [string, string, ...Array<string>]
  const material = fromBase64(rest.join("+"))
  if (!isValidName(name)) return Result.fail(malformed(`invalid key name ${JSON.stringify(name)}`))
  if (!/^[0-9a-f]{8}$/.test(hashHex)) return Result.fail(malformed("a key hash is 8 lower-case hex digits"))
  if (material === undefined || material.length !== 33 || material[0] !== algEd25519) {
    return Result.fail(malformed("only Ed25519 keys (algorithm 1, 32 bytes) are supported"))
  }
  return Result.succeed({ name, hash: Buffer.from(hashHex, "hex"), key: material.subarray(1) })
}

/**
 * A verifier from a verifier key `<name>+<hex key hash>+<base64(0x01 ‖ public key)>`; the key hash must match.
 *
 * @since 0.1.0
 * @category keys
 */
export const parseVerifierKey = (vkey: string): Result.Result<Verifier, CheckpointError> =>
  Result.flatMap(parseKey(vkey, ""), ({ hash, key, name }) => {
    if (hex(keyHash(name, key)) !== hex(hash)) return Result.fail(malformed("the key hash does not match the key"))
    let publicKey: KeyObject
    try {
      publicKey = createPublicKey({ key: Buffer.concat([spkiPrefix, key]), format: "der", type: "spki" })
    } catch {
      return Result.fail(malformed("not an Ed25519 public key"))
    }
    return Result.succeed({
      name,
      keyHash: hash,
      verify: (message, signature) => signature.length === 64 && verify(null, message, publicKey, signature)
    })
  })

/**
 * A signer from a signer key `PRIVATE+KEY+<name>+<hex key hash>+<base64(0x01 ‖ seed)>`; the key hash must match.
 *
 * @since 0.1.0
 * @category keys
 */
export const parseSignerKey = (skey: string): Result.Result<Signer, CheckpointError> =>
  Result.flatMap(parseKey(skey, "PRIVATE+KEY+"), ({ hash, key, name }) => {
    const signer = makeSigner(name, key)
    return hex(signer.keyHash) === hex(hash)
      ? Result.succeed(signer)
      : Result.fail(malformed("the key hash does not match the key"))
  })

/**
 * The verifier of a signer's own signatures.
 *
 * @since 0.1.0
 * @category keys
 */
export const verifierOf = (signer: Signer): Verifier => Result.getOrThrow(parseVerifierKey(signer.verifierKey))

// -----------------------------------------------------------------------------
// notes
// -----------------------------------------------------------------------------

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

const isValidText = (text: string): boolean =>
  text.endsWith("\n") && !loneSurrogate.test(text) && !/[\u0000-\u0009\u000b-\u001f\u007f]/.test(text)

/**
 * Signs a note text (UTF-8, ending in a newline, no other control characters): the text, a blank line and one
 * signature line per signer.
 *
 * @since 0.1.0
 * @category notes
 */
export const signNote = (text: string, signers: ReadonlyArray<Signer>): string => {
  if (!isValidText(text)) throw new RangeError("a note text ends with a newline and has no other control characters")
  const message = encoder.encode(text)
  const lines = signers.map((signer) =>
    `\u2014 ${signer.name} ${base64(new Uint8Array([...signer.keyHash, ...signer.sign(message)]))}\n`
  )
  return `${text}\n${lines.join("")}`
}

/**
 * One signature of a note.
 *
 * @since 0.1.0
 * @category models
 */
export interface NoteSignature {
  readonly name: string
  readonly keyHash: Uint8Array
  readonly signature: Uint8Array
}

/**
 * Splits a signed note into its text and signatures, without checking them.
 *
 * @since 0.1.0
 * @category notes
 */
export const parseNote = (
  note: string
): Result.Result<{ readonly text: string; readonly signatures: ReadonlyArray<NoteSignature> }, CheckpointError> => {
  const split = note.lastIndexOf("\n\n")
  if (split < 0 || !note.endsWith("\n")) {
    return Result.fail(malformed("a signed note is text, a blank line, signatures"))
  }
  const text = note.slice(0, split + 1)
  if (!isValidText(text)) return Result.fail(malformed("the note text has control characters or is not UTF-8"))
  const signatures: Array<NoteSignature> = []
  for (const line of note.slice(split + 2, -1).split("\n")) {
    const match = /^\u2014 (\S+) (\S+)$/u.exec(line)
    const bytes = match === null ? undefined : fromBase64(match[2]!)
    if (match === null || bytes === undefined || bytes.length < 5 || !isValidName(match[1]!)) {
      return Result.fail(malformed(`not a signature line: ${JSON.stringify(line)}`))
    }
    signatures.push({ name: match[1]!, keyHash: bytes.subarray(0, 4), signature: bytes.subarray(4) })
  }
  if (signatures.length === 0) return Result.fail(malformed("a signed note has at least one signature"))
  return Result.succeed({ text, signatures })
}

/**
 * Checks a signed note against a verifier: the note must carry a signature of that key (name and key hash) and the
 * signature must verify. Signatures by other keys (witness cosignatures) are allowed and ignored.
 *
 * @since 0.1.0
 * @category notes
 */
export const openNote = (note: string, verifier: Verifier): Result.Result<string, CheckpointError> =>
  Result.flatMap(parseNote(note), ({ signatures, text }) => {
    const mine = signatures.filter((s) => s.name === verifier.name && hex(s.keyHash) === hex(verifier.keyHash))
    if (mine.length === 0) {
      return Result.fail(new CheckpointError({ reason: "UnknownKey", message: `no signature by ${verifier.name}` }))
    }
    const message = encoder.encode(text)
    return mine.every((s) => verifier.verify(message, s.signature))
      ? Result.succeed(text)
      : Result.fail(
        new CheckpointError({ reason: "BadSignature", message: `the signature of ${verifier.name} is bad` })
      )
  })

// -----------------------------------------------------------------------------
// checkpoints
// -----------------------------------------------------------------------------

/**
 * The body of a checkpoint: which log, how many entries, the root of the tree of those entries.
 *
 * @since 0.1.0
 * @category models
 */
export interface Checkpoint {
  readonly origin: string
  readonly size: number
  readonly rootHash: Uint8Array
  /** Optional extension lines after the root hash. */
  readonly extensions?: ReadonlyArray<string> | undefined
}

/**
 * The text of a checkpoint: `<origin>\n<size>\n<base64 root>\n` and its extension lines.
 *
 * @since 0.1.0
 * @category checkpoints
 */
export const formatCheckpoint = (checkpoint: Checkpoint): string => {
  if (checkpoint.origin.length === 0 || /[\u0000-\u001f\u007f]/.test(checkpoint.origin)) {
    throw new RangeError("a checkpoint origin is one non-empty line")
  }
  if (!Number.isSafeInteger(checkpoint.size) || checkpoint.size < 0) throw new RangeError("invalid tree size")
  if (checkpoint.rootHash.length !== Merkle.hashSize) throw new RangeError("a root hash has 32 bytes")
  const extensions = (checkpoint.extensions ?? []).map((line) => `${line}\n`).join("")
  return `${checkpoint.origin}\n${checkpoint.size}\n${base64(checkpoint.rootHash)}\n${extensions}`
}

/**
 * Reads the text of a checkpoint.
 *
 * @since 0.1.0
 * @category checkpoints
 */
export const parseCheckpoint = (text: string): Result.Result<Checkpoint, CheckpointError> => {
  const lines = text.split("\n")
  if (lines.length < 4 || lines[lines.length - 1] !== "") {
    return Result.fail(malformed("a checkpoint is an origin, a size and a root hash, each on its own line"))
  }
  const [origin, size, root, ...rest] = lines as [string, string, string, ...Array<string>]
  const extensions = rest.slice(0, -1)
  const rootHash = fromBase64(root)
  if (origin.length === 0) return Result.fail(malformed("the origin line is empty"))
  if (!/^(0|[1-9][0-9]*)$/.test(size) || !Number.isSafeInteger(Number(size))) {
    return Result.fail(malformed(`invalid tree size ${JSON.stringify(size)}`))
  }
  if (rootHash === undefined || rootHash.length !== Merkle.hashSize) {
    return Result.fail(malformed("the root hash is not 32 bytes of base64"))
  }
  if (extensions.some((line) => line.length === 0)) return Result.fail(malformed("an extension line is empty"))
  return Result.succeed({ origin, size: Number(size), rootHash, ...(extensions.length > 0 ? { extensions } : {}) })
}

/**
 * Signs a checkpoint: the signed note whose text is the checkpoint.
 *
 * @since 0.1.0
 * @category checkpoints
 */
export const signCheckpoint = (checkpoint: Checkpoint, signer: Signer): string =>
  signNote(formatCheckpoint(checkpoint), [signer])

/**
 * Checks a signed checkpoint against the log's verifier key and reads it. With `origin`, the checkpoint must be of
 * that log.
 *
 * @since 0.1.0
 * @category checkpoints
 */
export const openCheckpoint = (
  note: string,
  verifier: Verifier,
  origin?: string
): Result.Result<Checkpoint, CheckpointError> =>
  Result.flatMap(
    openNote(note, verifier),
    (text) =>
      Result.flatMap(parseCheckpoint(text), (checkpoint) =>
        origin !== undefined && checkpoint.origin !== origin
          ? Result.fail(malformed(`the checkpoint is of ${JSON.stringify(checkpoint.origin)}, not ${origin}`))
          : Result.succeed(checkpoint))
  )
