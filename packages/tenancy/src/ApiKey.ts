/**
 * API keys: their format, how they are digested, and how a presented key is matched.
 *
 * A generated key is `ouro_<prefix>_<secret>`: a 12-hex-digit public prefix (48 random bits, the key's id in lists,
 * logs and rate-limit buckets) and a 256-bit random secret (43 base64url characters). Only a digest of the whole key
 * is stored: SHA-256, or HMAC-SHA-256 with a server pepper (`API_KEY_PEPPER`) when one is configured.
 *
 * Why a fast digest and not a password hash: a generated key carries 256 bits of entropy, so a stolen digest cannot be
 * reversed by guessing however fast each guess is; a slow KDF (bcrypt, scrypt, argon2) would only add milliseconds to
 * every request. Configured keys (`OUROBOROS_API_KEYS`) are chosen by people and need at least 16 characters; for
 * them the pepper adds what entropy they lack against an attacker who has the digests but not the pepper.
 *
 * A presented key is looked up by its prefix (configured keys, which have none, by a prefix taken from their digest)
 * and its digest is compared with `crypto.timingSafeEqual`.
 *
 * @since 0.1.0
 */
import { Redacted } from "effect"
import { createHmac, hash, randomBytes, timingSafeEqual } from "node:crypto"

/**
 * The longest key accepted: anything longer is refused before it is digested.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxLength = 256

/**
 * The shortest configured key accepted (`OUROBOROS_API_KEYS`, the config file, the admin key).
 *
 * @since 0.1.0
 * @category constants
 */
export const minConfiguredLength = 16

const generatedPattern = /^ouro_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/

/**
 * Makes a new key: `ouro_<12 hex>_<43 base64url>`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const generate = (): { readonly prefix: string; readonly key: Redacted.Redacted<string> } => {
  const prefix = randomBytes(6).toString("hex")
  return { prefix, key: Redacted.make(`ouro_${prefix}_${randomBytes(32).toString("base64url")}`) }
}

/**
 * Digests keys: SHA-256, or HMAC-SHA-256 under a pepper.
 *
 * @since 0.1.0
 * @category models
 */
export interface Hasher {
  /** The digest of a key, 32 bytes. */
  readonly digest: (key: string) => Buffer
}

/**
 * A hasher: HMAC-SHA-256 with `pepper`, or SHA-256 without one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const hasher = (pepper?: Redacted.Redacted<string> | undefined): Hasher => {
  // The one-shot `crypto.hash` costs a fraction of a `createHash` object per key.
  if (pepper === undefined) return { digest: (key) => hash("sha256", key, "buffer") }
  const secret = Redacted.value(pepper)
  return { digest: (key) => createHmac("sha256", secret).update(key).digest() }
}

/**
 * The lookup prefix of a key: the prefix of a generated key, or for any other key `h` and 11 hex digits of its digest.
 * Prefixes of the two kinds never collide (a generated prefix has 12 hex digits and no `h`).
 *
 * @since 0.1.0
 * @category utils
 */
export const lookupPrefix = (key: string, digest: Buffer): string => {
  const match = generatedPattern.exec(key)
  return match !== null ? match[1]! : `h${digest.toString("hex", 0, 6).slice(0, 11)}`
}

/**
 * Whether `key` has the shape of a generated key.
 *
 * @since 0.1.0
 * @category utils
 */
export const isGenerated = (key: string): boolean => generatedPattern.test(key)

/**
 * Compares two digests in constant time (for digests of equal length; any other pair is unequal).
 *
 * @since 0.1.0
 * @category utils
 */
export const digestsEqual = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && timingSafeEqual(a, b)

/**
 * Digest bytes from their stored form (lower-case hex).
 *
 * @since 0.1.0
 * @category utils
 */
export const fromHex = (hex: string): Buffer => Buffer.from(hex, "hex")
