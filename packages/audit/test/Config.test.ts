import { assert, describe, it } from "@effect/vitest"
import { AuditKeys, AuditLog, Checkpoint, Retention } from "@ouroboros/audit"
import { Config, ConfigProvider, Duration, Effect, Logger, Option, Redacted, Result } from "effect"
import { generateKeyPairSync } from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { collectLogs } from "./contract.js"

const load = (env: Record<string, string>) =>
  Effect.provideService(
    Effect.result(Config.nested(AuditLog.config, "AUDIT")),
    ConfigProvider.ConfigProvider,
    ConfigProvider.fromEnv({ env })
  )

const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "audit-keys-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

describe("AuditLog.config", () => {
  it.effect("reads AUDIT_* with defaults", () =>
    Effect.gen(function*() {
      const defaults = Result.getOrThrow(yield* load({}))
      assert.strictEqual(defaults.origin, "ouroboros.local/audit")
      assert.isTrue(Option.isNone(defaults.signingKey))
      assert.strictEqual(defaults.queueCapacity, 10_000)
      assert.strictEqual(defaults.maxGroupSize, 512)
      assert.strictEqual(Duration.toMillis(defaults.checkpointInterval), 10_000)
      assert.deepStrictEqual(defaults.retention, [])
      const set = Result.getOrThrow(
        yield* load({
          AUDIT_ORIGIN: "audit.example.com/log",
          AUDIT_SIGNING_KEY: "c2VlZA==",
          AUDIT_QUEUE_CAPACITY: "5",
          AUDIT_CHECKPOINT_INTERVAL: "1 minute",
          AUDIT_RETENTION: "data.read=90d, acme/data.read=30d, *=7y",
          AUDIT_PRUNE_INTERVAL: "1 day"
        })
      )
      assert.strictEqual(set.origin, "audit.example.com/log")
      assert.strictEqual(Redacted.value(Option.getOrThrow(set.signingKey)), "c2VlZA==")
      assert.strictEqual(String(Option.getOrThrow(set.signingKey)), "<redacted>")
      assert.strictEqual(set.queueCapacity, 5)
      assert.strictEqual(Duration.toMillis(set.checkpointInterval), 60_000)
      assert.deepStrictEqual(set.retention.map((r) => [r.tenantId, r.type, Duration.toMillis(r.maxAge)]), [
        [undefined, "data.read", 90 * 86_400_000],
        ["acme", "data.read", 30 * 86_400_000],
        [undefined, undefined, 7 * 365 * 86_400_000]
      ])
    }))

  it.effect("names the variable of a bad value", () =>
    Effect.gen(function*() {
      for (
        const [name, value] of [
          ["AUDIT_QUEUE_CAPACITY", "0"],
          ["AUDIT_MAX_GROUP_SIZE", "many"],
          ["AUDIT_RETENTION", "data.reads=1d"],
          ["AUDIT_RETENTION", "retention.prune=1d"],
          ["AUDIT_RETENTION", "data.read=soon"]
        ] as const
      ) {
        const result = yield* load({ [name]: value })
        assert.isTrue(Result.isFailure(result), `${name}=${value}`)
        assert.include(String(Result.isFailure(result) ? result.failure : ""), name.slice("AUDIT_".length))
      }
    }))
})

describe("Retention", () => {
  it("governs an entry by the most specific rule", () => {
    const rules = Result.getOrThrow(Retention.parse("data.read=90d, acme/data.read=30d, acme/*=1y, *=7y"))
    const age = (tenant: string | undefined, type: "data.read" | "data.create") =>
      Duration.toMillis(Retention.ruleFor(rules, tenant, type)!.maxAge) / 86_400_000
    assert.strictEqual(age("acme", "data.read"), 30)
    assert.strictEqual(age("acme", "data.create"), 365)
    assert.strictEqual(age("globex", "data.read"), 90)
    assert.strictEqual(age(undefined, "data.create"), 7 * 365)
    assert.isTrue(Result.isFailure(Retention.parse("data.read=1d,data.read=2d")))
  })
})

describe("AuditKeys", () => {
  it.effect("generates both keys under the data directory on first start (mode 0600), says so, and reuses them", () => {
    const logs = collectLogs()
    return Effect.gen(function*() {
      const dataDir = yield* tempDir
      const options = { origin: "o.example/audit", dataDir, signingKey: Option.none(), encryptionKey: Option.none() }
      const first = yield* AuditKeys.load(options)
      const file = Path.join(dataDir, "audit", "signing-key")
      assert.strictEqual(Fs.statSync(file).mode & 0o777, 0o600)
      assert.strictEqual(Fs.statSync(Path.join(dataDir, "audit", "encryption-key")).mode & 0o777, 0o600)
      assert.isTrue(logs.messages.some((m) => m.includes("AUDIT_SIGNING_KEY is not set")), logs.messages.join("\n"))
      assert.isTrue(logs.messages.some((m) => m.includes("AUDIT_ENCRYPTION_KEY is not set")))
      const second = yield* AuditKeys.load(options)
      assert.strictEqual(second.signer.verifierKey, first.signer.verifierKey)
      assert.deepStrictEqual(Redacted.value(second.encryptionKey), Redacted.value(first.encryptionKey))
      assert.strictEqual(logs.messages.filter((m) => m.includes("is not set")).length, 2)
      assert.strictEqual(first.signer.name, "o.example/audit")
    }).pipe(Effect.provideService(Logger.CurrentLoggers, logs.loggers))
  })

  it("reads a signing key as a note signer key, PKCS#8 (PEM or base64) or a seed (base64 or hex)", () => {
    const seed = new Uint8Array(32).map((_, i) => i)
    const expected = Checkpoint.makeSigner("o.example/audit", seed).verifierKey
    const pkcs8 = Checkpoint.privateKeyFromSeed(seed).export({ format: "der", type: "pkcs8" })
    const pem = Checkpoint.privateKeyFromSeed(seed).export({ format: "pem", type: "pkcs8" }).toString()
    for (
      const form of [
        Buffer.from(seed).toString("base64"),
        Buffer.from(seed).toString("hex"),
        pkcs8.toString("base64"),
        pem
      ]
    ) {
      assert.strictEqual(Result.getOrThrow(AuditKeys.parseSigningKey(form, "o.example/audit")).verifierKey, expected)
    }
    // A note signer key keeps its own name.
    const skey = Checkpoint.signerKey("witnessed.example/log", seed)
    assert.strictEqual(Result.getOrThrow(AuditKeys.parseSigningKey(skey, "ignored")).name, "witnessed.example/log")
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({ format: "pem", type: "pkcs8" })
    assert.isTrue(Result.isFailure(AuditKeys.parseSigningKey(rsa.toString(), "o")))
    assert.isTrue(Result.isFailure(AuditKeys.parseSigningKey("short", "o")))
    assert.isTrue(Result.isFailure(AuditKeys.parseEncryptionKey(Buffer.alloc(16).toString("base64"))))
  })
})
