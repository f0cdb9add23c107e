/**
 * The Merkle tree of RFC 9162 (§2.1) over SHA-256, with WebCrypto: node hashes, the root of a list of leaf hashes,
 * and inclusion proof verification (§2.1.3.2). Hashes are bytes; the audit API sends them in base64.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 * @category models
 */
export type Hash = Uint8Array

/**
 * Bytes of standard base64 (with or without padding); `undefined` when it is not base64.
 *
 * @since 0.1.0
 * @category encoding
 */
export const fromBase64 = (text: string): Uint8Array | undefined => {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined
  try {
    const binary = atob(text)
    const out = new Uint8Array(binary.length)
    for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i)
    return out
  } catch {
    return undefined
  }
}

/**
 * Standard base64 with padding.
 *
 * @since 0.1.0
 * @category encoding
 */
export const toBase64 = (bytes: Uint8Array): string => {
  let binary = ""
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary)
}

/**
 * Lower-case hex.
 *
 * @since 0.1.0
 * @category encoding
 */
export const toHex = (bytes: Uint8Array): string =>
  [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("")

/**
 * Whether two byte strings are equal.
 *
 * @since 0.1.0
 * @category utils
 */
export const equal = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i])

/**
 * SHA-256 with WebCrypto.
 *
 * @since 0.1.0
 * @category hashing
 */
export const sha256 = async (bytes: Uint8Array): Promise<Hash> =>
  new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>))

/**
 * `SHA-256(0x00 ‖ entry)`.
 *
 * @since 0.1.0
 * @category hashing
 */
export const leafHash = (entry: Uint8Array): Promise<Hash> => {
  const input = new Uint8Array(entry.length + 1)
  input.set(entry, 1)
  return sha256(input)
}

/**
 * `SHA-256(0x01 ‖ left ‖ right)`.
 *
 * @since 0.1.0
 * @category hashing
 */
export const nodeHash = (left: Hash, right: Hash): Promise<Hash> => {
  const input = new Uint8Array(1 + left.length + right.length)
  input[0] = 0x01
  input.set(left, 1)
  input.set(right, 1 + left.length)
  return sha256(input)
}

const batchSize = 512

/**
 * The root of the tree over `leaves` (leaf hashes, in order): RFC 9162's `MTH`, computed level by level (an unpaired
 * last node moves up unchanged, which gives the same root as splitting at the largest power of two). The empty tree's
 * root is `SHA-256("")`. `onProgress` is told how many node hashes of the `leaves.length - 1` are done.
 *
 * @since 0.1.0
 * @category hashing
 */
export const root = async (
  leaves: ReadonlyArray<Hash>,
  onProgress?: (done: number, total: number) => void
): Promise<Hash> => {
  if (leaves.length === 0) return sha256(new Uint8Array(0))
  if (leaves.length === 1) {
    onProgress?.(0, 0)
    return leaves[0]!
  }
  const total = leaves.length - 1
  let done = 0
  let level: Array<Hash> = [...leaves]
  while (level.length > 1) {
    const pairs = Math.floor(level.length / 2)
    const next: Array<Hash> = new Array(pairs)
    // WebCrypto hashes off the main thread: a batch of digests at a time keeps it busy without flooding it.
    for (let start = 0; start < pairs; start += batchSize) {
      const end = Math.min(pairs, start + batchSize)
      const batch: Array<Promise<Hash>> = []
      for (let i = start; i < end; i++) batch.push(nodeHash(level[2 * i]!, level[2 * i + 1]!))
      const hashed = await Promise.all(batch)
      for (let i = start; i < end; i++) next[i] = hashed[i - start]!
      done += end - start
      onProgress?.(done, total)
    }
    if (level.length % 2 === 1) next.push(level[level.length - 1]!)
    level = next
  }
  return level[0]!
}

/**
 * The root an inclusion proof leads to (RFC 9162 §2.1.3.2), or `undefined` when the proof cannot be one for `index` in
 * a tree of `treeSize` (wrong length, index out of range).
 *
 * @since 0.1.0
 * @category proofs
 */
export const rootFromInclusionProof = async (
  index: number,
  treeSize: number,
  leaf: Hash,
  proof: ReadonlyArray<Hash>
): Promise<Hash | undefined> => {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(treeSize) || index < 0 || index >= treeSize) {
    return undefined
  }
  // Plain numbers are exact up to 2^53; halving with Math.floor keeps them exact.
  let fn = index
  let sn = treeSize - 1
  let r = leaf
  for (const p of proof) {
    if (sn === 0) return undefined
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r)
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2)
          sn = Math.floor(sn / 2)
        }
      }
    } else {
      r = await nodeHash(r, p)
    }
    fn = Math.floor(fn / 2)
    sn = Math.floor(sn / 2)
  }
  return sn === 0 ? r : undefined
}

/**
 * Whether `proof` shows that `leaf` is at `index` in the tree of `treeSize` whose root is `expectedRoot`.
 *
 * @since 0.1.0
 * @category proofs
 */
export const verifyInclusion = async (
  index: number,
  treeSize: number,
  leaf: Hash,
  proof: ReadonlyArray<Hash>,
  expectedRoot: Hash
): Promise<boolean> => {
  const computed = await rootFromInclusionProof(index, treeSize, leaf, proof)
  return computed !== undefined && equal(computed, expectedRoot)
}
