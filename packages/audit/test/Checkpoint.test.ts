/**
 * Signed notes and checkpoints against published vectors: the example key and note of Go's
 * `golang.org/x/mod/sumdb/note` (`note_test.go`), and real checkpoints of the Go checksum database (sum.golang.org),
 * whose verifier key is the one compiled into the `go` command.
 */
import { assert, describe, it } from "@effect/vitest"
import { Checkpoint, merkleTreeHash } from "@ouroboros/audit"
import { Result } from "effect"
import { randomBytes } from "node:crypto"

const vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
const skey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
const text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
const signed = text +
  "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"

const sumGolangOrg = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
const sumdbCheckpoints = [
  "go.sum database tree\n31700353\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\n\n— sum.golang.org Az3grnmrIUEDFqHzAElIQCPNoRFRAAdFo47fooyWKMHb89k11GJh5zHIfNCOBmwn/C3YI8oW9/C8DJ87F61QqspBYwM=\n",
  "go.sum database tree\n65209736\n5+uGFjx6xBZG8ip1+wi77v+grwbhhukIrxEUS8PXvRo=\n\n— sum.golang.org Az3grnbssgK7ubgFX36gVETtNv0U23qxyAhAMai2QUfeGa3nB/akvkMdlUErfcZz7l/R3cVtYspg3dxXABkGZZKdsQ8=\n"
]

describe("signed notes", () => {
  it("reproduces the reference note byte for byte and its key hash", () => {
    const signer = Result.getOrThrow(Checkpoint.parseSignerKey(skey))
    assert.strictEqual(signer.verifierKey, vkey)
    assert.strictEqual(Buffer.from(signer.keyHash).toString("hex"), "c74f20a3")
    assert.strictEqual(Checkpoint.signNote(text, [signer]), signed)
    assert.strictEqual(Checkpoint.signerKey("PeterNeumann", Result.getOrThrow(parseSeed(skey))), skey)
  })

  it("opens the reference note, and refuses a changed text or signature", () => {
    const verifier = Result.getOrThrow(Checkpoint.parseVerifierKey(vkey))
    assert.deepStrictEqual(Checkpoint.openNote(signed, verifier), Result.succeed(text))
    const changed = Checkpoint.openNote(signed.replace("cryptography", "cryptographY"), verifier)
    assert.isTrue(Result.isFailure(changed) && changed.failure.reason === "BadSignature")
    const otherKey = Checkpoint.makeSigner("PeterNeumann", new Uint8Array(randomBytes(32)))
    const unknown = Checkpoint.openNote(Checkpoint.signNote(text, [otherKey]), verifier)
    assert.isTrue(Result.isFailure(unknown) && unknown.failure.reason === "UnknownKey")
  })

  it("refuses mangled verifier keys (every substring, every changed byte)", () => {
    assert.isTrue(Result.isSuccess(Checkpoint.parseVerifierKey(vkey)))
    for (let i = 0; i <= vkey.length; i++) {
      for (let j = i + 1; j <= vkey.length; j++) {
        if (i !== 0 || j !== vkey.length) assert.isTrue(Result.isFailure(Checkpoint.parseVerifierKey(vkey.slice(i, j))))
      }
    }
    for (let i = 0; i < vkey.length; i++) {
      const mangled = vkey.slice(0, i) + String.fromCharCode(vkey.charCodeAt(i) + 1) + vkey.slice(i + 1)
      assert.isTrue(Result.isFailure(Checkpoint.parseVerifierKey(mangled)), mangled)
    }
  })

  it("keeps other signatures (a witness's cosignature) and checks only the log's", () => {
    const log = Checkpoint.makeSigner("log.example/audit", new Uint8Array(randomBytes(32)))
    const witness = Checkpoint.makeSigner("witness.example", new Uint8Array(randomBytes(32)))
    const note = Checkpoint.signNote(text, [witness, log])
    assert.deepStrictEqual(Checkpoint.openNote(note, Checkpoint.verifierOf(log)), Result.succeed(text))
    assert.deepStrictEqual(Checkpoint.openNote(note, Checkpoint.verifierOf(witness)), Result.succeed(text))
  })
})

describe("checkpoints", () => {
  it("verifies real checkpoints of sum.golang.org with the Go checksum database's key", () => {
    const verifier = Result.getOrThrow(Checkpoint.parseVerifierKey(sumGolangOrg))
    const sizes = sumdbCheckpoints.map((note) => {
      const checkpoint = Result.getOrThrow(Checkpoint.openCheckpoint(note, verifier, "go.sum database tree"))
      assert.strictEqual(checkpoint.rootHash.length, 32)
      return checkpoint.size
    })
    assert.deepStrictEqual(sizes, [31700353, 65209736])
    const tampered = sumdbCheckpoints[0]!.replace("31700353", "31700354")
    assert.isTrue(Result.isFailure(Checkpoint.openCheckpoint(tampered, verifier)))
  })

  it("writes the C2SP format: origin, decimal size, base64 root, blank line, signature line", () => {
    const signer = Checkpoint.makeSigner("example.com/log", new Uint8Array(32).fill(7))
    const root = merkleTreeHash([new Uint8Array([1])])
    const note = Checkpoint.signCheckpoint({ origin: "example.com/log", size: 1, rootHash: root }, signer)
    const lines = note.split("\n")
    assert.strictEqual(lines[0], "example.com/log")
    assert.strictEqual(lines[1], "1")
    assert.strictEqual(lines[2], Buffer.from(root).toString("base64"))
    assert.strictEqual(lines[3], "")
    assert.match(lines[4]!, /^— example\.com\/log [A-Za-z0-9+/]+=*$/)
    assert.strictEqual(Buffer.from(lines[4]!.split(" ")[2]!, "base64").length, 4 + 64)
    assert.strictEqual(lines[5], "")
    const opened = Result.getOrThrow(Checkpoint.openCheckpoint(note, Checkpoint.verifierOf(signer), "example.com/log"))
    assert.strictEqual(opened.size, 1)
    assert.isTrue(Result.isFailure(Checkpoint.openCheckpoint(note, Checkpoint.verifierOf(signer), "other.example/log")))
  })

  it("refuses malformed checkpoint texts", () => {
    const root = Buffer.alloc(32).toString("base64")
    for (
      const bad of [
        "",
        "a\n1\n",
        `a\n01\n${root}\n`,
        `a\n-1\n${root}\n`,
        `a\n1\nAAAA\n`,
        `\n1\n${root}\n`,
        `a\n1\n${root}`
      ]
    ) {
      assert.isTrue(Result.isFailure(Checkpoint.parseCheckpoint(bad)), JSON.stringify(bad))
    }
    const withExtension = Result.getOrThrow(Checkpoint.parseCheckpoint(`a\n1\n${root}\next\n`))
    assert.deepStrictEqual(withExtension.extensions, ["ext"])
  })
})

const parseSeed = (key: string) =>
  Result.succeed(new Uint8Array(Buffer.from(key.split("+").slice(4).join("+"), "base64").subarray(1)))
