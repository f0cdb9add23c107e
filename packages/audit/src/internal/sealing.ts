/**
 * Per-subject encryption of personal fields: AES-256-GCM with a data key per data subject, wrapped (AES-256-GCM too)
 * with a key-encryption key derived from the log's encryption key. Subjects are found by a keyed hash
 * (HMAC-SHA-256), so the store never holds a subject in clear.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  hkdfSync,
  randomBytes,
  randomFillSync,
  randomUUID
} from "node:crypto"

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/**
 * The keys derived from the log's encryption key.
 *
 * @internal
 */
export interface KeyRing {
  readonly wrapKey: Uint8Array
  readonly refKey: Uint8Array
}

/** @internal */
export const keyRing = (encryptionKey: Uint8Array): KeyRing => {
  if (encryptionKey.length !== 32) throw new RangeError("the audit encryption key has 32 bytes")
  const derive = (info: string) =>
    new Uint8Array(hkdfSync("sha256", encryptionKey, new Uint8Array(0), encoder.encode(info), 32))
  return { wrapKey: derive("ouroboros audit: key wrapping"), refKey: derive("ouroboros audit: subject reference") }
}

/**
 * The keyed hash that finds a subject's keys (the tenant is stored beside it, in clear).
 *
 * @internal
 */
export const subjectRef = (ring: KeyRing, subject: string): Uint8Array =>
  new Uint8Array(createHmac("sha256", ring.refKey).update(encoder.encode(subject)).digest())

// Nonces come from a pool refilled from the CSPRNG: one system call per 5,461 nonces instead of one per nonce.
const pool = Buffer.alloc(12 * 5461)
let poolOffset = pool.length

const nonce = (): Buffer => {
  if (poolOffset + 12 > pool.length) {
    randomFillSync(pool)
    poolOffset = 0
  }
  const iv = Buffer.from(pool.subarray(poolOffset, poolOffset + 12))
  poolOffset += 12
  return iv
}

const seal = (key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array) => {
  const iv = nonce()
  const cipher = createCipheriv("aes-256-gcm", key, iv)
  cipher.setAAD(aad)
  const data = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()])
  return { iv: new Uint8Array(iv), data: new Uint8Array(data) }
}

const open = (key: Uint8Array, iv: Uint8Array, data: Uint8Array, aad: Uint8Array): Uint8Array | undefined => {
  if (iv.length !== 12 || data.length < 16) return undefined
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, iv)
    decipher.setAAD(aad)
    decipher.setAuthTag(data.subarray(data.length - 16))
    return new Uint8Array(Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()]))
  } catch {
    return undefined
  }
}

/**
 * A new data key for a subject, and its wrapped form (12-byte nonce ‖ ciphertext ‖ tag) bound to its key id.
 *
 * @internal
 */
export const newSubjectKey = (ring: KeyRing): { keyId: string; key: Uint8Array; wrapped: Uint8Array } => {
  const keyId = randomUUID()
  const key = new Uint8Array(randomBytes(32))
  const { data, iv } = seal(ring.wrapKey, key, encoder.encode(keyId))
  const wrapped = new Uint8Array(iv.length + data.length)
  wrapped.set(iv)
  wrapped.set(data, iv.length)
  return { keyId, key, wrapped }
}

/** @internal */
export const unwrapSubjectKey = (ring: KeyRing, keyId: string, wrapped: Uint8Array): Uint8Array | undefined =>
  open(ring.wrapKey, wrapped.subarray(0, 12), wrapped.subarray(12), encoder.encode(keyId))

/**
 * Seals personal data under a subject key; the key id is the additional data, so a sealed part opens only as the
 * data of that key.
 *
 * @internal
 */
export const sealPersonal = (
  key: Uint8Array,
  keyId: string,
  plaintext: string
): { readonly iv: string; readonly data: string } => {
  const { data, iv } = seal(key, encoder.encode(plaintext), encoder.encode(keyId))
  return { iv: Buffer.from(iv).toString("base64"), data: Buffer.from(data).toString("base64") }
}

/** @internal */
export const openPersonal = (key: Uint8Array, keyId: string, iv: string, data: string): string | undefined => {
  const opened = open(key, Buffer.from(iv, "base64"), Buffer.from(data, "base64"), encoder.encode(keyId))
  return opened === undefined ? undefined : decoder.decode(opened)
}
