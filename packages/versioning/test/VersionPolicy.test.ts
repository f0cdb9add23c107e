import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Schema } from "effect"
import { ApiVersion, VersionPolicy } from "../src/index.js"

const declared = ["v1", "v2", "v3"]
const make = (settings?: VersionPolicy.Settings) => VersionPolicy.make(declared, settings)
const fromEnv = (env: Record<string, string>) =>
  Effect.provideService(VersionPolicy.config, ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))

describe("ApiVersion", () => {
  it("reads versions as clients write them", () => {
    assert.strictEqual(ApiVersion.parse("v2"), "v2")
    assert.strictEqual(ApiVersion.parse("V2"), "v2")
    assert.strictEqual(ApiVersion.parse(" 2 "), "v2")
    assert.strictEqual(ApiVersion.parse("v007"), "v7")
    for (const malformed of ["", "v", "v0", "2.0", "v1.5", "latest", "v1,v2", "v1234567"]) {
      assert.isUndefined(ApiVersion.parse(malformed), malformed)
    }
    assert.isTrue(ApiVersion.isCanonical("v12"))
    for (const other of ["V12", "v012", "12", "v0"]) assert.isFalse(ApiVersion.isCanonical(other), other)
    for (const segment of ["v1", "V1", "v1.5", "v9-beta"]) assert.isTrue(ApiVersion.isVersionSegment(segment), segment)
    for (const segment of ["documents", "v", "versions", "vx1", ""]) {
      assert.isFalse(ApiVersion.isVersionSegment(segment))
    }
    assert.deepStrictEqual(["v10", "v2", "v1"].sort(ApiVersion.compare), ["v1", "v2", "v10"])
  })

  it.effect("the current version is a request-scoped reference", () =>
    Effect.gen(function*() {
      assert.isUndefined(yield* ApiVersion.current)
      assert.strictEqual(yield* ApiVersion.current.pipe(ApiVersion.withVersion("v2")), "v2")
    }))
})

describe("VersionPolicy", () => {
  it.effect("negotiates: URL segment, else header, else the default", () =>
    Effect.gen(function*() {
      const policy = yield* make()
      const served = (request: VersionPolicy.Request) => {
        const n = policy.negotiate(request, 0)
        return n._tag === "Served" ? [n.version, n.source] : [n._tag, n.error.detail]
      }
      assert.deepStrictEqual(served({ segment: "v1", header: "v3" }), ["v1", "url"])
      assert.deepStrictEqual(served({ header: "V2" }), ["v2", "header"])
      assert.deepStrictEqual(served({}), ["v3", "default"])
      assert.deepStrictEqual(served({ header: "" }), ["v3", "default"])
      assert.deepStrictEqual(served({ segment: "v4" }), [
        "Unsupported",
        "API version v4 is not supported; supported versions: v3, v2, v1"
      ])
      assert.deepStrictEqual(served({ segment: "V1" }), [
        "Unsupported",
        "\"V1\" is not an API version (v1, v2, …); supported versions: v3, v2, v1"
      ])
      assert.deepStrictEqual(served({ header: "latest" }), [
        "Unsupported",
        "\"latest\" is not an API version (v1, v2, …); supported versions: v3, v2, v1"
      ])
    }))

  it.effect("a sunset moves a version out, and the state holds until the next sunset", () =>
    Effect.gen(function*() {
      const policy = yield* make({
        versions: { v1: { sunset: "2027-01-01" }, v2: { deprecated: "2027-01-01", sunset: "2028-01-01" } }
      })
      const jan2027 = Date.parse("2027-01-01")
      const before = policy.state(jan2027 - 1)
      assert.deepStrictEqual(before.supported, ["v3", "v2", "v1"])
      assert.strictEqual(before.validUntil, jan2027)
      const after = policy.state(jan2027)
      assert.deepStrictEqual(after.supported, ["v3", "v2"])
      assert.strictEqual(after.validFrom, jan2027)
      assert.strictEqual(after.validUntil, Date.parse("2028-01-01"))
      const gone = policy.negotiate({ segment: "v1" }, jan2027)
      assert.strictEqual(gone._tag, "Gone")
      if (gone._tag === "Gone") {
        assert.strictEqual(gone.error.successor, "v3")
        assert.strictEqual(gone.error.sunset, "2027-01-01T00:00:00.000Z")
      }
      assert.strictEqual(policy.negotiate({ segment: "v2" }, jan2027)._tag, "Served")
      // Going back in time (a clock set back) gives the earlier state again.
      assert.deepStrictEqual(policy.state(0).supported, ["v3", "v2", "v1"])
    }))

  it.effect("the default is the newest stable version, or the configured one while it is served", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* make({ versions: { v3: { preview: true } } })).state(0).defaultVersion, "v2")
      const pinned = yield* make({ default: "v1", versions: { v1: { sunset: "2030-01-01" } } })
      assert.strictEqual(pinned.state(0).defaultVersion, "v1")
      assert.strictEqual(pinned.state(Date.parse("2030-01-01")).defaultVersion, "v3")
    }))

  it.effect("settings that do not fit the declared versions are refused, naming the field", () =>
    Effect.gen(function*() {
      const detail = (settings: VersionPolicy.Settings) => Effect.map(Effect.flip(make(settings)), (e) => e.detail)
      assert.strictEqual(
        yield* detail({ versions: { v9: { preview: true } } }),
        "apiVersions.versions.v9: no such version (declared: v1, v2, v3)"
      )
      assert.strictEqual(
        yield* detail({ versions: { v1: { deprecated: "2027-06-01", sunset: "2027-01-01" } } }),
        "apiVersions.versions.v1.sunset: 2027-01-01 is before its deprecation (2027-06-01)"
      )
      assert.strictEqual(
        yield* detail({ default: "v2", versions: { v2: { disabled: true } } }),
        "apiVersions.default: v2 is not a served version"
      )
      assert.strictEqual(
        yield* detail({ versions: { v1: { preview: true }, v2: { preview: true }, v3: { preview: true } } }),
        "every served API version is a preview: none can be the default"
      )
      assert.strictEqual(
        yield* Effect.map(Effect.flip(VersionPolicy.make(["2"])), (e) => e.detail),
        "\"2\" is not a version (v1, v2, …)"
      )
    }))

  it("the config file section is a Schema whose errors name the field", () => {
    const decode = Schema.decodeUnknownSync(VersionPolicy.Settings)
    assert.deepStrictEqual(
      decode({ default: "v2", versions: { v1: { deprecated: "2027-01-01", sunset: "2027-07-01T12:00:00Z" } } }),
      { default: "v2", versions: { v1: { deprecated: "2027-01-01", sunset: "2027-07-01T12:00:00Z" } } }
    )
    assert.throws(() => decode({ versions: { v1: { deprecated: "next year" } } }), /deprecated/)
    assert.throws(() => decode({ versions: { v1: { link: "javascript:alert(1)" } } }), /link/)
    assert.throws(
      () => decode({ versions: { V1: { preview: true } } }),
      /"V1" is not an API version[\s\S]*\["versions"\]\["V1"\]/
    )
    assert.throws(() => decode({ default: "latest" }), /default/)
  })

  it.effect("the environment: every variable, and an error that names the malformed one", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* fromEnv({}), {})
      const settings = yield* fromEnv({
        API_VERSIONS_DEFAULT: "v2",
        API_VERSIONS_PREVIEW: "v3",
        API_VERSIONS_DISABLED: "v4",
        API_VERSIONS_DEPRECATED: "v1@2027-01-01, v2@2028-01-01T00:00:00Z",
        API_VERSIONS_SUNSET: "v1@2027-07-01",
        API_VERSIONS_LINKS: "v1@https://example.com/migrate?from=v1@x"
      })
      assert.deepStrictEqual(settings, {
        default: "v2",
        versions: {
          v3: { preview: true },
          v4: { disabled: true },
          v1: { deprecated: "2027-01-01", sunset: "2027-07-01", link: "https://example.com/migrate?from=v1@x" },
          v2: { deprecated: "2028-01-01T00:00:00Z" }
        }
      } as any)
      const error = yield* Effect.flip(fromEnv({ API_VERSIONS_SUNSET: "v1@soon" }))
      assert.match(String(error), /API_VERSIONS_SUNSET/)
      const unversioned = yield* Effect.flip(fromEnv({ API_VERSIONS_PREVIEW: "three" }))
      assert.match(String(unversioned), /API_VERSIONS_PREVIEW/)
    }))

  it.effect("file and environment merge field by field, the environment over the file", () =>
    Effect.gen(function*() {
      const file: VersionPolicy.Settings = {
        default: "v3",
        versions: { v1: { deprecated: "2027-01-01", link: "https://example.com/v1" } }
      }
      const env = yield* fromEnv({ API_VERSIONS_SUNSET: "v1@2027-07-01", API_VERSIONS_DEFAULT: "v2" })
      assert.deepStrictEqual(VersionPolicy.merge(file, env), {
        default: "v2",
        versions: { v1: { deprecated: "2027-01-01", link: "https://example.com/v1", sunset: "2027-07-01" } }
      })
      const policy = yield* VersionPolicy.make(["v1", "v2", "v3"], VersionPolicy.merge(file, env))
      const v1 = policy.lifecycle("v1")!
      assert.strictEqual(v1.sunsetAt, Date.parse("2027-07-01"))
      assert.strictEqual(v1.link, "https://example.com/v1")
    }))

  it.effect("layerConfig reads the environment through the ConfigProvider", () =>
    Effect.gen(function*() {
      const policy = yield* VersionPolicy.VersionPolicy
      assert.strictEqual(policy.state(0).defaultVersion, "v1")
      assert.deepStrictEqual(policy.versions.map((v) => v.version), ["v3", "v1"])
    }).pipe(
      Effect.provide(VersionPolicy.layerConfig(declared, { versions: { v2: { disabled: true } } })),
      Effect.provideService(
        ConfigProvider.ConfigProvider,
        ConfigProvider.fromEnv({ env: { API_VERSIONS_DEFAULT: "v1" } })
      )
    ))
})
