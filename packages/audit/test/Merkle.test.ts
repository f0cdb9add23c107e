/**
 * Known-answer tests of the RFC 9162 tree hash and proofs, against the vectors of Certificate Transparency's
 * reference tests (transparency-dev/merkle `testonly/constants.go` and `proof/verify_test.go`, the same ones
 * Trillian and Go's CT libraries use), and property tests against a naive implementation written here from the RFC.
 */
import { assert, describe, it } from "@effect/vitest"
import { Merkle, merkleTreeHash } from "@ouroboros/audit"
import fc from "fast-check"
import { createHash } from "node:crypto"
import { Tree } from "../src/internal/tree.js"

const hd = (hex: string) => new Uint8Array(Buffer.from(hex, "hex"))
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex")

// testonly.LeafInputs()
const leaves = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"].map(
  hd
)

// testonly.RootHashes(): the root of the first n leaves, n = 0..8
const roots = [
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
  "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
  "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
  "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
  "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
  "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
]

// proof/verify_test.go inclusionProofs: {leaf (1-based), size, proof}
const inclusionVectors: ReadonlyArray<readonly [number, number, ReadonlyArray<string>]> = [
  [1, 1, []],
  [1, 8, [
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
  ]],
  [6, 8, [
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
  ]],
  [3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]],
  [2, 5, [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
  ]]
]

// proof/verify_test.go consistencyProofs: {size1, size2, proof}
const consistencyVectors: ReadonlyArray<readonly [number, number, ReadonlyArray<string>]> = [
  [1, 1, []],
  [1, 8, [
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
  ]],
  [6, 8, [
    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
  ]],
  [2, 5, [
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
  ]],
  [6, 7, [
    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
  ]]
]

describe("known answers", () => {
  it("merkleTreeHash gives the reference roots for 0 to 8 leaves", () => {
    for (let n = 0; n <= 8; n++) assert.strictEqual(hex(merkleTreeHash(leaves.slice(0, n))), roots[n], `size ${n}`)
  })
  it("inclusion proofs", () => {
    const hashes = leaves.map(Merkle.leafHash)
    for (const [leaf, size, proof] of inclusionVectors) {
      assert.deepStrictEqual(Merkle.inclusionProof(leaf - 1, hashes.slice(0, size)).map(hex), proof)
    }
  })
  it("consistency proofs", () => {
    const hashes = leaves.map(Merkle.leafHash)
    for (const [m, n, proof] of consistencyVectors) {
      assert.deepStrictEqual(Merkle.consistencyProof(m, hashes.slice(0, n)).map(hex), proof)
    }
  })
})

// -----------------------------------------------------------------------------
// a naive implementation, written from the definitions of RFC 9162 §2.1 (recursion over slices, no shortcuts)
// -----------------------------------------------------------------------------

const sha256 = (...parts: ReadonlyArray<Uint8Array>) => {
  const h = createHash("sha256")
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}
const largestPowerOfTwoBelow = (n: number) => 2 ** Math.floor(Math.log2(n - 1))

/** MTH(D[n]) of §2.1.1. */
const mth = (d: ReadonlyArray<Uint8Array>): Uint8Array => {
  if (d.length === 0) return sha256()
  if (d.length === 1) return sha256(new Uint8Array([0]), d[0]!)
  const k = largestPowerOfTwoBelow(d.length)
  return sha256(new Uint8Array([1]), mth(d.slice(0, k)), mth(d.slice(k)))
}

/** PATH(m, D[n]) of §2.1.3.1. */
const path = (m: number, d: ReadonlyArray<Uint8Array>): Array<Uint8Array> => {
  if (d.length === 1) return []
  const k = largestPowerOfTwoBelow(d.length)
  return m < k ? [...path(m, d.slice(0, k)), mth(d.slice(k))] : [...path(m - k, d.slice(k)), mth(d.slice(0, k))]
}

/** SUBPROOF(m, D[n], b) of §2.1.4.1. */
const subproof = (m: number, d: ReadonlyArray<Uint8Array>, b: boolean): Array<Uint8Array> => {
  if (m === d.length) return b ? [] : [mth(d)]
  const k = largestPowerOfTwoBelow(d.length)
  return m <= k
    ? [...subproof(m, d.slice(0, k), b), mth(d.slice(k))]
    : [...subproof(m - k, d.slice(k), false), mth(d.slice(0, k))]
}

const entries = (n: number, seed: number) =>
  Array.from({ length: n }, (_, i) => new TextEncoder().encode(`entry ${seed}:${i}`))

const flipBit = (bytes: Uint8Array, bit: number) => {
  const copy = new Uint8Array(bytes)
  copy[Math.floor(bit / 8) % copy.length]! ^= 1 << (bit % 8)
  return copy
}

describe("against the naive implementation", () => {
  it("tree hashes of every size up to 70", () => {
    for (let n = 0; n <= 70; n++) {
      const d = entries(n, 1)
      assert.strictEqual(hex(merkleTreeHash(d)), hex(mth(d)), `size ${n}`)
    }
  })

  it("inclusion proofs: the same hashes as PATH, and they verify (fast-check)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 600 }), fc.nat(), fc.nat(), (n, m0, seed) => {
        const m = m0 % n
        const d = entries(n, seed)
        const proof = Merkle.inclusionProof(m, d.map(Merkle.leafHash))
        assert.deepStrictEqual(proof.map(hex), path(m, d).map(hex))
        assert.isTrue(Merkle.verifyInclusion(m, n, Merkle.leafHash(d[m]!), proof, mth(d)))
      }),
      { numRuns: 200 }
    )
  })

  it("consistency proofs: the same hashes as PROOF, and they verify (fast-check)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 600 }), fc.nat(), fc.nat(), (n, m0, seed) => {
        const m = 1 + (m0 % n)
        const d = entries(n, seed)
        const proof = Merkle.consistencyProof(m, d.map(Merkle.leafHash))
        assert.deepStrictEqual(proof.map(hex), (m === n ? [] : subproof(m, d, true)).map(hex))
        assert.isTrue(Merkle.verifyConsistency(m, n, proof, mth(d.slice(0, m)), mth(d)))
      }),
      { numRuns: 200 }
    )
  })

  it("any single-bit change in an inclusion proof, the leaf or the root fails it (fast-check)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 300 }), fc.nat(), fc.nat(), fc.nat(), (n, m0, which, bit) => {
        const m = m0 % n
        const d = entries(n, n)
        const leaf = Merkle.leafHash(d[m]!)
        const proof = Merkle.inclusionProof(m, d.map(Merkle.leafHash))
        const root = mth(d)
        const target = which % (proof.length + 2)
        if (target < proof.length) {
          const changed = proof.map((p, i) => (i === target ? flipBit(p, bit % 256) : p))
          return !Merkle.verifyInclusion(m, n, leaf, changed, root)
        }
        if (target === proof.length) return !Merkle.verifyInclusion(m, n, flipBit(leaf, bit % 256), proof, root)
        return !Merkle.verifyInclusion(m, n, leaf, proof, flipBit(root, bit % 256))
      }),
      { numRuns: 300 }
    )
  })

  it("any single-bit change in a consistency proof or either root fails it (fast-check)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 300 }), fc.nat(), fc.nat(), fc.nat(), (n, m0, which, bit) => {
        const m = 1 + (m0 % (n - 1))
        const d = entries(n, n)
        const proof = Merkle.consistencyProof(m, d.map(Merkle.leafHash))
        const first = mth(d.slice(0, m))
        const second = mth(d)
        const target = which % (proof.length + 2)
        if (target < proof.length) {
          const changed = proof.map((p, i) => (i === target ? flipBit(p, bit % 256) : p))
          return !Merkle.verifyConsistency(m, n, changed, first, second)
        }
        if (target === proof.length) return !Merkle.verifyConsistency(m, n, proof, flipBit(first, bit % 256), second)
        return !Merkle.verifyConsistency(m, n, proof, first, flipBit(second, bit % 256))
      }),
      { numRuns: 300 }
    )
  })

  it("proofs do not verify for another index or size, truncated or padded (the reference's corruptions)", () => {
    const d = entries(13, 7)
    const hashes = d.map(Merkle.leafHash)
    const root = mth(d)
    for (let m = 0; m < 13; m++) {
      const proof = Merkle.inclusionProof(m, hashes)
      const leaf = hashes[m]!
      assert.isTrue(Merkle.verifyInclusion(m, 13, leaf, proof, root))
      if (m > 0) assert.isFalse(Merkle.verifyInclusion(m - 1, 13, leaf, proof, root))
      if (m < 12) assert.isFalse(Merkle.verifyInclusion(m + 1, 13, leaf, proof, root))
      assert.isFalse(Merkle.verifyInclusion(m, 26, leaf, proof, root))
      assert.isFalse(Merkle.verifyInclusion(m, 6, leaf, proof, root))
      assert.isFalse(Merkle.verifyInclusion(m, 13, leaf, [...proof, root], root))
      assert.isFalse(Merkle.verifyInclusion(m, 13, leaf, [root, ...proof], root))
      assert.isFalse(Merkle.verifyInclusion(m, 13, leaf, proof.slice(0, -1), root))
    }
    for (let m = 1; m < 13; m++) {
      const proof = Merkle.consistencyProof(m, hashes)
      const first = mth(d.slice(0, m))
      assert.isTrue(Merkle.verifyConsistency(m, 13, proof, first, root))
      assert.isFalse(Merkle.verifyConsistency(m + 1, 13, proof, first, root))
      assert.isFalse(Merkle.verifyConsistency(m, 13, proof, root, first))
      assert.isFalse(Merkle.verifyConsistency(m, 13, [], first, root))
      assert.isFalse(Merkle.verifyConsistency(m, 13, [...proof, root], first, root))
      assert.isFalse(Merkle.verifyConsistency(m, 13, proof.slice(0, -1), first, root))
    }
    // Edge cases as in the reference verifier's tests.
    assert.isTrue(Merkle.verifyConsistency(0, 5, [], root, root))
    assert.isFalse(Merkle.verifyConsistency(0, 5, [root], root, root))
    assert.isTrue(Merkle.verifyConsistency(5, 5, [], root, root))
    assert.isFalse(Merkle.verifyConsistency(5, 5, [], root, first8(d)))
    assert.isFalse(Merkle.verifyConsistency(6, 5, [], root, root))
    assert.isFalse(Merkle.verifyInclusion(0, 0, hashes[0]!, [], root))
  })
})

const first8 = (d: ReadonlyArray<Uint8Array>) => mth(d.slice(0, 8))

describe("the log's tree (tiles of stored subtrees)", () => {
  it("gives every subtree a proof needs, from stored subtrees and tile leaves (fast-check)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 400 }), fc.integer({ min: 0, max: 4 }), fc.nat(), (n, tileHeight, pick) => {
        const d = entries(n, n)
        const hashes = d.map(Merkle.leafHash)
        const tree = new Tree(tileHeight)
        // Appended in uneven groups, as the writer does.
        for (let i = 0; i < n; i += 1 + (i % 7)) tree.append(hashes.slice(i, i + 1 + (i % 7)))
        assert.strictEqual(tree.size, n)
        assert.strictEqual(hex(tree.root()), hex(mth(d)))
        const tile = (t: number) => hashes.slice(t * tree.tileSize, (t + 1) * tree.tileSize)
        const size = 1 + (pick % n)
        const m = pick % size
        const ranges = [...Merkle.inclusionRanges(m, size), ...Merkle.consistencyRanges(1 + (pick % size), size)]
        for (const [a, b] of ranges) {
          assert.strictEqual(hex(tree.hashRange(a, b, tile)), hex(mth(d.slice(a, b))), `[${a}, ${b})`)
        }
        assert.strictEqual(hex(tree.hashRange(0, size, tile)), hex(mth(d.slice(0, size))))
        assert.strictEqual(hex(tree.rootWith(hashes.slice(0, 0))), hex(mth(d)))
      }),
      { numRuns: 200 }
    )
  })

  it("rootWith gives the root after an append without appending", () => {
    const d = entries(37, 3)
    const hashes = d.map(Merkle.leafHash)
    const tree = new Tree(2)
    tree.append(hashes.slice(0, 20))
    assert.strictEqual(hex(tree.rootWith(hashes.slice(20))), hex(mth(d)))
    assert.strictEqual(tree.size, 20)
    assert.strictEqual(hex(tree.root()), hex(mth(d.slice(0, 20))))
  })
})
