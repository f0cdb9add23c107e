/**
 * The console's browser-side logic, run in Node (which has the same WebCrypto): the Prometheus text parser and
 * histogram quantiles, the traffic figures of the Overview, RFC 9162 proofs checked against the audit package's own
 * trees, and signed notes checked against published vectors (Go's `sumdb/note` example key and real checkpoints of
 * sum.golang.org).
 */
import { Checkpoint, Merkle as AuditMerkle } from "@ouroboros/audit"
import { randomBytes } from "node:crypto"
import { assert, describe, it } from "vitest"
import * as Format from "../src/web/lib/format.js"
import * as Merkle from "../src/web/lib/merkle.js"
import * as Note from "../src/web/lib/note.js"
import * as Prometheus from "../src/web/lib/prometheus.js"
import * as Traffic from "../src/web/lib/traffic.js"

const exposition = `# HELP http_server_request_duration_seconds Duration of HTTP server requests
# TYPE http_server_request_duration_seconds histogram
http_server_request_duration_seconds_bucket{http_response_status_code="200",le="0.005"} 2
http_server_request_duration_seconds_bucket{http_response_status_code="200",le="0.01"} 6
http_server_request_duration_seconds_bucket{http_response_status_code="200",le="0.1"} 9
http_server_request_duration_seconds_bucket{http_response_status_code="200",le="+Inf"} 10
http_server_request_duration_seconds_sum{http_response_status_code="200"} 0.4
http_server_request_duration_seconds_count{http_response_status_code="200"} 10
http_server_request_duration_seconds_bucket{http_response_status_code="503",le="0.005"} 0
http_server_request_duration_seconds_bucket{http_response_status_code="503",le="0.01"} 0
http_server_request_duration_seconds_bucket{http_response_status_code="503",le="0.1"} 2
http_server_request_duration_seconds_bucket{http_response_status_code="503",le="+Inf"} 2
http_server_request_duration_seconds_sum{http_response_status_code="503"} 0.1
http_server_request_duration_seconds_count{http_response_status_code="503"} 2
# HELP circuit_breaker_state State of a circuit breaker: 0 closed, 1 open
# TYPE circuit_breaker_state gauge
circuit_breaker_state{breaker="ollama"} 3
circuit_breaker_state{breaker="qdrant"} 0
# TYPE feature_flag_evaluations_total counter
feature_flag_evaluations_total{flag="new-search",variant="on",reason="TARGETING_MATCH"} 7
feature_flag_evaluations_total{flag="new-search",variant="off",reason="DEFAULT"} 3
feature_flag_evaluations_total{flag="new-search",variant="on",reason="STATIC"} 1
feature_flag_evaluations_total{flag="other",variant="on",reason="STATIC"} 100
# TYPE http_server_active_requests gauge
http_server_active_requests 4
weird_label{a="quote \\" and \\\\ and \\n newline",b=""} +Inf
not a sample line at all
`

describe("Prometheus text", () => {
  const metrics = Prometheus.parse(exposition)

  it("groups a histogram's series under its family and keeps types and help", () => {
    const family = metrics.get("http_server_request_duration_seconds")
    assert.strictEqual(family?.type, "histogram")
    assert.strictEqual(family?.help, "Duration of HTTP server requests")
    assert.strictEqual(family?.samples.length, 12)
    assert.strictEqual(metrics.get("circuit_breaker_state")?.type, "gauge")
  })

  it("unescapes label values and reads special values", () => {
    const [sample] = Prometheus.samples(metrics, "weird_label")
    assert.deepStrictEqual(sample?.labels, { a: "quote \" and \\ and \n newline", b: "" })
    assert.strictEqual(sample?.value, Number.POSITIVE_INFINITY)
  })

  it("sums by label and filter", () => {
    assert.strictEqual(Prometheus.sum(metrics, "feature_flag_evaluations_total", { flag: "new-search" }), 11)
    assert.deepStrictEqual(
      Object.fromEntries(
        Prometheus.sumBy(metrics, "feature_flag_evaluations_total", "variant", { flag: "new-search" })
      ),
      { on: 8, off: 3 }
    )
    assert.strictEqual(Prometheus.sum(metrics, "no_such_metric"), undefined)
  })

  it("computes quantiles as histogram_quantile does", () => {
    const buckets = Prometheus.buckets(metrics, "http_server_request_duration_seconds")
    assert.deepStrictEqual(buckets.map((b) => b.count), [2, 6, 11, 12])
    // rank 6 of 12 falls at the top of the 0.01 bucket
    assert.closeTo(Prometheus.quantile(0.5, buckets)!, 0.01, 1e-12)
    // rank 3 of 12: one of the four in (0.005, 0.01]
    assert.closeTo(Prometheus.quantile(0.25, buckets)!, 0.005 + 0.005 * (1 / 4), 1e-12)
    // rank 11.88 falls in +Inf: the largest finite bound
    assert.strictEqual(Prometheus.quantile(0.99, buckets), 0.1)
    assert.strictEqual(Prometheus.quantile(0.5, []), undefined)
    assert.strictEqual(Prometheus.quantile(0.5, [{ le: Number.POSITIVE_INFINITY, count: 0 }]), undefined)
  })

  it("treats a counter that went down as reset", () => {
    assert.strictEqual(Prometheus.increase(10, 15), 5)
    assert.strictEqual(Prometheus.increase(10, 3), 3)
    assert.strictEqual(Prometheus.increase(undefined, 3), undefined)
  })
})

describe("traffic", () => {
  const later = exposition
    .replace(`status_code="200",le="0.1"} 9`, `status_code="200",le="0.1"} 19`)
    .replace(`status_code="200",le="+Inf"} 10`, `status_code="200",le="+Inf"} 20`)
    .replace(`_count{http_response_status_code="200"} 10`, `_count{http_response_status_code="200"} 20`)
    .replace(`status_code="503",le="0.1"} 2`, `status_code="503",le="0.1"} 12`)
    .replace(`status_code="503",le="+Inf"} 2`, `status_code="503",le="+Inf"} 12`)
    .replace(`_count{http_response_status_code="503"} 2`, `_count{http_response_status_code="503"} 12`)

  it("reads requests, 5xx, latency and in-flight requests, and derives rates between scrapes", () => {
    const before = Traffic.read(Prometheus.parse(exposition), 0)
    const after = Traffic.read(Prometheus.parse(later), 10_000)
    assert.strictEqual(before.requests, 12)
    assert.strictEqual(before.errors, 2)
    assert.strictEqual(before.inFlight, 4)
    assert.strictEqual(before.latencySeries, "http_server_request_duration_seconds")
    const point = Traffic.between(before, after)
    assert.strictEqual(point.rate, 2) // 20 more requests in 10 s
    assert.strictEqual(point.errorRatio, 0.5) // 10 of them were 503s
    // all 20 new observations are in (0.01, 0.1]: the median interpolates to the middle
    assert.closeTo(point.p50!, 0.055, 1e-12)
    assert.closeTo(point.p99!, 0.01 + 0.09 * 0.99, 1e-12)
  })

  it("says what it could not find", () => {
    const scrape = Traffic.read(Prometheus.parse("# TYPE up gauge\nup 1\n"), 0)
    assert.strictEqual(scrape.requests, undefined)
    assert.strictEqual(scrape.requestSeries, undefined)
    assert.strictEqual(scrape.latencySeries, undefined)
    const point = Traffic.between(scrape, { ...scrape, at: 5000 })
    assert.strictEqual(point.rate, undefined)
    assert.strictEqual(point.p99, undefined)
  })

  it("falls back to a request counter with a status label", () => {
    const text =
      `# TYPE http_requests_total counter\nhttp_requests_total{code="200"} 8\nhttp_requests_total{code="500"} 2\n`
    const scrape = Traffic.read(Prometheus.parse(text), 0)
    assert.strictEqual(scrape.requests, 10)
    assert.strictEqual(scrape.errors, 2)
    assert.strictEqual(scrape.latencySeries, undefined)
  })
})

const leavesOf = (n: number) =>
  Array.from({ length: n }, (_, i) => AuditMerkle.leafHash(new TextEncoder().encode(`entry ${i}`)))

describe("RFC 9162 Merkle trees", () => {
  it("computes the same roots as the audit log, for every size up to 70", async () => {
    for (let n = 0; n <= 70; n++) {
      const leaves = leavesOf(n)
      const ours = await Merkle.root(leaves)
      assert.strictEqual(Merkle.toHex(ours), Merkle.toHex(AuditMerkle.rootFromLeafHashes(leaves)), `size ${n}`)
    }
  })

  it("hashes leaves and nodes with the RFC's prefixes", async () => {
    const entry = new TextEncoder().encode("hello")
    assert.strictEqual(Merkle.toHex(await Merkle.leafHash(entry)), Merkle.toHex(AuditMerkle.leafHash(entry)))
    const [a, b] = leavesOf(2) as [Uint8Array, Uint8Array]
    assert.strictEqual(Merkle.toHex(await Merkle.nodeHash(a, b)), Merkle.toHex(AuditMerkle.nodeHash(a, b)))
  })

  it("verifies every inclusion proof the audit log makes, and refuses altered ones", async () => {
    for (const size of [1, 2, 3, 5, 8, 13, 31, 64, 65]) {
      const leaves = leavesOf(size)
      const root = AuditMerkle.rootFromLeafHashes(leaves)
      for (let index = 0; index < size; index++) {
        const proof = AuditMerkle.inclusionProof(index, leaves)
        assert.isTrue(await Merkle.verifyInclusion(index, size, leaves[index]!, proof, root), `${index} of ${size}`)
        // Another leaf, position or root must not verify.
        const other = leaves[(index + 1) % size]!
        if (size > 1) assert.isFalse(await Merkle.verifyInclusion(index, size, other, proof, root))
        if (size > 1) {
          assert.isFalse(await Merkle.verifyInclusion((index + 1) % size, size, leaves[index]!, proof, root))
        }
        if (proof.length > 0) {
          const tampered = proof.map((h, i) => i === 0 ? new Uint8Array(h.map((x) => x ^ 1)) : h)
          assert.isFalse(await Merkle.verifyInclusion(index, size, leaves[index]!, tampered, root))
          assert.isFalse(await Merkle.verifyInclusion(index, size, leaves[index]!, proof.slice(1), root))
        }
      }
      assert.isFalse(await Merkle.verifyInclusion(size, size, leaves[0]!, [], root), "index out of range")
    }
  })

  it("reports progress while hashing a large tree", async () => {
    const leaves = leavesOf(3000)
    const seen: Array<number> = []
    const root = await Merkle.root(leaves, (done) => seen.push(done))
    assert.strictEqual(Merkle.toHex(root), Merkle.toHex(AuditMerkle.rootFromLeafHashes(leaves)))
    assert.strictEqual(seen.at(-1), 2999)
    assert.isTrue(seen.every((n, i) => i === 0 || n >= seen[i - 1]!))
  })
})

// golang.org/x/mod/sumdb/note's example key and note, and two checkpoints of the Go checksum database.
const vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
const text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
const signed = text +
  "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
const sumGolangOrg = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
const sumdbCheckpoint =
  "go.sum database tree\n31700353\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\n\n— sum.golang.org Az3grnmrIUEDFqHzAElIQCPNoRFRAAdFo47fooyWKMHb89k11GJh5zHIfNCOBmwn/C3YI8oW9/C8DJ87F61QqspBYwM=\n"

const key = async (text: string) => {
  const parsed = await Note.parseVerifierKey(text)
  if (typeof parsed === "string") throw new Error(parsed)
  return parsed
}

describe("signed notes", () => {
  it("has Ed25519 in this runtime's WebCrypto", async () => {
    assert.isTrue(await Note.supportsEd25519())
  })

  it("verifies Go's example note and refuses it altered", async () => {
    const note = Note.parseNote(signed)!
    assert.strictEqual(note.text, text)
    assert.strictEqual(await Note.verifyNote(note, await key(vkey)), "verified")
    assert.strictEqual(
      await Note.verifyNote({ ...note, text: text.replace("cryptography", "crypto") }, await key(vkey)),
      "bad-signature"
    )
  })

  it("verifies a real checkpoint of sum.golang.org and reads it", async () => {
    const note = Note.parseNote(sumdbCheckpoint)!
    assert.strictEqual(await Note.verifyNote(note, await key(sumGolangOrg)), "verified")
    const checkpoint = Note.parseCheckpoint(note.text)!
    assert.strictEqual(checkpoint.origin, "go.sum database tree")
    assert.strictEqual(checkpoint.size, 31700353)
    assert.strictEqual(Merkle.toBase64(checkpoint.rootHash), "qINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=")
    // The key of another log has no signature on it.
    assert.strictEqual(await Note.verifyNote(note, await key(vkey)), "no-signature")
  })

  it("verifies checkpoints signed by the audit log's own signer", async () => {
    const signer = Checkpoint.makeSigner("ouroboros.test/audit", new Uint8Array(randomBytes(32)))
    const leaves = leavesOf(9)
    const rootHash = AuditMerkle.rootFromLeafHashes(leaves)
    const note = Checkpoint.signCheckpoint({ origin: "ouroboros.test/audit", size: 9, rootHash }, signer)
    const parsed = Note.parseNote(note)!
    assert.strictEqual(await Note.verifyNote(parsed, await key(signer.verifierKey)), "verified")
    const checkpoint = Note.parseCheckpoint(parsed.text)!
    assert.strictEqual(checkpoint.size, 9)
    assert.isTrue(Merkle.equal(checkpoint.rootHash, rootHash))
    const other = Checkpoint.makeSigner("ouroboros.test/audit", new Uint8Array(randomBytes(32)))
    assert.strictEqual(await Note.verifyNote(parsed, await key(other.verifierKey)), "no-signature")
  })

  it("refuses malformed keys, notes and checkpoints", async () => {
    assert.strictEqual(await Note.parseVerifierKey("nope"), "a verifier key is <name>+<key hash>+<key>")
    assert.strictEqual(
      await Note.parseVerifierKey(vkey.replace("c74f20a3", "c74f20a4")),
      "the key hash does not match the key"
    )
    assert.strictEqual(Note.parseNote(text), undefined)
    assert.strictEqual(Note.parseNote(`${text}\n— broken\n`), undefined)
    assert.strictEqual(
      Note.parseCheckpoint("origin\nnot a number\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\n"),
      undefined
    )
    assert.strictEqual(Note.parseCheckpoint("origin\n5\nshort\n"), undefined)
  })
})

describe("formatting", () => {
  it("writes sizes, durations, instants and ratios, and — for what is unknown", () => {
    assert.strictEqual(Format.bytes(3850), "3.76 KiB")
    assert.strictEqual(Format.bytes(512), "512 B")
    assert.strictEqual(Format.duration(450), "450 ms")
    assert.strictEqual(Format.duration(4200), "4.2 s")
    assert.strictEqual(Format.duration(200_000), "3 min 20 s")
    assert.strictEqual(Format.time("2026-12-04T23:48:06.151Z"), "2026-12-04 23:48:06 UTC")
    assert.strictEqual(Format.time(0), "1970-01-01 00:00:00 UTC")
    assert.strictEqual(Format.percent(0.125), "12.5 %")
    assert.strictEqual(Format.millis(0.0123), "12.3 ms")
    for (const f of [Format.bytes, Format.duration, Format.percent, Format.millis, Format.number]) {
      assert.strictEqual(f(undefined), "—")
    }
  })

  it("round-trips datetime-local values through ISO instants", () => {
    const iso = "2026-12-04T23:48:06.000Z"
    assert.strictEqual(Format.localInputToIso(Format.isoToLocalInput(iso)), iso)
    assert.strictEqual(Format.localInputToIso(""), undefined)
    assert.strictEqual(Format.localInputToIso("not a date"), undefined)
    assert.strictEqual(Format.isoToLocalInput(undefined), "")
  })
})
