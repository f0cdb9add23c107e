/**
 * The log's Merkle tree in memory, as the writer and the proofs need it.
 *
 * It keeps the frontier (the complete subtrees of the binary decomposition of the size, from which the root of the
 * current size or of the size after an append is folded) and every complete subtree at least a tile high (`2^8`
 * leaves by default). Subtrees below a tile are recomputed from the leaf hashes of that tile, which the store gives:
 * a proof needs at most a few tiles, and memory stays at about 64 bytes per 256 entries instead of 64 bytes per entry.
 */
import * as Merkle from "../Merkle.js"

/**
 * A growable list of 32-byte hashes in one buffer.
 *
 * @internal
 */
export class HashList {
  private buffer = new Uint8Array(Merkle.hashSize * 64)
  length = 0

  push(hash: Uint8Array): void {
    const offset = this.length * Merkle.hashSize
    if (offset + Merkle.hashSize > this.buffer.length) {
      const grown = new Uint8Array(this.buffer.length * 2)
      grown.set(this.buffer)
      this.buffer = grown
    }
    this.buffer.set(hash, offset)
    this.length++
  }

  /** A copy: the buffer moves when it grows. */
  get(index: number): Uint8Array {
    if (index < 0 || index >= this.length) throw new RangeError(`no hash at ${index} of ${this.length}`)
    return this.buffer.slice(index * Merkle.hashSize, (index + 1) * Merkle.hashSize)
  }
}

interface Node {
  readonly hash: Uint8Array
  readonly height: number
}

const pushLeaf = (frontier: Array<Node>, hash: Uint8Array, onNode?: (node: Node, index: number) => void, size = 0) => {
  let node: Node = { hash, height: 0 }
  // `size` is the number of leaves before this one: the index of a completed subtree of height h is size >> h.
  while (frontier.length > 0 && frontier[frontier.length - 1]!.height === node.height) {
    const left = frontier.pop()!
    node = { hash: Merkle.nodeHash(left.hash, node.hash), height: node.height + 1 }
    onNode?.(node, Math.floor(size / 2 ** node.height))
  }
  frontier.push(node)
}

const fold = (frontier: ReadonlyArray<Node>): Uint8Array => {
  if (frontier.length === 0) return Merkle.emptyRoot
  let root = frontier[frontier.length - 1]!.hash
  for (let i = frontier.length - 2; i >= 0; i--) root = Merkle.nodeHash(frontier[i]!.hash, root)
  return root
}

/** The complete subtrees `[start, start + 2^height)` that make up `[a, b)`, left to right. */
const pieces = (a: number, b: number): Array<{ start: number; height: number }> => {
  const out: Array<{ start: number; height: number }> = []
  let pos = a
  while (pos < b) {
    let height = 0
    while (pos % 2 ** (height + 1) === 0 && pos + 2 ** (height + 1) <= b) height++
    out.push({ start: pos, height })
    pos += 2 ** height
  }
  return out
}

/** @internal */
export class Tree {
  readonly tileHeight: number
  readonly tileSize: number
  private frontier: Array<Node> = []
  private readonly levels: Array<HashList> = []
  size = 0

  constructor(tileHeight = 8) {
    this.tileHeight = tileHeight
    this.tileSize = 2 ** tileHeight
  }

  /** Appends leaf hashes (committed ones: the tree only grows). */
  append(hashes: ReadonlyArray<Uint8Array>): void {
    const store = (node: Node, index: number) => {
      if (node.height < this.tileHeight) return
      const level = node.height - this.tileHeight
      while (this.levels.length <= level) this.levels.push(new HashList())
      const list = this.levels[level]!
      if (list.length !== index) throw new Error(`tree: subtree ${index} at height ${node.height} out of order`)
      list.push(node.hash)
    }
    for (const hash of hashes) {
      if (this.tileHeight === 0) store({ hash, height: 0 }, this.size)
      pushLeaf(this.frontier, hash, store, this.size)
      this.size++
    }
  }

  /** The root of the current tree. */
  root(): Uint8Array {
    return fold(this.frontier)
  }

  /** The root the tree would have after appending `hashes`, without appending them. */
  rootWith(hashes: ReadonlyArray<Uint8Array>): Uint8Array {
    const frontier = this.frontier.slice()
    for (const hash of hashes) pushLeaf(frontier, hash)
    return fold(frontier)
  }

  /** The tiles whose leaf hashes {@link hashRange} needs for these ranges (all below the current size). */
  tilesFor(ranges: ReadonlyArray<Merkle.Range>): Array<number> {
    const tiles = new Set<number>()
    for (const [a, b] of ranges) {
      for (const piece of pieces(a, b)) {
        if (piece.height < this.tileHeight) tiles.add(Math.floor(piece.start / this.tileSize))
      }
    }
    return Array.from(tiles).sort((x, y) => x - y)
  }

  /**
   * `MTH(D[a:b])` for `b` at most the current size, from the stored subtrees and the leaf hashes of the tiles that
   * {@link tilesFor} named (`tileLeaves(t)` holds the leaves of tile `t` from its start, at least up to `b`).
   */
  hashRange(a: number, b: number, tileLeaves: (tile: number) => ReadonlyArray<Uint8Array>): Uint8Array {
    if (a < 0 || b > this.size || a >= b) throw new RangeError(`no subtree [${a}, ${b}) in a tree of ${this.size}`)
    const hashes = pieces(a, b).map(({ height, start }) => {
      if (height >= this.tileHeight) return this.levels[height - this.tileHeight]!.get(start / 2 ** height)
      const tile = Math.floor(start / this.tileSize)
      const leaves = tileLeaves(tile)
      const from = start - tile * this.tileSize
      const slice = leaves.slice(from, from + 2 ** height)
      if (slice.length !== 2 ** height) throw new Error(`tree: tile ${tile} lacks leaves for [${a}, ${b})`)
      return Merkle.rootFromLeafHashes(slice)
    })
    let root = hashes[hashes.length - 1]!
    for (let i = hashes.length - 2; i >= 0; i--) root = Merkle.nodeHash(hashes[i]!, root)
    return root
  }
}

/**
 * Folds leaf hashes into a root incrementally, reporting the root at the sizes asked for (the verifier's tree).
 *
 * @internal
 */
export class Frontier {
  private readonly nodes: Array<Node> = []
  size = 0

  push(hash: Uint8Array): void {
    pushLeaf(this.nodes, hash)
    this.size++
  }

  root(): Uint8Array {
    return fold(this.nodes)
  }
}
