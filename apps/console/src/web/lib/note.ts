/**
 * Signed checkpoints of the audit log, read and checked in the browser:
 *
 * - [C2SP signed-note](https://github.com/C2SP/C2SP/blob/main/signed-note.md): the text, a blank line, and lines
 *   `— <name> <base64(key hash ‖ signature)>`;
 * - [C2SP tlog-checkpoint](https://github.com/C2SP/C2SP/blob/main/tlog-checkpoint.md): origin, tree size, base64 root
 *   hash, extension lines;
 * - verifier keys `<name>+<hex key hash>+<base64(0x01 ‖ Ed25519 public key)>`, whose key hash is the first 4 bytes of
 *   `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)`.
 *
 * Ed25519 is verified with WebCrypto where the browser has it (Chromium, Firefox and Safari do); elsewhere the result
 * says so instead of guessing.
 *
 * @since 0.1.0
 */
import { equal, fromBase64, sha256, toHex } from "./merkle.js"

const encoder = new TextEncoder()

/**
 * A signature line of a note.
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
 * A note split into its signed text and its signatures.
 *
 * @since 0.1.0
 * @category models
 */
export interface Note {
  /** The signed text, ending with a newline. */
  readonly text: string
  readonly signatures: ReadonlyArray<NoteSignature>
}

/**
 * Splits a signed note; `undefined` when it is not one.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseNote = (note: string): Note | undefined => {
  const split = note.lastIndexOf("\n\n")
  if (split === -1 || !note.endsWith("\n")) return undefined
  const text = note.slice(0, split + 1)
  const lines = note.slice(split + 2, -1).split("\n")
  const signatures: Array<NoteSignature> = []
  for (const line of lines) {
    const match = /^\u2014 (\S+) (\S+)$/.exec(line)
    if (match === null) return undefined
    const bytes = fromBase64(match[2]!)
    if (bytes === undefined || bytes.length < 5) return undefined
    signatures.push({ name: match[1]!, keyHash: bytes.slice(0, 4), signature: bytes.slice(4) })
  }
  return signatures.length === 0 ? undefined : { text, signatures }
}

/**
 * What a checkpoint says.
 *
 * @since 0.1.0
 * @category models
 */
export interface Checkpoint {
  readonly origin: string
  readonly size: number
  readonly rootHash: Uint8Array
  readonly extensions: ReadonlyArray<string>
}

/**
 * Reads a checkpoint text (the signed text of a note); `undefined` when it is not one.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseCheckpoint = (text: string): Checkpoint | undefined => {
  const lines = text.split("\n")
  if (lines.length < 4 || lines.at(-1) !== "") return undefined
  const [origin, size, root] = lines as [string, string, string]
  if (origin === "" || !/^(0|[1-9][0-9]{0,15})$/.test(size)) return undefined
  const rootHash = fromBase64(root)
  if (rootHash === undefined || rootHash.length !== 32) return undefined
  return { origin, size: Number(size), rootHash, extensions: lines.slice(3, -1) }
}

/**
 * A parsed verifier key.
 *
 * @since 0.1.0
 * @category models
 */
export interface VerifierKey {
  readonly name: string
  readonly keyHash: Uint8Array
  readonly publicKey: Uint8Array
}

/**
 * Reads a verifier key and checks its key hash; a string explains what is wrong.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseVerifierKey = async (text: string): Promise<VerifierKey | string> => {
  const parts = text.trim().split("+")
  if (parts.length < 3) return "a verifier key is <name>+<key hash>+<key>"
  const [name, hashHex, ...rest] = parts as [string, string, ...Array<string>]
  if (name === "" || /\s/.test(name)) return "the key name is empty or has spaces"
  if (!/^[0-9a-f]{8}$/.test(hashHex)) return "the key hash is 8 lower-case hex digits"
  const material = fromBase64(rest.join("+"))
  if (material === undefined || material.length !== 33 || material[0] !== 0x01) {
    return "only Ed25519 keys (algorithm 1, 32 bytes) are supported"
  }
  const publicKey = material.slice(1)
  const keyHash = await verifierKeyHash(name, publicKey)
  if (toHex(keyHash) !== hashHex) return "the key hash does not match the key"
  return { name, keyHash, publicKey }
}

/**
 * The first 4 bytes of `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)`.
 *
 * @since 0.1.0
 * @category hashing
 */
export const verifierKeyHash = async (name: string, publicKey: Uint8Array): Promise<Uint8Array> => {
  const prefix = encoder.encode(`${name}\n`)
  const input = new Uint8Array(prefix.length + 1 + publicKey.length)
  input.set(prefix, 0)
  input[prefix.length] = 0x01
  input.set(publicKey, prefix.length + 1)
  return (await sha256(input)).slice(0, 4)
}

// The public key of RFC 8032's first test vector: a valid point, so only a missing algorithm makes the import fail.
const rfc8032PublicKey = new Uint8Array(
  "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a".match(/../g)!.map((h) => parseInt(h, 16))
)

/**
 * Whether this browser's WebCrypto verifies Ed25519.
 *
 * @since 0.1.0
 * @category capabilities
 */
export const supportsEd25519 = async (): Promise<boolean> => {
  try {
    await crypto.subtle.importKey("raw", rfc8032PublicKey, { name: "Ed25519" }, false, ["verify"])
    return true
  } catch {
    return false
  }
}

/**
 * The outcome of checking a note's signature: `verified`, `unsupported` (no Ed25519 in this browser), `no-signature`
 * (no signature by the key's name and hash) or `bad-signature`.
 *
 * @since 0.1.0
 * @category models
 */
export type SignatureCheck = "verified" | "unsupported" | "no-signature" | "bad-signature"

/**
 * Checks the signature of `key` on a note.
 *
 * @since 0.1.0
 * @category verification
 */
export const verifyNote = async (note: Note, key: VerifierKey): Promise<SignatureCheck> => {
  const signature = note.signatures.find((s) => s.name === key.name && equal(s.keyHash, key.keyHash))
  if (signature === undefined) return "no-signature"
  if (signature.signature.length !== 64) return "bad-signature"
  let publicKey: CryptoKey
  try {
    publicKey = await crypto.subtle.importKey(
      "raw",
      key.publicKey as Uint8Array<ArrayBuffer>,
      { name: "Ed25519" },
      false,
      ["verify"]
    )
  } catch {
    return "unsupported"
  }
  const ok = await crypto.subtle.verify(
    { name: "Ed25519" },
    publicKey,
    signature.signature as Uint8Array<ArrayBuffer>,
    encoder.encode(note.text)
  )
  return ok ? "verified" : "bad-signature"
}
