/**
 * The Merkle tree of RFC 9162 (Certificate Transparency 2.0, §2.1), over SHA-256: tree hashes, inclusion proofs and
 * consistency proofs, generation and verification.
 *
 * - leaf hash: `SHA-256(0x00 ‖ entry)`; node hash: `SHA-256(0x01 ‖ left ‖ right)`; the empty tree: `SHA-256("")`.
 * - `MTH(D[n])` splits at the largest power of two below `n`, so a tree of any size is one left-full binary tree and
 *   appending never changes the hash of a complete subtree.
 *
 * A proof is a list of subtree hashes `MTH(D[a:b])`, and which ranges `[a, b)` it needs depends only on the index and
 * the sizes: {@link inclusionRanges} and {@link consistencyRanges} give them, so a store that keeps subtree hashes
 * (or the leaves) answers a proof by looking those up. {@link inclusionProof} and {@link consistencyProof} do it over a
 * plain array of leaf hashes.
 *
 * @since 0.1.0
 */
import { createHash, hash } from "node:crypto"

/**
 * The size of every hash: SHA-256.
 *
 * @since 0.1.0
 * @category constants
 */
export const hashSize = 32

const leafPrefix = new Uint8Array([0x00])

/**
 * `SHA-256(0x00 ‖ entry)`: the hash of one entry as a leaf.
 *
 * @since 0.1.0
 * @category hashing
 */
export const leafHash = (entry: Uint8Array): Uint8Array =>
  createHash("sha256").update(leafPrefix).update(entry).digest()

/**
 * The leaf hash of a text entry, hashed as its UTF-8 bytes: `SHA-256(0x00 ‖ UTF-8(entry))`.
 *
 * @since 0.1.0
 * @category hashing
 */
export const leafHashOfText = (entry: string): Uint8Array => {
  // Encoded into a buffer kept for the purpose: no allocation for the input, which is most of the cost of hashing a
  // short text. Texts that may not fit get a buffer of their own.
  const input = entry.length * 3 + 1 <= scratch.length ? scratch : new Uint8Array(entry.length * 3 + 1)
  input[0] = 0x00
  const { written } = textEncoder.encodeInto(entry, input.subarray(1))
  return hash("sha256", input.subarray(0, written + 1), "buffer")
}

const scratch = new Uint8Array(1 << 16)
const textEncoder = new TextEncoder()

/**
 * `SHA-256(0x01 ‖ left ‖ right)`: the hash of an interior node.
 *
 * @since 0.1.0
 * @category hashing
 */
export const nodeHash = (left: Uint8Array, right: Uint8Array): Uint8Array => {
  // One-shot hashing of one buffer: about half the cost of an incremental hash for 65 bytes.
  const input = Buffer.allocUnsafe(1 + left.length + right.length)
  input[0] = 0x01
  input.set(left, 1)
  input.set(right, 1 + left.length)
  return hash("sha256", input, "buffer")
}

/**
 * The hash of the empty tree, `SHA-256("")`.
 *
 * @since 0.1.0
 * @category hashing
 */
export const emptyRoot: Uint8Array = createHash("sha256").digest()

/**
 * The largest power of two strictly below `n` (`n` > 1): where RFC 9162 splits a tree of `n` leaves.
 *
 * @since 0.1.0
 * @category utils
 */
export const splitPoint = (n: number): number => {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

/**
 * The Merkle tree hash `MTH(D[n])` of RFC 9162 §2.1.1 over the given leaf hashes (each `leafHash(entry)`).
 *
 * @since 0.1.0
 * @category hashing
 */
export const rootFromLeafHashes = (hashes: ReadonlyArray<Uint8Array>): Uint8Array => {
  if (hashes.length === 0) return emptyRoot
  // Bottom-up with a stack of complete subtrees: each leaf is pushed, equal-height neighbours merged, and what is left
  // (the complete subtrees of the binary decomposition of n, largest first) folded from the right, which is exactly
  // the split at the largest power of two.
  const stack: Array<{ hash: Uint8Array; height: number }> = []
  for (const hash of hashes) {
    let node = { hash, height: 0 }
    while (stack.length > 0 && stack[stack.length - 1]!.height === node.height) {
      const left = stack.pop()!
      node = { hash: nodeHash(left.hash, node.hash), height: node.height + 1 }
    }
    stack.push(node)
  }
  let root = stack[stack.length - 1]!.hash
  for (let i = stack.length - 2; i >= 0; i--) root = nodeHash(stack[i]!.hash, root)
  return root
}

/**
 * The Merkle tree hash `MTH(D[n])` of RFC 9162 §2.1.1 of a list of entries (the leaves' data, each hashed as
 * `SHA-256(0x00 ‖ entry)`). The empty list hashes to `SHA-256("")`.
 *
 * @since 0.1.0
 * @category hashing
 * @example
 * import { merkleTreeHash } from "@ouroboros/audit"
 * const root = merkleTreeHash([new TextEncoder().encode("first"), new TextEncoder().encode("second")])
 */
export const merkleTreeHash = (leaves: ReadonlyArray<Uint8Array>): Uint8Array =>
  rootFromLeafHashes(leaves.map(leafHash))

/**
 * A range `[start, end)` of leaves whose subtree hash `MTH(D[start:end])` a proof carries.
 *
 * @since 0.1.0
 * @category models
 */
export type Range = readonly [start: number, end: number]

const checkSize = (n: number, name: string) => {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${name} must be a non-negative integer, got ${n}`)
}

/**
 * The subtrees of the inclusion proof of leaf `index` in a tree of `size` leaves: `PATH(m, D[n])` of RFC 9162
 * §2.1.3.1, from the leaf's sibling up to the root's child.
 *
 * @since 0.1.0
 * @category proofs
 */
export const inclusionRanges = (index: number, size: number): Array<Range> => {
  checkSize(index, "index")
  checkSize(size, "size")
  if (index >= size) throw new RangeError(`leaf ${index} is not in a tree of ${size}`)
  // PATH(m, D[lo:hi]) = PATH(m, left) ++ [MTH(right)] or PATH(m - k, right) ++ [MTH(left)]: built top-down, emitted
  // bottom-up.
  const out: Array<Range> = []
  let lo = 0
  let hi = size
  let m = index
  while (hi - lo > 1) {
    const k = splitPoint(hi - lo)
    if (m < k) {
      out.push([lo + k, hi])
      hi = lo + k
    } else {
      out.push([lo, lo + k])
      lo = lo + k
      m -= k
    }
  }
  return out.reverse()
}

/**
 * The subtrees of the consistency proof between a tree of `first` leaves and one of `second` leaves:
 * `PROOF(m, D[n])` of RFC 9162 §2.1.4.1. Empty when `first` is 0 or equal to `second`.
 *
 * @since 0.1.0
 * @category proofs
 */
export const consistencyRanges = (first: number, second: number): Array<Range> => {
  checkSize(first, "first")
  checkSize(second, "second")
  if (first > second) throw new RangeError(`a tree of ${first} cannot be a prefix of one of ${second}`)
  if (first === 0 || first === second) return []
  // SUBPROOF(m, D[lo:hi], b): built top-down, emitted bottom-up.
  const out: Array<Range> = []
  let lo = 0
  let hi = second
  let m = first
  let complete = true
  for (;;) {
    const n = hi - lo
    if (m === n) {
      if (!complete) out.push([lo, hi])
      break
    }
    const k = splitPoint(n)
    if (m <= k) {
      out.push([lo + k, hi])
      hi = lo + k
    } else {
      out.push([lo, lo + k])
      lo = lo + k
      m -= k
      complete = false
    }
  }
  return out.reverse()
}

/**
 * The inclusion proof of leaf `index` over a list of leaf hashes (the whole tree is `hashes`).
 *
 * @since 0.1.0
 * @category proofs
 */
export const inclusionProof = (index: number, hashes: ReadonlyArray<Uint8Array>): Array<Uint8Array> =>
  inclusionRanges(index, hashes.length).map(([a, b]) => rootFromLeafHashes(hashes.slice(a, b)))

/**
 * The consistency proof between the first `first` leaves and all of `hashes`.
 *
 * @since 0.1.0
 * @category proofs
 */
export const consistencyProof = (first: number, hashes: ReadonlyArray<Uint8Array>): Array<Uint8Array> =>
  consistencyRanges(first, hashes.length).map(([a, b]) => rootFromLeafHashes(hashes.slice(a, b)))

const equalBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

const isHash = (h: Uint8Array) => h.length === hashSize

/**
 * The root that an inclusion proof leads to (RFC 9162 §2.1.3.2), or `undefined` when the proof cannot be one for
 * this index and size (wrong length, index out of range, malformed hashes).
 *
 * @since 0.1.0
 * @category verification
 */
export const rootFromInclusionProof = (
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: ReadonlyArray<Uint8Array>
): Uint8Array | undefined => {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return undefined
  if (!isHash(leaf) || !proof.every(isHash)) return undefined
  // fn and sn can exceed 2^32: halve with Math.floor, not `>>`.
  let fn = index
  let sn = size - 1
  let r = leaf
  for (const p of proof) {
    if (sn === 0) return undefined
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r)
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2)
          sn = Math.floor(sn / 2)
        }
      }
    } else {
      r = nodeHash(r, p)
    }
    fn = Math.floor(fn / 2)
    sn = Math.floor(sn / 2)
  }
  return sn === 0 ? r : undefined
}

/**
 * Verifies an inclusion proof (RFC 9162 §2.1.3.2): the leaf hash is at `index` in the tree of `size` whose root is
 * `root`.
 *
 * @since 0.1.0
 * @category verification
 */
export const verifyInclusion = (
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: ReadonlyArray<Uint8Array>,
  root: Uint8Array
): boolean => {
  const computed = rootFromInclusionProof(index, size, leaf, proof)
  return computed !== undefined && equalBytes(computed, root)
}

/**
 * Verifies a consistency proof (RFC 9162 §2.1.4.2): the tree of `first` leaves with root `firstRoot` is a prefix of
 * the tree of `second` leaves with root `secondRoot`. Equal sizes need equal roots and an empty proof; a first size
 * of 0 is consistent with anything, with an empty proof.
 *
 * @since 0.1.0
 * @category verification
 */
export const verifyConsistency = (
  first: number,
  second: number,
  proof: ReadonlyArray<Uint8Array>,
  firstRoot: Uint8Array,
  secondRoot: Uint8Array
): boolean => {
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(second) || first < 0 || first > second) return false
  if (!proof.every(isHash)) return false
  if (first === second) return proof.length === 0 && equalBytes(firstRoot, secondRoot)
  if (first === 0) return proof.length === 0
  if (proof.length === 0 || !isHash(firstRoot) || !isHash(secondRoot)) return false
  // A first tree that is a complete subtree is itself a node of the second: its root starts the path.
  const path = isPowerOfTwo(first) ? [firstRoot, ...proof] : proof
  let fn = first - 1
  let sn = second - 1
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2)
    sn = Math.floor(sn / 2)
  }
  let fr = path[0]!
  let sr = path[0]!
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!
    if (sn === 0) return false
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr)
      sr = nodeHash(c, sr)
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2)
          sn = Math.floor(sn / 2)
        }
      }
    } else {
      sr = nodeHash(sr, c)
    }
    fn = Math.floor(fn / 2)
    sn = Math.floor(sn / 2)
  }
  return sn === 0 && equalBytes(fr, firstRoot) && equalBytes(sr, secondRoot)
}

const isPowerOfTwo = (n: number): boolean => {
  if (n < 1) return false
  while (n % 2 === 0) n /= 2
  return n === 1
}
