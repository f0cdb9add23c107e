import { assert, describe, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { untar } from "../src/pglite-worker.mjs"

const tmp = () => Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-template-"))

/** A ustar archive of `entries` (a directory when the content is undefined), in order. */
const tar = (entries: ReadonlyArray<readonly [name: string, content?: string]>): Uint8Array => {
  const blocks: Array<Buffer> = []
  for (const [name, content] of entries) {
    const header = Buffer.alloc(512)
    header.write(name, 0, 100, "utf8")
    header.write("0000644\0", 100)
    const size = content === undefined ? 0 : Buffer.byteLength(content)
    header.write(size.toString(8).padStart(11, "0") + "\0", 124)
    header.write(content === undefined ? "5" : "0", 156)
    header.write("ustar\0", 257)
    blocks.push(header)
    if (content !== undefined) {
      const body = Buffer.alloc(Math.ceil(size / 512) * 512)
      body.write(content)
      blocks.push(body)
    }
  }
  blocks.push(Buffer.alloc(1024))
  return Buffer.concat(blocks)
}

describe("the template of a fresh data directory", () => {
  it("is written out with PG_VERSION, whatever its place in the archive", () => {
    const dir = tmp()
    untar(
      tar([["/PG_VERSION", "18\n"], ["/base"], ["/base/1"], ["/base/1/1259", "pages"], ["/global/pg_control", "c"]]),
      dir
    )
    assert.strictEqual(Fs.readFileSync(Path.join(dir, "PG_VERSION"), "utf8"), "18\n")
    assert.strictEqual(Fs.readFileSync(Path.join(dir, "base/1/1259"), "utf8"), "pages")
    assert.strictEqual(Fs.readFileSync(Path.join(dir, "global/pg_control"), "utf8"), "c")
  })

  it("leaves no PG_VERSION when it cannot be written whole, so the next start writes it again", () => {
    const dir = tmp()
    // A file where a directory must go: writing stops half-way.
    Fs.writeFileSync(Path.join(dir, "base"), "in the way")
    assert.throws(() => untar(tar([["/PG_VERSION", "18\n"], ["/global/pg_control", "c"], ["/base/1/1259", "x"]]), dir))
    assert.isFalse(Fs.existsSync(Path.join(dir, "PG_VERSION")))
  })

  it("refuses an entry outside the directory, and writes nothing", () => {
    const dir = tmp()
    const outside = `escaped-${Path.basename(dir)}`
    assert.throws(
      () => untar(tar([["/PG_VERSION", "18\n"], ["/a", "a"], [`../${outside}`, "x"]]), dir),
      /outside the directory/
    )
    assert.isFalse(Fs.existsSync(Path.join(dir, "..", outside)))
    assert.deepStrictEqual(Fs.readdirSync(dir), [])
  })

  it("refuses an archive without PG_VERSION or with a truncated entry", () => {
    assert.throws(() => untar(tar([["/a", "a"]]), tmp()), /no PG_VERSION/)
    const whole = tar([["/PG_VERSION", "18\n"], ["/big", "x".repeat(2000)]])
    assert.throws(() => untar(whole.subarray(0, 1024 + 512), tmp()), /truncated/)
  })
})
